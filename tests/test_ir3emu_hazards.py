"""ir3 scheduling rules in the emulator: each kernel below misses one (ss) / (sy) / nop and must
fault naming the instruction, its byte offset and the hazard; the same kernel with the sync flag or
delay that Mesa's ir3 (ir3_delay.c, ir3_legalize.c) would insert runs and computes the right result."""
from __future__ import annotations

import numpy as np
import pytest

from hwdrv.mock.qcom.ir3emu import HazardFault, harness
from hwdrv.qcom import ir3

HEAD = """
@localsize 64, 1, 1
@buf 64
@buf 64
@invocationid(r0.x)
@localmem 256
"""
TAIL = "end\nnop\n"


def run(body: str, x=None) -> np.ndarray:
    d, text = harness.parse(HEAD + body + TAIL)
    if x is None:
        x = np.arange(64, dtype=np.uint32) + 1
    return harness.launch(ir3.assemble(text), d, buffers=[x, None])[1]


# (name, bad body, good body, expected buffer 1 from the input 1..64, words expected in the message)
CASES = [
    ("sfu result needs (ss)",
     "mov.f32f32 r1.x, (2.0)\n(rpt5)nop\nrcp r2.x, r1.x\n(rpt5)nop\nstib.b.untyped.1d.u32.1.imm r2.x, r0.x, 1\n",
     "mov.f32f32 r1.x, (2.0)\n(rpt5)nop\nrcp r2.x, r1.x\n(ss)nop\nstib.b.untyped.1d.u32.1.imm r2.x, r0.x, 1\n",
     lambda x: np.full(64, np.float32(0.5)).view(np.uint32), ["stib.b", "r2.x", "rcp", "(ss)"]),
    ("ibo load needs (sy)",
     "ldib.b.untyped.1d.u32.1.imm r1.x, r0.x, 0\nadd.u r1.y, r1.x, 3\n(rpt2)nop\n"
     "stib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1\n",
     "ldib.b.untyped.1d.u32.1.imm r1.x, r0.x, 0\n(sy)add.u r1.y, r1.x, 3\n(rpt2)nop\n"
     "stib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1\n",
     lambda x: x + 3, ["add.u", "byte offset 0x8", "r1.x", "ldib.b", "(sy)"]),
    ("local load needs (ss)",
     "shl.b r1.x, r0.x, 2\n(rpt2)nop\nstl.u32 l[r1.x], r0.x, 1\nldl.u32 r1.y, l[r1.x], 1\n"
     "add.u r1.z, r1.y, 1\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r1.z, r0.x, 1\n",
     "shl.b r1.x, r0.x, 2\n(rpt2)nop\nstl.u32 l[r1.x], r0.x, 1\nldl.u32 r1.y, l[r1.x], 1\n"
     "(ss)add.u r1.z, r1.y, 1\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r1.z, r0.x, 1\n",
     lambda x: np.arange(64, dtype=np.uint32) + 1, ["add.u", "r1.y", "ldl", "(ss)"]),
    ("alu to alu needs 3 cycles",
     "add.u r1.x, r0.x, 1\nadd.u r1.y, r1.x, 1\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1\n",
     "(nop3) add.u r1.x, r0.x, 1\nadd.u r1.y, r1.x, 1\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1\n",
     lambda x: np.arange(64, dtype=np.uint32) + 2, ["add.u", "r1.x", "only 0 cycle", "needs 3"]),
    ("alu to alu: two cycles are not enough",
     "add.u r1.x, r0.x, 1\n(rpt1)nop\nadd.u r1.y, r1.x, 1\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1\n",
     "add.u r1.x, r0.x, 1\nmov.u32u32 r2.x, 0\n(rpt1)nop\nadd.u r1.y, r1.x, 1\n(rpt2)nop\n"
     "stib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1\n",
     lambda x: np.arange(64, dtype=np.uint32) + 2, ["only 2 cycle", "needs 3"]),
    ("predicate to branch needs 6",
     "cmps.u.lt p0.x, r0.x, 100\n(rpt2)nop\nbr p0.x, #2\nnop\n(jp)stib.b.untyped.1d.u32.1.imm r0.x, r0.x, 1\n",
     "cmps.u.lt p0.x, r0.x, 100\n(rpt5)nop\nbr p0.x, #2\nnop\n(jp)stib.b.untyped.1d.u32.1.imm r0.x, r0.x, 1\n",
     lambda x: np.arange(64, dtype=np.uint32), ["br", "p0.x", "needs 6"]),
    ("alu to sfu needs 6",
     "mov.f32f32 r1.x, (4.0)\n(rpt2)nop\nsqrt r2.x, r1.x\n(ss)nop\nstib.b.untyped.1d.u32.1.imm r2.x, r0.x, 1\n",
     "mov.f32f32 r1.x, (4.0)\n(rpt5)nop\nsqrt r2.x, r1.x\n(ss)nop\nstib.b.untyped.1d.u32.1.imm r2.x, r0.x, 1\n",
     lambda x: np.full(64, np.float32(2.0)).view(np.uint32), ["sqrt", "needs 6"]),
    ("a0 write needs 6 before a relative read",
     "mov.u32u32 r2.x, 9\ncov.u32s16 hr2.x, r0.x\n(rpt2)nop\nmova a0.x, hr2.x\n(rpt2)nop\n"
     "mov.u32u32 r1.y, r<a0.x>\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1\n",
     "mov.u32u32 r1.x, 0\n(rpt2)nop\ncov.u32s16 hr2.x, r1.x\n(rpt5)nop\nmova a0.x, hr2.x\n(rpt5)nop\n"
     "mov.u32u32 r1.y, r<a0.x + 4>\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1\n",
     lambda x: np.zeros(64, np.uint32), ["a0.x", "mova", "needs 6"]),
    ("merged half read of a full write pays 3 more",
     "mov.u32u32 r1.x, 5\n(rpt2)nop\nadd.u hr2.y, hr2.x, h(1)\n(rpt5)nop\ncov.u16u32 r3.x, hr2.y\n(rpt2)nop\n"
     "stib.b.untyped.1d.u32.1.imm r3.x, r0.x, 1\n",
     "mov.u32u32 r1.x, 5\n(rpt5)nop\nadd.u hr2.y, hr2.x, h(1)\n(rpt5)nop\ncov.u16u32 r3.x, hr2.y\n(rpt2)nop\n"
     "stib.b.untyped.1d.u32.1.imm r3.x, r0.x, 1\n",
     lambda x: np.full(64, 6, np.uint32), ["hr2.x", "needs 6"]),
    ("alu to memory needs 3",
     "add.u r1.x, r0.x, 7\n(rpt1)nop\nstib.b.untyped.1d.u32.1.imm r1.x, r0.x, 1\n",
     "add.u r1.x, r0.x, 7\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r1.x, r0.x, 1\n",
     lambda x: np.arange(64, dtype=np.uint32) + 7, ["stib.b", "r1.x", "only 2 cycle", "memory instruction needs 3"]),
    ("repeated producer and consumer overlap per component (ir3_delayslots_with_repeat)",
     "mov.u32u32 r1.x, r0.x\nmov.u32u32 r1.y, 5\nmov.u32u32 r1.z, 9\n(rpt5)nop\n"
     "(rpt2)add.u r2.x, (r)r1.x, 1\n(rpt2)add.u r3.x, (r)r2.x, r2.x\n(rpt2)nop\n"
     "stib.b.untyped.1d.u32.1.imm r3.z, r0.x, 1\n",
     "mov.u32u32 r1.x, r0.x\nmov.u32u32 r1.y, 5\nmov.u32u32 r1.z, 9\n(rpt5)nop\n"
     "(rpt2)add.u r2.x, (r)r1.x, 1\nnop\n(rpt2)add.u r3.x, (r)r2.x, r2.x\n(rpt2)nop\n"
     "stib.b.untyped.1d.u32.1.imm r3.z, r0.x, 1\n",
     lambda x: np.arange(64, dtype=np.uint32) + 11, ["add.u", "r2.x", "only 2 cycle", "needs 3"]),
    ("shared register write needs (ss)",
     "mov.u32u32 r48.x, 11\n(rpt5)nop\nadd.u r1.x, r48.x, r0.x\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r1.x, r0.x, 1\n",
     "mov.u32u32 r48.x, 11\n(rpt5)nop\n(ss)add.u r1.x, r48.x, r0.x\n(rpt2)nop\n"
     "stib.b.untyped.1d.u32.1.imm r1.x, r0.x, 1\n",
     lambda x: np.arange(64, dtype=np.uint32) + 11, ["r48.x", "shared-register", "(ss)"]),
    ("mad reads its third source 2 cycles late, not its first",
     "mov.f32f32 r1.x, (2.0)\nmov.f32f32 r1.y, (0.5)\n(rpt2)nop\nadd.f r2.x, r1.x, r1.y\n"
     "mad.f32 r2.y, r2.x, r1.x, r1.y\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r2.y, r0.x, 1\n",
     "mov.f32f32 r1.x, (2.0)\nmov.f32f32 r1.y, (0.5)\n(rpt2)nop\nadd.f r2.x, r1.x, r1.y\nnop\n"
     "mad.f32 r2.y, r1.x, r1.y, r2.x\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r2.y, r0.x, 1\n",
     lambda x: np.full(64, np.float32(3.5)).view(np.uint32), ["mad.f32", "r2.x", "needs 3"]),
]


@pytest.mark.parametrize("name,bad,good,want,words", CASES, ids=[c[0] for c in CASES])
def test_missing_sync_faults_and_the_synced_kernel_runs(name, bad, good, want, words):
    with pytest.raises(HazardFault) as ei:
        run(bad)
    msg = str(ei.value)
    assert "scheduling hazard" in msg and "stale" in msg
    for w in words:
        assert w in msg, (w, msg)
    x = np.arange(64, dtype=np.uint32) + 1
    np.testing.assert_array_equal(run(good, x), want(x))


def test_sync_flag_on_an_instruction_in_between_is_enough():
    body = ("ldib.b.untyped.1d.u32.1.imm r1.x, r0.x, 0\n(sy)mov.u32u32 r2.x, 0\n(rpt2)nop\n"
            "add.u r1.y, r1.x, r2.x\n(rpt2)nop\nstib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1\n")
    x = np.arange(64, dtype=np.uint32) * 3
    np.testing.assert_array_equal(run(body, x), x)


def test_sync_before_the_load_does_not_cover_it():
    body = ("(sy)nop\nldib.b.untyped.1d.u32.1.imm r1.x, r0.x, 0\n(rpt5)nop\n"
            "stib.b.untyped.1d.u32.1.imm r1.x, r0.x, 1\n")
    with pytest.raises(HazardFault, match=r"without \(sy\)"):
        run(body)


DIVERGENT = """
@localsize 64, 1, 1
@buf 64
@buf 64
@invocationid(r0.x)
@branchstack 1
cmps.u.lt p0.x, r0.x, 32
mov.u32u32 r1.x, 1
(rpt5)nop
br p0.x, #join
mov.u32u32 r1.x, 2
{pad}
join:
(jp)add.u r1.y, r1.x, r0.x
(rpt2)nop
stib.b.untyped.1d.u32.1.imm r1.y, r0.x, 1
end
nop
"""


def test_hazards_follow_each_path_of_a_divergent_branch():
    # the fibers that fall through write r1.x right before the join; the others wrote it long before
    d, text = harness.parse(DIVERGENT.format(pad=""))
    with pytest.raises(HazardFault, match=r"reads r1\.x .*only 0 cycle"):
        harness.launch(ir3.assemble(text), d)
    d, text = harness.parse(DIVERGENT.format(pad="(rpt2)nop"))
    out = harness.launch(ir3.assemble(text), d)[1]
    lid = np.arange(64)
    np.testing.assert_array_equal(out, np.where(lid < 32, 1, 2) + lid)
