"""Floating-point instructions (f16, bf16, f32, f64) against an independent exact reference:
every result is compared bit for bit with the exact rational result rounded in the PTX mode."""
from __future__ import annotations

import math
import zlib
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from test_ptx_helpers import bits, gpu, run_op  # noqa: F401

# format -> (storage dtype, significand bits incl. implicit, max exponent)
FMT = {"f16": (np.uint16, 11, 15), "bf16": (np.uint16, 8, 127), "f32": (np.uint32, 24, 127), "f64": (np.uint64, 53, 1023)}
EXP_BITS = {"f16": 5, "bf16": 8, "f32": 8, "f64": 11}


def value(b: int, fmt: str) -> Fraction | float:
    """Exact value of bit pattern b (float('inf')/nan for specials)."""
    _, p, emax = FMT[fmt]
    eb = EXP_BITS[fmt]
    w = 1 + eb + p - 1
    sign = -1 if b >> (w - 1) else 1
    e = (b >> (p - 1)) & ((1 << eb) - 1)
    m = b & ((1 << (p - 1)) - 1)
    if e == (1 << eb) - 1:
        return sign * math.inf if m == 0 else math.nan
    if e == 0:
        return sign * Fraction(m) * Fraction(2) ** (1 - emax - (p - 1))
    return sign * (Fraction(m + (1 << (p - 1)))) * Fraction(2) ** (e - emax - (p - 1))


def key(b: int, fmt: str) -> int:
    w = np.dtype(FMT[fmt][0]).itemsize * 8
    return -(b & ((1 << (w - 1)) - 1)) if b >> (w - 1) else b


def unkey(k: int, fmt: str) -> int:
    w = np.dtype(FMT[fmt][0]).itemsize * 8
    return k if k >= 0 else (-k) | (1 << (w - 1))


def ref_round(q: Fraction, fmt: str, mode: str, zero_sign: int = 1) -> int:
    """Independent reference: walk the bit patterns around q (exact comparisons only)."""
    _, p, emax = FMT[fmt]
    big = Fraction(2) ** (emax + 1)            # the value "just past max" (RN overflow threshold logic)
    if q == 0:
        return unkey(0, fmt) if zero_sign > 0 else unkey(-0, fmt) | (1 << (np.dtype(FMT[fmt][0]).itemsize * 8 - 1))
    inf_key = key(((1 << EXP_BITS[fmt]) - 1) << (p - 1), fmt)

    def val(k):
        if k >= inf_key:
            return big
        if k <= -inf_key:
            return -big
        return value(unkey(k, fmt), fmt)
    lo, hi = -inf_key, inf_key
    while hi - lo > 1:                           # floor: the largest key with val <= q
        mid = (lo + hi) // 2
        if val(mid) <= q:
            lo = mid
        else:
            hi = mid
    f = lo
    if val(f) == q:
        return unkey(f, fmt)
    c = f + 1
    if mode == "rm":
        k = f
    elif mode == "rp":
        k = c
    elif mode == "rz":
        k = f if q > 0 else c
    else:
        df, dc = q - val(f), val(c) - q
        k = f if df < dc else c if dc < df else (f if unkey(f, fmt) % 2 == 0 else c)
    if mode != "rn":
        # directed rounding never produces an infinity from a finite value, except rp/rm past max
        if k >= inf_key and not (mode == "rp"):
            k = inf_key - 1
        if k <= -inf_key and not (mode == "rm"):
            k = -inf_key + 1
    if k == 0 and q < 0:                  # an underflow to zero keeps the sign
        return unkey(0, fmt) | (1 << (np.dtype(FMT[fmt][0]).itemsize * 8 - 1))
    return unkey(k, fmt)


def rand_bits(rng, fmt, n, wide=True):
    dt = FMT[fmt][0]
    info = np.iinfo(dt)
    b = rng.integers(0, int(info.max) + 1, n, dtype=np.uint64).astype(dt)
    if not wide:
        # moderate exponents, so sums/products often need real rounding rather than overflow
        v = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)
        b = _encode(v, fmt)
    return b


def _encode(v: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "bf16":
        return np.array([ref_round(Fraction(float(x)), "bf16", "rn") for x in v], np.uint16)
    return np.asarray(v).astype({"f16": np.float16, "f32": np.float32, "f64": np.float64}[fmt]).view(FMT[fmt][0])


SPECIAL = {
    "f32": [0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 1, 0x807FFFFF, 0x7F7FFFFF, 0x3F800000, 0xBF800000,
            0x00800000, 0x33800000],
    "f64": [0, 1 << 63, 0x7FF0 << 48, 0xFFF0 << 48, 0x7FF8 << 48, 1, 0x7FEFFFFFFFFFFFFF, 0x3FF0 << 48, 0x0010 << 48],
    "f16": [0, 0x8000, 0x7C00, 0xFC00, 0x7E00, 1, 0x7BFF, 0x3C00, 0xBC00, 0x0400],
    "bf16": [0, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 1, 0x7F7F, 0x3F80, 0xBF80, 0x0080],
}


def is_nan(b: int, fmt: str) -> bool:
    v = value(b, fmt)
    return isinstance(v, float) and math.isnan(v)


def exact_op(op, xs):
    vals = xs
    if any(isinstance(v, float) for v in vals):       # specials: let IEEE float64 decide
        fv = [float(v) for v in vals]
        with np.errstate(all="ignore"):
            r = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
                 "div": lambda a, b: np.float64(a) / np.float64(b) if b != 0 or math.isnan(a) else (np.float64(a) / np.float64(b)),
                 "fma": lambda a, b, c: a * b + c}[op](*fv)
        return float(r)
    if op == "add":
        return vals[0] + vals[1]
    if op == "sub":
        return vals[0] - vals[1]
    if op == "mul":
        return vals[0] * vals[1]
    if op == "fma":
        return vals[0] * vals[1] + vals[2]
    if op == "div":
        if vals[1] == 0:
            return math.nan if vals[0] == 0 else math.copysign(math.inf, float(vals[0])) * (1 if vals[1] >= 0 else 1)
        return vals[0] / vals[1]
    raise AssertionError(op)


def signbit(b: int, fmt: str) -> bool:
    return bool(int(b) >> (np.dtype(FMT[fmt][0]).itemsize * 8 - 1))


def expected(op, raw, fmt, mode):
    xs = [value(int(b), fmt) for b in raw]
    if op == "div" and not isinstance(xs[0], float) and not isinstance(xs[1], float) and xs[1] == 0 and xs[0] != 0:
        return ref_round_inf(-1 if (xs[0] < 0) != signbit(raw[1], fmt) else 1, fmt)   # x / +-0
    r = exact_op(op, xs)
    if isinstance(r, float):
        if math.isnan(r):
            return "nan"
        if math.isinf(r):
            return ref_round_inf(r, fmt)
        r = Fraction(r) if r != 0 else None
        if r is None:
            return None        # a zero from specials (0*x etc.): checked separately
    if r == 0:
        return None            # exact zero: sign rules are tested separately
    return ref_round(r, fmt, mode)


def ref_round_inf(r, fmt):
    _, p, _ = FMT[fmt]
    b = ((1 << EXP_BITS[fmt]) - 1) << (p - 1)
    w = np.dtype(FMT[fmt][0]).itemsize * 8
    return b | (1 << (w - 1)) if r < 0 else b


OPS = {"add": 2, "sub": 2, "mul": 2, "fma": 3, "div": 2}


def run_float(gpu, op, fmt, mode, arrays):
    dt = FMT[fmt][0]
    ty = {"f16": "f16", "bf16": "bf16", "f32": "f32", "f64": "f64"}[fmt]
    rmod = f".{mode}"
    srcs = ", ".join(["%a", "%b", "%c"][:OPS[op]])
    d, = run_op(gpu, f"{op}{rmod}.{ty} %d, {srcs};", arrays, [dt])
    return d


def check(op, fmt, mode, arrays, d):
    for k in range(len(d)):
        raw = [a[k] for a in arrays]
        exp = expected(op, raw, fmt, mode)
        got = int(d[k])
        if exp is None:
            assert value(got, fmt) == 0, (op, fmt, mode, raw, hex(got))
        elif exp == "nan":
            assert is_nan(got, fmt), (op, fmt, mode, [hex(int(x)) for x in raw], hex(got))
        else:
            assert got == exp, (op, fmt, mode, [hex(int(x)) for x in raw], hex(got), hex(exp))


CASES = [(op, fmt, mode) for op in OPS for fmt in FMT for mode in ("rn", "rz", "rm", "rp")
         if not (op == "div" and fmt in ("f16", "bf16"))]


@pytest.mark.parametrize("op, fmt, mode", CASES)
def test_rounded_arithmetic(gpu, op, fmt, mode):
    rng = np.random.default_rng(zlib.crc32(f"{op}{fmt}{mode}".encode()))
    n = 120
    sp = np.array(SPECIAL[fmt], FMT[fmt][0])
    arrays = []
    for k in range(OPS[op]):
        mix = np.concatenate([rand_bits(rng, fmt, n, wide=False), rand_bits(rng, fmt, 40), np.resize(sp, 30)])
        arrays.append(np.roll(mix, 7 * k))
    d = run_float(gpu, op, fmt, mode, arrays)
    check(op, fmt, mode, arrays, d)


@settings(max_examples=20, deadline=None)
@given(data=st.data(), op=st.sampled_from(["add", "mul", "fma", "div"]), mode=st.sampled_from(["rn", "rz", "rm", "rp"]),
       fmt=st.sampled_from(["f32", "f64"]))
def test_rounded_arithmetic_hypothesis(gpu, data, op, mode, fmt):
    dt = FMT[fmt][0]
    arrays = [data.draw(hnp.arrays(dt, 16)) for _ in range(OPS[op])]
    d = run_float(gpu, op, fmt, mode, arrays)
    check(op, fmt, mode, arrays, d)


def test_fma_f64_hard_cases(gpu):
    # products whose low half decides the rounding of the sum: the double-double fast path must
    # fall back to exact arithmetic on the boundary cases
    a = np.array([1 + 2.0**-52, 1 + 2.0**-30, 2.0**600, 1e308, 3.0, 1 + 2.0**-27], np.float64)
    b = np.array([1 - 2.0**-52, 1 - 2.0**-30, 2.0**500, 10.0, 1 / 3, 1 + 2.0**-27], np.float64)
    c = np.array([-1.0, -1.0, -1e300, -1.7e308, -1.0, -1.0], np.float64)
    for mode in ("rn", "rz", "rm", "rp"):
        d, = run_op(gpu, f"fma.{mode}.f64 %d, %a, %b, %c;", [a, b, c], [np.float64])
        for k in range(len(a)):
            q = Fraction(a[k]) * Fraction(b[k]) + Fraction(c[k])
            assert int(d.view(np.uint64)[k]) == ref_round(q, "f64", mode), (mode, k)


def test_signed_zero_results(gpu):
    x = np.array([1.5, -0.0, 0.0, -0.0], np.float32)
    y = np.array([-1.5, -0.0, -0.0, 0.0], np.float32)
    for mode, ref in (("rn", [0, 1, 0, 0]), ("rm", [1, 1, 1, 1]), ("rz", [0, 1, 0, 0]), ("rp", [0, 1, 0, 0])):
        d, = run_op(gpu, f"add.{mode}.f32 %d, %a, %b;", [x, y], [np.float32])
        assert np.signbit(d).astype(int).tolist() == ref, mode


def test_ftz_and_sat(gpu):
    sub = np.array([1e-40, -1e-40, 0.5, 2.0, -3.0, np.nan], np.float32)
    one = np.ones(6, np.float32)
    d, = run_op(gpu, "mul.ftz.f32 %d, %a, %b;", [sub, one], [np.float32])
    assert bits(d)[:2].tolist() == [0, 0x80000000]
    d, = run_op(gpu, "mul.f32 %d, %a, %b;", [sub, one], [np.float32])
    assert d[0] == np.float32(1e-40)                      # sm_90: denormals kept without .ftz
    d, = run_op(gpu, "add.sat.f32 %d, %a, %b;", [sub, np.zeros(6, np.float32)], [np.float32])
    assert d.tolist() == [float(np.float32(1e-40)), 0.0, 0.5, 1.0, 0.0, 0.0]
    assert not np.signbit(d[1])


def test_min_max(gpu):
    nan = np.float32("nan")
    a = np.array([1, nan, nan, -0.0, 0.0, -np.inf, 3], np.float32)
    b = np.array([2, 5, nan, 0.0, -0.0, 1, np.inf], np.float32)
    mn, = run_op(gpu, "min.f32 %d, %a, %b;", [a, b], [np.float32])
    mx, = run_op(gpu, "max.f32 %d, %a, %b;", [a, b], [np.float32])
    assert mn[[0, 1, 5, 6]].tolist() == [1, 5, -np.inf, 3] and np.isnan(mn[2])
    assert bits(mn)[3] == 0x80000000 and bits(mn)[4] == 0x80000000          # -0 < +0
    assert bits(mx)[3] == 0 and bits(mx)[4] == 0
    assert mx[[0, 1, 5, 6]].tolist() == [2, 5, 1, np.inf]
    nn, = run_op(gpu, "min.NaN.f32 %d, %a, %b;", [a, b], [np.float32])
    assert np.isnan(nn[1]) and nn[0] == 1


def test_abs_neg_copysign_testp(gpu):
    a = np.array([1.5, -2.0, -0.0, np.inf, np.nan, 1e-40, -1e-45], np.float32)
    b = np.array([-1, 1, 1, -1, -1, -1, 1], np.float32)
    d, = run_op(gpu, "abs.f32 %d, %a;", [a], [np.float32])
    assert (bits(d) == (bits(a) & 0x7FFFFFFF)).all()
    d, = run_op(gpu, "neg.f32 %d, %a;", [a], [np.float32])
    assert (bits(d) == (bits(a) ^ 0x80000000)).all()
    d, = run_op(gpu, "copysign.f32 %d, %b, %a;", [a, b], [np.float32])
    assert (bits(d) == ((bits(a) & 0x7FFFFFFF) | (bits(b) & 0x80000000))).all()
    for kind, ref in (("finite", np.isfinite(a)), ("infinite", np.isinf(a)), ("notanumber", np.isnan(a)),
                      ("number", ~np.isnan(a)), ("normal", np.isfinite(a) & (np.abs(a) >= 2.0**-126)),
                      ("subnormal", (np.abs(a) < 2.0**-126) & (a != 0))):
        d, = run_op(gpu, f"testp.{kind}.f32 %d, %a;", [a], [bool])
        assert d.tolist() == ref.tolist(), kind


def test_approx_functions_within_ptx_error(gpu):
    rng = np.random.default_rng(20)
    x = (rng.random(300) * 20 - 10).astype(np.float32)
    pos = (np.abs(x) + 0.01).astype(np.float32)
    x64 = x.astype(np.float64)
    for ins, arg, ref, tol in (
            ("rcp.approx.f32", pos, 1 / pos.astype(np.float64), 2e-7),
            ("sqrt.approx.f32", pos, np.sqrt(pos.astype(np.float64)), 2e-7),
            ("rsqrt.approx.f32", pos, 1 / np.sqrt(pos.astype(np.float64)), 3e-7),
            ("ex2.approx.ftz.f32", x, np.exp2(x64), 3e-7),
            ("lg2.approx.f32", pos, np.log2(pos.astype(np.float64)), 3e-7),
            ("tanh.approx.f32", x, np.tanh(x64), 2e-3)):
        d, = run_op(gpu, f"{ins} %d, %a;", [arg], [np.float32])
        assert np.allclose(d, ref, rtol=tol, atol=1e-6), ins
    for ins, f in (("sin.approx.f32", np.sin), ("cos.approx.f32", np.cos)):
        d, = run_op(gpu, f"{ins} %d, %a;", [x], [np.float32])
        assert np.max(np.abs(d - f(x64))) < 2.0**-20.5, ins       # PTX: max abs error 2^-20.5 in [-pi, pi]
    # correctly rounded reciprocals and roots
    d, = run_op(gpu, "rcp.rn.f32 %d, %a;", [pos], [np.float32])
    assert np.array_equal(d, (1 / pos.astype(np.float64)).astype(np.float32))
    d, = run_op(gpu, "sqrt.rz.f32 %d, %a;", [pos], [np.float32])
    for k in range(len(pos)):
        q = Fraction(float(pos[k]))
        r = Fraction(float(d[k]))
        nxt = Fraction(float(np.nextafter(d[k], np.float32(np.inf))))
        assert r * r <= q < nxt * nxt
    d, = run_op(gpu, "sqrt.rp.f64 %d, %a;", [pos.astype(np.float64) * 3], [np.float64])
    for k in range(len(pos)):
        q = Fraction(float(pos[k])) * 3
        r = Fraction(float(d[k]))
        prv = Fraction(float(np.nextafter(d[k], -np.inf)))
        assert prv * prv < q <= r * r


def test_half_precision_packed(gpu):
    rng = np.random.default_rng(21)
    a = (rng.standard_normal(200) * 100).astype(np.float16)
    b = (rng.standard_normal(200) * 100).astype(np.float16)
    c = (rng.standard_normal(200) * 100).astype(np.float16)
    pa, pb, pc = (x.view(np.uint32) for x in (a, b, c))
    d, = run_op(gpu, "fma.rn.f16x2 %d, %a, %b, %c;", [pa, pb, pc], [np.uint32])
    got = d.view(np.float16)
    ref = [ref_round(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)), "f16", "rn") for x, y, z in zip(a, b, c)]
    assert got.view(np.uint16).tolist() == ref
    d, = run_op(gpu, "min.f16x2 %d, %a, %b;", [pa, pb], [np.uint32])
    assert np.array_equal(d.view(np.float16), np.minimum(a, b))
    d, = run_op(gpu, "neg.bf16x2 %d, %a;", [pa], [np.uint32])
    assert np.array_equal(d, pa ^ np.uint32(0x80008000))
