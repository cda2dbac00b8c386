"""The mock a6xx command processor fed hand-built packet streams (headers and payloads built here from
the generated Mesa fields, parity computed independently): register file, memory writes, events and
interrupts, waits, IB nesting, LOAD_STATE6 and the CsState a dispatch produces, faults."""
from __future__ import annotations

import struct
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hwdrv.errors import MockFault
from hwdrv.mock.engine import Work
from hwdrv.mock.gpumem import GpuPageTable
from hwdrv.mock.physmem import PhysBlock
from hwdrv.mock.qcom.cp import CommandProcessor, CpFault
from hwdrv.mock.qcom.cs_state import CsState
from hwdrv.qcom.gen import a6xx as A
from hwdrv.qcom.gen import adreno_pm4 as P

RB_VA, MEM_VA, RB_DW = 0x1_0000_0000, 0x40_0000_0000, 1024
MEM_SIZE = 1 << 20


def _parity(v: int) -> int:
    return 1 - bin(v).count("1") % 2


def pkt7(op: int, cnt: int) -> int:
    return (P.CP_TYPE7_PKT | P.PKT_TYPE7_PKT_SIZE.encode(cnt) | P.PKT_TYPE7_PKT_SIZE_PARITY.encode(_parity(cnt))
            | P.PKT_CP_TYPE7_OPCODE.encode(op) | P.PKT_CP_TYPE7_OPCODE_PARITY.encode(_parity(op)))


def pkt4(reg: int, vals: list[int]) -> list[int]:
    n = len(vals)
    return [P.CP_TYPE4_PKT | P.PKT_TYPE4_PKT_SIZE.encode(n) | P.PKT_TYPE4_PKT_SIZE_PARITY.encode(_parity(n))
            | P.PKT_TYPE4_PKT_OFFSET.encode(reg) | P.PKT_TYPE4_PKT_OFFSET_PARITY.encode(_parity(reg))] + vals


def lohi(a: int) -> list[int]:
    return [a & 0xFFFFFFFF, a >> 32]


class Gpu:
    def __init__(self, chip="A6XX", run_cs=None, hang_timeout=0.2):
        self.pt = GpuPageTable("test")
        self.ring = PhysBlock(RB_DW * 4, "ring")
        self.mem = PhysBlock(MEM_SIZE, "mem")
        self.pt.map(RB_VA, self.ring.host_addr, RB_DW * 4)
        self.pt.map(MEM_VA, self.mem.host_addr, MEM_SIZE)
        self.irqs = 0
        self.cp = CommandProcessor(self.pt, rb_base=RB_VA, rb_dwords=RB_DW, chip=chip, run_cs=run_cs,
                                   on_irq=self._irq, hang_timeout=hang_timeout)
        self.wptr = 0

    def _irq(self):
        self.irqs += 1

    def ring_write(self, words: list[int]) -> None:
        v = self.ring.view(np.uint32)
        for w in words:
            v[self.wptr] = w & 0xFFFFFFFF
            self.wptr = (self.wptr + 1) % RB_DW
        self.cp.set_wptr(self.wptr)

    def put(self, off: int, words: list[int]) -> int:
        """Write dwords at MEM_VA + off; returns the GPU address."""
        self.mem.view(np.uint32)[off // 4:off // 4 + len(words)] = np.array(words, dtype=np.uint64).astype(np.uint32)
        return MEM_VA + off

    def u32(self, off: int, n: int = 1) -> list[int]:
        return [int(x) for x in self.mem.view(np.uint32)[off // 4:off // 4 + n]]

    def run(self, limit=200) -> Work:
        for _ in range(limit):
            r = self.cp.work()
            if r is not Work.PROGRESS:
                return r
        raise AssertionError("CP never went idle")

    def ib(self, off: int, words: list[int]) -> list[int]:
        """Place an IB at MEM_VA + off and return the CP_INDIRECT_BUFFER packet calling it."""
        addr = self.put(off, words)
        return [pkt7(P.CP_INDIRECT_BUFFER, 3), *lohi(addr), len(words)]


def test_type4_writes_fill_the_register_file():
    g = Gpu()
    g.ring_write(pkt4(A.HLSQ_CS_NDRANGE_0, list(range(1, 13))) + pkt4(A.SP_CS_INSTRLEN, [5]))
    assert g.run() is Work.IDLE
    assert [g.cp.reg(A.HLSQ_CS_NDRANGE_0 + i) for i in range(12)] == list(range(1, 13))
    assert g.cp.reg(A.HLSQ_CS_KERNEL_GROUP_X) == 10 and g.cp.reg(A.SP_CS_INSTRLEN) == 5
    assert g.cp.rptr == g.wptr


def test_mem_write_event_write_and_irq():
    g = Gpu()
    dst = MEM_VA + 0x100
    ev0 = P.CP_EVENT_WRITE_0_EVENT.encode(P.CACHE_FLUSH_TS) | P.CP_EVENT_WRITE_0_IRQ.encode(1)
    g.ring_write([pkt7(P.CP_MEM_WRITE, 5), *lohi(dst), 1, 2, 3,
                  pkt7(P.CP_EVENT_WRITE, 1), P.CP_EVENT_WRITE_0_EVENT.encode(P.CACHE_INVALIDATE),
                  pkt7(P.CP_EVENT_WRITE, 4), ev0, *lohi(dst + 16), 0xABCD])
    g.run()
    assert g.u32(0x100, 5) == [1, 2, 3, 0, 0xABCD] and g.irqs == 1


def test_event_write_timestamp_flag_writes_the_always_on_counter():
    g = Gpu()
    ev = P.CP_EVENT_WRITE_0_EVENT.encode(P.RB_DONE_TS) | P.CP_EVENT_WRITE_0_TIMESTAMP.encode(1)
    g.ring_write([pkt7(P.CP_EVENT_WRITE, 4), ev, *lohi(MEM_VA), 0])
    g.run()
    time.sleep(0.01)
    g.ring_write([pkt7(P.CP_EVENT_WRITE, 4), ev, *lohi(MEM_VA + 8), 0])
    g.run()
    t0, t1 = struct.unpack("<QQ", struct.pack("<4I", *g.u32(0, 4)))
    assert 0 < t0 < t1 and (t1 - t0) >= 0.005 * 19.2e6


def test_reg_to_mem_copies_registers_and_the_always_on_counter():
    g = Gpu()
    g.ring_write(pkt4(A.SP_CS_TEX_COUNT, [0x11]) + pkt4(A.SP_CS_CONFIG, [0x22]) +
                 [pkt7(P.CP_REG_TO_MEM, 3), P.CP_REG_TO_MEM_0_REG.encode(A.SP_CS_TEX_COUNT) | P.CP_REG_TO_MEM_0_CNT.encode(2),
                  *lohi(MEM_VA),
                  pkt7(P.CP_REG_TO_MEM, 3), P.CP_REG_TO_MEM_0_REG.encode(A.CP_ALWAYS_ON_COUNTER) |
                  P.CP_REG_TO_MEM_0_CNT.encode(2) | P.CP_REG_TO_MEM_0_64B.encode(1), *lohi(MEM_VA + 8)])
    g.run()
    assert g.u32(0, 2) == [0x11, 0x22]
    assert struct.unpack("<Q", struct.pack("<2I", *g.u32(8, 2)))[0] > 0


def test_ib_nesting_runs_ib2_and_rejects_a_third_level():
    g = Gpu()
    ib2 = [pkt7(P.CP_MEM_WRITE, 3), *lohi(MEM_VA + 0x800), 0x22]
    call2 = g.ib(0x200, ib2)
    ib1 = [pkt7(P.CP_MEM_WRITE, 3), *lohi(MEM_VA + 0x804), 0x11], call2, [pkt7(P.CP_NOP, 0)]
    g.ring_write(g.ib(0x100, [w for part in ib1 for w in (part if isinstance(part, list) else [part])]))
    g.run()
    assert g.u32(0x800, 2) == [0x22, 0x11]
    # IB2 calling another IB: the CP has two IB levels
    inner = g.ib(0x400, [pkt7(P.CP_NOP, 0)])
    call_from_ib2 = g.ib(0x300, inner)
    g.ring_write(g.ib(0x380, call_from_ib2))
    with pytest.raises(CpFault) as ei:
        g.run()
    assert ei.value.kind == "opcode" and "IB2" in str(ei.value) and ei.value.ib[0] == 2


def test_ib_registers_show_base_and_remaining_dwords_at_a_fault():
    g = Gpu()
    words = [pkt7(P.CP_NOP, 0), pkt7(P.CP_NOP, 0), pkt7(0x7E, 0), pkt7(P.CP_NOP, 0), pkt7(P.CP_NOP, 0)]
    g.ring_write(g.ib(0x100, words))
    with pytest.raises(CpFault) as ei:
        g.run()
    f = ei.value
    assert "opcode 0x7e" in str(f) and f"{MEM_VA + 0x108:#x}" in str(f) and f.packet_addr == MEM_VA + 0x108
    assert (g.cp.reg(A.CP_IB1_BASE), g.cp.reg(A.CP_IB1_BASE + 1)) == tuple(lohi(MEM_VA + 0x100))
    assert g.cp.reg(A.CP_IB1_REM_SIZE) == 2            # dwords not fetched yet (crashdec's REM)
    assert g.cp.reg(A.CP_SQE_STAT_DATA) == words[2]
    assert A.CP_INTERRUPT_STATUS_CP_OPCODE_ERROR.decode(g.cp.reg(A.CP_INTERRUPT_STATUS))


@pytest.mark.parametrize("word,why", [(0x70348103, "parity"), (0x30000000, "neither"), (0x71000000, "bits 24-27"),
                                      (0x40BB0881, "parity")])
def test_invalid_headers_fault(word, why):
    g = Gpu()
    g.ring_write([word, 0, 0, 0])
    with pytest.raises(CpFault) as ei:
        g.run()
    assert why in str(ei.value) and ei.value.kind == "opcode"


def test_payload_running_past_the_ib_faults():
    g = Gpu()
    g.ring_write(g.ib(0x100, [pkt7(P.CP_MEM_WRITE, 3), *lohi(MEM_VA)]))
    with pytest.raises(CpFault, match="3 payload dwords but only 2 remain"):
        g.run()


def test_unmapped_ib_and_unmapped_write_are_page_faults():
    g = Gpu()
    g.ring_write([pkt7(P.CP_INDIRECT_BUFFER, 3), *lohi(0x5000_0000), 4])
    with pytest.raises(CpFault) as ei:
        g.run()
    assert ei.value.kind == "pagefault" and ei.value.address == 0x5000_0000
    g = Gpu()
    g.ring_write([pkt7(P.CP_MEM_WRITE, 3), *lohi(MEM_VA + MEM_SIZE - 2), 1])
    with pytest.raises(CpFault) as ei:
        g.run()
    assert ei.value.kind == "pagefault" and ei.value.access == "write"


def test_wait_reg_mem_blocks_until_memory_matches_then_hangs_if_never():
    g = Gpu(hang_timeout=5)
    flag = MEM_VA + 0x40
    ctl = P.CP_WAIT_REG_MEM_0_FUNCTION.encode(P.WRITE_GE) | P.CP_WAIT_REG_MEM_0_POLL.encode(P.POLL_MEMORY)
    g.ring_write([pkt7(P.CP_WAIT_REG_MEM, 6), ctl, *lohi(flag), 3, 0xFF, 16,
                  pkt7(P.CP_MEM_WRITE, 3), *lohi(MEM_VA + 0x80), 9])
    assert g.run() is Work.BLOCKED and g.u32(0x80) == [0]
    g.put(0x40, [0x102])        # masked with 0xFF: 2 < 3, still waiting
    assert g.run() is Work.BLOCKED
    g.put(0x40, [0x3])
    assert g.run() is Work.IDLE and g.u32(0x80) == [9]
    g = Gpu(hang_timeout=0.05)
    g.ring_write([pkt7(P.CP_WAIT_REG_MEM, 6), P.CP_WAIT_REG_MEM_0_FUNCTION.encode(P.WRITE_EQ) |
                  P.CP_WAIT_REG_MEM_0_POLL.encode(P.POLL_MEMORY), *lohi(flag), 1, 0xFFFFFFFF, 16])
    assert g.run() is Work.BLOCKED
    time.sleep(0.06)
    with pytest.raises(CpFault) as ei:
        g.run()
    assert ei.value.kind == "hang" and "CP_WAIT_REG_MEM" in str(ei.value)
    assert A.RBBM_INT_0_STATUS_RBBM_HANG_DETECT.decode(g.cp.reg(A.RBBM_INT_0_STATUS))


def test_wait_reg_mem_on_a_register_and_signed_compares():
    g = Gpu()
    g.ring_write(pkt4(A.CP_SCRATCH_REG(2), [0xFFFFFFFF]) +
                 [pkt7(P.CP_WAIT_REG_MEM, 6), P.CP_WAIT_REG_MEM_0_FUNCTION.encode(P.WRITE_LT) |
                  P.CP_WAIT_REG_MEM_0_SIGNED_COMPARE.encode(1) | P.CP_WAIT_REG_MEM_0_POLL.encode(P.POLL_REGISTER),
                  A.CP_SCRATCH_REG(2), 0, 0, 0xFFFFFFFF, 1])
    assert g.run() is Work.IDLE                         # -1 < 0 signed
    g.put(0, [0xFFFFFFF0])
    g.ring_write([pkt7(P.CP_WAIT_MEM_GTE, 4), 0, *lohi(MEM_VA), 5])
    assert g.run() is Work.BLOCKED                      # -16 >= 5 is false (signed)
    g.put(0, [5])
    assert g.run() is Work.IDLE


def test_ring_wraps_around():
    g = Gpu()
    g.wptr = RB_DW - 2
    g.cp.regs[A.CP_RB_RPTR] = RB_DW - 2
    g.ring_write([pkt7(P.CP_MEM_WRITE, 3), *lohi(MEM_VA), 0x77])
    g.run()
    assert g.u32(0) == [0x77] and g.cp.rptr == 2


def test_unknown_and_invalid_packets_are_named():
    g = Gpu()
    g.ring_write([pkt7(P.CP_SET_DRAW_STATE, 0)])
    with pytest.raises(CpFault, match="unknown packet CP_SET_DRAW_STATE"):
        g.run()
    g = Gpu()
    g.ring_write([pkt7(P.CP_EVENT_WRITE, 1), P.CP_EVENT_WRITE_0_EVENT.encode(0xFF)])
    with pytest.raises(CpFault, match="event 255"):
        g.run()


def _cs_setup(g: Gpu, shader_off=0x1000, instrlen=1) -> list[int]:
    shader = g.put(shader_off, [0] * 32)
    ctrl0 = (A.SP_CS_CTRL_REG0_THREADSIZE.encode(A.THREAD128) | A.SP_CS_CTRL_REG0_FULLREGFOOTPRINT.encode(3)
             | A.SP_CS_CTRL_REG0_HALFREGFOOTPRINT.encode(1) | A.SP_CS_CTRL_REG0_MERGEDREGS.encode(1)
             | A.SP_CS_CTRL_REG0_BRANCHSTACK.encode(2))
    ndr0 = (A.HLSQ_CS_NDRANGE_0_KERNELDIM.encode(3) | A.HLSQ_CS_NDRANGE_0_LOCALSIZEX.encode(31)
            | A.HLSQ_CS_NDRANGE_0_LOCALSIZEY.encode(1) | A.HLSQ_CS_NDRANGE_0_LOCALSIZEZ.encode(0))
    cntl0 = (A.HLSQ_CS_CNTL_0_WGIDCONSTID.encode(0xC4) | A.HLSQ_CS_CNTL_0_WGSIZECONSTID.encode(0xFC)
             | A.HLSQ_CS_CNTL_0_WGOFFSETCONSTID.encode(0xFC) | A.HLSQ_CS_CNTL_0_LOCALIDREGID.encode(0x00))
    cntl1 = A.HLSQ_CS_CNTL_1_LINEARLOCALIDREGID.encode(0xFC) | A.HLSQ_CS_CNTL_1_THREADSIZE.encode(A.THREAD128)
    return (pkt4(A.SP_CS_CTRL_REG0, [ctrl0, A.SP_CS_CTRL_REG1_SHARED_SIZE.encode(3), 0, 0, *lohi(shader),
                                     A.SP_CS_PVT_MEM_PARAM_MEMSIZEPERITEM.encode(2), *lohi(MEM_VA + 0x8000),
                                     A.SP_CS_PVT_MEM_SIZE_TOTALPVTMEMSIZE.encode(4)])
            + pkt4(A.SP_CS_INSTRLEN, [instrlen])
            + pkt4(A.HLSQ_CS_NDRANGE_0, [ndr0, 64 * 4, 0, 2 * 5, 0, 1, 0, cntl0, cntl1])
            + pkt4(A.HLSQ_CS_CNTL, [A.HLSQ_CS_CNTL_CONSTLEN.encode(64 >> A.HLSQ_CS_CNTL_CONSTLEN_SHR)
                                    | A.HLSQ_CS_CNTL_ENABLED.encode(1)]))


def _ls6(typ, src, block, n, off=0, payload=(), addr=0):
    d0 = (P.CP_LOAD_STATE6_0_DST_OFF.encode(off) | P.CP_LOAD_STATE6_0_STATE_TYPE.encode(typ)
          | P.CP_LOAD_STATE6_0_STATE_SRC.encode(src) | P.CP_LOAD_STATE6_0_STATE_BLOCK.encode(block)
          | P.CP_LOAD_STATE6_0_NUM_UNIT.encode(n))
    return [pkt7(P.CP_LOAD_STATE6_FRAG, 3 + len(payload)), d0, *lohi(addr), *payload]


def test_exec_cs_hands_the_emulator_the_decoded_state():
    seen: list[CsState] = []
    g = Gpu(run_cs=seen.append)
    consts = list(range(100, 108))                     # c2, c3 (8 dwords)
    ibo = g.put(0x3000, list(range(16)))
    ubo_desc = [MEM_VA & 0xFFFFFFFF, A.A6XX_UBO_1_BASE_HI.encode(MEM_VA >> 32) | A.A6XX_UBO_1_SIZE.encode(4)]
    shader_words = list(range(32))
    shader = g.put(0x2000, shader_words)
    g.ring_write(_cs_setup(g)
                 + _ls6(P.ST6_CONSTANTS, P.SS6_DIRECT, P.SB6_CS_SHADER, 2, off=2, payload=consts)
                 + _ls6(P.ST6_IBO, P.SS6_INDIRECT, P.SB6_CS_SHADER, 1, off=1, addr=ibo)
                 + _ls6(P.ST6_UBO, P.SS6_DIRECT, P.SB6_CS_SHADER, 1, payload=ubo_desc)
                 + _ls6(P.ST6_SHADER, P.SS6_INDIRECT, P.SB6_CS_SHADER, 1, addr=shader)
                 + pkt4(A.SP_CS_TEX_CONST, lohi(MEM_VA + 0x5000)) + pkt4(A.SP_CS_IBO, lohi(ibo)) + pkt4(A.SP_CS_IBO_COUNT, [1])
                 + pkt4(A.SP_MODE_CONTROL, [A.SP_MODE_CONTROL_CONSTANT_DEMOTION_ENABLE.encode(1)
                                            | A.SP_MODE_CONTROL_ISAMMODE.encode(2)])
                 + [pkt7(P.CP_SET_MARKER, 1), P.CP_SET_MARKER_0_MODE.encode(P.RM6_COMPUTE),
                    pkt7(P.CP_EXEC_CS, 4), 0, 4, 5, 1])
    g.run()
    assert len(seen) == 1
    s = seen[0]
    assert s.groups == (4, 5, 1) and s.local_size == (32, 2, 1) and s.kernel_dim == 3
    assert s.global_size == (256, 10, 1) and s.global_offset == (0, 0, 0)
    assert s.threadsize == 128 and (s.full_regs, s.half_regs, s.mergedregs, s.branchstack) == (3, 1, True, 2)
    assert s.shader_iova == MEM_VA + 0x1000 and s.instrlen == 1
    assert s.preloaded == struct.pack("<32I", *shader_words)
    assert s.consts[2:4].ravel().tolist() == consts and s.consts_loaded[2:4].all() and not s.consts_loaded[0]
    assert s.constlen_vec4 == 64 and s.const_enabled
    assert s.ibos[1].tolist() == list(range(16)) and 0 not in s.ibos
    assert (s.ibo_table_iova, s.ibo_count, s.tex_const_iova) == (ibo, 1, MEM_VA + 0x5000)
    assert A.A6XX_UBO_1_SIZE.decode(int(s.ubos[0][1])) == 4
    assert (s.wgid_regid, s.localid_regid, s.linearlocalid_regid) == (0xC4, 0x00, 0xFC)
    assert s.shared_size == 4 * 1024
    assert s.pvt_iova == MEM_VA + 0x8000 and s.pvt_per_fiber == 1024 and s.pvt_total == 4 * 4096
    assert s.constant_demotion and s.isammode == 2 and s.memory is g.pt


def test_invalidate_drops_loaded_state_and_run_opencl_reads_kernel_group_regs():
    seen: list[CsState] = []
    g = Gpu(run_cs=seen.append)
    g.ring_write(_cs_setup(g) + _ls6(P.ST6_CONSTANTS, P.SS6_DIRECT, P.SB6_CS_SHADER, 1, payload=[1, 2, 3, 4])
                 + pkt4(A.HLSQ_INVALIDATE_CMD, [A.HLSQ_INVALIDATE_CMD_CS_STATE.encode(1)])
                 + pkt4(A.HLSQ_CS_KERNEL_GROUP_X, [7, 1, 1]) + [pkt7(P.CP_RUN_OPENCL, 1), 0])
    g.run()
    assert not seen[0].consts_loaded.any() and seen[0].groups == (7, 1, 1)


def test_dispatch_faults_when_instrlen_runs_past_the_shader_buffer():
    g = Gpu(run_cs=lambda s: None)
    g.ring_write(_cs_setup(g, shader_off=MEM_SIZE - 128, instrlen=2) + [pkt7(P.CP_EXEC_CS, 4), 0, 1, 1, 1])
    with pytest.raises(CpFault) as ei:
        g.run()
    assert ei.value.kind == "pagefault" and "SP_CS_INSTRLEN" in str(ei.value)


def test_threadsize_mismatch_between_sp_and_hlsq_faults():
    g = Gpu(run_cs=lambda s: None)
    g.ring_write(_cs_setup(g) + pkt4(A.HLSQ_CS_CNTL_1, [0]) + [pkt7(P.CP_EXEC_CS, 4), 0, 1, 1, 1])
    with pytest.raises(CpFault, match="THREADSIZE"):
        g.run()


def test_shader_faults_become_cp_faults():
    def bad(s):
        s.memory.load(np.array([0x10], dtype=np.uint64), np.uint32)
    g = Gpu(run_cs=bad)
    g.ring_write(_cs_setup(g) + [pkt7(P.CP_EXEC_CS, 4), 0, 1, 1, 1])
    with pytest.raises(CpFault) as ei:
        g.run()
    assert ei.value.kind == "pagefault" and ei.value.address == 0x10


def test_exec_cs_without_the_emulator_is_a_clear_mock_fault(monkeypatch):
    monkeypatch.setitem(sys.modules, "hwdrv.mock.qcom.ir3emu", None)   # make the import fail
    g = Gpu()
    g.ring_write(_cs_setup(g) + [pkt7(P.CP_EXEC_CS, 4), 0, 1, 1, 1])
    with pytest.raises(MockFault, match="ir3 emulator not available"):
        g.run()


def test_a7xx_event_write7_and_moved_registers():
    seen: list[CsState] = []
    g = Gpu(chip="A7XX", run_cs=seen.append)
    d0 = (P.CP_EVENT_WRITE7_0_EVENT.encode(P.CACHE_FLUSH_TS) | P.CP_EVENT_WRITE7_0_WRITE_ENABLED.encode(1)
          | P.CP_EVENT_WRITE7_0_WRITE_SRC.encode(P.EV_WRITE_USER_32B) | P.CP_EVENT_WRITE7_0_IRQ.encode(1))
    g.ring_write([pkt7(P.A7XX_CP_EVENT_WRITE7, 4), d0, *lohi(MEM_VA), 0x5151]
                 + pkt4(A.A7XX_HLSQ_CS_NDRANGE_0, [A.HLSQ_CS_NDRANGE_0_LOCALSIZEX.encode(63)])
                 + pkt4(A.SP_CS_INSTRLEN, [1]) + pkt4(A.SP_CS_OBJ_START, lohi(MEM_VA))
                 + [pkt7(P.CP_EXEC_CS, 4), 0, 2, 1, 1])
    g.run()
    assert g.u32(0) == [0x5151] and g.irqs == 1 and seen[0].local_size == (64, 1, 1)
    g = Gpu(chip="A7XX")
    g.ring_write([pkt7(P.CP_WAIT_MEM_GTE, 4), 0, 0, 0, 0])   # 0x14 is CP_WAIT_TIMESTAMP on a7xx
    with pytest.raises(CpFault, match="CP_WAIT_MEM_GTE|opcode 0x14"):
        g.run()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=24), st.booleans())
def test_random_streams_finish_or_fault_loudly(words, valid_headers):
    g = Gpu(run_cs=lambda s: None, hang_timeout=0.0)
    if valid_headers:   # mostly-valid type-7 headers with random opcodes and counts
        words = [pkt7(w & 0x7F, (w >> 8) % 5) if i % 3 == 0 else w for i, w in enumerate(words)]
    g.ring_write(g.ib(0x100, words))
    try:
        for _ in range(50):
            r = g.cp.work()
            if r is Work.IDLE:
                break
            if r is Work.BLOCKED:
                time.sleep(0.001)
    except CpFault as f:
        assert f.kind in ("opcode", "pagefault", "hang") and str(f)
