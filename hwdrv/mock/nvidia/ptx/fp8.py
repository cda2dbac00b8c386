"""FP8 formats of sm_89+/sm_90 (e4m3 and e5m2, OCP 8-bit floating point): encode with round to
nearest even, decode exactly. Pure numpy; used by cvt."""
from __future__ import annotations

import numpy as np

# format -> (exponent bits, mantissa bits, bias, largest finite value, has infinities)
FORMATS = {"e4m3": (4, 3, 7, 448.0, False), "e5m2": (5, 2, 15, 57344.0, True)}
NAN = 0x7F


def encode(x, fmt: str, satfinite: bool) -> np.ndarray:
    """float64 values -> fp8 bits (uint8), rounded to nearest even. ``satfinite``: results
    beyond the largest finite value (infinities included) become that value; NaN stays NaN."""
    ebits, mbits, bias, maxf, has_inf = FORMATS[fmt]
    x = np.asarray(x, np.float64)
    sign = np.signbit(x).astype(np.uint8) << 7
    a = np.abs(x)
    nan = np.isnan(x)
    emin = 1 - bias
    with np.errstate(all="ignore"):
        _, ex = np.frexp(np.where(np.isfinite(a) & (a > 0), a, 1.0))
        e = np.maximum(ex - 1, emin)
        step = np.ldexp(1.0, e - mbits)
        v = np.rint(a / step) * step                       # np.rint: ties to even
    over = ~nan & (v > maxf)
    v = np.where(over, maxf, v)
    _, ev = np.frexp(np.where(v > 0, v, 1.0))
    ev = ev - 1
    sub = ev < emin
    field = np.where(v == 0, 0, np.where(sub, 0, ev + bias))
    man = np.where(v == 0, 0, np.where(sub, v / np.ldexp(1.0, emin - mbits), v / np.ldexp(1.0, ev - mbits) - (1 << mbits)))
    man = np.where(nan, 0, man)
    bits = sign | (np.where(nan, 0, field).astype(np.uint8) << mbits) | np.rint(man).astype(np.uint8)
    if not satfinite:
        bits = np.where(over, sign | (np.uint8(((1 << ebits) - 1) << mbits) if has_inf else np.uint8(NAN)), bits)
    return np.where(nan, np.uint8(NAN), bits).astype(np.uint8)


def decode(bits, fmt: str) -> np.ndarray:
    """fp8 bits -> float64 (exact)."""
    ebits, mbits, bias, _, has_inf = FORMATS[fmt]
    b = np.asarray(bits, np.uint8).astype(np.int64)
    field = (b >> mbits) & ((1 << ebits) - 1)
    man = b & ((1 << mbits) - 1)
    mag = np.where(field == 0, np.ldexp(man.astype(np.float64), 1 - bias - mbits),
                   np.ldexp((man + (1 << mbits)).astype(np.float64), field - bias - mbits))
    top = field == (1 << ebits) - 1
    if has_inf:
        mag = np.where(top, np.where(man == 0, np.inf, np.nan), mag)
    else:
        mag = np.where(top & (man == (1 << mbits) - 1), np.nan, mag)
    return np.where(b & 0x80, -mag, mag)
