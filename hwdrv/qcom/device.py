"""QcomDevice: an Adreno GPU driven through kgsl (/dev/kgsl-3d0), with no vendor runtime.

Bring-up, in the order kgsl wants it: open the device node -> GETPROPERTY(DEVICE_INFO): the chip id
names the GPU (A630 first; others raise UnsupportedDevice) -> one draw context with the flags compute
needs -> a scratch page, the command ring for unbound submissions, the timelines. Memory: GPUOBJ_ALLOC
(the GPU address from GPUOBJ_INFO: kgsl chooses it, so ``va`` and ``cpu_addr`` differ), mmap by id
for host-visible buffers, MAP_USER_MEM for the signal pages (host memory the GPU writes).

Context flags: PREAMBLE | NO_GMEM_ALLOC (kgsl refuses contexts without them), NO_FAULT_TOLERANCE (as
tinygrad: a fault invalidates the context at once, so no replay re-runs a faulting kernel and every
later call answers EDEADLK, which is what recovery keys on), FAULT_INFO (newer kgsl keeps the page
faults for GET_FAULT_REPORT; older kgsl drops the flag silently), TYPE_CL, default priority.

Hang reports (``_backend_fill_report``) are crashdec's analysis (hwdrv.qcom.crashdec) of the snapshot
kgsl wrote for the fault: read once from /sys/class/kgsl/kgsl-3d0/snapshot/dump (or a devcoredump)
when the fault is seen, with the page faults from GET_FAULT_REPORT or kgsl's kernel-log lines, and
the shader read from this process's own mapping of its code. Where kgsl wrote none (a wait that
timed out with no fault), or it cannot be read, the report says why and shows the in-flight
submission's own IB and shader instead.
"""
from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field

import numpy as np

from ..device import Device
from ..errors import DeviceNotFound, HwdrvError, IoctlError, UnsupportedDevice
from ..hang import Command, ErrorCode, Fault, HangReport, Launch, QueueState, WaveError
from ..ioctl.kernel import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE, Kernel
from ..limits import DeviceLimits
from ..memory.buffer import Buffer
from ..queue import Queue
from ..registry import DeviceInfo
from . import crashdec, pm4decode, snapshot
from .cmdring import CmdRing
from .compiler import Ir3Compiler
from .gen import kgsl as K
from .kgsl import PAGE, Kgsl
from .program import QcomProgram
from .queue import QcomComputeQueue
from .samples import COPY, SAMPLES

DEVICE_PATH = "/dev/kgsl-3d0"
SNAPSHOT_DUMP = "/sys/class/kgsl/kgsl-3d0/snapshot/dump"
#: where kgsl built with CONFIG_QCOM_KGSL_DEVCOREDUMP also hands the snapshot (devcd<N>/data)
DEVCOREDUMP = "/sys/class/devcoredump"
CONTEXT_FLAGS = (K.KGSL_CONTEXT_PREAMBLE | K.KGSL_CONTEXT_NO_GMEM_ALLOC | K.KGSL_CONTEXT_NO_FAULT_TOLERANCE
                 | K.KGSL_CONTEXT_FAULT_INFO | (K.KGSL_CONTEXT_TYPE_CL << K.KGSL_CONTEXT_TYPE_SHIFT))
#: how kgsl's lines in the kernel log can be told from others (dev_crit/dev_err on kgsl-3d0)
KGSL_LOG_TAG = "kgsl-3d0"
#: packets shown either side of a stalled one in a report
REPORT_CONTEXT = 6
#: MEMALIGN: log2 of the alignment kgsl gives an object (4 KiB)
MEM_FLAGS = 12 << K.KGSL_MEMALIGN_SHIFT
#: the always-on counter's rate (CP_ALWAYS_ON_COUNTER, qcom.md 2.4)
ALWAYS_ON_HZ = 19_200_000
CMD_RING_SIZE = 4 << 20
_STATUS_NAMES = {K.KGSL_CTX_STAT_NO_ERROR: "NO_ERROR", K.KGSL_CTX_STAT_GUILTY_CONTEXT_RESET_EXT: "GUILTY_CONTEXT_RESET",
                 K.KGSL_CTX_STAT_INNOCENT_CONTEXT_RESET_EXT: "INNOCENT_CONTEXT_RESET",
                 K.KGSL_CTX_STAT_UNKNOWN_CONTEXT_RESET_EXT: "UNKNOWN_CONTEXT_RESET"}


@dataclass
class KgslFault:
    """What kgsl said about one fault of this device's context, gathered when the fault was seen
    (the context's fault records go with the context, the snapshot is handed out once)."""
    ctx: int
    status: int                    # GPU_RESET_STAT
    count: int                     # CONTEXT_PROPERTY(FAULTS): total faults
    last_ts: int                   # ... and the timestamp of the last faulted command
    page_faults: list[Fault] = field(default_factory=list)
    page_fault_source: str = ""    # why there are none, or where they came from
    snapshot: bytes = b""
    snapshot_source: str = ""      # the file it came from, or why there is none


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
        self._fault: KgslFault | None = None
        self._kmsg_seq = self._kmsg_last(kernel)    # kernel-log records before this are not this device's
        self._stale_contexts: list[int] = []
        #: a snapshot read while looking for another context's (kept for the fault it belongs to)
        self._held_snapshot: tuple[bytes, str] | None = None
        #: what became of abandoned contexts since the last report (its notes)
        self._reaped: list[str] = []
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
        self.submissions.append((self.ctx, ts, value, list(launches), ib, nbytes))

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
        if self._stale_contexts:
            self._reap_stale()
        try:
            status = self.kgsl.reset_status(self.ctx)       # clears on read: keep what it said
        except IoctlError:
            return False
        if status in (K.KGSL_CTX_STAT_NO_ERROR, K.KGSL_CTX_STAT_INNOCENT_CONTEXT_RESET_EXT):
            return False
        faults, last = self.kgsl.fault_stats(self.ctx)
        rec = KgslFault(self.ctx, status, faults, last)
        try:
            rec.page_faults = crashdec.faults_from_report(self.kgsl.fault_report(self.ctx))
            rec.page_fault_source = "" if rec.page_faults else "kgsl GET_FAULT_REPORT: no page fault recorded"
        except HwdrvError as e:    # older kgsl (ENOTTY) or a context without FAULT_INFO (EINVAL)
            rec.page_fault_source = f"GET_FAULT_REPORT gave nothing ({e}); kgsl's kernel-log lines are used instead"
        rec.snapshot, rec.snapshot_source = self._read_snapshot()
        self._fault = rec
        return True

    def _backend_broken(self) -> bool:
        return self._fault is not None

    def _backend_fill_report(self, report: HangReport) -> None:
        report.unit_name = "SP"
        retired = self.kgsl.read_timestamp(self.ctx)
        report.notes.append(f"kgsl context {self.ctx}: last queued timestamp {self.last_ts}, retired {retired}")
        rec = self._fault
        if rec is not None:
            report.error = ErrorCode("qcom", "kgsl fault", rec.status, _STATUS_NAMES.get(rec.status, "?"))
            report.notes.append(f"kgsl CONTEXT_PROPERTY(FAULTS): {rec.count} fault(s), last faulted command has "
                                f"timestamp {rec.last_ts}")
            snap, source = rec.snapshot, rec.snapshot_source
        else:          # no fault: kgsl may still have taken one (e.g. a hang it detected but did not pin on us)
            if self._stale_contexts:
                self._reap_stale()
            snap, source = self._read_snapshot()
        self._kernel_log(report)
        faults = list(rec.page_faults) if rec is not None else []
        if rec is not None and not faults:     # kgsl's lines about this context only
            faults = [f for f in crashdec.faults_from_dmesg("\n".join(report.kernel_log))
                      if f.source.endswith(f"drawctxt {rec.ctx}")]
            if rec.page_fault_source:
                report.notes.append(rec.page_fault_source)
        guilty = rec.last_ts if rec is not None else None
        mine = [r for r in self.submissions if r[0] == self.ctx and (r[1] == guilty if guilty is not None
                                                                      else r[1] > retired)]
        names = {prog.code.va: prog.name for r in mine for prog, _, _ in r[3]}
        params = {prog.code.va: [(p.offset, p.size, p.name) for p in prog.params] for r in mine for prog, _, _ in r[3]}
        parsed = self._parse_snapshot(report, snap, source, rec)
        if parsed is not None:
            crashdec.fill_report(report, parsed, faults=faults, read_memory=self._read_gpu,
                                 context=REPORT_CONTEXT, program_names=names, program_params=params)
            if report.cause == "error":    # the kind of stop, from the snapshot's evidence
                report.cause = crashdec.classify(parsed, faults)[0]
                if report.faults and report.cause == "exception" and not crashdec.latched(report):
                    report.cause = "mmu_fault"      # a memory access inferred from the stalled packet
        else:
            report.faults.extend(faults)
            if report.cause == "error":
                report.cause = "mmu_fault" if faults else "exception"
            self._own_stream(report, mine)
        shown = {ln.program_address for ln in report.launches}
        for ctx, ts, value, launches, ib, nbytes in mine:
            for prog, grid, block in launches:
                if prog.code.va not in shown:
                    report.launches.append(Launch(prog.name, tuple(grid), tuple(block), program_address=prog.code.va,
                                                  queue=f"kgsl context {ctx} timestamp {ts}"))
        report.notes.extend(self.recoveries[-3:])
        report.notes.extend(self._reaped)
        self._reaped.clear()
        report.headline = crashdec.headline(report)

    def _reap_stale(self) -> None:
        """Abandoned contexts (recover() left their stuck work running) that kgsl has since reset:
        note it, destroy them, and take the snapshot kgsl wrote (kgsl keeps one snapshot until it is
        read, so a stale one would take the place of the next fault's); one that is not theirs is
        held for the fault it belongs to."""
        for ctx in list(self._stale_contexts):
            try:
                status = self.kgsl.reset_status(ctx)
            except IoctlError:
                continue
            if status in (K.KGSL_CTX_STAT_NO_ERROR, K.KGSL_CTX_STAT_INNOCENT_CONTEXT_RESET_EXT):
                continue
            self._stale_contexts.remove(ctx)
            try:
                self.kgsl.context_destroy(ctx)
            except IoctlError:
                pass       # already detached by kgsl
            data, source = self._read_snapshot()
            what = ""
            if data:
                try:
                    snap = snapshot.parse(data)
                    cur = snap.os.current_context if snap.os is not None else None
                except HwdrvError:
                    cur = None
                if cur is not None and cur != ctx:
                    self._held_snapshot = (data, source)
                else:
                    what = f"; its kgsl snapshot ({len(data)} bytes from {source}) was read and set aside"
            self._reaped.append(f"abandoned kgsl context {ctx} was reset by kgsl "
                                   f"({_STATUS_NAMES.get(status, status)}) and destroyed{what}")

    def _read_snapshot(self) -> tuple[bytes, str]:
        """The snapshot kgsl holds (read whole from offset 0, which releases it): (bytes, the file),
        or (b"", why there is none)."""
        if self._held_snapshot is not None:
            held, self._held_snapshot = self._held_snapshot, None
            return held
        k = self.kernel
        try:
            if k.exists(SNAPSHOT_DUMP):
                data = k.read_file(SNAPSHOT_DUMP)
                if data:
                    return data, SNAPSHOT_DUMP
                why = f"{SNAPSHOT_DUMP} is empty (kgsl took no snapshot, or it was read already)"
            else:
                why = f"{SNAPSHOT_DUMP} does not exist (kgsl without snapshot support)"
        except HwdrvError as e:
            why = f"kgsl's snapshot is unreadable: {e} (root only on most devices: run as root, or save it with " \
                  f"'adb shell cat {SNAPSHOT_DUMP} > s.bin' and run 'python -m hwdrv decode --vendor qcom s.bin')"
        try:      # CONFIG_QCOM_KGSL_DEVCOREDUMP: the same snapshot, handed to devcoredump
            for d in (k.listdir(DEVCOREDUMP) if k.exists(DEVCOREDUMP) else []):
                data = k.read_file(f"{DEVCOREDUMP}/{d}/data")
                if snapshot.is_snapshot(data):
                    return data, f"{DEVCOREDUMP}/{d}/data"
        except HwdrvError as e:
            why += f"; {DEVCOREDUMP} unreadable: {e}"
        return b"", why

    def _parse_snapshot(self, report: HangReport, data: bytes, source: str, rec: KgslFault | None):
        """The snapshot parsed, if it is this fault's: kgsl keeps the first snapshot until it is read,
        so one left by an earlier fault (an abandoned context's, another process's) is named and set
        aside."""
        if not data:
            report.notes.append(f"no kgsl snapshot: {source}")
            return None
        try:
            snap = snapshot.parse(data)
        except HwdrvError as e:
            report.notes.append(f"the kgsl snapshot from {source} ({len(data)} bytes) could not be read: {e}")
            return None
        want = rec.ctx if rec is not None else self.ctx
        cur = snap.os.current_context if snap.os is not None else None
        if cur is not None and cur != want:
            report.notes.append(f"kgsl's snapshot from {source} is of context {cur}, not this fault's context {want} "
                                "(an earlier fault's): set aside")
            return None
        report.notes.append(f"kgsl snapshot: {len(data)} bytes from {source}")
        return snap

    def _read_gpu(self, addr: int, n: int) -> bytes | None:
        """``n`` bytes of GPU memory at ``addr`` through this process's mapping of the buffer holding
        them (the shader code is host-visible), or None."""
        for buf in list(self._buffers):
            if buf.host_visible and buf._va <= addr and addr + n <= buf._va + buf.size:
                return bytes(buf.view(np.uint8, addr - buf._va, n))
        return None

    def _own_stream(self, report: HangReport, mine: list) -> None:
        """Without a snapshot: the in-flight submissions' IBs as hwdrv wrote them (the CP's position is
        unknown, so nothing is marked stalled) and their shaders, with the instructions that can make
        a dispatch never end marked."""
        from .ir3 import disassemble      # the assembler package loads only when a report needs it
        for ctx, ts, value, launches, ib, nbytes in mine[:2]:
            words = self._read_gpu(ib, nbytes)
            if words is None:
                continue
            pkts = pm4decode.walk(np.frombuffer(words, "<u4"), ib)
            report.queues.append(QueueState(f"IB of kgsl context {ctx} timestamp {ts} (as submitted)", None,
                                            nbytes // 4, "dwords", [Command(p.addr, p.text()) for p in pkts]))
            report.notes.append(f"timestamp {ts}: the CP's position in its IB is unknown (kgsl wrote no snapshot): "
                                "the IB is shown as submitted")
            disps = [i for i, p in enumerate(pkts) if p.name in crashdec.DISPATCHES]
            for k, (prog, grid, block) in enumerate(launches):     # the IB's dispatches are its launches, in order
                args = crashdec.dispatch_args(pkts[:disps[k]], [(p.offset, p.size, p.name) for p in prog.params],
                                              self._read_gpu) if len(disps) == len(launches) else []
                report.launches.append(Launch(prog.name, tuple(grid), tuple(block), args, prog.code.va,
                                              f"kgsl context {ctx} timestamp {ts}"))
                code = self._read_gpu(prog.code.va, prog.instrlen * crashdec.INSTRLEN_UNIT)
                if code is None:
                    continue
                lines = disassemble(code, gpu_id=600)
                pcs, why = crashdec.suspect_pcs(lines, report, prog.code.va, len(code))
                if len(pcs) == 1:
                    report.wave_errors.append(WaveError(error=f"{why} (inferred from the program: kgsl reports no "
                                                              "shader PC)", pc=pcs[0], kernel=prog.name,
                                                        offset=crashdec.IR3_INSTR * pcs[0], source_line=lines[pcs[0]]))
                report.notes.append(f"shader {prog.name}: {len(lines)} instructions (this process's copy)")
                report.notes.extend(f"{'?>' if i in pcs else '  '} {i:04d} {prog.code.va + crashdec.IR3_INSTR * i:#x}: "
                                    f"{t}" for i, t in enumerate(lines))

    def _kernel_log(self, report: HangReport) -> None:
        """kgsl's kernel-log lines since the device opened or the last report (dmesg may be refused)."""
        try:
            raw = self.kernel.read_kmsg()
        except HwdrvError as e:
            report.kernel_log_error = f"the kernel log is unreadable: {e}"
            return
        lines = []
        for r in raw:
            head, _, text = r.partition(";")
            parts = head.split(",")
            if len(parts) < 3 or not parts[1].isdigit():
                continue
            seq, usec, text = int(parts[1]), int(parts[2]) if parts[2].isdigit() else 0, text.split("\n", 1)[0]
            if seq > self._kmsg_seq and KGSL_LOG_TAG in text:
                lines.append(f"[{usec // 1_000_000:6d}.{usec % 1_000_000:06d}] {text}")
            self._kmsg_seq = max(self._kmsg_seq, seq)
        report.kernel_log = lines

    @staticmethod
    def _kmsg_last(kernel: Kernel) -> int:
        """The sequence number of the kernel log's newest record now (-1: none, or unreadable)."""
        try:
            raw = kernel.read_kmsg()
        except HwdrvError:
            return -1
        head = raw[-1].partition(";")[0].split(",") if raw else []
        return int(head[1]) if len(head) > 1 and head[1].isdigit() else -1

    def _backend_recover(self) -> None:
        """A new draw context (kgsl invalidates a faulted one; a stuck one is abandoned). Lost: every
        submission not finished now; their timeline values count as finished. Buffers (per-process
        memory in kgsl), programs, signals and queues survive."""
        tl = self._timelines["compute"]
        self._new_context(lost_upto=tl.value)

    def _new_context(self, lost_upto: int) -> None:
        tl = self._timelines["compute"]
        lost = (tl.signal.value, lost_upto)
        old, rec = self.ctx, self._fault
        fault = (rec.status,) if rec is not None else None
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
