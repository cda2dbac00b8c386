"""Warp- and CTA-level instructions: shfl.sync, vote.sync, activemask, match.sync, redux.sync,
elect.sync, bar/barrier (sync, arrive, red), bar.warp.sync, membar/fence, nanosleep.

Lanes of a chunk are warp-aligned (warp w = lanes 32w..32w+31), so warp-wide operations work on
(warps, 32) grids. Barriers need no waiting: the executor runs a CTA's lanes in lock step at the
lowest pending PC, so every live thread of the CTA arrives before any passes."""
from __future__ import annotations

import numpy as np

from .ast import Pair
from .errors import IllegalInstruction
from .decode import Ctx, family
from .types import TYPES

U32 = np.uint32


def executing_grid(s, i) -> np.ndarray:
    """(warps, 32) bool: which lanes execute this instruction."""
    ex = np.zeros(s.L, bool)
    if i is None:
        ex[:] = True
    else:
        ex[i] = True
    return ex.reshape(-1, 32)


def full(s, i, v, dtype) -> np.ndarray:
    """A per-lane operand value as a full-length array (non-executing lanes: their register)."""
    v = np.asarray(v)
    if v.ndim == 0:
        return np.full(s.L, v, dtype)
    if i is None:
        return v
    out = np.zeros(s.L, dtype)
    out[i] = v
    return out


def lane_bits() -> np.ndarray:
    return (np.uint64(1) << np.arange(32, dtype=np.uint64)).astype(U32)


@family("shfl")
def build_shfl(ctx: Ctx, ins):
    modes = [m for m in ins.mods if m in ("up", "down", "bfly", "idx")]
    if "sync" not in ins.mods:
        raise ctx.error("shfl without .sync is not supported on sm_90")
    if len(modes) != 1:
        raise ctx.error("shfl needs one of .up .down .bfly .idx")
    ctx.check_mods(ins, {"up", "down", "bfly", "idx"})
    mode = modes[0]
    t = ctx.one_type(ins, {"b32"})
    ctx.nops(ins, 5)
    d = ins.operands[0]
    dreg, preg = (d.first, d.second) if isinstance(d, Pair) else (d, None)
    w = ctx.wr(dreg, t)
    wp = ctx.wr(preg, TYPES["pred"]) if preg is not None else None
    src = ins.operands[1]
    u32 = TYPES["u32"]
    ra_full = ctx.rd(src, t)
    rb, rc = ctx.rd(ins.operands[2], u32), ctx.rd(ins.operands[3], u32)

    def run(s, i):
        lane = (s.geo("laneid") if i is None else s.geo("laneid")[i]).astype(np.int64)
        gl = np.arange(s.L) if i is None else i
        b = np.asarray(rb(s, i)).astype(np.int64) & 31
        c = np.asarray(rc(s, i)).astype(np.int64)
        cval, seg = c & 31, (c >> 8) & 31
        max_lane = (lane & seg) | (cval & ~seg)
        min_lane = lane & seg
        if mode == "up":
            j = lane - b
            ok = j >= max_lane
        elif mode == "down":
            j = lane + b
            ok = j <= max_lane
        elif mode == "bfly":
            j = lane ^ b
            ok = j <= max_lane
        else:
            j = min_lane | (b & ~seg)
            ok = j <= max_lane
        j = np.where(ok, j, lane)
        a = ra_full(s, None)
        val = np.asarray(a)[gl - lane + j] if np.ndim(a) else a
        w(s, i, val)
        if wp is not None:
            wp(s, i, ok)
    return run


@family("vote")
def build_vote(ctx: Ctx, ins):
    modes = [m for m in ins.mods if m in ("all", "any", "uni", "ballot")]
    if "sync" not in ins.mods:
        raise ctx.error("vote without .sync is not supported on sm_90")
    if len(modes) != 1:
        raise ctx.error("vote needs one of .all .any .uni .ballot")
    ctx.check_mods(ins, {"all", "any", "uni", "ballot"})
    mode = modes[0]
    ctx.nops(ins, 3)
    pred = TYPES["pred"]
    w = ctx.wr(ins.operands[0], TYPES["b32"] if mode == "ballot" else pred)
    rp = ctx.rd(ins.operands[1], pred)
    rm = ctx.rd(ins.operands[2], TYPES["u32"])

    def run(s, i):
        ex = executing_grid(s, i)
        mask = full(s, i, rm(s, i), U32).reshape(-1, 32)
        inmask = (mask[:, :1] >> np.arange(32, dtype=U32)[None, :]) & U32(1)
        part = ex & (inmask != 0)
        p = full(s, i, rp(s, i), bool).reshape(-1, 32) & part
        ntrue = p.sum(axis=1)
        npart = part.sum(axis=1)
        if mode == "ballot":
            per_warp = (p * lane_bits()[None, :]).sum(axis=1, dtype=np.uint64).astype(U32)
        elif mode == "all":
            per_warp = ntrue == npart
        elif mode == "any":
            per_warp = ntrue > 0
        else:
            per_warp = (ntrue == 0) | (ntrue == npart)
        r = np.repeat(per_warp, 32)
        w(s, i, r if i is None else r[i])
    return run


@family("activemask")
def build_activemask(ctx: Ctx, ins):
    ctx.one_type(ins, {"b32"})
    ctx.nops(ins, 1)
    w = ctx.wr(ins.operands[0], TYPES["b32"])

    def run(s, i):
        ex = executing_grid(s, i)
        m = (ex * lane_bits()[None, :]).sum(axis=1, dtype=np.uint64).astype(U32)
        r = np.repeat(m, 32)
        w(s, i, r if i is None else r[i])
    return run


@family("match")
def build_match(ctx: Ctx, ins):
    modes = [m for m in ins.mods if m in ("any", "all")]
    if len(modes) != 1 or "sync" not in ins.mods:
        raise ctx.error("match needs .any or .all and .sync")
    ctx.check_mods(ins, {"any", "all"})
    t = ctx.one_type(ins, {"b32", "b64"})
    ctx.nops(ins, 3)
    d = ins.operands[0]
    dreg, preg = (d.first, d.second) if isinstance(d, Pair) else (d, None)
    if preg is not None and modes[0] == "any":
        raise ctx.error("match.any has no predicate destination")
    w = ctx.wr(dreg, TYPES["b32"])
    wp = ctx.wr(preg, TYPES["pred"]) if preg is not None else None
    ra = ctx.rd(ins.operands[1], t)
    rm = ctx.rd(ins.operands[2], TYPES["u32"])

    def run(s, i):
        ex = executing_grid(s, i)
        mask = full(s, i, rm(s, i), U32).reshape(-1, 32)
        inmask = ((mask[:, :1] >> np.arange(32, dtype=U32)[None, :]) & U32(1)) != 0
        part = ex & inmask
        v = full(s, i, ra(s, i), t.dtype).reshape(-1, 32)
        eq = (v[:, :, None] == v[:, None, :]) & part[:, None, :]
        bits = (eq * lane_bits()[None, None, :]).sum(axis=2, dtype=np.uint64).astype(U32)   # (warps, 32)
        if modes[0] == "all":
            allm = (part * lane_bits()[None, :]).sum(axis=1, dtype=np.uint64).astype(U32)
            same = bits == allm[:, None]
            res = np.where(same, bits, U32(0)).ravel()
            if wp is not None:
                wp(s, i, same.ravel() if i is None else same.ravel()[i])
        else:
            res = bits.ravel()
        w(s, i, res if i is None else res[i])
    return run


@family("redux")
def build_redux(ctx: Ctx, ins):
    ops = [m for m in ins.mods if m in ("add", "min", "max", "and", "or", "xor")]
    if len(ops) != 1 or "sync" not in ins.mods:
        raise ctx.error("redux.sync needs one of .add .min .max .and .or .xor")
    ctx.check_mods(ins, {"add", "min", "max", "and", "or", "xor"})
    op = ops[0]
    t = ctx.one_type(ins, {"u32", "s32", "b32"})
    ctx.nops(ins, 3)
    w = ctx.wr(ins.operands[0], t)
    ra = ctx.rd(ins.operands[1], t)
    rm = ctx.rd(ins.operands[2], TYPES["u32"])

    def run(s, i):
        ex = executing_grid(s, i)
        mask = full(s, i, rm(s, i), U32).reshape(-1, 32)
        inmask = ((mask[:, :1] >> np.arange(32, dtype=U32)[None, :]) & U32(1)) != 0
        part = ex & inmask
        v = full(s, i, ra(s, i), t.dtype).reshape(-1, 32)
        info = np.iinfo(t.dtype)
        ident = {"add": 0, "min": info.max, "max": info.min, "and": info.max if t.kind != "s" else -1,
                 "or": 0, "xor": 0}[op]
        v = np.where(part, v, t.dtype.type(ident))
        f = {"add": np.add, "min": np.minimum, "max": np.maximum, "and": np.bitwise_and,
             "or": np.bitwise_or, "xor": np.bitwise_xor}[op]
        r = np.repeat(f.reduce(v, axis=1, dtype=t.dtype), 32)
        w(s, i, r if i is None else r[i])
    return run


@family("elect")
def build_elect(ctx: Ctx, ins):
    if "sync" not in ins.mods:
        raise ctx.error("elect needs .sync")
    ctx.check_mods(ins, set())
    ctx.nops(ins, 2)
    d = ins.operands[0]
    dreg, preg = (d.first, d.second) if isinstance(d, Pair) else (d, None)
    w = ctx.wr(dreg, TYPES["b32"])
    wp = ctx.wr(preg, TYPES["pred"]) if preg is not None else None
    rm = ctx.rd(ins.operands[1], TYPES["u32"])

    def run(s, i):
        ex = executing_grid(s, i)
        mask = full(s, i, rm(s, i), U32).reshape(-1, 32)
        inmask = ((mask[:, :1] >> np.arange(32, dtype=U32)[None, :]) & U32(1)) != 0
        part = ex & inmask
        leader = np.where(part.any(axis=1), np.argmax(part, axis=1), 0).astype(U32)
        lead = np.repeat(leader, 32)
        me = s.geo("laneid") == lead
        w(s, i, lead if i is None else lead[i])
        if wp is not None:
            isl = me & np.repeat(part.any(axis=1), 32)
            wp(s, i, isl if i is None else isl[i])
    return run


@family("bar", "barrier")
def build_bar(ctx: Ctx, ins):
    mods = set(ins.mods)
    if "warp" in mods:                                   # bar.warp.sync: lanes already in step
        ctx.check_mods(ins, {"warp"})
        return lambda s, i: None
    if "red" in mods:
        return _bar_red(ctx, ins)
    if "cluster" in mods:
        # barrier.cluster.arrive / .wait: a chunk runs whole clusters in lock step, so every
        # thread of the cluster has arrived by the time any thread waits
        if ins.opcode != "barrier" or not mods & {"arrive", "wait"} or ins.operands or \
                mods - {"cluster", "arrive", "wait", "aligned", "relaxed", "release", "acquire"}:
            raise ctx.error("barrier.cluster takes .arrive or .wait (with .aligned, .relaxed, .release, .acquire)")
        return lambda s, i: None
    ctx.check_mods(ins, {"arrive", "cta"})
    if len(ins.operands) not in (1, 2):
        raise ctx.error(f"{ins.opcode} takes a barrier id and optionally a thread count")
    # bar.sync / barrier.sync / bar.arrive: satisfied by lock-step execution of the CTA.
    return lambda s, i: None


def _bar_red(ctx: Ctx, ins):
    ops = [m for m in ins.mods if m in ("popc", "and", "or")]
    if len(ops) != 1:
        raise ctx.error("bar.red needs .popc, .and or .or")
    ctx.check_mods(ins, {"red", "popc", "and", "or"})
    op = ops[0]
    t = TYPES["u32"] if op == "popc" else TYPES["pred"]
    if len(ins.operands) not in (3, 4):
        raise ctx.error("bar.red takes d, id, {count,} pred")
    w = ctx.wr(ins.operands[0], t)
    rp = ctx.rd(ins.operands[-1], TYPES["pred"])

    def run(s, i):
        lanes = np.arange(s.L) if i is None else i
        p = np.broadcast_to(np.asarray(rp(s, i), bool), (len(lanes),))
        cta = s.lane_cta[lanes]
        cnt = np.bincount(cta, weights=p, minlength=s.n_ctas).astype(np.int64)
        tot = np.bincount(cta, minlength=s.n_ctas)
        if op == "popc":
            r = cnt[cta].astype(np.uint32)
        elif op == "and":
            r = (cnt == tot)[cta]
        else:
            r = (cnt > 0)[cta]
        w(s, i, r)
    return run


@family("membar", "fence", "nanosleep")
def build_fence(ctx: Ctx, ins):
    # Memory ordering: every access here is performed in program order and immediately visible,
    # which satisfies every fence (proxy fences included: there is one proxy); nanosleep may
    # sleep for zero time.
    # fence.proxy.tensormap::generic.acquire orders a tensor-map object ([addr], 128) before
    # the tensor copies that use it: copies read the map from memory when they run.
    if ins.opcode == "nanosleep":
        ctx.nops(ins, 1)
    elif "proxy" in ins.mods and "tensormap::generic" in ins.mods and ins.operands:
        ctx.nops(ins, 2)
    elif ins.operands:
        raise ctx.error(f"{ins.opcode} takes no operands")
    return lambda s, i: None


@family("griddepcontrol")
def build_griddepcontrol(ctx: Ctx, ins):
    # Programmatic dependent launch: .wait waits until the grids this one depends on have
    # completed and flushed their memory, .launch_dependents lets dependents start early. The
    # mock runs one grid at a time, in order, so prerequisites are always complete: both are no-ops.
    if list(ins.mods) not in (["wait"], ["launch_dependents"]) or ins.operands:
        raise ctx.error("griddepcontrol takes .wait or .launch_dependents and no operands")
    return lambda s, i: None


@family("mapa")
def build_mapa(ctx: Ctx, ins):
    """mapa{.shared::cluster}.{u32,u64} d, a, rank: the address of the same shared variable in
    CTA ``rank`` of the cluster (generic addresses without a space; memory.ClusterSharedSpace
    gives the encoding). A CTA's own rank maps to its plain shared address."""
    from .memory import CLUSTER_RANK_SHIFT
    t = ctx.one_type(ins, {"u32", "u64"})
    generic = "shared::cluster" not in ins.mods
    ctx.check_mods(ins, {"shared::cluster"})
    ctx.nops(ins, 3)
    w = ctx.wr(ins.operands[0], t)
    ra, rr = ctx.rd(ins.operands[1], t), ctx.rd(ins.operands[2], TYPES["u32"])
    low = np.uint64((1 << CLUSTER_RANK_SHIFT) - 1)
    line, text = ins.line, ins.text

    def run(s, i):
        a = np.asarray(ra(s, i)).astype(np.uint64)
        rank = np.asarray(rr(s, i)).astype(np.uint64)
        n = s.L if i is None else len(i)
        a, rank = np.broadcast_to(a, (n,)), np.broadcast_to(rank, (n,))
        base = np.uint64(s.cvta_base("shared"))             # the launch's generic shared base
        lo, hi = s.window("shared")
        off = a - base if generic else a
        if generic and ((a < np.uint64(lo)) | (a >= np.uint64(hi))).any():
            raise IllegalInstruction("mapa of an address outside shared memory", text, line)
        if (rank >= np.uint64(s.cluster_size)).any():
            raise IllegalInstruction(f"mapa to a CTA rank beyond the cluster of {s.cluster_size}", text, line)
        own = s.geo("cluster_ctarank").astype(np.uint64)
        own = own if i is None else own[i]
        off = off & low
        r = np.where(rank == own, off, off | ((rank + np.uint64(1)) << np.uint64(CLUSTER_RANK_SHIFT)))
        w(s, i, (r + base if generic else r).astype(t.dtype))
    return run


@family("getctarank")
def build_getctarank(ctx: Ctx, ins):
    """getctarank{.shared::cluster}.u32 d, a: the cluster rank of the CTA whose shared memory
    ``a`` addresses."""
    from .memory import CLUSTER_RANK_SHIFT
    ctx.check_mods(ins, {"shared::cluster", "u32", "u64"})
    ctx.nops(ins, 2)
    w = ctx.wr(ins.operands[0], TYPES["u32"])
    generic = "shared::cluster" not in ins.mods
    ra = ctx.rd(ins.operands[1], TYPES["u64"] if generic else TYPES["u32"])

    def run(s, i):
        a = np.asarray(ra(s, i)).astype(np.uint64)
        if generic:
            a = a - np.uint64(s.cvta_base("shared"))
        field = (a >> np.uint64(CLUSTER_RANK_SHIFT)).astype(np.int64)
        own = s.geo("cluster_ctarank")
        own = own if i is None else own[i]
        w(s, i, np.where(field > 0, field - 1, own).astype(np.uint32))
    return run
