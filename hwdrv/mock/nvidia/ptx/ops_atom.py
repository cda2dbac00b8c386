"""Atomics and reductions: atom / red on .global, .shared and generic addresses.

Lanes of one instruction that hit the same location are applied one after another in lane
order (a valid hardware serialisation), so ``atom`` returns to each lane the value its own
update saw."""
from __future__ import annotations

import numpy as np

from . import fpround as fr
from .decode import Ctx, family
from .ops_float import unpack, pack
from .ops_mem import get_space, space_of
from .types import UNSIGNED, PType

_OPS = {"add", "inc", "dec", "min", "max", "and", "or", "xor", "exch", "cas"}
_TYPES = {
    "add": {"u32", "s32", "u64", "f32", "f64", "f16", "f16x2", "bf16", "bf16x2"},
    "inc": {"u32"}, "dec": {"u32"},
    "min": {"u32", "s32", "u64", "s64"}, "max": {"u32", "s32", "u64", "s64"},
    "and": {"b32", "b64"}, "or": {"b32", "b64"}, "xor": {"b32", "b64"},
    "exch": {"b32", "b64"}, "cas": {"b16", "b32", "b64"},
}


def _apply_fn(op: str, t: PType):
    """new = f(old, b, c) on arrays of type t (all the same length)."""
    if op == "add":
        if t.name == "f32":
            # atom.add.f32 rounds to nearest even and flushes subnormal inputs and results.
            return lambda o, b, c: fr.ftz(fr.ftz(o) + fr.ftz(b))
        if t.kind == "f" or t.name in ("f16x2", "bf16x2"):
            if t.name == "f64":
                return lambda o, b, c: o + b
            fmt = "bf16" if t.name.startswith("bf16") else "f16"

            def addh(o, b, c):
                xo, xb = unpack(t, o), unpack(t, b)
                return pack(t, [np.asarray(fr.round_f64(p + q, fmt, "rn")) for p, q in zip(xo, xb)])
            return addh
        return lambda o, b, c: np.add(o, b, dtype=t.dtype)
    if op == "inc":
        return lambda o, b, c: np.where(o >= b, t.dtype.type(0), o + t.dtype.type(1))
    if op == "dec":
        return lambda o, b, c: np.where((o == 0) | (o > b), b, o - t.dtype.type(1))
    if op == "min":
        return lambda o, b, c: np.minimum(o, b)
    if op == "max":
        return lambda o, b, c: np.maximum(o, b)
    if op == "and":
        return lambda o, b, c: o & b
    if op == "or":
        return lambda o, b, c: o | b
    if op == "xor":
        return lambda o, b, c: o ^ b
    if op == "exch":
        return lambda o, b, c: b
    if op == "cas":
        return lambda o, b, c: np.where(o == b, c, o)
    raise AssertionError(op)


_UFUNC = {"min": np.minimum, "max": np.maximum, "and": np.bitwise_and, "or": np.bitwise_or,
          "xor": np.bitwise_xor}


def group_sequential(op: str, t: PType, fn, cur, b: np.ndarray, c: np.ndarray | None):
    """Apply lanes b[0], b[1], ... in order to one location holding ``cur``: returns the value
    each lane saw and the final value. Closed forms where the operation has one; else a loop."""
    n = len(b)
    if op in _UFUNC and t.kind in ("u", "s", "b"):
        acc = _UFUNC[op].accumulate(np.concatenate([np.array([cur], t.dtype), b]), dtype=t.dtype)
        return acc[:-1], acc[-1]
    if op == "add" and t.name in ("f32", "f64"):
        seq = np.concatenate([np.array([cur], t.dtype), b])
        acc = np.add.accumulate(seq, dtype=t.dtype)          # strictly sequential, one rounding each
        tiny = np.finfo(t.dtype).tiny
        if t.name == "f64" or not ((np.abs(seq) < tiny) & (seq != 0) | (np.abs(acc) < tiny) & (acc != 0)).any():
            return acc[:-1], acc[-1]
    if op == "exch":
        return np.concatenate([np.array([cur], t.dtype), b[:-1]]), b[-1]
    if op in ("inc", "dec") and (b == b[0]).all():
        m = int(b[0]) + 1                                     # values cycle modulo b + 1
        k = np.arange(n, dtype=np.int64)
        c0 = int(cur)
        if op == "inc":
            seq = (c0 + k) % m if c0 < m else np.where(k == 0, c0, (k - 1) % m)
            last = (c0 + n) % m if c0 < m else (n - 1) % m
        else:
            if c0 < m:                                        # c0, c0-1, ..., 0, b, b-1, ...
                seq, last = (c0 - k) % m, (c0 - n) % m
            else:                                             # first lane wraps to b
                seq = np.where(k == 0, c0, (m - 1 - (k - 1)) % m)
                last = (m - 1 - (n - 1)) % m
        return seq.astype(t.dtype), t.dtype.type(last)
    if op == "cas":
        olds = np.empty(n, t.dtype)
        k = 0
        while k < n:                                          # one pass per successful swap
            hit = np.flatnonzero(b[k:] == cur)
            end = n if hit.size == 0 else k + int(hit[0])
            olds[k:end] = cur
            if end == n:
                break
            olds[end] = cur
            cur = c[end]
            k = end + 1
        return olds, cur
    olds = np.empty(n, t.dtype)                               # general case: lane by lane
    cur = np.array([cur], t.dtype)
    cc = c if c is not None else b
    for k in range(n):
        olds[k] = cur[0]
        cur = np.asarray(fn(cur, b[k:k + 1], cc[k:k + 1]), t.dtype)
    return olds, cur[0]


def serial_rmw(keys: np.ndarray, cur_load, store, b: np.ndarray, c: np.ndarray | None, fn, op: str,
               t: PType, want_old: bool):
    """Apply ``fn`` lane by lane (lane order) to the locations named by ``keys``.

    ``cur_load(positions)`` loads the current values of the first lane of each distinct
    location (positions index the lane arrays); ``store(positions, values)`` writes them back."""
    n = len(keys)
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    first = np.ones(n, bool)
    first[1:] = sk[1:] != sk[:-1]
    starts = np.flatnonzero(first)
    gid = np.cumsum(first) - 1
    reps = order[starts]
    cur = np.array(cur_load(reps), copy=True)
    bs = b[order]
    cs = c[order] if c is not None else bs
    old_sorted = np.empty(n, t.dtype) if want_old else None
    sizes = np.diff(np.append(starts, n))
    R = int(sizes.max()) if n else 0
    int_add = op == "add" and t.kind in ("u", "s")
    if R <= 1:
        if want_old:
            old_sorted[:] = cur
        cur = fn(cur, bs, cs)
    elif int_add:
        # exclusive prefix sums within each group (modular integer arithmetic is exact)
        csum = np.cumsum(bs, dtype=t.dtype)
        base = csum[starts] - bs[starts]
        incl = csum - base[gid]
        if want_old:
            old_sorted[:] = cur[gid] + (incl - bs)
        cur = cur + incl[np.append(starts[1:], n) - 1]
    elif R > 8 and len(starts) < R:
        # few locations, many lanes each: one vectorised pass per location
        for g, (s0, sz) in enumerate(zip(starts, sizes)):
            c_seg = cs[s0:s0 + sz] if c is not None else None
            olds, cur[g] = group_sequential(op, t, fn, cur[g], bs[s0:s0 + sz], c_seg)
            if want_old:
                old_sorted[s0:s0 + sz] = olds
    else:
        # many locations, few lanes each: round r applies every location's r-th lane
        rank = np.arange(n) - starts[gid]
        by_rank = np.argsort(rank, kind="stable")
        counts = np.bincount(rank, minlength=R)
        pos = 0
        for r in range(R):
            sel = by_rank[pos:pos + counts[r]]
            pos += counts[r]
            g = gid[sel]
            if want_old:
                old_sorted[sel] = cur[g]
            cur[g] = fn(cur[g], bs[sel], cs[sel])
    store(reps, cur)
    if not want_old:
        return None
    old = np.empty(n, t.dtype)
    old[order] = old_sorted
    return old


@family("atom", "red")
def build_atom(ctx: Ctx, ins):
    is_atom = ins.opcode == "atom"
    space = space_of(ctx, ins)
    if space not in ("global", "shared", "generic"):
        raise ctx.error(f"{ins.opcode}.{space} is not supported")
    ops = [m for m in ins.mods if m in _OPS]
    if len(ops) != 1:
        raise ctx.error(f"{ins.opcode} needs one operation of {sorted(_OPS)}")
    op = ops[0]
    ctx.check_mods(ins, _OPS | {"global", "shared", "shared::cta", "noftz"})
    t = ctx.one_type(ins)
    names = _TYPES[op]
    if t.name not in names:
        # .b32/.u32/.s32 are interchangeable for the bitwise ops and exch/cas
        alias = {"u32": "b32", "s32": "b32", "u64": "b64", "s64": "b64"}.get(t.name)
        if alias in names:
            from .types import ptype
            t = ptype(alias)
        else:
            raise ctx.error(f"{ins.opcode}.{op}.{t.name} is not supported")
    nsrc = 2 if op == "cas" else 1
    ctx.nops(ins, (2 if is_atom else 1) + nsrc)
    k = 1 if is_atom else 0
    w = ctx.wr(ins.operands[0], t) if is_atom else None
    addr = ctx.addr(ins.operands[k], space)
    rb = ctx.rd(ins.operands[k + 1], t)
    rc = ctx.rd(ins.operands[k + 2], t) if op == "cas" else None
    fn = _apply_fn(op, t)
    raw = UNSIGNED[t.size] if t.name in ("bf16",) else t.dtype

    def run(s, i):
        sp = get_space(s, space)
        n = s.L if i is None else len(i)
        lanes = np.arange(s.L) if i is None else i
        ad = np.ascontiguousarray(np.broadcast_to(np.asarray(addr(s, i), np.uint64), (n,)))
        b = np.ascontiguousarray(np.broadcast_to(np.asarray(rb(s, i), t.dtype), (n,)))
        c = np.ascontiguousarray(np.broadcast_to(np.asarray(rc(s, i), t.dtype), (n,))) if rc else None
        keys = sp.key(ad, lanes)

        def load(pos):
            return sp.load(ad[pos], lanes[pos], raw, "atomic").view(t.dtype)

        def store(pos, vals):
            sp.store(ad[pos], lanes[pos], np.asarray(vals, t.dtype).view(raw), "atomic")

        old = serial_rmw(keys, load, store, b, c, fn, op, t, is_atom)
        if is_atom:
            w(s, i, old)
    return run
