"""Integer arithmetic instructions against Python-integer references, s/u 16/32/64."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from test_ptx_helpers import gpu, run_op  # noqa: F401

TYPES = {"s16": np.int16, "u16": np.uint16, "s32": np.int32, "u32": np.uint32, "s64": np.int64, "u64": np.uint64}


def edge(dt) -> np.ndarray:
    info = np.iinfo(dt)
    vals = [0, 1, 2, 3, 7, info.max, info.max - 1, info.min, info.min + 1]
    if info.min < 0:
        vals += [-1, -2, -3, -7]
    return np.array(vals, dt)


def pairs(dt):
    """Edge cases crossed with each other, plus random values."""
    e = edge(dt)
    a, b = np.meshgrid(e, e)
    return a.ravel(), b.ravel()


def wrap(v: int, t: str) -> int:
    bitsz = int(t[1:])
    v &= (1 << bitsz) - 1
    return v - (1 << bitsz) if t[0] == "s" and v >> (bitsz - 1) else v


def tdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


REFS = {
    "add": lambda a, b, t: wrap(a + b, t),
    "sub": lambda a, b, t: wrap(a - b, t),
    "mul.lo": lambda a, b, t: wrap(a * b, t),
    "mul.hi": lambda a, b, t: wrap((a * b) >> int(t[1:]), t),
    "min": lambda a, b, t: min(a, b),
    "max": lambda a, b, t: max(a, b),
    "div": lambda a, b, t: wrap(tdiv(a, b), t) if b else None,
    "rem": lambda a, b, t: wrap(a - b * tdiv(a, b), t) if b else None,
}


def check_binary(gpu, op: str, t: str, a: np.ndarray, b: np.ndarray):
    dt = TYPES[t]
    (d,) = run_op(gpu, f"{op}.{t} %d, %a, %b;", [a.astype(dt), b.astype(dt)], [dt])
    for x, y, r in zip(a.tolist(), b.tolist(), d.tolist()):
        ref = REFS[op](int(x), int(y), t)
        if ref is not None:
            assert r == ref, (op, t, x, y, r, ref)


@pytest.mark.parametrize("t", list(TYPES))
@pytest.mark.parametrize("op", list(REFS))
def test_int_binary_edges(gpu, op, t):
    a, b = pairs(TYPES[t])
    check_binary(gpu, op, t, a, b)


@settings(max_examples=15, deadline=None)
@given(data=st.data(), t=st.sampled_from(list(TYPES)), op=st.sampled_from(list(REFS)))
def test_int_binary_random(gpu, data, t, op):
    dt = TYPES[t]
    a = data.draw(hnp.arrays(dt, 64))
    b = data.draw(hnp.arrays(dt, 64))
    check_binary(gpu, op, t, a, b)


def test_division_by_zero_and_int_min(gpu):
    a = np.array([5, -5, 0, -(1 << 31), -(1 << 31)], np.int32)
    b = np.array([0, 0, 0, -1, 1], np.int32)
    q, = run_op(gpu, "div.s32 %d, %a, %b;", [a, b], [np.int32])
    r, = run_op(gpu, "rem.s32 %d, %a, %b;", [a, b], [np.int32])
    assert q.tolist() == [-1, 1, -1, -(1 << 31), -(1 << 31)]     # x/0 machine-specific but defined here
    assert r.tolist() == [5, -5, 0, 0, 0]
    qu, = run_op(gpu, "div.u32 %d, %a, %b;", [a.view(np.uint32), b.view(np.uint32)], [np.uint32])
    assert qu[0] == 0xFFFFFFFF


@pytest.mark.parametrize("t", ["s16", "u16", "s32", "u32"])
def test_mul_wide_and_mad(gpu, t):
    dt = TYPES[t]
    a, b = pairs(dt)
    wide = {"s16": np.int32, "u16": np.uint32, "s32": np.int64, "u32": np.uint64}[t]
    wt = {"s16": "s32", "u16": "u32", "s32": "s64", "u32": "u64"}[t]
    c = np.arange(a.size).astype(wide) * 1000 - 5
    d, = run_op(gpu, f"mul.wide.{t} %d, %a, %b;", [a, b], [wide])
    assert d.tolist() == [int(x) * int(y) for x, y in zip(a.tolist(), b.tolist())]
    e, = run_op(gpu, f"mad.wide.{t} %d, %a, %b, %c;", [a, b, c], [wide])
    assert e.tolist() == [wrap(int(x) * int(y) + int(z), wt) for x, y, z in zip(a.tolist(), b.tolist(), c.tolist())]
    c2 = (np.arange(a.size) * 3).astype(dt)
    f, = run_op(gpu, f"mad.lo.{t} %d, %a, %b, %c;", [a, b, c2], [dt])
    assert f.tolist() == [wrap(int(x) * int(y) + int(z), t) for x, y, z in zip(a.tolist(), b.tolist(), c2.tolist())]
    g, = run_op(gpu, f"mad.hi.{t} %d, %a, %b, %c;", [a, b, c2], [dt])
    bw = int(t[1:])
    assert g.tolist() == [wrap(((int(x) * int(y)) >> bw) + int(z), t) for x, y, z in zip(a.tolist(), b.tolist(), c2.tolist())]


def test_add_sub_sat(gpu):
    a, b = pairs(np.int32)
    d, = run_op(gpu, "add.sat.s32 %d, %a, %b;", [a, b], [np.int32])
    e, = run_op(gpu, "sub.sat.s32 %d, %a, %b;", [a, b], [np.int32])
    clamp = lambda v: max(-(1 << 31), min((1 << 31) - 1, v))  # noqa: E731
    assert d.tolist() == [clamp(int(x) + int(y)) for x, y in zip(a.tolist(), b.tolist())]
    assert e.tolist() == [clamp(int(x) - int(y)) for x, y in zip(a.tolist(), b.tolist())]


@pytest.mark.parametrize("t", ["s16", "s32", "s64"])
def test_abs_neg(gpu, t):
    dt = TYPES[t]
    a = edge(dt)
    d, = run_op(gpu, f"abs.{t} %d, %a;", [a], [dt])
    e, = run_op(gpu, f"neg.{t} %d, %a;", [a], [dt])
    assert d.tolist() == [wrap(abs(int(x)), t) for x in a.tolist()]     # abs(INT_MIN) == INT_MIN
    assert e.tolist() == [wrap(-int(x), t) for x in a.tolist()]


def test_mul24_mad24(gpu):
    a = np.array([0x00FFFFFF, 0x7FFFFF, 0x800000, 0x12345678, 3], np.uint32)
    b = np.array([0x00FFFFFF, 2, 0x800000, 0x9ABCDEF0, 0xFFFFFFFF], np.uint32)
    def s24(v):
        v &= 0xFFFFFF
        return v - (1 << 24) if v & 0x800000 else v
    lo, = run_op(gpu, "mul24.lo.u32 %d, %a, %b;", [a, b], [np.uint32])
    hi, = run_op(gpu, "mul24.hi.s32 %d, %a, %b;", [a.view(np.int32), b.view(np.int32)], [np.int32])
    assert lo.tolist() == [((x & 0xFFFFFF) * (y & 0xFFFFFF)) & 0xFFFFFFFF for x, y in zip(a.tolist(), b.tolist())]
    assert hi.tolist() == [wrap((s24(x) * s24(y)) >> 16, "s32") for x, y in zip(a.tolist(), b.tolist())]
    c = np.arange(5, dtype=np.uint32)
    m, = run_op(gpu, "mad24.lo.u32 %d, %a, %b, %c;", [a, b, c], [np.uint32])
    assert m.tolist() == [(((x & 0xFFFFFF) * (y & 0xFFFFFF)) + z) & 0xFFFFFFFF for x, y, z in zip(a.tolist(), b.tolist(), c.tolist())]


def test_min_max_relu_and_sad(gpu):
    a, b = pairs(np.int32)
    d, = run_op(gpu, "max.relu.s32 %d, %a, %b;", [a, b], [np.int32])
    assert d.tolist() == [max(0, max(int(x), int(y))) for x, y in zip(a.tolist(), b.tolist())]
    c = np.full(a.size, 10, np.int32)
    s, = run_op(gpu, "sad.s32 %d, %a, %b, %c;", [a, b, c], [np.int32])
    assert s.tolist() == [wrap(abs(int(x) - int(y)) + 10, "s32") for x, y in zip(a.tolist(), b.tolist())]


def test_bad_int_forms_refuse_the_launch():
    from hwdrv.mock.nvidia import ptx
    from test_ptx_helpers import assert_launch_refused
    for bad, word in [("mul.s32 %r1, %r1, %r1;", "mul"), ("add.cc.f32 %r1, %r1, %r1;", "cc"),
                      ("add.sat.u32 %r1, %r1, %r1;", "sat"), ("mad.lo.s32 %r1, %r1, %r1;", "operands")]:
        text = f".version 8.0\n.target sm_90\n.address_size 64\n.visible .entry k()\n{{\n.reg .b32 %r<2>;\n{bad}\nret;\n}}\n"
        assert_launch_refused(ptx.parse(text), "k", 7, word)


def test_carry_chains_128bit(gpu):
    rng = np.random.default_rng(9)
    n = 200
    a = rng.integers(0, 1 << 63, (n, 4), dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 63, (n, 4), dtype=np.uint64).astype(np.uint32)
    a[:4] = 0xFFFFFFFF
    b[:2] = [[1, 0, 0, 0], [0xFFFFFFFF] * 4]
    text = """
    mov.b64 {%x0, %x1}, %a;
    mov.b64 {%x2, %x3}, %c;
    mov.b64 {%y0, %y1}, %b;
    mov.b64 {%y2, %y3}, %x;
    add.cc.u32 %z0, %x0, %y0;
    addc.cc.u32 %z1, %x1, %y1;
    addc.cc.u32 %z2, %x2, %y2;
    addc.u32 %z3, %x3, %y3;
    mov.b64 %d, {%z0, %z1};
    sub.cc.u32 %w0, %x0, %y0;
    subc.cc.u32 %w1, %x1, %y1;
    subc.cc.u32 %w2, %x2, %y2;
    subc.u32 %w3, %x3, %y3;
    mov.b64 %e, {%w2, %w3};
    """
    decl = ".reg .b32 %x0, %x1, %x2, %x3, %y0, %y1, %y2, %y3, %z0, %z1, %z2, %z3, %w0, %w1, %w2, %w3;"
    lo_a, hi_a = a[:, :2].copy().view(np.uint64).ravel(), a[:, 2:].copy().view(np.uint64).ravel()
    lo_b, hi_b = b[:, :2].copy().view(np.uint64).ravel(), b[:, 2:].copy().view(np.uint64).ravel()
    d, e = run_op(gpu, text, [lo_a, lo_b, hi_a, hi_b], [np.uint64, np.uint64], extra_decl=decl)
    for k in range(n):
        x = sum(int(v) << (32 * j) for j, v in enumerate(a[k]))
        y = sum(int(v) << (32 * j) for j, v in enumerate(b[k]))
        assert int(d[k]) == (x + y) & ((1 << 64) - 1)
        assert int(e[k]) == ((x - y) % (1 << 128)) >> 64


def test_mad_cc_and_dp4a(gpu):
    a = np.array([0xFFFFFFFF, 3, 0x80000000], np.uint32)
    b = np.array([0xFFFFFFFF, 5, 2], np.uint32)
    c = np.array([5, 7, 0], np.uint32)
    text = """
    mad.lo.cc.u32 %d, %a, %b, %c;
    madc.hi.u32 %e, %a, %b, 0;
    """
    d, e = run_op(gpu, text, [a, b, c], [np.uint32, np.uint32])
    for k in range(3):
        full = int(a[k]) * int(b[k]) + int(c[k])
        assert int(d[k]) == full & 0xFFFFFFFF
        assert int(e[k]) == (((int(a[k]) * int(b[k])) >> 32) + ((((int(a[k]) * int(b[k])) & 0xFFFFFFFF) + int(c[k])) >> 32)) & 0xFFFFFFFF
    x = np.array([0x01FF7F80, 0x04030201], np.uint32)
    y = np.array([0xFF020304, 0x01010101], np.uint32)
    z = np.array([10, 0xFFFFFFFF], np.uint32)
    d, = run_op(gpu, "dp4a.s32.s32 %d, %a, %b, %c;", [x.view(np.int32), y.view(np.int32), z.view(np.int32)], [np.int32])
    def sb(v, k):
        t = (int(v) >> (8 * k)) & 0xFF
        return t - 256 if t & 0x80 else t
    ref = [(sum(sb(p, k) * sb(q, k) for k in range(4)) + (int(r) - (1 << 32) if r >> 31 else int(r))) for p, q, r in zip(x, y, z)]
    assert d.tolist() == ref
    d, = run_op(gpu, "dp2a.hi.u32.u32 %d, %a, %b, %c;", [x, y, z], [np.uint32])
    ref = [(((int(p) & 0xFFFF) * ((int(q) >> 16) & 0xFF) + (int(p) >> 16) * (int(q) >> 24)) + int(r)) & 0xFFFFFFFF for p, q, r in zip(x, y, z)]
    assert d.tolist() == ref
