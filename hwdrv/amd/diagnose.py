"""AMD hang diagnosis: what a HangReport gets beyond the KFD event payloads (reference/amd.md 7.2-7.4).

- The compute ring decoded around the CP's read pointer, the packet it stopped at marked; a
  WAIT_REG_MEM on memory of this device shows the awaited word's current value.
- Wave state through KFD's debugger interface (AMDKFD_IOC_DBG_TRAP on this process, which KFD
  lets a process do to itself): GET_QUEUE_SNAPSHOT (the queues' raised exceptions),
  QUERY_EXCEPTION_INFO (the device memory violation's address), SUSPEND_QUEUES (the waves go to the
  queue's context-save area: control stack + the trap handler's wave records, read by cwsr.py)
  and RESUME_QUEUES. Each saved wave becomes a WaveError: PC -> kernel+offset, EXEC, STATUS,
  TRAPSTS, MODE, M0 (decoded with the gc11 field tables), its SE and workgroup, and the
  instruction at the PC described from the program's own code (disasm.py); a memory fault's
  access (read / write / atomic) comes from that instruction. The mock KFD writes the same
  layout from the emulator's registers, so both take this path.
- As root on real hardware: the §7.3 status registers through debugfs ``amdgpu_regs``.
"""
from __future__ import annotations

import errno
import os

from ..errors import HwdrvError
from ..hang import Command, Fault, HangReport, Register, WaveError
from ..ioctl import hostmem
from ..ioctl.bindings import addressof
from .cwsr import WAVE_STATE_BYTES, SaveArea, SavedWave
from .cwsr import parse as parse_save_area
from .disasm import describe
from .gen import gc11 as G
from .gen import kfd as K
from .kfd import ffi
from .pm4decode import decode_ring

#: saved registers shown per wave and in the report's register section (the save area has no
#: HW_ID or IB_STS: the trap handler does not store them)
SHOWN = ("EXEC_LO", "STATUS", "TRAPSTS", "MODE", "M0")
#: waves a report lists one by one (a hung dispatch may leave thousands resident)
MAX_WAVES_SHOWN = 8
#: every exception a report asks KFD about
_ALL_EXCEPTIONS = (1 << K.EC_MAX) - 1
_EC_NAMES = {v: k[3:] for k, v in vars(K).items() if k.startswith("EC_") and isinstance(v, int)
             and k not in ("EC_MAX", "EC_NONE")}
#: §7.3 registers read as root (gfx11 GC offsets, gen/gc11.py)
ROOT_REGISTERS = ("GRBM_STATUS", "GRBM_STATUS2", "CP_STAT", "CP_CPC_STATUS", "CP_CPC_BUSY_STAT",
                  "CP_CPC_STALLED_STAT1", "GCVM_L2_PROTECTION_FAULT_STATUS", "GCVM_L2_PROTECTION_FAULT_ADDR_LO32",
                  "GCVM_L2_PROTECTION_FAULT_ADDR_HI32")
_SEG = (G.GC_BASE__INST0_SEG0, G.GC_BASE__INST0_SEG1, G.GC_BASE__INST0_SEG2, G.GC_BASE__INST0_SEG3)
#: how long SUSPEND_QUEUES may wait for waves to be saved (KFD's grace period, microseconds)
GRACE_PERIOD_US = 1000


def enable_runtime(kfd) -> bool:
    """RUNTIME_ENABLE (as ROCr does at start-up, before any queue): KFD's debugger ops need it.
    Returns False where the kernel refuses (older KFD), and the reports then go without wave state."""
    try:
        kfd.call("RUNTIME_ENABLE", mode_mask=K.KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK)
    except HwdrvError:
        return False
    return True


def exception_names(mask: int) -> list[str]:
    """KFD_EC_MASK bits -> exception names (EC_* of kfd_ioctl.h without the prefix)."""
    return [_EC_NAMES.get(c, f"EC {c}") for c in range(1, K.EC_MAX) if mask >> (c - 1) & 1]


class Debugger:
    """AMDKFD_IOC_DBG_TRAP on this process's own KFD fd."""

    def __init__(self, kfd):
        self.kfd, self.pid = kfd, os.getpid()
        self.enabled = False

    def _call(self, op: int, **sub) -> object:
        a = ffi.new("struct kfd_ioctl_dbg_trap_args *")
        a.pid, a.op = self.pid, op
        for part, fields in sub.items():
            for k, v in fields.items():
                setattr(getattr(a, part), k, v)
        return self.kfd.call("DBG_TRAP", a)

    def enable(self) -> None:
        """ENABLE once (KFD refuses a second one); the debug event fd is an eventfd nobody reads."""
        if self.enabled:
            return
        info = ffi.new("struct kfd_runtime_info *")
        fd = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            self._call(K.KFD_IOC_DBG_TRAP_ENABLE, enable=dict(exception_mask=_ALL_EXCEPTIONS, rinfo_ptr=addressof(info),
                                                             rinfo_size=ffi.sizeof(info[0]), dbg_fd=fd))
        finally:
            os.close(fd)
        self.enabled = True

    def queue_snapshot(self, n: int = 8) -> list:
        """GET_QUEUE_SNAPSHOT: one entry per queue, reporting (and clearing) every raised exception."""
        buf = ffi.new(f"struct kfd_queue_snapshot_entry[{n}]")
        a = self._call(K.KFD_IOC_DBG_TRAP_GET_QUEUE_SNAPSHOT, queue_snapshot=dict(
            exception_mask=_ALL_EXCEPTIONS, snapshot_buf_ptr=addressof(buf), num_queues=n,
            entry_size=ffi.sizeof("struct kfd_queue_snapshot_entry")))
        return [buf[i] for i in range(min(n, a.queue_snapshot.num_queues))]

    def memory_violation(self, gpu_id: int):
        """QUERY_EXCEPTION_INFO for the device's memory violation, or None if none was raised."""
        d = ffi.new("struct kfd_hsa_memory_exception_data *")
        try:
            self._call(K.KFD_IOC_DBG_TRAP_QUERY_EXCEPTION_INFO, query_exception_info=dict(
                info_ptr=addressof(d), info_size=ffi.sizeof(d[0]), source_id=gpu_id,
                exception_code=K.EC_DEVICE_MEMORY_VIOLATION, clear_exception=1))
        except HwdrvError as e:
            if getattr(e, "errno", None) == errno.ENODATA:     # nothing raised
                return None
            raise
        return d

    def suspend(self, queue_ids: list[int]) -> list[int]:
        """SUSPEND_QUEUES; returns the ids KFD flagged (error or invalid)."""
        return self._queues(K.KFD_IOC_DBG_TRAP_SUSPEND_QUEUES, "suspend_queues", queue_ids,
                            grace_period=GRACE_PERIOD_US, exception_mask=0)

    def resume(self, queue_ids: list[int]) -> list[int]:
        """RESUME_QUEUES; returns the ids KFD flagged."""
        return self._queues(K.KFD_IOC_DBG_TRAP_RESUME_QUEUES, "resume_queues", queue_ids)

    def _queues(self, op: int, part: str, ids: list[int], **extra) -> list[int]:
        arr = ffi.new(f"uint32_t[{len(ids)}]", ids)
        self._call(op, **{part: dict(queue_array_ptr=addressof(arr), num_queues=len(ids), **extra)})
        flags = K.KFD_DBG_QUEUE_ERROR_MASK | K.KFD_DBG_QUEUE_INVALID_MASK
        return [int(arr[i]) for i in range(len(ids)) if arr[i] & flags]


def read_save_area(ctx_save_va: int, size: int) -> SaveArea:
    """Parse a suspended queue's context-save area (``size`` bytes, CPU-mapped at ``ctx_save_va``)."""
    return parse_save_area(lambda off, n: hostmem.read(ctx_save_va + off, n) if n else b"", size)


def decode_register(name: str, value: int) -> dict:
    """Non-zero fields of SQ_WAVE_``name`` (gc11 field tables)."""
    pre = f"SQ_WAVE_{name}__"
    return {k[len(pre):]: f.decode(value) for k, f in vars(G).items()
            if k.startswith(pre) and isinstance(f, G.Field) and f.decode(value)}


def _program_at(dev, pc: int):
    for p in list(dev.programs) + list(dev._builtins.values()):
        if p.image.va <= pc < p.image.va + p.code_object.size:
            return p
    return None


def _access(mnemonic: str) -> str:
    if "atomic" in mnemonic:
        return "atomic"
    if "store" in mnemonic or mnemonic.startswith("ds_write"):
        return "write"
    if "load" in mnemonic or mnemonic.startswith("ds_read"):
        return "read"
    return ""


def _halted_or_trapped(w: SavedWave) -> bool:
    return bool(w.fields("STATUS").get("HALT") or w.fields("TRAPSTS").get("EXCP") or w.hwregs["TRAPSTS"])


def _wave_error(dev, w: SavedWave, exceptions: list[str]) -> tuple[WaveError, str]:
    pc = w.pc
    trapsts = w.fields("TRAPSTS")
    # the save area names no CU or wave slot (HW_ID is not saved): the error text says SE, workgroup, record
    we = WaveError(status={f"SQ_WAVE_{n}": w.hwregs[n] for n in SHOWN}, pc=pc)
    prog = _program_at(dev, pc)
    mnemonic = ""
    if prog is not None:
        we.kernel, we.offset = prog.name, pc - prog.code_va
        code = prog.code_object.relocated(prog.image.va)
        at = pc - prog.image.va
        words = [int.from_bytes(code[at + 4 * i:at + 4 * i + 4], "little") for i in range(3)
                 if at + 4 * i + 4 <= len(code)]
        d = describe(words)
        mnemonic = d.name
        we.source_line = d.text
    stopped = _halted_or_trapped(w)
    why = (exceptions if stopped else []) or [k for k in trapsts] or (["halted"] if w.fields("STATUS").get("HALT")
                                                                     else ["running"])
    we.error = (f"{'/'.join(why)} (SE {w.se_id}, workgroup {w.workgroup} wave {w.wave_in_group}, wave{w.lanes}, "
                f"{w.vgprs.shape[0]} VGPRs, context-save record {w.index})")
    return we, mnemonic


def _ring_commands(dev, report: HangReport) -> None:
    ring = dev.rings.get("compute")
    qs = next((q for q in report.queues if q.name.startswith("compute")), None)
    if ring is None or qs is None:
        return
    try:
        packets, stalled = decode_ring(ring.words, ring.rptr, ring.wptr)
    except HwdrvError as e:
        report.notes.append(f"compute ring not decodable: {e}")
        return
    for p in packets:
        text = p.text
        if p is stalled and p.name == "WAIT_REG_MEM" and p.body and (p.body[0] >> 4) & 3 == 1:
            addr = (p.body[2] << 32 | p.body[1]) & ~3
            mine = list(dev._buffers) + list(dev._signal_pages)
            buf = next((b for b in mine if b.host_visible and b.va <= addr < b.va + b.size), None)
            if buf is not None:
                text += f"; the word at {addr:#x} is now {int.from_bytes(hostmem.read(addr, 4), 'little'):#x}"
        qs.commands.append(Command(p.pos, text, stalled=p is stalled))
    if stalled is None:
        report.notes.append("the compute ring is drained (read pointer == write pointer): no packet is pending")


def _wave_state(dev, report: HangReport) -> None:
    dbg: Debugger = dev.debugger
    dbg.enable()
    queue_exc: dict[int, list[str]] = {}
    for e in dbg.queue_snapshot():
        names = exception_names(int(e.exception_status))
        queue_exc[int(e.queue_id)] = names
        if names:
            report.notes.append(f"KFD debugger: queue {e.queue_id} raised {', '.join(names)}")
    mv = dbg.memory_violation(dev.gpu_id)
    qid = dev._hw_queues.get("compute")
    if qid is None:
        return
    cwsr_va = dev._qbufs["compute"]["cwsr"].va
    # clear the header first: KFD writes it at suspend (from Linux 6.4 on) with wave_state_offset >=
    # ctl_stack_size > 0, so a header still zero afterwards means this kernel writes none
    hostmem.write(cwsr_va, bytes(WAVE_STATE_BYTES))
    flagged = dbg.suspend([qid])
    if flagged:
        report.notes.append(f"KFD debugger: SUSPEND_QUEUES refused queue {qid} ({flagged[0]:#x})")
        return
    try:
        area = read_save_area(cwsr_va, dev.node.queue_sizes().cwsr_size)
    finally:
        dbg.resume([qid])
    if area.wave_state_offset == 0:
        report.notes.append("KFD debugger: KFD wrote no context-save area header at SUSPEND_QUEUES (it does from "
                            "Linux 6.4 on), so no wave state")
        return
    wave_exc = [n for n in queue_exc.get(qid, []) if n.startswith("QUEUE_WAVE")]
    # stopped waves (halted, trapped) first: they are why the queue hangs
    waves = sorted(area.waves, key=lambda w: (not _halted_or_trapped(w), w.index))
    mnemonic = ""
    for k, w in enumerate(waves[:MAX_WAVES_SHOWN]):
        we, m = _wave_error(dev, w, wave_exc)
        mnemonic = mnemonic or m
        report.wave_errors.append(we)
        if k == 0:
            for n in SHOWN:
                report.registers.append(Register(f"SQ_WAVE_{n}", w.hwregs[n], w.fields(n),
                                                 f"context-save record {w.index} (CWSR trap handler)"))
    if len(waves) > MAX_WAVES_SHOWN:
        report.notes.append(f"KFD debugger: {len(waves)} waves were saved; the first {MAX_WAVES_SHOWN} are listed")
    if not waves:
        report.notes.append(f"KFD debugger: queue {qid} had no wave to save (nothing was executing)")
    access = _access(mnemonic)
    for f in report.faults:
        if mv is not None and int(mv.va) == f.address:
            f.source += "; confirmed by DBG_TRAP QUERY_EXCEPTION_INFO (EC_DEVICE_MEMORY_VIOLATION)"
        if access:
            f.access = f"{access}, {f.access}" if f.access else access
    if mv is not None and not report.faults:
        report.faults.append(Fault(int(mv.va), access=access, kind="GPUVM fault",
                                   source="DBG_TRAP QUERY_EXCEPTION_INFO (EC_DEVICE_MEMORY_VIOLATION)"))


def root_registers(dev) -> list[Register]:
    """The §7.3 status registers through debugfs ``amdgpu_regs`` (root, real hardware; dword x 4 is
    the file offset, no bank select: these registers are not per-queue)."""
    if dev.kernel.is_mock or os.geteuid() != 0:
        return []
    path = f"/sys/kernel/debug/dri/{dev.node.render_minor - 128}/amdgpu_regs"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return []
    out = []
    try:
        for name in ROOT_REGISTERS:
            addr = _SEG[getattr(G, f"reg{name}_BASE_IDX")] + getattr(G, f"reg{name}")
            try:
                v = int.from_bytes(os.pread(fd, 4, addr * 4), "little")
            except OSError as e:
                out.append(Register(name, 0, {"error": e.strerror}, path))
                continue
            pre = name + "__"
            fl = {k[len(pre):]: f.decode(v) for k, f in vars(G).items()
                  if k.startswith(pre) and isinstance(f, G.Field) and f.decode(v)}
            out.append(Register(name, v, fl, "debugfs amdgpu_regs"))
    finally:
        os.close(fd)
    return out


def dump_ring(dev, engine: str = "compute") -> bytes:
    """The ring of ``engine``'s queue as little-endian dwords from its start, up to the write
    pointer (for ``hwdrv decode --vendor amd``; a ring that has wrapped is returned whole)."""
    ring = dev.rings[engine]
    n = ring.wptr if ring.wptr < ring.ndw else ring.ndw
    return ring.words[:n].astype("<u4").tobytes()


def fill_diagnosis(dev, report: HangReport) -> None:
    """Add the decoded ring, the wave state and (root) the status registers to ``report``."""
    _ring_commands(dev, report)
    if getattr(dev, "debugger", None) is not None:
        try:
            _wave_state(dev, report)
        except HwdrvError as e:
            report.notes.append(f"KFD debugger interface unavailable: {e}")
    else:
        report.notes.append("no wave state: KFD refused RUNTIME_ENABLE, which its debugger interface needs")
    report.registers.extend(root_registers(dev))
