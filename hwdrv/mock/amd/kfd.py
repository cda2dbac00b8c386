"""The mock /dev/kfd: per-open process state and the ioctls, with kfd_chardev.c's checks.

Each rule cites its kernel function in docs/amd-kfd-rules.md. Argument copying follows kfd_ioctl:
the request's nr selects the handler; the user's struct (size from the request word) is copied
into a kernel-sized buffer, zero-extended if shorter, and copied back (IOC_OUT) at the user's size.
"""
from __future__ import annotations

import errno as E
import threading
import time

from hwdrv.amd.gen import kfd as K
from hwdrv.amd.gen import kfd_priv as P
from hwdrv.errors import InvalidArgument, OutOfMemory
from hwdrv.ioctl import hostmem
from hwdrv.ioctl.ioc import IOC_READ, IOC_WRITE, decode
from hwdrv.ioctl.kernel import MAP_FIXED
from hwdrv.mock.kernel import Errno, MockDriver, MockKernel
from hwdrv.mock.physmem import PhysBlock

from . import queues as Q
from .dbg_trap import dbg_trap
from .events import EventTable
from .gpu import MockAmdGpu
from .memory import Bo, domain_of
from .render import RenderDriver, RenderFile
from .topology import PAGE

F = K.ffi
DOORBELL_SLICE = P.KFD_MAX_NUM_OF_QUEUES_PER_PROCESS * 8       # kfd_doorbell_process_slice: 8-byte doorbells


def mmap_gpu_id(offset: int) -> int:
    return (offset & P.KFD_MMAP_GPU_ID_MASK) >> P.KFD_MMAP_GPU_ID_SHIFT


class KfdProcess:
    """One open of /dev/kfd (a kfd_process with its one per-device data, pdd)."""

    def __init__(self, driver: "KfdDriver"):
        self.driver, self.gpu = driver, driver.gpu
        self.lock = threading.RLock()
        self.drm_file: RenderFile | None = None         # pdd->drm_file after ACQUIRE_VM
        self.bos: dict[int, Bo] = {}                     # handle -> Bo
        self.queues: dict[int, Q.Queue] = {}
        self.events = EventTable()
        self.doorbells = Q.DoorbellAllocator(self.gpu.node)
        self.doorbell_page = PhysBlock(DOORBELL_SLICE, "kfd-doorbells")
        self.doorbell_maps: dict[int, int] = {}         # user address -> size of doorbell mmaps
        self.mmio_page = PhysBlock(PAGE, "kfd-mmio-remap")
        self.runtime_enabled = False
        self.scratch_va = 0
        self.trap_handler = (0, 0)
        self.memory_policy = None
        self.closed = False
        self.opens = 1                                   # fds sharing this process (kfd_open)

    # helpers ------------------------------------------------------------------------------------------
    def bound(self, gpu_id: int, what: str, errno: int = E.ENODEV) -> None:
        """kfd_process_device_data_by_id + kfd_bind_process_to_device: the GPU must exist and the
        process must have acquired its VM (pdd->drm_priv) first."""
        if gpu_id != self.gpu.gpu_id:
            raise Errno(E.EINVAL, f"{what}: no GPU with gpu_id {gpu_id:#x} (this system has {self.gpu.gpu_id:#x})")
        if self.drm_file is None:
            raise Errno(errno, f"{what}: the process has not bound gpu {gpu_id:#x} yet: call ACQUIRE_VM with the "
                               "render node fd first")

    def bo(self, handle: int, what: str) -> Bo:
        b = self.bos.get(handle)
        if b is None:
            raise Errno(E.EINVAL, f"{what}: no buffer with handle {handle:#x} in this process (freed already, or "
                                  "from another process)")
        return b

    def mapped_bo_at(self, va: int) -> Bo | None:
        for b in self.bos.values():
            if b.mapped_on and b.contains(va):
                return b
        return None

    def queue_for_doorbell(self, byte_offset: int) -> Q.Queue | None:
        for q in self.queues.values():
            if q.doorbell_byte_offset == byte_offset:
                return q
        return None

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for q in list(self.queues.values()):
                self._release_queue(q)
            self.queues.clear()
            for b in list(self.bos.values()):
                self._drop_bo(b)
            self.bos.clear()
            self.events.close()
            for addr in list(self.doorbell_maps):
                self.driver.kernel.unregister_mmio(addr)
            self.doorbell_maps.clear()
            self.doorbell_page.close()
            self.mmio_page.close()

    def _release_queue(self, q: Q.Queue) -> None:
        self.gpu.release_queue(q)
        for b in q.bos:
            b.queue_refs -= 1
        self.doorbells.release(q)

    def _drop_bo(self, b: Bo) -> None:
        if b.mapped_on:
            self.gpu.page_table.unmap(b.va, b.size)
            b.mapped_on.clear()
        if b.block is not None:
            (self.gpu.vram if b.domain == "VRAM" else self.gpu.gtt).free(b.block)
            self.driver.render.drop(b.mmap_offset)


class KfdDriver(MockDriver):
    """/dev/kfd. ``gpu`` is the one GPU; ``render`` the render node driver (BO mmaps)."""
    name = "amdkfd"

    def __init__(self, kernel: MockKernel, gpu: MockAmdGpu, render: RenderDriver):
        self.kernel, self.gpu, self.render = kernel, gpu, render
        self.processes: list[KfdProcess] = []

    def open(self, path: str, flags: int) -> KfdProcess:
        # kfd_open -> kfd_create_process: one kfd_process per mm; "a prior open of /dev/kfd could
        # have already created the process", then this open shares it (one reference per fd).
        # A mock kernel serves one process, so every open shares its one KfdProcess.
        live = [p for p in self.processes if not p.closed]
        if live:
            live[0].opens += 1
            return live[0]
        p = KfdProcess(self)
        self.processes.append(p)
        return p

    def close(self, state: KfdProcess) -> None:
        # kfd_release -> kfd_unref_process: the process goes with its last reference
        state.opens -= 1
        if state.opens == 0:
            state.close()
            self.processes.remove(state)

    # --- dispatch (kfd_ioctl) -------------------------------------------------------------------------
    def ioctl(self, state: KfdProcess, request: int, arg: int) -> int:
        req = decode(request)
        ent = _IOCTLS.get(req.nr)
        if ent is None or req.type != ord("K"):
            raise Errno(E.ENOTTY, f"kfd_ioctl: nr {req.nr:#x} is not a KFD ioctl this kernel serves")
        name, struct, fn = ent
        ksize = F.sizeof(struct) if struct else 0
        usize = req.size
        buf = F.new("char[]", max(ksize, 1))
        if req.dir & IOC_WRITE and usize:
            if not arg:
                raise Errno(E.EFAULT, f"{name}: NULL argument")
            F.memmove(buf, hostmem.read(arg, min(usize, ksize)), min(usize, ksize))
        args = F.cast(struct + " *", buf) if struct else None
        with state.lock:
            if state.closed:
                raise Errno(E.EBADF, "the KFD process was closed")
            fn(self, state, args)
        if req.dir & IOC_READ and usize:
            hostmem.write(arg, bytes(F.buffer(buf, min(usize, ksize))))
        return 0

    # --- version / VM / apertures / misc ---------------------------------------------------------------
    def get_version(self, p: KfdProcess, a) -> None:
        a.major_version, a.minor_version = K.KFD_IOCTL_MAJOR_VERSION, K.KFD_IOCTL_MINOR_VERSION

    def acquire_vm(self, p: KfdProcess, a) -> None:
        try:
            drm = self.kernel.state_of(a.drm_fd)
        except Exception:  # noqa: BLE001 - any bad fd is EINVAL (fget fails)
            drm = None
        if not isinstance(drm, RenderFile) or drm.gpu is not self.gpu:
            raise Errno(E.EINVAL, f"ACQUIRE_VM: drm_fd {a.drm_fd} is not an open render node of gpu {a.gpu_id:#x}")
        if a.gpu_id != self.gpu.gpu_id:
            raise Errno(E.EINVAL, f"ACQUIRE_VM: no GPU with gpu_id {a.gpu_id:#x}")
        if p.drm_file is not None:
            if p.drm_file is not drm:
                raise Errno(E.EBUSY, "ACQUIRE_VM: the process already acquired this GPU's VM through another drm fd")
            return
        p.drm_file = drm

    def runtime_enable(self, p: KfdProcess, a) -> None:
        if a.mode_mask & K.KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK:
            if p.queues:
                raise Errno(E.EEXIST, "RUNTIME_ENABLE: the process already has user queues")
            p.runtime_enabled = True
        else:
            p.runtime_enabled = False
        a.capabilities_mask = 0

    def _apertures(self, ap) -> None:
        """kfd_init_apertures_v9 for the one GPU (47-bit GPUVM)."""
        ap.lds_base, ap.lds_limit = P.LDS_APP_BASE_V9, P.LDS_APP_LIMIT_V9
        ap.scratch_base, ap.scratch_limit = P.SCRATCH_APP_BASE_V9, P.SCRATCH_APP_LIMIT_V9
        ap.gpuvm_base, ap.gpuvm_limit = P.SVM_USER_BASE, (1 << 47) - 1
        ap.gpu_id = self.gpu.gpu_id

    def get_process_apertures(self, p: KfdProcess, a) -> None:
        """The deprecated fixed-array form: one entry per process device (at most NUM_OF_SUPPORTED_GPUS)."""
        self._apertures(a.process_apertures[0])
        a.num_of_nodes = 1

    def get_process_apertures_new(self, p: KfdProcess, a) -> None:
        n_pdds = 1
        if a.num_of_nodes == 0:
            a.num_of_nodes = n_pdds
            return
        if a.num_of_nodes > n_pdds:
            raise Errno(E.EINVAL, f"GET_PROCESS_APERTURES_NEW: num_of_nodes {a.num_of_nodes} > the {n_pdds} GPU node(s)")
        ap = F.new("struct kfd_process_device_apertures *")
        self._apertures(ap)
        if not a.kfd_process_device_apertures_ptr:
            raise Errno(E.EFAULT, "GET_PROCESS_APERTURES_NEW: NULL kfd_process_device_apertures_ptr")
        hostmem.write(a.kfd_process_device_apertures_ptr, bytes(F.buffer(ap)))
        a.num_of_nodes = n_pdds

    def get_clock_counters(self, p: KfdProcess, a) -> None:
        a.gpu_clock_counter = self.gpu.clock_counter() if a.gpu_id == self.gpu.gpu_id else 0
        a.cpu_clock_counter = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
        a.system_clock_counter = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        a.system_clock_freq = 1_000_000_000

    def set_memory_policy(self, p: KfdProcess, a) -> None:
        ok = (K.KFD_IOC_CACHE_POLICY_COHERENT, K.KFD_IOC_CACHE_POLICY_NONCOHERENT)
        if a.default_policy not in ok or a.alternate_policy not in ok:
            raise Errno(E.EINVAL, f"SET_MEMORY_POLICY: policies must be COHERENT or NONCOHERENT "
                                  f"(got {a.default_policy}, {a.alternate_policy})")
        p.bound(a.gpu_id, "SET_MEMORY_POLICY", E.ESRCH)
        p.memory_policy = (a.default_policy, a.alternate_policy, a.alternate_aperture_base, a.alternate_aperture_size)

    def set_scratch_backing_va(self, p: KfdProcess, a) -> None:
        p.bound(a.gpu_id, "SET_SCRATCH_BACKING_VA", E.ESRCH)
        p.scratch_va = a.va_addr

    def set_trap_handler(self, p: KfdProcess, a) -> None:
        p.bound(a.gpu_id, "SET_TRAP_HANDLER", E.ESRCH)
        p.trap_handler = (a.tba_addr, a.tma_addr)

    def available_memory(self, p: KfdProcess, a) -> None:
        p.bound(a.gpu_id, "AVAILABLE_MEMORY", E.EINVAL)
        a.available = self.gpu.vram.capacity - self.gpu.vram.used

    # --- memory ---------------------------------------------------------------------------------------
    def alloc_memory_of_gpu(self, p: KfdProcess, a) -> None:
        flags, size = a.flags, a.size
        if size == 0:
            raise Errno(E.EINVAL, "ALLOC_MEMORY_OF_GPU: size is 0")
        if a.gpu_id != self.gpu.gpu_id:
            raise Errno(E.EINVAL, f"ALLOC_MEMORY_OF_GPU: no GPU with gpu_id {a.gpu_id:#x}")
        domain = domain_of(flags)
        if domain == "VRAM" and flags & K.KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC and not self.gpu.node.large_bar:
            raise Errno(E.EINVAL, "ALLOC_MEMORY_OF_GPU: host-visible (PUBLIC) VRAM on a small-BAR GPU is not "
                                  "allowed: enable resizable BAR")
        p.bound(a.gpu_id, "ALLOC_MEMORY_OF_GPU")
        if domain is None:
            raise Errno(E.EINVAL, f"ALLOC_MEMORY_OF_GPU: flags {flags:#x} select no memory type (VRAM, GTT, USERPTR, "
                                  "DOORBELL or MMIO_REMAP)")
        if a.va_addr % PAGE:
            raise Errno(E.EINVAL, f"ALLOC_MEMORY_OF_GPU: va_addr {a.va_addr:#x} is not page aligned")
        block, host, offset = None, 0, a.mmap_offset
        if domain == "DOORBELL":
            if size != DOORBELL_SLICE:
                raise Errno(E.EINVAL, f"ALLOC_MEMORY_OF_GPU: a DOORBELL buffer must be the process doorbell slice "
                                      f"({DOORBELL_SLICE:#x} bytes), not {size:#x}")
            host = p.doorbell_page.host_addr
            offset = P.KFD_MMAP_TYPE_DOORBELL | (a.gpu_id << P.KFD_MMAP_GPU_ID_SHIFT)
        elif domain == "MMIO_REMAP":
            if size != PAGE:
                raise Errno(E.EINVAL, f"ALLOC_MEMORY_OF_GPU: an MMIO_REMAP buffer must be one page, not {size:#x}")
            host = p.mmio_page.host_addr
            offset = P.KFD_MMAP_TYPE_MMIO | (a.gpu_id << P.KFD_MMAP_GPU_ID_SHIFT)
        elif domain == "USERPTR":
            if offset % PAGE or size % PAGE or not offset:
                raise Errno(E.EINVAL, f"ALLOC_MEMORY_OF_GPU: USERPTR memory {offset:#x}+{size:#x} must be a "
                                      "non-NULL page-aligned CPU range (mmap_offset = its address)")
            host = offset
        else:
            pool = self.gpu.vram if domain == "VRAM" else self.gpu.gtt
            try:
                block = pool.alloc(size, f"kfd-{domain.lower()}")
            except OutOfMemory as e:
                raise Errno(E.ENOMEM, f"ALLOC_MEMORY_OF_GPU: {e}") from None
            host = block.host_addr
        idx = next(i for i in range(len(p.bos) + 1) if (a.gpu_id << 32 | i) not in p.bos)   # idr_alloc: lowest free
        handle = a.gpu_id << 32 | idx
        b = Bo(handle, a.va_addr, (size + PAGE - 1) // PAGE * PAGE, flags, domain, host, block)
        if block is not None:
            offset = self.render.new_offset(b, b.size)
        b.mmap_offset = offset
        p.bos[handle] = b
        a.handle, a.mmap_offset = handle, offset

    def free_memory_of_gpu(self, p: KfdProcess, a) -> None:
        if p.events.page_handle and a.handle == p.events.page_handle:
            raise Errno(E.EPERM, "FREE_MEMORY_OF_GPU: this buffer is the process's event page (in use until the "
                                 "process exits)")
        b = p.bo(a.handle, "FREE_MEMORY_OF_GPU")
        if b.mapped_on:
            raise Errno(E.EBUSY, f"FREE_MEMORY_OF_GPU: buffer {a.handle:#x} is still mapped on the GPU: "
                                 "UNMAP_MEMORY_FROM_GPU first")
        p._drop_bo(b)
        del p.bos[a.handle]

    def _device_ids(self, a, what: str) -> list[int]:
        if not a.n_devices:
            raise Errno(E.EINVAL, f"{what}: n_devices is 0")
        if a.n_success > a.n_devices:
            raise Errno(E.EINVAL, f"{what}: n_success {a.n_success} > n_devices {a.n_devices}")
        if not a.device_ids_array_ptr:
            raise Errno(E.EFAULT, f"{what}: NULL device_ids_array_ptr")
        raw = hostmem.read(a.device_ids_array_ptr, 4 * a.n_devices)
        return [int.from_bytes(raw[4 * i:4 * i + 4], "little") for i in range(a.n_devices)]

    def map_memory_to_gpu(self, p: KfdProcess, a) -> None:
        ids = self._device_ids(a, "MAP_MEMORY_TO_GPU")
        b = p.bo(a.handle, "MAP_MEMORY_TO_GPU")
        for i in range(a.n_success, a.n_devices):
            p.bound(ids[i], "MAP_MEMORY_TO_GPU", E.EINVAL)
            if ids[i] not in b.mapped_on:
                try:
                    self.gpu.page_table.map(b.va, b.host_addr, b.size, writable=b.writable)
                except InvalidArgument as e:
                    raise Errno(E.EINVAL, f"MAP_MEMORY_TO_GPU: VA range [{b.va:#x}, {b.va + b.size:#x}) conflicts "
                                          f"with an existing mapping (amdgpu_vm_bo_map): {e}") from None
                b.mapped_on.add(ids[i])
            a.n_success = i + 1

    def unmap_memory_from_gpu(self, p: KfdProcess, a) -> None:
        ids = self._device_ids(a, "UNMAP_MEMORY_FROM_GPU")
        b = p.bo(a.handle, "UNMAP_MEMORY_FROM_GPU")
        for i in range(a.n_success, a.n_devices):
            p.bound(ids[i], "UNMAP_MEMORY_FROM_GPU", E.EINVAL)
            if ids[i] not in b.mapped_on:
                raise Errno(E.EINVAL, f"UNMAP_MEMORY_FROM_GPU: buffer {a.handle:#x} is not mapped on gpu {ids[i]:#x}")
            if b.queue_refs:
                raise Errno(E.EBUSY, f"UNMAP_MEMORY_FROM_GPU: buffer {a.handle:#x} backs {b.queue_refs} live queue(s): "
                                     "DESTROY_QUEUE first")
            self.gpu.page_table.unmap(b.va, b.size)
            b.mapped_on.discard(ids[i])
            a.n_success = i + 1

    # --- queues ---------------------------------------------------------------------------------------
    def create_queue(self, p: KfdProcess, a) -> None:
        ring_size = Q.check_properties(a)
        if a.gpu_id != self.gpu.gpu_id:
            raise Errno(E.EINVAL, f"CREATE_QUEUE: no GPU with gpu_id {a.gpu_id:#x}")
        p.bound(a.gpu_id, "CREATE_QUEUE", E.ESRCH)
        if len(p.queues) >= P.KFD_MAX_NUM_OF_QUEUES_PER_PROCESS:
            raise Errno(E.ENOMEM, f"CREATE_QUEUE: the process has {len(p.queues)} queues, the limit "
                                  "(KFD_MAX_NUM_OF_QUEUES_PER_PROCESS)")
        bos = Q.acquire_buffers(a, ring_size, self.gpu.node, p.mapped_bo_at)
        if a.queue_type in Q.SDMA_TYPES:
            engine, sq, dbi = p.doorbells.sdma()
        else:
            engine, sq, dbi = 0, 0, p.doorbells.compute()
        qid = next(i for i in range(len(p.queues) + 1) if i not in p.queues)
        q = Q.Queue(qid, a.queue_type, a.gpu_id, a.ring_base_address, ring_size, a.read_pointer_address,
                    a.write_pointer_address, dbi, a.queue_percentage, a.queue_priority, a.eop_buffer_address,
                    a.eop_buffer_size, a.ctx_save_restore_address, a.ctx_save_restore_size, a.ctl_stack_size,
                    engine, sq, bos, owner=p)
        for b in bos:
            b.queue_refs += 1
        p.queues[qid] = q
        a.queue_id = qid
        a.doorbell_offset = P.KFD_MMAP_TYPE_DOORBELL | (a.gpu_id << P.KFD_MMAP_GPU_ID_SHIFT) | q.doorbell_byte_offset
        a.ring_size = ring_size

    def destroy_queue(self, p: KfdProcess, a) -> None:
        q = p.queues.pop(a.queue_id, None)
        if q is None:
            raise Errno(E.EINVAL, f"DESTROY_QUEUE: queue id {a.queue_id} does not match any queue of this process")
        p._release_queue(q)

    def update_queue(self, p: KfdProcess, a) -> None:
        if a.queue_percentage > K.KFD_MAX_QUEUE_PERCENTAGE or a.queue_priority > K.KFD_MAX_QUEUE_PRIORITY:
            raise Errno(E.EINVAL, "UPDATE_QUEUE: queue_percentage <= 100 and queue_priority <= 15 required")
        if a.ring_size and not Q._is_pow2(a.ring_size):
            raise Errno(E.EINVAL, f"UPDATE_QUEUE: ring_size {a.ring_size:#x} must be a power of 2 (or 0)")
        q = p.queues.get(a.queue_id)
        if q is None:
            raise Errno(E.EFAULT, f"UPDATE_QUEUE: no queue {a.queue_id} (pqm_update_queue_properties)")
        q.ring_base, q.ring_size = a.ring_base_address, max(a.ring_size, P.KFD_MIN_QUEUE_RING_SIZE)
        q.percentage, q.priority = a.queue_percentage, a.queue_priority

    # --- events ---------------------------------------------------------------------------------------
    def create_event(self, p: KfdProcess, a) -> None:
        if a.event_page_offset:
            handle = a.event_page_offset
            if (handle >> 32) != self.gpu.gpu_id:
                raise Errno(E.EINVAL, f"CREATE_EVENT: event page handle {handle:#x} names no GPU of this process")
            b = p.bo(handle, "CREATE_EVENT (event page)")
            if b.domain != "GTT":
                raise Errno(E.EINVAL, f"CREATE_EVENT: the event page must be a GTT buffer, not {b.domain} "
                                      "(amdgpu_amdkfd_gpuvm_map_gtt_bo_to_kernel)")
            p.events.set_page(b.host_addr, b.size, handle)
        eid, trig, off, slot = p.events.create(a.event_type, bool(a.auto_reset))
        a.event_id, a.event_trigger_data, a.event_slot_index = eid, trig, slot
        if off:
            a.event_page_offset = off

    def destroy_event(self, p: KfdProcess, a) -> None:
        p.events.destroy(a.event_id)

    def set_event(self, p: KfdProcess, a) -> None:
        p.events.set(a.event_id)

    def reset_event(self, p: KfdProcess, a) -> None:
        p.events.reset(a.event_id)

    def wait_events(self, p: KfdProcess, a) -> None:
        one = F.sizeof("struct kfd_event_data")
        if a.num_events and not a.events_ptr:
            raise Errno(E.EFAULT, "WAIT_EVENTS: NULL events_ptr")
        raw = bytearray(hostmem.read(a.events_ptr, one * a.num_events)) if a.num_events else bytearray()
        data = F.from_buffer("struct kfd_event_data[]", raw)
        ids = [data[i].event_id for i in range(a.num_events)]
        # sleep without the process lock (the GPU fires events from its threads); events have their own
        p.lock.release()
        try:
            result, fired = p.events.wait(ids, bool(a.wait_for_all), a.timeout, self.gpu.poll_listener)
        finally:
            p.lock.acquire()
        for i, ev in enumerate(fired):
            if ev is None:
                continue
            if ev.type == K.KFD_IOC_EVENT_MEMORY and ev.memory_exception:
                m, d = data[i].memory_exception_data, ev.memory_exception
                m.failure.NotPresent, m.failure.ReadOnly = d["NotPresent"], d["ReadOnly"]
                m.failure.NoExecute, m.failure.imprecise = d["NoExecute"], d["imprecise"]
                m.va, m.gpu_id, m.ErrorType = d["va"], d["gpu_id"], d["ErrorType"]
            elif ev.type == K.KFD_IOC_EVENT_HW_EXCEPTION and ev.hw_exception:
                h, d = data[i].hw_exception_data, ev.hw_exception
                h.reset_type, h.reset_cause, h.memory_lost, h.gpu_id = (d["reset_type"], d["reset_cause"],
                                                                         d["memory_lost"], d["gpu_id"])
        if a.num_events and result == K.KFD_IOC_WAIT_RESULT_COMPLETE:
            hostmem.write(a.events_ptr, bytes(raw))
        a.wait_result = result

    # --- mmap on /dev/kfd (kfd_mmap) --------------------------------------------------------------------
    def mmap(self, p: KfdProcess, addr: int, size: int, prot: int, flags: int, offset: int) -> int:
        kind = offset & P.KFD_MMAP_TYPE_MASK
        gpu_id = mmap_gpu_id(offset)
        fixed = bool(flags & MAP_FIXED)
        if kind == P.KFD_MMAP_TYPE_DOORBELL:
            if gpu_id != self.gpu.gpu_id:
                raise Errno(E.ENODEV, f"doorbell mmap: no GPU with gpu_id {gpu_id:#x} in offset {offset:#x}")
            if size != DOORBELL_SLICE:
                raise Errno(E.EINVAL, f"doorbell mmap must be exactly the process doorbell slice ({DOORBELL_SLICE:#x} "
                                      f"bytes), not {size:#x} (kfd_doorbell_mmap)")
            got = p.doorbell_page.map_at(addr, prot, 0, size, fixed=fixed)
            p.doorbell_maps[got] = size
            self.kernel.register_mmio(got, size, lambda a_, v, w, p=p, base=got: self._doorbell(p, a_ - base, v))
            return got
        if kind == P.KFD_MMAP_TYPE_MMIO:
            if gpu_id != self.gpu.gpu_id:
                raise Errno(E.ENODEV, f"MMIO mmap: no GPU with gpu_id {gpu_id:#x} in offset {offset:#x}")
            if size != PAGE:
                raise Errno(E.EINVAL, f"MMIO remap mmap must be one page, not {size:#x} (kfd_mmio_mmap)")
            return p.mmio_page.map_at(addr, prot, 0, size, fixed=fixed)
        if kind == P.KFD_MMAP_TYPE_EVENTS:
            if p.events.own_page is None:
                raise Errno(E.EINVAL, "events mmap: the process has no KFD-allocated event page (it passed its own)")
            if size != p.events.own_page.size:
                raise Errno(E.EINVAL, f"events mmap must be {p.events.own_page.size:#x} bytes (kfd_event_mmap)")
            return p.events.own_page.map_at(addr, prot, 0, size, fixed=fixed)
        raise Errno(E.ENODEV if not gpu_id else E.EFAULT,
                    f"mmap offset {offset:#x}: type RESERVED_MEM (APU CWSR) is not served by this dGPU")

    def munmap(self, addr: int, size: int) -> None:
        for p in self.processes:
            for base in list(p.doorbell_maps):
                if addr <= base < addr + size:
                    del p.doorbell_maps[base]
                    self.kernel.unregister_mmio(base)

    def _doorbell(self, p: KfdProcess, byte_offset: int, value: int) -> None:
        q = p.queue_for_doorbell(byte_offset)
        if q is not None:
            self.gpu.ring_doorbell(q, value)


_HANDLERS = [
    ("GET_VERSION", "struct kfd_ioctl_get_version_args", KfdDriver.get_version),
    ("CREATE_QUEUE", "struct kfd_ioctl_create_queue_args", KfdDriver.create_queue),
    ("DESTROY_QUEUE", "struct kfd_ioctl_destroy_queue_args", KfdDriver.destroy_queue),
    ("SET_MEMORY_POLICY", "struct kfd_ioctl_set_memory_policy_args", KfdDriver.set_memory_policy),
    ("GET_CLOCK_COUNTERS", "struct kfd_ioctl_get_clock_counters_args", KfdDriver.get_clock_counters),
    ("UPDATE_QUEUE", "struct kfd_ioctl_update_queue_args", KfdDriver.update_queue),
    ("CREATE_EVENT", "struct kfd_ioctl_create_event_args", KfdDriver.create_event),
    ("DESTROY_EVENT", "struct kfd_ioctl_destroy_event_args", KfdDriver.destroy_event),
    ("SET_EVENT", "struct kfd_ioctl_set_event_args", KfdDriver.set_event),
    ("RESET_EVENT", "struct kfd_ioctl_reset_event_args", KfdDriver.reset_event),
    ("WAIT_EVENTS", "struct kfd_ioctl_wait_events_args", KfdDriver.wait_events),
    ("SET_SCRATCH_BACKING_VA", "struct kfd_ioctl_set_scratch_backing_va_args", KfdDriver.set_scratch_backing_va),
    ("SET_TRAP_HANDLER", "struct kfd_ioctl_set_trap_handler_args", KfdDriver.set_trap_handler),
    ("GET_PROCESS_APERTURES", "struct kfd_ioctl_get_process_apertures_args", KfdDriver.get_process_apertures),
    ("GET_PROCESS_APERTURES_NEW", "struct kfd_ioctl_get_process_apertures_new_args", KfdDriver.get_process_apertures_new),
    ("ACQUIRE_VM", "struct kfd_ioctl_acquire_vm_args", KfdDriver.acquire_vm),
    ("ALLOC_MEMORY_OF_GPU", "struct kfd_ioctl_alloc_memory_of_gpu_args", KfdDriver.alloc_memory_of_gpu),
    ("FREE_MEMORY_OF_GPU", "struct kfd_ioctl_free_memory_of_gpu_args", KfdDriver.free_memory_of_gpu),
    ("MAP_MEMORY_TO_GPU", "struct kfd_ioctl_map_memory_to_gpu_args", KfdDriver.map_memory_to_gpu),
    ("UNMAP_MEMORY_FROM_GPU", "struct kfd_ioctl_unmap_memory_from_gpu_args", KfdDriver.unmap_memory_from_gpu),
    ("AVAILABLE_MEMORY", "struct kfd_ioctl_get_available_memory_args", KfdDriver.available_memory),
    ("RUNTIME_ENABLE", "struct kfd_ioctl_runtime_enable_args", KfdDriver.runtime_enable),
    ("DBG_TRAP", "struct kfd_ioctl_dbg_trap_args", dbg_trap),
]
# nr -> (name, struct, handler); numbers and sizes from the generated kfd_ioctl.h (never retyped)
_IOCTLS = {}
for _name, _struct, _fn in _HANDLERS:
    _req = decode(getattr(K, "AMDKFD_IOC_" + _name))
    if F.sizeof(_struct) != _req.size:
        raise ImportError(f"mock KFD: {_struct} is {F.sizeof(_struct)} bytes but AMDKFD_IOC_{_name} encodes {_req.size}")
    _IOCTLS[_req.nr] = (_name, _struct, _fn)
