"""The mock NVIDIA kernel driver and mock Hopper (H100) GPU.

`make_kernel()` returns a MockKernel with /dev/nvidiactl, /dev/nvidia0 (one GPU, minor 0; or
several GPUs on one mock bus, /dev/nvidia0..N-1), /dev/nvidia-uvm and the version files registered, so the unchanged NVIDIA backend can run on a
machine without a GPU. The mock is written from the driver and hardware rules
(reference/nvidia.md), using only generated facts from hwdrv.nvidia.gen - never backend logic.

Modules: rm.py (escapes, fds, mmap), alloc.py (classes and their parents/params), controls.py
(RM_CONTROL), objects.py (object tree), uvm.py (/dev/nvidia-uvm), gpu.py (the GPU, doorbells),
fifo.py (GPFIFO + host methods), compute.py / qmd.py / image.py (QMD launches of PTX kernels),
copy.py (copy engine), semaphore.py, faults.py (Xids, fault records), backing.py (what backs an RM memory object).
"""
from __future__ import annotations

from hwdrv.errors import InvalidArgument
from hwdrv.mock.kernel import MockKernel

from . import facts as F
from .gpu import MockGpu
from .rm import NvidiaDriver, RmServer
from .uvm import UvmDriver

DESCRIPTION = F.DESCRIPTION


def make_kernel(kernel_timeout: float | None = None, gpus: int = 1, link: str = "nvlink") -> MockKernel:
    """A MockKernel serving ``gpus`` mock H100s (driver 580.159.04) on one mock bus: one
    /dev/nvidiactl, /dev/nvidia0 .. /dev/nvidia<gpus-1>, one /dev/nvidia-uvm. ``link`` is how
    every pair of GPUs is connected ("nvlink" as on an HGX board, "pcie", or "none"; change a
    pair with ``k.nvidia.set_link(a, b, kind)``). `kernel_timeout` (seconds) bounds how long one
    kernel may run before the mock's watchdog stops it (default: HWDRV_MOCK_NV_KERNEL_TIMEOUT or
    10 s)."""
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 1 <= gpus <= F.MAX_MOCK_GPUS:
        raise InvalidArgument(f"a mock NVIDIA machine holds 1..{F.MAX_MOCK_GPUS} GPUs, not {gpus!r} "
                              f"(HWDRV_MOCK_GPUS or make_kernel(gpus=...))")
    if link not in F.LINKS:
        raise InvalidArgument(f"link {link!r}: one of {', '.join(F.LINKS)}")
    k = MockKernel()
    boards = [MockGpu(kernel_timeout, F.GpuIdentity(i)) for i in range(gpus)]
    for gpu in boards:
        gpu.kmsg = k.kmsg    # the GPUs' RC events go to this kernel's log (/dev/kmsg)
    # as the real module does when it loads (the first NVRM line of a boot's log)
    k.kmsg.printk(f"NVRM: loading hwdrv mock NVIDIA kernel module (not a real driver)  {F.DRIVER_VERSION}", level=5)
    rm = RmServer(k, boards, link)
    drv = NvidiaDriver(rm)
    k.register_driver("/dev/nvidiactl", drv)
    for path in drv.dev_paths:
        k.register_driver(path, drv)
    k.register_driver("/dev/nvidia-uvm", UvmDriver(rm))
    k.add_file("/proc/driver/nvidia/version", F.PROC_VERSION_TEXT)
    k.add_file("/sys/module/nvidia/version", F.DRIVER_VERSION + "\n")
    k.nvidia = rm            # mock-only handle for tests and diagnostics (the RM server and its GPUs)
    return k


__all__ = ["DESCRIPTION", "make_kernel", "MockGpu", "RmServer"]
