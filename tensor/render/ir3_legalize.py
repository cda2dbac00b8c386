"""Scheduling legalisation of allocated ir3 code: the nops and the ``(ss)``/``(sy)``/``(jp)``
flags the hardware needs, as Mesa's ``ir3_legalize.c`` / ``ir3_delay.c`` (Mesa 25.0.7) decide
them for a6xx, and branch targets resolved to offsets.

Rules (a6xx, ``ir3_compiler.c``: ``delay_slots.alu_to_alu = 3``, ``non_alu = 6``,
``cat3_src2_read = 2``):

* an ALU (cat1-3) result read by an ALU instruction needs 3 instructions (delay slots) between
  them, 3 more when a full register is read as a half or the reverse (merged registers), 2
  fewer when it is the third source of mad/madsh (``ir3_delayslots``, ``ir3_src_read_delay``);
  read by a flow, SFU or memory instruction it needs 6; ``end`` reads nothing;
* an SFU (cat4) result or a local-memory load is waited for with ``(ss)`` on the instruction that
  reads or overwrites it (``is_ss_producer``); a global/IBO load or an atomic with ``(sy)``
  (``is_sy_producer``); ``(ss)`` clears every pending (ss) wait, ``(sy)`` every (sy) wait;
* write-after-read: a register a pending SFU / memory instruction still reads may only be
  overwritten after ``(ss)`` (stores, SFU, local loads) or ``(ss)``/``(sy)`` (global/IBO loads,
  atomics) (``is_war_hazard_producer``, ``needs_ss_war``);
* the instruction after a barrier takes ``(ss)(sy)``; cat6/cat7 cannot carry ``(ss)``: a
  ``(ss)nop`` goes before them (``supports_ss``);
* ``end`` waits for nothing (``ir3_delayslots``: shader outputs need no delay), so the final
  label before it is not flushed;
* control flow: Mesa merges the state of a block's predecessors; here every block ends in a
  clean state instead (a nop that waits out every delay and carries the pending syncs before each
  branch and each label), which is the same condition made conservative; the first instruction of
  a branch target is a reconvergence point and takes ``(jp)`` (``mark_xvergence_points``).
"""
from __future__ import annotations

from .ir3_regs import VInst

ALU_TO_ALU = 3
NON_ALU = 6
CAT3_SRC2_READ = 2
HALF_PENALTY = 3
MAX_NOP_REPEAT = 5          # (rpt5)nop: 6 cycles
_CAN_SS = {"alu", "mad", "sfu", "branch", "end"}      # cat0-4 carry (ss); cat6/7 do not
_ALU = {"alu", "mad"}
#: the label of the kernel's final ``end`` (ir3_isel.Selector.end_label)
END_LABEL = "end"


class _State:
    """What the instructions so far leave pending (Mesa's ``ir3_legalize_state``)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.written: dict[int, tuple[int, bool]] = {}   # scalar -> (cycle, half) of ALU writes
        self.ss: set[int] = set()
        self.sy: set[int] = set()
        self.ss_war: set[int] = set()
        self.any_war: set[int] = set()

    def apply_ss(self) -> None:
        self.ss.clear()
        self.ss_war.clear()
        self.any_war.clear()

    def apply_sy(self) -> None:
        self.sy.clear()
        self.any_war.clear()


def _nop(cycles: int, flags: str = "") -> list[str]:
    """Nops taking ``cycles`` cycles (``(rptN)nop``: N + 1), the first carrying ``flags``."""
    out = []
    while cycles > 0:
        n = min(cycles, MAX_NOP_REPEAT + 1)
        out.append(f"{flags}(rpt{n - 1})nop" if n > 1 else f"{flags}nop")
        flags = ""
        cycles -= n
    return out


def legalize(code: list[VInst]) -> list[str]:
    """Assembly lines for allocated ``code`` (VInst.render), scheduled for a6xx."""
    st = _State()
    out: list[str] = []          # one instruction per line
    labels: dict[str, int] = {}
    branches: list[tuple[int, str]] = []
    cycle = 0
    jp = False                   # the next instruction is a branch target
    after_bar = False

    def emit(line: str, cycles: int = 1) -> None:
        nonlocal cycle, jp
        if jp:
            line = "(jp)" + line
            jp = False
        out.append(line)
        cycle += cycles

    def flush() -> None:
        """Wait out every delay and pending sync: the next instruction starts a clean block."""
        nonlocal after_bar
        wait = max((NON_ALU - (cycle - c - 1) for c, _ in st.written.values()), default=0)
        ss = bool(st.ss or st.ss_war or st.any_war) or after_bar
        sy = bool(st.sy or st.any_war) or after_bar
        flags = ("(sy)" if sy else "") + ("(ss)" if ss else "")
        if wait > 0 or flags:
            for line in _nop(max(wait, 1), flags):
                emit(line, _cycles(line))
        st.reset()
        after_bar = False

    for v in code:
        if v.cls == "label":
            if v.target != END_LABEL:       # only `end` follows it, which waits for nothing
                flush()
            labels[v.target] = len(out)
            jp = True
            continue
        if v.cls == "branch":
            flush()
        flags_ss = flags_sy = False
        if after_bar:
            flags_ss = flags_sy = True
            after_bar = False
        if flags_ss:
            st.apply_ss()
        if flags_sy:
            st.apply_sy()
        for s in (r.scalar() for r in v.dsts + v.srcs):     # Mesa's order: reads, then WAR
            if s in st.ss:
                flags_ss = True
                st.apply_ss()
            if s in st.sy:
                flags_sy = True
                st.apply_sy()
        for r in v.dsts:
            if r.scalar() in st.ss_war or r.scalar() in st.any_war:
                flags_ss = True
                st.apply_ss()
        if flags_ss and v.cls not in _CAN_SS:
            emit("(ss)nop")
            flags_ss = False
        # delay slots still owed to ALU results this instruction reads
        need = 0
        for k, r in enumerate(v.srcs):
            w = st.written.get(r.scalar())
            if w is None or v.cls == "end":
                continue
            c, half = w
            if v.cls in _ALU:
                d = ALU_TO_ALU + (HALF_PENALTY if half != r.half else 0)
                if v.cls == "mad" and k == 2:
                    d -= CAT3_SRC2_READ
            else:
                d = NON_ALU
            need = max(need, d - (cycle - c - 1))
        for line in _nop(need):
            emit(line, _cycles(line))
        flags = ("(sy)" if flags_sy else "") + ("(ss)" if flags_ss else "")
        if v.cls == "branch":
            branches.append((len(out), v.target))
        emit(flags + v.render())
        # what this instruction leaves pending
        for r in v.dsts:
            s = r.scalar()
            st.written.pop(s, None)
            if v.cls in _ALU:
                st.written[s] = (cycle - 1, r.half)
            elif v.cls in ("sfu", "ldss"):
                st.ss.add(s)
            elif v.cls == "ldsy":
                st.sy.add(s)
        srcs = {r.scalar() for r in v.srcs}
        if v.cls in ("sfu", "ldss", "store"):
            st.ss_war |= srcs
        elif v.cls == "ldsy":
            st.any_war |= srcs
        if v.cls == "bar":
            after_bar = True
    for at, target in branches:
        out[at] = out[at].replace("#@", f"#{labels[target] - at}")
    return out


def _cycles(line: str) -> int:
    """Cycles a nop line takes: (rptN) repeats it N more times."""
    i = line.find("(rpt")
    return 1 + int(line[i + 4:line.index(")", i)]) if i >= 0 else 1
