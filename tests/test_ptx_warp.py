"""Warp-level instructions: shfl.sync (all modes, clamp and segment masks), vote.sync,
activemask under divergence, match.sync, redux.sync, elect.sync, bar.red."""
from __future__ import annotations

import numpy as np
import pytest

from hwdrv.mock.nvidia import ptx

from test_ptx_helpers import gpu, run_op  # noqa: F401


def cuda_shfl(mode: str, vals: list, b: int, width: int) -> tuple[list, list]:
    """CUDA's __shfl_{up,down,xor,}_sync(mask, var, b, width) (CUDA C++ Programming Guide, "Warp
    Shuffle Functions"): the warp is cut into segments of ``width`` lanes; a lane reads lane
    ``lane - b`` (up), ``lane + b`` (down), ``lane ^ b`` (xor) or lane ``b % width`` of its segment
    (idx) and keeps its own value when that lane is outside its segment. Written from segment
    arithmetic, not from the PTX clamp/mask encoding the interpreter implements."""
    out, ok = [], []
    for lane in range(32):
        first = lane // width * width
        last = first + width - 1
        src = {"up": lane - b, "down": lane + b, "bfly": lane ^ b, "idx": first + b % width}[mode]
        valid = first <= src <= last
        out.append(vals[src] if valid else vals[lane])
        ok.append(valid)
    return out, ok


# xor by b >= width leaves the segment: that case is the PTX clamp rule's (see KNOWN_SHFL)
SHFL_CASES = [(mode, b, width) for mode in ("up", "down", "bfly", "idx")
              for b, width in [(1, 32), (3, 32), (16, 32), (0, 32), (31, 32), (2, 8), (7, 8), (1, 4), (3, 16), (5, 16), (0, 1)]
              if not (mode == "bfly" and b >= width)]


@pytest.mark.parametrize("mode, b, width", SHFL_CASES)
def test_shfl_modes(gpu, mode, b, width):
    vals = (np.arange(64, dtype=np.uint32) * 37 + 5)
    # the c operand CUDA's headers pass: ((32 - width) << 8), with the clamp 0x1F except for up
    c = ((32 - width) << 8) | (0 if mode == "up" else 0x1F)
    d, e = run_op(gpu, f"shfl.sync.{mode}.b32 %d|%e, %a, {b}, {c}, 0xffffffff;", [vals], [np.uint32, bool])
    for w in range(2):
        ro, rp = cuda_shfl(mode, vals[32 * w:32 * w + 32].tolist(), b, width)
        assert d[32 * w:32 * w + 32].tolist() == ro
        assert e[32 * w:32 * w + 32].tolist() == rp


# Expected lanes written out by hand from the CUDA __shfl_*_sync definitions (independent of the
# formula above): (mode, b, c) -> (source lane of each of 32 lanes, valid predicate per lane).
_L = list(range(32))
KNOWN_SHFL = [
    # down by 1, whole warp: lane i reads i+1; lane 31 keeps its own value, predicate false
    (("down", 1, 0x1F), ([i + 1 for i in range(31)] + [31], [True] * 31 + [False])),
    # up by 2 (c = 0 for up): lanes 0, 1 keep their own value
    (("up", 2, 0x0), ([0, 1] + [i - 2 for i in range(2, 32)], [False, False] + [True] * 30)),
    # butterfly across halves
    (("bfly", 16, 0x1F), ([i ^ 16 for i in _L], [True] * 32)),
    # broadcast of lane 3 to the whole warp
    (("idx", 3, 0x1F), ([3] * 32, [True] * 32)),
    # width 8 (c = ((32 - 8) << 8) | 0x1F): broadcast lane 3 of each 8-lane segment
    (("idx", 3, 0x181F), ([(i & ~7) | 3 for i in _L], [True] * 32)),
    # width 8, down by 2: the last two lanes of each segment keep their own value
    (("down", 2, 0x181F), ([i + 2 if i % 8 < 6 else i for i in _L], [i % 8 < 6 for i in _L])),
    # PTX clamp that CUDA never passes: c = 5, no segments -> maxLane 5: lanes 0..4 read i+1
    (("down", 1, 0x5), ([i + 1 for i in range(5)] + list(range(5, 32)), [True] * 5 + [False] * 27)),
    # xor by 8 with width 4 (c = 0x1C1F): maxLane = segment end; lane^8 lies in another segment,
    # valid by the PTX rule only when it is not above this segment's last lane
    (("bfly", 8, 0x1C1F), ([i ^ 8 if (i ^ 8) <= (i | 3) else i for i in _L], [(i ^ 8) <= (i | 3) for i in _L])),
]


@pytest.mark.parametrize("args,expect", KNOWN_SHFL, ids=lambda x: str(x))
def test_shfl_known_lanes(gpu, args, expect):
    mode, b, c = args
    src, ok = expect
    vals = np.arange(32, dtype=np.uint32) * 1000 + 7
    d, e = run_op(gpu, f"shfl.sync.{mode}.b32 %d|%e, %a, {b}, {c}, 0xffffffff;", [vals], [np.uint32, bool])
    assert d[:32].tolist() == [int(vals[j]) for j in src]
    assert e[:32].tolist() == ok


def test_vote_ballot_activemask_under_divergence(gpu):
    a = np.arange(64, dtype=np.uint32)
    text = """
    and.b32 %x, %a, 3;
    setp.eq.u32 %inb, %x, 0;
    @%inb bra SKIP;
    activemask.b32 %d;
    setp.gt.u32 %p1, %a, 40;
    vote.sync.ballot.b32 %e, %p1, 0xffffffff;
SKIP:
    """
    d, e = run_op(gpu, text, [a], [np.uint32, np.uint32], extra_decl=".reg .b32 %x; .reg .pred %p1;",
                  reg_types={0: "b32"})
    active = sum(1 << l for l in range(32) if l % 4 != 0)
    assert d[1] == active and d[33] == active
    assert e[1] == 0 and e[33] == sum(1 << (l) for l in range(32) if l % 4 and l + 32 > 40)


def test_vote_modes(gpu):
    p = np.zeros(96, bool)
    p[0:32] = True            # warp 0 all, warp 1 one lane, warp 2 none
    p[40] = True
    for mode, ref in (("all", [1, 0, 0]), ("any", [1, 1, 0]), ("uni", [1, 0, 1])):
        d, = run_op(gpu, f"vote.sync.{mode}.pred %d, %a, 0xffffffff;", [p], [bool])
        assert d.reshape(3, 32).all(axis=1).tolist() == [bool(x) for x in ref]
        assert (d.reshape(3, 32) == d.reshape(3, 32)[:, :1]).all()
    d, = run_op(gpu, "vote.sync.ballot.b32 %d, !%a, 0xffffffff;", [p], [np.uint32])
    assert d[0] == 0 and d[32] == 0xFFFFFFFF ^ (1 << 8) and d[64] == 0xFFFFFFFF


def test_match_and_redux_and_elect(gpu):
    v = np.array([i % 3 for i in range(64)], np.uint32)
    d, = run_op(gpu, "match.any.sync.b32 %d, %a, 0xffffffff;", [v], [np.uint32])
    for lane in range(32):
        assert d[lane] == sum(1 << j for j in range(32) if v[j] == v[lane])
    same = np.full(32, 9, np.uint32)
    d, e = run_op(gpu, "match.all.sync.b32 %d|%e, %a, 0xffffffff;", [np.concatenate([same, v[:32]])], [np.uint32, bool])
    assert d[:32].tolist() == [0xFFFFFFFF] * 32 and e[:32].all()
    assert d[32:].tolist() == [0] * 32 and not e[32:].any()
    x = np.random.default_rng(2).integers(-1000, 1000, 64).astype(np.int32)
    for op, f in (("add", np.sum), ("min", np.min), ("max", np.max)):
        d, = run_op(gpu, f"redux.sync.{op}.s32 %d, %a, 0xffffffff;", [x], [np.int32])
        assert d.tolist() == [int(f(x[:32]))] * 32 + [int(f(x[32:]))] * 32
    xu = x.view(np.uint32)
    for op, f in (("and", np.bitwise_and.reduce), ("or", np.bitwise_or.reduce), ("xor", np.bitwise_xor.reduce)):
        d, = run_op(gpu, f"redux.sync.{op}.b32 %d, %a, 0xffffffff;", [xu], [np.uint32])
        assert d.tolist() == [int(f(xu[:32]))] * 32 + [int(f(xu[32:]))] * 32
    d, e = run_op(gpu, "elect.sync %d|%e, 0xfffffff0;", [x], [np.uint32, bool])
    assert d.tolist() == [4] * 64 and np.flatnonzero(e).tolist() == [4, 36]


def test_bar_red(gpu):
    p = np.zeros(256, bool)
    p[:10] = True
    p[128:250] = True
    d, = run_op(gpu, "bar.red.popc.u32 %d, 0, %a;", [p], [np.uint32], block=128)
    assert d.tolist() == [10] * 128 + [122] * 128
    d, = run_op(gpu, "bar.red.or.pred %d, 0, %a;", [p], [bool], block=64)
    assert d.tolist() == [True] * 64 + [False] * 64 + [True] * 128


def test_shfl_reduction_partial_last_warp(gpu):
    """A CTA of 40 threads: the second warp has 8 real lanes; padding lanes never run."""
    x = np.arange(80, dtype=np.uint32)
    text = """
    shfl.sync.down.b32 %d, %a, 4, 0x1f, 0xff;
    add.u32 %d, %d, %a;
    """
    d, = run_op(gpu, text, [x], [np.uint32], block=40)
    for cta in range(2):
        for t in range(40):
            g = cta * 40 + t
            lane = t % 32
            src = g + 4 if lane + 4 <= 31 and (t // 32 == 0 or lane + 4 < 8) else g
            if t // 32 == 1 and lane + 4 >= 8:
                continue    # the source lane does not exist: undefined on hardware
            assert d[g] == x[g] + x[src], (cta, t)


def test_mma_partial_warp_is_illegal(gpu):
    m = ptx.parse(""".version 8.0
.target sm_90
.address_size 64
.visible .entry k()
{
    .reg .b32 %r<8>;
    .reg .f32 %f<8>;
    .reg .pred %p;
    mov.u32 %r0, %laneid;
    setp.lt.u32 %p, %r0, 16;
    @%p bra END;
    mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%f0,%f1,%f2,%f3}, {%r0,%r1,%r2,%r3}, {%r4,%r5}, {%f4,%f5,%f6,%f7};
END:
    ret;
}
""")
    with pytest.raises(ptx.IllegalInstruction) as ei:
        gpu.run(m, "k", 1, 32, [])
    assert ei.value.line == 12 and "mma" in ei.value.instruction and ei.value.lane == 16
