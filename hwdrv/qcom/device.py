"""QcomDevice: an Adreno GPU driven through kgsl (/dev/kgsl-3d0), with no vendor runtime.

Bring-up, in the order kgsl wants it: open the device node -> GETPROPERTY(DEVICE_INFO): the chip id
names the GPU (A630 first; others raise UnsupportedDevice) -> one draw context with the flags compute
needs -> a scratch page, the command ring for unbound submissions, the timelines. Memory: GPUOBJ_ALLOC
(the GPU address from GPUOBJ_INFO: kgsl chooses it, so ``va`` and ``cpu_addr`` differ), mmap by id
for host-visible buffers, MAP_USER_MEM for the signal pages (host memory the GPU writes).

Context flags: PREAMBLE | NO_GMEM_ALLOC (kgsl refuses contexts without them), NO_FAULT_TOLERANCE (as
tinygrad: a fault invalidates the context at once, so no replay re-runs a faulting kernel and every
later call answers EDEADLK, which is what recovery keys on), TYPE_CL, default priority.
"""
from __future__ import annotations

import errno
import time


from ..device import Device
from ..errors import DeviceNotFound, IoctlError, UnsupportedDevice
from ..hang import ErrorCode, HangReport, Launch
from ..ioctl.kernel import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE, Kernel
from ..limits import DeviceLimits
from ..memory.buffer import Buffer
from ..queue import Queue
from ..registry import DeviceInfo
from .cmdring import CmdRing
from .compiler import Ir3Compiler
from .gen import kgsl as K
from .kgsl import PAGE, Kgsl
from .program import QcomProgram
from .queue import QcomComputeQueue
from .samples import COPY, SAMPLES

DEVICE_PATH = "/dev/kgsl-3d0"
SNAPSHOT_DUMP = "/sys/class/kgsl/kgsl-3d0/snapshot/dump"
CONTEXT_FLAGS = (K.KGSL_CONTEXT_PREAMBLE | K.KGSL_CONTEXT_NO_GMEM_ALLOC | K.KGSL_CONTEXT_NO_FAULT_TOLERANCE
                 | (K.KGSL_CONTEXT_TYPE_CL << K.KGSL_CONTEXT_TYPE_SHIFT))
#: MEMALIGN: log2 of the alignment kgsl gives an object (4 KiB)
MEM_FLAGS = 12 << K.KGSL_MEMALIGN_SHIFT
#: the always-on counter's rate (CP_ALWAYS_ON_COUNTER, qcom.md 2.4)
ALWAYS_ON_HZ = 19_200_000
CMD_RING_SIZE = 4 << 20
_STATUS_NAMES = {K.KGSL_CTX_STAT_NO_ERROR: "NO_ERROR", K.KGSL_CTX_STAT_GUILTY_CONTEXT_RESET_EXT: "GUILTY_CONTEXT_RESET",
                 K.KGSL_CTX_STAT_INNOCENT_CONTEXT_RESET_EXT: "INNOCENT_CONTEXT_RESET",
                 K.KGSL_CTX_STAT_UNKNOWN_CONTEXT_RESET_EXT: "UNKNOWN_CONTEXT_RESET"}


def _chip(chip_id: int) -> tuple[int, int, int]:
    """(core, major, minor) of a kgsl chip id (bytes 31..24, 23..16, 15..8; the patch byte varies)."""
    return chip_id >> 24 & 0xFF, chip_id >> 16 & 0xFF, chip_id >> 8 & 0xFF


#: (core, major, minor) -> (arch, launch limits) (A630: qcom.md 3.3; block extents: LOCALSIZE is 10 bits)
CHIPS = {
    (6, 3, 0): ("a630", DeviceLimits(max_threads_per_block=1024, max_block_dims=(1024, 1024, 1024),
                                     max_grid_dims=(65535, 65535, 65535), max_shared_per_block=32 << 10,
                                     wave_size=64)),
}


def probe(kernel: Kernel) -> list[DeviceInfo]:
    """The kgsl GPU of this machine (DEVICE_INFO only; no context is made)."""
    if not kernel.exists(DEVICE_PATH):
        return []
    fd = kernel.open(DEVICE_PATH, O_RDWR | O_CLOEXEC)
    try:
        info = Kgsl(kernel, fd).device_info()
    finally:
        kernel.close(fd)
    core, major, minor = _chip(int(info.chip_id))
    known = CHIPS.get((core, major, minor))
    name = "mock:qcom" if kernel.is_mock else "qcom:0"
    return [DeviceInfo(name, "qcom", f"Adreno {core}{major}{minor} (chip id {int(info.chip_id):#010x}) via kgsl",
                       mock=kernel.is_mock, available=known is not None,
                       problem="" if known else f"chip {core}.{major}.{minor} is not supported (A630 is)")]


def open(kernel: Kernel, index: int, name: str) -> "QcomDevice":  # noqa: A001 - registry protocol
    """Open the kgsl GPU (registry entry point; kgsl exposes one GPU, index 0)."""
    if index != 0:
        raise DeviceNotFound(f"{name}: kgsl exposes one GPU ({DEVICE_PATH}); use qcom:0")
    return QcomDevice(kernel, name)


class QcomDevice(Device):
    """An open Adreno a6xx (or the mock of one)."""

    kind = "qcom"
    engines = ("compute",)
    gpu_va_is_cpu_va = False
    timestamp_hz = ALWAYS_ON_HZ
    timestamps_track_wall_clock = False
    samples = SAMPLES

    def __init__(self, kernel: Kernel, name: str):
        super().__init__(name, kernel)
        self.fd = -1
        self.ctx = 0
        self._fault: tuple[int, int, int] | None = None      # (reset status, faults, last faulted ts)
        self._stale_contexts: list[int] = []
        #: CPU mappings of live buffers (address -> bytes): the device's close unmaps what is left
        self._cpu_maps: dict[int, int] = {}
        self._builtins: dict[str, QcomProgram] = {}
        self._pvt: Buffer | None = None
        self.last_ts = 0
        try:
            self._bring_up()
        except BaseException:
            self._teardown()
            raise

    def _bring_up(self) -> None:
        k = self.kernel
        if not k.exists(DEVICE_PATH):
            raise DeviceNotFound(f"{self.name}: {DEVICE_PATH} does not exist (no kgsl driver here)")
        self.fd = k.open(DEVICE_PATH, O_RDWR | O_CLOEXEC)
        self.kgsl = Kgsl(k, self.fd)
        info = self.kgsl.device_info()
        self.chip_id = int(info.chip_id)
        chip = _chip(self.chip_id)
        if chip not in CHIPS:
            raise UnsupportedDevice(f"{self.name}: Adreno chip id {self.chip_id:#010x} ({'.'.join(map(str, chip))}) "
                                    f"is not supported; hwdrv's Qualcomm backend drives the A630 (6.3.0)")
        self.arch, self.limits = CHIPS[chip]
        self.compiler = Ir3Compiler(self.arch)
        self.ctx = self.kgsl.context_create(CONTEXT_FLAGS)
        self.scratch = self._backend_alloc(PAGE, True)
        self._buffers.add(self.scratch)
        self._init_core()
        ring = self._backend_alloc(CMD_RING_SIZE, True, for_commands=True)
        self._buffers.add(ring)
        self.cmd_ring = CmdRing(ring, self._timelines["compute"])

    # ---- memory -----------------------------------------------------------------------
    def _backend_alloc(self, size: int, host_visible: bool, for_signals: bool = False,
                       for_commands: bool = False) -> Buffer:
        k = self.kernel
        if for_signals:
            n = -(-size // PAGE) * PAGE
            host = k.mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            try:
                gpu = self.kgsl.map_user_mem(host, n)
            except BaseException:
                k.munmap(host, n)
                raise
            self._cpu_maps[host] = n
            return Buffer(self, gpu, size, host_visible=True, device=self, cpu_addr=host, meta=("user", host, n))
        obj = self.kgsl.gpuobj_alloc(size, MEM_FLAGS)
        oid, mapsize = int(obj.id), int(obj.mmapsize)
        try:
            gpu = int(self.kgsl.gpuobj_info(oid).gpuaddr)
            cpu = k.mmap(0, mapsize, PROT_READ | PROT_WRITE, MAP_SHARED, self.fd, oid * PAGE) if host_visible else None
        except BaseException:
            self.kgsl.gpuobj_free(oid)
            raise
        if cpu is not None:
            self._cpu_maps[cpu] = mapsize
        return Buffer(self, gpu, size, host_visible=host_visible, device=self, cpu_addr=cpu,
                      meta=("obj", oid, cpu, mapsize))

    def _backend_free(self, buf: Buffer) -> None:
        kind, a, b, c = (*buf.meta, None)[:4]
        if kind == "user":
            self.kgsl.sharedmem_free(buf._va)
            self.kernel.munmap(a, self._cpu_maps.pop(a))
        else:
            if b is not None:
                self.kernel.munmap(b, self._cpu_maps.pop(b))
            self.kgsl.gpuobj_free(a)

    def _backend_detach(self, buf: Buffer):
        """Close time, views alive: keep the host range valid (zero pages in place of an
        object's mapping; host memory of user pages stays) until the views are gone."""
        kind, a, b, c = (*buf.meta, None)[:4]
        addr = a if kind == "user" else b
        if addr is None or addr not in self._cpu_maps:
            return None
        size = self._cpu_maps.pop(addr)
        k = self.kernel
        if kind != "user":
            k.mmap(addr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        return lambda: k.munmap(addr, size)

    def _backend_forget_views(self) -> None:
        self.cmd_ring = None

    # ---- queues, programs -------------------------------------------------------------
    def _backend_queue(self, kind: str) -> Queue:
        return QcomComputeQueue(self)

    def _backend_program(self, binary: bytes, name: str) -> QcomProgram:
        return QcomProgram(self, binary, name)

    def _builtin(self, name: str) -> QcomProgram:
        """The copy blits, compiled and loaded once."""
        if name not in self._builtins:
            binary = self.compiler.compile(COPY)
            for n in ("hwdrv_copy4", "hwdrv_copy1"):
                self._builtins[n] = QcomProgram(self, binary, n)
        return self._builtins[name]

    def _private_memory(self, size: int) -> int:
        """GPU address of at least ``size`` bytes of private memory (grown, never shrunk; an old
        buffer stays allocated until close since earlier launches may still use it)."""
        if self._pvt is None or self._pvt.size < size:
            self._pvt = self.alloc(size)
        return self._pvt.va

    def _submit(self, ib: int, nbytes: int, value: int, launches: list) -> None:
        """One GPU_COMMAND running the IB at ``ib`` that ends by releasing timeline ``value``."""
        try:
            ts = self.kgsl.gpu_command(self.ctx, ib, nbytes)
        except IoctlError as e:
            if e.errno == errno.EPROTO:        # queued; the context faulted earlier (kgsl: "success")
                ts = (self.last_ts + 1) & 0xFFFFFFFF
            elif e.errno == errno.EDEADLK:     # the context was invalidated by a fault: a new one, then resubmit
                self._backend_error_pending()  # keep kgsl's reset status for the record
                self._new_context(lost_upto=value - 1)
                ts = self.kgsl.gpu_command(self.ctx, ib, nbytes)
            else:
                raise
        self.last_ts = ts
        self.submissions.append((self.ctx, ts, value, list(launches)))

    # ---- waiting, errors, recovery -----------------------------------------------------
    def _backend_sleep(self, signal, value: int, seconds: float) -> None:
        """Sleep in WAITTIMESTAMP_CTXTID until the context retires its next command (or ``seconds``)."""
        try:
            retired = self.kgsl.read_timestamp(self.ctx)
            if retired == self.last_ts:
                time.sleep(min(seconds, 0.0002))
                return
            self.kgsl.wait_timestamp(self.ctx, (retired + 1) & 0xFFFFFFFF, max(1, int(seconds * 1000)))
        except IoctlError:
            pass        # ETIMEDOUT, or a fault (EDEADLK/EPROTO): the caller asks _backend_error_pending

    def _backend_error_pending(self) -> bool:
        if self._fault is not None:
            return True
        try:
            status = self.kgsl.reset_status(self.ctx)       # clears on read: keep what it said
        except IoctlError:
            return False
        if status in (K.KGSL_CTX_STAT_NO_ERROR, K.KGSL_CTX_STAT_INNOCENT_CONTEXT_RESET_EXT):
            return False
        faults, last = self.kgsl.fault_stats(self.ctx)
        self._fault = (status, faults, last)
        return True

    def _backend_broken(self) -> bool:
        return self._fault is not None

    def _backend_fill_report(self, report: HangReport) -> None:
        report.unit_name = "SP"
        retired = self.kgsl.read_timestamp(self.ctx)
        report.notes.append(f"kgsl context {self.ctx}: last queued timestamp {self.last_ts}, retired {retired}")
        guilty = None
        if self._fault is not None:
            status, faults, last = self._fault
            report.error = ErrorCode("qcom", "kgsl fault", status, _STATUS_NAMES.get(status, "?"))
            report.notes.append(f"kgsl CONTEXT_PROPERTY(FAULTS): {faults} fault(s), last faulted command has "
                                f"timestamp {last}")
            guilty = last
        for ctx, ts, value, launches in self.submissions:
            if ctx != self.ctx or (guilty is not None and ts != guilty) or (guilty is None and ts <= retired):
                continue
            for prog, grid, block in launches:
                report.launches.append(Launch(prog.name, tuple(grid), tuple(block), program_address=prog.code.va,
                                              queue=f"kgsl context {ctx} timestamp {ts}"))
        try:
            if self.kernel.exists(SNAPSHOT_DUMP):
                snap = self.kernel.read_file(SNAPSHOT_DUMP)
                if snap:
                    report.notes.append(f"kgsl wrote a {len(snap)}-byte snapshot ({SNAPSHOT_DUMP})")
        except OSError:
            pass

    def _backend_recover(self) -> None:
        """A new draw context (kgsl invalidates a faulted one; a stuck one is abandoned). Lost: every
        submission not finished now; their timeline values count as finished. Buffers (per-process
        memory in kgsl), programs, signals and queues survive."""
        tl = self._timelines["compute"]
        self._new_context(lost_upto=tl.value)

    def _new_context(self, lost_upto: int) -> None:
        tl = self._timelines["compute"]
        lost = (tl.signal.value, lost_upto)
        old, fault = self.ctx, self._fault
        self.ctx = self.kgsl.context_create(CONTEXT_FLAGS)
        if fault is not None:
            self.kgsl.context_destroy(old)     # invalidated: kgsl detaches it at once
        else:
            self._stale_contexts.append(old)   # may still be running: destroyed at close
        self._fault = None
        self.last_ts = 0
        # kgsl reuses context ids: the old context's records must not be matched against the new one
        live = [r for r in self.submissions if r[0] != old]
        self.submissions.clear()
        self.submissions.extend(live)
        if tl.signal.value < lost_upto:
            tl.signal.value = lost_upto
        why = f" after kgsl reset status {_STATUS_NAMES.get(fault[0], fault[0])}" if fault else ""
        self.recoveries.append(f"recovered {self.name}{why}: context {old} -> {self.ctx}; lost timeline values "
                               f"{lost[0] + 1}..{lost[1]}" if lost[1] > lost[0] else
                               f"recovered {self.name}{why}: context {old} -> {self.ctx}; nothing lost")

    def _backend_close(self) -> None:
        self._teardown()

    def _teardown(self) -> None:
        for addr, size in self._cpu_maps.items():
            self.kernel.munmap(addr, size)
        self._cpu_maps.clear()
        if self.fd < 0:
            return
        for ctx in [self.ctx, *self._stale_contexts]:
            if ctx:
                try:
                    self.kgsl.context_destroy(ctx)
                except IoctlError:
                    pass       # already invalidated and gone, or detached with the fd below
        self.kernel.close(self.fd)
        self.fd = -1
