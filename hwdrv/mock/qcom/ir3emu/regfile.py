"""The per-fiber register file of one batch of waves: full r0.x..r63.w, half hr registers (merged
into the full file or separate, per SP_CS_CTRL_REG0.MERGEDREGS), a0.x/a1.x and p0.x..p0.w.

Registers are ir3 register numbers: ``(n << 2) | component`` (a0.x = 0xf4, a1.x = 0xf5, p0.x = 0xf8,
qcom.md §3.2). Storage is one row of ``lanes`` uint32 per *used* full register (a kernel touching
r0..r3 and the work-group id in r48.xyz holds 19 rows, not 196). With merged registers half register h
is the low (h even) or high (h odd) 16 bits of full register h >> 1 (qcom.md §3.3).
"""
from __future__ import annotations

import numpy as np

from hwdrv.errors import MockFault

A0, A1, P0 = 0xF4, 0xF5, 0xF8
NREGS = 256


class RegFile:
    """``full(n)`` / ``half(n)`` return writable numpy views (uint32 / uint16, one element per lane)."""

    def __init__(self, lanes: int, full: set[int], half: set[int], merged: bool):
        self.lanes, self.merged = lanes, merged
        if merged:
            full = set(full) | {h >> 1 for h in half}
        self.frow = np.full(NREGS, -1, np.int64)
        for i, n in enumerate(sorted(full)):
            self.frow[n] = i
        self.F = np.zeros((max(len(full), 1), lanes), np.uint32)
        self.F16 = self.F.view(np.uint16)          # (rows, 2*lanes): lane l's low half at 2l, high at 2l+1
        self.hrow = np.full(NREGS, -1, np.int64)
        if not merged:
            for i, n in enumerate(sorted(half)):
                self.hrow[n] = i
        self.H = np.zeros((max(len(half), 1) if not merged else 1, lanes), np.uint16)
        self._fv = {int(n): self.F[int(r)] for n, r in enumerate(self.frow) if r >= 0}
        self._hv: dict[int, np.ndarray] = {}
        for n in range(NREGS):
            if merged and self.frow[n >> 1] >= 0:
                self._hv[n] = self.F16[self.frow[n >> 1], (n & 1)::2]
            elif not merged and self.hrow[n] >= 0:
                self._hv[n] = self.H[self.hrow[n]]

    def full(self, n: int) -> np.ndarray:
        try:
            return self._fv[n]
        except KeyError:
            raise MockFault(f"register {reg_name(n, False)} is outside the register file the program declares") from None

    def half(self, n: int) -> np.ndarray:
        try:
            return self._hv[n]
        except KeyError:
            raise MockFault(f"register {reg_name(n, True)} is outside the register file the program declares") from None

    def gather(self, idx: np.ndarray, half: bool) -> np.ndarray:
        """Per-lane register number ``idx`` (relative addressing r<a0.x + off>): the value each lane reads."""
        lanes = np.arange(self.lanes)
        if half:
            if self.merged:
                rows = self._rows(idx >> 1, self.frow, idx, True)
                return self.F16[rows, 2 * lanes + (idx & 1)]
            return self.H[self._rows(idx, self.hrow, idx, True), lanes]
        return self.F[self._rows(idx, self.frow, idx, False), lanes]

    def scatter(self, idx: np.ndarray, half: bool, val: np.ndarray, mask: np.ndarray | None) -> None:
        lanes = np.arange(self.lanes)
        sel = lanes if mask is None else np.flatnonzero(mask)
        idx = np.broadcast_to(idx, (self.lanes,))[sel]
        val = np.broadcast_to(val, (self.lanes,))[sel]
        if half:
            if self.merged:
                self.F16[self._rows(idx >> 1, self.frow, idx, True), 2 * sel + (idx & 1)] = val
            else:
                self.H[self._rows(idx, self.hrow, idx, True), sel] = val
        else:
            self.F[self._rows(idx, self.frow, idx, False), sel] = val

    @staticmethod
    def _rows(n: np.ndarray, table: np.ndarray, orig: np.ndarray, half: bool) -> np.ndarray:
        bad = (n < 0) | (n >= NREGS)
        rows = table[np.clip(n, 0, NREGS - 1)]
        bad |= rows < 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise MockFault(f"relative register access reaches {reg_name(int(orig[i]), half)} (fiber {i}), outside "
                            "the register footprint (SP_CS_CTRL_REG0.FULLREGFOOTPRINT/HALFREGFOOTPRINT)")
        return rows


def reg_name(n: int, half: bool) -> str:
    if n == A0:
        return "a0.x"
    if n == A1:
        return "a1.x"
    if P0 <= n < P0 + 4:
        return "p0." + "xyzw"[n & 3]
    return f"{'h' if half else ''}r{n >> 2}.{'xyzw'[n & 3]}"
