"""A GPFIFO channel as the host side sees it: the GP entry ring, USERD (GPPut/GPGet), the
pushbuffer ring the commands are copied into, and the doorbell."""
from __future__ import annotations

import collections
import time
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..errors import GPUHang
from ..ioctl import hostmem
from .pushbuffer import gp_entry

if TYPE_CHECKING:
    from ..ioctl.kernel import Kernel

#: GP entries per channel ring
GPFIFO_ENTRIES = 4096
#: bytes of pushbuffer ring per channel that unbound submissions are copied into
PUSHBUFFER_SIZE = 16 << 20
_STALL_TIMEOUT = 10.0


class Channel:
    """Host-side state of one GPFIFO channel."""

    def __init__(self, name: str, kernel: "Kernel", ring: np.ndarray, userd: np.ndarray,
                 gpput_word: int, gpget_word: int, pb_va: int, pb: np.ndarray, token: int,
                 doorbell: int, timeline_done: Callable[[int], bool],
                 wait_timeline: Callable[[int], None]):
        self.name, self.kernel = name, kernel
        self.ring, self.userd = ring, userd           # uint64 view of entries, uint32 view of USERD
        self._gpput, self._gpget = gpput_word, gpget_word
        self.pb_va, self.pb = pb_va, pb               # pushbuffer ring (uint32 view)
        self.token, self.doorbell = token, doorbell
        self.put = 0                                  # entries written (monotonic)
        self._seen_consumed = 0                       # entries known consumed at the last look
        self._pb_off = 0                              # next free word in the pushbuffer ring
        self._pb_inflight: collections.deque[tuple[int, int, int]] = collections.deque()
        self._timeline_done, self._wait_timeline = timeline_done, wait_timeline
        self.history: collections.deque[tuple[int, int, int]] = collections.deque(maxlen=64)

    @property
    def gp_get(self) -> int:
        """GP entries the GPU has consumed (mod ring size), read from USERD."""
        return int(self.userd[self._gpget])

    def push(self, segments: Sequence[tuple[int, int]]) -> None:
        """Queue GP entries for ``(va, ndwords)`` segments and ring the doorbell."""
        n = len(self.ring)
        for va, ndw in segments:
            self._wait_for_ring_slot(n)
            self.ring[self.put % n] = gp_entry(va, ndw)
            self.history.append((self.put, va, ndw))
            self.put += 1
        hostmem.store_fence()
        self.userd[self._gpput] = self.put % n
        self.kernel.mmio_write32(self.doorbell, self.token)

    def copy_in(self, words: np.ndarray, tail: Sequence[int], timeline_value: int) -> tuple[int, int]:
        """Copy ``words`` then ``tail`` into the pushbuffer ring; returns (va, ndwords)."""
        nw = len(words)
        total = nw + len(tail)
        off = self._reserve(total, timeline_value)
        self.pb[off:off + nw] = words
        self.pb[off + nw:off + total] = tail
        return self.pb_va + off * 4, total

    def _reserve(self, nwords: int, timeline_value: int) -> int:
        cap = len(self.pb)
        if nwords > cap:
            raise GPUHang(f"{self.name}: a submission of {nwords * 4} bytes exceeds the "
                          f"{cap * 4}-byte pushbuffer ring; bind() large queues instead")
        off = self._pb_off
        if off + nwords > cap:
            off = 0
        end = off + nwords
        # wait until no earlier submission still occupies [off, end)
        while self._pb_inflight:
            s, e, v = self._pb_inflight[0]
            overlaps = s < end and off < e
            if self._timeline_done(v):
                self._pb_inflight.popleft()
            elif overlaps:
                self._wait_timeline(v)
            else:
                break
        self._pb_inflight.append((off, end, timeline_value))
        self._pb_off = end
        return off

    def _wait_for_ring_slot(self, n: int) -> None:
        # GPGet lives in device memory behind BAR1 (a slow uncached read): look only when the
        # entries written since the last look could have filled the ring
        if self.put - self._seen_consumed < n - 1:
            return
        self._seen_consumed = self._consumed()
        if self.put - self._seen_consumed < n - 1:
            return
        deadline = time.perf_counter() + _STALL_TIMEOUT
        while self.put - self._consumed() >= n - 1:
            if time.perf_counter() > deadline:
                raise GPUHang(f"{self.name}: the GPU has not consumed GPFIFO entries for "
                              f"{_STALL_TIMEOUT} s (GPGet {self.gp_get}, put {self.put % n})")
            time.sleep(0)
        self._seen_consumed = self._consumed()

    def _consumed(self) -> int:
        n = len(self.ring)
        get = self.gp_get
        base = self.put - self.put % n
        c = base + get
        return c if c <= self.put else c - n
