"""setp/set/selp, cvt (every type pair, rounding, saturation), cvta round trips, mov packing."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from test_ptx_float import ref_round
from test_ptx_helpers import gpu, run_op  # noqa: F401

NAN = float("nan")
FA = np.array([1, 2, 2, NAN, 1, NAN, -0.0, -np.inf, np.inf], np.float32)
FB = np.array([2, 2, 1, 1, NAN, NAN, 0.0, -np.inf, 3], np.float32)

FLOAT_CMP = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b and not (math.isnan(a) or math.isnan(b)),
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "equ": lambda a, b: a == b or math.isnan(a) or math.isnan(b),
    "neu": lambda a, b: a != b,
    "ltu": lambda a, b: not (a >= b), "leu": lambda a, b: not (a > b),
    "gtu": lambda a, b: not (a <= b), "geu": lambda a, b: not (a < b),
    "num": lambda a, b: not (math.isnan(a) or math.isnan(b)), "nan": lambda a, b: math.isnan(a) or math.isnan(b),
}


@pytest.mark.parametrize("op", list(FLOAT_CMP))
@pytest.mark.parametrize("t", ["f32", "f64", "f16"])
def test_setp_float(gpu, op, t):
    dt = {"f32": np.float32, "f64": np.float64, "f16": np.float16}[t]
    a, b = FA.astype(dt), FB.astype(dt)
    d, = run_op(gpu, f"setp.{op}.{t} %d, %a, %b;", [a, b], [bool], reg_types={0: None, 1: None})
    assert d.tolist() == [FLOAT_CMP[op](float(x), float(y)) for x, y in zip(a, b)], op


INT_CMP = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
           "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b}


@pytest.mark.parametrize("t", ["s32", "u32", "s64", "u16"])
def test_setp_int(gpu, t):
    dt = {"s32": np.int32, "u32": np.uint32, "s64": np.int64, "u16": np.uint16}[t]
    info = np.iinfo(dt)
    vals = np.array(sorted({0, 1, int(info.max), int(info.min), int(info.min) + 1, 5}), dtype=dt)
    a, b = (x.ravel() for x in np.meshgrid(vals, vals))
    for op, f in INT_CMP.items():
        d, = run_op(gpu, f"setp.{op}.{t} %d, %a, %b;", [a, b], [bool])
        assert d.tolist() == [f(int(x), int(y)) for x, y in zip(a.tolist(), b.tolist())], op
    if t[0] == "u":
        for op, base in (("lo", "lt"), ("ls", "le"), ("hi", "gt"), ("hs", "ge")):
            d, = run_op(gpu, f"setp.{op}.{t} %d, %a, %b;", [a, b], [bool])
            assert d.tolist() == [INT_CMP[base](int(x), int(y)) for x, y in zip(a.tolist(), b.tolist())], op


def test_setp_bool_combine_and_pair(gpu):
    a = np.array([1, 2, 3, 4], np.int32)
    b = np.array([2, 2, 2, 2], np.int32)
    c = np.array([True, False, True, False])
    for bop, f in (("and", lambda x, y: x and y), ("or", lambda x, y: x or y), ("xor", lambda x, y: x != y)):
        d, e = run_op(gpu, f"setp.lt.{bop}.s32 %d|%e, %a, %b, %c;", [a, b, c], [bool, bool])
        assert d.tolist() == [f(x < y, z) for x, y, z in zip(a, b, c)]
        assert e.tolist() == [f(not (x < y), z) for x, y, z in zip(a, b, c)]
    d, = run_op(gpu, "setp.ge.and.s32 %d, %a, %b, !%c;", [a, b, c], [bool])
    assert d.tolist() == [x >= y and not z for x, y, z in zip(a, b, c)]


def test_set_selp_slct(gpu):
    a = np.array([1.0, NAN, 3.0], np.float32)
    b = np.array([2.0, 1.0, 3.0], np.float32)
    d, = run_op(gpu, "set.lt.u32.f32 %d, %a, %b;", [a, b], [np.uint32])
    assert d.tolist() == [0xFFFFFFFF, 0, 0]
    d, = run_op(gpu, "set.ltu.f32.f32 %d, %a, %b;", [a, b], [np.float32])
    assert d.tolist() == [1.0, 1.0, 0.0]
    c = np.array([True, False, True])
    x, y = np.array([10, 20, 30], np.int32), np.array([-1, -2, -3], np.int32)
    d, = run_op(gpu, "selp.s32 %d, %a, %b, %c;", [x, y, c], [np.int32])
    assert d.tolist() == [10, -2, 30]
    s = np.array([0.0, -1.0, -0.0], np.float32)
    d, = run_op(gpu, "slct.s32.f32 %d, %a, %b, %c;", [x, y, s], [np.int32])
    assert d.tolist() == [10, -2, 30]


INT_T = {"u8": np.uint8, "s8": np.int8, "u16": np.uint16, "s16": np.int16, "u32": np.uint32, "s32": np.int32,
         "u64": np.uint64, "s64": np.int64}


def _ivals(t):
    info = np.iinfo(INT_T[t])
    return [0, 1, 127, 128, 255, 256, 32767, 32768, 65535, -1, -128, -129, -32768, int(info.max), int(info.min)]


@pytest.mark.parametrize("src", list(INT_T))
def test_cvt_int_int(gpu, src):
    sdt = INT_T[src]
    w = np.dtype(sdt).itemsize * 8
    vals = np.array([v % (1 << w) for v in _ivals(src)], np.uint64).astype(f"u{w // 8}").view(sdt)
    rt = {0: "b16"} if np.dtype(sdt).itemsize == 1 else None
    for dst, ddt in INT_T.items():
        dbits = np.dtype(ddt).itemsize * 8
        signed_d = dst[0] == "s"
        ort = {0: "b16"} if dbits == 8 else None
        for sat in ("", ".sat"):
            d, = run_op(gpu, f"cvt{sat}.{dst}.{src} %d, %a;", [vals], [ddt if dbits > 8 else (np.int16 if signed_d else np.uint16)],
                        reg_types=rt, out_reg_types=ort)
            got = [int(v) for v in d.tolist()]
            ref = []
            for v in vals.tolist():
                v = int(v)
                lo, hi = (-(1 << (dbits - 1)), (1 << (dbits - 1)) - 1) if signed_d else (0, (1 << dbits) - 1)
                if sat:
                    r = min(max(v, lo), hi)
                else:
                    r = v & ((1 << dbits) - 1)
                    if signed_d and r >> (dbits - 1):
                        r -= 1 << dbits
                if dbits == 8:     # an 8-bit result lands in a 16-bit register, extended per its type
                    r = r if signed_d or r >= 0 else r & 0xFF
                ref.append(r)
            assert got == ref, (dst, src, sat)


@pytest.mark.parametrize("dst", ["s32", "u32", "s64", "u64", "s16", "u8"])
@pytest.mark.parametrize("mode", ["rni", "rzi", "rmi", "rpi"])
def test_cvt_float_int(gpu, dst, mode):
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.7, 2.7, 1e20, -1e20, NAN, np.inf, -np.inf, 3e9, 4.3e9, 255.9, 256.0,
                  -0.0, 9.3e18, 1.9e19], np.float64)
    f = {"rni": lambda v: round(v), "rzi": math.trunc, "rmi": math.floor, "rpi": math.ceil}[mode]
    ddt = INT_T[dst]
    bitsz = np.dtype(ddt).itemsize * 8
    lo, hi = (-(1 << (bitsz - 1)), (1 << (bitsz - 1)) - 1) if dst[0] == "s" else (0, (1 << bitsz) - 1)
    for src, sx in (("f64", x), ("f32", x.astype(np.float32))):
        out = ddt if bitsz > 8 else np.uint16
        d, = run_op(gpu, f"cvt.{mode}.{dst}.{src} %d, %a;", [sx], [out], out_reg_types={0: "b16"} if bitsz == 8 else None)
        ref = [0 if math.isnan(v) else min(max(f(v) if math.isfinite(v) else (hi if v > 0 else lo), lo), hi)
               for v in sx.astype(np.float64).tolist()]
        assert [int(v) for v in d.tolist()] == ref, (src, dst, mode)


@pytest.mark.parametrize("dst", ["f16", "bf16", "f32", "f64"])
@pytest.mark.parametrize("mode", ["rn", "rz", "rm", "rp"])
def test_cvt_int_float(gpu, dst, mode):
    vals = [0, 1, -1, 3, 2049, 16777217, -16777217, (1 << 53) + 1, (1 << 62) + 12345, -(1 << 63), (1 << 63) - 1, 65519, 65520, 99999]
    for src in ("s64", "u32", "s32", "u64"):
        sdt = INT_T[src]
        v = np.array(vals, dtype=object)
        bitsz = np.dtype(sdt).itemsize * 8
        arr = np.array([int(x) % (1 << bitsz) for x in vals], np.uint64).astype({32: np.uint32, 64: np.uint64}[bitsz]).view(sdt)
        out = {"f16": np.uint16, "bf16": np.uint16, "f32": np.uint32, "f64": np.uint64}[dst]
        d, = run_op(gpu, f"cvt.{mode}.{dst}.{src} %d, %a;", [arr], [out])
        ref = [ref_round(Fraction(int(x)), dst, mode) if int(x) else 0 for x in arr.tolist()]
        assert [int(b) for b in d.tolist()] == ref, (src, dst, mode)
        del v


@pytest.mark.parametrize("dst", ["f16", "bf16", "f32"])
@pytest.mark.parametrize("mode", ["rn", "rz", "rm", "rp"])
def test_cvt_float_narrowing(gpu, dst, mode):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(100) * 10.0 ** rng.integers(-8, 8, 100),
                        [1e300, -1e300, 1e-300, -1e-300, 65504.0, 65520.0, 65519.99, 1 + 2.0**-11, 1 + 3 * 2.0**-12, 2.0**-25]])
    out = {"f16": np.uint16, "bf16": np.uint16, "f32": np.uint32}[dst]
    d, = run_op(gpu, f"cvt.{mode}.{dst}.f64 %d, %a;", [x], [out])
    ref = [ref_round(Fraction(float(v)), dst, mode) for v in x]
    assert [int(b) for b in d.tolist()] == ref
    if dst != "f32":
        with np.errstate(over="ignore"):
            x32 = x.astype(np.float32)
        d, = run_op(gpu, f"cvt.{mode}.{dst}.f32 %d, %a;", [x32], [out])
        ref = [ref_round(Fraction(float(v)), dst, mode) if math.isfinite(v) and v != 0 else None for v in x32.astype(np.float64)]
        assert all(r is None or int(b) == r for b, r in zip(d.tolist(), ref))


def test_cvt_float_misc(gpu):
    h = np.array([1.5, -2.25, 65504, np.inf, NAN], np.float16)
    d, = run_op(gpu, "cvt.f32.f16 %d, %a;", [h], [np.float32])
    assert np.array_equal(d[:4], h[:4].astype(np.float32)) and np.isnan(d[4])
    x = np.array([2.5, -2.5, 3.7, -0.2, 1e-40], np.float32)
    d, = run_op(gpu, "cvt.rni.f32.f32 %d, %a;", [x], [np.float32])
    assert d.tolist() == [2.0, -2.0, 4.0, -0.0, 0.0]
    d, = run_op(gpu, "cvt.rzi.ftz.f32.f32 %d, %a;", [x], [np.float32])
    assert d.tolist() == [2.0, -2.0, 3.0, -0.0, 0.0]
    d, = run_op(gpu, "cvt.sat.f32.f32 %d, %a;", [np.array([-1, 0.5, 2, NAN, -0.0], np.float32)], [np.float32])
    assert d.tolist() == [0.0, 0.5, 1.0, 0.0, 0.0]
    # packing converts: d[31:16] = cvt(a), d[15:0] = cvt(b)
    a = np.array([1.0, -2.0], np.float32)
    b = np.array([3.0, 0.5], np.float32)
    d, = run_op(gpu, "cvt.rn.f16x2.f32 %d, %a, %b;", [a, b], [np.uint32])
    assert d.view(np.float16).reshape(2, 2).tolist() == [[3.0, 1.0], [0.5, -2.0]]
    d, = run_op(gpu, "cvt.rn.bf16x2.f32 %d, %a, %b;", [a, b], [np.uint32])
    assert d.tolist() == [0x3F804040, 0xC0003F00]
    d, = run_op(gpu, "cvt.rn.relu.f16.f32 %d, %a;", [np.array([-1.0, 2.0], np.float32)], [np.float16])
    assert d.tolist() == [0.0, 2.0]


def test_mov_pack_unpack(gpu):
    a = np.array([0x11223344, 0xDEADBEEF], np.uint32)
    b = np.array([0x55667788, 0x01020304], np.uint32)
    d, = run_op(gpu, "mov.b64 %d, {%a, %b};", [a, b], [np.uint64])
    assert d.tolist() == [0x5566778811223344, 0x01020304DEADBEEF]
    d, e = run_op(gpu, "mov.b64 {%d, %e}, %a;", [d], [np.uint32, np.uint32])
    assert d.tolist() == a.tolist() and e.tolist() == b.tolist()
    h1 = np.array([0x1234, 0xFFFF], np.uint16)
    h2 = np.array([0xABCD, 0x0001], np.uint16)
    d, = run_op(gpu, "mov.b32 %d, {%a, %b};", [h1, h2], [np.uint32])
    assert d.tolist() == [0xABCD1234, 0x0001FFFF]
    d, = run_op(gpu, "mov.b32 %d, 0f3F800000;", [a], [np.uint32])
    assert d.tolist() == [0x3F800000] * 2
    d, = run_op(gpu, "mov.u32 %d, %laneid;", [np.zeros(40, np.uint32)], [np.uint32])
    assert d.tolist() == [i % 32 for i in range(40)]


def test_cvta_round_trip_and_isspacep(gpu):
    from hwdrv.mock.nvidia.ptx import SHARED_WINDOW, LOCAL_WINDOW
    x = np.array([0, 16, 0xFFF0], np.uint64)
    d, = run_op(gpu, "cvta.shared.u64 %d, %a;", [x], [np.uint64])
    assert d.tolist() == [SHARED_WINDOW + int(v) for v in x]
    e, = run_op(gpu, "cvta.to.shared.u64 %d, %a;", [d], [np.uint64])
    assert e.tolist() == x.tolist()
    d, = run_op(gpu, "cvta.local.u64 %d, %a;", [x], [np.uint64])
    e, = run_op(gpu, "cvta.to.local.u64 %d, %a;", [d], [np.uint64])
    assert e.tolist() == x.tolist() and d[0] == LOCAL_WINDOW
    p, = run_op(gpu, "isspacep.shared %d, %a;", [np.array([SHARED_WINDOW + 4, 0x20_0000_0000], np.uint64)], [bool])
    q, = run_op(gpu, "isspacep.global %d, %a;", [np.array([SHARED_WINDOW + 4, 0x20_0000_0000], np.uint64)], [bool])
    assert p.tolist() == [True, False] and q.tolist() == [False, True]
