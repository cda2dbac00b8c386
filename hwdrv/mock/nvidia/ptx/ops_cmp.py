"""Comparisons and selection: setp (with .and/.or/.xor combining), set, selp, slct."""
from __future__ import annotations

import numpy as np

from .ast import Pair
from .decode import Ctx, family
from .ops_float import unpack
from .types import TYPES

_INT_CMP = {"eq", "ne", "lt", "le", "gt", "ge", "lo", "ls", "hi", "hs"}
_FLT_CMP = {"eq", "ne", "lt", "le", "gt", "ge", "equ", "neu", "ltu", "leu", "gtu", "geu", "num", "nan"}
_BOOL = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}


def compare(op: str, a, b, is_float: bool) -> np.ndarray:
    """PTX comparison: ordered float ops are false on NaN, the 'u' forms are true on NaN."""
    a, b = np.asarray(a), np.asarray(b)
    base = op.rstrip("u") if is_float and op.endswith("u") and op not in ("nan", "num") else op
    base = {"lo": "lt", "ls": "le", "hi": "gt", "hs": "ge"}.get(base, base)
    if op == "num":
        return ~(np.isnan(a) | np.isnan(b))
    if op == "nan":
        return np.isnan(a) | np.isnan(b)
    r = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
         "ge": np.greater_equal}[base](a, b)
    if is_float:
        nan = np.isnan(a) | np.isnan(b)
        if op.endswith("u"):
            r = r | nan
        elif op == "ne":
            r = r & ~nan
    return r


def _parse_cmp(ctx: Ctx, ins):
    ts = ctx.types(ins)
    cmp_ops = [m for m in ins.mods if m in _FLT_CMP | _INT_CMP]
    bool_ops = [m for m in ins.mods if m in _BOOL]
    if len(cmp_ops) != 1:
        raise ctx.error(f"{ins.opcode} needs one comparison operator")
    return ts, cmp_ops[0], bool_ops[0] if bool_ops else None


@family("setp")
def build_setp(ctx: Ctx, ins):
    ts, op, bop = _parse_cmp(ctx, ins)
    if len(ts) != 1:
        raise ctx.error("setp needs one source type")
    t = ts[0]
    ctx.check_mods(ins, _FLT_CMP | _INT_CMP | set(_BOOL) | {"ftz"})
    is_float = t.kind == "f" or t.name in ("f16x2", "bf16x2")
    if is_float and op not in _FLT_CMP or not is_float and op not in _INT_CMP:
        raise ctx.error(f"setp.{op} does not apply to .{t.name}")
    if not is_float and t.kind == "b" and op not in ("eq", "ne"):
        raise ctx.error(f"setp.{op}.{t.name}: bit types compare for equality only")
    ctx.nops(ins, 4 if bop else 3)
    pred = TYPES["pred"]
    d = ins.operands[0]
    p, q = (d.first, d.second) if isinstance(d, Pair) else (d, None)
    wp = ctx.wr(p, pred)
    wq = ctx.wr(q, pred) if q is not None else None
    a, b = ctx.rd(ins.operands[1], t), ctx.rd(ins.operands[2], t)
    c = ctx.rd(ins.operands[3], pred) if bop else None
    comb = _BOOL[bop] if bop else None
    ftz = "ftz" in ins.mods
    pair = t.name in ("f16x2", "bf16x2")
    if pair and q is None:
        raise ctx.error(f"setp.{t.name} needs two destinations p|q")
    flt = is_float and (t.name not in ("f32", "f64") or ftz)

    def vals(s, i):
        x, y = a(s, i), b(s, i)
        if flt:
            xs, ys = unpack(t, x), unpack(t, y)
            if ftz:
                from .ops_float import _flush
                xs = [_flush("f32", v) for v in xs]
                ys = [_flush("f32", v) for v in ys]
            return xs, ys
        return [x], [y]

    def run(s, i):
        xs, ys = vals(s, i)
        r = [compare(op, x, y, is_float) for x, y in zip(xs, ys)]
        if pair:
            r1, r2 = r
            if comb is not None:
                cc = c(s, i)
                r1, r2 = comb(r1, cc), comb(r2, cc)
            wp(s, i, r1)
            wq(s, i, r2)
            return
        r0 = r[0]
        if comb is not None:
            cc = c(s, i)
            wp(s, i, comb(r0, cc))
            if wq is not None:
                wq(s, i, comb(~r0, cc))
        else:
            wp(s, i, r0)
            if wq is not None:
                wq(s, i, ~r0)
    return run


@family("set")
def build_set(ctx: Ctx, ins):
    ts, op, bop = _parse_cmp(ctx, ins)
    if len(ts) != 2:
        raise ctx.error("set needs a destination and a source type")
    dt, t = ts
    if t.name in ("f16x2", "bf16x2") or dt.name in ("f16", "bf16"):
        return _set_half(ctx, ins, dt, t, op, bop)
    if dt.name not in ("u32", "s32", "f32"):
        raise ctx.error(f"set.{dt.name} is not supported")
    ctx.check_mods(ins, _FLT_CMP | _INT_CMP | set(_BOOL) | {"ftz"})
    is_float = t.kind == "f"
    ctx.nops(ins, 4 if bop else 3)
    a, b = ctx.rd(ins.operands[1], t), ctx.rd(ins.operands[2], t)
    c = ctx.rd(ins.operands[3], TYPES["pred"]) if bop else None
    w = ctx.wr(ins.operands[0], dt)
    comb = _BOOL[bop] if bop else None
    one = np.float32(1.0) if dt.name == "f32" else dt.dtype.type(-1 if dt.name == "s32" else 0xFFFFFFFF)
    zero = dt.dtype.type(0)

    def run(s, i):
        x, y = a(s, i), b(s, i)
        if is_float and t.name not in ("f32", "f64"):
            x, y = unpack(t, x)[0], unpack(t, y)[0]
        r = compare(op, x, y, is_float)
        if comb is not None:
            r = comb(r, c(s, i))
        w(s, i, np.where(r, one, zero).astype(dt.dtype))
    return run


# 1.0 in each 16-bit format
_HALF_ONE = {"f16": 0x3C00, "f16x2": 0x3C00, "bf16": 0x3F80, "bf16x2": 0x3F80}


def _set_half(ctx: Ctx, ins, dt, t, op: str, bop):
    """set with half-precision operands: per half (for .f16x2/.bf16x2 sources) 1.0 in the
    destination's format for true and 0.0 for false, or all ones / 0 for .u32/.s32 results."""
    pair = t.name in ("f16x2", "bf16x2")
    fmt = {"f16x2": "f16", "bf16x2": "bf16"}.get(t.name, t.name)
    if fmt not in ("f16", "bf16") or dt.name not in ("u32", "s32", "f16", "bf16", "f16x2", "bf16x2") \
            or (dt.name.endswith("x2") != pair and dt.name not in ("u32", "s32")):
        raise ctx.error(f"set.{dt.name}.{t.name} is not supported")
    ctx.check_mods(ins, _FLT_CMP | set(_BOOL) | {"ftz"})
    if "ftz" in ins.mods:
        raise ctx.error("set.ftz on half-precision operands is not supported")
    ctx.nops(ins, 4 if bop else 3)
    a, b = ctx.rd(ins.operands[1], t), ctx.rd(ins.operands[2], t)
    c = ctx.rd(ins.operands[3], TYPES["pred"]) if bop else None
    bits = TYPES["b32"] if dt.size == 4 else TYPES["b16"]
    w = ctx.wr(ins.operands[0], bits)                    # written as raw bits
    comb = _BOOL[bop] if bop else None
    one = 0xFFFF if dt.name in ("u32", "s32") else _HALF_ONE[dt.name]

    def run(s, i):
        xs, ys = unpack(t, a(s, i)), unpack(t, b(s, i))
        out = 0
        for k, (x, y) in enumerate(zip(xs, ys)):
            r = compare(op, x, y, True)
            if comb is not None:
                r = comb(r, c(s, i))
            out = out | (np.where(r, one, 0).astype(np.uint32) << np.uint32(16 * k))
        if not pair and dt.name in ("u32", "s32"):
            out = np.where(out != 0, np.uint32(0xFFFFFFFF), np.uint32(0))
        w(s, i, np.asarray(out).astype(bits.dtype))
    return run


@family("selp")
def build_selp(ctx: Ctx, ins):
    t = ctx.one_type(ins)
    ctx.check_mods(ins, set())
    ctx.nops(ins, 4)
    a, b = ctx.rd(ins.operands[1], t), ctx.rd(ins.operands[2], t)
    c = ctx.rd(ins.operands[3], TYPES["pred"])
    w = ctx.wr(ins.operands[0], t)
    return lambda s, i: w(s, i, np.where(c(s, i), a(s, i), b(s, i)).astype(t.dtype))


@family("slct")
def build_slct(ctx: Ctx, ins):
    ts = ctx.types(ins)
    if len(ts) != 2 or ts[1].name not in ("s32", "f32"):
        raise ctx.error("slct needs .dtype.s32 or .dtype.f32")
    ctx.check_mods(ins, {"ftz"})
    t, ct = ts
    ctx.nops(ins, 4)
    a, b = ctx.rd(ins.operands[1], t), ctx.rd(ins.operands[2], t)
    c = ctx.rd(ins.operands[3], ct)
    w = ctx.wr(ins.operands[0], t)
    return lambda s, i: w(s, i, np.where(np.asarray(c(s, i)) >= 0, a(s, i), b(s, i)).astype(t.dtype))
