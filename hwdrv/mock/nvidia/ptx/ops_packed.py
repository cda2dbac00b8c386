"""Packed 16-bit integer arithmetic (add/sub/min/max .u16x2/.s16x2, sm_90), fns (find the n-th
set bit), bmsk, and pmevent. Semantics as the PTX ISA's pseudocode gives them."""
from __future__ import annotations

import numpy as np

from .decode import Ctx, family
from .types import TYPES

_U32 = np.uint32
PACKED = {"u16x2": np.uint16, "s16x2": np.int16}


def build_packed16(ctx: Ctx, ins, op: str):
    """``op.{u16x2,s16x2} d, a, b``: the two 16-bit halves computed separately (add/sub wrap;
    min/max compare as the type says; .relu on signed min/max clamps negative halves to 0)."""
    kinds = [m for m in ins.mods if m in PACKED]
    extra = set(ins.mods) - set(kinds) - {"relu"}
    if len(kinds) != 1 or extra or ("relu" in ins.mods and (op not in ("min", "max") or kinds[0] != "s16x2")):
        raise ctx.error(f"{op}.{'.'.join(ins.mods)} is not supported")
    if op not in ("add", "sub", "min", "max"):
        raise ctx.error(f"{op}.{kinds[0]} does not exist")
    ctx.nops(ins, 3)
    dt, relu = PACKED[kinds[0]], "relu" in ins.mods
    w = ctx.wr(ins.operands[0], TYPES["b32"])
    ra, rb = (ctx.rd(o, TYPES["b32"]) for o in ins.operands[1:])

    def halves(v):
        v = np.asarray(v, _U32)
        return np.stack([(v & _U32(0xFFFF)).astype(np.uint16), (v >> _U32(16)).astype(np.uint16)]).view(dt)

    def run(s, i):
        a, b = np.broadcast_arrays(halves(ra(s, i)), halves(rb(s, i)))
        a64, b64 = a.astype(np.int64), b.astype(np.int64)
        r = {"add": a64 + b64, "sub": a64 - b64, "min": np.minimum(a64, b64), "max": np.maximum(a64, b64)}[op]
        if relu:
            r = np.maximum(r, 0)
        r = (r & 0xFFFF).astype(_U32)
        w(s, i, r[0] | (r[1] << _U32(16)))
    return run


@family("fns")
def build_fns(ctx: Ctx, ins):
    """fns.b32 d, mask, base, offset: the position of the |offset|-th set bit of mask counting
    from bit ``base`` up (offset > 0) or down (offset < 0); offset 0 tests bit ``base`` alone;
    0xffffffff when there is none."""
    if list(ins.mods) != ["b32"]:
        raise ctx.error("fns takes .b32")
    ctx.nops(ins, 4)
    w = ctx.wr(ins.operands[0], TYPES["b32"])
    rm, rb, ro = ctx.rd(ins.operands[1], TYPES["b32"]), ctx.rd(ins.operands[2], TYPES["u32"]), ctx.rd(ins.operands[3], TYPES["s32"])
    pos = np.arange(32, dtype=np.int64)

    def run(s, i):
        m, base, off = (np.asarray(x).astype(np.int64) for x in (rm(s, i), rb(s, i), ro(s, i)))
        m, base, off = np.broadcast_arrays(m, base, off)
        bits = (m[..., None] >> pos) & 1                                        # (n, 32)
        up = (pos >= base[..., None]) & (off[..., None] > 0)
        down = (pos <= base[..., None]) & (off[..., None] < 0)
        # rank of each set bit in the search direction (1 = first met from base)
        rank_up = np.cumsum(bits * up, axis=-1)
        rank_down = np.cumsum((bits * down)[..., ::-1], axis=-1)[..., ::-1]
        want = np.abs(off)[..., None]
        hit = (bits == 1) & ((up & (rank_up == want)) | (down & (rank_down == want)))
        found = hit.any(axis=-1)
        r = np.where(found, np.argmax(hit, axis=-1), 0xFFFFFFFF)
        zero = off == 0
        at_base = ((m >> np.clip(base, 0, 31)) & 1) == 1
        r = np.where(zero, np.where(at_base, base, 0xFFFFFFFF), r)
        w(s, i, r.astype(np.uint64).astype(_U32))
    return run


@family("bmsk")
def build_bmsk(ctx: Ctx, ins):
    """bmsk.{clamp,wrap}.b32 d, a, b: a mask of b ones starting at bit a."""
    modes = [m for m in ins.mods if m in ("clamp", "wrap")]
    if len(modes) != 1 or set(ins.mods) != {modes[0], "b32"}:
        raise ctx.error("bmsk needs .clamp or .wrap and .b32")
    ctx.nops(ins, 3)
    clamp = modes[0] == "clamp"
    w = ctx.wr(ins.operands[0], TYPES["b32"])
    ra, rb = ctx.rd(ins.operands[1], TYPES["u32"]), ctx.rd(ins.operands[2], TYPES["u32"])

    def run(s, i):
        a, b = np.broadcast_arrays(np.asarray(ra(s, i)).astype(np.int64), np.asarray(rb(s, i)).astype(np.int64))
        a1, b1 = a & 31, b & 31
        full = np.int64(0xFFFFFFFF)
        mask0 = (full << a1) & full
        total = a1 + b1
        mask1 = (full << np.minimum(total, 32)) & full
        bad = total >= 32
        if clamp:
            mask0 = np.where(a >= 32, 0, mask0)
            bad = bad | (a >= 32) | (b >= 32)
        mask1 = np.where(bad, 0, np.where(b1 == 0, full, mask1))
        w(s, i, (mask0 & ~mask1 & full).astype(_U32))
    return run


@family("pmevent")
def build_pmevent(ctx: Ctx, ins):
    # Signals a performance-monitor event: counters the mock does not have; no other effect.
    if set(ins.mods) - {"mask"}:
        raise ctx.error(f"pmevent.{'.'.join(ins.mods)} is not supported")
    ctx.nops(ins, 1)
    return lambda s, i: None


_VOPS = {"vadd": lambda a, b: a + b, "vsub": lambda a, b: a - b, "vavrg": lambda a, b: (a + b + 1) >> 1,
         "vabsdiff": lambda a, b: np.abs(a - b), "vmin": np.minimum, "vmax": np.maximum}


@family(*[f"{op}{n}" for op in _VOPS for n in (2, 4)])
def build_video_simd(ctx: Ctx, ins):
    """vop4 / vop2 (vadd, vsub, vavrg, vabsdiff, vmin, vmax on 4 bytes or 2 halves):
    ``vop.dtype.atype.btype{.sat} d, a, b, c`` gives each element's result (clamped to the
    destination type's element range with .sat, else its low bits); ``.add`` instead gives c plus
    the sum of the element results. Elements are sign- or zero-extended as a's and b's types
    say. Only the default selectors and mask (all elements, in order) are supported."""
    op, n = ins.opcode[:-1], int(ins.opcode[-1])
    types = [m for m in ins.mods if m in ("u32", "s32")]
    extra = set(ins.mods) - {"u32", "s32", "sat", "add"}
    if len(types) != 3 or extra or ("sat" in ins.mods and "add" in ins.mods):
        raise ctx.error(f"{ins.opcode} needs .dtype.atype.btype (.u32/.s32) and optionally .sat or .add")
    ctx.nops(ins, 4)
    dsigned, asigned, bsigned = (t == "s32" for t in types)
    w = ctx.wr(ins.operands[0], TYPES["b32"])
    ra, rb, rc = (ctx.rd(o, TYPES["b32"]) for o in ins.operands[1:])
    bits = 32 // n
    sat, acc, f = "sat" in ins.mods, "add" in ins.mods, _VOPS[op]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if dsigned else (0, (1 << bits) - 1)

    def elements(v, signed):
        v = np.asarray(v).astype(np.int64) & 0xFFFFFFFF
        e = np.stack([(v >> (bits * k)) & ((1 << bits) - 1) for k in range(n)])
        return np.where(e >= 1 << (bits - 1), e - (1 << bits), e) if signed else e

    def run(s, i):
        a, b = elements(ra(s, i), asigned), elements(rb(s, i), bsigned)
        r = f(a, b)
        c = np.asarray(rc(s, i)).astype(np.int64)
        if acc:
            out = c + r.sum(axis=0)
        else:
            if sat:
                r = np.clip(r, lo, hi)
            r = r & ((1 << bits) - 1)
            out = sum(r[k] << (bits * k) for k in range(n))
        w(s, i, (np.asarray(out) & 0xFFFFFFFF).astype(np.uint32))
    return run
