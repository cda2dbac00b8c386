"""mbarrier: split arrive/wait barrier objects in shared memory (init, arrive, arrive_drop,
test_wait, try_wait, their .parity forms, inval).

The ISA makes the 64-bit object opaque; the mock keeps in it (bit fields of its own choosing)
the pending arrival count, the expected count and the phase number. The state an arrive returns
is the phase it arrived in; a wait on a state succeeds once that phase has completed, a wait on
a parity once the barrier's current phase has the other parity. Lanes run in lockstep, so every
lane executing one arrive arrives at once; a phase completes when its pending count reaches 0.
try_wait returns at once (the interpreter never suspends a lane), as test_wait does."""
from __future__ import annotations

import numpy as np

from .ast import Sink
from .decode import Ctx, family
from .errors import IllegalInstruction
from .memory import check_aligned
from .ops_mem import get_space, space_of
from .types import TYPES

_COUNT_BITS = 21                       # counts up to 2**20 - 1, as the ISA allows
_MASK = (1 << _COUNT_BITS) - 1
_PHASE_SHIFT = 2 * _COUNT_BITS
_U64 = np.uint64


def _fields(word: np.ndarray):
    w = word.astype(np.uint64)
    return (w & _U64(_MASK)).astype(np.int64), ((w >> _U64(_COUNT_BITS)) & _U64(_MASK)).astype(np.int64), \
        (w >> _U64(_PHASE_SHIFT)).astype(np.int64)


def _word(pending, expected, phase) -> np.ndarray:
    return (np.asarray(pending, np.int64).astype(np.uint64) | (np.asarray(expected, np.int64).astype(np.uint64) << _U64(_COUNT_BITS))
            | (np.asarray(phase, np.int64).astype(np.uint64) << _U64(_PHASE_SHIFT)))


def arrive(sp, lanes: np.ndarray, ad: np.ndarray, counts: np.ndarray, drop: bool, text: str, line: int) -> np.ndarray:
    """``lanes`` arrive (``counts`` each) on the mbarriers at ``ad`` in space ``sp``; returns each
    lane's state (the phase it arrived in). ``drop`` also lowers the expected count."""
    keys = sp.key(ad, lanes)
    uk, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    tot = np.bincount(inv, weights=counts, minlength=len(uk)).astype(np.int64)
    pend, exp, phase = _fields(sp.load(ad[first], lanes[first], np.uint64))
    if (exp == 0).any():
        raise IllegalInstruction("mbarrier arrive on an object that was not initialised", text, line)
    if drop:
        exp = exp - tot
    if (tot > pend).any():
        raise IllegalInstruction("mbarrier.arrive: more arrivals than the phase expects", text, line)
    token = phase[inv]
    pend = pend - tot
    done = pend == 0
    phase = np.where(done, phase + 1, phase)
    pend = np.where(done, exp, pend)
    sp.store(ad[first], lanes[first], _word(pend, exp, phase))
    return token


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
        arrive(sp, lanes, ad, np.ones(len(lanes), np.int64), False, text, line)
    return run


@family("mbarrier")
def build_mbarrier(ctx: Ctx, ins):
    mods = list(ins.mods)
    what = mods[0] if mods else ""
    space = space_of(ctx, ins)
    if space not in ("shared", "generic"):
        raise ctx.error(f"mbarrier objects live in shared memory, not .{space}")
    known = {"shared", "shared::cta", "shared::cluster", "b64", "release", "acquire", "relaxed", "cta", "cluster",
             "parity", "noComplete"}
    extra = set(mods[1:]) - known
    if extra:
        raise ctx.error(f"mbarrier.{what} modifiers {sorted(extra)} are not supported "
                        "(transaction counts need the TMA engine, which the mock does not model)")
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
        return run

    if what == "inval":
        ctx.nops(ins, 1)
        addr = ctx.addr(ins.operands[0], space)

        def run(s, i):
            sp, lanes, ad = locate(s, i, addr)
            sp.store(ad, lanes, np.zeros(len(lanes), np.uint64))
        return run

    if what in ("arrive", "arrive_drop"):
        if "noComplete" in mods:
            raise ctx.error("mbarrier.arrive.noComplete is not supported")
        ctx.nops(ins, 2, 3)
        dst = ins.operands[0]
        wr = None if isinstance(dst, Sink) else ctx.wr(dst, TYPES["b64"])
        addr = ctx.addr(ins.operands[1], space)
        cnt = ctx.rd(ins.operands[2], TYPES["u32"]) if len(ins.operands) == 3 else None
        drop = what == "arrive_drop"

        def run(s, i):
            sp, lanes, ad = locate(s, i, addr)
            n = len(lanes)
            c = np.ones(n, np.int64) if cnt is None else np.broadcast_to(np.asarray(cnt(s, i), np.int64), (n,))
            token = arrive(sp, lanes, ad, c, drop, text, line)
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
            ok = ((phase & 1) != (v & 1)) if parity else (phase != v)
            wr(s, i, ok)
        return run

    raise ctx.error(f"mbarrier.{what} is not supported")
