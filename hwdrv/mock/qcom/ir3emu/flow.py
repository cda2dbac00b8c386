"""cat0 flow control and cat7 barriers.

A flow op's ``run(m, mask)`` returns where the active fibers go next: None (the next instruction),
an int (every active fiber jumps there), ``END`` (the active fibers stopped) or a per-lane int32
array of next instructions (divergence). The batch runner (machine.py) then always executes the
fibers at the lowest instruction index first and rejoins fibers that meet at the same index,
which must carry (jp) (Mesa ir3_legalize.c mark_xvergence_points: "Re-convergence points are where
'parked' threads are reconverged ... mark them with (jp)").
"""
from __future__ import annotations

import numpy as np

from .ops import ShaderFault
from .regfile import P0

END = -1


def nop(m, mask):
    return None


def end(m, mask):
    m.retire(mask)
    return END


def _cond(m, comp: int, inv: bool) -> np.ndarray:
    c = m.regs.full(P0 + comp) != 0
    return ~c if inv else c


def make_branch(name: str, comps, target: int, pc: int):
    def run(m, mask):
        c = _cond(m, *comps[0])
        if name == "brao":
            c = c | _cond(m, *comps[1])
        elif name == "braa":
            c = c & _cond(m, *comps[1])
        act = m.active(mask)
        if name in ("bany", "ball"):
            w = c.reshape(m.nwaves, m.ts)
            a = act.reshape(m.nwaves, m.ts)
            per_wave = (w & a).any(1) if name == "bany" else (w | ~a).all(1)
            c = np.repeat(per_wave, m.ts)
        return m.split(act, c, target, pc + 1)
    return run


def make_jump(target: int):
    def run(m, mask):
        return target
    return run


def make_kill(comp):
    def run(m, mask):
        c = _cond(m, *comp) & m.active(mask)
        if c.any():
            m.retire(c)
        return None
    return run


def make_getone(target: int, pc: int):
    """getone #target: in each wave the first active fiber falls through, the others jump (the
    same shape as Mesa's documented getlast, isa/ir3-cat0.xml)."""
    def run(m, mask):
        act = m.active(mask)
        a = act.reshape(m.nwaves, m.ts)
        first = a.argmax(1)
        stay = np.zeros_like(a)
        has = a.any(1)
        stay[np.flatnonzero(has), first[has]] = True
        jump = act & ~stay.reshape(-1)
        return m.split(act, jump, target, pc + 1)
    return run


def barrier(m, mask):
    """bar: every fiber of a workgroup still running must arrive at the same barrier; with the
    lowest-index-first schedule a fiber that is elsewhere has run past it or is stuck behind it,
    which hangs real hardware."""
    if mask is None:
        return None
    act = m.active(mask)
    missing = m.alive & ~act
    if missing.any():
        wgs_here = np.unique(m.lane_wg[act])
        late = missing & np.isin(m.lane_wg, wgs_here)
        if late.any():
            lane = int(np.flatnonzero(late)[0])
            raise ShaderFault(f"bar: fiber {m.lane_local(lane)} of workgroup {m.wg_id(lane)} is at instruction "
                              f"{int(m.pc_of(lane))}, not at this barrier (divergent barrier; the hardware would hang)")
    return None
