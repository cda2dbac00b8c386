"""Floating-point rounding: IEEE formats f16/bf16/f32/f64 with PTX's four rounding modes.

Fast paths use numpy's correctly rounded (nearest-even) arithmetic; where a result sits on a
rounding boundary and numpy alone cannot decide it, lanes fall back to exact rational arithmetic
(``fractions.Fraction``). bf16 is carried as raw uint16 bits (numpy has no bf16)."""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Sequence

import numpy as np

# (precision incl. implicit bit, minimum normal exponent, maximum exponent)
FORMATS = {"f64": (53, -1022, 1023), "f32": (24, -126, 127), "f16": (11, -14, 15), "bf16": (8, -126, 127)}
DTYPES = {"f64": np.dtype(np.float64), "f32": np.dtype(np.float32), "f16": np.dtype(np.float16),
          "bf16": np.dtype(np.uint16)}
MODES = ("rn", "rz", "rm", "rp")


# ---- bf16 -------------------------------------------------------------------------------------
def bf16_to_f32(bits) -> np.ndarray:
    """bf16 bits (uint16) -> float32, exactly."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16_bits(x, mode: str = "rn") -> np.ndarray:
    """float32 -> bf16 bits with the given rounding; NaN stays (quiet) NaN."""
    u = np.asarray(x, np.float32).view(np.uint32)
    nan = np.isnan(np.asarray(x, np.float32))
    hi = u >> np.uint32(16)
    if mode == "rn":
        r = (u + np.uint32(0x7FFF) + (hi & np.uint32(1))) >> np.uint32(16)
    else:
        inexact = (u & np.uint32(0xFFFF)) != 0
        neg = (u >> np.uint32(31)) != 0
        if mode == "rz":
            up = np.zeros_like(inexact)
        elif mode == "rm":
            up = inexact & neg
        else:
            up = inexact & ~neg
        r = hi + up.astype(np.uint32)
    r = np.where(nan, hi | np.uint32(0x40), r)
    return r.astype(np.uint16)


# ---- rounding of float64 values to a narrower format ------------------------------------------
def _to_fmt_rn(x64: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "f64":
        return x64
    if fmt == "bf16":
        return f32_to_bf16_bits(round_to_odd_f32(x64), "rn")
    return x64.astype(DTYPES[fmt])


def to_f64(v, fmt: str) -> np.ndarray:
    """Values of ``fmt`` (bf16 as bits) -> float64, exactly."""
    if fmt == "bf16":
        return bf16_to_f32(v).astype(np.float64)
    return np.asarray(v).astype(np.float64)


def round_to_odd_f32(x64: np.ndarray) -> np.ndarray:
    """float64 -> float32 rounding to odd: exact for a later rounding to <= 22 bits (bf16, f16)."""
    x64 = np.asarray(x64, np.float64)
    r = round_f64(x64, "f32", "rz")
    inexact = (r.astype(np.float64) != x64) & np.isfinite(x64)
    return np.where(inexact, (r.view(np.uint32) | np.uint32(1)).view(np.float32), r)


def round_f64(x64, fmt: str, mode: str) -> np.ndarray:
    """Round float64 values (taken as exact) to ``fmt`` with ``mode`` (bf16 -> uint16 bits)."""
    x64 = np.asarray(x64, np.float64)
    if fmt == "f64":
        return x64.copy()
    if fmt == "bf16":
        return f32_to_bf16_bits(round_to_odd_f32(x64), mode)
    r = x64.astype(DTYPES[fmt])
    if mode == "rn":
        return r
    back = r.astype(np.float64)
    if mode == "rm":
        fix = back > x64
        tow = -np.inf
    elif mode == "rp":
        fix = back < x64
        tow = np.inf
    else:
        fix = np.abs(back) > np.abs(x64)
        tow = 0.0
    if np.any(fix):
        r = np.where(fix, np.nextafter(r, DTYPES[fmt].type(tow)), r)
    return r


# ---- exact fallback ---------------------------------------------------------------------------
def round_fraction(q: Fraction, fmt: str, mode: str, zero_sign: float = 1.0) -> float:
    """Round an exact rational to ``fmt`` with ``mode``; returns a Python float of that value."""
    p, emin, emax = FORMATS[fmt]
    if q == 0:
        return math.copysign(0.0, zero_sign)
    neg = q < 0
    a = -q if neg else q
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    e = max(e, emin)
    qe = e - (p - 1)
    scaled = a / (Fraction(2) ** qe)
    n = scaled.numerator // scaled.denominator
    rem = scaled - n
    if rem:
        if mode == "rn":
            if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n & 1):
                n += 1
        elif (mode == "rp" and not neg) or (mode == "rm" and neg):
            n += 1
    maxval = (2 ** p - 1) * Fraction(2) ** (emax - p + 1)
    val = n * Fraction(2) ** qe
    if val > maxval:
        if mode == "rn" or (mode == "rp" and not neg) or (mode == "rm" and neg):
            return -math.inf if neg else math.inf
        val = maxval
    f = math.ldexp(n, qe) if val != maxval else float(maxval)
    return -f if neg else f


def finish(hi: np.ndarray, exact: np.ndarray | None, fmt: str, mode: str,
           exact_value: Callable[[np.ndarray], Sequence[Fraction]]) -> np.ndarray:
    """Round the exact results of an operation to ``fmt``.

    ``hi`` is the float64 nearest to each exact result (NaN/inf where the IEEE result is
    special); ``exact`` marks lanes where hi *is* the exact result (None: unknown). Lanes where
    every value within one float64 ulp of hi rounds the same way take that result; the rest get
    ``exact_value(lanes)`` rounded exactly."""
    hi = np.asarray(hi, np.float64)
    mid = round_f64(hi, fmt, mode)
    if fmt == "f64" and mode == "rn" and exact is not None and exact.all():
        return mid
    finite = np.isfinite(hi)
    lo = round_f64(np.nextafter(hi, -np.inf), fmt, mode)
    up = round_f64(np.nextafter(hi, np.inf), fmt, mode)
    ub = DTYPES[fmt].itemsize
    same = (lo.view(f"u{ub}") == up.view(f"u{ub}")) & (lo.view(f"u{ub}") == mid.view(f"u{ub}")) if fmt != "f64" else np.zeros(hi.shape, bool)
    certain = same | ~finite
    if exact is not None:
        certain |= exact
    if certain.all():
        return mid
    out = mid.copy()
    lanes = np.flatnonzero(~certain)
    vals = exact_value(lanes)
    signs = np.copysign(1.0, hi[lanes])
    for k, (lane, q) in enumerate(zip(lanes, vals)):
        f = round_fraction(q, fmt, mode, signs[k] if mode != "rm" else -1.0)
        out[lane] = _to_fmt_rn(np.array([f]), fmt)[0]
    return out


# ---- error-free transformations (float64) -----------------------------------------------------
def two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s + e == a + b exactly (finite, non-overflowing inputs)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


_SPLIT = 134217729.0   # 2**27 + 1


def two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p + e == a * b exactly (Dekker), valid while |a|,|b| < 2**995 and the product is normal."""
    p = a * b
    ca = _SPLIT * a
    ah = ca - (ca - a)
    al = a - ah
    cb = _SPLIT * b
    bh = cb - (cb - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def frac(x: float) -> Fraction:
    return Fraction(float(x))


def ftz(x: np.ndarray) -> np.ndarray:
    """Flush subnormal f32/f64/f16 values to sign-preserving zero (.ftz)."""
    x = np.asarray(x)
    tiny = np.finfo(x.dtype).tiny
    sub = (np.abs(x) < tiny) & (x != 0)
    if np.any(sub):
        return np.where(sub, np.copysign(x.dtype.type(0), x), x)
    return x
