"""Memory instructions: ld, ldu, st (scalar and .v2/.v4, every state space, generic addressing),
cp.async (performed synchronously), prefetch."""
from __future__ import annotations

import numpy as np

from .ast import Vec
from .decode import Ctx, family
from .memory import check_aligned
from .types import TYPES, UNSIGNED

SPACE_MODS = {"global": "global", "shared": "shared", "shared::cta": "shared", "shared::cluster": "shared",
              "local": "local", "param": "param", "param::entry": "param", "const": "const"}


def space_of(ctx: Ctx, ins) -> str:
    # .shared::cluster addresses may name another CTA of the cluster (memory.ClusterSharedSpace)
    sp = [SPACE_MODS[m] for m in ins.mods if m in SPACE_MODS]
    if len(sp) > 1:
        raise ctx.error("more than one state space")
    return sp[0] if sp else "generic"


def get_space(s, space: str):
    return s.const(3) if space == "const" else s.space(space)


def lanes_of(s, i):
    """The lane indices an instruction runs on."""
    return np.arange(s.L) if i is None else i


def vec_width(ctx: Ctx, ins) -> int:
    v = [m for m in ins.mods if m in ("v2", "v4", "v8")]
    if not v:
        return 1
    if v[0] == "v8":
        raise ctx.error(".v8 accesses are not supported")
    return int(v[0][1:])


def _expand(addrs, lanes, nv: int, size: int):
    """Per-lane base addresses -> per-element addresses (lane-major) and their lanes."""
    if nv == 1:
        return addrs, lanes
    a = (addrs[:, None] + (np.arange(nv, dtype=np.uint64) * np.uint64(size))[None, :]).ravel()
    return a, np.repeat(lanes, nv)


@family("ld", "ldu")
def build_ld(ctx: Ctx, ins):
    space = space_of(ctx, ins)
    ctx.check_mods(ins, set(SPACE_MODS) | {"v2", "v4"})
    if "nc" in ins.mods and space != "global":
        raise ctx.error("ld.nc is for .global only")
    if space == "param" and ctx.syms.is_call_slot(ins.operands[1] if len(ins.operands) > 1 else None):
        space = "local"
    t = ctx.one_type(ins)
    if t.kind == "p":
        raise ctx.error("ld.pred does not exist")
    nv = vec_width(ctx, ins)
    if len(ins.operands) not in (2, 3):
        raise ctx.error("ld takes a destination and an address (and optionally a cache policy)")
    d, a = ins.operands[0], ins.operands[1]
    if nv > 1:
        if not isinstance(d, Vec) or len(d.items) != nv:
            raise ctx.error(f"ld.v{nv} needs a {{{nv} registers}} destination")
        ws = [ctx.wr(x, t) for x in d.items]
    else:
        if isinstance(d, Vec):
            raise ctx.error("vector destination without .v2/.v4")
        ws = [ctx.wr(d, t)]
    addr = ctx.addr(a, "generic" if space == "generic" else ("const" if space == "const" else space))
    raw = UNSIGNED[t.size] if t.name == "bf16" else t.dtype
    size = t.size
    uniform_ok = space in ("param", "const", "global")

    def run(s, i):
        sp = get_space(s, space)
        ad = addr(s, i)
        if np.ndim(ad) == 0 and uniform_ok:
            # One address for every lane: read once and broadcast (kernel parameters).
            a1 = np.array([ad], np.uint64)
            check_aligned(a1, size * nv, None if i is None else i[:1], sp.name, "read")
            a1, _ = _expand(a1, None, nv, size)
            vals = sp.load(a1, None if i is None else np.repeat(i[:1], nv), raw)
            for k, w in enumerate(ws):
                w(s, i, vals[k].view(t.dtype) if raw != t.dtype else vals[k])
            return
        lanes = lanes_of(s, i)
        n = s.L if i is None else len(i)
        ad = np.broadcast_to(np.asarray(ad, np.uint64), (n,))
        if nv > 1:
            check_aligned(ad, size * nv, lanes, sp.name, "read")
        ea, el = _expand(ad, lanes, nv, size)
        vals = sp.load(ea, el if (i is not None or nv > 1) else None, raw)
        if nv == 1:
            ws[0](s, i, vals)
            return
        vals = vals.reshape(n, nv)
        for k, w in enumerate(ws):
            w(s, i, vals[:, k])
    return run


@family("st")
def build_st(ctx: Ctx, ins):
    space = space_of(ctx, ins)
    ctx.check_mods(ins, set(SPACE_MODS) | {"v2", "v4"})
    if space == "param" and ins.operands and ctx.syms.is_call_slot(ins.operands[0]):
        space = "local"
    if space in ("const", "param"):
        raise ctx.error(f"st.{space}: that state space is read-only for a kernel")
    t = ctx.one_type(ins)
    if t.kind == "p":
        raise ctx.error("st.pred does not exist")
    nv = vec_width(ctx, ins)
    if len(ins.operands) not in (2, 3):
        raise ctx.error("st takes an address and a value")
    a, v = ins.operands[0], ins.operands[1]
    if nv > 1:
        if not isinstance(v, Vec) or len(v.items) != nv:
            raise ctx.error(f"st.v{nv} needs a {{{nv} values}} source")
        rs = [ctx.rd(x, t) for x in v.items]
    else:
        if isinstance(v, Vec):
            raise ctx.error("vector source without .v2/.v4")
        rs = [ctx.rd(v, t)]
    addr = ctx.addr(a, space)
    raw = UNSIGNED[t.size]
    size = t.size

    def run(s, i):
        sp = s.space(space)
        n = s.L if i is None else len(i)
        lanes = lanes_of(s, i)
        ad = np.broadcast_to(np.asarray(addr(s, i), np.uint64), (n,))
        vals = [np.broadcast_to(np.asarray(np.asarray(r(s, i)), t.dtype).view(raw), (n,)) for r in rs]
        if nv == 1:
            sp.store(ad, None if i is None else lanes, np.ascontiguousarray(vals[0]))
            return
        check_aligned(ad, size * nv, lanes, sp.name, "write")
        ea, el = _expand(ad, lanes, nv, size)
        sp.store(ea, el, np.stack(vals, axis=1).ravel())
    return run


@family("prefetch", "prefetchu")
def build_prefetch(ctx: Ctx, ins):
    # A cache hint: no architectural effect (and, like hardware, no fault on a bad address).
    return lambda s, i: None


@family("cp")
def build_cp_async(ctx: Ctx, ins):
    """cp.async.{ca,cg}.shared.global [dst], [src], size{, src_size}: done at once (the copy is
    complete before any later wait_group, which is all the program may rely on)."""
    if not ins.mods or ins.mods[0] != "async":
        raise ctx.error(f"cp.{'.'.join(ins.mods)} is not supported")
    rest = ins.mods[1:]
    if rest and rest[0] in ("commit_group", "wait_group", "wait_all"):
        return lambda s, i: None
    if rest and rest[0] == "mbarrier":
        from .ops_mbarrier import build_cp_async_arrive     # (ops_mbarrier imports this module)
        return build_cp_async_arrive(ctx, ins)
    if rest and rest[0] == "bulk":
        from .ops_mbarrier import build_cp_async_bulk     # (ops_mbarrier imports this module)
        return build_cp_async_bulk(ctx, ins)
    ctx.check_mods(ins, {"async", "shared", "global", "shared::cta"})
    if len(ins.operands) not in (3, 4):
        raise ctx.error("cp.async takes [dst], [src], size[, src_size]")
    from .ast import Imm
    if not isinstance(ins.operands[2], Imm) or ins.operands[2].value not in (4, 8, 16):
        raise ctx.error("cp.async size must be 4, 8 or 16")
    size = ins.operands[2].value
    dst = ctx.addr(ins.operands[0], "shared")
    src = ctx.addr(ins.operands[1], "global")
    srcsize = ctx.rd(ins.operands[3], TYPES["u32"]) if len(ins.operands) == 4 else None
    nw = size // 4

    def run(s, i):
        n = s.L if i is None else len(i)
        lanes = lanes_of(s, i)
        d = np.broadcast_to(np.asarray(dst(s, i), np.uint64), (n,))
        a = np.broadcast_to(np.asarray(src(s, i), np.uint64), (n,))
        check_aligned(d, size, lanes, "shared", "write")
        check_aligned(a, size, lanes, "global", "read")
        ea, el = _expand(a, lanes, nw, 4)
        words = s.global_.load(ea, el, np.uint32).reshape(n, nw)
        if srcsize is not None:
            ss = np.broadcast_to(np.asarray(srcsize(s, i), np.int64), (n,))
            byte = np.arange(size).reshape(1, size)
            b = words.view(np.uint8).reshape(n, size)
            b = np.where(byte < ss[:, None], b, 0).astype(np.uint8)
            words = b.view(np.uint32).reshape(n, nw)
        ed, eld = _expand(d, lanes, nw, 4)
        s.shared.store(ed, eld, np.ascontiguousarray(words).ravel())
    return run
