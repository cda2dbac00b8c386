"""The register state of the waves resident when a dispatch stopped, as the SQ holds it.

A fault (or a preemption) keeps a reference to the batch's :class:`~.state.WaveState`; the
dispatch stops there, so the arrays are not written again. ``waves()`` lists each live wave's
registers in SQ_WAVE_* terms for whoever saves them (the mock KFD's context save).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ....amd.gen import gc11 as G
from .state import EXEC, M0, VCC, WaveState

#: SGPR file indices a wave's saved SGPRs cover: s0..s105 then VCC_LO/HI (gfx11 operand numbering)
SGPR_FILE = tuple(range(VCC)) + (VCC, VCC + 1)


@dataclass
class WaveRegs:
    """One wave: what the trap handler would read from it at a context save."""
    wave: int                   # wave index in the dispatch
    workgroup: tuple[int, int, int]
    wave_in_group: int
    pc: int                     # byte address
    exec: int
    status: int
    trapsts: int
    mode: int
    m0: int
    flat_scratch: int
    sgprs: np.ndarray           # uint32, SGPR_FILE order
    vgprs: np.ndarray           # uint32 (allocated VGPRs, 32 lanes)
    lds: bytes                  # the workgroup's LDS
    first_wave: bool            # first wave of its workgroup
    last_wave: bool


class WaveSnapshot:
    """The live waves of the stopped batch; ``focus`` is the wave that faulted (or was running)."""

    def __init__(self, st: WaveState, pgm_addr: int, first_wave: int, wave_wid: np.ndarray, wpg: int,
                 focus: int, status: int, trapsts: int):
        self.st, self.pgm_addr, self.first_wave, self.wave_wid, self.wpg = st, pgm_addr, first_wave, wave_wid, wpg
        self.focus, self.focus_status, self.focus_trapsts = focus, status, trapsts

    def _status(self, w: int) -> int:
        """SCC, EXECZ, VCCZ from the wave's registers; HALT etc. of the fault for the focus wave."""
        st = self.st
        s = int(st.scc[w]) << G.SQ_WAVE_STATUS__SCC.shift
        if st.s[EXEC, w] == 0 and st.s[EXEC + 1, w] == 0:
            s |= G.SQ_WAVE_STATUS__EXECZ.mask
        if st.s[VCC, w] == 0 and st.s[VCC + 1, w] == 0:
            s |= G.SQ_WAVE_STATUS__VCCZ.mask
        return s | (self.focus_status if w == self.focus else 0)

    def waves(self) -> list[WaveRegs]:
        """Every wave of the batch that has not ended, the focus wave's workgroup first."""
        st = self.st
        live = [w for w in range(st.W) if not st.done[w]]
        live.sort(key=lambda w: (w // self.wpg != self.focus // self.wpg, w))
        out = []
        for w in live:
            pos = w % self.wpg
            base = 0 if st.scratch_wave_base is None else int(st.scratch_wave_base[w])
            mates = [x for x in live if x // self.wpg == w // self.wpg]
            out.append(WaveRegs(
                wave=self.first_wave + w, workgroup=tuple(int(x) for x in self.wave_wid[w]), wave_in_group=pos,
                pc=self.pgm_addr + int(st.pc[w]), exec=int(st.s[EXEC, w]) | int(st.s[EXEC + 1, w]) << 32,
                status=self._status(w), trapsts=self.focus_trapsts if w == self.focus else 0, mode=int(st.mode[w]),
                m0=int(st.s[M0, w]), flat_scratch=base, sgprs=st.s[list(SGPR_FILE), w].copy(),
                vgprs=st.v[:, w, :].copy(), lds=st.lds[st.wg[w], :st.lds_bytes].tobytes(),
                first_wave=w == mates[0], last_wave=w == mates[-1]))
        return out
