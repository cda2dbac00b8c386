"""Adreno hang/fault diagnosis from a kgsl snapshot, the way Mesa's crashdec does it (reference
qcom.md §4.3), into a :class:`hwdrv.hang.HangReport`.

* The ring: from CP_RB_RPTR go back a little, step forward to the first valid PM4 header (parity
  check), decode up to CP_RB_WPTR. The packet the CP is in (the CP_INDIRECT_BUFFER that called the
  current IB1, or the packet just before RPTR) is marked ``stalled``.
* The IBs: CP_IB1/IB2_BASE are the starts of the current IBs, CP_IBn_REM_SIZE the dwords not fetched
  yet (plus what the ROQ still queues, CP_ROQ_AVAIL_IBn.REM - 1). The IB's size comes from the
  CP_INDIRECT_BUFFER that called it, so the estimated position is ``base + 4*(size - rem)``. The CP
  prefetches, so the packet whose header CP_SQE_STAT $01 holds (the packet being run) is searched
  backwards from there; without it the first packet at the estimate is marked (crashdec's
  "ESTIMATED CRASH LOCATION"). IB2 is preferred when active.
* The error: CP_INTERRUPT_STATUS / RBBM_INT_0_STATUS bits by name → ``ErrorCode("qcom", "kgsl
  fault", ...)``; page faults from kgsl's fault info (``faults_from_report`` reads
  IOCTL_KGSL_GET_FAULT_REPORT's records, ``faults_from_dmesg`` kgsl's kernel-log lines) matched
  against the process's MEMLIST ("==" inside a buffer,
  ">=" past its end). Without a fault record, a stalled packet that touches memory names the address
  it touches (marked as inferred).
* CP and SP/HLSQ registers decoded by field from ``hwdrv.qcom.gen.a6xx``.
* The in-flight dispatch (the last CP_EXEC_CS / CP_RUN_OPENCL / CP_EXEC_CS_INDIRECT at or before the
  stalled packet, with the register writes of its IB replayed up to it): grid, local size, program
  address; its shader (SP_CS_INSTRLEN x 128 bytes at SP_CS_OBJ_START, from the snapshot or a
  ``read_memory`` callback) is disassembled with the fault PC marked when one is known.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable

import numpy as np

from ..hang import Command, ErrorCode, Fault, HangReport, Launch, QueueState, Register, WaveError
from .gen import a6xx as A
from .gen import adreno_pm4 as P
from .gen import kgsl as K
from .pm4decode import REG_FIELDS, Packet, header_name, reg_fields, resync, walk
from .snapshot import Snapshot, parse

#: dwords crashdec backs off from RPTR before resynchronising on a header (reference §4.3 step 1)
RING_BACKOFF = 12
#: dwords searched behind RPTR for the CP_INDIRECT_BUFFER of the running IB1: the CP may have
#: prefetched the rest of kgsl's per-command wrapper (about 40 dwords) and the next command's
IB_CALL_LOOKBACK = 256
#: bytes per SP_CS_INSTRLEN unit (reference §2.5: 16 instructions of 8 bytes)
INSTRLEN_UNIT = 128
#: bytes per ir3 instruction
IR3_INSTR = 8
#: bytes per const-file unit (a vec4 of 32-bit values: CP_LOAD_STATE6's DST_OFF and NUM_UNIT count them)
CONST_VEC4 = 16
DISPATCHES = ("CP_EXEC_CS", "CP_RUN_OPENCL", "CP_EXEC_CS_INDIRECT")

_CP_REGS = ("RBBM_STATUS", "RBBM_STATUS1", "RBBM_STATUS2", "RBBM_STATUS3", "RBBM_INT_0_STATUS",
            "CP_INTERRUPT_STATUS", "CP_HW_FAULT", "CP_PROTECT_STATUS", "CP_STATUS_1", "CP_RB_BASE", "CP_RB_CNTL",
            "CP_RB_RPTR", "CP_RB_WPTR", "CP_IB1_BASE", "CP_IB1_REM_SIZE", "CP_IB2_BASE", "CP_IB2_REM_SIZE",
            "CP_ROQ_AVAIL_IB1", "CP_ROQ_AVAIL_IB2", "CP_SQE_INSTR_BASE")
_ERROR_WORDS = ("ERROR", "HANG", "OOB", "TRAP", "OVERFLOW")
_REG_BY_NAME = {v: k for k, v in A.REGISTERS.items()}


def faults_from_report(data: bytes) -> list[Fault]:
    """Faults from the ``struct kgsl_pagefault_report`` records IOCTL_KGSL_GET_FAULT_REPORT fills
    (kgsl with FAULT_INFO contexts): address, READ/WRITE access, TRANSLATION/PERMISSION/... kind."""
    size = K.ffi.sizeof("struct kgsl_pagefault_report")
    if len(data) % size:
        from ..errors import InvalidArgument
        raise InvalidArgument(f"kgsl fault report: {len(data)} bytes is not a whole number of "
                              f"{size}-byte struct kgsl_pagefault_report records")
    recs = K.ffi.from_buffer("struct kgsl_pagefault_report[]", bytearray(data))
    out = []
    for r in recs:
        t = r.fault_type
        access = "write" if t & K.KGSL_PAGEFAULT_TYPE_WRITE else "read" if t & K.KGSL_PAGEFAULT_TYPE_READ else ""
        kinds = [n for n in ("TRANSLATION", "PERMISSION", "EXTERNAL", "TRANSACTION_STALLED")
                 if t & getattr(K, f"KGSL_PAGEFAULT_TYPE_{n}")]
        out.append(Fault(int(r.fault_addr), access, "|".join(kinds), "IOMMU", "kgsl GET_FAULT_REPORT"))
    return out


# kgsl_iommu_print_fault's dev_crit lines (kgsl_iommu.c):
#   "GPU PAGE FAULT: addr = %lX pid= %d name=%s drawctxt=%d context pid = %d"
#   "context=%s TTBR0=0x%llx (%s %s fault)"   (read|write, translation|permission|external|...)
#   "FAULTING BLOCK: %s"                      (on GPUs with iommu_fault_block)
_DMESG_FAULT = re.compile(r"GPU PAGE FAULT: addr = ([0-9A-Fa-f]+) pid= ?(-?\d+) name=(\S*) drawctxt=(\d+)")
_DMESG_KIND = re.compile(r"context=\S+ TTBR0=0x[0-9a-fA-F]+ \((read|write) (.+?) fault\)")
_DMESG_BLOCK = re.compile(r"FAULTING BLOCK: (.+)")


def faults_from_dmesg(text: str) -> list[Fault]:
    """Faults from the kernel log lines kgsl prints for a GPU page fault (``kgsl_iommu_print_fault``):
    the address, read/write, the fault type and, where printed, the faulting block."""
    out: list[Fault] = []
    for line in text.splitlines():
        m = _DMESG_FAULT.search(line)
        if m:
            out.append(Fault(int(m.group(1), 16), "", "", "IOMMU",
                             f"kgsl dmesg: pid {m.group(2)} ({m.group(3)}) drawctxt {m.group(4)}"))
            continue
        if not out:
            continue
        m = _DMESG_KIND.search(line)
        if m and not out[-1].access:
            out[-1].access, out[-1].kind = m.group(1), m.group(2).upper().replace(" ", "_")
            continue
        m = _DMESG_BLOCK.search(line)
        if m:
            out[-1].engine = m.group(1).strip()
    return out


def report_from_snapshot(data: bytes | Snapshot, *, device: str = "qcom (kgsl snapshot)",
                         faults: Iterable[Fault] = (), fault_pc: int | None = None,
                         read_memory: Callable[[int, int], bytes | None] | None = None,
                         context: int = 6, program_names: dict[int, str] | None = None,
                         program_params: dict[int, list[tuple[int, int, str]]] | None = None) -> HangReport:
    """A HangReport from a kgsl snapshot (bytes or parsed). ``faults``: kgsl's page-fault records
    (see :func:`faults_from_report`); ``fault_pc``: the faulting shader's PC in instructions, when
    known (else it is inferred from the shader where the evidence allows: :func:`suspect_pcs`);
    ``read_memory(addr, n)``: GPU memory the snapshot lacks (e.g. the shader), or None;
    ``context``: packets shown either side of a stalled one; ``program_names``: kernel names by
    program address (SP_CS_OBJ_START), for the caller's own programs; ``program_params``: their
    parameters by program address, as (byte offset in the const file, size, name), to show the
    dispatch's arguments as read from the constants its IB loaded."""
    snap = data if isinstance(data, Snapshot) else parse(data)
    faults = list(faults)
    cause, error = classify(snap, faults)
    report = HangReport(device=device, cause=cause, error=error, unit_name="SP")
    fill_report(report, snap, faults=faults, fault_pc=fault_pc, read_memory=read_memory, context=context,
                program_names=program_names, program_params=program_params)
    if report.faults and not error.code:
        report.cause = "mmu_fault"     # nothing latched, but the stalled packet's access explains the stop
    report.headline = headline(report)
    return report


def classify(snap: Snapshot, faults: Iterable[Fault] = ()) -> tuple[str, ErrorCode]:
    """(HangReport cause, ErrorCode) from the latched interrupt bits and any page faults."""
    regs = merged_registers(snap)[0]
    cp_int, rb_int = regs.get(A.CP_INTERRUPT_STATUS, 0), regs.get(A.RBBM_INT_0_STATUS, 0)
    cp_bits = _set_bits("CP_INTERRUPT_STATUS", cp_int)
    rb_bits = [b for b in _set_bits("RBBM_INT_0_STATUS", rb_int) if any(w in b for w in _ERROR_WORDS)]
    stalled = A.RBBM_STATUS3_SMMU_STALLED_ON_FAULT.decode(regs.get(A.RBBM_STATUS3, 0))
    faults = list(faults)
    if faults or stalled:
        cause = "mmu_fault"
    elif "RBBM_HANG_DETECT" in rb_bits and not cp_bits:
        cause = "timeout"
    else:
        cause = "exception"
    if cp_bits or rb_bits:
        return cause, ErrorCode("qcom", "kgsl fault", cp_int if cp_bits else rb_int, "|".join(cp_bits + rb_bits))
    if faults or stalled:
        return cause, ErrorCode("qcom", "kgsl fault", K.KGSL_FAULT_TYPE_PAGEFAULT, "PAGEFAULT")
    return cause, ErrorCode("qcom", "kgsl fault", 0, "no CP/RBBM error bit latched (IOMMU fault or timeout)")


def _set_bits(reg: str, value: int) -> list[str]:
    return [f for f, v in reg_fields(_REG_BY_NAME[reg], value).items() if v]


def merged_registers(snap: Snapshot) -> tuple[dict[int, int], dict[int, str]]:
    """Register values (REGS/REGS_V2 first, then MVC clusters in file order) and where each came from."""
    regs, src = {}, {}
    for r, v in snap.regs.items():
        regs[r], src[r] = v, "REGS"
    for c in snap.clusters:
        for r, v in c.regs.items():
            if r not in regs:
                regs[r], src[r] = v, f"MVC cluster {c.cluster_id} ctxt {c.ctxt_id}"
    return regs, src


def sqe_packet_header(snap: Snapshot, regs: dict[int, int]) -> int | None:
    """CP_SQE_STAT $01, the header of the packet the SQE is running: dword 1 of the CP_SQE_STAT
    indexed-register block, else a CP_SQE_STAT_DATA value in the register dump."""
    blk = snap.indexed_block(A.CP_SQE_STAT_ADDR)
    if blk is not None and blk.start <= 1 < blk.start + len(blk.values):
        return blk.values[1 - blk.start]
    return regs.get(A.CP_SQE_STAT_DATA)


def _u64(regs: dict[int, int], reg: int) -> int:
    return regs.get(reg, 0) | regs.get(reg + 1, 0) << 32


def fill_report(report: HangReport, snap: Snapshot, *, faults: Iterable[Fault] = (), fault_pc: int | None = None,
                read_memory: Callable[[int, int], bytes | None] | None = None, context: int = 6,
                program_names: dict[int, str] | None = None,
                program_params: dict[int, list[tuple[int, int, str]]] | None = None) -> None:
    """Add what ``snap`` says to ``report`` (queues, faults, registers, launches, wave errors, notes);
    ``report.error`` is set from the interrupt bits when the caller left it empty. Arguments as
    :func:`report_from_snapshot`'s."""
    regs, src = merged_registers(snap)
    if report.error is None:
        report.error = classify(snap, faults)[1]
    sqe = sqe_packet_header(snap, regs)
    _os_notes(report, snap)
    # --- the ring
    ring = next((r for r in snap.rings if r.gpuaddr == _u64(regs, A.CP_RB_BASE)), snap.rings[0] if snap.rings else None)
    ib1, ib2 = _u64(regs, A.CP_IB1_BASE), _u64(regs, A.CP_IB2_BASE)
    ring_pkts: list[Packet] = []
    if ring is not None:
        ring_pkts = _ring(report, ring, ib1, sqe, context)
    else:
        report.notes.append("the snapshot has no ringbuffer section")
    # --- the IBs, outermost first
    calls = ring_pkts
    innermost: tuple[str, list[Packet], Packet | None] | None = None
    levels = ((1, ib1, A.CP_IB1_REM_SIZE, A.CP_ROQ_AVAIL_IB1, A.CP_ROQ_AVAIL_IB1_REM),
              (2, ib2, A.CP_IB2_REM_SIZE, A.CP_ROQ_AVAIL_IB2, A.CP_ROQ_AVAIL_IB2_REM))
    for level, base, rem_reg, roq_reg, roq_field in levels:
        if not base:
            break
        rem = regs.get(rem_reg, 0)
        roq = roq_field.decode(regs.get(roq_reg, 0))
        if roq:
            rem += roq - 1
        inner = ib2 if level == 1 and ib2 else None
        got = _ib(report, snap, level, base, rem, calls, inner, sqe, context)
        if got is None:
            break
        calls = got[1]
        innermost = got
    # --- faults
    _faults(report, snap, list(faults), innermost)
    # --- registers
    _registers(report, regs, src, sqe)
    # --- the in-flight dispatch
    if innermost is not None:
        _launch(report, snap, regs, innermost, fault_pc, read_memory, program_names or {}, program_params or {})
    for sec in snap.unknown:
        report.notes.append(f"snapshot section {sec.name} at offset {sec.offset:#x} ({sec.size} bytes) not decoded")


def _os_notes(report: HangReport, snap: Snapshot) -> None:
    head = f"kgsl snapshot: chipid {snap.chipid:#010x}"
    if snap.os is not None:
        o = snap.os
        head += f", pid {o.pid} ({o.comm or '?'}), current context {o.current_context}"
        report.notes.append(head)
        for c in o.contexts:
            cons = f" consumed {c.consumed}" if c.consumed is not None else ""
            report.notes.append(f"context {c.id}: queued {c.queued}{cons} retired {c.retired}"
                                + (" <- current" if c.id == o.current_context else ""))
    else:
        report.notes.append(head)


def _window(pkts: list[Packet], at: int, context: int) -> list[Packet]:
    return pkts[max(0, at - context):at + context + 1]


def _commands(pkts: list[Packet], stalled: Packet | None) -> list[Command]:
    return [Command(p.addr, p.text(), p is stalled) for p in pkts]


def _ring(report: HangReport, ring, ib1: int, sqe: int | None, context: int) -> list[Packet]:
    n = ring.rbsize
    # decode from a little before RPTR (further back when an IB is running: its CP_INDIRECT_BUFFER
    # lies behind the prefetching RPTR) up to WPTR; ring dwords the section does not hold read as 0
    back = RING_BACKOFF + (IB_CALL_LOOKBACK if ib1 else 4 * context)
    begin = (ring.rptr - back) % n
    k_rptr = (ring.rptr - begin) % n
    length = min(max((ring.wptr - begin) % n, k_rptr), len(ring.dwords) + back)
    held = (begin + np.arange(length, dtype=np.int64) - ring.start) % n      # index into ring.dwords
    lin = np.where(held < len(ring.dwords), ring.dwords[np.minimum(held, max(len(ring.dwords) - 1, 0))]
                   if len(ring.dwords) else 0, 0).astype(np.uint32)
    pkts = walk(lin, 0, resync(lin, 0, length))
    for p in pkts:
        p.addr = ring.gpuaddr + 4 * ((begin + p.index) % n)
    stalled = None
    if ib1:
        calls = [p for p in pkts if p.name == "CP_INDIRECT_BUFFER" and p.field_values().get("ADDR") == ib1
                 and p.index < k_rptr]
        stalled = calls[-1] if calls else None
    else:
        before = [p for p in pkts if p.kind and p.index < k_rptr]
        match = [p for p in before if sqe is not None and p.header == sqe]
        stalled = match[-1] if match else (before[-1] if before else None)
    at = pkts.index(stalled) if stalled is not None else next((i for i, p in enumerate(pkts) if p.index >= k_rptr),
                                                               len(pkts))
    report.queues.append(QueueState(f"ringbuffer {ring.id} @ {ring.gpuaddr:#x}", ring.rptr, ring.wptr, "dwords",
                                    _commands(_window(pkts, at, context), stalled)))
    report.notes.append(f"ring {ring.id}: rptr {ring.rptr} wptr {ring.wptr} of {n} dwords; timestamps queued "
                        f"{ring.ts_queued} retired {ring.ts_retired}")
    return pkts


def _ib(report: HangReport, snap: Snapshot, level: int, base: int, rem: int, calls: list[Packet],
        inner: int | None, sqe: int | None, context: int):
    caller = [p for p in calls if p.name == "CP_INDIRECT_BUFFER" and p.field_values().get("ADDR") == base]
    size = caller[-1].field_values()["SIZE"] if caller else None
    buf = next((b for b in snap.buffers() if b.contains(base, 4)), None)
    if buf is None:
        report.notes.append(f"IB{level} {base:#x}: not in the snapshot (CP_IB{level}_REM_SIZE {rem})")
        return None
    avail = (buf.gpuaddr + len(buf.data) - base) // 4
    if size is None:
        size = avail
        report.notes.append(f"IB{level} {base:#x}: no CP_INDIRECT_BUFFER calling it was found; its size is taken "
                            f"from the snapshot's {buf.kind} buffer ({size} dwords)")
    words = np.frombuffer(buf.data, "<u4")[(base - buf.gpuaddr) // 4:][:min(size, avail)]
    pkts = walk(words, base)
    pos = max(0, size - rem)
    report.notes.append(f"ESTIMATED CRASH LOCATION (crashdec): IB{level} {base:#x} + 4*({size} - {rem}) = "
                        f"{base + 4 * pos:#x}")
    if inner is not None:
        calls_in = [p for p in pkts if p.name == "CP_INDIRECT_BUFFER" and p.field_values().get("ADDR") == inner
                    and p.index < max(pos, 1)]
        stalled = calls_in[-1] if calls_in else _pick(pkts, pos, None)
    else:
        stalled = _pick(pkts, pos, sqe)
    at = pkts.index(stalled) if stalled is not None else 0
    report.queues.append(QueueState(f"IB{level} @ {base:#x}", pos, size, "dwords",
                                    _commands(_window(pkts, at, context), stalled)))
    return (f"IB{level} @ {base:#x}", pkts, stalled)


def _pick(pkts: list[Packet], pos: int, sqe: int | None) -> Packet | None:
    """The packet being run: the one whose header SQE_STAT $01 holds, nearest before the estimate
    (the CP prefetches past it), else the first packet at the estimate (crashdec), else the last."""
    before = [p for p in pkts if p.kind and p.index < pos]
    after = [p for p in pkts if p.kind and p.index >= pos]
    if sqe is not None:
        m = [p for p in before if p.header == sqe] or [p for p in after if p.header == sqe]
        if m:
            return m[-1] if m[-1].index < pos else m[0]
    if after:
        return after[0]
    return before[-1] if before else None


def _buffer_match(snap: Snapshot, addr: int) -> str:
    """crashdec's buffer-list match: "== buffer" inside one, ">= buffer" just past its end."""
    for m in snap.memlist:
        if m.gpuaddr <= addr < m.gpuaddr + m.size:
            return f"== buffer {m.gpuaddr:#x} ({m.size} bytes, +{addr - m.gpuaddr:#x})"
    past = [m for m in snap.memlist if m.gpuaddr + m.size <= addr]
    if past:
        m = max(past, key=lambda m: m.gpuaddr + m.size)
        return f">= buffer {m.gpuaddr:#x} ({m.size} bytes; {addr - m.gpuaddr - m.size:#x} past its end)"
    return ""


def _faults(report: HangReport, snap: Snapshot, faults: list[Fault], innermost) -> None:
    for f in faults:
        where = _buffer_match(snap, f.address)
        if where and where not in f.source:
            f.source = f"{f.source}; {where}" if f.source else where
        report.faults.append(f)
    if faults or innermost is None or innermost[2] is None:
        return
    pkt = innermost[2]
    acc = pkt.memory_access()
    if acc is None:
        return
    addr, access = acc
    bits = classify(snap)[1].name
    if any(w in bits for w in ("OPCODE", "PROTECTION", "HANG", "UCODE", "ILLEGAL")):
        report.notes.append(f"the stalled {pkt.name} {'reads' if access != 'write' else 'writes'} {addr:#x}")
        return
    where = _buffer_match(snap, addr)
    kind = ("unmapped (in no buffer of the process)" if snap.memlist and not where.startswith("==")
            else "")
    report.faults.append(Fault(addr, access, kind, "CP", f"inferred: the target of the stalled {pkt.name} at "
                               f"{pkt.addr:#x} (the snapshot holds no IOMMU fault record)"
                               + (f"; {where}" if where else "")))


def _registers(report: HangReport, regs: dict[int, int], src: dict[int, str], sqe: int | None) -> None:
    names = [*_CP_REGS, *(n for r, n in sorted(A.REGISTERS.items()) if n.startswith(("SP_", "HLSQ_")))]
    for name in names:
        r = _REG_BY_NAME[name]
        if r not in regs or (name.endswith("_HI") and name[:-3] in A.REG64):   # shown with its low half
            continue
        value = _u64(regs, r) if name in A.REG64 else regs[r]
        fields = reg_fields(r, value)
        if all(f.width == 1 for _, f in REG_FIELDS.get(name, [])):
            fields = {k: v for k, v in fields.items() if v}      # a flag register: the flags that are set
        report.registers.append(Register(name, value, fields, src[r]))
    if sqe is not None:
        report.registers.append(Register("CP_SQE_STAT[1]", sqe, {"packet": header_name(sqe)}, "SQE $01"))


def _launch(report: HangReport, snap: Snapshot, regs: dict[int, int], innermost, fault_pc: int | None,
            read_memory, program_names: dict[int, str],
            program_params: dict[int, list[tuple[int, int, str]]]) -> None:
    qname, pkts, stalled = innermost
    if stalled is None:
        return
    upto = pkts.index(stalled)
    disp = next((p for p in reversed(pkts[:upto + 1]) if p.name in DISPATCHES), None)
    if disp is None:
        return
    state = dict(regs)                    # the dispatch's registers: this IB's writes replayed up to it
    for p in pkts[:pkts.index(disp)]:
        if p.kind == 4:
            for i, v in enumerate(p.payload):
                state[p.what + i] = v
    nd0 = state.get(A.HLSQ_CS_NDRANGE_0, 0)
    block = tuple(reg_fields(A.HLSQ_CS_NDRANGE_0, nd0)[f"LOCALSIZE{a}"] + 1 for a in "XYZ")
    fv = disp.field_values()
    if disp.name == "CP_EXEC_CS":
        grid = tuple(fv.get(f"NGROUPS_{a}", 0) for a in "XYZ")
    elif disp.name == "CP_RUN_OPENCL":
        grid = tuple(state.get(getattr(A, f"HLSQ_CS_KERNEL_GROUP_{a}"), 0) for a in "XYZ")
    else:
        grid = ("indirect", fv.get("ADDR", 0))
    prog = _u64(state, A.SP_CS_OBJ_START)
    nbytes = A.SP_CS_INSTRLEN_VALUE.decode(state.get(A.SP_CS_INSTRLEN, 0)) * INSTRLEN_UNIT
    name = program_names.get(prog, f"cs@{prog:#x}")
    if not report.faults and report.error is not None and not report.error.code:
        report.notes.append(f"nothing is latched in the CP while {disp.name} ran: the stop is the shader's (an IOMMU "
                            "fault from the SP/TP, or a shader that never ends); kgsl's fault report names the address")
    args = dispatch_args(pkts[:pkts.index(disp)], program_params.get(prog),
                         lambda a, n: snap.read(a, n) or (read_memory(a, n) if read_memory is not None else None))
    report.launches.append(Launch(name, grid, block, args, prog,
                                  f"{qname}: {disp.name} at {disp.addr:#x}"
                                  + (" (the stalled packet)" if disp is stalled else "")))
    code, where = snap.read(prog, nbytes), "snapshot"
    if code is None and read_memory is not None and nbytes:
        code, where = read_memory(prog, nbytes), "device memory"
    if not code:
        report.notes.append(f"shader {name}: {nbytes} bytes (SP_CS_INSTRLEN {nbytes // INSTRLEN_UNIT}) are not in the "
                            "snapshot; pass read_memory to disassemble it")
        return
    from .ir3 import disassemble
    lines = disassemble(bytes(code[:len(code) // IR3_INSTR * IR3_INSTR]), gpu_id=600)
    suspects: list[int] = []
    if fault_pc is not None:
        text = lines[fault_pc] if 0 <= fault_pc < len(lines) else "(past the end of the program)"
        report.wave_errors.append(WaveError(error="shader fault", pc=fault_pc, kernel=name,
                                            offset=IR3_INSTR * fault_pc, source_line=text))
    elif disp is stalled:
        suspects, why = suspect_pcs(lines, report, prog, nbytes)
        if len(suspects) == 1:
            fault_pc = suspects[0]
            addr = report.faults[0].address if report.faults and why.startswith(("write", "read")) else None
            report.wave_errors.append(WaveError(error=f"{why} (pc inferred from the program: kgsl reports no shader "
                                                      "PC)", pc=fault_pc, address=addr, kernel=name,
                                                offset=IR3_INSTR * fault_pc, source_line=lines[fault_pc]))
        elif suspects:
            report.notes.append(f"shader {name}: kgsl reports no shader PC; {why} could be any of the instructions "
                                f"marked ?> (pc {', '.join(map(str, suspects))})")
    report.notes.append(f"shader {name}: {len(lines)} instructions (SP_CS_INSTRLEN x {INSTRLEN_UNIT} bytes, from the "
                        f"{where})" + (f", fault pc {fault_pc}" if fault_pc is not None else ""))
    for i, text in enumerate(lines):
        mark = ">>" if i == fault_pc else "?>" if i in suspects else "  "
        report.notes.append(f"{mark} {i:04d} {prog + IR3_INSTR * i:#x}: {text}")


def dispatch_args(before: list[Packet], params: list[tuple[int, int, str]] | None,
                  read: Callable[[int, int], bytes | None]) -> list[str]:
    """A dispatch's kernel arguments (``name=0x...``), as it saw them: read (``read(addr, n)``) from
    where the last CP_LOAD_STATE6_FRAG of CS constants in ``before`` (the packets before the dispatch;
    indirect: EXT_SRC_ADDR, to const vec4 DST_OFF) loaded the const file. [] when unknown."""
    if not params:
        return []
    ld = next((p for p in reversed(before) if p.name == "CP_LOAD_STATE6_FRAG"
               and p.field_values().get("STATE_TYPE") == P.ST6_CONSTANTS
               and p.field_values().get("STATE_SRC") == P.SS6_INDIRECT
               and p.field_values().get("STATE_BLOCK") == P.SB6_CS_SHADER), None)
    if ld is None:
        return []
    fv = ld.field_values()
    base = fv.get("EXT_SRC_ADDR", 0) - CONST_VEC4 * fv.get("DST_OFF", 0)
    n = max(o + size for o, size, _ in params)
    raw = read(base, n)
    if not raw:
        return []
    return [(f"{name}=" if name else "") + (hex(int.from_bytes(raw[o:o + size], "little")) if size <= 8
                                            else f"<{size} bytes>") for o, size, name in params]


#: ir3 instructions that access memory through the IOMMU (global, image/SSBO, private, UBO), by
#: direction; local memory (ldl/stl/ldlw/stlw) is on-chip and cannot page-fault
_IR3_WRITES = ("stg", "stib", "stp", "stgb", "atomic")
_IR3_READS = ("ldg", "ldib", "ldp", "ldgb", "ldc", "atomic", "isam", "sam", "resinfo")
#: flow control that can jump backwards (a loop)
_IR3_BRANCHES = ("br", "brao", "braa", "brac", "bany", "ball", "jump", "getone", "shps")
_PREFIXES = re.compile(r"^(\([a-z0-9]+\))*")


def _mnemonic(line: str) -> str:
    return _PREFIXES.sub("", line).split(" ", 1)[0]


def suspect_pcs(lines: list[str], report: HangReport, prog: int, nbytes: int) -> tuple[list[int], str]:
    """The instructions of a stalled dispatch's program that can explain the stop, and what they did.
    kgsl records no shader PC (no register, snapshot section or fault record holds one), so the
    program is searched for the instructions that can cause the evidence: a page fault of the
    shader's data (not its instruction fetch) -> the global/image/private stores (write) or loads
    (read); an error with no page fault and nothing latched in the CP -> the words the disassembler
    cannot decode (the SP stops at an illegal instruction); a hang -> the backward branches. Only
    instructions up to the program's first ``end`` count."""
    body = []
    for i, text in enumerate(lines):
        body.append((i, _mnemonic(text), text))
        if _mnemonic(text) == "end":
            break
    shader_faults = [f for f in report.faults if not prog <= f.address < prog + max(nbytes, IR3_INSTR)]
    if shader_faults:
        access = shader_faults[0].access
        ops = _IR3_WRITES if access == "write" else _IR3_READS if access == "read" else _IR3_WRITES + _IR3_READS
        pcs = [i for i, m, _ in body if m.split(".", 1)[0] in ops or m.startswith(ops)]
        return pcs, f"{access or 'memory'} fault at {shader_faults[0].address:#x}"
    if report.faults:
        return [], "instruction fetch fault"
    name = latched(report)
    if "RBBM_HANG_DETECT" in name or report.cause == "timeout":
        pcs = [i for i, m, t in body if m in _IR3_BRANCHES and re.search(r"#-\d+", t)]
        return pcs, "a loop that does not end (a backward branch)"
    if report.error is not None and not any(w in name for w in _ERROR_WORDS) and "OPCODE" not in name:
        pcs = [i for i, m, _ in body if m == "raw"]
        return pcs, "an illegal instruction (no ir3 instruction has this encoding)"
    return [], ""


def latched(report: HangReport) -> str:
    """The error bits latched in CP_INTERRUPT_STATUS and RBBM_INT_0_STATUS, as listed in the report's
    registers ("|"-joined; "" when none): the evidence whatever ``report.error`` holds (a backend
    puts kgsl's reset status there)."""
    bits = [f for r in report.registers if r.name in ("CP_INTERRUPT_STATUS", "RBBM_INT_0_STATUS")
            for f, v in r.fields.items()
            if v and (r.name == "CP_INTERRUPT_STATUS" or any(w in f for w in _ERROR_WORDS))]
    return "|".join(bits)


def headline(report: HangReport) -> str:
    """One sentence from the evidence: which kernel, which instruction or packet, which address and
    access, and why it stopped (HangReport.headline)."""
    launch = report.launches[0].kernel if report.launches else ""
    wave = report.wave_errors[0] if report.wave_errors else None
    at = f" at pc {wave.pc} ({wave.source_line})" if wave is not None and wave.pc is not None else ""
    stalled = next((c.text for q in reversed(report.queues) for c in q.commands if c.stalled), "")
    packet = stalled.split(" (", 1)[0] if stalled else ""
    if report.faults:
        f = report.faults[0]
        where = f" ({f.kind})" if f.kind else ""
        who = f"kernel {launch}" if launch and (wave is not None or packet in DISPATCHES) else \
            f"the CP's {packet}" if packet else "the GPU"
        return f"{who} {'faulted on a ' + f.access if f.access else 'faulted on an access'} at {f.address:#x}" \
            f"{where}{at}"
    name = latched(report)
    if "RBBM_HANG_DETECT" in name:
        if packet in DISPATCHES and launch:
            return f"kernel {launch} never finished: the CP waited on it until RBBM hang detect fired{at}"
        polls = next((m.group(1) for m in (re.search(rf"the stalled {packet} reads (0x[0-9a-f]+)", n)
                                           for n in report.notes) if m), "") if packet else ""
        return f"the CP hung at {packet or 'an unknown packet'}" + (f" waiting on memory at {polls}" if polls else "") \
            + " until RBBM hang detect fired"
    if any(w in name for w in _ERROR_WORDS) or "OPCODE" in name:
        return f"the CP stopped with {name} at {packet or 'an unknown packet'}"
    if report.cause == "timeout" and launch:
        spin = f"; it can only spin at pc {wave.pc} ({wave.source_line}), its one backward branch" \
            if wave is not None and wave.pc is not None and "backward branch" in wave.error else ""
        return f"kernel {launch} did not finish in time and kgsl reported no fault{spin}"
    if launch and wave is not None:
        return f"kernel {launch} stopped{at}: {wave.error.split(' (', 1)[0]}"
    if launch:
        return f"kernel {launch} stopped the GPU (the CP latched no error)"
    return ""
