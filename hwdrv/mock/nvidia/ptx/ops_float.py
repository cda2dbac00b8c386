"""Floating-point arithmetic for f16, f16x2, bf16, bf16x2, f32, f64: add sub mul fma mad div,
abs neg min max copysign, rcp sqrt rsqrt ex2 lg2 sin cos tanh, with .rn/.rz/.rm/.rp, .ftz,
.sat. Exact results come from float64 error-free transformations, with a rational fallback
for lanes on a rounding boundary (see fpround)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from . import fpround as fr
from .decode import Ctx, rounding
from .types import TYPES, PType

FLOAT_TYPES = {"f16", "f16x2", "bf16", "bf16x2", "f32", "f64"}
_BASE = {"f16": "f16", "f16x2": "f16", "bf16": "bf16", "bf16x2": "bf16", "f32": "f32", "f64": "f64"}
_F64_MAX = np.finfo(np.float64).max


# ---- packing ------------------------------------------------------------------------------
def unpack(t: PType, v) -> list[np.ndarray]:
    """A value of float type t -> its element(s) as exact float64 arrays."""
    v = np.asarray(v)
    if t.name in ("f16x2", "bf16x2"):
        u = v.view(np.uint32) if v.dtype.itemsize == 4 else v.astype(np.uint32)
        lo, hi = (u & np.uint32(0xFFFF)).astype(np.uint16), (u >> np.uint32(16)).astype(np.uint16)
        if t.name == "f16x2":
            return [lo.view(np.float16).astype(np.float64), hi.view(np.float16).astype(np.float64)]
        return [fr.bf16_to_f32(lo).astype(np.float64), fr.bf16_to_f32(hi).astype(np.float64)]
    return [fr.to_f64(v, t.name)]


def pack(t: PType, parts: list[np.ndarray]):
    """Element(s) already rounded to the base format -> a value of type t."""
    if t.name in ("f16x2", "bf16x2"):
        lo, hi = (np.asarray(p).view(np.uint16).astype(np.uint32) for p in parts)
        return lo | (hi << np.uint32(16))
    return parts[0]


def canonical_nan(fmt: str):
    return {"f16": np.array(0x7FFF, np.uint16).view(np.float16)[()], "bf16": np.uint16(0x7FFF),
            "f32": np.array(0x7FFFFFFF, np.uint32).view(np.float32)[()],
            "f64": np.array(0x7FFFFFFFFFFFFFFF, np.uint64).view(np.float64)[()]}[fmt]


# ---- correctly rounded primitives on float64-exact inputs ------------------------------------
def _overflow_fix(r: np.ndarray, hi: np.ndarray, finite_inputs: np.ndarray, mode: str) -> np.ndarray:
    """IEEE overflow under directed rounding: rz gives +-max, rm/rp depend on the sign."""
    if mode == "rn":
        return r
    ov = np.isinf(hi) & finite_inputs
    if not ov.any():
        return r
    pos = hi > 0
    keep_inf = (pos & (mode == "rp")) | (~pos & (mode == "rm"))
    return np.where(ov & ~keep_inf, np.where(pos, _F64_MAX, -_F64_MAX), r)


def round_exact(hi, tail, fmt: str, mode: str, exact, finite_inputs) -> np.ndarray:
    """Round hi+tail (tail: exact float64 remainder, or None if unknown) to fmt.

    ``exact(lanes)`` returns the exact rational results for the lanes given."""
    hi = np.asarray(hi, np.float64)
    if fmt != "f64":
        return fr.finish(hi, None if tail is None else (np.asarray(tail) == 0), fmt, mode, exact)
    if mode == "rn":
        return hi
    if tail is None:
        out = hi.copy()
        lanes = np.flatnonzero(finite_inputs)
        for lane, q in zip(lanes, exact(lanes)):
            out[lane] = fr.round_fraction(q, "f64", mode, -1.0 if mode == "rm" else np.copysign(1.0, hi[lane]))
        return out
    tail = np.asarray(tail, np.float64)
    if mode == "rm":
        adj = tail < 0
        tow = -np.inf
    elif mode == "rp":
        adj = tail > 0
        tow = np.inf
    else:
        adj = ((tail < 0) & (hi > 0)) | ((tail > 0) & (hi < 0))
        tow = 0.0
    r = np.where(adj & np.isfinite(hi), np.nextafter(hi, tow), hi)
    return _overflow_fix(r, hi, finite_inputs, mode)


def f_add(a, b, fmt, mode):
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    s, e = fr.two_sum(a, b)
    fin = np.isfinite(a) & np.isfinite(b)
    e = np.where(fin & np.isfinite(s), e, 0.0)
    r = round_exact(s, e, fmt, mode, lambda L: [fr.frac(a[k]) + fr.frac(b[k]) for k in L], fin)
    # IEEE: an exact zero sum of opposite operands is +0, or -0 when rounding toward -inf.
    if mode == "rm":
        z = (s == 0) & (e == 0) & ~((a == 0) & (b == 0) & ~np.signbit(a) & ~np.signbit(b))
        if z.any():
            r = np.where(z & (np.signbit(a) | np.signbit(b) | (a != 0)), _neg_zero(fmt), r)
    return r


def _neg_zero(fmt):
    return {"f16": np.float16(-0.0), "bf16": np.uint16(0x8000), "f32": np.float32(-0.0), "f64": -0.0}[fmt]


def f_mul(a, b, fmt, mode):
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    fin = np.isfinite(a) & np.isfinite(b)
    if fmt != "f64":                      # products of <= 24-bit significands are exact in f64
        return fr.round_f64(a * b, fmt, mode)
    if mode == "rn":
        return a * b
    p, e = fr.two_prod(a, b)
    ok = fin & (np.abs(a) < 2.0**995) & (np.abs(b) < 2.0**995) & ((np.abs(p) > 2.0**-960) | (a == 0) | (b == 0))
    if ok.all():
        return round_exact(p, np.where(np.isfinite(p), e, 0.0), fmt, mode, None, fin)
    r = round_exact(p, np.where(ok, e, 0.0), fmt, mode, None, fin)
    bad = np.flatnonzero(~ok & fin)
    for k in bad:
        r[k] = fr.round_fraction(fr.frac(a[k]) * fr.frac(b[k]), "f64", mode, np.copysign(1.0, p[k]))
    return r


def f_fma(a, b, c, fmt, mode):
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(c, np.float64))
    fin = np.isfinite(a) & np.isfinite(b) & np.isfinite(c)

    def exact(L):
        return [fr.frac(a[k]) * fr.frac(b[k]) + fr.frac(c[k]) for k in L]

    if fmt != "f64":
        p = a * b                         # exact for inputs of <= 24-bit significand
        s, e = fr.two_sum(p, c)
        e = np.where(fin & np.isfinite(s), e, 0.0)
        return fr.finish(s, e == 0, fmt, mode, exact)
    p, pe = fr.two_prod(a, b)
    s, e = fr.two_sum(p, c)
    t = e + pe
    r = s + t
    ok = fin & np.isfinite(r) & (np.abs(a) < 2.0**995) & (np.abs(b) < 2.0**995) & ((np.abs(p) > 2.0**-960) | (a == 0) | (b == 0)) & (np.abs(s) < 2.0**1020)
    if mode == "rn":
        # r is right wherever every value in [prev(t), next(t)] (which holds e+pe) gives the same sum.
        sure = ok & (s + np.nextafter(t, -np.inf) == s + np.nextafter(t, np.inf))
        out = np.where(fin, r, a * b + c)
        zero_exact = ok & (s == 0) & (t == 0)
        out = np.where(zero_exact, a * b + c, out)   # sign of an exact zero as IEEE fma gives
        for k in np.flatnonzero(fin & ~sure & ~zero_exact):
            out[k] = fr.round_fraction(exact([k])[0], "f64", mode, np.copysign(1.0, r[k]))
        return out
    out = a * b + c
    for k in np.flatnonzero(fin):
        q = exact([k])[0]
        out[k] = fr.round_fraction(q, "f64", mode, -1.0 if mode == "rm" and q == 0 else np.copysign(1.0, r[k]))
    return out


def f_div(a, b, fmt, mode):
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    q = a / b
    fin = np.isfinite(a) & np.isfinite(b) & (b != 0)
    if mode == "rn":
        # double rounding of a quotient from 53 to <= 24 bits is innocuous (53 >= 2*24+2)
        return fr.round_f64(q, fmt, "rn") if fmt != "f64" else q
    exact = lambda L: [fr.frac(a[k]) / fr.frac(b[k]) for k in L]  # noqa: E731
    if fmt == "f64":
        return round_exact(q, None, fmt, mode, exact, fin)
    return fr.finish(q, ~fin, fmt, mode, exact)        # special operands: q is the IEEE result


class _SqrtQ:
    """An exact stand-in for sqrt(x): a 200-bit floor plus half a unit when inexact, which
    rounds to every format exactly as the true root does."""

    @staticmethod
    def of(x: float) -> Fraction:
        from math import isqrt
        f = Fraction(x)
        k = 400
        num = f.numerator * (1 << k) // f.denominator
        inexact = num * f.denominator != f.numerator * (1 << k)
        r = isqrt(num)
        inexact = inexact or r * r != num
        return Fraction(2 * r + (1 if inexact else 0), 1 << (k // 2 + 1))


def f_sqrt(a, fmt, mode):
    a = np.asarray(a, np.float64)
    q = np.sqrt(a)
    if mode == "rn":
        return fr.round_f64(q, fmt, "rn") if fmt != "f64" else q
    fin = np.isfinite(a) & (a > 0)
    exact = lambda L: [_SqrtQ.of(a[k]) for k in L]  # noqa: E731
    if fmt == "f64":
        out = q.copy()
        for k in np.flatnonzero(fin):
            out[k] = fr.round_fraction(_SqrtQ.of(a[k]), "f64", mode)
        return out
    return fr.finish(q, ~fin, fmt, mode, exact)


# ---- builders ------------------------------------------------------------------------------
def _flush(fmt: str, x64: np.ndarray) -> np.ndarray:
    """.ftz on an input: subnormals of the format become signed zero."""
    tiny = {"f32": 2.0**-126, "f16": 2.0**-14, "bf16": 2.0**-126, "f64": 2.0**-1022}[fmt]
    return np.where((np.abs(x64) < tiny) & (x64 != 0), np.copysign(0.0, x64), x64)


def _post(fmt: str, r, ftz: bool, sat: bool):
    """.ftz / .sat on a result already in format fmt."""
    if ftz:
        x = fr.to_f64(r, fmt)
        x2 = _flush(fmt, x)
        if not np.array_equal(x, x2, equal_nan=True):
            r = fr.round_f64(x2, fmt, "rn")
    if sat:
        x = fr.to_f64(r, fmt)
        x = np.where(np.isnan(x), 0.0, np.clip(x, 0.0, 1.0))
        x = np.where(x == 0, 0.0, x)       # .sat gives +0 for -0 and NaN
        r = fr.round_f64(x, fmt, "rn")
    return r


def build_float(ctx: Ctx, ins, op: str, t: PType):
    """add sub mul fma mad div min max abs neg copysign and the unary math ops on float type t."""
    fmt = _BASE[t.name]
    mods = set(ins.mods)
    approx = "approx" in mods
    ftz = "ftz" in mods
    sat = "sat" in mods
    allowed = {"rn", "rz", "rm", "rp", "ftz", "sat"}
    if op in ("div", "rcp", "sqrt", "rsqrt", "ex2", "lg2", "sin", "cos", "tanh"):
        allowed.add("approx")
    if op == "div":
        allowed.add("full")
    if op in ("min", "max"):
        allowed |= {"NaN", "relu"}
    if op == "fma" and fmt in ("f16", "bf16"):
        allowed.add("relu")
    ctx.check_mods(ins, allowed)
    mode = rounding(ins)
    if ftz and fmt == "f64" and op not in ("rcp", "rsqrt", "sqrt", "ex2", "lg2"):
        raise ctx.error(".ftz does not apply to .f64 here")
    nsrc = {"add": 2, "sub": 2, "mul": 2, "div": 2, "min": 2, "max": 2, "copysign": 2, "fma": 3, "mad": 3,
            "abs": 1, "neg": 1, "rcp": 1, "sqrt": 1, "rsqrt": 1, "ex2": 1, "lg2": 1, "sin": 1, "cos": 1,
            "tanh": 1}[op]
    ctx.nops(ins, nsrc + 1)
    srcs = [ctx.rd(o, t) for o in ins.operands[1:]]
    w = ctx.wr(ins.operands[0], t)
    nan_mode = "NaN" in mods
    relu = "relu" in mods

    if op in ("sin", "cos", "ex2", "lg2", "tanh", "rsqrt") and not approx:
        raise ctx.error(f"{op} requires .approx")

    def elem(xs: list[np.ndarray]) -> np.ndarray:
        if ftz:
            xs = [_flush(fmt, x) for x in xs]
        if op == "add":
            r = f_add(xs[0], xs[1], fmt, mode)
        elif op == "sub":
            r = f_add(xs[0], -xs[1], fmt, mode)
        elif op == "mul":
            r = f_mul(xs[0], xs[1], fmt, mode)
        elif op in ("fma", "mad"):
            r = f_fma(xs[0], xs[1], xs[2], fmt, mode)
            if relu:                    # fma.relu: negative results become +0, NaN stays NaN
                x = fr.to_f64(r, fmt)
                r = np.where(x < 0, fr.round_f64(np.zeros_like(x), fmt, "rn"), r)
                r = np.where(np.isnan(x), canonical_nan(fmt), r)
        elif op == "div":
            if approx:
                r = fr.round_f64(xs[0] * (1.0 / xs[1]) if fmt != "f64" else xs[0] / xs[1], fmt, "rn")
            else:
                r = f_div(xs[0], xs[1], fmt, mode)
        elif op in ("min", "max"):
            a, b = np.broadcast_arrays(xs[0], xs[1])
            f = np.fmin if op == "min" else np.fmax
            r64 = f(a, b)
            both0 = (a == 0) & (b == 0)
            if both0.any():      # -0 orders below +0
                neg = (np.signbit(a) | np.signbit(b)) if op == "min" else (np.signbit(a) & np.signbit(b))
                r64 = np.where(both0, np.where(neg, -0.0, 0.0), r64)
            anynan = np.isnan(a) | np.isnan(b)
            if nan_mode:
                r64 = np.where(anynan, np.nan, r64)
            r = fr.round_f64(r64, fmt, "rn")
            nanmask = anynan if nan_mode else (np.isnan(a) & np.isnan(b))
            if nanmask.any():
                r = np.where(nanmask, canonical_nan(fmt), r)
            if relu:
                r = fr.round_f64(np.where(np.isnan(fr.to_f64(r, fmt)) | (fr.to_f64(r, fmt) > 0), fr.to_f64(r, fmt), 0.0), fmt, "rn")
        elif op == "abs":
            r = fr.round_f64(np.abs(xs[0]), fmt, "rn")
        elif op == "neg":
            r = fr.round_f64(-xs[0], fmt, "rn")
        elif op == "copysign":
            r = fr.round_f64(np.copysign(xs[1], xs[0]), fmt, "rn")
        elif op == "rcp":
            r = fr.round_f64(1.0 / xs[0], fmt, "rn") if approx else f_div(np.ones_like(xs[0]), xs[0], fmt, mode)
        elif op == "sqrt":
            r = f_sqrt(xs[0], fmt, "rn" if approx else mode)
        elif op == "rsqrt":
            with np.errstate(all="ignore"):
                r = fr.round_f64(1.0 / np.sqrt(xs[0]), fmt, "rn")
        elif op == "ex2":
            r = fr.round_f64(np.exp2(xs[0]), fmt, "rn")
        elif op == "lg2":
            r = fr.round_f64(np.log2(xs[0]), fmt, "rn")
        elif op == "sin":
            r = fr.round_f64(np.sin(xs[0]), fmt, "rn")
        elif op == "cos":
            r = fr.round_f64(np.cos(xs[0]), fmt, "rn")
        elif op == "tanh":
            r = fr.round_f64(np.tanh(xs[0]), fmt, "rn")
        else:
            raise AssertionError(op)
        return _post(fmt, r, ftz, sat)

    # Fast paths for the common f32 / f64 round-to-nearest cases: plain numpy, no detours.
    if fmt in ("f32", "f64") and mode == "rn" and not ftz and not sat and not approx:
        if op == "add":
            a, b = srcs
            return lambda s, i: w(s, i, np.add(a(s, i), b(s, i)))
        if op == "sub":
            a, b = srcs
            return lambda s, i: w(s, i, np.subtract(a(s, i), b(s, i)))
        if op == "mul":
            a, b = srcs
            return lambda s, i: w(s, i, np.multiply(a(s, i), b(s, i)))
        if op == "neg":
            a, = srcs
            return lambda s, i: w(s, i, np.negative(a(s, i)))
        if op == "abs":
            a, = srcs
            return lambda s, i: w(s, i, np.abs(a(s, i)))
    is_pair = t.name in ("f16x2", "bf16x2")

    def run(s, i):
        vals = [unpack(t, r(s, i)) for r in srcs]
        n = 2 if is_pair else 1
        parts = [elem([v[k] for v in vals]) for k in range(n)]
        w(s, i, pack(t, [np.asarray(p) for p in parts]))
    return run


def build_testp(ctx: Ctx, ins):
    kinds = {"finite", "infinite", "number", "notanumber", "normal", "subnormal"}
    k = [m for m in ins.mods if m in kinds]
    if len(k) != 1:
        raise ctx.error("testp needs one of " + " ".join(sorted(kinds)))
    t = ctx.one_type(ins, {"f32", "f64"})
    ctx.nops(ins, 2)
    a = ctx.rd(ins.operands[1], t)
    w = ctx.wr(ins.operands[0], TYPES["pred"])
    tiny = np.finfo(t.dtype).tiny
    f = {"finite": np.isfinite, "infinite": np.isinf, "number": lambda x: ~np.isnan(x), "notanumber": np.isnan,
         "normal": lambda x: np.isfinite(x) & (np.abs(x) >= tiny),
         "subnormal": lambda x: (np.abs(x) < tiny) & (x != 0)}[k[0]]
    return lambda s, i: w(s, i, f(np.asarray(a(s, i))))
