"""Thread-block cluster launches on Hopper: the QMD encoding and the constant-bank-0 slots.

No public driver sets the QMD V04_00 CGA ("cooperative grid array" = CUDA's cluster) fields and
their semantics are undocumented (reference nvidia-perf.md 3.1), so the encoding is one of a few
named hypotheses (:data:`VARIANTS`); ``tests/hardware/cluster_probe.py`` tries each on a GPU.
What the compiled code reads is known: ptxas 13.0 (sm_90a) takes %cluster_nctarank,
%cluster_nctaid, %clusterid (via 1/cluster_dim as f32) and %nclusterid from driver-filled words of
constant bank 0 (reference nvidia-perf.md 3.2, measured from SASS); only %cluster_ctarank
(``S2R SR_CgaCtaId``) comes from the hardware. Every launch fills those words: a launch without
clusters is an implicit 1x1x1 cluster, as the PTX ISA defines it.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgument
from .gen import hopper as hw

# Constant bank 0 words the sm_90 code of ptxas 13.0 reads (reference nvidia-perf.md 3.2; the
# offsets are ptxas-version specific: re-derive them by disassembling a probe after an upgrade).
CB0_CLUSTER_NCTAID = 0x144      # u32 x3: %cluster_nctaid.x/y/z
CB0_CLUSTER_RCP = 0x150         # f32 x3: 1 / cluster dim; %clusterid = trunc(f32(ctaid) * this)
CB0_NCLUSTERID = 0x15C          # u32 x3: %nclusterid.x/y/z (clusters per grid dimension)
CB0_CLUSTER_NCTARANK = 0x188    # u32: %cluster_nctarank (CTAs per cluster)

#: CTAs a portable cluster may hold (CUDA's limit without cudaFuncAttributeNonPortableClusterSizeAllowed)
MAX_PORTABLE_CLUSTER_SIZE = 8
#: the cluster of a launch without clusters (PTX ISA: an implicit 1x1x1 cluster)
NO_CLUSTER = (1, 1, 1)
#: environment variable naming the QMD variant a device opens with (default DEFAULT_VARIANT)
VARIANT_ENV = "HWDRV_NV_CLUSTER_QMD"

# What a variant writes into a group of three CGA fields.
CLUSTER_DIMS = "cluster"       # the cluster's dimensions
ONES = "ones"                  # 1, 1, 1
ZEROS = "zeros"                # 0, 0, 0 (left as the template has them)

_P = "NVCBC0_QMDV04_00_"
_GPC_CGA = tuple(getattr(hw, _P + f"GPC_CGA_{a}") for a in ("WIDTH", "HEIGHT", "DEPTH"))
_GPU_CGA = tuple(getattr(hw, _P + f"GPU_CGA_{a}") for a in ("WIDTH", "HEIGHT", "DEPTH"))
_GRID = (hw.NVCBC0_QMDV04_00_GRID_WIDTH, hw.NVCBC0_QMDV04_00_GRID_HEIGHT, hw.NVCBC0_QMDV04_00_GRID_DEPTH)


@dataclass(frozen=True)
class QmdClusterVariant:
    """One hypothesis of how a QMD V04_00 asks for clusters."""
    name: str
    qmd_type: int
    gpc_cga: str               # CLUSTER_DIMS, ONES or ZEROS
    gpu_cga: str
    grid_in_clusters: bool     # GRID_WIDTH/HEIGHT/DEPTH count clusters rather than CTAs
    idea: str


VARIANTS: dict[str, QmdClusterVariant] = {v.name: v for v in (
    QmdClusterVariant("gpc_cga", hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_GPC_CGA, CLUSTER_DIMS, ZEROS, False,
                      "a Hopper cluster lives in one GPC: GRID_GPC_CGA, GPC_CGA = cluster, grid in CTAs"),
    QmdClusterVariant("gpc_cga_gpu_ones", hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_GPC_CGA, CLUSTER_DIMS, ONES, False,
                      "as gpc_cga, with the GPU-level CGA one cluster wide"),
    QmdClusterVariant("gpc_cga_grid_in_clusters", hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_GPC_CGA, CLUSTER_DIMS, ZEROS,
                      True, "as gpc_cga, with the grid fields counting clusters"),
    QmdClusterVariant("gpu_gpc_cga", hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_GPU_GPC_CGA, CLUSTER_DIMS, ONES, False,
                      "two levels: GPU CGAs of one GPC CGA each"),
    QmdClusterVariant("gpu_gpc_cga_same", hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_GPU_GPC_CGA, CLUSTER_DIMS,
                      CLUSTER_DIMS, False, "two levels, both the cluster's dimensions in CTAs"),
    QmdClusterVariant("gpu_cga", hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_GPU_CGA, ZEROS, CLUSTER_DIMS, False,
                      "GRID_GPU_CGA, GPU_CGA = cluster"),
    QmdClusterVariant("cta_with_cga", hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_CTA, CLUSTER_DIMS, ZEROS, False,
                      "GRID_CTA with GPC_CGA = cluster (does the type matter?)"),
)}
#: the encoding an H100 ran correctly (tests/hardware/cluster_probe.py, driver 580.159.04,
#: 2026-12-06): every case right, DSMEM exchanges included; the grid-in-CTAs variants ran
#: cluster-size times too many CTAs, GRID_GPU_CGA and GRID_CTA-with-CGA faulted
DEFAULT_VARIANT = "gpc_cga_grid_in_clusters"


def variant(name: str) -> QmdClusterVariant:
    """The QMD cluster variant called ``name``; InvalidArgument naming the choices otherwise."""
    try:
        return VARIANTS[name]
    except (KeyError, TypeError):
        raise InvalidArgument(f"no QMD cluster variant {name!r}; choose one of {', '.join(VARIANTS)}") from None


def variant_from_env() -> QmdClusterVariant:
    """The variant ``HWDRV_NV_CLUSTER_QMD`` names, else the default."""
    return variant(os.environ.get(VARIANT_ENV, DEFAULT_VARIANT))


def _values(how: str, cluster: tuple[int, int, int]) -> tuple[int, int, int]:
    return cluster if how == CLUSTER_DIMS else (1, 1, 1) if how == ONES else (0, 0, 0)


def encode_qmd(qmd: np.ndarray, grid: tuple[int, int, int], cluster: tuple[int, int, int],
               v: QmdClusterVariant) -> None:
    """Turn the grid launch in ``qmd`` (grid already set) into a cluster launch per ``v``."""
    hw.NVCBC0_QMDV04_00_QMD_TYPE.set(qmd, v.qmd_type)
    for fields, how in ((_GPC_CGA, v.gpc_cga), (_GPU_CGA, v.gpu_cga)):
        for f, x in zip(fields, _values(how, cluster)):
            f.set(qmd, x)
    if v.grid_in_clusters:
        for f, g, c in zip(_GRID, grid, cluster):
            f.set(qmd, g // c)


def fill_cb0_shape(cb0: np.ndarray, cluster: tuple[int, int, int]) -> None:
    """Write the grid-independent cluster words (CTAs per cluster, its dimensions, their f32
    reciprocals) into the constant-bank-0 bytes ``cb0``."""
    struct.pack_into("<III", cb0, CB0_CLUSTER_NCTAID, *cluster)
    struct.pack_into("<fff", cb0, CB0_CLUSTER_RCP, *(np.float32(1) / np.float32(c) for c in cluster))
    struct.pack_into("<I", cb0, CB0_CLUSTER_NCTARANK, cluster[0] * cluster[1] * cluster[2])
