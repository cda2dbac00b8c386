"""NVDevice: an NVIDIA GPU driven through RM and UVM, with no libcuda.

The constructor is the bring-up, in the order the driver requires (reference nvidia.md 1.9):
control fd and driver version -> RM client -> UVM -> GPU and its device/subdevice objects ->
usermode doorbell page -> VA space owned by UVM -> channel group -> error notifier ->
context share -> compute and copy GPFIFO channels with their engine objects -> scheduling ->
first submission binding the classes. ``close()`` frees the RM client (and with it every RM
object), the UVM fds, the VA pool and every fd.
"""
from __future__ import annotations

import os
import weakref
from typing import Any

import numpy as np

from ..device import Device
from ..errors import DeviceNotFound, GPUHang, HwdrvError
from ..hang import HangReport
from ..ioctl.kernel import O_CLOEXEC, O_RDWR, Kernel
from ..limits import DeviceLimits
from ..memory.buffer import Buffer
from ..memory.vapool import VAPool
from ..queue import Queue
from ..registry import DeviceInfo
from . import abi
from . import gpfifo as pb
from .gpfifo import GPFIFO_ENTRIES, PUSHBUFFER_SIZE, Channel
from .cluster import MAX_PORTABLE_CLUSTER_SIZE, variant_from_env
from .compiler import MockPtxCompiler, PtxasCompiler
from .gen import hopper as hw
from .kmsg import LogCursor, pci_tag
from .memory import Allocation, NVMemory
from .program import LOCAL_WINDOW_SIZE, NVProgram
from .queue import NVComputeQueue, NVCopyQueue, launch_now
from .rm import RM
from .samples import SAMPLES
from .uvm import UVM

CTL_PATH = "/dev/nvidiactl"
#: hwdrv's CPU+GPU address pool of one device, below 2**40 as QMD and pushbuffer addresses
#: require; devices open at once in one process take successive slots
POOL_BASE = 0x20_0000_0000
POOL_SIZE = 0x10_0000_0000
POOL_SLOTS = 14
#: generic-address windows for shared and local memory: 4 GiB aligned, outside the pool
SHARED_WINDOW = 0x100_0000_0000
LOCAL_WINDOW = 0x101_0000_0000
#: CUDA's default cudaLimitStackSize: per-thread call stack of kernels that call functions
DEFAULT_STACK_LIMIT = 1024
#: VA the driver maps a channel's context buffers into (UVM_REGISTER_CHANNEL)
CHANNEL_CTX_VA_SIZE = 64 << 20
_NOTIFIER_SIZE = 64 << 10
_USERD_SIZE = 0x1000
_RING_REGION = GPFIFO_ENTRIES * 8 + _USERD_SIZE
#: sm_90 launch limits (CUDA C Programming Guide, "Compute Capabilities", table for 9.0)
MAX_SHARED_PER_BLOCK = 227 << 10
MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK_DIMS = (1024, 1024, 64)
MAX_GRID_DIMS = ((1 << 31) - 1, 65535, 65535)
WARP_SIZE = 32
GR_INFO_WANTED = ("SM_VERSION", "LITTER_NUM_GPCS", "LITTER_NUM_TPC_PER_GPC", "LITTER_NUM_SM_PER_TPC",
                  "MAX_WARPS_PER_SM", "GPU_CORE_COUNT", "MAX_SP_PER_SM")


def probe(kernel: Kernel) -> list[DeviceInfo]:
    """The NVIDIA GPUs this machine's driver exposes (no GPU state is touched)."""
    if not kernel.exists(CTL_PATH):
        return []
    version = abi.driver_version(kernel)
    nv = abi.bindings_for(version, strict=False)
    fd = kernel.open(CTL_PATH, O_RDWR | O_CLOEXEC)
    try:
        cards = _card_info(kernel, nv, fd)
    finally:
        kernel.close(fd)
    problem = "" if abi.supported(version) else abi.unsupported_message(version)
    mock = kernel.is_mock
    return [DeviceInfo(f"{'mock:nvidia' if mock else 'nvidia'}:{i}" if not mock else "mock:nvidia",
                       "nvidia", f"PCI {c.pci_info.vendor_id:04x}:{c.pci_info.device_id:04x} "
                       f"at {c.pci_info.bus:02x}:{c.pci_info.slot:02x}.{c.pci_info.function}",
                       version, mock=mock, available=not problem, problem=problem)
            for i, c in enumerate(cards)]


def open(kernel: Kernel, index: int, name: str) -> "NVDevice":  # noqa: A001 - registry protocol
    """Open GPU number ``index`` (registry entry point)."""
    return NVDevice(kernel, index, name)


def _card_info(kernel: Kernel, nv: Any, ctl_fd: int) -> list[Any]:
    cards = nv.ffi.new("nv_ioctl_card_info_t[64]")
    req_size = nv.ffi.sizeof(cards)
    from ..ioctl import ioc
    from ..ioctl.bindings import addressof
    kernel.ioctl(ctl_fd, ioc._IOWR("F", nv.NV_ESC_CARD_INFO, req_size), addressof(cards),
                 "NV_ESC_CARD_INFO")
    return [cards[i] for i in range(64) if cards[i].valid]


class NVDevice(Device):
    """An open NVIDIA Hopper GPU (or the mock of one)."""

    kind = "nvidia"
    samples = SAMPLES
    timestamp_hz = 1_000_000_000
    shared_window = SHARED_WINDOW
    local_window = LOCAL_WINDOW
    #: bytes of call stack per thread a kernel that calls device functions gets below its own
    #: frame (beyond what its cubin reports), like CUDA's cudaLimitStackSize (default 1024).
    #: Set it on the device before loading programs that need more (deep recursion); it
    #: applies to programs loaded afterwards.
    stack_limit = DEFAULT_STACK_LIMIT

    def __init__(self, kernel: Kernel, index: int, name: str):
        #: how cluster launches encode their QMD (nvidia/cluster.py VARIANTS; unverified on
        #: hardware): HWDRV_NV_CLUSTER_QMD names one, tests/hardware/cluster_probe.py tries each.
        #: Read first: a bad name fails before anything is opened.
        self.cluster_variant = variant_from_env()
        super().__init__(name, kernel)
        self._fds: list[int] = []
        self.rm: RM | None = None
        self.uvm: UVM | None = None
        self._pool: VAPool | None = None
        self.mem: NVMemory | None = None
        self._slm: list[Allocation] = []
        self._slm_per_thread = 0
        self._slm_per_tpc = 0
        self._broken = False
        # diagnosis (hwdrv.nvidia.diagnose): the GT200_DEBUGGER made on first use and the
        # context VA UVM holds per channel
        self._h_debugger = 0
        self._ctx_vas: dict[int, int] = {}
        try:
            self._bring_up(index)
        except BaseException:
            self._teardown()
            raise

    # ---- bring-up ----------------------------------------------------------------------
    def _open(self, path: str) -> int:
        fd = self.kernel.open(path, O_RDWR | O_CLOEXEC)
        self._fds.append(fd)
        return fd

    def _bring_up(self, index: int) -> None:
        k = self.kernel
        if not k.exists(CTL_PATH):
            raise DeviceNotFound(f"{self.name}: {CTL_PATH} does not exist (no NVIDIA driver loaded)")
        self.driver_version = abi.driver_version(k)
        self.nv = nv = abi.bindings_for(self.driver_version)
        ctl = self._open(CTL_PATH)
        self.rm = rm = RM(k, nv, ctl)
        cards = _card_info(k, nv, ctl)
        if not 0 <= index < len(cards):
            raise DeviceNotFound(f"{self.name}: there are {len(cards)} NVIDIA GPU(s); index {index} "
                                 f"is out of range")
        card = cards[index]
        self.gpu_id, self.minor = card.gpu_id, card.minor_number
        self.pci_id = (card.pci_info.vendor_id, card.pci_info.device_id)
        # where the kernel log stands now: hang reports show NVRM's lines about this GPU after it
        self.kmsg = LogCursor(k, pci_tag(card.pci_info.domain, card.pci_info.bus, card.pci_info.slot))
        self._pool = _reserve_pool(k)
        dev_path = f"/dev/nvidia{self.minor}"
        dev_fd = self._open(dev_path)
        reg = nv.ffi.new("nv_ioctl_register_fd_t *")
        reg.ctl_fd = ctl
        rm.escape(dev_fd, nv.NV_ESC_REGISTER_FD, reg, "NV_ESC_REGISTER_FD")

        info = rm.control(rm.client, nv.NV0000_CTRL_CMD_GPU_GET_ID_INFO_V2,
                          nv.ffi.new("NV0000_CTRL_GPU_GET_ID_INFO_V2_PARAMS *", {"gpuId": self.gpu_id}),
                          "GPU_GET_ID_INFO_V2")
        p = nv.ffi.new("NV0080_ALLOC_PARAMETERS *")
        p.deviceId, p.hClientShare = info.deviceInstance, rm.client
        self.h_device = rm.alloc(rm.client, nv.NV01_DEVICE_0, p)
        p = nv.ffi.new("NV2080_ALLOC_PARAMETERS *")
        p.subDeviceId = info.subDeviceInstance
        self.h_subdevice = rm.alloc(self.h_device, nv.NV20_SUBDEVICE_0, p)
        self._check_classes()

        self.h_usermode = rm.alloc(self.h_subdevice, nv.HOPPER_USERMODE_A)
        self.mem = NVMemory(k, nv, rm, None, self._pool, dev_path, self.h_device, b"", dev_fd)
        self._usermode_va = self.mem.map_usermode(self.h_usermode, 0x10000)
        self._doorbell = self._usermode_va + hw.NVC361_NOTIFY_CHANNEL_PENDING
        if os.environ.get("HWDRV_NV_PERF_BOOST", "1") != "0":
            self._perf_boost()

        p = nv.ffi.new("NV_VASPACE_ALLOCATION_PARAMETERS *")
        p.vaBase, p.vaSize = 0x1000, POOL_BASE + POOL_SLOTS * POOL_SIZE - 0x1000
        p.flags = nv.NV_VASPACE_ALLOCATION_FLAGS_ENABLE_PAGE_FAULTING | nv.NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED
        self.h_vaspace = rm.alloc(self.h_device, nv.FERMI_VASPACE_A, p)
        gid = nv.ffi.new("NV2080_CTRL_GPU_GET_GID_INFO_PARAMS *")
        gid.flags = nv.NV2080_GPU_CMD_GPU_GET_GID_FLAGS_FORMAT.encode(
            nv.NV2080_GPU_CMD_GPU_GET_GID_FLAGS_FORMAT_BINARY)
        rm.control(self.h_subdevice, nv.NV2080_CTRL_CMD_GPU_GET_GID_INFO, gid, "GPU_GET_GID_INFO")
        self.uuid = bytes(gid.data[0:16])
        self.mem.uuid = self.uuid
        # the process's one UVM VA space, where GPUs can be peers (uvm.py)
        self.uvm = self.mem.uvm = uvm = UVM(k, nv, uuid=self.uuid)
        uvm.register_gpu(self.uuid, rm.client)
        uvm.register_vaspace(self.uuid, ctl, rm.client, self.h_vaspace)
        self.gr = self._gr_info()
        self.sm_count = self.gr["GPU_CORE_COUNT"] // max(self.gr["MAX_SP_PER_SM"], 1)
        self._builtins: dict[str, NVProgram] = {}
        self.arch = f"sm_{self.gr['SM_VERSION'] >> 8}{self.gr['SM_VERSION'] & 0xff:x}"
        self.compiler = MockPtxCompiler() if k.is_mock else PtxasCompiler(arch=self.arch)
        self.limits = DeviceLimits(max_threads_per_block=MAX_THREADS_PER_BLOCK, max_block_dims=MAX_BLOCK_DIMS,
                                   max_grid_dims=MAX_GRID_DIMS, max_shared_per_block=MAX_SHARED_PER_BLOCK,
                                   wave_size=WARP_SIZE, max_cluster_size=MAX_PORTABLE_CLUSTER_SIZE)

        self.notifier = self.mem.rm_sysmem(_NOTIFIER_SIZE, map_gpu=False)
        self._notifier_view = _host_view(self.notifier.va, _NOTIFIER_SIZE)
        self._rings = self.mem.vidmem(2 * _RING_REGION, cpu_map=True, contiguous=True)
        self._pbs = [self.mem.vidmem(PUSHBUFFER_SIZE, cpu_map=True) for _ in range(2)]
        self._build_channels()
        self._init_core()
        self.channels = self._host_channels()
        self._first_submission()

    def _build_channels(self) -> None:
        """The channel group, its subcontext, the compute and copy channels with their engine
        objects, scheduled (bring-up, and again in recovery)."""
        nv, rm = self.nv, self.rm
        self.h_tsg = self._channel_group(nv.NV2080_ENGINE_TYPE_GRAPHICS)
        p = nv.ffi.new("NV_CTXSHARE_ALLOCATION_PARAMETERS *")
        p.hVASpace = self.h_vaspace
        p.flags = nv.NV_CTXSHARE_ALLOCATION_FLAGS_SUBCONTEXT.encode(nv.NV_CTXSHARE_ALLOCATION_FLAGS_SUBCONTEXT_ASYNC)
        self.h_ctxshare = rm.alloc(self.h_tsg, nv.FERMI_CONTEXT_SHARE_A, p)
        self.h_compute_ch, self.h_compute = self._channel(0, nv.HOPPER_COMPUTE_A, self.h_tsg, self.h_ctxshare)
        # The copy channel shares the compute channel group, so it uses the copy engine attached
        # to graphics. (Measured on H100 / 580.159.04: a channel group of an asynchronous copy
        # engine could not be scheduled: UVM refuses to register copy-engine channels
        # (NV_ERR_INVALID_OBJECT) and RM will not schedule the group without it.)
        self.h_copy_ch, self.h_copy = self._channel(1, nv.HOPPER_DMA_COPY_A, self.h_tsg, self.h_ctxshare)
        p = nv.ffi.new("NVA06C_CTRL_GPFIFO_SCHEDULE_PARAMS *")
        p.bEnable = 1
        rm.control(self.h_tsg, nv.NVA06C_CTRL_CMD_GPFIFO_SCHEDULE, p, "GPFIFO_SCHEDULE")

    def _host_channels(self) -> dict[str, Channel]:
        return {"compute": self._make_channel(0, self.h_compute_ch, "compute"),
                "copy": self._make_channel(1, self.h_copy_ch, "copy")}

    def _check_classes(self) -> None:
        nv, rm = self.nv, self.rm
        p = nv.ffi.new("NV0080_CTRL_GPU_GET_CLASSLIST_PARAMS *")
        rm.control(self.h_device, nv.NV0080_CTRL_CMD_GPU_GET_CLASSLIST, p, "GET_CLASSLIST")
        classes = nv.ffi.new(f"NvU32[{p.numClasses}]")
        p.classList = classes
        rm.control(self.h_device, nv.NV0080_CTRL_CMD_GPU_GET_CLASSLIST, p, "GET_CLASSLIST")
        self.classes = set(classes)
        need = {"HOPPER_CHANNEL_GPFIFO_A": nv.HOPPER_CHANNEL_GPFIFO_A, "HOPPER_COMPUTE_A": nv.HOPPER_COMPUTE_A,
                "HOPPER_DMA_COPY_A": nv.HOPPER_DMA_COPY_A, "HOPPER_USERMODE_A": nv.HOPPER_USERMODE_A}
        missing = [n for n, c in need.items() if c not in self.classes]
        if missing:
            raise HwdrvError(f"{self.name}: this GPU lacks {', '.join(missing)}: hwdrv's NVIDIA "
                             f"backend drives Hopper (sm_90) GPUs; PCI id {self.pci_id[1]:04x}")

    def _perf_boost(self) -> None:
        # The same per-client request libcuda makes for every context: run at full speed while
        # this client has work. It changes no clock or power setting and ends with the client.
        nv = self.nv
        p = nv.ffi.new("NV2080_CTRL_PERF_BOOST_PARAMS *")
        p.flags = (nv.NV2080_CTRL_PERF_BOOST_FLAGS_CMD.encode(nv.NV2080_CTRL_PERF_BOOST_FLAGS_CMD_BOOST_TO_MAX)
                   | nv.NV2080_CTRL_PERF_BOOST_FLAGS_CUDA.encode(nv.NV2080_CTRL_PERF_BOOST_FLAGS_CUDA_YES)
                   | nv.NV2080_CTRL_PERF_BOOST_FLAGS_CUDA_PRIORITY.encode(
                       nv.NV2080_CTRL_PERF_BOOST_FLAGS_CUDA_PRIORITY_HIGH))
        p.duration = 0xFFFFFFFF
        self.rm.control(self.h_subdevice, nv.NV2080_CTRL_CMD_PERF_BOOST, p, "PERF_BOOST")

    def _gr_info(self) -> dict[str, int]:
        nv = self.nv
        items = nv.ffi.new(f"NV2080_CTRL_GR_INFO[{len(GR_INFO_WANTED)}]")
        for i, name in enumerate(GR_INFO_WANTED):
            items[i].index = getattr(nv, "NV2080_CTRL_GR_INFO_INDEX_" + name)
        p = nv.ffi.new("NV2080_CTRL_GR_GET_INFO_PARAMS *")
        p.grInfoListSize = len(GR_INFO_WANTED)
        p.grInfoList = items
        self.rm.control(self.h_subdevice, nv.NV2080_CTRL_CMD_GR_GET_INFO, p, "GR_GET_INFO")
        return {name: int(items[i].data) for i, name in enumerate(GR_INFO_WANTED)}

    def _channel_group(self, engine_type: int) -> int:
        p = self.nv.ffi.new("NV_CHANNEL_GROUP_ALLOCATION_PARAMETERS *")
        p.engineType = engine_type
        return self.rm.alloc(self.h_device, self.nv.KEPLER_CHANNEL_GROUP_A, p)

    def _channel(self, slot: int, engine_class: int, tsg: int, ctxshare: int) -> tuple[int, int]:
        """Allocate GPFIFO channel ``slot`` in channel group ``tsg`` (subcontext ``ctxshare``)
        with an engine object on it."""
        nv, rm = self.nv, self.rm
        ring_va = self._rings.va + slot * _RING_REGION
        p = nv.ffi.new("NV_CHANNEL_ALLOC_PARAMS *")
        p.hObjectError = self.notifier.handle
        p.hObjectBuffer = self._rings.handle
        p.gpFifoOffset = ring_va
        p.gpFifoEntries = GPFIFO_ENTRIES
        p.hContextShare = ctxshare
        p.hUserdMemory[0] = self._rings.handle
        p.userdOffset[0] = slot * _RING_REGION + GPFIFO_ENTRIES * 8
        ch = rm.alloc(tsg, nv.HOPPER_CHANNEL_GPFIFO_A, p)
        obj = rm.alloc(ch, engine_class)
        # UVM maps the channel's context buffers; RM schedules no channel of the graphics group
        # in a UVM-owned VA space before that
        ctx_va = self._pool.reserve_gpu_only(CHANNEL_CTX_VA_SIZE, 2 << 20)
        self.uvm.register_channel(self.uuid, rm.fd, rm.client, ch, ctx_va, CHANNEL_CTX_VA_SIZE)
        self._ctx_vas[ch] = ctx_va
        return ch, obj

    def _make_channel(self, slot: int, h_channel: int, kind: str) -> Channel:
        nv = self.nv
        tok = nv.ffi.new("NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS *")
        self.rm.control(h_channel, nv.NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN, tok, "GET_WORK_SUBMIT_TOKEN")
        ring_off = slot * _RING_REGION
        region = self._rings.va + ring_off
        ring = _host_view(region, GPFIFO_ENTRIES * 8).view(np.uint64)
        userd = _host_view(region + GPFIFO_ENTRIES * 8, _USERD_SIZE).view(np.uint32)
        off = hw.ffi.offsetof("HopperAControlGPFifo", "GPPut") // 4
        get = hw.ffi.offsetof("HopperAControlGPFifo", "GPGet") // 4
        pbuf = self._pbs[slot]
        tl = self._timelines[kind]
        me = weakref.ref(self)      # the channel must not keep its device alive (close at GC)

        def on_stall(msg: str) -> GPUHang:
            dev = me()
            return GPUHang(msg, dev._hang_report("timeout") if dev is not None else None)
        return Channel(kind, self.kernel, ring, userd, off, get, pbuf.va,
                       _host_view(pbuf.va, PUSHBUFFER_SIZE).view(np.uint32), tok.workSubmitToken,
                       self._doorbell, tl.done, tl.wait,
                       lambda: getattr(me(), "submit_timeout", 0.0), on_stall)

    def _first_submission(self) -> None:
        """Bind each class to its subchannel and program the memory windows, then wait."""
        nv = self.nv
        q = NVComputeQueue(self)
        q._emit(pb.inc(pb.SUBCH_COMPUTE, hw.NVC86F_SET_OBJECT, 1), nv.HOPPER_COMPUTE_A,
                pb.inc(pb.SUBCH_COMPUTE, hw.NVCBC0_SET_SHADER_SHARED_MEMORY_WINDOW_A, 2),
                SHARED_WINDOW >> 32, SHARED_WINDOW & 0xFFFFFFFF,
                pb.inc(pb.SUBCH_COMPUTE, hw.NVCBC0_SET_SHADER_LOCAL_MEMORY_WINDOW_A, 2),
                LOCAL_WINDOW >> 32, LOCAL_WINDOW & 0xFFFFFFFF)
        q.submit()
        c = NVCopyQueue(self)
        c._emit(pb.inc(pb.SUBCH_COPY, hw.NVC86F_SET_OBJECT, 1), nv.HOPPER_DMA_COPY_A)
        c.submit()
        self.synchronize(timeout=10.0)

    # ---- shader local memory --------------------------------------------------------------
    def _ensure_slm(self, q: NVComputeQueue, per_thread: int) -> None:
        """Grow the channel's local-memory backing so kernels needing ``per_thread`` bytes of
        local memory per thread fit (sizing as the hardware divides it: per warp, per TPC)."""
        with self._lock:
            self._ensure_slm_locked(q, per_thread)

    def _ensure_slm_locked(self, q: NVComputeQueue, per_thread: int) -> None:
        if per_thread <= self._slm_per_thread:
            return
        gr = self.gr
        per_warp = -(-per_thread * 32 // 0x200) * 0x200
        per_tpc = -(-per_warp * gr["MAX_WARPS_PER_SM"] * gr["LITTER_NUM_SM_PER_TPC"] // 0x8000) * 0x8000
        total = per_tpc * gr["LITTER_NUM_TPC_PER_GPC"] * gr["LITTER_NUM_GPCS"]
        total = -(-total // 0x20000) * 0x20000
        if per_thread > LOCAL_WINDOW_SIZE:
            from ..errors import ProgramError
            raise ProgramError(f"{per_thread} bytes of local memory per thread exceed the "
                               f"{LOCAL_WINDOW_SIZE >> 20} MiB local window")
        a = self.mem.vidmem(total)
        self._slm.append(a)       # older backings stay until close: queued kernels may use them
        self._slm_per_thread, self._slm_per_tpc = per_thread, per_tpc
        q._emit_slm(a.va, per_tpc)

    # ---- core hooks ----------------------------------------------------------------------
    def _backend_alloc(self, size: int, host_visible: bool, for_signals: bool = False,
                       for_commands: bool = False) -> Buffer:
        if for_commands:
            # QMDs, constant banks and bound streams in video memory, CPU-written through BAR1:
            # the GPU fetches them once per launch and PCIe round trips would dominate
            a = self.mem.vidmem(size, cpu_map=True)
        else:
            a = self.mem.sysmem(size) if host_visible else self.mem.vidmem(size)
        return Buffer(self, a.va, size, host_visible=host_visible, device=self, meta=a)

    def _backend_free(self, buf: Buffer) -> None:
        self.mem.free(buf.meta)

    def _backend_forget_views(self) -> None:
        self.channels = {}

    def _backend_detach(self, buf: Buffer):
        a = buf.meta
        if not a.cpu_mapped or self._pool is None:
            return None
        pool = self._pool
        pool.detach(a.va)
        return lambda: pool.drop_detached(a.va)

    def _backend_queue(self, kind: str) -> Queue:
        return NVComputeQueue(self) if kind == "compute" else NVCopyQueue(self)

    _launch_now = launch_now           # the function itself: no delegating call per launch

    def _backend_program(self, binary: bytes, name: str) -> NVProgram:
        prog = NVProgram(self, binary, name)
        self.programs.add(prog)
        return prog

    def _backend_error_pending(self) -> bool:
        return self._notifier_error() is not None

    def _notifier_error(self) -> tuple[int, int] | None:
        """(Xid, engine) if RM wrote the channel error notifier."""
        if self.mem is None:
            return None
        n = self._notifier_view[:16].view(np.uint32)
        status = int(n[3]) >> 16
        return (int(n[2]), int(n[3]) & 0xFFFF) if status else None

    def _backend_broken(self) -> bool:
        return self._broken or self._notifier_error() is not None

    def _backend_fill_report(self, report: HangReport) -> None:
        from .diagnose import fill_report
        fill_report(self, report)

    def debugger(self) -> int:
        """Handle of a GT200_DEBUGGER bound to the compute object, allocated on first use
        (only when a report needs it: with a debugger attached RM may defer robust-channel
        recovery, which would delay the error notifier)."""
        if not self._h_debugger:
            nv = self.nv
            p = nv.ffi.new("NV83DE_ALLOC_PARAMETERS *")
            p.hAppClient, p.hClass3dObject = self.rm.client, self.h_compute
            self._h_debugger = self.rm.alloc(self.h_device, nv.GT200_DEBUGGER, p)
        return self._h_debugger

    def _backend_recover(self) -> None:
        """Replace the channel group and both channels after a channel error (or to abandon
        stuck work): free the debugger, release UVM's hold on each channel, free the group (RM
        frees the channels, subcontext and engine objects), clear the notifier and USERD, build
        everything again and re-run the first submission (class binding, memory windows, the
        shader-local-memory setup).

        Lost: every submission not finished when this runs. Their timeline values count as
        finished afterwards (their command memory is reused: no GPU engine will read it again);
        signals they would have set stay as they are, so waits on those time out. Buffers,
        programs, signals and queues survive and may be resubmitted."""
        rm, nv = self.rm, self.nv
        notes = []
        lost = {k: (tl.signal.value, tl.value) for k, tl in self._timelines.items()}
        err = self._notifier_error()
        if self._h_debugger:
            try:
                rm.free(self._h_debugger)
            except HwdrvError as e:
                notes.append(f"freeing the debugger: {e}")
            self._h_debugger = 0
        for ch in (self.h_compute_ch, self.h_copy_ch):
            try:
                # UVM_REGISTER_CHANNEL retained the channel: without this RM keeps it alive
                self.uvm._call("UVM_UNREGISTER_CHANNEL", nv.UVM_UNREGISTER_CHANNEL,
                               "UVM_UNREGISTER_CHANNEL_PARAMS", gpuUuid=self.uuid, hClient=rm.client,
                               hChannel=ch)
            except HwdrvError as e:
                notes.append(f"UVM_UNREGISTER_CHANNEL {ch:#x}: {e}")
            ctx_va = self._ctx_vas.pop(ch, None)
            if ctx_va is not None:
                self._pool.release(ctx_va)
        rm.free(self.h_tsg)
        self._notifier_view[:] = 0
        _host_view(self._rings.va, 2 * _RING_REGION)[:] = 0
        for tl in self._timelines.values():
            tl.signal.value = tl.value
        self._build_channels()
        self.channels = self._host_channels()
        self._broken = False
        self.submissions.clear()
        self._first_submission()
        if self._slm_per_thread:
            q = NVComputeQueue(self)
            q._emit_slm(self._slm[-1].va, self._slm_per_tpc)
            q.submit()
            self.synchronize(timeout=10.0)
        what = ", ".join(f"{k} timeline values {a + 1}..{b}" for k, (a, b) in lost.items() if b > a)
        after = f" after Xid {err[0]} ({nv.XID.get(err[0], '?')})" if err else ""
        self.recoveries.append(f"recovered {self.name}{after}; lost {what or 'no submissions'}"
                               + "".join(f"; {n}" for n in notes))

    # ---- peers (hwdrv/nvidia/peer.py) ----------------------------------------------------
    def _backend_peer_link(self, other: Device):
        from .peer import peer_link
        return peer_link(self, other)

    def _backend_enable_peer(self, other: Device, link) -> None:
        from .peer import enable_peer
        enable_peer(self, other, link)

    def _backend_can_map_host(self, other: Device) -> bool:
        # host memory of any GPU in this UVM VA space maps on this GPU, peers or not
        return (isinstance(other, NVDevice) and other.uvm is not None and self.uvm is not None
                and other.uvm.space is self.uvm.space and other.uuid != self.uuid)

    def _backend_map_foreign(self, buf: Buffer) -> None:
        from .peer import map_foreign
        map_foreign(self, buf)

    def _backend_close(self) -> None:
        self._teardown()

    def _teardown(self) -> None:
        """Release everything bring-up acquired, whatever stage it reached."""
        errors = []
        for step in (lambda: self.uvm and self.uvm.leave(),
                     lambda: self.rm and self.rm.close(),
                     lambda: self.uvm and self.uvm.close(),
                     lambda: self._pool and self._pool.close()):
            try:
                step()
            except HwdrvError as e:
                errors.append(e)
        for fd in self._fds:
            try:
                self.kernel.close(fd)
            except HwdrvError as e:
                errors.append(e)
        self._fds.clear()
        self.rm = self.uvm = self._pool = self.mem = None
        if errors:
            raise errors[0]


def _reserve_pool(kernel: Kernel) -> VAPool:
    """The first free pool slot below 2**40 (never anywhere else: the hardware needs it). When
    all are taken, devices dropped without close() may still await the cycle collector (their
    finalizer frees their slot): collect once and look again."""
    from ..device import collect_dropped_devices
    for attempt in range(2):
        for slot in range(POOL_SLOTS):
            pool = VAPool(kernel, POOL_BASE + slot * POOL_SIZE, POOL_SIZE)
            if pool.at_hint:
                return pool
            pool.close()
        if attempt == 0:
            collect_dropped_devices()
    raise HwdrvError(f"no free {POOL_SIZE >> 30} GiB address range below 2**40 for another device "
                     f"(tried {POOL_SLOTS} slots from {POOL_BASE:#x}); close other devices first")


def _host_view(addr: int, size: int) -> np.ndarray:
    from ..ioctl import hostmem
    return hostmem.view(addr, size)
