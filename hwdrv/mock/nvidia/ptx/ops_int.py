"""Integer arithmetic: add sub mul mad mul24 mad24 div rem abs neg min max sad (s/u 8-64).

numpy integer arithmetic wraps modulo 2**n, exactly as the hardware; the cases where PTX
defines something else (saturation, high halves, division by zero, INT_MIN / -1) are explicit."""
from __future__ import annotations

import numpy as np

from .decode import Ctx
from .types import UNSIGNED, PType, int_type

INT_TYPES = {"s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64", "b8", "b16", "b32", "b64"}


def _as_int(t: PType) -> PType:
    # bit types behave as unsigned in arithmetic
    return int_type(t.size, False) if t.kind == "b" else t


def mulhi(a: np.ndarray, b: np.ndarray, t: PType) -> np.ndarray:
    """High half of the 2n-bit product of two n-bit integers of type t."""
    if t.size < 8:
        wide = np.int64 if t.kind == "s" else np.uint64
        p = np.asarray(a).astype(wide) * np.asarray(b).astype(wide)
        return (p >> wide(t.bits)).astype(t.dtype)
    ua = np.asarray(a).view(np.uint64) if np.ndim(a) else np.array(a).view(np.uint64)
    ub = np.asarray(b).view(np.uint64) if np.ndim(b) else np.array(b).view(np.uint64)
    m32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    al, ah, bl, bh = ua & m32, ua >> s32, ub & m32, ub >> s32
    ll, lh, hl, hh = al * bl, al * bh, ah * bl, ah * bh
    mid = (ll >> s32) + (lh & m32) + (hl & m32)
    hi = hh + (lh >> s32) + (hl >> s32) + (mid >> s32)
    if t.kind == "s":
        # signed high half = unsigned high half - (a<0 ? b : 0) - (b<0 ? a : 0)  (mod 2**64)
        hi = hi - np.where(np.asarray(a) < 0, ub, np.uint64(0)) - np.where(np.asarray(b) < 0, ua, np.uint64(0))
    return np.asarray(hi).view(t.dtype) if t.kind == "s" else np.asarray(hi)


def mulwide(a, b, t: PType) -> np.ndarray:
    """2n-bit product of two n-bit integers (n <= 32)."""
    wt = int_type(t.size * 2, t.kind == "s")
    return np.asarray(a).astype(wt.dtype) * np.asarray(b).astype(wt.dtype)


def int_div(a, b, t: PType, rem: bool) -> np.ndarray:
    """Truncating division/remainder. x/0 gives all ones (unsigned) and x%0 gives x, as the
    hardware's reciprocal-based sequence does; INT_MIN / -1 wraps to INT_MIN."""
    a = np.asarray(a)
    b = np.asarray(b)
    a, b = np.broadcast_arrays(a, b)
    ut = UNSIGNED[t.size]
    if t.kind == "s":
        ua = np.where(a < 0, np.negative(a).view(ut) if a.ndim else np.array(-a).view(ut), a.view(ut))
        ub = np.where(b < 0, np.negative(b).view(ut), b.view(ut))
    else:
        ua, ub = a.view(ut), b.view(ut)
    zero = ub == 0
    safe = np.where(zero, ut.type(1), ub)
    if rem:
        r = np.where(zero, ua, ua % safe)
        if t.kind == "s":
            r = np.where(a < 0, np.negative(r.view(t.dtype)), r.view(t.dtype))
        return r.astype(t.dtype)
    q = np.where(zero, ut.type(np.iinfo(ut).max), ua // safe)
    if t.kind == "s":
        neg = (a < 0) != (b < 0)
        q = np.where(neg, np.negative(q.view(t.dtype)), q.view(t.dtype))
    return q.astype(t.dtype)


def _sat_s32(v64: np.ndarray) -> np.ndarray:
    return np.clip(v64, -2**31, 2**31 - 1).astype(np.int32)


def build_int_binary(ctx: Ctx, ins, op: str, t: PType):
    """add/sub/mul/div/rem/min/max (and their modes) on integer type t."""
    t = _as_int(t)
    ctx.nops(ins, 3)
    d, a, b = ins.operands
    ra, rb = ctx.rd(a, t), ctx.rd(b, t)
    sat = "sat" in ins.mods
    if sat and not (t.name == "s32" and op in ("add", "sub")):
        raise ctx.error(".sat applies to add/sub.s32 only")
    if op == "mul":
        mode = [m for m in ins.mods if m in ("lo", "hi", "wide")]
        if len(mode) != 1:
            raise ctx.error("integer mul needs one of .lo .hi .wide")
        mode = mode[0]
        if mode == "wide":
            if t.size > 4:
                raise ctx.error("mul.wide takes 16- or 32-bit operands")
            w = ctx.wr(d, int_type(t.size * 2, t.kind == "s"))
            return lambda s, i: w(s, i, mulwide(ra(s, i), rb(s, i), t))
        w = ctx.wr(d, t)
        if mode == "hi":
            return lambda s, i: w(s, i, mulhi(ra(s, i), rb(s, i), t))
        return lambda s, i: w(s, i, np.multiply(ra(s, i), rb(s, i), dtype=t.dtype))
    w = ctx.wr(d, t)
    if op == "add":
        if sat:
            return lambda s, i: w(s, i, _sat_s32(np.asarray(ra(s, i), np.int64) + np.asarray(rb(s, i), np.int64)))
        return lambda s, i: w(s, i, np.add(ra(s, i), rb(s, i), dtype=t.dtype))
    if op == "sub":
        if sat:
            return lambda s, i: w(s, i, _sat_s32(np.asarray(ra(s, i), np.int64) - np.asarray(rb(s, i), np.int64)))
        return lambda s, i: w(s, i, np.subtract(ra(s, i), rb(s, i), dtype=t.dtype))
    if op in ("div", "rem"):
        r = op == "rem"
        return lambda s, i: w(s, i, int_div(ra(s, i), rb(s, i), t, r))
    if op in ("min", "max"):
        f = np.minimum if op == "min" else np.maximum
        if "relu" in ins.mods:
            if t.name != "s32":
                raise ctx.error(".relu applies to .s32 integer min/max")
            return lambda s, i: w(s, i, np.maximum(f(ra(s, i), rb(s, i)), np.int32(0)))
        return lambda s, i: w(s, i, f(ra(s, i), rb(s, i)))
    raise ctx.error(f"integer {op} is not supported")


def build_mad(ctx: Ctx, ins, t: PType):
    t = _as_int(t)
    ctx.nops(ins, 4)
    d, a, b, c = ins.operands
    mode = [m for m in ins.mods if m in ("lo", "hi", "wide")]
    if len(mode) != 1:
        raise ctx.error("integer mad needs one of .lo .hi .wide")
    mode = mode[0]
    ra, rb = ctx.rd(a, t), ctx.rd(b, t)
    if mode == "wide":
        if t.size > 4:
            raise ctx.error("mad.wide takes 16- or 32-bit operands")
        wt = int_type(t.size * 2, t.kind == "s")
        rc, w = ctx.rd(c, wt), ctx.wr(d, wt)
        return lambda s, i: w(s, i, np.add(mulwide(ra(s, i), rb(s, i), t), rc(s, i), dtype=wt.dtype))
    rc, w = ctx.rd(c, t), ctx.wr(d, t)
    if mode == "hi":
        if "sat" in ins.mods:
            if t.name != "s32":
                raise ctx.error("mad.hi.sat is .s32 only")
            return lambda s, i: w(s, i, _sat_s32(mulhi(ra(s, i), rb(s, i), t).astype(np.int64) + np.asarray(rc(s, i), np.int64)))
        return lambda s, i: w(s, i, np.add(mulhi(ra(s, i), rb(s, i), t), rc(s, i), dtype=t.dtype))
    if "sat" in ins.mods:
        raise ctx.error(".sat applies to mad.hi.s32 only")
    return lambda s, i: w(s, i, np.add(np.multiply(ra(s, i), rb(s, i), dtype=t.dtype), rc(s, i), dtype=t.dtype))


def build_24(ctx: Ctx, ins, t: PType):
    """mul24/mad24: multiply the low 24 bits (sign-extended for .s32), keep .lo or .hi 32 bits
    of the 48-bit product."""
    if t.name not in ("s32", "u32"):
        raise ctx.error(f"{ins.opcode} is .s32/.u32 only")
    hi = "hi" in ins.mods
    if not hi and "lo" not in ins.mods:
        raise ctx.error(f"{ins.opcode} needs .lo or .hi")
    is_mad = ins.opcode == "mad24"
    ctx.nops(ins, 4 if is_mad else 3)
    ra, rb = ctx.rd(ins.operands[1], t), ctx.rd(ins.operands[2], t)
    rc = ctx.rd(ins.operands[3], t) if is_mad else None
    w = ctx.wr(ins.operands[0], t)

    def ext(v):
        v = np.asarray(v).astype(np.int64) & 0xFFFFFF
        return np.where(v & 0x800000, v - 0x1000000, v) if t.kind == "s" else v

    def run(s, i):
        p = ext(ra(s, i)) * ext(rb(s, i))
        r = ((p >> 16) if hi else p) & 0xFFFFFFFF
        if is_mad:
            r = (r + np.asarray(rc(s, i)).astype(np.int64)) & 0xFFFFFFFF
        w(s, i, np.asarray(r).astype(np.uint32).view(t.dtype))
    return run


def build_int_unary(ctx: Ctx, ins, op: str, t: PType):
    t = _as_int(t)
    ctx.nops(ins, 2)
    ra, w = ctx.rd(ins.operands[1], t), ctx.wr(ins.operands[0], t)
    if op == "neg":
        return lambda s, i: w(s, i, np.negative(np.asarray(ra(s, i))))
    if op == "abs":
        if t.kind != "s":
            raise ctx.error("integer abs is signed only")
        return lambda s, i: w(s, i, np.abs(np.asarray(ra(s, i))).astype(t.dtype))
    raise ctx.error(f"integer {op} is not supported")


def build_sad(ctx: Ctx, ins, t: PType):
    t = _as_int(t)
    ctx.nops(ins, 4)
    d, a, b, c = ins.operands
    ra, rb, rc, w = ctx.rd(a, t), ctx.rd(b, t), ctx.rd(c, t), ctx.wr(d, t)

    def run(s, i):
        x, y = np.asarray(ra(s, i)), np.asarray(rb(s, i))
        diff = np.where(x < y, np.subtract(y, x, dtype=t.dtype), np.subtract(x, y, dtype=t.dtype))
        w(s, i, np.add(diff.view(UNSIGNED[t.size]), np.asarray(rc(s, i)).view(UNSIGNED[t.size]), dtype=UNSIGNED[t.size]).view(t.dtype))
    return run


# ---- carry chains: add.cc addc sub.cc subc mad.cc madc ------------------------------------------
def _carry_in(s, i) -> np.ndarray:
    return s.carry if i is None else s.carry[i]


def _carry_out(s, i, cf) -> None:
    if i is None:
        s.carry[...] = cf
    else:
        s.carry[i] = cf


def build_carry(ctx: Ctx, ins, t: PType):
    """Multi-word arithmetic through the per-thread condition-code carry flag CC.CF.

    add: d = a + b (+ CF); sub: d = a - (b + CF) with CF meaning borrow; mad: d = lo/hi(a*b)
    + c (+ CF). ``.cc`` writes the carry-out (borrow-out) back to CF."""
    op = ins.opcode
    if t.name not in ("u32", "s32", "u64", "s64", "b32", "b64"):
        raise ctx.error(f"{op} takes 32- or 64-bit integers")
    base = {"addc": "add", "subc": "sub", "madc": "mad"}.get(op, op)
    use_cf = op in ("addc", "subc", "madc")
    set_cf = "cc" in ins.mods
    if base not in ("add", "sub", "mad"):
        raise ctx.error(f"{op}.cc is not supported")
    ut = int_type(t.size, False)
    U = ut.dtype.type
    hi = "hi" in ins.mods
    if base == "mad" and not (hi or "lo" in ins.mods):
        raise ctx.error(f"{op} needs .lo or .hi")
    ctx.nops(ins, 4 if base == "mad" else 3)
    srcs = [ctx.rd(o, ut) for o in ins.operands[1:]]
    w = ctx.wr(ins.operands[0], ut)

    def run(s, i):
        vals = [np.asarray(f(s, i)) for f in srcs]
        cin = _carry_in(s, i).astype(ut.dtype) if use_cf else U(0)
        if base == "mad":
            prod = mulhi(vals[0], vals[1], ut) if hi else np.multiply(vals[0], vals[1], dtype=ut.dtype)
            a, b = np.asarray(prod, ut.dtype), vals[2]
        else:
            a, b = vals
        if base == "sub":
            d1 = np.subtract(a, b, dtype=ut.dtype)
            d = np.subtract(d1, cin, dtype=ut.dtype)
            cout = (a < b) | (d1 < cin)
        else:
            d1 = np.add(a, b, dtype=ut.dtype)
            d = np.add(d1, cin, dtype=ut.dtype)
            cout = (d1 < a) | (d < d1)
        w(s, i, d)
        if set_cf:
            _carry_out(s, i, np.broadcast_to(cout, np.shape(d)))
    return run


def build_dp(ctx: Ctx, ins):
    """dp4a / dp2a: byte / half-word dot products accumulated into 32 bits."""
    ts = ctx.types(ins)
    if len(ts) != 2 or any(t.name not in ("u32", "s32") for t in ts):
        raise ctx.error(f"{ins.opcode} needs .atype.btype from .u32/.s32")
    at, bt = ts
    ctx.check_mods(ins, {"lo", "hi"})
    ctx.nops(ins, 4)
    u32 = int_type(4, False)
    a, b, c = (ctx.rd(o, u32) for o in ins.operands[1:])
    out_t = int_type(4, at.kind == "s" or bt.kind == "s")
    w = ctx.wr(ins.operands[0], out_t)
    four = ins.opcode == "dp4a"
    if not four and ("lo" in ins.mods) == ("hi" in ins.mods):
        raise ctx.error("dp2a needs .lo or .hi")
    second = 2 if "hi" in ins.mods else 0

    def part(v, k, width, signed):
        x = (np.asarray(v).astype(np.int64) >> (k * width)) & ((1 << width) - 1)
        return np.where(x >> (width - 1) & 1, x - (1 << width), x) if signed else x

    def run(s, i):
        x, y, z = a(s, i), b(s, i), np.asarray(c(s, i)).astype(np.int64)
        if four:
            acc = sum(part(x, k, 8, at.kind == "s") * part(y, k, 8, bt.kind == "s") for k in range(4))
        else:
            acc = sum(part(x, k, 16, at.kind == "s") * part(y, second + k, 8, bt.kind == "s") for k in range(2))
        if out_t.kind == "s":
            z = np.where(z >= 1 << 31, z - (1 << 32), z)
        w(s, i, ((acc + z) & 0xFFFFFFFF).astype(np.uint32).view(out_t.dtype))
    return run
