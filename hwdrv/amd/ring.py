"""One KFD user-mode queue as the host drives it: the ring buffer, the read/write pointers in the
queue's "gart" page and the 64-bit doorbell (reference/amd.md 1.7).

PM4 rings count dwords and packets may wrap; SDMA rings count bytes and a packet must not
straddle the end (the tail is filled with zero dwords, which SDMA executes as NOPs). The host
never overruns the read pointer: a full ring waits (with a timeout) for the engine to catch up.
Write order: ring contents, then the write pointer, then the doorbell (one fenced MMIO store).
"""
from __future__ import annotations

import threading
import time

import numpy as np

from ..errors import GPUHang, InvalidArgument
from ..ioctl import hostmem
from ..ioctl.kernel import Kernel

#: bytes into the queue's gart page of the write / read pointer (amd_queue_t write_dispatch_id /
#: read_dispatch_id, the offsets ROCr and tinygrad use for every queue type)
WPTR_OFFSET, RPTR_OFFSET = 56, 128
#: how long a full ring may stay full before the push gives up
RING_FULL_TIMEOUT_S = 30.0


class Ring:
    """The host side of one hardware queue. ``byte_units``: SDMA (pointers in bytes)."""

    def __init__(self, kernel: Kernel, ring_va: int, ring_size: int, gart_va: int, doorbell: int,
                 byte_units: bool):
        self.kernel, self.ring_va, self.size = kernel, ring_va, ring_size
        self.ndw = ring_size // 4
        self.words = hostmem.view(ring_va, ring_size).view(np.uint32)
        self.ptrs = hostmem.view(gart_va, RPTR_OFFSET + 8).view(np.uint64)
        self.wptr_addr, self.rptr_addr = gart_va + WPTR_OFFSET, gart_va + RPTR_OFFSET
        self.doorbell, self.byte_units = doorbell, byte_units
        self.put = 0             # dwords written so far (both kinds count dwords internally)
        self.lock = threading.Lock()

    @property
    def rptr(self) -> int:
        """The engine's read pointer, in dwords."""
        v = int(self.ptrs[RPTR_OFFSET // 8])
        return v // 4 if self.byte_units else v

    @property
    def wptr(self) -> int:
        """The write pointer the host published, in dwords."""
        v = int(self.ptrs[WPTR_OFFSET // 8])
        return v // 4 if self.byte_units else v

    def push(self, words: np.ndarray) -> None:
        """Append ``words`` (uint32) and ring the doorbell."""
        n = len(words)
        with self.lock:
            start = self.put % self.ndw
            pad = 0
            if self.byte_units and start + n > self.ndw:
                pad = self.ndw - start            # SDMA: no packet across the end
            if n + pad > self.ndw // 2:
                raise InvalidArgument(f"a submission of {n} dwords does not fit this {self.size >> 10} KiB ring; "
                                      "split it into several queues, or bind() it (one indirect buffer)")
            self._wait_room(n + pad)
            if pad:
                self.words[start:] = 0
                self.put += pad
                start = 0
            first = min(n, self.ndw - start)
            self.words[start:start + first] = words[:first]
            if first < n:
                self.words[:n - first] = words[first:]
            self.put += n
            hostmem.store_fence()
            ptr = self.put * 4 if self.byte_units else self.put
            self.ptrs[WPTR_OFFSET // 8] = ptr
            self.kernel.mmio_write64(self.doorbell, ptr)

    def _wait_room(self, n: int) -> None:
        deadline = None
        while self.put + n - self.rptr > self.ndw:
            now = time.monotonic()
            deadline = deadline or now + RING_FULL_TIMEOUT_S
            if now > deadline:
                raise GPUHang(f"the queue's ring stayed full for {RING_FULL_TIMEOUT_S:g} s (read pointer "
                              f"{self.rptr}, write pointer {self.put} dwords): the engine is stuck; recover() the device")
            time.sleep(0.0005)

    def reset(self) -> None:
        """Zero the ring and both pointers (the queue is being re-created)."""
        with self.lock:
            self.words[:] = 0
            self.ptrs[WPTR_OFFSET // 8] = 0
            self.ptrs[RPTR_OFFSET // 8] = 0
            self.put = 0
