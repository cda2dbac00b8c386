"""Data movement and conversion: mov (incl. vector pack/unpack), cvt, cvta, isspacep."""
from __future__ import annotations

import numpy as np

from . import fpround as fr
from .ast import Vec
from .decode import Ctx, family
from .ops_float import _flush, _post, pack, unpack
from .types import SIGNED, TYPES, UNSIGNED, PType, int_type

U64 = np.uint64


@family("mov")
def build_mov(ctx: Ctx, ins):
    t = ctx.one_type(ins)
    ctx.check_mods(ins, set())
    ctx.nops(ins, 2)
    d, a = ins.operands
    if isinstance(a, Vec) or isinstance(d, Vec):
        if isinstance(a, Vec) and isinstance(d, Vec):
            raise ctx.error("mov between two vectors")
        vec = a if isinstance(a, Vec) else d
        n = len(vec.items)
        if t.size % n or t.kind == "p" or n not in (2, 4):
            raise ctx.error(f"cannot split .{t.name} into {n} elements")
        et = int_type(t.size // n, False) if t.size // n > 1 else TYPES["b8"]
        eb = et.bits
        big = UNSIGNED[t.size]
        if isinstance(a, Vec):           # pack: first element in the lowest bits
            srcs = [ctx.rd(x, et) for x in a.items]
            w = ctx.wr(d, t)

            def run(s, i):
                r = None
                for k, f in enumerate(srcs):
                    v = np.asarray(f(s, i)).astype(big) << big.type(k * eb)
                    r = v if r is None else r | v
                w(s, i, r.view(t.dtype))
            return run
        src = ctx.rd(a, t)
        ws = [ctx.wr(x, et) for x in d.items]
        mask = big.type((1 << eb) - 1)

        def run(s, i):
            v = np.asarray(src(s, i)).view(big)
            for k, f in enumerate(ws):
                f(s, i, ((v >> big.type(k * eb)) & mask).astype(et.dtype))
        return run
    r, w = ctx.rd(a, t), ctx.wr(d, t)
    return lambda s, i: w(s, i, r(s, i))


@family("cvta")
def build_cvta(ctx: Ctx, ins):
    to = "to" in ins.mods
    spaces = [m for m in ins.mods if m in ("shared", "local", "param", "global", "const")]
    if len(spaces) != 1:
        raise ctx.error("cvta needs one state space")
    ctx.check_mods(ins, {"to", "shared", "local", "param", "global", "const"})
    sp = spaces[0]
    if sp == "const":
        raise ctx.error("cvta.const: the constant bank has no generic window on this mock")
    t = ctx.one_type(ins, {"u32", "u64"})
    ctx.nops(ins, 2)
    src = ctx.rd(ins.operands[1], t)
    w = ctx.wr(ins.operands[0], t)
    if sp == "global":
        return lambda s, i: w(s, i, src(s, i))
    # the base comes from the launch: what the driver wrote to constant bank 0
    if to:
        return lambda s, i: w(s, i, (np.asarray(src(s, i)).astype(U64) - U64(s.cvta_base(sp))).astype(t.dtype))
    return lambda s, i: w(s, i, (np.asarray(src(s, i)).astype(U64) + U64(s.cvta_base(sp))).astype(t.dtype))


@family("isspacep")
def build_isspacep(ctx: Ctx, ins):
    spaces = [m for m in ins.mods if m in ("shared", "local", "param", "global", "const")]
    if len(spaces) != 1:
        raise ctx.error("isspacep needs one state space")
    ctx.check_mods(ins, {"shared", "local", "param", "global", "const"})
    sp = spaces[0]
    ctx.nops(ins, 2)
    src = ctx.rd(ins.operands[1], TYPES["u64"])
    w = ctx.wr(ins.operands[0], TYPES["pred"])

    def inwin(s, a, space):
        lo, hi = s.window(space)
        return (a >= U64(lo)) & (a < U64(hi))

    def run(s, i):
        a = np.asarray(src(s, i)).astype(U64)
        if sp == "const":
            r = np.zeros(a.shape, bool)
        elif sp == "global":
            r = ~(inwin(s, a, "shared") | inwin(s, a, "local") | inwin(s, a, "param"))
        else:
            r = inwin(s, a, sp)
        w(s, i, r)
    return run


# ---- cvt ----------------------------------------------------------------------------------
_IRND = {"rni": np.rint, "rzi": np.trunc, "rmi": np.floor, "rpi": np.ceil}
_FRND = ("rn", "rz", "rm", "rp")


def _int_range(t: PType) -> tuple[int, int]:
    return (-(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1) if t.kind == "s" else (0, (1 << t.bits) - 1)


def float_to_int(x64: np.ndarray, t: PType, rnd) -> np.ndarray:
    """Saturating float->int: NaN gives 0, out-of-range values clamp (PTX cvt semantics)."""
    r = rnd(np.asarray(x64, np.float64))
    r = np.where(np.isnan(r), 0.0, r)
    lo, hi = _int_range(t)
    if t.bits < 64:
        return np.clip(r, lo, hi).astype(np.int64).astype(t.dtype)
    if t.kind == "s":
        over, under = r >= 2.0**63, r < -2.0**63
        mid = np.where(over | under, 0.0, r).astype(np.int64)
        return np.where(over, np.int64(hi), np.where(under, np.int64(lo), mid))
    over, under = r >= 2.0**64, r < 0
    r = np.where(over | under, 0.0, r)
    big = r >= 2.0**63
    low = np.where(big, 0.0, r).astype(np.int64).view(np.uint64)
    high = (np.where(big, r - 2.0**63, 0.0).astype(np.int64).view(np.uint64)) + U64(1 << 63)
    out = np.where(big, high, low)
    return np.where(over, U64(hi), np.where(under, U64(0), out))


def int_to_float(v, st: PType, fmt: str, mode: str) -> np.ndarray:
    v = np.asarray(v)
    if st.size <= 4:
        return fr.round_f64(v.astype(np.float64), fmt, mode)     # exact in float64
    hi = v.astype(np.float64)
    exact = np.abs(hi) < 2.0**53
    from fractions import Fraction
    return fr.finish(hi, exact, fmt, mode, lambda L: [Fraction(int(v[k])) for k in L])


def int_to_int(v, st: PType, dt: PType, sat: bool) -> np.ndarray:
    v = np.asarray(v)
    if sat:
        lo, hi = _int_range(dt)
        if st.kind == "s":
            w = v.astype(np.int64)
            return np.clip(w, max(lo, -(1 << 63)), min(hi, (1 << 63) - 1)).astype(dt.dtype)
        w = v.astype(np.uint64)
        return np.minimum(w, U64(min(hi, (1 << 64) - 1))).astype(dt.dtype)
    # extension follows the source's signedness; narrowing keeps the low bits
    if st.kind == "s":
        return v.astype(SIGNED[st.size]).astype(SIGNED[dt.size]).view(dt.dtype)
    return v.view(UNSIGNED[st.size]).astype(UNSIGNED[dt.size]).view(dt.dtype)


def _cvt_tf32(ctx: Ctx, ins):
    """cvt.{rna,rn,rz}{.relu}{.satfinite}.tf32.f32: an f32 pattern rounded to tf32's 10 fraction
    bits (the low 13 bits cleared), held in a .b32 register."""
    mods = list(ins.mods)
    if mods[-2:] != ["tf32", "f32"]:
        raise ctx.error("cvt to .tf32 takes an .f32 source")
    rnd = [m for m in mods if m in ("rna", "rn", "rz")]
    extra = set(mods) - {"rna", "rn", "rz", "relu", "satfinite", "tf32", "f32"}
    if len(rnd) != 1 or extra:
        raise ctx.error("cvt.tf32.f32 needs one of .rna .rn .rz (and optionally .relu .satfinite)")
    ctx.nops(ins, 2)
    w = ctx.wr(ins.operands[0], TYPES["b32"])
    src = ctx.rd(ins.operands[1], TYPES["b32"])
    mode, relu, satfinite = rnd[0], "relu" in mods, "satfinite" in mods
    low = np.uint32(0x1FFF)

    def run(s, i):
        b = np.asarray(src(s, i), np.uint32)
        nan = (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
        if relu:
            b = np.where((b >> np.uint32(31)).astype(bool) & ~nan, np.uint32(0), b)
        if mode == "rna":            # magnitude + half an ulp: ties away from zero
            r = b + np.uint32(0x1000)
        elif mode == "rn":           # ties to even
            r = b + np.uint32(0xFFF) + ((b >> np.uint32(13)) & np.uint32(1))
        else:
            r = b
        inf_in = (b & np.uint32(0x7FFFFFFF)) == np.uint32(0x7F800000)
        r = np.where(inf_in, b, r) & ~low
        if satfinite:
            big = ((r & np.uint32(0x7FFFFFFF)) == np.uint32(0x7F800000))
            r = np.where(big, (r & np.uint32(0x80000000)) | np.uint32(0x7F7FE000), r)
        w(s, i, np.where(nan, np.uint32(0x7FFFFFFF), r).astype(np.uint32))
    return run


def _cvt_fp8(ctx: Ctx, ins):
    """cvt.rn{.relu}.satfinite.{e4m3x2,e5m2x2}.f32 d, a, b (d[15:8] from a, d[7:0] from b),
    cvt.rn{.relu}.satfinite.{e4m3x2,e5m2x2}.f16x2 d, a, and cvt.rn{.relu}.f16x2.{e4m3x2,e5m2x2} d, a."""
    from . import fp8
    mods = list(ins.mods)
    f8 = [m for m in mods if m in ("e4m3x2", "e5m2x2")]
    relu, sat = "relu" in mods, "satfinite" in mods
    rest = [m for m in mods if m not in ("rn", "relu", "satfinite")]
    if len(f8) != 1 or "rn" not in mods or len(rest) != 2:
        raise ctx.error(f"cvt.{'.'.join(mods)} is not supported")
    fmt = f8[0][:4]

    def relu_of(x):
        return np.where(np.isnan(x), x, np.maximum(x, 0.0)) if relu else x
    if rest[0] == f8[0]:                                   # to fp8
        if not sat:
            raise ctx.error("conversions to e4m3x2/e5m2x2 need .satfinite")
        w = ctx.wr(ins.operands[0], TYPES["b16"])
        if rest[1] == "f32":
            ctx.nops(ins, 3)
            ra, rb = (ctx.rd(o, TYPES["f32"]) for o in ins.operands[1:])

            def run(s, i):
                hi = fp8.encode(relu_of(np.asarray(ra(s, i), np.float64)), fmt, True).astype(np.uint16)
                lo = fp8.encode(relu_of(np.asarray(rb(s, i), np.float64)), fmt, True).astype(np.uint16)
                w(s, i, (hi << np.uint16(8)) | lo)
            return run
        if rest[1] == "f16x2":
            ctx.nops(ins, 2)
            ra = ctx.rd(ins.operands[1], TYPES["b32"])

            def run(s, i):
                v = np.asarray(ra(s, i), np.uint32)
                lo = (v & np.uint32(0xFFFF)).astype(np.uint16).view(np.float16).astype(np.float64)
                hi = (v >> np.uint32(16)).astype(np.uint16).view(np.float16).astype(np.float64)
                w(s, i, (fp8.encode(relu_of(hi), fmt, True).astype(np.uint16) << np.uint16(8))
                  | fp8.encode(relu_of(lo), fmt, True).astype(np.uint16))
            return run
        raise ctx.error(f"cvt to .{f8[0]} from .{rest[1]} is not supported")
    if rest[0] == "f16x2" and rest[1] == f8[0]:            # from fp8: exact in f16
        ctx.nops(ins, 2)
        w = ctx.wr(ins.operands[0], TYPES["b32"])
        ra = ctx.rd(ins.operands[1], TYPES["b16"])

        def run(s, i):
            v = np.asarray(ra(s, i), np.uint16)
            lo = relu_of(fp8.decode((v & np.uint16(0xFF)).astype(np.uint8), fmt)).astype(np.float16).view(np.uint16)
            hi = relu_of(fp8.decode((v >> np.uint16(8)).astype(np.uint8), fmt)).astype(np.float16).view(np.uint16)
            w(s, i, lo.astype(np.uint32) | (hi.astype(np.uint32) << np.uint32(16)))
        return run
    raise ctx.error(f"cvt.{'.'.join(mods)} is not supported")


@family("cvt")
def build_cvt(ctx: Ctx, ins):
    if "tf32" in ins.mods:
        return _cvt_tf32(ctx, ins)
    if "e4m3x2" in ins.mods or "e5m2x2" in ins.mods:
        return _cvt_fp8(ctx, ins)
    ts = ctx.types(ins)
    if len(ts) != 2:
        raise ctx.error("cvt needs a destination and a source type")
    dt, st = ts
    mods = set(ins.mods)
    ctx.check_mods(ins, set(_IRND) | set(_FRND) | {"ftz", "sat", "relu"})
    irnd = [m for m in ins.mods if m in _IRND]
    frnd = [m for m in ins.mods if m in _FRND]
    ftz, sat, relu = "ftz" in mods, "sat" in mods, "relu" in mods
    d_float = dt.kind == "f" or dt.name in ("f16x2", "bf16x2")
    s_float = st.kind == "f"
    if dt.kind == "p" or st.kind == "p":
        raise ctx.error("cvt does not convert predicates")
    if st.name in ("f16x2", "bf16x2"):
        raise ctx.error(f"cvt from .{st.name} is not supported")
    pair = dt.name in ("f16x2", "bf16x2")
    ctx.nops(ins, 3 if pair else 2)
    w = ctx.wr(ins.operands[0], dt)
    srcs = [ctx.rd(o, st) for o in ins.operands[1:]]
    src = srcs[0]

    if not d_float and not s_float:                      # int -> int
        if irnd or frnd:
            raise ctx.error("integer-to-integer cvt takes no rounding modifier")
        return lambda s, i: w(s, i, int_to_int(src(s, i), st, dt, sat))
    if not d_float:                                        # float -> int
        if len(irnd) != 1:
            raise ctx.error("float-to-integer cvt needs .rni .rzi .rmi or .rpi")
        rnd = _IRND[irnd[0]]

        def run(s, i):
            x = unpack(st, src(s, i))[0]
            if ftz:
                x = _flush("f32", x)
            w(s, i, float_to_int(x, dt, rnd))
        return run
    fmt = {"f16x2": "f16", "bf16x2": "bf16"}.get(dt.name, dt.name)
    if not s_float:                                        # int -> float
        if len(frnd) != 1:
            raise ctx.error("integer-to-float cvt needs .rn .rz .rm or .rp")
        mode = frnd[0]
        return lambda s, i: w(s, i, _post(fmt, int_to_float(src(s, i), st, fmt, mode), ftz and fmt == "f32", sat))
    # float -> float
    narrowing = fr.FORMATS[fmt][0] < fr.FORMATS[st.name][0] or (fmt == "f16" and st.name == "bf16") \
        or (fmt == "bf16" and st.name == "f16")
    if irnd:
        if fmt != st.name:
            raise ctx.error("cvt with integer rounding needs equal float types")
        rnd = _IRND[irnd[0]]

        def run(s, i):
            x = unpack(st, src(s, i))[0]
            if ftz:
                x = _flush(fmt, x)
            w(s, i, _post(fmt, fr.round_f64(rnd(x), fmt, "rn"), ftz, sat))
        return run
    if narrowing and len(frnd) != 1:
        raise ctx.error(f"cvt.{dt.name}.{st.name} needs a rounding modifier (.rn .rz .rm .rp)")
    if not narrowing and frnd and fmt != st.name:
        raise ctx.error(f"cvt.{frnd[0]}.{dt.name}.{st.name} is exact: no rounding modifier allowed")
    mode = frnd[0] if frnd else "rn"

    def conv(x64):
        if ftz:
            x64 = _flush(st.name if st.name in ("f32", "f64") else "f32", x64)
        if relu:
            x64 = np.where(np.isnan(x64), np.nan, np.maximum(x64, 0.0))
        r = fr.round_f64(x64, fmt, mode)
        return _post(fmt, r, ftz and fmt in ("f32",), sat)

    if pair:
        a, b = srcs
        # d[31:16] = cvt(a), d[15:0] = cvt(b)
        return lambda s, i: w(s, i, pack(dt, [np.asarray(conv(unpack(st, b(s, i))[0])), np.asarray(conv(unpack(st, a(s, i))[0]))]))
    return lambda s, i: w(s, i, conv(unpack(st, src(s, i))[0]))
