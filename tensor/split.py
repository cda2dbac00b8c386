"""Two-pass reductions: when one reduce would run on too few threads for its size (a column
sum of a wide matrix: one thread per column; a whole-tensor sum: one block), the reduced axis
is split into ``parts`` slices. The first pass reduces each slice (``parts`` times more
threads, each still reading coalesced: neighbouring threads own neighbouring columns or row
elements); a second, small pass reduces the ``parts`` partial results.

Why two passes and not atomics: the second pass reads ``parts`` values per output (well under
1 % of the first pass's traffic at the sizes that split), works the same for sum and max and
every dtype (no float atomic max on the GPU; no zero-filled output to launch first), and keeps
results deterministic."""
from __future__ import annotations

import math

from .lower import ROW_BLOCK, ROW_MIN, ROW_WARP_MAX

#: reduces of fewer elements per output run in one pass (each thread's loop is short anyway)
SPLIT_MIN = 1 << 10
#: the first pass aims at this many threads (an H100: 132 SMs x 2048 resident threads)
SPLIT_THREADS = 1 << 18
#: every slice still reduces at least this many elements (per-thread loops amortise their setup)
SPLIT_PART_MIN = 256


def pass_threads(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    """Threads one reduce of ``axes`` launches (as ``lower.row_group`` decides)."""
    reduced = math.prod(shape[a] for a in axes)
    outputs = math.prod(s for i, s in enumerate(shape) if i not in axes)
    last = max((i for i, s in enumerate(shape) if s > 1), default=None)
    if last in axes and reduced >= ROW_MIN:
        return outputs * (32 if reduced <= ROW_WARP_MAX else ROW_BLOCK)
    return outputs


def split_plan(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, int] | None:
    """(axis, parts) to split the reduce of ``axes`` over ``shape`` along, or None for one
    pass. The axis: the outermost reduced one long enough for ``parts`` slices, else the
    longest reduced one."""
    reduced = math.prod(shape[a] for a in axes)
    if reduced < SPLIT_MIN:
        return None
    threads = pass_threads(shape, axes)
    parts = min(SPLIT_THREADS // max(threads, 1), reduced // SPLIT_PART_MIN)
    if parts < 2:
        return None
    axis = next((a for a in axes if shape[a] >= parts), max(axes, key=lambda a: shape[a]))
    return axis, min(parts, shape[axis])
