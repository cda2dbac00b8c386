"""Register state of a batch of wave32 waves, vectorised: every array has the wave as its first axis.

SGPRs ``s``: uint32 (128, W) in the gfx11 operand numbering (s0..s105, vcc_lo/hi 106/107,
ttmp 108..123, null 124, m0 125, exec_lo/hi 126/127). VGPRs ``v``: uint32 (NV, W, 32).
``scc``: bool (W,). ``pc``: int64 (W,) byte offsets from the program start. Waves of one batch
that sit at the same PC execute together; ``act`` marks them for the instruction being run.
"""
from __future__ import annotations

import numpy as np

from ....amd.gen import rdna3_isa as isa

OP = isa.OPERANDS
VCC, EXEC, M0, NULL = OP["VCC_LO"], OP["EXEC_LO"], OP["M0"], OP["NULL"]
LANES = 32
LANE_BITS = (np.uint32(1) << np.arange(LANES, dtype=np.uint32))          # (32,)
# src_shared_base / src_private_base: high 32 bits of the LDS and scratch apertures (KFD reports
# lds_base = 1 << 48 and scratch_base = 2 << 48 for gfx9+ in GET_PROCESS_APERTURES_NEW).
SHARED_APERTURE = 1 << 48
PRIVATE_APERTURE = 2 << 48
APERTURE_SIZE = 1 << 32


class WaveState:
    """Registers and bookkeeping of W waves (see module docstring)."""

    def __init__(self, n_waves: int, n_vgprs: int, lds: np.ndarray, wg_of_wave: np.ndarray,
                 lds_bytes: int):
        W = n_waves
        self.W = W
        self.s = np.zeros((128, W), np.uint32)
        self.v = np.zeros((max(n_vgprs, 1), W, LANES), np.uint32)
        self.scc = np.zeros(W, bool)
        self.pc = np.zeros(W, np.int64)
        self.done = np.zeros(W, bool)
        self.act = np.ones(W, bool)
        self.all_act = True
        self.lds = lds                    # uint8 (n_workgroups, lds_bytes) — one LDS per workgroup
        self.lds_bytes = lds_bytes
        self.wg = wg_of_wave              # workgroup (row of lds) of each wave
        self.mode = np.zeros(W, np.uint32)
        self.scratch_wave_base = None     # uint64 (W,): start of each wave's private memory
        self.scratch_lane_size = 0        # private bytes per lane
        self._emask = None        # cached emask(); dropped when EXEC or the active waves change
        self.mask_full = False    # the cached mask enables every lane of every wave

    # --- masks ---------------------------------------------------------------------------------------
    def exec_bits(self) -> np.ndarray:
        return self.s[EXEC]

    def emask(self) -> np.ndarray:
        """bool (W, 32): lanes enabled by EXEC in the waves executing now."""
        if self._emask is None:
            m = (self.s[EXEC][:, None] & LANE_BITS) != 0
            if not self.all_act:
                m &= self.act[:, None]
            self._emask = m
            self.mask_full = bool(m.all())
        return self._emask

    def set_act(self, act: np.ndarray, all_act: bool) -> None:
        """Select the waves the next instruction runs on."""
        if all_act and self.all_act:
            return
        if not (all_act or self.all_act) and np.array_equal(act, self.act):
            return
        self.act, self.all_act, self._emask = act, all_act, None

    @staticmethod
    def pack(lanes: np.ndarray) -> np.ndarray:
        """bool (W, 32) -> uint32 (W,) lane mask."""
        return (lanes.astype(np.uint32) << np.arange(LANES, dtype=np.uint32)).sum(axis=1, dtype=np.uint32) \
            if lanes.ndim == 2 else np.uint32(0)

    # --- scalar writes (only for the waves executing now) ----------------------------------------------
    def set_s(self, r: int, val) -> None:
        if r == NULL:
            return
        if r > 127:
            raise IndexError(f"scalar destination {r} out of range")
        if r == EXEC or r == EXEC + 1:
            self._emask = None
        if self.all_act:
            self.s[r] = val
        else:
            np.copyto(self.s[r], np.broadcast_to(np.asarray(val, np.uint32), (self.W,)), where=self.act)

    def set_s64(self, r: int, val) -> None:
        val = np.asarray(val, np.uint64)
        self.set_s(r, (val & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        if r != NULL:
            self.set_s(r + 1, (val >> np.uint64(32)).astype(np.uint32))

    def set_scc(self, val) -> None:
        if self.all_act:
            self.scc[:] = val
        else:
            np.copyto(self.scc, np.broadcast_to(np.asarray(val, bool), (self.W,)), where=self.act)

    def s64(self, r: int) -> np.ndarray:
        return self.s[r].astype(np.uint64) | (self.s[r + 1].astype(np.uint64) << np.uint64(32))

    # --- vector writes ---------------------------------------------------------------------------------
    def set_v(self, r: int, bits, mask: np.ndarray) -> None:
        if mask is self._emask and self.mask_full:
            self.v[r] = bits
        else:
            np.copyto(self.v[r], np.broadcast_to(np.asarray(bits, np.uint32), (self.W, LANES)), where=mask)

    def v64(self, r: int) -> np.ndarray:
        return self.v[r].astype(np.uint64) | (self.v[r + 1].astype(np.uint64) << np.uint64(32))

    def set_v64(self, r: int, bits, mask: np.ndarray) -> None:
        bits = np.asarray(bits, np.uint64)
        self.set_v(r, (bits & np.uint64(0xFFFFFFFF)).astype(np.uint32), mask)
        self.set_v(r + 1, (bits >> np.uint64(32)).astype(np.uint32), mask)
