"""Logic and bit-manipulation instructions against Python-integer references."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

from test_ptx_helpers import gpu, run_op  # noqa: F401


def u(a):
    return [int(x) for x in np.asarray(a).tolist()]


def sx(v, w):
    return v - (1 << w) if v >> (w - 1) & 1 else v


@settings(max_examples=10, deadline=None)
@given(a=hnp.arrays(np.uint32, 64), b=hnp.arrays(np.uint32, 64))
def test_logic_ops(gpu, a, b):
    for op, f in (("and", lambda x, y: x & y), ("or", lambda x, y: x | y), ("xor", lambda x, y: x ^ y)):
        d, = run_op(gpu, f"{op}.b32 %d, %a, %b;", [a, b], [np.uint32])
        assert u(d) == [f(x, y) for x, y in zip(u(a), u(b))]
    d, = run_op(gpu, "not.b32 %d, %a;", [a], [np.uint32])
    assert u(d) == [~x & 0xFFFFFFFF for x in u(a)]
    d, = run_op(gpu, "cnot.b32 %d, %a;", [a], [np.uint32])
    assert u(d) == [int(x == 0) for x in u(a)]


def test_predicate_logic(gpu):
    p = np.array([0, 0, 1, 1], bool)
    q = np.array([0, 1, 0, 1], bool)
    for op, ref in (("and", p & q), ("or", p | q), ("xor", p ^ q)):
        d, = run_op(gpu, f"{op}.pred %d, %a, %b;", [p, q], [bool])
        assert d.tolist() == ref.tolist()
    d, = run_op(gpu, "not.pred %d, %a;", [p], [bool])
    assert d.tolist() == (~p).tolist()


@pytest.mark.parametrize("w", [16, 32, 64])
def test_shifts(gpu, w):
    dt = {16: np.uint16, 32: np.uint32, 64: np.uint64}[w]
    sdt = {16: np.int16, 32: np.int32, 64: np.int64}[w]
    vals = np.array([0, 1, 0x80, (1 << (w - 1)) | 5, (1 << w) - 1, 0x1234 % (1 << w)], dt)
    amts = np.array([0, 1, w - 1, w, w + 1, 1000, 0xFFFFFFFF], np.uint32)
    a = np.repeat(vals, len(amts))
    b = np.tile(amts, len(vals))
    d, = run_op(gpu, f"shl.b{w} %d, %a, %b;", [a, b], [dt])
    assert u(d) == [(x << y) & ((1 << w) - 1) if y < w else 0 for x, y in zip(u(a), u(b))]
    d, = run_op(gpu, f"shr.u{w} %d, %a, %b;", [a, b], [dt])
    assert u(d) == [x >> y if y < w else 0 for x, y in zip(u(a), u(b))]
    d, = run_op(gpu, f"shr.s{w} %d, %a, %b;", [a.view(sdt), b], [sdt])
    assert [int(v) for v in d.tolist()] == [sx(x, w) >> min(y, w - 1) for x, y in zip(u(a), u(b))]


def test_funnel_shift(gpu):
    a = np.array([0x89ABCDEF, 0x12345678, 0xFFFFFFFF, 1], np.uint32)
    b = np.array([0x01234567, 0x9ABCDEF0, 0, 0x80000000], np.uint32)
    for n in (0, 1, 4, 31, 32, 33, 63):
        c = np.full(4, n, np.uint32)
        for mode in ("wrap", "clamp"):
            k = n & 31 if mode == "wrap" else min(n, 32)
            d, = run_op(gpu, f"shf.l.{mode}.b32 %d, %a, %b, %c;", [a, b, c], [np.uint32])
            assert u(d) == [((((y << 32) | x) << k) >> 32) & 0xFFFFFFFF for x, y in zip(u(a), u(b))]
            d, = run_op(gpu, f"shf.r.{mode}.b32 %d, %a, %b, %c;", [a, b, c], [np.uint32])
            assert u(d) == [(((y << 32) | x) >> k) & 0xFFFFFFFF for x, y in zip(u(a), u(b))]


def ref_bfe(a, pos, ln, w, signed):
    pos, ln = pos & 0xFF, ln & 0xFF
    if ln == 0:
        return 0
    msb = w - 1
    sbit = (a >> min(pos + ln - 1, msb)) & 1 if signed else 0
    d = 0
    for i in range(w):
        bit = (a >> (pos + i)) & 1 if (i < ln and pos + i <= msb) else sbit
        d |= bit << i
    return sx(d, w) if signed else d


@pytest.mark.parametrize("t", ["u32", "s32", "u64", "s64"])
def test_bfe(gpu, t):
    w = int(t[1:])
    dt = {"u32": np.uint32, "s32": np.int32, "u64": np.uint64, "s64": np.int64}[t]
    rng = np.random.default_rng(w)
    n = 200
    a = rng.integers(0, 1 << 63, n, dtype=np.uint64)
    a = (a & np.uint64((1 << w) - 1)).astype({32: np.uint32, 64: np.uint64}[w]).view(dt)
    pos = rng.integers(0, 80, n).astype(np.uint32)
    ln = rng.integers(0, 80, n).astype(np.uint32)
    pos[:4], ln[:4] = [0, w - 1, w, 300], [0, 1, 5, 8]
    d, = run_op(gpu, f"bfe.{t} %d, %a, %b, %c;", [a, pos, ln], [dt])
    am = [x & ((1 << w) - 1) for x in u(a)]
    assert [int(v) for v in d.tolist()] == [ref_bfe(x, p, q, w, t[0] == "s") for x, p, q in zip(am, u(pos), u(ln))]


@pytest.mark.parametrize("w", [32, 64])
def test_bfi(gpu, w):
    dt = {32: np.uint32, 64: np.uint64}[w]
    rng = np.random.default_rng(w + 1)
    n = 200
    f = rng.integers(0, 1 << 62, n, dtype=np.uint64).astype(dt)
    b = rng.integers(0, 1 << 62, n, dtype=np.uint64).astype(dt)
    pos = rng.integers(0, 80, n).astype(np.uint32)
    ln = rng.integers(0, 80, n).astype(np.uint32)
    d, = run_op(gpu, f"bfi.b{w} %d, %a, %b, %c, %x;", [f, b, pos, ln], [dt])
    ref = []
    for fv, bv, p, q in zip(u(f), u(b), u(pos), u(ln)):
        r = bv
        for i in range(q & 0xFF):
            if (p & 0xFF) + i > w - 1:
                break
            r = (r & ~(1 << ((p & 0xFF) + i))) | (((fv >> i) & 1) << ((p & 0xFF) + i))
        ref.append(r)
    assert u(d) == ref


@settings(max_examples=10, deadline=None)
@given(a=hnp.arrays(np.uint64, 50))
def test_popc_clz_brev_bfind(gpu, a):
    a = np.concatenate([a, np.array([0, 1, 1 << 63, (1 << 64) - 1], np.uint64)])
    a32 = (a & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    for w, arr in ((32, a32), (64, a)):
        d, = run_op(gpu, f"popc.b{w} %d, %a;", [arr], [np.uint32])
        assert u(d) == [bin(x).count("1") for x in u(arr)]
        d, = run_op(gpu, f"clz.b{w} %d, %a;", [arr], [np.uint32])
        assert u(d) == [w - x.bit_length() for x in u(arr)]
        d, = run_op(gpu, f"brev.b{w} %d, %a;", [arr], [arr.dtype])
        assert u(d) == [int(f"{x:0{w}b}"[::-1], 2) for x in u(arr)]
        d, = run_op(gpu, f"bfind.u{w} %d, %a;", [arr], [np.uint32])
        assert u(d) == [x.bit_length() - 1 if x else 0xFFFFFFFF for x in u(arr)]
        d, = run_op(gpu, f"bfind.shiftamt.u{w} %d, %a;", [arr], [np.uint32])
        assert u(d) == [w - x.bit_length() if x else 0xFFFFFFFF for x in u(arr)]
        sd = {32: np.int32, 64: np.int64}[w]
        d, = run_op(gpu, f"bfind.s{w} %d, %a;", [arr.view(sd)], [np.uint32])
        ref = []
        for x in u(arr):
            v = sx(x, w)
            m = ~v if v < 0 else v
            ref.append(m.bit_length() - 1 if m else 0xFFFFFFFF)
        assert u(d) == ref


PRMT_TABLE = {
    "f4e": [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]],
    "b4e": [[0, 7, 6, 5], [1, 0, 7, 6], [2, 1, 0, 7], [3, 2, 1, 0]],
    "rc8": [[0] * 4, [1] * 4, [2] * 4, [3] * 4],
    "ecl": [[0, 1, 2, 3], [1, 1, 2, 3], [2, 2, 2, 3], [3, 3, 3, 3]],
    "ecr": [[0, 0, 0, 0], [0, 1, 1, 1], [0, 1, 2, 2], [0, 1, 2, 3]],
    "rc16": [[0, 1, 0, 1], [2, 3, 2, 3], [0, 1, 0, 1], [2, 3, 2, 3]],
}


def test_prmt(gpu):
    rng = np.random.default_rng(3)
    n = 256
    a = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    c = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    d, = run_op(gpu, "prmt.b32 %d, %a, %b, %c;", [a, b, c], [np.uint32])
    ref = []
    for x, y, s in zip(u(a), u(b), u(c)):
        src = x | (y << 32)
        r = 0
        for k in range(4):
            nib = (s >> (4 * k)) & 0xF
            byte = (src >> (8 * (nib & 7))) & 0xFF
            if nib & 8:
                byte = 0xFF if byte & 0x80 else 0
            r |= byte << (8 * k)
        ref.append(r)
    assert u(d) == ref
    for mode, table in PRMT_TABLE.items():
        d, = run_op(gpu, f"prmt.b32.{mode} %d, %a, %b, %c;", [a, b, c], [np.uint32])
        ref = []
        for x, y, s in zip(u(a), u(b), u(c)):
            src = x | (y << 32)
            ref.append(sum(((src >> (8 * table[s & 3][k])) & 0xFF) << (8 * k) for k in range(4)))
        assert u(d) == ref, mode


def test_lop3(gpu):
    rng = np.random.default_rng(4)
    a, b, c = (rng.integers(0, 1 << 32, 64, dtype=np.uint64).astype(np.uint32) for _ in range(3))
    for lut in (0x00, 0xFF, 0x96, 0xE8, 0xF0, 0xCC, 0xAA, 0x80, 0x1E):
        d, = run_op(gpu, f"lop3.b32 %d, %a, %b, %c, {lut};", [a, b, c], [np.uint32])
        ref = []
        for x, y, z in zip(u(a), u(b), u(c)):
            r = 0
            for bit in range(32):
                k = ((x >> bit & 1) << 2) | ((y >> bit & 1) << 1) | (z >> bit & 1)
                r |= ((lut >> k) & 1) << bit
            ref.append(r)
        assert u(d) == ref, hex(lut)
