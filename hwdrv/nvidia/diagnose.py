"""NVIDIA hang and fault diagnosis: fill a :class:`~hwdrv.hang.HangReport` from real state.

Sources, cheapest first (reference nvidia.md 5.1-5.2), each optional: a source the driver
refuses becomes a note in the report, never an exception.

1. The channel error notifier (NvNotification[0]: Xid, engine, status), CPU-mapped at bring-up.
2. USERD of each channel (GPGet/GPPut, pushbuffer Get) and the pushbuffer segments hwdrv pushed
   (``Channel.history``), decoded with :mod:`hwdrv.nvidia.pbdecode`; the stalled method is the
   first semaphore acquire whose condition the semaphore memory does not meet, else the launch
   (or copy) of the first unfinished submission.
3. In-flight launches (the device's bounded record of compute submissions): kernel, grid,
   block, arguments read back from constant bank 0, the QMD decoded.
4. The GT200_DEBUGGER object: READ_ALL_SM_ERROR_STATES (100 SMs a call, so twice on an H100)
   and READ_MMU_FAULT_INFO; NV906F GET_MMU_FAULT_INFO on each channel.
5. Registers: USERD, the usermode timer, and the GH100 registers of :mod:`.regdump` through the
   two EXEC_REG_OPS controls (decoded by field; refused ones listed with their status).
6. The kernel log (:mod:`.kmsg`): NVRM's lines about this GPU since the device opened or the
   previous report (the Xid line and its fault details), or why the log cannot be read.

An SM's PC is mapped back to the kernel whose code holds it (loaded programs' address ranges), to
its PTX line (the mock's code is PTX text) or its SASS instruction (``nvdisasm``, where
installed). Records of the same fault from different sources are merged, and the report leads
with one sentence (:func:`.explain.headline`).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from ..errors import HwdrvError
from ..hang import Command, ErrorCode, Fault, HangReport, Launch, QueueState, Register, WaveError
from ..ioctl import hostmem
from ..ioctl.bindings import Field
from . import explain, pbdecode, regdump
from .gen import hopper as hw
from .gen import nv580 as nv
from .qmd import QMD_SIZE, QMD_WORDS

if TYPE_CHECKING:
    from .gpfifo import Channel
    from .device import NVDevice
    from .program import NVProgram

#: decoded methods kept around the stall point, per queue
WINDOW_BEFORE, WINDOW_AFTER = 48, 16
#: in-flight launches listed in a report (the rest are counted)
MAX_LAUNCHES = 32
_ACQUIRE_OPS = {hw.NVC56F_SEM_EXECUTE_OPERATION_ACQUIRE, hw.NVC56F_SEM_EXECUTE_OPERATION_ACQ_STRICT_GEQ,
                hw.NVC56F_SEM_EXECUTE_OPERATION_ACQ_CIRC_GEQ, hw.NVC56F_SEM_EXECUTE_OPERATION_ACQ_AND,
                hw.NVC56F_SEM_EXECUTE_OPERATION_ACQ_NOR}
_LAUNCH_METHODS = {("COMPUTE", hw.NVCBC0_SEND_PCAS_A), ("COPY", hw.NVC8B5_LAUNCH_DMA)}
#: Xids that name an MMU fault / an SM exception; every other Xid is a channel error
XID_MMU_FAULT = {x for x, n in nv.XID.items() if n == "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT"}
XID_EXCEPTION = {x for x, n in nv.XID.items() if n == "ROBUST_CHANNEL_GR_EXCEPTION"}


# ---- names from the generated facts ------------------------------------------------------------
def _names(module: Any, prefix: str, prefer: str = "") -> dict[int, str]:
    """value -> name (prefix stripped) of the integer constants named ``prefix*``; where several
    names share a value the one starting with ``prefer``, else the shortest, wins."""
    out: dict[int, str] = {}
    for n, v in sorted(vars(module).items(), key=lambda t: (not t[0][len(prefix):].startswith(prefer) if prefer else 0,
                                                               len(t[0]))):
        if n.startswith(prefix) and isinstance(v, int) and not isinstance(v, bool):
            out.setdefault(v, n[len(prefix):])
    return out


FAULT_TYPES = _names(nv, "NV_PFAULT_FAULT_TYPE_")
ACCESS_TYPES = _names(nv, "NV_PFAULT_ACCESS_TYPE_", prefer="VIRT_")
ENGINE_TYPES = _names(nv, "NV2080_ENGINE_TYPE_")
_ESR_PREFIX = "NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_"


def _fact(name: str) -> Any:
    """A generated fact by name from either module, or None where gen/ does not have it yet."""
    return getattr(nv, name, getattr(hw, name, None))


def warp_error_name(warp_esr: int) -> str:
    """The warp ESR error code's name, where the generated facts have the table (dev_graphics)."""
    table = {**_names(hw, _ESR_PREFIX), **_names(nv, _ESR_PREFIX)}
    field = _fact("NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR")
    code = field.decode(warp_esr) if isinstance(field, Field) else warp_esr
    return table.get(code, "")


def access_kind(access_type: int) -> str:
    """read / write / atomic / prefetch from an NV_PFAULT_ACCESS_TYPE value."""
    name = ACCESS_TYPES.get(access_type, "")
    for word in ("READ", "WRITE", "ATOMIC", "PREFETCH"):
        if word in name:
            return word.lower()
    return name.lower() or f"access type {access_type}"


def xid_name(xid: int) -> str:
    return nv.XID.get(xid, f"XID_{xid}")


def cause_for(xid: int | None, faults: Sequence[Fault], wave_errors: Sequence[WaveError]) -> str:
    """mmu_fault / exception / channel_error from what the hardware recorded; the Xid RM reported
    decides first (the other records can be stale or partial)."""
    if xid is not None and xid in XID_MMU_FAULT:
        return "mmu_fault"
    if xid is not None and xid in XID_EXCEPTION:
        return "exception"
    if faults:
        return "mmu_fault"
    if any(any(w.status.values()) for w in wave_errors):
        return "exception"
    return "channel_error"


# ---- notifier ----------------------------------------------------------------------------------
@dataclass
class NotifierState:
    """NvNotification[NV_CHANNELGPFIFO_NOTIFICATION_TYPE_ERROR] as RM wrote it."""
    timestamp_ns: int
    info32: int       # the Xid
    info16: int       # the NV2080 engine type
    status: int

    @property
    def set(self) -> bool:
        return self.status != 0


def read_notifier(raw: bytes) -> NotifierState:
    """Decode the 16 bytes of an NvNotification (offsets from the generated LAYOUT)."""
    size, off = nv.LAYOUT["NvNotification"]
    if len(raw) < size:
        raise HwdrvError(f"an NvNotification is {size} bytes, got {len(raw)}")
    # timeStamp.nanoseconds[0] holds the HIGH word: on an H100 (580.159.04) it matched the high
    # half of the usermode PTIMER while nanoseconds[1] carried the low half
    hi, lo = struct.unpack_from("<II", raw, off["timeStamp"])
    (info32,) = struct.unpack_from("<I", raw, off["info32"])
    (info16,) = struct.unpack_from("<H", raw, off["info16"])
    (status,) = struct.unpack_from("<H", raw, off["status"])
    return NotifierState(lo | hi << 32, info32, info16, status)


def _notifier(dev: "NVDevice", report: HangReport) -> NotifierState | None:
    idx = nv.NV_CHANNELGPFIFO_NOTIFICATION_TYPE_ERROR
    size = nv.LAYOUT["NvNotification"][0]
    raw = bytes(dev._notifier_view[idx * size:(idx + 1) * size])
    st = read_notifier(raw)
    fields: dict[str, Any] = {"status": hex(st.status), "info16_engine": ENGINE_TYPES.get(st.info16, st.info16),
                              "timestamp_ns": st.timestamp_ns}
    if st.set:
        fields["xid"] = st.info32
        fields["xid_name"] = xid_name(st.info32)
        sv = nv.NV_CHANNELGPFIFO_NOTIFICATION_STATUS_VALUE.decode(st.status)
        fields["status_in_progress"] = nv.NV_CHANNELGPFIFO_NOTIFICATION_STATUS_IN_PROGRESS.decode(st.status)
        fields["status_value"] = hex(sv)
    report.registers.append(Register("ERROR_NOTIFIER.info32", st.info32, fields,
                                     "channel error notifier NvNotification[TYPE_ERROR]"))
    if not st.set:
        return None
    report.error = ErrorCode("nvidia", "Xid", st.info32, xid_name(st.info32))
    return st


# ---- memory the CPU can read -------------------------------------------------------------------
def cpu_read(dev: "NVDevice", va: int, n: int) -> bytes | None:
    """``n`` bytes at GPU VA ``va`` if a CPU-mapped allocation of this device holds them (GPU VA
    == CPU VA in hwdrv's pool), else None."""
    for a in list(dev.mem.live.values()):
        if a.cpu_mapped and a.va <= va and va + n <= a.va + a.size:
            return hostmem.read(va, n)
    return None


def _read_words(dev: "NVDevice", va: int, n: int) -> list[int] | None:
    raw = cpu_read(dev, va, n * 4)
    return None if raw is None else list(struct.unpack(f"<{n}I", raw))


# ---- semaphores in a decoded stream --------------------------------------------------------------
@dataclass
class SemOp:
    """A host semaphore operation as the PBDMA executes it (its latched address and payload)."""
    pos: int             # position of the SEM_EXECUTE method in the sequence given
    address: int
    payload: int
    operation: int
    payload64: bool


def semaphore_ops(methods: Iterable[pbdecode.Method]) -> list[SemOp]:
    """Replay the host semaphore registers over ``methods``: every SEM_EXECUTE uses the address
    and payload last written (the PBDMA latches them)."""
    regs = {hw.NVC86F_SEM_ADDR_LO: 0, hw.NVC86F_SEM_ADDR_HI: 0, hw.NVC86F_SEM_PAYLOAD_LO: 0,
            hw.NVC86F_SEM_PAYLOAD_HI: 0}
    out = []
    for pos, m in enumerate(methods):
        if m.cls != "HOST" or m.value is None:
            continue
        if m.method in regs:
            regs[m.method] = m.value
        elif m.method == hw.NVC86F_SEM_EXECUTE:
            addr = ((hw.NVC86F_SEM_ADDR_LO_OFFSET.decode(regs[hw.NVC86F_SEM_ADDR_LO]) << hw.NVC86F_SEM_ADDR_LO_OFFSET.lo)
                    | (hw.NVC86F_SEM_ADDR_HI_OFFSET.decode(regs[hw.NVC86F_SEM_ADDR_HI]) << 32))
            p64 = hw.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE.decode(m.value) == hw.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE_64BIT
            payload = regs[hw.NVC86F_SEM_PAYLOAD_LO] | ((regs[hw.NVC86F_SEM_PAYLOAD_HI] << 32) if p64 else 0)
            out.append(SemOp(pos, addr, payload, hw.NVC56F_SEM_EXECUTE_OPERATION.decode(m.value), p64))
    return out


def acquire_met(op: SemOp, current: int) -> bool:
    """Whether an acquire's condition holds for semaphore value ``current`` (clc56f.h rules)."""
    mask = (1 << 64) - 1 if op.payload64 else 0xFFFFFFFF
    cur, pay = current & mask, op.payload & mask
    o = op.operation
    if o == hw.NVC56F_SEM_EXECUTE_OPERATION_ACQUIRE:
        return cur == pay
    if o == hw.NVC56F_SEM_EXECUTE_OPERATION_ACQ_STRICT_GEQ:
        return cur >= pay
    if o == hw.NVC56F_SEM_EXECUTE_OPERATION_ACQ_CIRC_GEQ:
        half = (mask + 1) >> 1
        return ((cur - pay) & mask) < half
    if o == hw.NVC56F_SEM_EXECUTE_OPERATION_ACQ_AND:
        return (cur & pay) != 0
    if o == hw.NVC56F_SEM_EXECUTE_OPERATION_ACQ_NOR:
        return (~(cur | pay) & mask) != 0
    return True


def find_stall(methods: Sequence[pbdecode.Method], read_sem: Callable[[int, bool], int | None]
               ) -> tuple[int | None, str]:
    """The position in ``methods`` of the method an unfinished submission is stopped at, and
    why: the first acquire whose semaphore does not satisfy it, else the last launch (the work
    in flight). ``read_sem(address, is_64bit)`` reads semaphore memory (None: unreadable)."""
    for op in semaphore_ops(methods):
        if op.operation not in _ACQUIRE_OPS:
            continue
        cur = read_sem(op.address, op.payload64)
        if cur is None:
            return op.pos, f"acquire on {op.address:#x} (semaphore memory not CPU-readable)"
        if not acquire_met(op, cur):
            return op.pos, (f"acquire waits for semaphore {op.address:#x} (payload {op.payload}, "
                              f"memory holds {cur})")
    launches = [i for i, m in enumerate(methods) if (m.cls, m.method) in _LAUNCH_METHODS]
    if launches:
        i = launches[-1]
        return i, f"{methods[i].name} in flight (the work it started has not finished)"
    return None, ""


# ---- queues ------------------------------------------------------------------------------------
def _userd_registers(ch: "Channel", kind: str) -> list[Register]:
    out = []
    for name in ("GPGet", "GPPut", "Get", "GetHi", "Put", "PutHi", "TopLevelGet", "TopLevelGetHi"):
        word = hw.ffi.offsetof("HopperAControlGPFifo", name) // 4
        out.append(Register(f"{kind}.USERD.{name}", int(ch.userd[word]), {}, "USERD"))
    return out


def _queue_state(dev: "NVDevice", kind: str, ch: "Channel", report: HangReport) -> None:
    tl = dev._timelines[kind]
    completed = tl.signal.value
    n = len(ch.ring)
    gp_get = ch.gp_get
    gp_put = int(ch.userd[ch._gpput])
    qs = QueueState(f"{kind} GPFIFO", gp_get, gp_put, "entries")
    report.queues.append(qs)
    report.registers.extend(_userd_registers(ch, kind))
    report.registers.append(Register(f"{kind}.timeline", completed,
                                     {"submitted": tl.value, "signal_va": hex(tl.signal.va)},
                                     "host memory (timeline signal)"))
    if not ch.history:
        return
    # Group segments into submissions: each submission ends with the timeline release.
    groups: list[list[tuple[int, int, int, list[pbdecode.Method] | None]]] = []
    cur: list = []
    tail_values: list[int | None] = []
    binding: dict[int, int] | None = None
    for put, va, ndw in ch.history:
        words = _read_words(dev, va, ndw)
        methods = pbdecode.decode(words, binding, base=0) if words is not None else None
        cur.append((put, va, ndw, methods))
        rel = [op for op in semaphore_ops(methods or []) if op.address == tl.signal.va
               and op.operation == hw.NVC56F_SEM_EXECUTE_OPERATION_RELEASE]
        if rel:
            groups.append(cur)
            tail_values.append(rel[-1].payload)
            cur = []
    if cur:
        groups.append(cur)
        tail_values.append(None)
    stalled_group = next((i for i, v in enumerate(tail_values) if v is None or v > completed), None)
    if stalled_group is None:
        stalled_group, stalled = len(groups) - 1, False
        report.notes.append(f"{kind}: every submission up to timeline value {completed} has finished")
    else:
        stalled = True
    group = groups[stalled_group]

    def read_sem(addr: int, p64: bool) -> int | None:
        raw = cpu_read(dev, addr, 8 if p64 else 4)
        return None if raw is None else int.from_bytes(raw, "little")

    lines: list[Command] = []
    why = ""
    flat: list[tuple[int, pbdecode.Method]] = []
    for put, va, ndw, methods in group:
        slot = put % n
        fetched = ("GPGet has passed it" if _consumed(put, gp_get, ch.put, n)
                   else "GPGet has not passed it: being fetched/processed, or not reached")
        entry = int(ch.ring[slot])
        lines.append(Command(va, f"GP[{slot}] {pbdecode.decode_gp_entry(entry).text} ({fetched})"))
        if methods is None:
            lines.append(Command(va, f"(pushbuffer at {va:#x} is not CPU-readable)"))
            continue
        for m in methods:
            flat.append((va + m.index * 4, m))
    k_stall = None
    if stalled and flat:
        k_stall, why = find_stall([m for _, m in flat], read_sem)
    lo, hi = 0, len(flat)
    if k_stall is not None:
        lo, hi = max(0, k_stall - WINDOW_BEFORE), min(len(flat), k_stall + WINDOW_AFTER + 1)
    elif len(flat) > WINDOW_BEFORE + WINDOW_AFTER:
        lo = len(flat) - (WINDOW_BEFORE + WINDOW_AFTER)
    if lo:
        lines.append(Command(flat[lo][0], f"... {lo} earlier methods of this submission left out"))
    for a, m in flat[lo:hi]:
        lines.append(Command(a, m.text, stalled=(k_stall is not None and flat[k_stall][1] is m)))
    if hi < len(flat):
        lines.append(Command(flat[hi][0], f"... {len(flat) - hi} later methods left out"))
    qs.commands = lines
    if stalled:
        tv = tail_values[stalled_group]
        report.notes.append(f"{kind}: first unfinished submission is timeline value "
                            f"{tv if tv is not None else '?'} (finished: {completed}); "
                            f"{why or 'stalled method not identified'}")


def _consumed(put: int, gp_get: int, total_put: int, n: int) -> bool:
    """Whether GP entry number ``put`` (monotonic) has been fetched, given GPGet (mod n)."""
    base = total_put - total_put % n
    c = base + gp_get
    if c > total_put:
        c -= n
    return put < c


# ---- launches and programs ---------------------------------------------------------------------
def _programs(dev: "NVDevice") -> list["NVProgram"]:
    progs = {id(p): p for p in list(getattr(dev, "programs", ()))}
    for _, launches in list(dev.submissions):
        for prog, *_ in launches:
            progs.setdefault(id(prog), prog)
    return list(progs.values())


def locate_pc(programs: Sequence["NVProgram"], pc: int) -> tuple[str, int | None, str]:
    """(kernel name, byte offset in the kernel, source line) of PC ``pc`` (a GPU VA) among the
    loaded programs; ("", None, "") if no program's code holds it."""
    for p in programs:
        start, size = p.program_va, p.program_size
        if start <= pc < start + size:
            return p.name, pc - start, _source_line(p, pc)
    for p in programs:
        code = getattr(p, "_code", None)
        if code is not None and code.va <= pc < code.va + code.size:
            return f"{p.name}'s image", pc - code.va, _source_line(p, pc)
    return "", None, ""


def _source_line(p: "NVProgram", pc: int) -> str:
    return p.source_line(pc)


def _format_arg(raw: bytes) -> str:
    if len(raw) == 8:
        return hex(int.from_bytes(raw, "little"))
    if len(raw) == 4:
        v = int.from_bytes(raw, "little")
        return str(v) if v < 1 << 24 else hex(v)
    return raw.hex()


def _launches(dev: "NVDevice", report: HangReport) -> None:
    tl = dev._timelines["compute"]
    completed = tl.signal.value
    inflight = [(v, ln) for v, launches in list(dev.submissions) if v > completed for ln in launches]
    for v, (prog, grid, block, qmd_va) in inflight[:MAX_LAUNCHES]:
        args: list[str] = []
        cb = cpu_read(dev, qmd_va + QMD_SIZE + prog.param_base, prog.param_size) if prog.param_size else b""
        if cb is None:
            args = ["(constant bank 0 not CPU-readable)"]
        else:
            for par in prog.params:
                args.append(_format_arg(cb[par.offset:par.offset + par.size]))
        report.launches.append(Launch(prog.name, tuple(grid), tuple(block), args, prog.program_va,
                                      f"compute submission {v} (QMD {qmd_va:#x})"))
    if len(inflight) > MAX_LAUNCHES:
        report.notes.append(f"{len(inflight) - MAX_LAUNCHES} more in-flight launches not listed")
    if inflight:
        v, (prog, _, _, qmd_va) = inflight[0]
        words = _read_words(dev, qmd_va, QMD_WORDS)
        if words is not None:
            report.registers.append(Register(f"QMD@{qmd_va:#x}", qmd_va, pbdecode.decode_qmd(words),
                                             f"QMD V04_00 of the first in-flight launch ({prog.name})"))


# ---- RM controls -------------------------------------------------------------------------------
def _control(dev: "NVDevice", handle: int, cmd: int, params: Any, name: str,
             report: HangReport) -> Any | None:
    """An RM control whose refusal is a note, not a failure."""
    try:
        return dev.rm.control(handle, cmd, params, name)
    except HwdrvError as e:
        report.notes.append(f"{name} refused: {e}")
        return None


def sm_count(dev: "NVDevice") -> int | None:
    """SMs on the GPU, as bring-up read them from GR_GET_INFO (None if RM did not say), at most
    GPCs x TPCs per GPC x SMs per TPC (on the H200, 2026-12-05, the core-count quotient came
    out near 16896 and a report made 169 READ_ALL_SM_ERROR_STATES calls, all but one refused)."""
    n = getattr(dev, "sm_count", 0) or None
    gr = getattr(dev, "gr", {}) or {}
    litter = (gr.get("LITTER_NUM_GPCS", 0) * gr.get("LITTER_NUM_TPC_PER_GPC", 0)
              * gr.get("LITTER_NUM_SM_PER_TPC", 0))
    return min(n, litter) if n and litter else n


def sm_error_registers(sm: int, s: Any) -> list[Register]:
    src = "NV83DE_CTRL_CMD_DEBUG_READ_ALL_SM_ERROR_STATES"
    out = []
    for name in ("hwwGlobalEsr", "hwwWarpEsr", "hwwWarpEsrPc", "hwwWarpEsrPc64", "hwwEsrAddr",
                 "hwwGlobalEsrReportMask", "hwwWarpEsrReportMask", "hwwCgaEsr", "hwwCgaEsrReportMask"):
        v = int(getattr(s, name))
        fields = {}
        if name == "hwwWarpEsr":
            en = warp_error_name(v)
            if en:
                fields["ERROR"] = en
        out.append(Register(f"SM{sm}.{name}", v, fields, src))
    return out


def _sm_errors(dev: "NVDevice", dbg: int, report: HangReport, programs: list) -> bool:
    """READ_ALL_SM_ERROR_STATES over every SM; returns the RM 'mmuFault.valid' flag."""
    count = sm_count(dev)
    if count is None:
        report.notes.append("GR_GET_INFO gave no SM count; reading 100 SMs only")
        count = nv.NV83DE_CTRL_DEBUG_MAX_SMS_PER_CALL
    per = nv.NV83DE_CTRL_DEBUG_MAX_SMS_PER_CALL
    mmu_valid = False
    for start in range(0, count, per):
        p = dev.nv.ffi.new("NV83DE_CTRL_DEBUG_READ_ALL_SM_ERROR_STATES_PARAMS *")
        p.hTargetChannel = dev.h_compute_ch
        p.startingSM = start
        p.numSMsToRead = min(per, count - start)
        if _control(dev, dbg, nv.NV83DE_CTRL_CMD_DEBUG_READ_ALL_SM_ERROR_STATES, p,
                    f"NV83DE_CTRL_CMD_DEBUG_READ_ALL_SM_ERROR_STATES(startingSM={start})", report) is None:
            break           # RM refuses the rest the same way: one note is enough
        mmu_valid |= bool(p.mmuFault.valid)
        for i in range(p.numSMsToRead):
            s = p.smErrorStateArray[i]
            if not (s.hwwGlobalEsr or s.hwwWarpEsr):
                continue
            sm = start + i
            pc = int(s.hwwWarpEsrPc64) or int(s.hwwWarpEsrPc)
            kernel, off, line = locate_pc(programs, pc) if pc else ("", None, "")
            wid = _fact("NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_WARP_ID")
            report.wave_errors.append(WaveError(
                sm, wid.decode(int(s.hwwWarpEsr)) if isinstance(wid, Field) else None,
                {"HWW_GLOBAL_ESR": int(s.hwwGlobalEsr), "HWW_WARP_ESR": int(s.hwwWarpEsr)},
                warp_error_name(int(s.hwwWarpEsr)), pc or None, int(s.hwwEsrAddr) or None,
                kernel, line, off))
            report.registers.extend(sm_error_registers(sm, s))
    if mmu_valid:
        report.notes.append("READ_ALL_SM_ERROR_STATES: mmuFault.valid is set")
    return mmu_valid


def _debugger_mmu_faults(dev: "NVDevice", dbg: int, report: HangReport) -> None:
    p = dev.nv.ffi.new("NV83DE_CTRL_DEBUG_READ_MMU_FAULT_INFO_PARAMS *")
    if _control(dev, dbg, nv.NV83DE_CTRL_CMD_DEBUG_READ_MMU_FAULT_INFO, p,
                "NV83DE_CTRL_CMD_DEBUG_READ_MMU_FAULT_INFO", report) is None:
        return
    for i in range(min(int(p.count), nv.NV83DE_CTRL_DEBUG_READ_MMU_FAULT_INFO_MAX_ENTRIES)):
        e = p.mmuFaultInfoList[i]
        report.faults.append(Fault(int(e.faultAddress), access_kind(int(e.accessType)),
                                   "FAULT_" + FAULT_TYPES.get(int(e.faultType), str(int(e.faultType))),
                                   "", "NV83DE_CTRL_CMD_DEBUG_READ_MMU_FAULT_INFO"))


def merge_faults(faults: Sequence[Fault]) -> list[Fault]:
    """One Fault per address: sources reporting the same fault are combined (first non-empty
    access / kind / engine wins, sources are joined)."""
    out: dict[int, Fault] = {}
    for f in faults:
        g = out.get(f.address)
        if g is None:
            out[f.address] = Fault(f.address, f.access, f.kind, f.engine, f.source)
            continue
        g.access, g.kind, g.engine = g.access or f.access, g.kind or f.kind, g.engine or f.engine
        g.source = f"{g.source}; {f.source}" if f.source not in g.source else g.source
    return list(out.values())


def merge_wave_errors(errors: Sequence[WaveError]) -> list[WaveError]:
    """Drop the records that only repeat a fault another record describes better: a record with
    no SM (the shader PC from a channel's fault record) of a kernel for which an SM reported its
    error state says the same fault with less; its address fills in where the SM record has none."""
    located = {w.kernel: w for w in errors if w.unit is not None and w.kernel}
    out = []
    for w in errors:
        better = located.get(w.kernel) if w.unit is None else None
        if better is not None:
            if better.address is None:
                better.address = w.address
            continue
        out.append(w)
    return out


def _sass_lines(dev: "NVDevice", report: HangReport, programs: list) -> None:
    """On the GPU (cubin programs): each wave error's SASS instruction, disassembled by nvdisasm
    from the kernel's code as the CPU can read it back."""
    todo = [w for w in report.wave_errors if w.kernel and w.offset is not None and not w.source_line
            and (w.unit is not None or w.offset)]
    progs = {p.name: p for p in programs if not p.is_ptx}
    todo = [w for w in todo if w.kernel in progs]
    if not todo:
        return
    if explain.nvdisasm_path() is None:
        report.notes.append("nvdisasm is not installed: SASS offsets are not disassembled "
                            "(pip install nvidia-cuda-nvdisasm)")
        return
    for w in todo:
        p = progs[w.kernel]
        code = cpu_read(dev, p.program_va, p.program_size)
        if code is None:
            report.notes.append(f"the code of {p.name} is not CPU-readable: not disassembled")
            continue
        ins = explain.disassemble(code).get(w.offset)
        if ins:
            w.source_line = f"SASS {w.kernel}+{w.offset:#x}: {ins}"


def _kernel_log(dev: "NVDevice", report: HangReport, xid: int | None) -> None:
    """The kernel log's new lines about this GPU; after an error, RM's line for ``xid`` is
    waited for (briefly: it is printed apart from the notifier write)."""
    cursor = getattr(dev, "kmsg", None)
    if cursor is None:
        report.kernel_log_error = "the device keeps no kernel-log position (it was not opened by hwdrv)"
        return
    lines = cursor.take(wait_for_xid=xid)
    if lines is None:
        report.kernel_log_error = cursor.error
        return
    report.kernel_log = lines
    if cursor.no_driver_lines:
        report.notes.append("the kernel log holds no NVRM line at all: the NVIDIA driver's messages do not "
                            "reach this log (a sandboxed kernel?), so the Xid lines cannot be shown")


def _channel_mmu_faults(dev: "NVDevice", report: HangReport, programs: list, engine: str) -> None:
    for kind, h in (("compute", dev.h_compute_ch), ("copy", dev.h_copy_ch)):
        p = dev.nv.ffi.new("NV906F_CTRL_GET_MMU_FAULT_INFO_PARAMS *")
        if _control(dev, h, nv.NV906F_CTRL_CMD_GET_MMU_FAULT_INFO, p,
                    f"NV906F_CTRL_CMD_GET_MMU_FAULT_INFO({kind} channel)", report) is None:
            continue
        addr = int(p.addrHi) << 32 | int(p.addrLo)
        text = dev.nv.ffi.string(p.faultString).decode(errors="replace")
        shader = {i: int(p.shaderProgramVA[i]) for i in range(nv.NV906F_CTRL_MMU_FAULT_SHADER_TYPES)
                  if p.shaderProgramVA[i]}
        if not (addr or text or shader):
            continue
        fields: dict[str, Any] = {"faultType": FAULT_TYPES.get(int(p.faultType), int(p.faultType)),
                                  "faultString": text}
        for i, va in shader.items():
            k, off, _ = locate_pc(programs, va)
            fields[f"shaderProgramVA[{i}]"] = f"{va:#x}" + (f" ({k}+{off:#x})" if k else "")
        report.registers.append(Register(f"{kind}.MMU_FAULT_INFO.addr", addr, fields,
                                         "NV906F_CTRL_CMD_GET_MMU_FAULT_INFO"))
        if addr:
            # the fault type by its dev_fault.h name (faultString is free text RM may truncate)
            ftype = FAULT_TYPES.get(int(p.faultType))
            report.faults.append(Fault(addr, "", f"FAULT_{ftype}" if ftype else text, engine,
                                       f"NV906F_CTRL_CMD_GET_MMU_FAULT_INFO on the {kind} channel"))
        # RM records the faulting shader's PC here even when the SM error states cannot be read:
        # on the H100 (2026-12-06) illegal_trap's `trap` faulted at illegal_trap+0x50, the
        # instruction itself; merge_wave_errors drops this record where an SM's record says more
        for va in shader.values():
            k, off, _ = locate_pc(programs, va)
            report.wave_errors.append(WaveError(
                None, pc=va, kernel=k or "", offset=off if k else None,
                error=(f"shader exception ({text})" if text else "shader exception")
                + " at the PC of the channel's fault record",
                address=addr or None))


def _usermode_timer(dev: "NVDevice", report: HangReport) -> None:
    lo = int.from_bytes(hostmem.read(dev._usermode_va + hw.NVC361_TIME_0, 4), "little")
    hi = int.from_bytes(hostmem.read(dev._usermode_va + hw.NVC361_TIME_1, 4), "little")
    report.registers.append(Register("USERMODE.TIME", lo | hi << 32, {"ns": lo | hi << 32},
                                     "HOPPER_USERMODE_A TIME_0/TIME_1 (GPU ns timer at report time)"))


# ---- the report --------------------------------------------------------------------------------
def fill_report(dev: "NVDevice", report: HangReport) -> None:
    """Gather every source into ``report``; a source that fails becomes a note."""
    def step(what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - one failed probe must not lose the rest
            report.notes.append(f"{what} failed: {type(e).__name__}: {e}")
            return None

    report.unit_name = "SM"
    if dev.rm is None:
        report.notes.append("device is closed: no state to read")
        return
    st = step("reading the error notifier", lambda: _notifier(dev, report))
    engine = ENGINE_TYPES.get(st.info16, f"engine type {st.info16}") if st else ""
    for kind, ch in dev.channels.items():
        step(f"reading the {kind} channel", lambda k=kind, c=ch: _queue_state(dev, k, c, report))
    step("listing in-flight launches", lambda: _launches(dev, report))
    programs = step("listing programs", lambda: _programs(dev)) or []
    step("usermode timer", lambda: _usermode_timer(dev, report))
    step("channel MMU fault info", lambda: _channel_mmu_faults(dev, report, programs, engine))
    dbg = step("allocating the GT200_DEBUGGER object", dev.debugger)
    if dbg:
        step("SM error states", lambda: _sm_errors(dev, dbg, report, programs))
        step("debugger MMU fault info", lambda: _debugger_mmu_faults(dev, dbg, report))
    step("register operations", lambda: regdump.read_registers(dev, report))
    for f in report.faults:
        if not f.engine and engine:
            f.engine = engine
    report.faults = merge_faults(report.faults)
    report.wave_errors = merge_wave_errors(report.wave_errors)
    step("disassembling the faulting SASS", lambda: _sass_lines(dev, report, programs))
    if st is not None and report.cause in ("error", "timeout", "requested"):
        specific = cause_for(st.info32, report.faults, report.wave_errors)
        if report.cause == "error":
            report.cause = specific
        else:
            report.notes.append(f"the channel error notifier is set ({specific}, Xid {st.info32})")
    if report.cause == "timeout" and not report.wave_errors and report.launches:
        report.notes.append(f"no SM reported an error: {report.launches[0].kernel} is still running "
                            f"(or waiting); dev.recover() abandons it")
    for r in getattr(dev, "recoveries", [])[-3:]:
        report.notes.append(f"earlier recovery: {r}")
    step("reading the kernel log", lambda: _kernel_log(dev, report, st.info32 if st is not None else None))
    report.headline = explain.headline(report)
