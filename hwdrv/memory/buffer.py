"""Buffer: a block of GPU-addressable memory with an explicit lifetime.

The owner (a backend device or its memory manager) creates Buffers and does the real release in
`owner._free_buffer(buf)`; the Buffer only tracks state. Lifetime rules:
  * `free()` releases the memory once. A second `free()` raises BufferFreed (a double free is a
    bug worth seeing); check `.freed` in cleanup code that cannot know.
  * Leaving a `with` block frees the buffer unless it was already freed inside the block.
  * Using a freed buffer (`.va`, `.view()`) raises BufferFreed, naming how it was freed
    (free(), context manager exit, or device close).
  * There is no free on garbage collection: memory goes back at free() or when the device closes.
  * Views keep memory alive: every array `view()` returns holds a *pin*; the owner releases the
    memory (and its address) only once no view of it remains, so a view used after `free()` never
    reaches another allocation and never touches unmapped memory (see `_take_pin`).
"""
from __future__ import annotations

import weakref
from typing import Any, Protocol

import numpy as np

from ..errors import BufferFreed, InvalidArgument


class BufferOwner(Protocol):
    """What a Buffer needs from whoever allocated it."""

    def _free_buffer(self, buf: "Buffer") -> None: ...


class Buffer:
    """GPU memory: `.va` (GPU virtual address), `.size` bytes, `.device`, `.host_visible`.

    `cpu_addr` is where the CPU sees the memory when host-visible; it equals `va` wherever the
    backend arranges GPU VA == CPU VA, and differs only where the kernel driver picks the GPU address.
    `meta` is backend-private (handles, mapping fds).
    """

    __slots__ = ("_owner", "_va", "size", "device", "host_visible", "_cpu_addr", "meta", "_freed_by",
                 "_pin", "__weakref__")

    def __init__(self, owner: BufferOwner, va: int, size: int, *, host_visible: bool,
                 device: Any = None, cpu_addr: int | None = None, meta: Any = None):
        if size <= 0:
            raise InvalidArgument(f"buffer size must be positive, got {size}")
        self._owner = owner
        self._va = va
        self.size = size
        self.device = device if device is not None else owner
        self.host_visible = host_visible
        self._cpu_addr = (va if cpu_addr is None else cpu_addr) if host_visible else None
        self.meta = meta
        self._freed_by: str | None = None
        self._pin: _Pin | None = None

    # --- state ----------------------------------------------------------------------------------------
    @property
    def freed(self) -> bool:
        return self._freed_by is not None

    def _check(self, what: str) -> None:
        if self._freed_by is not None:
            raise BufferFreed(f"{what} on {self!r}: the buffer was freed by {self._freed_by}; allocate a new "
                              "buffer (a freed buffer's address may already belong to another one)")

    @property
    def va(self) -> int:
        """GPU virtual address."""
        self._check("va")
        return self._va

    @property
    def cpu_addr(self) -> int:
        """CPU address of a host-visible buffer."""
        self._check("cpu_addr")
        if self._cpu_addr is None:
            raise InvalidArgument(f"{self!r} is not host-visible: allocate it with host_visible=True, or "
                                  "copy with dev.upload()/dev.download()")
        return self._cpu_addr

    def view(self, dtype=np.uint8, offset: int = 0, nbytes: int | None = None) -> np.ndarray:
        """A zero-copy numpy view of the buffer (host-visible buffers only). Writes go straight to
        the memory the GPU reads; order them before a submit (the queue's doorbell write fences)."""
        self._check("view()")
        addr = self.cpu_addr
        n = self.size - offset if nbytes is None else nbytes
        if offset < 0 or n < 0 or offset + n > self.size:
            raise InvalidArgument(f"view [{offset:#x}, {offset + n:#x}) is outside {self!r}")
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise InvalidArgument(f"view(): dtype must be a numpy dtype, got {dtype!r}") from None
        if dt.hasobject:
            raise InvalidArgument(f"view(): dtype {dt} holds Python objects; use a numeric dtype")
        if n % dt.itemsize:
            raise InvalidArgument(f"view of {n} bytes is not a whole number of {dt} items ({dt.itemsize} bytes)")
        if n == 0:
            return np.zeros(0, dt)
        if self._pin is None:
            self._pin = _Pin()
        return np.asarray(_PinnedBytes(addr + offset, n, self._pin)).view(dt)

    def _take_pin(self) -> "weakref.ref[_Pin] | None":
        """Drop the buffer's own hold on its views' pin (the owner calls this when it is about to
        release the memory): a live result means views still exist, and the owner must keep the
        memory mapped until the pin is collected (``weakref.finalize`` on it)."""
        pin, self._pin = self._pin, None
        if pin is None:
            return None
        ref = weakref.ref(pin)
        del pin
        return ref if ref() is not None else None

    # --- lifetime -------------------------------------------------------------------------------------
    def free(self) -> None:
        """Release the memory. A second call raises BufferFreed."""
        self._release("free()")

    def _release(self, by: str) -> None:
        """Free, recording who did it (owners call this with "device close" when closing)."""
        self._check("free()")
        # Marked first: the owner gets exactly one attempt, so a failing release is never repeated
        # half-done (the owner reports its own error).
        self._freed_by = by
        self._owner._free_buffer(self)

    def __enter__(self) -> "Buffer":
        self._check("with")
        return self

    def __exit__(self, *exc) -> None:
        if self._freed_by is None:
            self._release("context manager exit")

    def __repr__(self) -> str:
        state = f"freed by {self._freed_by}" if self._freed_by else "live"
        vis = "host-visible" if self.host_visible else "device-only"
        dev = getattr(self.device, "name", None) or type(self.device).__name__
        return f"<Buffer va={self._va:#x} size={self.size:#x} {vis} on {dev}, {state}>"


class _Pin:
    """Held by every view of one buffer; the owner frees the memory once it is collected."""

    __slots__ = ("__weakref__",)


class _PinnedBytes:
    """``n`` bytes at ``addr`` exposed to numpy, keeping ``pin`` alive: numpy makes this object
    the base of the array (and of every view or slice of it)."""

    __slots__ = ("__array_interface__", "_pin")

    def __init__(self, addr: int, n: int, pin: _Pin):
        self.__array_interface__ = {"data": (addr, False), "shape": (n,), "typestr": "|u1",
                                    "version": 3}
        self._pin = pin
