"""kgsl snapshot reader + crashdec-style hang reports (hwdrv.qcom.snapshot / crashdec / pm4decode).

Two independent sources of snapshots:
* a synthetic a6xx snapshot written here from kgsl_snapshot.h's struct layouts (the packed field
  orders, spelled out below) with PM4 streams made of the header values published in the reference
  (qcom.md §2.1 "checked header values"); it is also committed as tests/data/qcom/
  synthetic_snapshot.bin (regenerate: ``python tests/test_qcom_crashdec.py``);
* real faults provoked through the mock kgsl (hand-built packet streams), read back from
  /sys/class/kgsl/kgsl-3d0/snapshot/dump.
"""
from __future__ import annotations

import os
import struct
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwdrv.errors import HwdrvError, InvalidArgument
from hwdrv.ioctl import hostmem
from hwdrv.qcom import crashdec, ir3, pm4decode, snapshot
from hwdrv.qcom.gen import a6xx as A
from hwdrv.qcom.gen import adreno_pm4 as P

sys.path.insert(0, os.path.dirname(__file__))
from test_mock_kgsl import Kgsl, _parity, errno_of, pkt7  # noqa: E402

import hwdrv.mock.qcom as Q  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data", "qcom", "synthetic_snapshot.bin")
DUMP = "/sys/class/kgsl/kgsl-3d0/snapshot/dump"

# --- the synthetic snapshot (kgsl_snapshot.h, field by field) -------------------------------------------
# header values from reference qcom.md §2.1's table
NOP1, WFI, SET_MARKER1, IB3 = 0x70100001, 0x70268000, 0x70E50001, 0x70BF8003
LOAD_STATE6_FRAG3, RUN_OPENCL1, EVENT_WRITE4 = 0x70348003, 0x70310001, 0x70460004
T4_BB08_1, T4_B990_12, T4_A9B0_10 = 0x40BB0801, 0x40B9908C, 0x40A9B08A

RB, RBSIZE = 0xFC000000, 64
IB1, IB2, SHADER, OUT = 0x40_0001_0000, 0x40_0002_0000, 0x40_0003_0000, 0x40_0004_0000
FAULT_ADDR = OUT + 0x1010               # 0x10 past the end of the 4 KiB OUT buffer
LOCAL, GROUPS = 32, 4
PROGRAM = """mov.u32u32 r1.x, c0.x
mov.u32u32 r1.y, c0.y
mov.u32u32 r1.z, c0.z
(rpt2)nop
stg.u32 g[r1.x], r1.z, 1
end
nop"""
STG_PC = 4


def _sec(sid: int, body: bytes) -> bytes:
    # struct kgsl_snapshot_section_header { u16 magic; u16 id; u32 size; } __packed
    return struct.pack("<HHI", 0xABCD, sid, 8 + len(body)) + body


def _dw(words) -> bytes:
    return struct.pack(f"<{len(words)}I", *words)


def ib2_words() -> list[int]:
    nd = [3 | (LOCAL - 1) << 2, LOCAL * GROUPS, 0, 1, 0, 1, 0, 0x00CCC0CF, 0xFC, GROUPS, 1, 1]
    return ([T4_A9B0_10, 0x180, 0x41, 0, 0, SHADER & 0xFFFFFFFF, SHADER >> 32, 0, 0, 0, 0]   # 0..10
            + [T4_B990_12, *nd]                                                          # 11..23
            # CP_LOAD_STATE6_0: ST6_SHADER(0)<<14 | SS6_INDIRECT(2)<<16 | SB6_CS_SHADER(13)<<18 | 1<<22
            + [LOAD_STATE6_FRAG3, (2 << 16) | (13 << 18) | (1 << 22), SHADER & 0xFFFFFFFF, SHADER >> 32]  # 24..27
            + [RUN_OPENCL1, 0]                                                           # 28..29
            + [EVENT_WRITE4, 4, OUT & 0xFFFFFFFF, OUT >> 32, 0]                           # 30..34 (CACHE_FLUSH_TS)
            + [NOP1, 0xDEADBEEF])                                                        # 35..36


def ib1_words() -> list[int]:
    return [T4_BB08_1, 0, SET_MARKER1, 8, IB3, IB2 & 0xFFFFFFFF, IB2 >> 32, len(ib2_words()), WFI]


def synthetic_snapshot(with_sqe_stat: bool = True) -> bytes:
    out = [struct.pack("<III", 0x504D0002, 0xFFFFFFFF, 0x06030001)]        # kgsl_snapshot_header
    # OS: kgsl_snapshot_linux_v4 {int osid; u32 seconds, power_flags, power_level, power_interval_timeout,
    # grpclk, busclk; u64 ptbase, ptbase_lpac; u32 pid, pid_lpac, current_context, current_context_lpac,
    # ctxtcount; char release[32], version[32], comm[16], comm_lpac[16]} + ctxtcount x context_v2
    os_body = struct.pack("<iIIIIIIQQIIIII32s32s16s16s", 0x203, 1700000000, 0, 0, 0, 0, 0, 0x1234000, 0,
                          4242, 0, 3, 0, 2, b"6.1.0", b"#1 SMP", b"modeld", b"")
    os_body += struct.pack("<IIII", 3, 10, 9, 8) + struct.pack("<IIII", 5, 2, 2, 2)
    out.append(_sec(0x0101, os_body))
    # REGS: {u32 count} + count x (u32 offset, u32 value)
    regs = {0x800: RB & 0xFFFFFFFF, 0x801: RB >> 32, 0x806: 7, 0x807: 7,
            0x928: IB1 & 0xFFFFFFFF, 0x929: IB1 >> 32, 0x92A: 1,
            0x92B: IB2 & 0xFFFFFFFF, 0x92C: IB2 >> 32, 0x92D: 2,
            0x94A: 3 << 16,                     # CP_ROQ_AVAIL_IB2: 3 dwords still queued
            0x823: 0, 0x201: 0}
    out.append(_sec(0x0201, struct.pack("<I", len(regs)) + b"".join(struct.pack("<II", r, v) for r, v in regs.items())))
    # REGS_V2 (adreno_snapshot_registers_v2): BIT(31)|reg, value  /  reg, count, values
    out.append(_sec(0x0202, _dw([0x80000000 | 0xA9BC, 1,                       # SP_CS_INSTRLEN = 1
                                 0x210, 4, 0x1, 0, 0, 1 << 24])))               # RBBM_STATUS..3 (SMMU stalled)
    # INDEXED_REGS {u32 index_reg, data_reg; int start, count} + data: CP_SQE_STAT, $01 = the packet header
    if with_sqe_stat:
        out.append(_sec(0x0501, struct.pack("<IIii", 0x908, 0x909, 0, 0x33) + _dw([0x0123, RUN_OPENCL1] + [0] * 0x31)))
    # MVC {int ctxt_id, cluster_id} + runs (BIT(31)|start, end, values)
    out.append(_sec(0x1501, struct.pack("<ii", 0, 5) + _dw([0x80000000 | 0xB987, 0xB987, 0x100])))
    # RB_V2 {int start, end, rbsize, wptr, rptr, count; u32 ts_queued, ts_retired; u64 gpuaddr; u32 id}
    ring = [0] * RBSIZE
    ring[0:7] = [NOP1, 0x12345678, IB3, IB1 & 0xFFFFFFFF, IB1 >> 32, len(ib1_words()), WFI]
    out.append(_sec(0x0302, struct.pack("<iiiiiiIIQI", 0, RBSIZE, RBSIZE, 7, 7, RBSIZE, 10, 8, RB, 0) + _dw(ring)))
    # IB_V2 {u64 gpuaddr, ptbase, size (dwords)} + dwords
    for base, words in ((IB1, ib1_words()), (IB2, ib2_words())):
        out.append(_sec(0x0402, struct.pack("<QQQ", base, 0x1234000, len(words)) + _dw(words)))
    # GPU_OBJECT_V2 {int type; u64 gpuaddr, ptbase, size (dwords)} + data: the shader (type 1)
    code = ir3.assemble(PROGRAM, gpu_id=600)
    code += b"\0" * (128 - len(code))
    out.append(_sec(0x0B02, struct.pack("<iQQQ", 1, SHADER, 0x1234000, len(code) // 4) + code))
    # MEMLIST_V2 {int num_entries; u64 ptbase} + (u64 gpuaddr, u64 size, u32 type) entries
    mem = [(IB1, 4096, 0), (IB2, 4096, 0), (SHADER, 4096, 0), (OUT, 4096, 0)]
    out.append(_sec(0x0E02, struct.pack("<iQ", len(mem), 0x1234000) + b"".join(struct.pack("<QQI", *m) for m in mem)))
    # SHADER_V2 {int type, index, usptp, pipe_id, location; u32 size} + data
    out.append(_sec(0x1202, struct.pack("<iiiiiI", 3, 0, 1, 0, 0, 4) + _dw([1, 2, 3, 4])))
    # DEBUG {int type, size} + data: CP_ROQ (10)
    out.append(_sec(0x0901, struct.pack("<ii", 10, 2) + _dw([0xAAAA, 0xBBBB])))
    out.append(_sec(0x1901, b"\x01" * 16))                                 # TRACE_BUFFER: not decoded
    out.append(struct.pack("<HHI", 0xABCD, 0xFFFF, 8))                     # END
    return b"".join(out)


def pagefault_report() -> bytes:
    # struct kgsl_pagefault_report {u64 fault_addr; u64 reserved[2]; u32 fault_type; u32 __pad}
    return struct.pack("<QQQII", FAULT_ADDR, 0, 0, 0x2 | 0x4, 0)           # WRITE | TRANSLATION


def test_committed_synthetic_snapshot_is_what_the_format_facts_build():
    with open(DATA, "rb") as f:
        assert f.read() == synthetic_snapshot()


def test_parser_reads_every_section_of_the_synthetic_snapshot():
    s = snapshot.parse(synthetic_snapshot())
    assert (s.gpuid, s.chipid) == (0xFFFFFFFF, 0x06030001)
    assert [x.name for x in s.sections] == ["OS", "REGS", "REGS_V2", "INDEXED_REGS", "MVC", "RB_V2", "IB_V2", "IB_V2",
                                            "GPU_OBJECT_V2", "MEMLIST_V2", "SHADER_V2", "DEBUG", "TRACE_BUFFER", "END"]
    assert s.os.pid == 4242 and s.os.comm == "modeld" and s.os.current_context == 3 and s.os.release == "6.1.0"
    assert [(c.id, c.queued, c.consumed, c.retired) for c in s.os.contexts] == [(3, 10, 9, 8), (5, 2, 2, 2)]
    assert s.regs[0x92D] == 2 and s.regs[0xA9BC] == 1 and s.regs[0x213] == 1 << 24 and s.regs[0x210] == 1
    assert s.indexed[0].index_reg == 0x908 and len(s.indexed[0].values) == 0x33
    assert s.clusters[0].cluster_id == 5 and s.clusters[0].regs == {0xB987: 0x100}
    r = s.rings[0]
    assert (r.rptr, r.wptr, r.rbsize, r.gpuaddr, r.ts_queued, r.ts_retired) == (7, 7, RBSIZE, RB, 10, 8)
    assert [(b.gpuaddr, list(b.dwords)) for b in s.ibs] == [(IB1, ib1_words()), (IB2, ib2_words())]
    assert s.objects[0].kind == "SHADER" and s.objects[0].gpuaddr == SHADER and len(s.objects[0].data) == 128
    assert [(m.gpuaddr, m.size) for m in s.memlist][-1] == (OUT, 4096)
    assert s.shaders[0].usptp == 1 and s.shaders[0].dwords == [1, 2, 3, 4]
    assert s.debug[0].name == "CP_ROQ" and s.debug[0].dwords == [0xAAAA, 0xBBBB]
    assert [u.name for u in s.unknown] == ["TRACE_BUFFER"]


def _stalled(q):
    return [c for c in q.commands if c.stalled]


def test_crashdec_on_the_synthetic_snapshot():
    rep = crashdec.report_from_snapshot(synthetic_snapshot(), faults=crashdec.faults_from_report(pagefault_report()),
                                        fault_pc=STG_PC)
    assert rep.cause == "mmu_fault" and rep.error.kind == "kgsl fault" and rep.error.name == "PAGEFAULT"
    f = rep.faults[0]
    assert (f.address, f.access, f.kind) == (FAULT_ADDR, "write", "TRANSLATION")
    assert f">= buffer {OUT:#x}" in f.source and "0x10 past its end" in f.source       # crashdec's ">="
    ring, q1, q2 = rep.queues
    assert [c.offset for c in _stalled(ring)] == [RB + 8] and "CP_INDIRECT_BUFFER" in _stalled(ring)[0].text
    assert [c.offset for c in _stalled(q1)] == [IB1 + 16] and f"ADDR={IB2:#x}" in _stalled(q1)[0].text
    # IB2: 37 dwords, REM 2 + ROQ (3 - 1) -> estimate at dword 33; SQE $01 = RUN_OPENCL -> the packet at 28
    assert (q2.get, q2.put) == (33, 37)
    assert [c.offset for c in _stalled(q2)] == [IB2 + 4 * 28] and _stalled(q2)[0].text.startswith("CP_RUN_OPENCL")
    assert any(f"ESTIMATED CRASH LOCATION (crashdec): IB2 {IB2:#x} + 4*(37 - 4) = {IB2 + 4 * 33:#x}" in n
               for n in rep.notes)
    ln = rep.launches[0]
    assert (ln.grid, ln.block, ln.program_address) == ((GROUPS, 1, 1), (LOCAL, 1, 1), SHADER)
    w = rep.wave_errors[0]
    assert w.pc == STG_PC and w.offset == 8 * STG_PC and w.source_line == "stg.u32 g[r1.x], r1.z, 1"
    marked = [n for n in rep.notes if n.startswith(">>")]
    assert len(marked) == 1 and "stg.u32" in marked[0] and f"{SHADER + 8 * STG_PC:#x}" in marked[0]
    regs = {r.name: r for r in rep.registers}
    assert regs["HLSQ_CS_CNTL"].fields == {"CONSTLEN": 0, "ENABLED": 1}
    assert "MVC cluster 5" in regs["HLSQ_CS_CNTL"].source
    assert regs["RBBM_STATUS3"].fields["SMMU_STALLED_ON_FAULT"] == 1
    assert regs["CP_IB2_BASE"].value == IB2 and regs["CP_ROQ_AVAIL_IB2"].fields["REM"] == 3
    assert regs["CP_SQE_STAT[1]"].fields["packet"] == "CP_RUN_OPENCL (1 dwords)"
    assert any("TRACE_BUFFER" in n and "not decoded" in n for n in rep.notes)
    text = rep.to_text()
    assert ">> 0x4000020070  CP_RUN_OPENCL" in text


def test_fault_pc_inferred_from_the_program_when_none_is_given():
    """No fault_pc: the write fault at FAULT_ADDR (kgsl's record), the stalled RUN_OPENCL, and a program
    whose only global store is at STG_PC (index in PROGRAM above) give that PC, marked as inferred."""
    rep = crashdec.report_from_snapshot(synthetic_snapshot(), faults=crashdec.faults_from_report(pagefault_report()))
    (w,) = rep.wave_errors
    assert w.pc == STG_PC and w.address == FAULT_ADDR and "pc inferred" in w.error
    assert w.source_line == PROGRAM.splitlines()[STG_PC]
    assert rep.headline.startswith(f"kernel cs@{SHADER:#x} faulted on a write at {FAULT_ADDR:#x}")
    # a read fault: the program has no load, so nothing is marked and the note says why
    read = crashdec.faults_from_report(pagefault_report())
    read[0].access = "read"
    rep = crashdec.report_from_snapshot(synthetic_snapshot(), faults=read, program_names={SHADER: "k"})
    assert not rep.wave_errors and rep.launches[0].kernel == "k"
    assert not any(n.startswith((">>", "?>")) for n in rep.notes)


def test_faults_from_kgsl_dmesg_lines():
    # the dev_crit formats of kgsl_iommu_print_fault (kgsl_iommu.c), with C's %lX / %llx as Python's %X / %x
    log = ("kgsl kgsl-3d0: GPU PAGE FAULT: addr = %X pid= %d name=%s drawctxt=%d context pid = %d\n"
           % (FAULT_ADDR, 4242, "modeld", 3, 4243)
           + "kgsl kgsl-3d0: context=gfx3d_user TTBR0=0x%x (%s %s fault)\n" % (0x1234000, "write", "translation")
           + "kgsl kgsl-3d0: FAULTING BLOCK: TP\n")
    faults = crashdec.faults_from_dmesg(log)
    assert [(f.address, f.access, f.kind, f.engine) for f in faults] == [(FAULT_ADDR, "write", "TRANSLATION", "TP")]
    rep = crashdec.report_from_snapshot(synthetic_snapshot(), faults=faults)
    assert rep.faults[0].address == FAULT_ADDR and f">= buffer {OUT:#x}" in rep.faults[0].source


def test_without_sqe_stat_the_estimate_itself_is_marked():
    rep = crashdec.report_from_snapshot(synthetic_snapshot(with_sqe_stat=False))
    q2 = rep.queues[2]
    assert [c.offset for c in _stalled(q2)] == [IB2 + 4 * 35]         # first packet at/after dword 33
    assert rep.cause == "mmu_fault"                                      # RBBM_STATUS3.SMMU_STALLED_ON_FAULT


# --- faults provoked through the mock kgsl --------------------------------------------------------------
@pytest.fixture
def kern():
    k = Q.make_kernel(sync=True, hang_timeout=0.3)
    yield k
    k.qcom.engine.stop()


def _fault_report(kern, kg, words, **kw):
    ctx = kg.ctx()
    cpu, gpu = kg.buffer()
    ts = kg.run(ctx, cpu, gpu, words)
    assert errno_of(kg.wait, ctx, ts, 5000) == 35                      # EDEADLK: the context was invalidated
    data = kern.read_file(DUMP)
    assert snapshot.is_snapshot(data)
    return crashdec.report_from_snapshot(data, **kw), gpu, cpu


def test_mock_unknown_opcode(kern):
    rep, gpu, _ = _fault_report(kern, Kgsl(kern), [pkt7(P.CP_NOP, 0), pkt7(P.CP_WAIT_FOR_IDLE, 0), pkt7(0x7E, 0)])
    assert rep.cause == "exception" and "CP_OPCODE_ERROR" in rep.error.name and "CP_HW_ERROR" in rep.error.name
    ring, ib1 = rep.queues
    st = _stalled(ib1)
    assert [c.offset for c in st] == [gpu + 8] and "opcode 0x7e" in st[0].text
    assert [c.offset for c in ib1.commands] == [gpu, gpu + 4, gpu + 8]
    assert "CP_INDIRECT_BUFFER" in _stalled(ring)[0].text and f"ADDR={gpu:#x}" in _stalled(ring)[0].text
    regs = {r.name: r for r in rep.registers}
    assert regs["CP_INTERRUPT_STATUS"].fields["CP_OPCODE_ERROR"] == 1
    assert regs["RBBM_INT_0_STATUS"].fields["CP_HW_ERROR"] == 1
    assert not rep.faults


def test_mock_page_fault_from_a_mem_write(kern):
    words = [pkt7(P.CP_NOP, 0), pkt7(P.CP_MEM_WRITE, 3), 0x10, 0, 1, pkt7(P.CP_WAIT_FOR_IDLE, 0), pkt7(P.CP_NOP, 0)]
    rep, gpu, _ = _fault_report(kern, Kgsl(kern), words)
    assert rep.cause == "mmu_fault" and [(f.address, f.access) for f in rep.faults] == [(0x10, "write")]
    assert "CP_MEM_WRITE" in rep.faults[0].source and "inferred" in rep.faults[0].source
    st = _stalled(rep.queues[1])
    assert [c.offset for c in st] == [gpu + 4] and st[0].text == "CP_MEM_WRITE (3) ADDR=0x10"
    assert kern.qcom.faults[-1].address == 0x10 and kern.qcom.faults[-1].access == "write"   # what the mock saw


def test_mock_wait_reg_mem_that_never_completes(kern):
    kg = Kgsl(kern)
    _, poll = kg.buffer()
    words = [pkt7(P.CP_WAIT_FOR_IDLE, 0),
             pkt7(P.CP_WAIT_REG_MEM, 6), P.CP_WAIT_REG_MEM_0_FUNCTION.encode(P.WRITE_EQ)
             | P.CP_WAIT_REG_MEM_0_POLL.encode(P.POLL_MEMORY), poll & 0xFFFFFFFF, poll >> 32, 1, 0xFFFFFFFF, 16,
             pkt7(P.CP_NOP, 0)]
    rep, gpu, _ = _fault_report(kern, kg, words)
    assert rep.cause == "timeout" and rep.error.name == "RBBM_HANG_DETECT"
    st = _stalled(rep.queues[1])
    assert [c.offset for c in st] == [gpu + 4]
    assert "CP_WAIT_REG_MEM (6) FUNCTION=WRITE_EQ" in st[0].text and "POLL=POLL_MEMORY" in st[0].text
    assert f"POLL_ADDR={poll:#x}" in st[0].text and "REF=0x1" in st[0].text
    assert not rep.faults and any(f"reads {poll:#x}" in n for n in rep.notes)
    assert {r.name: r for r in rep.registers}["RBBM_INT_0_STATUS"].fields["RBBM_HANG_DETECT"] == 1


def test_mock_shader_fault_in_a_dispatch(kern):
    """The tinygrad CL-path dispatch (reference §2.6) of a shader that stores to an unmapped address:
    the ir3 emulator's store faults; the report names the dispatch, its grid and program, and the
    shader disassembly (read from the device, as the backend would) with the faulting store marked."""
    kg = Kgsl(kern)
    ctx = kg.ctx()
    cmd_cpu, cmd = kg.buffer(4 * 4096)
    args_cpu, args = kg.buffer()
    shader_cpu, shader = kg.buffer()
    code = ir3.assemble(PROGRAM, gpu_id=600)
    hostmem.write(shader_cpu, code)
    hostmem.write(args_cpu, struct.pack("<III", 0x10, 0, 7))              # c0.xyz: address 0x10, value 7

    def p4(reg, *vals):
        n = len(vals)
        return [P.CP_TYPE4_PKT | P.PKT_TYPE4_PKT_SIZE.encode(n) | P.PKT_TYPE4_PKT_SIZE_PARITY.encode(_parity(n))
                | P.PKT_TYPE4_PKT_OFFSET.encode(reg) | P.PKT_TYPE4_PKT_OFFSET_PARITY.encode(_parity(reg)), *vals]

    def ls6(typ, n, addr):
        return [pkt7(P.CP_LOAD_STATE6_FRAG, 3), P.CP_LOAD_STATE6_0_STATE_TYPE.encode(typ)
                | P.CP_LOAD_STATE6_0_STATE_SRC.encode(P.SS6_INDIRECT)
                | P.CP_LOAD_STATE6_0_STATE_BLOCK.encode(P.SB6_CS_SHADER)
                | P.CP_LOAD_STATE6_0_NUM_UNIT.encode(n), addr & 0xFFFFFFFF, addr >> 32]

    words = ([pkt7(P.CP_SET_MARKER, 1), P.CP_SET_MARKER_0_MODE.encode(P.RM6_COMPUTE)]
             + p4(A.SP_MODE_CONTROL, 2) + [pkt7(P.CP_WAIT_FOR_IDLE, 0)]
             + p4(A.HLSQ_CS_NDRANGE_0, 3 | (LOCAL - 1) << 2, LOCAL * GROUPS, 0, 1, 0, 1, 0, 0x00CCC0CF, 0xFC,
                  GROUPS, 1, 1)
             + p4(A.SP_CS_CTRL_REG0, 0x180, 0x41, 0, 0, shader & 0xFFFFFFFF, shader >> 32, 0, 0, 0, 0)
             + ls6(P.ST6_CONSTANTS, 1, args) + ls6(P.ST6_SHADER, 1, shader)
             + p4(A.HLSQ_CONTROL_2_REG, 0xFCFCFCFC, 0xFCFCFCFC, 0xFCFCFCFC, 0xFC, 0x100)
             + p4(A.SP_CS_INSTRLEN, 1) + p4(A.SP_CS_CONFIG, 0x100)
             + [pkt7(P.CP_RUN_OPENCL, 1), 0, pkt7(P.CP_WAIT_FOR_IDLE, 0), pkt7(P.CP_NOP, 0)])
    ts = kg.run(ctx, cmd_cpu, cmd, words)
    assert errno_of(kg.wait, ctx, ts, 5000) == 35
    assert kern.qcom.faults[-1].kind == "pagefault" and kern.qcom.faults[-1].address == 0x10

    def read_memory(addr, n):
        return hostmem.read(shader_cpu + addr - shader, n) if shader <= addr and addr + n <= shader + 4096 else None

    data = kern.read_file(DUMP)
    rep = crashdec.report_from_snapshot(data, read_memory=read_memory, fault_pc=STG_PC)
    run_at = cmd + 4 * words.index(pkt7(P.CP_RUN_OPENCL, 1))
    st = _stalled(rep.queues[1])
    assert [c.offset for c in st] == [run_at] and st[0].text.startswith("CP_RUN_OPENCL")
    ln = rep.launches[0]
    assert (ln.grid, ln.block, ln.program_address) == ((GROUPS, 1, 1), (LOCAL, 1, 1), shader)
    assert ln.kernel == f"cs@{shader:#x}"
    assert "the stalled packet" in ln.queue
    assert rep.wave_errors[0].source_line == "stg.u32 g[r1.x], r1.z, 1" and rep.wave_errors[0].pc == STG_PC
    assert any(n.startswith(">>") and "stg.u32" in n for n in rep.notes)
    regs = {r.name: r for r in rep.registers}
    assert "SP_CS_OBJ_START_HI" not in regs and any("the stop is the shader's" in n for n in rep.notes)
    assert regs["SP_CS_OBJ_START"].value == shader and regs["SP_CS_INSTRLEN"].fields["VALUE"] == 1
    assert regs["SP_CS_CTRL_REG0"].fields["FULLREGFOOTPRINT"] == 3 and regs["SP_CS_CTRL_REG0"].fields["THREADSIZE"] == 0
    assert regs["HLSQ_CS_NDRANGE_0"].fields["LOCALSIZEX"] == LOCAL - 1
    assert regs["HLSQ_CS_NDRANGE_0"].fields["KERNELDIM"] == 3
    # the snapshot alone (no device memory) still names the dispatch and says the code is missing
    rep2 = crashdec.report_from_snapshot(data)
    assert rep2.launches and any("not in the snapshot" in n for n in rep2.notes) and not rep2.wave_errors


# --- raw PM4 dumps, the CLI, the registry -------------------------------------------------------------
def test_decode_dump_of_raw_pm4_and_invalid_dwords():
    lines = pm4decode.decode_dump(_dw([NOP1, 0x1, 0x12345678, IB3, 0x1000, 0, 8, EVENT_WRITE4, 4]), "x")
    assert lines[0].startswith("0x00000000  70100001  CP_NOP (1)")
    assert "INVALID 0x12345678" in lines[1] and "type nibble 0x1" in lines[1]
    assert "CP_INDIRECT_BUFFER (3) ADDR=0x1000 SIZE=0x8" in lines[2]
    assert "TRUNCATED" in lines[3] and "4 payload dwords, 1 remain" in lines[3]
    with pytest.raises(InvalidArgument, match="whole number of 32-bit words"):
        pm4decode.decode_dump(b"\1\2\3", "x")


def test_headers_from_the_reference_decode_by_name():
    # reference qcom.md §2.1: every checked header value is a valid header of the named packet
    table = {0x70268000: "CP_WAIT_FOR_IDLE (0 dwords)", 0x70E50001: "CP_SET_MARKER (1 dwords)",
             0x70460004: "CP_EVENT_WRITE (4 dwords)", 0x70348003: "CP_LOAD_STATE6_FRAG (3 dwords)",
             0x70B30004: "CP_EXEC_CS (4 dwords)", 0x70310001: "CP_RUN_OPENCL (1 dwords)",
             0x70BC8006: "CP_WAIT_REG_MEM (6 dwords)", 0x703D8003: "CP_MEM_WRITE (3 dwords)",
             0x703E8003: "CP_REG_TO_MEM (3 dwords)", 0x70928000: "CP_WAIT_MEM_WRITES (0 dwords)",
             0x70100001: "CP_NOP (1 dwords)", 0x70BF8003: "CP_INDIRECT_BUFFER (3 dwords)",
             0x40BB0801: "type-4 write of 1 dwords to HLSQ_INVALIDATE_CMD",
             0x40B9908C: "type-4 write of 12 dwords to HLSQ_CS_NDRANGE_0",
             0x40A9B08A: "type-4 write of 10 dwords to SP_CS_CTRL_REG0",
             0x48B98385: "type-4 write of 5 dwords to HLSQ_CONTROL_2_REG"}
    assert {h: pm4decode.header_name(h) for h in table} == table
    # the odd-parity rule (reference §2.1: set bits of v plus the parity bit are odd) for every 14-bit count
    assert all(pm4decode.parity(v) == _parity(v) for v in range(1 << 14))
    for h in table:                                         # flipping a parity bit invalidates it
        assert pm4decode.header_problem(h ^ (1 << 7 if h >> 28 == 4 else 1 << 15))


SRC = os.environ.get("HWDRV_AUTOGEN_SRC")
PM4_XML = os.path.join(SRC or "", "mesa-25.0.7", "src", "freedreno", "registers", "adreno", "adreno_pm4.xml")


@pytest.mark.skipif(not os.path.isfile(PM4_XML), reason="set HWDRV_AUTOGEN_SRC to the pinned sources "
                    "(autogen/README.md) to check the field enum types against Mesa's adreno_pm4.xml")
def test_field_enum_types_match_mesa_xml():
    import xml.etree.ElementTree as ET
    root = ET.parse(PM4_XML).getroot()
    types = {}
    for dom in root.iter():
        if dom.tag.endswith("domain"):
            for reg in dom:
                for bf in reg:
                    if bf.tag.endswith("bitfield") and bf.get("type"):
                        key = f"{dom.get('name')}_{reg.get('name')}_{bf.get('name')}"
                        types.setdefault(key, set()).add(bf.get("type"))
    for field, enum in pm4decode._FIELD_ENUMS.items():
        assert enum in types[field], (field, types.get(field))


def test_hwdrv_decode_cli_reads_a_snapshot_and_a_raw_dump(tmp_path, capsys):
    from hwdrv.cli import main
    from hwdrv.registry import dump_decoder
    assert dump_decoder("qcom") is pm4decode.decode_dump
    snap = tmp_path / "snapshot.bin"
    snap.write_bytes(synthetic_snapshot())
    assert main(["decode", "--vendor", "qcom", str(snap)]) == 0
    out = capsys.readouterr().out
    assert "HangReport for qcom" in out and ">> 0x4000020070  CP_RUN_OPENCL" in out
    raw = tmp_path / "ib.bin"
    raw.write_bytes(_dw(ib1_words()))
    assert main(["decode", "--vendor", "qcom", str(raw)]) == 0
    assert "HLSQ_INVALIDATE_CMD = 0x0" in capsys.readouterr().out


# --- errors and fuzzing --------------------------------------------------------------------------------
def test_truncated_and_garbled_snapshots_name_the_offset():
    good = synthetic_snapshot()
    with pytest.raises(InvalidArgument, match="magic 0x00000000 at offset 0"):
        snapshot.parse(b"\0" * 16)
    with pytest.raises(InvalidArgument, match=r"truncated at offset 0x"):
        snapshot.parse(good[:-8])
    bad = bytearray(good)
    bad[12:14] = b"\x00\x00"                                   # first section's magic
    with pytest.raises(InvalidArgument, match="section header at offset 0xc has magic 0x0000"):
        snapshot.parse(bytes(bad))
    bad = bytearray(good)
    struct.pack_into("<I", bad, 12 + 4, 1 << 30)               # first section's size
    with pytest.raises(InvalidArgument, match="section OS at offset 0xc claims"):
        snapshot.parse(bytes(bad))
    with pytest.raises(InvalidArgument, match="RB_V2 section at offset"):
        snapshot.parse(_rb_with_count(1000))
    # a ring far larger than the dwords dumped: decoded from what is there (no ring-sized buffer)
    rep = crashdec.report_from_snapshot(_rb_with_count(4, rbsize=1 << 30, rptr=(1 << 30) - 2, wptr=1))
    assert rep.queues[0].get == (1 << 30) - 2 and rep.queues[0].put == 1


def _rb_with_count(count: int, rbsize: int = 4, rptr: int = 0, wptr: int = 0) -> bytes:
    body = struct.pack("<iiiiiiIIQI", 0, 4, rbsize, wptr, rptr, count, 0, 0, RB, 0) + _dw([0] * 4)
    return struct.pack("<III", 0x504D0002, 0, 0) + _sec(0x0302, body) + struct.pack("<HHI", 0xABCD, 0xFFFF, 8)


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOOD = synthetic_snapshot()


@FUZZ
@given(st.integers(0, len(GOOD) - 1), st.integers(0, 255), st.integers(0, len(GOOD)))
def test_fuzz_mutated_snapshots_fail_cleanly(pos, byte, cut):
    data = bytearray(GOOD)
    data[pos] = byte
    for d in (bytes(data), bytes(data[:cut])):
        try:
            crashdec.report_from_snapshot(d).to_text()
        except HwdrvError:
            pass


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data):
    for d in (data, struct.pack("<III", 0x504D0002, 0, 0) + data):
        try:
            crashdec.report_from_snapshot(d)
        except HwdrvError:
            pass
    words = data[:len(data) // 4 * 4]
    pm4decode.decode_dump(words, "fuzz")


if __name__ == "__main__":          # regenerate the committed synthetic snapshot
    os.makedirs(os.path.dirname(DATA), exist_ok=True)
    with open(DATA, "wb") as f:
        f.write(synthetic_snapshot())
