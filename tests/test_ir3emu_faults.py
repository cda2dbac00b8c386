"""The ir3 emulator fails loudly, naming the instruction and its offset, for everything real
hardware cannot do: unsupported or undecodable instructions, hangs, divergent barriers, fibers
rejoining without (jp), branch-stack overflow, registers past the footprint, bad local/private/global
accesses; and IBO accesses follow the descriptor's bounds (reads past it give 0, writes are dropped)."""
from __future__ import annotations

import json
import os
import struct
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hwdrv.errors import HwdrvError
from hwdrv.mock.gpumem import MemoryFault
from hwdrv.mock.qcom.ir3emu import ShaderFault, harness, run_cs
from hwdrv.qcom import ir3


def launch(src: str, code: bytes | None = None, **kw):
    d, text = harness.parse(src)
    return harness.launch(code if code is not None else ir3.assemble(text), d, **kw)


HEAD = "@localsize 64, 1, 1\n@buf 64\n@invocationid(r0.x)\n"


def test_unsupported_instruction_is_named_with_its_offset():
    src = HEAD + "nop\nisam (f32)(xyzw)r0.x, r0.x, s#0, t#0\nend\nnop\n"
    with pytest.raises(ShaderFault, match=r"instruction 1 \(byte offset 0x8, isam.*texture"):
        launch(src)


def test_undecodable_word_is_an_illegal_instruction():
    d, text = harness.parse(HEAD + "nop\nend\nnop\n")
    code = ir3.assemble(text)
    bad = code[:8] + struct.pack("<Q", 0xFFFF_FFFF_FFFF_FFFF) + code[8:]
    with pytest.raises(ShaderFault, match=r"illegal instruction at instruction 1 \(byte offset 0x8"):
        harness.launch(bad, d)


def test_endless_loop_is_a_hang_fault_not_a_hang():
    t = time.monotonic()
    with pytest.raises(ShaderFault, match="GPU hang"):
        launch(HEAD + "loop:\njump #loop\nend\nnop\n", timeout=0.3)
    assert time.monotonic() - t < 10


def test_running_past_the_program_without_end():
    with pytest.raises(ShaderFault, match="outside the program"):
        launch(HEAD + "mov.u32u32 r1.x, 0\n" + "nop\n" * 15)


def test_divergent_barrier_would_hang():
    src = HEAD + """@branchstack 1
cmps.u.lt p0.x, r0.x, 10
(rpt5)nop
br p0.x, #skip
bar
skip:
(jp)nop
end
nop
"""
    with pytest.raises(ShaderFault, match="divergent barrier"):
        launch(src)


def test_reconvergence_needs_jp():
    src = HEAD + """@branchstack 1
cmps.u.lt p0.x, r0.x, 10
mov.u32u32 r1.x, 1
(rpt5)nop
br p0.x, #join
mov.u32u32 r1.x, 2
(rpt2)nop
join:
stib.b.untyped.1d.u32.1.imm r1.x, r0.x, 0
end
nop
"""
    with pytest.raises(ShaderFault, match=r"no \(jp\)"):
        launch(src)
    out = launch(src.replace("join:\nstib", "join:\n(jp)stib"))[0]
    np.testing.assert_array_equal(out, np.where(np.arange(64) < 10, 1, 2))


def test_divergence_deeper_than_the_branch_stack():
    src = HEAD + """cmps.u.lt p0.x, r0.x, 10
(rpt5)nop
br p0.x, #join
nop
join:
(jp)end
nop
"""
    with pytest.raises(ShaderFault, match="BRANCHSTACK = 0"):
        launch(src)
    launch("@branchstack 1\n" + src)


def test_registers_past_the_footprint_fault():
    d, text = harness.parse(HEAD + "mov.u32u32 r5.x, 1\n(rpt5)nop\nstib.b.untyped.1d.u32.1.imm r5.x, r0.x, 0\nend\nnop\n")
    state, _ = harness.prepare(ir3.assemble(text), d)
    assert state.full_regs == 6
    state.full_regs = 5
    with pytest.raises(ShaderFault, match=r"r5.x but SP_CS_CTRL_REG0.FULLREGFOOTPRINT = 5"):
        run_cs(state)


def test_local_memory_past_the_declared_size():
    src = HEAD + "@localmem 64\nshl.b r1.x, r0.x, 2\n(rpt2)nop\nstl.u32 l[r1.x], r0.x, 1\nend\nnop\n"
    with pytest.raises(ShaderFault, match=r"local memory access of 4 bytes at offset 1024 .*outside the 1024 bytes"):
        launch(src.replace("shl.b r1.x, r0.x, 2", "shl.b r1.x, r0.x, 5"))
    launch(src)     # 64 fibers x 4 bytes fit in the 1 KiB granule


def test_private_memory_past_the_per_fiber_size():
    src = HEAD + "@pvtmem 4\nmov.u32u32 r1.x, 4\n(rpt2)nop\nstp.u32 p[r1.x], r0.x, 1\nend\nnop\n"
    with pytest.raises(ShaderFault, match="private memory access of 4 bytes at offset 4"):
        launch(src)


def test_unmapped_global_address_is_a_memory_fault_naming_the_lane_and_instruction():
    src = HEAD + "@const(c4.x) 0x10, 0, 0, 0\nmov.u32u32 r2.x, c4.x\nmov.u32u32 r2.y, c4.y\n(rpt5)nop\n" \
                 "stg.u32 g[r2.x], r0.x, 1\nend\nnop\n"
    with pytest.raises(MemoryFault) as ei:
        launch(src)
    assert ei.value.address == 0x10 and ei.value.access == "write" and "stg" in str(ei.value)


def test_ibo_bounds_come_from_the_descriptor():
    # 64 fibers read and write element id + 60 of a 64-element IBO: 4 in bounds, 60 past the end
    src = """@localsize 64, 1, 1
@buf 64
@buf 64
@invocationid(r0.x)
add.u r0.y, r0.x, 60
(rpt2)nop
ldib.b.untyped.1d.u32.1.imm r1.x, r0.y, 0
(sy)add.u r1.y, r1.x, 1000
(rpt2)nop
stib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1
stib.b.untyped.1d.u32.1.imm r0.x, r0.y, 0
end
nop
"""
    x = np.arange(64, dtype=np.uint32) + 1
    out = launch(src, buffers=[x, None])
    np.testing.assert_array_equal(out[1], np.where(np.arange(64) < 4, x[60:64].tolist() + [0] * 60, 0) + 1000)
    np.testing.assert_array_equal(out[0], np.concatenate([x[:60], np.arange(4)]))


def test_integer_immediate_in_a_float_op_is_refused():
    src = HEAD + "add.f r1.x, r0.x, 3\n(rpt2)nop\nend\nnop\n"
    with pytest.raises(ShaderFault, match="integer immediate"):
        launch(src)


def test_const_past_constlen():
    d, text = harness.parse(HEAD + "mov.u32u32 r1.x, c9.x\n(rpt5)nop\nstib.b.untyped.1d.u32.1.imm r1.x, r0.x, 0\nend\nnop\n")
    state, _ = harness.prepare(ir3.assemble(text), d)
    state.constlen_vec4 = 8
    with pytest.raises(ShaderFault, match=r"c9.x is past the const file .*CONSTLEN"):
        run_cs(state)


_VECTORS = [v for v in json.load(open(os.path.join(os.path.dirname(__file__), "data", "qcom", "ir3",
                                                   "mesa_disasm_vectors.json")))["vectors"] if v["gpu_id"] == 600]
_FUZZ_D, _ = harness.parse("@localsize 64, 1, 1\n@buf 64 (c0.x)\n@buf 64\n@invocationid(r0.x)\n@localmem 1024\n"
                           "@pvtmem 64\n@branchstack 4\n")


def _vector_word(v) -> int:
    hi, lo = v["hex"].split("_")
    return (int(hi, 16) << 32) | int(lo, 16)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_VECTORS), st.sets(st.integers(0, 63), max_size=3))
def test_any_instruction_runs_or_fails_with_a_hwdrv_error(v, flips):
    # a Mesa test vector with a few bits flipped, then end: it executes or raises a HwdrvError (MockFault,
    # MemoryFault, ...), never an unrelated Python exception
    word = _vector_word(v) ^ sum(1 << b for b in flips)
    code = struct.pack("<8Q", word, 0x03000000_00000000, 0, 0, 0, 0, 0, 0)
    state, _ = harness.prepare(code, _FUZZ_D)
    state.full_regs = state.half_regs = 48
    try:
        run_cs(state, timeout=2)
    except HwdrvError:
        pass
