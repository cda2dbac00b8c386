"""Launch limits a backend declares for its device; the core checks every launch against them
before anything reaches the GPU."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceLimits:
    """What one launch may ask of this device."""

    #: threads (work-items, fibers) per block (workgroup)
    max_threads_per_block: int
    #: largest block extent per dimension
    max_block_dims: tuple[int, int, int]
    #: largest grid extent per dimension, in blocks
    max_grid_dims: tuple[int, int, int]
    #: bytes of shared memory (LDS, local memory) one block may use, static + dynamic
    max_shared_per_block: int
    #: threads that execute in lockstep: a warp (NVIDIA), a wave (AMD), a fiber group (Adreno)
    wave_size: int
    #: CTAs one thread-block cluster may hold (exec's ``cluster``); 0: the device has no clusters
    max_cluster_size: int = 0
