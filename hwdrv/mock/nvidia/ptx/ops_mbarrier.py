"""mbarrier: split arrive/wait barrier objects in shared memory (init, arrive, arrive_drop,
test_wait, try_wait, their .parity forms, expect_tx, complete_tx, inval) and the bulk copies
that complete transactions on them (cp.async.bulk; .tensor copies are in ops_tma.py).

The ISA makes the 64-bit object opaque; the mock keeps in it (bit fields of its own choosing)
the pending arrival count, the expected count and the phase number (its low 24 bits); the
transaction count is kept beside it. A phase completes when no arrival is pending and the transaction count is 0. The
state an arrive returns is the phase it arrived in; a wait on a state succeeds once that phase has completed, a wait on
a parity once the barrier's current phase has the other parity. Lanes run in lockstep, so every
lane executing one arrive arrives at once; a phase completes when its pending count reaches 0.
try_wait returns at once, as test_wait does; a lane whose wait failed yields to every other
lane of its chunk until some mbarrier changes (the executor's scheduler reads
State.mbarrier_waiting), so a consumer spinning on a barrier lets the producer run."""
from __future__ import annotations

import numpy as np

from .ast import Sink
from .decode import Ctx, family
from .errors import IllegalInstruction
from .memory import check_aligned
from .ops_mem import get_space, space_of
from .types import TYPES

# The 64-bit object, in fields of the mock's choosing: pending arrivals and expected arrivals
# (20 bits each: the ISA's counts go up to 2**20 - 1) and the phase number (its low 24 bits).
# The transaction count lives beside it (State.mbarrier_tx, keyed by the object's address):
# bulk copies complete as they are issued, so it may run far below 0 before the expect_tx that
# a GPU would have seen first, beyond what any bit field of the word could hold.
_COUNT_BITS = 20
_MASK = (1 << _COUNT_BITS) - 1
_PHASE_SHIFT = 2 * _COUNT_BITS
_PHASE_MASK = (1 << (64 - _PHASE_SHIFT)) - 1
_U64 = np.uint64


def _fields(word: np.ndarray):
    """(pending, expected, phase) of mbarrier words."""
    w = np.asarray(word).astype(np.uint64)
    return ((w & _U64(_MASK)).astype(np.int64), ((w >> _U64(_COUNT_BITS)) & _U64(_MASK)).astype(np.int64),
            (w >> _U64(_PHASE_SHIFT)).astype(np.int64))


def _word(pending, expected, phase) -> np.ndarray:
    u = np.uint64
    return (np.asarray(pending, np.int64).astype(u) | (np.asarray(expected, np.int64).astype(u) << u(_COUNT_BITS))
            | ((np.asarray(phase, np.int64) & _PHASE_MASK).astype(u) << u(_PHASE_SHIFT)))


def update(s, sp, lanes: np.ndarray, ad: np.ndarray, arrivals: np.ndarray, tx: np.ndarray, drop: bool, text: str,
           line: int) -> np.ndarray:
    """Apply to the mbarriers at ``ad`` (space ``sp``) what ``lanes`` do: ``arrivals`` each and a
    transaction-count change ``tx`` each (expect_tx adds, complete_tx subtracts); a phase
    completes when no arrival is pending and the transaction count is 0. Returns each lane's
    state (the phase it acted in). ``drop`` also lowers the expected count."""
    keys = sp.key(ad, lanes)
    uk, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    tot = np.bincount(inv, weights=arrivals, minlength=len(uk)).astype(np.int64)
    dtx = np.bincount(inv, weights=tx, minlength=len(uk)).astype(np.int64)
    pend, exp, phase = _fields(sp.load(ad[first], lanes[first], np.uint64))
    if (exp == 0).any():
        raise IllegalInstruction("mbarrier operation on an object that was not initialised", text, line)
    if drop:
        exp = exp - tot
    if (tot > pend).any():
        raise IllegalInstruction("mbarrier.arrive: more arrivals than the phase expects", text, line)
    token = phase[inv]
    pend = pend - tot
    txc = np.array([s.mbarrier_tx.get(int(k), 0) for k in uk.tolist()], np.int64) + dtx
    done = (pend == 0) & (txc == 0)
    phase = np.where(done, phase + 1, phase)
    pend = np.where(done, exp, pend)
    for k, v in zip(uk.tolist(), txc.tolist()):
        s.mbarrier_tx[int(k)] = v
    if s.mbarrier_waiting is not None:        # a barrier changed: waiting lanes may check again
        s.mbarrier_waiting[:] = False
    sp.store(ad[first], lanes[first], _word(pend, exp, phase))
    return token


def arrive(s, sp, lanes: np.ndarray, ad: np.ndarray, counts: np.ndarray, drop: bool, text: str,
           line: int) -> np.ndarray:
    """``lanes`` arrive (``counts`` each) on the mbarriers at ``ad``; returns their states."""
    return update(s, sp, lanes, ad, counts, np.zeros(len(lanes), np.int64), drop, text, line)


def build_cp_async_bulk(ctx: Ctx, ins):
    """cp.async.bulk (not .tensor): global -> shared::cluster with
    .mbarrier::complete_tx::bytes [dst], [src], size, [mbar] (the copy's bytes complete a
    transaction on the mbarrier), or shared::cta -> global with .bulk_group; and the group
    ops. Copies are done at once, so their completion is signalled at once."""
    mods = list(ins.mods)
    rest = mods[2:]
    if "tensor" in rest:
        from .ops_tma import build_tensor_copy      # (ops_tma imports this module)
        return build_tensor_copy(ctx, ins)
    if rest and rest[0] in ("commit_group", "wait_group", "wait_group.read") or rest[:1] == ["prefetch"]:
        return lambda s, i: None
    spaces = [m for m in rest if m in ("shared::cluster", "shared::cta", "global")]
    if spaces == ["shared::cluster", "global"] and "mbarrier::complete_tx::bytes" in rest:
        ctx.nops(ins, 4)
        dst, src, mbar = ctx.addr(ins.operands[0], "shared"), ctx.addr(ins.operands[1], "global"), \
            ctx.addr(ins.operands[3], "shared")
        to_shared = True
    elif spaces == ["global", "shared::cta"] and "bulk_group" in rest:
        ctx.nops(ins, 3)
        dst, src, mbar = ctx.addr(ins.operands[0], "global"), ctx.addr(ins.operands[1], "shared"), None
        to_shared = False
    else:
        raise ctx.error(f"cp.async.bulk.{'.'.join(rest)} is not supported")
    size = ctx.rd(ins.operands[2], TYPES["u32"])
    line, text = ins.line, ins.text

    def run(s, i):
        lanes = np.arange(s.L) if i is None else i
        n = len(lanes)
        d = np.broadcast_to(np.asarray(dst(s, i), np.uint64), (n,))
        a = np.broadcast_to(np.asarray(src(s, i), np.uint64), (n,))
        nb = np.broadcast_to(np.asarray(size(s, i)).astype(np.int64), (n,))
        if ((nb % 16) != 0).any():
            raise IllegalInstruction("cp.async.bulk size must be a multiple of 16", text, line)
        check_aligned(d, 16, lanes, "shared" if to_shared else "global", "write")
        check_aligned(a, 16, lanes, "global" if to_shared else "shared", "read")
        src_space, dst_space = (s.global_, s.shared) if to_shared else (s.shared, s.global_)
        for k in range(n):                       # usually one lane issues a bulk copy
            words = int(nb[k]) // 4
            if not words:
                continue
            offs = np.arange(words, dtype=np.uint64) * np.uint64(4)
            ln = np.full(words, lanes[k])
            dst_space.store(d[k] + offs, ln, src_space.load(a[k] + offs, ln, np.uint32))
        if mbar is not None:
            m = np.broadcast_to(np.asarray(mbar(s, i), np.uint64), (n,))
            check_aligned(m, 8, lanes, "shared", "read")
            update(s, s.shared, lanes, m, np.zeros(n, np.int64), -nb, False, text, line)
    return run


def build_cp_async_arrive(ctx: Ctx, ins):
    """cp.async.mbarrier.arrive{.noinc}{.shared}.b64 [mbar]: arrive once this thread's earlier
    cp.async copies are complete, which in the mock they already are. Without .noinc the
    pending count is first raised by one, so the arrival leaves the phase where it was."""
    mods = set(ins.mods) - {"async", "mbarrier", "arrive"}
    if not mods <= {"noinc", "shared", "shared::cta", "b64"}:
        raise ctx.error(f"cp.async.mbarrier.arrive modifiers {sorted(mods)} are not supported")
    ctx.nops(ins, 1)
    space = "shared" if {"shared", "shared::cta"} & mods else "generic"
    addr = ctx.addr(ins.operands[0], space)
    if "noinc" not in mods:
        return lambda s, i: None
    line, text = ins.line, ins.text

    def run(s, i):
        sp = get_space(s, space)
        lanes = np.arange(s.L) if i is None else i
        ad = np.broadcast_to(np.asarray(addr(s, i), np.uint64), (len(lanes),))
        check_aligned(ad, 8, lanes, sp.name, "read")
        arrive(s, sp, lanes, ad, np.ones(len(lanes), np.int64), False, text, line)
    return run


@family("mbarrier")
def build_mbarrier(ctx: Ctx, ins):
    mods = list(ins.mods)
    what = mods[0] if mods else ""
    space = space_of(ctx, ins)
    if space not in ("shared", "generic"):
        raise ctx.error(f"mbarrier objects live in shared memory, not .{space}")
    known = {"shared", "shared::cta", "shared::cluster", "b64", "release", "acquire", "relaxed", "cta", "cluster",
             "parity", "noComplete", "expect_tx"}
    extra = set(mods[1:]) - known
    if extra:
        raise ctx.error(f"mbarrier.{what} modifiers {sorted(extra)} are not supported")
    line, text = ins.line, ins.text

    def locate(s, i, addr):
        sp = get_space(s, space)
        lanes = np.arange(s.L) if i is None else i
        ad = np.broadcast_to(np.asarray(addr(s, i), np.uint64), (len(lanes),))
        check_aligned(ad, 8, lanes, sp.name, "read")
        return sp, lanes, ad

    if what == "init":
        ctx.nops(ins, 2)
        addr = ctx.addr(ins.operands[0], space)
        count = ctx.rd(ins.operands[1], TYPES["u32"])

        def run(s, i):
            sp, lanes, ad = locate(s, i, addr)
            n = np.broadcast_to(np.asarray(count(s, i), np.int64), (len(lanes),))
            if ((n < 1) | (n > _MASK >> 1)).any():
                raise IllegalInstruction(f"mbarrier.init count out of range 1..{_MASK >> 1}", text, line)
            sp.store(ad, lanes, _word(n, n, 0))
            for k in sp.key(ad, lanes).tolist():
                s.mbarrier_tx.pop(int(k), None)
        return run

    if what == "inval":
        ctx.nops(ins, 1)
        addr = ctx.addr(ins.operands[0], space)

        def run(s, i):
            sp, lanes, ad = locate(s, i, addr)
            sp.store(ad, lanes, np.zeros(len(lanes), np.uint64))
        return run

    if what in ("expect_tx", "complete_tx"):
        ctx.nops(ins, 2)
        addr = ctx.addr(ins.operands[0], space)
        cnt = ctx.rd(ins.operands[1], TYPES["u32"])
        sign = 1 if what == "expect_tx" else -1

        def run(s, i):
            sp, lanes, ad = locate(s, i, addr)
            tx = sign * np.broadcast_to(np.asarray(cnt(s, i), np.int64), (len(lanes),))
            update(s, sp, lanes, ad, np.zeros(len(lanes), np.int64), tx, False, text, line)
        return run

    if what in ("arrive", "arrive_drop"):
        if "noComplete" in mods:
            raise ctx.error("mbarrier.arrive.noComplete is not supported")
        expect = "expect_tx" in mods          # .expect_tx: the third operand is a tx-count to expect
        ctx.nops(ins, 3 if expect else 2, 3)
        dst = ins.operands[0]
        wr = None if isinstance(dst, Sink) else ctx.wr(dst, TYPES["b64"])
        addr = ctx.addr(ins.operands[1], space)
        cnt = ctx.rd(ins.operands[2], TYPES["u32"]) if len(ins.operands) == 3 else None
        drop = what == "arrive_drop"

        def run(s, i):
            sp, lanes, ad = locate(s, i, addr)
            n = len(lanes)
            ones = np.ones(n, np.int64)
            given = None if cnt is None else np.broadcast_to(np.asarray(cnt(s, i), np.int64), (n,))
            if expect:
                token = update(s, sp, lanes, ad, ones, given, drop, text, line)
            else:
                token = arrive(s, sp, lanes, ad, ones if given is None else given, drop, text, line)
            if wr is not None:
                wr(s, i, token.astype(np.uint64))
        return run

    if what in ("test_wait", "try_wait"):
        parity = "parity" in mods
        ctx.nops(ins, 3, 4)
        wr = ctx.wr(ins.operands[0], TYPES["pred"])
        addr = ctx.addr(ins.operands[1], space)
        st = ctx.rd(ins.operands[2], TYPES["u32" if parity else "b64"])

        def run(s, i):
            sp, lanes, ad = locate(s, i, addr)
            _, _, phase = _fields(sp.load(ad, lanes, np.uint64))
            v = np.broadcast_to(np.asarray(st(s, i)).astype(np.int64), (len(lanes),))
            ok = ((phase & 1) != (v & 1)) if parity else (phase != (v & _PHASE_MASK))
            if s.mbarrier_waiting is None:
                s.mbarrier_waiting = np.zeros(s.L, bool)
            s.mbarrier_waiting[lanes] = ~ok   # the scheduler runs other lanes first (executor.py)
            wr(s, i, ok)
        return run

    raise ctx.error(f"mbarrier.{what} is not supported")
