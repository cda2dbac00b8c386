"""Bit-exact numeric helpers for the emulator: type views of register bits, IEEE fused
multiply-add, f16/bf16 conversions, bit counting. All vectorised over numpy arrays."""
from __future__ import annotations

import numpy as np

U32, I32, F32, U64, I64, F64 = np.uint32, np.int32, np.float32, np.uint64, np.int64, np.float64
M32 = np.uint64(0xFFFFFFFF)


def to_type(bits: np.ndarray, t: str, hi: bool = False) -> np.ndarray:
    """Register bits (uint32, or uint64 for 64-bit types) -> numpy values of ISA type ``t``.
    16-bit types take the low half, or the high half when ``hi`` (op_sel)."""
    bits = np.asarray(bits)
    if t in ("u32", "b32"):
        return bits.astype(U32, copy=False)
    if t == "i32":
        return bits.astype(U32, copy=False).view(I32)
    if t == "f32":
        return bits.astype(U32, copy=False).view(F32)
    if t in ("u64", "b64"):
        return bits.astype(U64, copy=False)
    if t == "i64":
        return bits.astype(U64, copy=False).view(I64)
    if t == "f64":
        return bits.astype(U64, copy=False).view(F64)
    h = (bits.astype(U32, copy=False) >> U32(16)) if hi else bits.astype(U32, copy=False)
    h = (h & U32(0xFFFF)).astype(np.uint16)
    if t in ("u16", "b16"):
        return h
    if t == "i16":
        return h.view(np.int16)
    if t == "f16":
        return h.view(np.float16)
    if t == "bf16":
        return (h.astype(U32) << U32(16)).view(F32)
    if t == "u24":
        return bits.astype(U32, copy=False) & U32(0xFFFFFF)
    if t == "i24":
        return ((bits.astype(U32, copy=False) << U32(8)).view(I32) >> I32(8))
    raise ValueError(f"unknown operand type {t}")


def from_type(val, t: str) -> np.ndarray:
    """Numpy values of ISA type ``t`` -> register bits (uint32; uint64 for 64-bit types;
    16-bit types give the 16 bits in a uint32)."""
    val = np.asarray(val)
    if t in ("u32", "b32", "u24"):
        return val.astype(U32) if val.dtype != U32 else val
    if t in ("i32", "i24"):
        return val.astype(I32).view(U32)
    if t == "f32":
        return val.astype(F32).view(U32)
    if t in ("u64", "b64"):
        return val.astype(U64)
    if t == "i64":
        return val.astype(I64).view(U64)
    if t == "f64":
        return val.astype(F64).view(U64)
    if t in ("u16", "b16"):
        return val.astype(np.uint16).astype(U32)
    if t == "i16":
        return val.astype(np.int16).view(np.uint16).astype(U32)
    if t == "f16":
        return val.astype(np.float16).view(np.uint16).astype(U32)
    if t == "bf16":
        return f32_to_bf16(val.astype(F32)).astype(U32)
    raise ValueError(f"unknown result type {t}")


def f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even f32 -> bf16 bits (NaN stays quiet NaN)."""
    b = np.asarray(x, F32).view(U32)
    r = ((b + U32(0x7FFF) + ((b >> U32(16)) & U32(1))) >> U32(16)).astype(np.uint16)
    nan = np.isnan(np.asarray(x, F32))
    return np.where(nan, ((b >> U32(16)) | U32(0x40)).astype(np.uint16), r)


def _split(a: np.ndarray):
    c = a * F64(134217729.0)          # 2^27 + 1 (Dekker)
    hi = c - (c - a)
    return hi, a - hi


def fma64(a, b, c) -> np.ndarray:
    """a*b+c in f64 with one rounding for finite non-overflowing inputs (Dekker TwoProduct +
    TwoSum error-free transformations); IEEE special values follow from plain a*b+c."""
    a, b, c = (np.asarray(x, F64) for x in (a, b, c))
    with np.errstate(all="ignore"):
        p = a * b
        ah, al = _split(a)
        bh, bl = _split(b)
        pe = ((ah * bh - p) + ah * bl + al * bh) + al * bl   # p + pe == a*b exactly
        s = p + c
        bb = s - p
        se = (p - (s - bb)) + (c - bb)                        # s + se == p + c exactly
        r = s + (se + pe)
        plain = a * b + c
    ok = np.isfinite(r) & np.isfinite(p) & np.isfinite(pe) & (p != 0)
    return np.where(ok, r, plain)


def fma32(a, b, c) -> np.ndarray:
    """Single-rounding f32 fma: the f64 product is exact; the f64 sum is rounded once to f64 and
    then to f32 — exact unless that double rounding hits a tie, which fma64 on the f64 values
    followed by a round-to-odd step avoids."""
    a64, b64, c64 = (np.asarray(x, F32).astype(F64) for x in (a, b, c))
    with np.errstate(all="ignore"):
        p = a64 * b64                      # exact (48-bit product)
        s = p + c64
        bb = s - p
        err = (p - (s - bb)) + (c64 - bb)  # s + err == p + c exactly
        # round to odd: if inexact, force the last bit of s to 1 so the f32 rounding is single
        sb = s.view(U64)
        odd = (err != 0) & np.isfinite(s) & ((sb & U64(1)) == 0)
        adj = np.where(odd, np.where((err > 0) == (s > 0), sb + U64(1), sb - U64(1)), sb).view(F64)
        return adj.astype(F32)


def popcount32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, U32)
    x = x - ((x >> U32(1)) & U32(0x55555555))
    x = (x & U32(0x33333333)) + ((x >> U32(2)) & U32(0x33333333))
    x = (x + (x >> U32(4))) & U32(0x0F0F0F0F)
    return ((x * U32(0x01010101)) >> U32(24)).astype(U32)


def popcount64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, U64)
    return popcount32((x & M32).astype(U32)) + popcount32((x >> U64(32)).astype(U32))


def clz32(x: np.ndarray) -> np.ndarray:
    """Leading zeros; 0xFFFFFFFF (-1) for 0 as v_clz_i32_u32 / s_clz_i32_u32 return."""
    x = np.asarray(x, U32)
    n = np.zeros(x.shape, U32)
    y = x.copy()
    for s in (16, 8, 4, 2, 1):
        m = y < (U32(1) << U32(32 - s))
        n = np.where(m, n + U32(s), n)
        y = np.where(m, y << U32(s), y)
    return np.where(x == 0, U32(0xFFFFFFFF), n).astype(U32)


def ctz32(x: np.ndarray) -> np.ndarray:
    """Trailing zeros; 0xFFFFFFFF for 0."""
    x = np.asarray(x, U32)
    low = x & (~x + U32(1))
    return np.where(x == 0, U32(0xFFFFFFFF), U32(31) - clz32(low)).astype(U32)


def brev32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, U32)
    x = ((x >> U32(1)) & U32(0x55555555)) | ((x & U32(0x55555555)) << U32(1))
    x = ((x >> U32(2)) & U32(0x33333333)) | ((x & U32(0x33333333)) << U32(2))
    x = ((x >> U32(4)) & U32(0x0F0F0F0F)) | ((x & U32(0x0F0F0F0F)) << U32(4))
    x = ((x >> U32(8)) & U32(0x00FF00FF)) | ((x & U32(0x00FF00FF)) << U32(8))
    return ((x >> U32(16)) | (x << U32(16))).astype(U32)


def cvt_f2i(x: np.ndarray, dt) -> np.ndarray:
    """Float -> integer with the ISA's saturation: NaN -> 0, out of range clamps."""
    info = np.iinfo(dt)
    x = np.asarray(x, F64)
    with np.errstate(invalid="ignore"):
        t = np.trunc(x)
        t = np.where(np.isnan(t), 0, np.clip(t, info.min, info.max))
    return t.astype(dt)
