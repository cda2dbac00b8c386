"""AMDDevice: an RDNA3 (gfx11) GPU driven through KFD, with no ROCm runtime.

The constructor is the bring-up in KFD's order (reference/amd.md 1.6): topology node -> /dev/kfd
and the node's render node -> GET_VERSION -> ACQUIRE_VM -> process apertures -> a reserved VA
pool (GPU VA == CPU VA) -> event page and events (queue completion, memory fault, hardware
exception) -> the doorbell page -> a PM4 compute queue and an SDMA queue. ``close()`` destroys
the queues, frees every buffer object, unmaps and closes the fds.

Memory: device buffers are VRAM (GPU only); host-visible buffers, rings, signals and command
memory are GTT with COHERENT|UNCACHED (CPU and GPU see each other's writes with no HDP flush:
reference 2.6). Every allocation sits at the same address for the CPU and the GPU.
"""
from __future__ import annotations


from ..device import Device
from ..errors import DeviceNotFound, HwdrvError, UnsupportedDriver
from ..hang import ErrorCode, Fault, HangReport, Launch, QueueState
from ..ioctl.bindings import addressof
from ..ioctl.kernel import MAP_SHARED, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE, Kernel
from ..limits import DeviceLimits
from ..memory.buffer import Buffer
from ..memory.vapool import VAPool
from ..queue import Queue
from ..registry import DeviceInfo
from . import pm4 as P
from . import sdma as D
from . import topology
from .compiler import AMDCompiler
from .diagnose import Debugger, enable_runtime, fill_diagnosis
from .gen import kfd as K
from .gen import kfd_priv as KP
from .kfd import KFD, ffi
from .program import AMDProgram
from .queue import AMDComputeQueue, AMDCopyQueue
from .ring import RPTR_OFFSET, WPTR_OFFSET, Ring
from .samples import BUILTINS, SAMPLES

KFD_PATH = "/dev/kfd"
#: the address window one device's buffers live in (inside the GPUVM aperture KFD reports)
POOL_SIZE = 64 << 30
PAGE = 4096
#: gfx11 launch limits (AMD RDNA3 ISA guide / HSA agent info: 1024 work-items per group, 64 KiB LDS)
MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK_DIMS = (1024, 1024, 1024)
MAX_GRID_DIMS = ((1 << 32) - 1,) * 3
MAX_LDS = 64 << 10
WAVE_SIZE = 32
#: the gfx11 "GPU clock counter" that RELEASE_MEM DATA_SEL 3 and SDMA TIMESTAMP write runs at 100 MHz
TIMESTAMP_HZ = 100_000_000
RING_SIZE = 1 << 20
#: the process doorbell slice: 1024 64-bit doorbells, mapped from /dev/kfd in one piece (reference 1.7)
DOORBELL_SLICE = KP.KFD_MAX_NUM_OF_QUEUES_PER_PROCESS * 8
#: the KFD event page: 4096 slots of 8 bytes (KFD_SIGNAL_EVENT_LIMIT), the size ROCr allocates
EVENT_PAGE_SIZE = K.KFD_SIGNAL_EVENT_LIMIT * 8
#: queue priority in KFD's 0..KFD_MAX_QUEUE_PRIORITY range: the middle (ROCr's normal priority)
QUEUE_PRIORITY = 7
_VRAM = (K.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE | K.KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE
         | K.KFD_IOC_ALLOC_MEM_FLAGS_NO_SUBSTITUTE | K.KFD_IOC_ALLOC_MEM_FLAGS_VRAM)
_GTT = (K.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE | K.KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE
        | K.KFD_IOC_ALLOC_MEM_FLAGS_NO_SUBSTITUTE | K.KFD_IOC_ALLOC_MEM_FLAGS_COHERENT
        | K.KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED | K.KFD_IOC_ALLOC_MEM_FLAGS_GTT)
_EVENT_NAMES = {K.KFD_IOC_EVENT_MEMORY: "MEMORY", K.KFD_IOC_EVENT_HW_EXCEPTION: "HW_EXCEPTION"}


def probe(kernel: Kernel) -> list[DeviceInfo]:
    """The GPU nodes of this machine's KFD (gfx11 ones available, others listed with the reason)."""
    nodes = topology.gpu_nodes(kernel)
    if not nodes or not kernel.exists(KFD_PATH):
        return []
    fd = kernel.open(KFD_PATH, O_RDWR | O_CLOEXEC)
    try:
        v = KFD(kernel, fd).call("GET_VERSION")
        version = f"KFD {v.major_version}.{v.minor_version}"
    finally:
        kernel.close(fd)
    out = []
    for i, n in enumerate(nodes):
        problem = "" if n.supported else f"{n.target} is not supported (hwdrv drives gfx11 / RDNA3)"
        name = "mock:amd" if kernel.is_mock else f"amd:{i}"
        out.append(DeviceInfo(name, "amd", f"{n.target} PCI {n.props.get('vendor_id', 0):04x}:"
                              f"{n.props.get('device_id', 0):04x}, {n.cu_count} CUs, gpu_id {n.gpu_id:#x}",
                              version, mock=kernel.is_mock, available=not problem, problem=problem))
    return out


def open(kernel: Kernel, index: int, name: str) -> "AMDDevice":  # noqa: A001 - registry protocol
    """Open GPU node number ``index`` (registry entry point)."""
    return AMDDevice(kernel, index, name)


class _Bo:
    """A KFD buffer object: handle, GPU (= CPU) address, size, whether the CPU maps it."""
    __slots__ = ("handle", "va", "size", "cpu")

    def __init__(self, handle: int, va: int, size: int, cpu: bool):
        self.handle, self.va, self.size, self.cpu = handle, va, size, cpu


class AMDDevice(Device):
    """An open AMD gfx11 GPU (or the mock of one)."""

    kind = "amd"
    #: the GPU clock counter counts from power-on, not wall-clock time
    timestamps_track_wall_clock = False
    samples = SAMPLES
    timestamp_hz = TIMESTAMP_HZ

    def __init__(self, kernel: Kernel, index: int, name: str):
        super().__init__(name, kernel)
        self._fds: list[int] = []
        self._pool: VAPool | None = None
        self._bos: list[_Bo] = []               # internal buffer objects (queues, events, scratch)
        self._hw_queues: dict[str, int] = {}    # engine -> KFD queue id
        self.rings: dict[str, Ring] = {}
        self._errors: list[tuple[int, dict]] = []  # (event type, payload) of reported faults
        self._scratch: _Bo | None = None
        self._qbufs: dict[str, dict[str, _Bo]] = {}   # engine -> its queue's buffers (kept across recovery)
        self._doorbells: int | None = None            # the process doorbell page, mapped once
        self._builtins: dict[str, AMDProgram] = {}
        #: (timeline value, launches) of recent compute submissions, for hang reports
        try:
            self._bring_up(index)
        except BaseException:
            self._teardown()
            raise

    # ---- bring-up ------------------------------------------------------------------------------
    def _open(self, path: str) -> int:
        fd = self.kernel.open(path, O_RDWR | O_CLOEXEC)
        self._fds.append(fd)
        return fd

    def _bring_up(self, index: int) -> None:
        k = self.kernel
        self.node = node = topology.pick(k, index, self.name)
        if not k.exists(KFD_PATH):
            raise DeviceNotFound(f"{self.name}: {KFD_PATH} does not exist (amdgpu's KFD is not loaded)")
        self.gpu_id = node.gpu_id
        self.kfd = kfd = KFD(k, self._open(KFD_PATH))
        self.drm_fd = self._open(f"/dev/dri/renderD{node.render_minor}")
        v = kfd.call("GET_VERSION")
        if v.major_version != K.KFD_IOCTL_MAJOR_VERSION:
            raise UnsupportedDriver(f"{self.name}: KFD ioctl interface {v.major_version}.{v.minor_version}; hwdrv "
                                    f"speaks {K.KFD_IOCTL_MAJOR_VERSION}.x")
        self.driver_version = f"{v.major_version}.{v.minor_version}"
        kfd.call("ACQUIRE_VM", drm_fd=self.drm_fd, gpu_id=self.gpu_id)
        self._pool = pool = VAPool(k, None, POOL_SIZE)
        self._check_aperture(pool)
        self.arch = node.target
        self.compiler = AMDCompiler(self.arch)
        self.limits = DeviceLimits(max_threads_per_block=MAX_THREADS_PER_BLOCK, max_block_dims=MAX_BLOCK_DIMS,
                                   max_grid_dims=MAX_GRID_DIMS, max_shared_per_block=MAX_LDS, wave_size=WAVE_SIZE)
        self._events()
        self._init_core()
        # KFD's debugger ops (hang reports' wave state) need RUNTIME_ENABLE before the first queue
        self.debugger = Debugger(self.kfd) if enable_runtime(self.kfd) else None
        self._create_queues()

    def _check_aperture(self, pool: VAPool) -> None:
        """The pool must lie inside this GPU's GPUVM aperture (GET_PROCESS_APERTURES_NEW)."""
        a = self.kfd.call("GET_PROCESS_APERTURES_NEW", num_of_nodes=0)
        aps = ffi.new(f"struct kfd_process_device_apertures[{a.num_of_nodes}]")
        self.kfd.call("GET_PROCESS_APERTURES_NEW", kfd_process_device_apertures_ptr=addressof(aps),
                      num_of_nodes=a.num_of_nodes)
        for ap in aps:
            if ap.gpu_id == self.gpu_id:
                if not ap.gpuvm_base <= pool.base and pool.base + POOL_SIZE - 1 <= ap.gpuvm_limit:
                    raise HwdrvError(f"{self.name}: the VA pool [{pool.base:#x}, {pool.base + POOL_SIZE:#x}) is outside "
                                     f"the GPUVM aperture [{ap.gpuvm_base:#x}, {ap.gpuvm_limit:#x}]")
                return
        raise HwdrvError(f"{self.name}: KFD reports no apertures for gpu_id {self.gpu_id:#x}")

    def _events(self) -> None:
        """Event page + the queue-completion signal event (its first CREATE_EVENT registers the
        page), then the memory-fault and hardware-exception events (reference 1.6 steps 7-9)."""
        page = self._bo_alloc(EVENT_PAGE_SIZE, _GTT, cpu=True)
        self._event_page = page
        ev = self.kfd.call("CREATE_EVENT", event_page_offset=page.handle, event_type=K.KFD_IOC_EVENT_SIGNAL,
                           auto_reset=1)
        self.queue_event = ev.event_id
        self.mailbox = page.va + 8 * ev.event_slot_index
        self.memory_event = self.kfd.call("CREATE_EVENT", event_type=K.KFD_IOC_EVENT_MEMORY, auto_reset=1).event_id
        self.hw_event = self.kfd.call("CREATE_EVENT", event_type=K.KFD_IOC_EVENT_HW_EXCEPTION, auto_reset=1).event_id

    def _create_queues(self) -> None:
        """The compute (PM4) and copy (SDMA) queues with their rings, pointer pages, EOP and
        context-save areas; the doorbell page is mapped on the first one (bring-up and recovery)."""
        sizes = self.node.queue_sizes()
        for kind in self.engines:
            q = self._queue_buffers(kind)
            args = dict(ring_base_address=q["ring"].va, ring_size=RING_SIZE, gpu_id=self.gpu_id,
                        write_pointer_address=q["gart"].va + WPTR_OFFSET, read_pointer_address=q["gart"].va + RPTR_OFFSET,
                        queue_percentage=K.KFD_MAX_QUEUE_PERCENTAGE, queue_priority=QUEUE_PRIORITY,
                        queue_type=K.KFD_IOC_QUEUE_TYPE_COMPUTE if kind == "compute" else K.KFD_IOC_QUEUE_TYPE_SDMA)
            if kind == "compute":
                args.update(eop_buffer_address=q["eop"].va, eop_buffer_size=sizes.eop_buffer_size,
                            ctx_save_restore_address=q["cwsr"].va, ctx_save_restore_size=sizes.cwsr_size,
                            ctl_stack_size=sizes.ctl_stack_size)
            a = self.kfd.call("CREATE_QUEUE", **args)
            self._hw_queues[kind] = a.queue_id
            if self._doorbells is None:
                self._doorbells = self._pool.place(DOORBELL_SLICE, PAGE, self.kfd.fd,
                                                   a.doorbell_offset & ~(DOORBELL_SLICE - 1), PROT_READ | PROT_WRITE,
                                                   MAP_SHARED)
            doorbell = self._doorbells + (a.doorbell_offset & (DOORBELL_SLICE - 1))
            self.rings[kind] = Ring(self.kernel, q["ring"].va, RING_SIZE, q["gart"].va, doorbell, kind == "copy")

    def _queue_buffers(self, kind: str) -> dict:
        bufs = self._qbufs
        if kind not in bufs:
            sizes = self.node.queue_sizes()
            b = {"ring": self._bo_alloc(RING_SIZE, _GTT, cpu=True), "gart": self._bo_alloc(PAGE, _GTT, cpu=True)}
            if kind == "compute":
                b["eop"] = self._bo_alloc(sizes.eop_buffer_size, _VRAM, cpu=False)
                # system memory the CPU maps, as libhsakmt allocates it: hang reports read the saved waves
                b["cwsr"] = self._bo_alloc((sizes.cwsr_size + sizes.debug_memory_size)
                                           * max(self.node.props.get("num_xcc", 1), 1), _GTT, cpu=True)
            bufs[kind] = b
        return bufs[kind]

    # ---- buffer objects ------------------------------------------------------------------------
    def _bo_alloc(self, size: int, flags: int, cpu: bool, internal: bool = True) -> _Bo:
        """ALLOC_MEMORY_OF_GPU at a pool address, MAP_MEMORY_TO_GPU, and (``cpu``) the render-node
        mapping over the same address."""
        size = (size + PAGE - 1) // PAGE * PAGE
        va = self._pool.reserve_gpu_only(size, PAGE)
        try:
            a = self.kfd.call("ALLOC_MEMORY_OF_GPU", va_addr=va, size=size, gpu_id=self.gpu_id, flags=flags)
        except BaseException:
            self._pool.release(va)
            raise
        bo = _Bo(a.handle, va, size, cpu)
        try:
            self.kfd.map_to_gpu(a.handle, self.gpu_id)
            if cpu:
                self._pool.replace(va, self.drm_fd, a.mmap_offset, PROT_READ | PROT_WRITE, MAP_SHARED)
        except BaseException:
            self._bo_free(bo, mapped=False)
            raise
        if internal:
            self._bos.append(bo)
        return bo

    def _bo_free(self, bo: _Bo, mapped: bool = True) -> None:
        """UNMAP, unmap the CPU side (PROT_NONE back over the range), FREE (reference 1.4)."""
        if mapped:
            self.kfd.unmap_from_gpu(bo.handle, self.gpu_id)
        self._pool.release(bo.va)
        self.kfd.call("FREE_MEMORY_OF_GPU", handle=bo.handle)

    def _backend_alloc(self, size: int, host_visible: bool, for_signals: bool = False,
                       for_commands: bool = False) -> Buffer:
        cpu = host_visible or for_signals or for_commands
        bo = self._bo_alloc(size, _GTT if cpu else _VRAM, cpu, internal=False)
        return Buffer(self, bo.va, size, host_visible=cpu, device=self, meta=bo)

    def _backend_free(self, buf: Buffer) -> None:
        self._bo_free(buf.meta)

    def _backend_forget_views(self) -> None:
        self.rings = {}

    def _backend_detach(self, buf: Buffer):
        bo = buf.meta
        if not bo.cpu or self._pool is None:
            return None
        pool = self._pool
        pool.detach(bo.va)
        return lambda: pool.drop_detached(bo.va)

    def scratch(self, nbytes: int) -> int:
        """GPU-only scratch memory of at least ``nbytes`` (it grows; an outgrown block stays
        allocated until the device closes, as queued dispatches may still use it)."""
        if self._scratch is None or self._scratch.size < nbytes:
            self._scratch = self._bo_alloc(max(nbytes, 2 * (self._scratch.size if self._scratch else 0)), _VRAM, False)
        return self._scratch.va

    # ---- queues and programs -----------------------------------------------------------------------
    def _backend_queue(self, kind: str) -> Queue:
        return AMDComputeQueue(self) if kind == "compute" else AMDCopyQueue(self)

    def _backend_program(self, binary: bytes, name: str) -> AMDProgram:
        p = AMDProgram(self, binary, name)
        self.programs.add(p)
        return p

    def builtin(self, name: str) -> AMDProgram:
        """hwdrv's own kernel ``name`` (the compute-queue copy blits), loaded once."""
        p = self._builtins.get(name)
        if p is None:
            binary, kernel = BUILTINS[name]
            p = self._builtins[name] = self.program(binary, kernel)
        return p

    def wake_words_pm4(self) -> list[int]:
        """PM4: mark the completion event's mailbox slot and interrupt with its id (reference 1.8)."""
        return P.release_mem(self.mailbox, 1, P.DATA_SEL_32, P.INT_SEL_AFTER_WRITE_CONFIRM, self.queue_event)

    def wake_words_sdma(self) -> list[int]:
        """SDMA: FENCE into the mailbox slot, then TRAP with the event id."""
        return D.fence(self.mailbox, 1) + D.trap(self.queue_event)

    # ---- waiting and errors ---------------------------------------------------------------------------
    def _backend_sleep(self, signal, value: int, seconds: float) -> None:
        """Sleep in WAIT_EVENTS until a queue reports completion or a fault, at most ``seconds``."""
        self._wait_events([self.queue_event, self.memory_event, self.hw_event], max(1, int(seconds * 1000)))

    def _wait_events(self, ids: list[int], timeout_ms: int) -> None:
        result, data = self.kfd.wait_events(ids, timeout_ms)
        if result != K.KFD_IOC_WAIT_RESULT_COMPLETE:
            return
        for i, eid in enumerate(ids):
            if eid == self.memory_event and data[i].memory_exception_data.gpu_id:
                m = data[i].memory_exception_data
                self._errors.append((K.KFD_IOC_EVENT_MEMORY, {
                    "va": int(m.va), "not_present": int(m.failure.NotPresent), "read_only": int(m.failure.ReadOnly),
                    "no_execute": int(m.failure.NoExecute), "imprecise": int(m.failure.imprecise),
                    "error_type": int(m.ErrorType)}))
            elif eid == self.hw_event and data[i].hw_exception_data.gpu_id:
                h = data[i].hw_exception_data
                self._errors.append((K.KFD_IOC_EVENT_HW_EXCEPTION, {
                    "reset_type": int(h.reset_type), "reset_cause": int(h.reset_cause),
                    "memory_lost": int(h.memory_lost)}))

    def _backend_error_pending(self) -> bool:
        if not self._errors:
            self._wait_events([self.memory_event, self.hw_event], 0)
        return bool(self._errors)

    def _backend_fill_report(self, report: HangReport) -> None:
        report.unit_name = "CU"
        if self._errors:
            etype, _ = self._errors[0]
            report.error = ErrorCode("amd", "KFD event", etype, _EVENT_NAMES[etype])
            if report.cause == "error":
                report.cause = "mmu_fault" if etype == K.KFD_IOC_EVENT_MEMORY else "exception"
        for etype, d in self._errors:
            if etype == K.KFD_IOC_EVENT_MEMORY:
                access = "write to read-only page" if d["read_only"] else "no page present" if d["not_present"] else \
                    "no-execute page" if d["no_execute"] else ""
                report.faults.append(Fault(d["va"], access=access, kind="GPUVM fault",
                                           source="KFD memory exception event"
                                           + (" (imprecise address)" if d["imprecise"] else "")))
            else:
                report.notes.append(f"KFD hardware exception: reset_type {d['reset_type']}, reset_cause "
                                    f"{d['reset_cause']} ({'hang' if d['reset_cause'] == 0 else 'ECC'}), "
                                    f"memory_lost {d['memory_lost']}")
        for kind, ring in self.rings.items():
            report.queues.append(QueueState(f"{kind} (KFD queue {self._hw_queues.get(kind)}, "
                                            f"{'SDMA' if kind == 'copy' else 'PM4'})", get=ring.rptr, put=ring.wptr,
                                            units="dwords"))
        tl = self._timelines.get("compute")
        done = tl.signal.value if tl is not None else 0
        for value, launches in self.submissions:
            if value <= done:
                continue
            for prog, grid, block, args, ka_va in launches:
                report.launches.append(Launch(prog.name, tuple(grid), tuple(block), _kernargs(prog, ka_va),
                                              prog.code_va, f"compute submission {value}, kernargs at {ka_va:#x}"))
        report.notes.extend(self.recoveries[-3:])
        fill_diagnosis(self, report)

    def _backend_recover(self) -> None:
        """Destroy and re-create both hardware queues (after a queue error or memory exception, or to
        abandon stuck work). Lost: every submission not finished when this runs; their timeline values
        count as finished afterwards (no engine will read their command memory again), signals they
        would have set stay as they are. Buffers, programs, signals and queue objects survive."""
        lost = {k: (tl.signal.value, tl.value) for k, tl in self._timelines.items()}
        errors = [_EVENT_NAMES[e] for e, _ in self._errors]
        for kind, qid in list(self._hw_queues.items()):
            self.kfd.call("DESTROY_QUEUE", queue_id=qid)
            del self._hw_queues[kind]
        self._wait_events([self.memory_event, self.hw_event], 0)     # what the dying queues reported
        self._errors.clear()
        for ring in self.rings.values():
            ring.reset()
        for tl in self._timelines.values():
            tl.signal.value = tl.value
        self._create_queues()
        self.submissions.clear()
        what = ", ".join(f"{k} timeline values {a + 1}..{b}" for k, (a, b) in lost.items() if b > a)
        self.recoveries.append(f"recovered {self.name}" + (f" after KFD {'/'.join(errors)} event" if errors else "")
                               + f"; lost {what or 'no submissions'}")

    def _backend_close(self) -> None:
        self._teardown()

    def _teardown(self) -> None:
        """Release everything bring-up acquired, whatever stage it reached."""
        errors: list[HwdrvError] = []

        def attempt(fn, *a) -> None:
            try:
                fn(*a)
            except HwdrvError as e:
                errors.append(e)

        kfd = getattr(self, "kfd", None)
        if kfd is not None:
            for qid in self._hw_queues.values():
                attempt(lambda q=qid: kfd.call("DESTROY_QUEUE", queue_id=q))
            self._hw_queues.clear()
            # the event page stays: KFD keeps it until the process closes /dev/kfd
            for bo in self._bos:
                if bo is not getattr(self, "_event_page", None):
                    attempt(self._bo_free, bo)
            self._bos.clear()
            for name in ("queue_event", "memory_event", "hw_event"):
                if hasattr(self, name):
                    attempt(lambda e=getattr(self, name): kfd.call("DESTROY_EVENT", event_id=e))
        for fd in reversed(self._fds):
            attempt(self.kernel.close, fd)
        self._fds.clear()
        if self._pool is not None:
            attempt(self._pool.close)
            self._pool = None
        if errors:
            raise errors[0]


def _kernargs(prog: AMDProgram, ka_va: int) -> list[str]:
    """The explicit arguments as the GPU reads them from the kernarg segment (patched values included)."""
    from ..ioctl import hostmem
    raw = hostmem.read(ka_va, prog.param_size)
    return [hex(int.from_bytes(raw[p.offset:p.offset + p.size], "little")) if p.size <= 8 else f"<{p.size} bytes>"
            for p in prog.params]
