"""Reusing device buffers across tensors (what PyTorch's caching allocator does).

Allocating video memory is a driver call (on NVIDIA an RM allocation and a UVM mapping; freeing
it makes the driver scrub it), far slower than a kernel on small tensors, and an eager program
allocates a result per operation. So a collected tensor's buffer goes into a pool keyed by its
size, and the next tensor of that size takes it. A pooled buffer is reused only after the work
submitted before it was given back has finished (the device's timelines passed the values they
had then), so work still reading it on any queue is never overwritten.

The pool holds at most ``TENSOR_POOL_BYTES`` (default 4 GiB); past that the oldest buffers are
freed, and an allocation the device refuses empties the pool and tries once more.
``TENSOR_POOL_BYTES=0`` turns pooling off."""
from __future__ import annotations

import collections
import os
import threading
from typing import Any

from hwdrv.errors import InvalidArgument, OutOfMemory

DEFAULT_POOL_BYTES = 4 << 30


def pool_limit() -> int:
    """The TENSOR_POOL_BYTES setting (bytes the pool may hold)."""
    raw = os.environ.get("TENSOR_POOL_BYTES", "")
    if not raw:
        return DEFAULT_POOL_BYTES
    try:
        v = int(raw, 0)
    except ValueError:
        v = -1
    if v < 0:
        raise InvalidArgument(f"TENSOR_POOL_BYTES must be a byte count >= 0, got {raw!r}")
    return v


class BufferPool:
    """Free device buffers of one device by size, oldest first."""

    def __init__(self, device: Any, limit: int | None = None):
        self.device = device
        self.limit = pool_limit() if limit is None else limit
        self._free: dict[int, collections.deque] = {}
        self._order: collections.deque = collections.deque()     # (size, buffer), oldest first
        self.bytes = 0
        #: buffers handed out again instead of allocated (tests and benchmarks read it)
        self.reused = 0
        self._lock = threading.Lock()        # give() runs from finalizers, in any thread

    def take(self, size: int) -> Any:
        """A buffer of ``size`` bytes: a pooled one whose earlier work has finished, else a new
        one (emptying the pool first if the device is out of memory)."""
        with self._lock:
            ready = self._free.get(size)
            if ready:
                buf, marks = ready[0]
                if all(tl.done(v) for tl, v in marks) and not buf.freed:
                    ready.popleft()
                    self._order.remove((size, buf))
                    self.bytes -= size
                    self.reused += 1
                    return buf
        try:
            return self.device.alloc(size)
        except OutOfMemory:
            self.clear()
            return self.device.alloc(size)

    def give(self, buf: Any) -> None:
        """Take back ``buf`` (its tensor is gone), or free it when pooling is off, the device
        closed or the pool full."""
        try:
            if buf.freed:
                return
            dev = self.device
            if self.limit < buf.size or dev.closed:
                buf.free()
                return
            marks = tuple((tl, tl.value) for tl in dev._timelines.values())
            evict = []
            with self._lock:
                self._free.setdefault(buf.size, collections.deque()).append((buf, marks))
                self._order.append((buf.size, buf))
                self.bytes += buf.size
                while self.bytes > self.limit:
                    size, old = self._order.popleft()
                    self._free[size].popleft()
                    self.bytes -= size
                    evict.append(old)
            for old in evict:
                old.free()
        except Exception:       # the device may already be closed: its buffers went with it
            pass

    def clear(self) -> None:
        """Free every pooled buffer."""
        with self._lock:
            bufs = [b for _, b in self._order]
            self._free.clear()
            self._order.clear()
            self.bytes = 0
        for buf in bufs:
            try:
                if not buf.freed:
                    buf.free()
            except Exception:   # a closed device released them already
                pass
