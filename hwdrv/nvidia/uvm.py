"""NVIDIA UVM (/dev/nvidia-uvm): the process's GPU address space.

UVM owns the page tables of our RM VA space (created EXTERNALLY_OWNED), so every GPU mapping
is made here: an external range at the chosen VA, then the RM memory object mapped into it.
UVM ioctl numbers are raw integers (not _IOC-encoded); every parameter struct ends with
``rmStatus``.
"""
from __future__ import annotations

from typing import Any

from ..errors import DriverStatusError
from ..ioctl.bindings import addressof
from ..ioctl.kernel import O_CLOEXEC, O_RDWR, Kernel
from .abi import status_code


class UVM:
    """The UVM fds of one process and the registrations hwdrv made on them."""

    def __init__(self, kernel: Kernel, nv: Any, path: str = "/dev/nvidia-uvm"):
        self.kernel, self.nv, self.ffi = kernel, nv, nv.ffi
        self.ok = status_code(nv, "NV_OK")
        self.fd = kernel.open(path, O_RDWR | O_CLOEXEC)
        self.mm_fd = -1
        try:
            p = self._call("UVM_INITIALIZE", nv.UVM_INITIALIZE, "UVM_INITIALIZE_PARAMS")
            del p
            self.mm_fd = kernel.open(path, O_RDWR | O_CLOEXEC)
            # The second fd keeps the mm alive until UVM has torn down cleanly; platforms that
            # do not need it answer NV_WARN_NOTHING_TO_DO, which is fine.
            self._call("UVM_MM_INITIALIZE", nv.UVM_MM_INITIALIZE, "UVM_MM_INITIALIZE_PARAMS",
                       ok=(self.ok, status_code(nv, "NV_WARN_NOTHING_TO_DO")), fd=self.mm_fd,
                       uvmFd=self.fd)
        except Exception:
            self.close()
            raise
        self.ranges: dict[int, int] = {}    # base -> length of live external ranges

    def _call(self, name: str, request: int, struct: str, ok: tuple = (), fd: int | None = None,
              **fields: Any) -> Any:
        p = self.ffi.new(struct + " *")
        for k, v in fields.items():
            if k in ("gpuUuid", "gpu_uuid"):
                getattr(p, k).uuid = list(v)
            else:
                setattr(p, k, v)
        self.kernel.ioctl(self.fd if fd is None else fd, request, addressof(p), name)
        if p.rmStatus not in (ok or (self.ok,)):
            sname, msg = self.nv.NV_STATUS.get(p.rmStatus, (f"NV_STATUS_{p.rmStatus:#x}", ""))
            raise DriverStatusError(name, 0, msg, p.rmStatus, sname)
        return p

    def register_gpu(self, uuid: bytes, client: int) -> None:
        self._call("UVM_REGISTER_GPU", self.nv.UVM_REGISTER_GPU, "UVM_REGISTER_GPU_PARAMS",
                   gpu_uuid=uuid, rmCtrlFd=-1, hClient=client)

    def register_vaspace(self, uuid: bytes, ctl_fd: int, client: int, vaspace: int) -> None:
        self._call("UVM_REGISTER_GPU_VASPACE", self.nv.UVM_REGISTER_GPU_VASPACE,
                   "UVM_REGISTER_GPU_VASPACE_PARAMS", gpuUuid=uuid, rmCtrlFd=ctl_fd,
                   hClient=client, hVaSpace=vaspace)

    def register_channel(self, uuid: bytes, ctl_fd: int, client: int, channel: int, base: int,
                         length: int) -> None:
        self._call("UVM_REGISTER_CHANNEL", self.nv.UVM_REGISTER_CHANNEL,
                   "UVM_REGISTER_CHANNEL_PARAMS", gpuUuid=uuid, rmCtrlFd=ctl_fd, hClient=client,
                   hChannel=channel, base=base, length=length)

    def map_external(self, uuid: bytes, ctl_fd: int, client: int, memory: int, va: int,
                     size: int) -> None:
        """Map RM memory object ``memory`` at GPU VA ``va`` (an external range is made first)."""
        nv = self.nv
        self._call("UVM_CREATE_EXTERNAL_RANGE", nv.UVM_CREATE_EXTERNAL_RANGE,
                   "UVM_CREATE_EXTERNAL_RANGE_PARAMS", base=va, length=size)
        self.ranges[va] = size
        p = self.ffi.new("UVM_MAP_EXTERNAL_ALLOCATION_PARAMS *")
        p.base, p.length, p.offset = va, size, 0
        p.perGpuAttributes[0].gpuUuid.uuid = list(uuid)
        p.perGpuAttributes[0].gpuMappingType = nv.UvmGpuMappingTypeReadWriteAtomic
        p.gpuAttributesCount = 1
        p.rmCtrlFd, p.hClient, p.hMemory = ctl_fd, client, memory
        self.kernel.ioctl(self.fd, nv.UVM_MAP_EXTERNAL_ALLOCATION, addressof(p),
                          "UVM_MAP_EXTERNAL_ALLOCATION")
        if p.rmStatus != self.ok:
            self.free(va)
            sname, msg = nv.NV_STATUS.get(p.rmStatus, (f"NV_STATUS_{p.rmStatus:#x}", ""))
            raise DriverStatusError("UVM_MAP_EXTERNAL_ALLOCATION", 0, msg, p.rmStatus, sname)

    def free(self, va: int) -> None:
        """Drop the external range at ``va`` and its mappings."""
        size = self.ranges.pop(va)
        self._call("UVM_FREE", self.nv.UVM_FREE, "UVM_FREE_PARAMS", base=va, length=size)

    def close(self) -> None:
        # Closing the fds makes UVM drop every range and registration of this process.
        for fd in (self.mm_fd, self.fd):
            if fd >= 0:
                self.kernel.close(fd)
        self.fd = self.mm_fd = -1
        self.ranges = {}
