"""Semantics of vector ALU instructions: name -> numpy function over typed operand arrays.

Operand and result types come from :func:`optypes.valu_types`; each function receives the sources
already converted (f32 as float32, u64 as uint64, f16 as float16, ...) and returns the result in
the result type. Float math is IEEE with denormals preserved (numpy float32/float64 arithmetic);
f16 results are computed in f64 and rounded once. Integer ops wrap modulo 2^n.
"""
from __future__ import annotations

import functools

import numpy as np

from .numeric import (F32, F64, I32, I64, U32, U64, brev32, clz32, ctz32, cvt_f2i, fma32, fma64,
                      popcount32)

TWO_PI = 2 * np.pi


def _f16(fn):
    """Wrap an f64 computation so an f16 op rounds once to f16 (keeps fn's signature)."""
    @functools.wraps(fn)
    def run(*a):
        return np.asarray(fn(*[np.asarray(x, F64) for x in a]), F64).astype(np.float16)
    return run


def _minnum(a, b):
    return np.fmin(a, b)


def _maxnum(a, b):
    return np.fmax(a, b)


def _med3(a, b, c):
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def _med3f(a, b, c):
    return np.fmax(np.fmin(a, b), np.fmin(np.fmax(a, b), c))


def _ldexp(a, e):
    with np.errstate(all="ignore"):
        return np.ldexp(a, np.clip(np.asarray(e).astype(np.int64), -2000, 2000).astype(np.int32)).astype(a.dtype)


def _frexp_mant(a):
    m, _ = np.frexp(a)
    return np.where(np.isfinite(a), m, a).astype(a.dtype)


def _frexp_exp(a):
    _, e = np.frexp(a)
    return np.where(np.isfinite(a), e, 0).astype(I32)


def _fract(a):
    with np.errstate(all="ignore"):
        r = a - np.floor(a)
        # result is < 1.0 (the largest value below 1 for tiny negative inputs)
        lim = np.nextafter(a.dtype.type(1), a.dtype.type(0))
        return np.where(np.isinf(a), np.asarray(np.nan, a.dtype), np.minimum(r, lim)).astype(a.dtype)


def _rcp(a):
    with np.errstate(all="ignore"):
        return (a.dtype.type(1) / a).astype(a.dtype)


def _rsq(a):
    with np.errstate(all="ignore"):
        return (a.dtype.type(1) / np.sqrt(a)).astype(a.dtype)


def _sqrt(a):
    with np.errstate(all="ignore"):
        return np.sqrt(a)


def _exp2(a):
    with np.errstate(all="ignore"):
        return np.exp2(a)


def _log2(a):
    with np.errstate(all="ignore"):
        return np.log2(a)


def _sin(a):
    with np.errstate(all="ignore"):
        return np.sin(a.astype(F64) * TWO_PI).astype(a.dtype)


def _cos(a):
    with np.errstate(all="ignore"):
        return np.cos(a.astype(F64) * TWO_PI).astype(a.dtype)


_EXP = {np.dtype(np.float16): (np.uint16, 10, 0x1F), np.dtype(np.float32): (U32, 23, 0xFF),
        np.dtype(np.float64): (U64, 52, 0x7FF)}


def exponent(x: np.ndarray) -> np.ndarray:
    """Biased exponent field of IEEE values (the ISA pseudocode's exponent())."""
    ut, mb, em = _EXP[x.dtype]
    return ((x.view(ut) >> ut(mb)) & ut(em)).astype(np.int64)


def _is_denorm(x: np.ndarray) -> np.ndarray:
    return (x != 0) & (np.abs(x) < np.finfo(x.dtype).tiny)


def div_scale(s0, s1, s2):
    """V_DIV_SCALE_F32/F64 (ISA pseudocode): (scaled S0, VCC) for numerator S2 / denominator S1."""
    s0, s1, s2 = np.broadcast_arrays(*(np.asarray(x) for x in (s0, s1, s2)))
    ft = s0.dtype
    big, sc, tiny = (768, 128, 53) if ft == F64 else (96, 64, 23)
    e1, e2 = exponent(s1), exponent(s2)
    with np.errstate(all="ignore"):
        up, down = np.ldexp(s0, sc).astype(ft), np.ldexp(s0, -sc).astype(ft)
        inv_den = _is_denorm((1.0 / s1.astype(F64)).astype(F64))
        q_den = _is_denorm((s2 / s1).astype(ft))
    d, vcc = s0.copy(), np.zeros(s0.shape, bool)
    rest = np.ones(s0.shape, bool)
    cases = [((s2 == 0) | (s1 == 0), np.asarray(np.nan, ft), False),
             (e2 - e1 >= big, np.where(s0 == s1, up, s0), True),
             (_is_denorm(s1), up, False),
             (inv_den & q_den, np.where(s0 == s1, up, s0), True),
             (inv_den, down, False),
             (q_den, np.where(s0 == s2, up, s0), True),
             (e2 <= tiny, up, False)]
    for cond, val, sets_vcc in cases:
        c = rest & cond
        d = np.where(c, val, d)
        if sets_vcc:
            vcc |= c
        rest &= ~cond
    return d.astype(ft), vcc


def div_fmas(a, b, c, vcc):
    """V_DIV_FMAS: fma(a, b, c), post-scaled where VCC is set: by 2^64 (f32) / 2^128 (f64) when
    exponent(c) is above the bias, else by the inverse (tinygrad's hardware-checked correction of
    the ISA guide's 2^32 / 2^64)."""
    a, b, c = np.broadcast_arrays(*(np.asarray(x) for x in (a, b, c)))
    ft = a.dtype
    sc, bias = (128, 1023) if ft == F64 else (64, 127)
    k = np.where(vcc, np.where(exponent(c) > bias, sc, -sc), 0)
    with np.errstate(all="ignore"):
        if ft == F64:
            return np.ldexp(fma64(a, b, c), k)
        # exact product, round-to-odd sum in f64, exact scaling, one rounding to f32
        a64, b64, c64 = a.astype(F64), b.astype(F64), c.astype(F64)
        p = a64 * b64
        s = p + c64
        bb = s - p
        err = (p - (s - bb)) + (c64 - bb)
        sb = s.view(U64)
        odd = (err != 0) & np.isfinite(s) & ((sb & U64(1)) == 0)
        s = np.where(odd, np.where((err > 0) == (s > 0), sb + U64(1), sb - U64(1)), sb).view(F64)
        return np.ldexp(s, k).astype(F32)


def _div_fixup(q, d, n):
    """V_DIV_FIXUP (ISA pseudocode; OVERFLOW = inf, UNDERFLOW = 0, NaN quotient -> inf)."""
    q, d, n = np.broadcast_arrays(*(np.asarray(x) for x in (q, d, n)))
    ft = q.dtype
    lim = {np.dtype(np.float16): -25, np.dtype(np.float32): -150, np.dtype(np.float64): -1075}[ft]
    emax = {np.dtype(np.float16): 0x1F, np.dtype(np.float32): 0xFF, np.dtype(np.float64): 0x7FF}[ft]
    sign = np.signbit(n) ^ np.signbit(d)
    inf = np.where(sign, -np.inf, np.inf).astype(ft)
    zero = np.where(sign, -0.0, 0.0).astype(ft)
    neg_nan = -np.asarray(np.nan, ft)
    with np.errstate(all="ignore"):
        r = np.where(np.isnan(q), inf, np.where(sign, -np.abs(q), np.abs(q)))
        r = np.where(exponent(d) == emax, inf, r)
        r = np.where(exponent(n) - exponent(d) < lim, zero, r)
        r = np.where(np.isinf(d) | (n == 0), zero, r)
        r = np.where((d == 0) | np.isinf(n), inf, r)
        r = np.where(np.isinf(d) & np.isinf(n), neg_nan, r)
        r = np.where((d == 0) & (n == 0), neg_nan, r)
        r = np.where(np.isnan(d), d + ft.type(0), r)        # quiet NaN of S1
        r = np.where(np.isnan(n), n + ft.type(0), r)        # quiet NaN of S2 (checked first)
    return r.astype(ft)


def _mul_hi_u32(a, b):
    return ((a.astype(U64) * b.astype(U64)) >> U64(32)).astype(U32)


def _mul_hi_i32(a, b):
    return ((a.astype(I64) * b.astype(I64)) >> I64(32)).astype(I32)


def _bfe_u32(a, off, w):
    off, w = off & U32(31), w & U32(31)
    return np.where(w == 0, U32(0), (a >> off) & ((U32(1) << w) - U32(1))).astype(U32)


def _bfe_i32(a, off, w):
    off, w = (off & U32(31)).astype(I32), (w & U32(31)).astype(I32)
    sh = (I32(32) - off - w).clip(0, 31)
    v = (a << sh) >> (sh + off).clip(0, 31)
    return np.where(w == 0, I32(0), v).astype(I32)


def _alignbit(a, b, c):
    v = (a.astype(U64) << U64(32)) | b.astype(U64)
    return ((v >> (c & U32(31)).astype(U64)) & U64(0xFFFFFFFF)).astype(U32)


def _alignbyte(a, b, c):
    v = (a.astype(U64) << U64(32)) | b.astype(U64)
    return ((v >> ((c & U32(3)).astype(U64) * U64(8))) & U64(0xFFFFFFFF)).astype(U32)


def _perm(a, b, sel):
    """v_perm_b32: each selector byte picks a byte of {a,b} (b = bytes 0-3, a = 4-7) or a constant."""
    src = (a.astype(U64) << U64(32)) | b.astype(U64)
    out = np.zeros(np.broadcast(a, b, sel).shape, U32)
    for k in range(4):
        s = (sel >> U32(8 * k)) & U32(0xFF)
        byte = ((src >> (np.minimum(s, U32(7)).astype(U64) * U64(8))) & U64(0xFF)).astype(U32)
        sign_of = lambda i: np.where(((src >> U64(8 * i + 7)) & U64(1)).astype(bool), U32(0xFF), U32(0))  # noqa: E731
        v = np.where(s < 8, byte,
            np.where(s == 8, sign_of(1), np.where(s == 9, sign_of(3), np.where(s == 10, sign_of(5),
            np.where(s == 11, sign_of(7), np.where(s == 12, U32(0), U32(0xFF)))))))
        out |= (v.astype(U32) << U32(8 * k))
    return out


def _cvt_pk_rtz(a, b):
    def rtz(x):
        x = np.asarray(x, F32)
        h = x.astype(np.float16)
        # round toward zero: step back one ulp where rounding went away from zero
        with np.errstate(all="ignore"):
            away = np.isfinite(x) & (np.abs(h.astype(F32)) > np.abs(x))
        hb = h.view(np.uint16)
        hb = np.where(away, hb - np.uint16(1), hb).astype(np.uint16)
        return hb.astype(U32)
    return rtz(a) | (rtz(b) << U32(16))


def _pack16(a, b):
    return (np.asarray(a).view(np.uint16).astype(U32)) | (np.asarray(b).view(np.uint16).astype(U32) << U32(16))


def _halves(x, t):
    x = np.asarray(x, U32)
    lo, hi = (x & U32(0xFFFF)).astype(np.uint16), (x >> U32(16)).astype(np.uint16)
    if t == "f16":
        return lo.view(np.float16), hi.view(np.float16)
    if t == "bf16":
        return (lo.astype(U32) << U32(16)).view(F32), (hi.astype(U32) << U32(16)).view(F32)
    if t == "i16":
        return lo.view(np.int16), hi.view(np.int16)
    return lo, hi


def _dot2_f32_f16(a, b, c):
    a0, a1 = _halves(a, "f16")
    b0, b1 = _halves(b, "f16")
    with np.errstate(all="ignore"):
        r = a0.astype(F64) * b0.astype(F64) + a1.astype(F64) * b1.astype(F64) + c.astype(F64)
    return r.astype(F32)


def _dot2_f32_bf16(a, b, c):
    a0, a1 = _halves(a, "bf16")
    b0, b1 = _halves(b, "bf16")
    with np.errstate(all="ignore"):
        r = a0.astype(F64) * b0.astype(F64) + a1.astype(F64) * b1.astype(F64) + c.astype(F64)
    return r.astype(F32)


def _dot4(a, b, c, signed):
    acc = c.astype(np.int64)
    for k in range(4):
        x = (a >> U32(8 * k)) & U32(0xFF)
        y = (b >> U32(8 * k)) & U32(0xFF)
        if signed:
            x = x.astype(np.int64) - ((x & U32(0x80)) != 0) * 256
            y = y.astype(np.int64) - ((y & U32(0x80)) != 0) * 256
        acc = acc + x.astype(np.int64) * y.astype(np.int64)
    return acc.astype(I32 if signed else U32)


def _dot8(a, b, c, signed):
    acc = c.astype(np.int64)
    for k in range(8):
        x = ((a >> U32(4 * k)) & U32(0xF)).astype(np.int64)
        y = ((b >> U32(4 * k)) & U32(0xF)).astype(np.int64)
        if signed:
            x = x - (x >= 8) * 16
            y = y - (y >= 8) * 16
        acc = acc + x * y
    return acc.astype(I32 if signed else U32)


def dot_iu(name: str, a_signed: bool, b_signed: bool):
    """v_dot4_i32_iu8 / v_dot8_i32_iu4 with per-operand signedness (NEG bits)."""
    bits, k = (8, 4) if name.endswith("iu8") else (4, 8)
    mask, half = (1 << bits) - 1, 1 << (bits - 1)

    def el(v, j, sgn):
        x = ((np.asarray(v, U32) >> U32(bits * j)) & U32(mask)).astype(np.int64)
        return x - (x >= half) * (1 << bits) if sgn else x

    def fn(a, b, c):
        acc = np.asarray(c).astype(np.int64)
        for j in range(k):
            acc = acc + el(a, j, a_signed) * el(b, j, b_signed)
        return acc.astype(I32)
    return fn


def _cls(a):
    a = np.asarray(a, I32)
    v = np.where(a < 0, ~a, a).view(U32)
    r = clz32(v)
    return np.where((a == 0) | (a == -1), U32(0xFFFFFFFF), r - U32(1)).view(I32)


def _fcmp_family():
    """Float compare predicates of the VOPC family (ISA names): name -> fn(a, b) -> bool."""
    return {
        "f": lambda a, b: np.zeros(np.broadcast(a, b).shape, bool),
        "lt": lambda a, b: a < b, "eq": lambda a, b: a == b, "le": lambda a, b: a <= b,
        "gt": lambda a, b: a > b, "lg": lambda a, b: (a < b) | (a > b), "ge": lambda a, b: a >= b,
        "o": lambda a, b: ~(np.isnan(a) | np.isnan(b)), "u": lambda a, b: np.isnan(a) | np.isnan(b),
        "nge": lambda a, b: ~(a >= b), "nlg": lambda a, b: ~((a < b) | (a > b)), "ngt": lambda a, b: ~(a > b),
        "nle": lambda a, b: ~(a <= b), "neq": lambda a, b: ~(a == b), "nlt": lambda a, b: ~(a < b),
        "t": lambda a, b: np.ones(np.broadcast(a, b).shape, bool),
    }


def _icmp_family():
    return {
        "f": lambda a, b: np.zeros(np.broadcast(a, b).shape, bool),
        "lt": lambda a, b: a < b, "eq": lambda a, b: a == b, "le": lambda a, b: a <= b,
        "gt": lambda a, b: a > b, "ne": lambda a, b: a != b, "ge": lambda a, b: a >= b,
        "t": lambda a, b: np.ones(np.broadcast(a, b).shape, bool),
    }


FCMP = _fcmp_family()
ICMP = _icmp_family()


def cmp_class(a, mask):
    """v_cmp_class: bit tests of the IEEE class of a (0 sNaN, 1 qNaN, 2 -inf, 3 -normal,
    4 -denormal, 5 -0, 6 +0, 7 +denormal, 8 +normal, 9 +inf)."""
    a = np.asarray(a)
    fi = np.finfo(a.dtype)
    bits = a.view({2: np.uint16, 4: U32, 8: U64}[a.dtype.itemsize])
    quiet_bit = {2: 1 << 9, 4: 1 << 22, 8: 1 << 51}[a.dtype.itemsize]
    isnan = np.isnan(a)
    quiet = (bits & bits.dtype.type(quiet_bit)) != 0
    neg = np.signbit(a)
    ab = np.abs(a)
    isinf = np.isinf(a)
    zero = a == 0
    den = (ab < fi.tiny) & ~zero & ~isnan
    norm = ~isnan & ~isinf & ~zero & ~den
    cls = [isnan & ~quiet, isnan & quiet, isinf & neg, norm & neg, den & neg, zero & neg, zero & ~neg,
           den & ~neg, norm & ~neg, isinf & ~neg]
    m = np.asarray(mask, U32)
    r = np.zeros(np.broadcast(a, m).shape, bool)
    for k, c in enumerate(cls):
        r |= c & (((m >> U32(k)) & U32(1)) != 0)
    return r


# name -> fn(*typed sources) -> typed result
OPS: dict = {
    # --- f32 -------------------------------------------------------------------------------------
    "v_add_f32": lambda a, b: a + b, "v_sub_f32": lambda a, b: a - b, "v_subrev_f32": lambda a, b: b - a,
    "v_mul_f32": lambda a, b: a * b, "v_min_f32": _minnum, "v_max_f32": _maxnum,
    "v_fma_f32": fma32, "v_fmac_f32": fma32, "v_fmamk_f32": None, "v_fmaak_f32": None,
    "v_ldexp_f32": _ldexp, "v_min3_f32": lambda a, b, c: np.fmin(np.fmin(a, b), c),
    "v_max3_f32": lambda a, b, c: np.fmax(np.fmax(a, b), c), "v_med3_f32": _med3f,
    "v_minmax_f32": lambda a, b, c: np.fmax(np.fmin(a, b), c), "v_maxmin_f32": lambda a, b, c: np.fmin(np.fmax(a, b), c),
    "v_mul_dx9_zero_f32": lambda a, b: np.where((a == 0) | (b == 0), F32(0), a * b).astype(F32),
    "v_rcp_f32": _rcp, "v_rcp_iflag_f32": _rcp, "v_rsq_f32": _rsq, "v_sqrt_f32": _sqrt, "v_exp_f32": _exp2,
    "v_log_f32": _log2, "v_sin_f32": _sin, "v_cos_f32": _cos, "v_floor_f32": np.floor, "v_ceil_f32": np.ceil,
    "v_trunc_f32": np.trunc, "v_rndne_f32": np.rint, "v_fract_f32": _fract, "v_frexp_mant_f32": _frexp_mant,
    "v_frexp_exp_i32_f32": _frexp_exp, "v_div_fixup_f32": _div_fixup,
    # --- f64 -------------------------------------------------------------------------------------
    "v_add_f64": lambda a, b: a + b, "v_mul_f64": lambda a, b: a * b, "v_min_f64": _minnum, "v_max_f64": _maxnum,
    "v_fma_f64": fma64, "v_ldexp_f64": _ldexp, "v_rcp_f64": _rcp, "v_rsq_f64": _rsq, "v_sqrt_f64": _sqrt,
    "v_floor_f64": np.floor, "v_ceil_f64": np.ceil, "v_trunc_f64": np.trunc, "v_rndne_f64": np.rint,
    "v_fract_f64": _fract, "v_frexp_mant_f64": _frexp_mant, "v_frexp_exp_i32_f64": _frexp_exp,
    "v_div_fixup_f64": _div_fixup,
    # --- f16 -------------------------------------------------------------------------------------
    "v_add_f16": _f16(lambda a, b: a + b), "v_sub_f16": _f16(lambda a, b: a - b),
    "v_subrev_f16": _f16(lambda a, b: b - a), "v_mul_f16": _f16(lambda a, b: a * b),
    "v_fma_f16": _f16(lambda a, b, c: a * b + c), "v_fmac_f16": _f16(lambda a, b, c: a * b + c),
    "v_min_f16": lambda a, b: np.fmin(a, b), "v_max_f16": lambda a, b: np.fmax(a, b),
    "v_ldexp_f16": lambda a, e: _ldexp(a.astype(F64), e).astype(np.float16),
    "v_sqrt_f16": _f16(_sqrt), "v_rcp_f16": _f16(_rcp), "v_rsq_f16": _f16(_rsq), "v_exp_f16": _f16(_exp2),
    "v_log_f16": _f16(_log2), "v_sin_f16": _f16(_sin), "v_cos_f16": _f16(_cos),
    "v_floor_f16": np.floor, "v_ceil_f16": np.ceil, "v_trunc_f16": np.trunc, "v_rndne_f16": np.rint,
    "v_fract_f16": _fract, "v_min3_f16": lambda a, b, c: np.fmin(np.fmin(a, b), c),
    "v_max3_f16": lambda a, b, c: np.fmax(np.fmax(a, b), c), "v_med3_f16": _med3f,
    "v_div_fixup_f16": _div_fixup,
    # --- conversions -----------------------------------------------------------------------------
    "v_cvt_f32_i32": lambda a: a.astype(F32), "v_cvt_f32_u32": lambda a: a.astype(F32),
    "v_cvt_i32_f32": lambda a: cvt_f2i(a, np.int32), "v_cvt_u32_f32": lambda a: cvt_f2i(a, np.uint32),
    "v_cvt_f16_f32": lambda a: a.astype(np.float16), "v_cvt_f32_f16": lambda a: a.astype(F32),
    "v_cvt_f64_f32": lambda a: a.astype(F64), "v_cvt_f32_f64": lambda a: a.astype(F32),
    "v_cvt_i32_f64": lambda a: cvt_f2i(a, np.int32), "v_cvt_u32_f64": lambda a: cvt_f2i(a, np.uint32),
    "v_cvt_f64_i32": lambda a: a.astype(F64), "v_cvt_f64_u32": lambda a: a.astype(F64),
    "v_cvt_f16_i16": lambda a: a.astype(np.float16), "v_cvt_f16_u16": lambda a: a.astype(np.float16),
    "v_cvt_i16_f16": lambda a: cvt_f2i(a, np.int16), "v_cvt_u16_f16": lambda a: cvt_f2i(a, np.uint16),
    "v_cvt_i32_i16": lambda a: a.astype(I32), "v_cvt_u32_u16": lambda a: a.astype(U32),
    "v_cvt_floor_i32_f32": lambda a: cvt_f2i(np.floor(a), np.int32),
    "v_cvt_nearest_i32_f32": lambda a: cvt_f2i(np.floor(a.astype(F64) + 0.5), np.int32),
    "v_cvt_f32_ubyte0": lambda a: (a & U32(0xFF)).astype(F32),
    "v_cvt_f32_ubyte1": lambda a: ((a >> U32(8)) & U32(0xFF)).astype(F32),
    "v_cvt_f32_ubyte2": lambda a: ((a >> U32(16)) & U32(0xFF)).astype(F32),
    "v_cvt_f32_ubyte3": lambda a: (a >> U32(24)).astype(F32),
    "v_cvt_pk_rtz_f16_f32": _cvt_pk_rtz,
    "v_pack_b32_f16": _pack16,
    "v_cvt_pk_i16_i32": lambda a, b: (np.clip(a, -32768, 32767).astype(np.int16).view(np.uint16).astype(U32)
                                      | (np.clip(b, -32768, 32767).astype(np.int16).view(np.uint16).astype(U32) << U32(16))),
    "v_cvt_pk_u16_u32": lambda a, b: np.minimum(a, U32(0xFFFF)) | (np.minimum(b, U32(0xFFFF)) << U32(16)),
    # --- 32-bit integer --------------------------------------------------------------------------
    "v_add_nc_u32": lambda a, b: a + b, "v_sub_nc_u32": lambda a, b: a - b, "v_subrev_nc_u32": lambda a, b: b - a,
    "v_add_nc_i32": lambda a, b: a + b, "v_sub_nc_i32": lambda a, b: a - b,
    "v_mul_lo_u32": lambda a, b: a * b, "v_mul_hi_u32": _mul_hi_u32, "v_mul_hi_i32": _mul_hi_i32,
    "v_mul_u32_u24": lambda a, b: a * b, "v_mul_i32_i24": lambda a, b: a * b,
    "v_mul_hi_u32_u24": lambda a, b: ((a.astype(U64) * b.astype(U64)) >> U64(32)).astype(U32),
    "v_mul_hi_i32_i24": lambda a, b: ((a.astype(I64) * b.astype(I64)) >> I64(32)).astype(I32),
    "v_mad_u32_u24": lambda a, b, c: a * b + c, "v_mad_i32_i24": lambda a, b, c: a * b + c,
    "v_mad_u32_u16": lambda a, b, c: a.astype(U32) * b.astype(U32) + c,
    "v_mad_i32_i16": lambda a, b, c: a.astype(I32) * b.astype(I32) + c,
    "v_min_i32": np.minimum, "v_max_i32": np.maximum, "v_min_u32": np.minimum, "v_max_u32": np.maximum,
    "v_min3_i32": lambda a, b, c: np.minimum(np.minimum(a, b), c), "v_min3_u32": lambda a, b, c: np.minimum(np.minimum(a, b), c),
    "v_max3_i32": lambda a, b, c: np.maximum(np.maximum(a, b), c), "v_max3_u32": lambda a, b, c: np.maximum(np.maximum(a, b), c),
    "v_med3_i32": _med3, "v_med3_u32": _med3,
    "v_minmax_i32": lambda a, b, c: np.maximum(np.minimum(a, b), c), "v_maxmin_i32": lambda a, b, c: np.minimum(np.maximum(a, b), c),
    "v_minmax_u32": lambda a, b, c: np.maximum(np.minimum(a, b), c), "v_maxmin_u32": lambda a, b, c: np.minimum(np.maximum(a, b), c),
    "v_and_b32": lambda a, b: a & b, "v_or_b32": lambda a, b: a | b, "v_xor_b32": lambda a, b: a ^ b,
    "v_xnor_b32": lambda a, b: ~(a ^ b), "v_not_b32": lambda a: ~a, "v_mov_b32": lambda a: a,
    "v_lshlrev_b32": lambda s, a: a << (s & U32(31)), "v_lshrrev_b32": lambda s, a: a >> (s & U32(31)),
    "v_ashrrev_i32": lambda s, a: a >> (s & U32(31)).astype(I32),
    "v_lshl_add_u32": lambda a, s, c: (a << (s & U32(31))) + c, "v_add_lshl_u32": lambda a, b, s: (a + b) << (s & U32(31)),
    "v_lshl_or_b32": lambda a, s, c: (a << (s & U32(31))) | c, "v_and_or_b32": lambda a, b, c: (a & b) | c,
    "v_or3_b32": lambda a, b, c: a | b | c, "v_xor3_b32": lambda a, b, c: a ^ b ^ c,
    "v_add3_u32": lambda a, b, c: a + b + c, "v_xad_u32": lambda a, b, c: (a ^ b) + c,
    "v_bfe_u32": _bfe_u32, "v_bfe_i32": _bfe_i32, "v_bfi_b32": lambda a, b, c: (a & b) | (~a & c),
    "v_bfm_b32": lambda w, o: (((U32(1) << (w & U32(31))) - U32(1)) << (o & U32(31))),
    "v_alignbit_b32": _alignbit, "v_alignbyte_b32": _alignbyte, "v_perm_b32": _perm,
    "v_bcnt_u32_b32": lambda a, b: popcount32(a) + b, "v_clz_i32_u32": clz32, "v_ctz_i32_b32": ctz32,
    "v_cls_i32": _cls, "v_bfrev_b32": brev32,
    # --- 64-bit integer --------------------------------------------------------------------------
    "v_lshlrev_b64": lambda s, a: a << (s & U32(63)).astype(U64), "v_lshrrev_b64": lambda s, a: a >> (s & U32(63)).astype(U64),
    "v_ashrrev_i64": lambda s, a: a >> (s & U32(63)).astype(I64),
    # --- 16-bit integer --------------------------------------------------------------------------
    "v_add_nc_u16": lambda a, b: a + b, "v_sub_nc_u16": lambda a, b: a - b, "v_add_nc_i16": lambda a, b: a + b,
    "v_sub_nc_i16": lambda a, b: a - b, "v_mul_lo_u16": lambda a, b: a * b,
    "v_min_u16": np.minimum, "v_max_u16": np.maximum, "v_min_i16": np.minimum, "v_max_i16": np.maximum,
    "v_lshlrev_b16": lambda s, a: a << (s & np.uint16(15)), "v_lshrrev_b16": lambda s, a: a >> (s & np.uint16(15)),
    "v_ashrrev_i16": lambda s, a: a >> (s & np.uint16(15)).astype(np.int16),
    "v_and_b16": lambda a, b: a & b, "v_or_b16": lambda a, b: a | b, "v_xor_b16": lambda a, b: a ^ b,
    "v_not_b16": lambda a: ~a, "v_mov_b16": lambda a: a, "v_mad_u16": lambda a, b, c: a * b + c,
    "v_mad_i16": lambda a, b, c: a * b + c,
    # --- dot products ----------------------------------------------------------------------------
    "v_dot2_f32_f16": _dot2_f32_f16, "v_dot2acc_f32_f16": _dot2_f32_f16, "v_dot2_f32_bf16": _dot2_f32_bf16,
    "v_dot4_i32_iu8": lambda a, b, c: _dot4(a, b, c, True), "v_dot4_u32_u8": lambda a, b, c: _dot4(a, b, c, False),
    "v_dot8_i32_iu4": lambda a, b, c: _dot8(a, b, c, True), "v_dot8_u32_u4": lambda a, b, c: _dot8(a, b, c, False),
}
for _k in [k for k, v in OPS.items() if v is None]:
    del OPS[_k]



def _bytes(x):
    return [((np.asarray(x, U32) >> U32(8 * k)) & U32(0xFF)).astype(np.int64) for k in range(4)]


def _sad_u8(a, b, c):
    return (sum(np.abs(x - y) for x, y in zip(_bytes(a), _bytes(b))) + np.asarray(c, U32)).astype(U32)


def _msad_u8(a, b, c):
    """Masked SAD: bytes of the reference (b) that are 0 do not count."""
    return (sum(np.where(y == 0, 0, np.abs(x - y)) for x, y in zip(_bytes(a), _bytes(b)))
            + np.asarray(c, U32)).astype(U32)


def _sad_u16(a, b, c):
    h = lambda x, k: ((np.asarray(x, U32) >> U32(16 * k)) & U32(0xFFFF)).astype(np.int64)  # noqa: E731
    return (np.abs(h(a, 0) - h(b, 0)) + np.abs(h(a, 1) - h(b, 1)) + np.asarray(c, U32)).astype(U32)


def _lerp_u8(a, b, c):
    out = np.zeros(np.broadcast(a, b, c).shape, U32)
    for k, (x, y, z) in enumerate(zip(_bytes(a), _bytes(b), _bytes(c))):
        out |= (((x + y + (z & 1)) >> 1).astype(U32) & U32(0xFF)) << U32(8 * k)
    return out


OPS.update({
    "v_min3_i16": lambda a, b, c: np.minimum(np.minimum(a, b), c), "v_min3_u16": lambda a, b, c: np.minimum(np.minimum(a, b), c),
    "v_max3_i16": lambda a, b, c: np.maximum(np.maximum(a, b), c), "v_max3_u16": lambda a, b, c: np.maximum(np.maximum(a, b), c),
    "v_med3_i16": _med3, "v_med3_u16": _med3,
    "v_minmax_f16": lambda a, b, c: np.fmax(np.fmin(a, b), c), "v_maxmin_f16": lambda a, b, c: np.fmin(np.fmax(a, b), c),
    "v_frexp_mant_f16": _frexp_mant, "v_frexp_exp_i16_f16": _frexp_exp,
    "v_sad_u8": _sad_u8, "v_sad_hi_u8": lambda a, b, c: ((_sad_u8(a, b, 0) << U32(16)) + np.asarray(c, U32)).astype(U32),
    "v_sad_u16": _sad_u16, "v_sad_u32": lambda a, b, c: (np.abs(np.asarray(a, U32).astype(np.int64)
                                                                - np.asarray(b, U32).astype(np.int64)) + c).astype(U32),
    "v_msad_u8": _msad_u8, "v_lerp_u8": _lerp_u8,
})

# packed 16-bit (VOP3P): name -> (element type, fn over the element arrays)
PK_OPS = {
    "v_pk_add_f16": ("f16", _f16(lambda a, b: a + b)), "v_pk_mul_f16": ("f16", _f16(lambda a, b: a * b)),
    "v_pk_fma_f16": ("f16", _f16(lambda a, b, c: a * b + c)), "v_pk_min_f16": ("f16", np.fmin),
    "v_pk_max_f16": ("f16", np.fmax), "v_pk_add_u16": ("u16", lambda a, b: a + b),
    "v_pk_sub_u16": ("u16", lambda a, b: a - b), "v_pk_add_i16": ("i16", lambda a, b: a + b),
    "v_pk_sub_i16": ("i16", lambda a, b: a - b), "v_pk_mul_lo_u16": ("u16", lambda a, b: a * b),
    "v_pk_mad_u16": ("u16", lambda a, b, c: a * b + c), "v_pk_mad_i16": ("i16", lambda a, b, c: a * b + c),
    "v_pk_min_u16": ("u16", np.minimum), "v_pk_max_u16": ("u16", np.maximum),
    "v_pk_min_i16": ("i16", np.minimum), "v_pk_max_i16": ("i16", np.maximum),
    "v_pk_lshlrev_b16": ("u16", lambda s, a: a << (s & np.uint16(15))),
    "v_pk_lshrrev_b16": ("u16", lambda s, a: a >> (s & np.uint16(15))),
    "v_pk_ashrrev_i16": ("i16", lambda s, a: a >> (s & np.int16(15))),
}


# VOP3-encoded instructions whose source count is not their semantic function's arity
_ARITY = {"v_add_co_u32": 2, "v_sub_co_u32": 2, "v_subrev_co_u32": 2, "v_mad_u64_u32": 3, "v_mad_i64_i32": 3,
          "v_div_scale_f32": 3, "v_div_scale_f64": 3, "v_readlane_b32": 2, "v_writelane_b32": 2,
          "v_permlane16_b32": 3, "v_permlanex16_b32": 3, "v_mbcnt_lo_u32_b32": 2, "v_mbcnt_hi_u32_b32": 2,
          "v_cndmask_b16": 3, "v_cndmask_b32": 3, "v_add_co_ci_u32": 3, "v_sub_co_ci_u32": 3,
          "v_subrev_co_ci_u32": 3, "v_fma_mix_f32": 3, "v_fma_mixlo_f16": 3, "v_fma_mixhi_f16": 3,
          "v_readfirstlane_b32": 1, "v_swap_b32": 1, "v_nop": 0, "v_pipeflush": 0, "v_fmac_f32": 2,
          "v_fmac_f16": 2, "v_dot2acc_f32_f16": 2, "v_div_fmas_f32": 3, "v_div_fmas_f64": 3,
          "v_movrels_b32": 1, "v_movreld_b32": 1, "v_movrelsd_b32": 1}


def arity(name: str) -> int | None:
    """Number of sources of a VALU instruction (None if unknown to the emulator)."""
    if name in _ARITY:
        return _ARITY[name]
    if name.startswith(("v_cmp_", "v_cmpx_")):
        return 2
    fn = OPS.get(name) or (PK_OPS[name][1] if name in PK_OPS else None)
    if fn is None:
        return None
    import inspect
    return fn.nin if isinstance(fn, np.ufunc) else len(inspect.signature(fn).parameters)
