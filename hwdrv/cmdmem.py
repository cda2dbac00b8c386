"""Command memory: GPU-visible host memory for queues' side buffers (QMDs, constant banks,
bound command streams, kernel arguments).

Each queue owns its pieces for as long as it lives, so it can be resubmitted and patched any
number of times. When a queue dies its pieces are not reused until the device timeline has
passed the queue's last submission (the GPU may still be reading them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from .errors import InvalidArgument, OutOfMemory
from .memory.allocator import VARangeAllocator

if TYPE_CHECKING:
    from .memory.buffer import Buffer

CHUNK_SIZE = 4 << 20


class CommandMemory:
    """A growable heap of host-visible, GPU-mapped chunks."""

    def __init__(self, alloc_chunk: Callable[[int], "Buffer"]):
        self._alloc_chunk = alloc_chunk
        self._chunks: list[tuple["Buffer", VARangeAllocator, np.ndarray]] = []
        self._deferred: list[tuple[Callable[[], bool], list[int]]] = []   # (done?, [va...])

    def alloc(self, nbytes: int, align: int = 256) -> tuple[int, np.ndarray]:
        """Returns (GPU VA, uint8 numpy view of the piece)."""
        if nbytes <= 0:
            raise InvalidArgument(f"command memory request must be > 0 bytes, got {nbytes}")
        self._reclaim()
        for buf, ra, view in self._chunks:
            try:
                va = ra.alloc(nbytes, align)
            except OutOfMemory:
                continue
            off = va - buf.va
            return va, view[off:off + nbytes]
        size = max(CHUNK_SIZE, -(-(nbytes + align) // CHUNK_SIZE) * CHUNK_SIZE)
        buf = self._alloc_chunk(size)
        ra = VARangeAllocator(buf.va, size)
        view = buf.view()
        self._chunks.append((buf, ra, view))
        va = ra.alloc(nbytes, align)
        return va, view[va - buf.va:va - buf.va + nbytes]

    def release(self, vas: list[int], done: Callable[[], bool]) -> None:
        """Give pieces back once ``done()`` says the GPU no longer reads them."""
        if not vas:
            return
        if done():
            self._free(vas)
        else:
            self._deferred.append((done, vas))

    def _reclaim(self) -> None:
        if not self._deferred:
            return
        keep = []
        for done, vas in self._deferred:
            if done():
                self._free(vas)
            else:
                keep.append((done, vas))
        self._deferred = keep

    def _free(self, vas: list[int]) -> None:
        for va in vas:
            for buf, ra, _ in self._chunks:
                if buf.va <= va < buf.va + buf.size:
                    ra.free(va)
                    break

    def close(self) -> None:
        """Free every chunk (the device is closing; nothing may run any more)."""
        for buf, _, _ in self._chunks:
            if not buf.freed:
                buf.free()
        self._chunks.clear()
        self._deferred.clear()
