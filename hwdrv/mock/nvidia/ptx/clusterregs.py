"""Cluster special registers as compiled sm_90 code computes them from constant bank 0.

ptxas 13.0 (sm_90a) does not read the cluster shape from the hardware: it loads driver-filled
words of constant bank 0 (reference nvidia-perf.md 3.2, from SASS). A launch that names the bank
(``launch(cluster_bank=0)``, what the mock GPU does) gets exactly what those words say, right or
wrong, as a GPU would; only %cluster_ctarank (``S2R SR_CgaCtaId``), distributed shared memory and
the cluster barrier follow the cluster shape the hardware was given. Offsets are ptxas-version
specific, like the SASS they come from.
"""
from __future__ import annotations

import numpy as np

CB0_CLUSTER_NCTAID = 0x144      # u32 x3: %cluster_nctaid.x/y/z
CB0_CLUSTER_RCP = 0x150         # f32 x3: 1 / cluster dim
CB0_NCLUSTERID = 0x15C          # u32 x3: %nclusterid.x/y/z
CB0_CLUSTER_NCTARANK = 0x188    # u32: %cluster_nctarank
_U32_MAX = np.float64(0xFFFFFFFF)


def _word(bank: np.ndarray, offset: int, dtype) -> np.generic:
    return np.frombuffer(bank[offset:offset + 4].tobytes(), dtype)[0]


def scalar(bank: np.ndarray, name: str, axis: int | None) -> int:
    """%cluster_nctarank, %cluster_nctaid.<axis> or %nclusterid.<axis> from the bank's bytes."""
    offset = {"%cluster_nctarank": CB0_CLUSTER_NCTARANK, "%cluster_nctaid": CB0_CLUSTER_NCTAID,
              "%nclusterid": CB0_NCLUSTERID}[name]
    return int(_word(bank, offset + 4 * (axis or 0), np.uint32))


def clusterid(bank: np.ndarray, ctaid: np.ndarray, axis: int) -> np.ndarray:
    """%clusterid.<axis> = F2I.U32.TRUNC(I2F(ctaid) * rcp): an f32 product, truncated and
    saturated to u32 (NaN -> 0) as F2I does."""
    rcp = _word(bank, CB0_CLUSTER_RCP + 4 * axis, np.float32)
    with np.errstate(all="ignore"):
        prod = (ctaid.astype(np.float32) * rcp).astype(np.float64)
    prod = np.nan_to_num(np.trunc(prod), nan=0.0)
    return np.clip(prod, 0.0, _U32_MAX).astype(np.uint32)


def cluster_ctaid(bank: np.ndarray, ctaid: np.ndarray, axis: int) -> np.ndarray:
    """%cluster_ctaid.<axis> = ctaid - clusterid * %cluster_nctaid (u32 arithmetic)."""
    n = np.uint32(_word(bank, CB0_CLUSTER_NCTAID + 4 * axis, np.uint32))
    return (ctaid.astype(np.uint32) - clusterid(bank, ctaid, axis) * n).astype(np.uint32)
