"""ALU semantics through clang-19: tests/data/amd/isa/kernels/ops.cl (32/64-bit integer, f32, f64
and f16 operations, built by build.sh with correctly rounded division/sqrt and no contraction)
runs on the RDNA3 emulator; every result is compared with numpy / Python integers, exactly."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from amd_emu_harness import EmuMachine

HSACO = Path(__file__).resolve().parent / "data" / "amd" / "isa" / "kernels" / "ops.hsaco"
N = 320                       # 5 workgroups of 64


def launch(kernel: str, a: np.ndarray, b: np.ndarray, nres: int, out=None) -> np.ndarray:
    out = np.dtype(out or a.dtype)
    m = EmuMachine()
    av, _ = m.upload(a)
    bv, _ = m.upload(b)
    ov, view = m.alloc(nres * N * out.itemsize)
    m.launch(HSACO, kernel, [av, bv, ov, np.uint32(N)], (N,), (64,))
    return view[:nres * N * out.itemsize].view(out).reshape(nres, N).copy()


def _tdiv(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def _wrap(v: int, bits: int, signed: bool) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if signed and v >> (bits - 1) else v


def test_i32_ops():
    rng = np.random.default_rng(5)
    a = rng.integers(-2 ** 31, 2 ** 31, N, dtype=np.int64).astype(np.int32)
    b = rng.integers(-2 ** 31, 2 ** 31, N, dtype=np.int64).astype(np.int32)
    b[:40] = rng.integers(-70, 70, 40)
    a[40:48] = [-2 ** 31, -2 ** 31, 0, -1, 7, 2 ** 31 - 1, 5, -5]
    b[40:48] = [-1, 1, 0, 1, 0, -1, -3, 3]
    got = launch("i32_ops", a, b, 19)
    for i in range(N):
        x, y = int(a[i]), int(b[i])
        ux, uy = x & 0xFFFFFFFF, y & 0xFFFFFFFF
        ok = y != 0 and not (x == -2 ** 31 and y == -1)
        q = _tdiv(x, y) if ok else 0
        s = uy & 31
        xb, yb = [(ux >> (8 * k)) & 0xFF for k in range(4)], [(uy >> (8 * k)) & 0xFF for k in range(4)]
        cb = [((ux ^ uy) >> (8 * k)) & 0xFF for k in range(4)]
        want = [(x * y) >> 32, (ux * uy) >> 32, q, x - q * y if ok else 0, ux // uy if uy else 0,
                ux % uy if uy else 0, x >> s, ux >> s, ux << s, (ux << s) | (ux >> ((32 - s) & 31)),
                32 - (ux | 1).bit_length(), bin(ux).count("1"), min(x, y) ^ (max(x, y) * 3),
                abs(ux - uy), ((ux ^ uy) & 0x0F0F0F0F) ^ uy, x * y + (x ^ 0x5A5A5A5A),
                int(f"{ux:032b}"[::-1], 2), sum(abs(p - q2) for p, q2 in zip(xb, yb)) + 7,
                sum(((p + q2 + (c & 1)) >> 1) << (8 * k) for k, (p, q2, c) in enumerate(zip(xb, yb, cb)))]
        want = [_wrap(w, 32, True) for w in want]
        assert list(got[:, i]) == want, f"lane {i}: x={x} y={y}"


def test_i64_ops():
    rng = np.random.default_rng(6)
    a = rng.integers(-2 ** 63, 2 ** 63 - 1, N, dtype=np.int64)
    b = rng.integers(-2 ** 63, 2 ** 63 - 1, N, dtype=np.int64)
    b[:60] = rng.integers(-2 ** 33, 2 ** 33, 60)
    b[60:80] = rng.integers(-9, 9, 20)
    a[80:84] = [-2 ** 63, -2 ** 63, 0, 12345678901234]
    b[80:84] = [-1, 1, 5, 0]
    got = launch("i64_ops", a, b, 10)
    for i in range(N):
        x, y = int(a[i]), int(b[i])
        ux, uy = x & (2 ** 64 - 1), y & (2 ** 64 - 1)
        ok = y != 0 and not (x == -2 ** 63 and y == -1)
        q = _tdiv(x, y) if ok else 0
        s = uy & 63
        want = [x * y, q, x - q * y if ok else 0, ux // uy if uy else 0, ux % uy if uy else 0, x >> s, ux >> s,
                ux << s, bin(ux).count("1") + 100 * (64 - (ux | 1).bit_length()), min(x, y) + max(ux, uy)]
        want = [_wrap(w, 64, True) for w in want]
        assert list(got[:, i]) == want, f"lane {i}: x={x} y={y}"


def _floats(rng, dt):
    a = rng.uniform(-100, 100, N).astype(dt)
    b = rng.uniform(-100, 100, N).astype(dt)
    b[:20] = rng.uniform(-1, 1, 20).astype(dt)
    tiny = np.finfo(dt).smallest_subnormal
    a[20:30] = [0.0, -0.0, 1.0, tiny * 3, -tiny * 1000, np.finfo(dt).tiny, 1e30 if dt == np.float32 else 1e300,
                3.0, 7.5, -2.5]
    b[20:30] = [5.0, 3.0, 0.0, 2.0, 0.75, 3.0, 1e-5 if dt == np.float32 else 1e-300, tiny * 7, 0.5, -0.5]
    return a, b


def _fma_ref(x, y, z, dt):
    """Single-rounding fused multiply-add (exact rational, then one rounding to dt)."""
    out = np.empty(len(x), dt)
    for i, (p, q) in enumerate(zip(x, y)):
        exact = Fraction(float(p)) * Fraction(float(q)) + Fraction(z)
        f = dt(float(exact))                 # nearest double, then dt
        # fix a possible double rounding: step to whichever neighbour is nearer to the exact value
        cands = [f, np.nextafter(f, dt(np.inf)), np.nextafter(f, dt(-np.inf))]
        out[i] = min(cands, key=lambda c: (abs(Fraction(float(c)) - exact), int(np.array(c).view(
            np.uint32 if dt == np.float32 else np.uint64)) & 1))
    return out


def _round_half_away(x):
    t = np.trunc(x)
    return np.where(np.abs(x - t) >= 0.5, t + np.copysign(1.0, x), t).astype(x.dtype)


def test_f32_ops():
    rng = np.random.default_rng(7)
    a, b = _floats(rng, np.float32)
    got = launch("f32_ops", a, b, 12)
    f32 = np.float32
    with np.errstate(all="ignore"):
        want = [a / b, np.sqrt(np.abs(a)), _fma_ref(a, b, 0.375, f32), np.floor(a) + np.ceil(b) * f32(16),
                np.rint(a) + np.trunc(b) * f32(16), np.fmin(a, b) - np.fmax(a, b) * f32(0.5), np.copysign(a, b),
                np.ldexp(a, np.trunc(b).astype(np.int32)).astype(f32),
                np.trunc(a).astype(np.int32).astype(f32) + np.trunc(np.abs(b)).astype(np.uint32).astype(f32),
                a * b - a, _round_half_away(a), ((np.trunc(a * f32(1000)).astype(np.int64).astype(np.int32)) >> 2).astype(f32)]
    ok = np.abs(a) < 1e9                       # (int) conversions are defined only in range
    for k, w in enumerate(want):
        sel = ok if k in (8, 11) else np.ones(N, bool)
        np.testing.assert_array_equal(got[k][sel].view(np.uint32), np.asarray(w, f32)[sel].view(np.uint32),
                                      err_msg=f"f32 result {k}")


def test_f64_ops():
    rng = np.random.default_rng(8)
    a, b = _floats(rng, np.float64)
    got = launch("f64_ops", a, b, 7)
    with np.errstate(all="ignore"):
        want = [a / b, np.sqrt(np.abs(a)), _fma_ref(a, b, 0.375, np.float64), np.floor(a) + np.ceil(b) * 16.0,
                np.rint(a) + np.trunc(b) * 16.0,
                np.trunc(a * 1e6).astype(np.int64).astype(np.float64) + b.astype(np.float32).astype(np.float64),
                a * b + a]
    ok = np.abs(a) < 1e9
    for k, w in enumerate(want):
        sel = ok if k == 5 else np.ones(N, bool)
        np.testing.assert_array_equal(got[k][sel].view(np.uint64), np.asarray(w, np.float64)[sel].view(np.uint64),
                                      err_msg=f"f64 result {k}")


def test_f16_ops():
    rng = np.random.default_rng(9)
    a = rng.uniform(-30, 30, N).astype(np.float16)
    b = rng.uniform(-30, 30, N).astype(np.float16)
    b[:10] = [0.0, -0.0, 1e-7, 6e-8, 2.0, 0.5, 1000.0, -0.25, 3.0, 65504.0]
    got = launch("f16_ops", a, b, 7)
    x, y = a.astype(np.float64), b.astype(np.float64)
    h = np.float16
    with np.errstate(all="ignore"):
        want = [(x + y).astype(h), (x * y).astype(h), (x - y * 0.5).astype(h), (x * y + 1.0).astype(h),
                np.where(a < b, a, b), (a.astype(np.float32) / b.astype(np.float32)).astype(h),
                np.trunc(x * 4).astype(np.int32).astype(h)]
    for k, w in enumerate(want):
        np.testing.assert_array_equal(got[k].view(np.uint16), np.asarray(w, h).view(np.uint16), err_msg=f"f16 result {k}")


def test_builtin_ops():
    rng = np.random.default_rng(10)
    a = rng.uniform(-100, 100, N).astype(np.float32)
    b = rng.uniform(-100, 100, N).astype(np.float32)
    b[:4] = [0.0, -0.0, 1e-3, 3.0]
    a[4:8] = [np.inf, -np.inf, np.nan, 0.0]
    b[4:8] = [np.nan, np.inf, -np.inf, -1.0]
    got = launch("builtin_ops", a, b, 18)
    f32, f64 = np.float32, np.float64
    y = b.astype(f64)
    ux, uy = a.view(np.uint32).astype(np.int64), b.view(np.uint32).astype(np.int64)
    with np.errstate(all="ignore"):
        approx = {0: 1 / y, 1: 1 / np.sqrt(np.abs(y)), 2: np.sin(2 * np.pi * (a * f32(0.01)).astype(f64)),
                  3: np.cos(2 * np.pi * (a * f32(0.01)).astype(f64)), 4: np.exp2((b * f32(0.1)).astype(f64)),
                  5: np.log2((np.abs(a) + f32(1)).astype(f64))}
        for k, w in approx.items():
            np.testing.assert_allclose(got[k].astype(f64), w, rtol=2e-6, atol=2e-6, equal_nan=True,
                                       err_msg=f"builtin {k}")
        fract = np.where(np.isinf(a), np.nan, np.minimum(a - np.floor(a), np.nextafter(f32(1), f32(0))))
        mant, _ = np.frexp(a)
        _, ex = np.frexp(b)
        exact = {6: fract.astype(f32),
                 7: (np.where(np.isfinite(a), mant, a).astype(f32) + np.where(np.isfinite(b), ex, 0).astype(f32)),
                 8: np.fmax(np.fmin(a, b), np.fmin(np.fmax(a, b), f32(1.5))),
                 13: (np.isnan(a) + 2 * np.isinf(b) + 4 * np.isfinite(a) + 8 * np.signbit(b)).astype(f32)}
    for k, w in exact.items():
        np.testing.assert_array_equal(got[k], np.asarray(w, f32), err_msg=f"builtin {k}")
    bits = got.view(np.uint32).astype(np.int64)
    off = uy & 31
    np.testing.assert_array_equal(bits[9], (ux >> off) & 0x1FF)
    o2 = uy & 15
    field = (ux >> o2) & 0x1FFF
    np.testing.assert_array_equal(bits[10], np.where(field & 0x1000, field - 0x2000, field) & 0xFFFFFFFF)
    np.testing.assert_array_equal(bits[11], (((ux << 32) | uy) >> off) & 0xFFFFFFFF)
    byte = lambda v, k: (v >> (8 * k)) & 0xFF  # noqa: E731
    np.testing.assert_array_equal(bits[12], byte(uy, 1) | (((byte(ux, 1) >> 7) * 0xFF) << 8) | (byte(ux, 1) << 16))
    h = lambda v: np.stack([(v & 0xFFFF).astype(np.uint16), (v >> 16).astype(np.uint16)]).view(np.float16).astype(f64)  # noqa: E731
    with np.errstate(all="ignore"):
        dot2 = (h(ux)[0] * h(uy)[0] + h(ux)[1] * h(uy)[1] + 0.5).astype(f32)
    np.testing.assert_allclose(got[14], dot2, rtol=1e-6, equal_nan=True)
    sb = lambda v, k: byte(v, k) - 256 * (byte(v, k) >= 128)  # noqa: E731
    np.testing.assert_array_equal(got[15], (sum(sb(ux, k) * sb(uy, k) for k in range(4)) + 3).astype(f32))
    np.testing.assert_array_equal(got[16], (sum(byte(ux, k) * byte(uy, k) for k in range(4)) + 5).astype(f32))
    lane = np.arange(N) % 32
    np.testing.assert_array_equal(bits[17], [bin(int(v) & ((1 << l) - 1)).count("1") for v, l in zip(ux, lane)])


def test_conversions():
    rng = np.random.default_rng(11)
    a = rng.uniform(-1e6, 1e6, N)
    b = rng.uniform(-1e6, 1e6, N)
    a[:4] = [0.0, -0.5, 2.0 ** 40 + 0.5, -(2.0 ** 52)]
    got = launch("cvt_ops", a, b, 7, np.int64)
    f32 = np.float32
    w = np.empty((7, N), np.int64)
    w[0] = np.trunc(a).astype(np.int64)
    w[1] = np.trunc(np.abs(a)).astype(np.uint64).astype(np.int64)
    w[2] = np.trunc(b * 1e12).astype(np.int64).astype(np.float64).view(np.int64)
    w[3] = np.trunc(np.abs(b) * 1e12).astype(np.uint64).astype(np.float64).view(np.int64)
    ok4 = np.abs(a * 1e9) < 2.0 ** 63           # (long)(x * 1e9) is defined only in range
    lo = np.trunc(np.where(ok4, a * 1e9, 0)).astype(np.int64).astype(f32).view(np.int32).astype(np.int64)
    hi = np.trunc(np.abs(b * 1e9)).astype(np.uint64).astype(f32).view(np.int32).astype(np.int64)
    w[4] = lo + (hi << 32)
    w[5] = (np.fmin(a, b) + np.fmax(a, b) * 2.0).view(np.int64)
    w[6] = np.trunc(np.clip(a, -2.0 ** 31, 2.0 ** 31 - 1).astype(f32)).astype(np.int64).astype(np.int32).astype(np.int64) + \
        (np.trunc(np.abs(b).astype(f32)).astype(np.uint32).astype(np.int64) << 32)
    for k in range(7):
        sel = ok4 if k == 4 else (np.abs(a) < 2.0 ** 31) if k == 6 else np.ones(N, bool)   # (int) in range
        np.testing.assert_array_equal(got[k][sel], w[k][sel], err_msg=f"cvt {k}")


def test_half2_packed():
    rng = np.random.default_rng(12)
    a = rng.uniform(-20, 20, 2 * N).astype(np.float16).view(np.uint32)
    b = rng.uniform(-20, 20, 2 * N).astype(np.float16).view(np.uint32)
    got = launch("half2_ops", a, b, 6).view(np.float16).reshape(6, N, 2)
    x = a.view(np.float16).reshape(N, 2).astype(np.float64)
    y = b.view(np.float16).reshape(N, 2).astype(np.float64)
    c = np.array([1.0, -2.0])
    h = np.float16
    want = [x + y, x * y, x - y, x * y + c, np.fmin(x, y), np.fmax(x, y)]
    for k, wv in enumerate(want):
        np.testing.assert_array_equal(got[k].view(np.uint16), wv.astype(h).view(np.uint16), err_msg=f"half2 {k}")
