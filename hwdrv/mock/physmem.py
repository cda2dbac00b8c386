"""Mock "physical" memory: blocks backed by a memfd, so the same pages can be mapped at several
addresses at once - the mock's private view (what its GPU page table points at) and the user's CPU
mapping wherever they ask for it (e.g. MAP_FIXED inside their VA pool), just like VRAM seen through
a BAR. Pages are allocated lazily by the OS, so a large block costs nothing until touched.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from ..errors import HwdrvError, InvalidArgument, OutOfMemory
from ..ioctl import hostmem
from ..ioctl.kernel import MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_SHARED, PROT_READ, PROT_WRITE, page_align_up
from ..ioctl.linux import LinuxKernel

_os = LinuxKernel()  # the mock's own real-OS access (never the MockKernel: these are real pages)


class PhysBlock:
    """A block of mock physical memory of `size` bytes (rounded up to pages), zero-filled."""

    def __init__(self, size: int, name: str = "hwdrv-mock"):
        if size <= 0:
            raise InvalidArgument(f"physical block size must be positive, got {size}")
        self.size = page_align_up(size)
        self.name = name
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            os.ftruncate(self.fd, self.size)
            self.host_addr = _os.mmap(0, self.size, PROT_READ | PROT_WRITE, MAP_SHARED, self.fd, 0)
        except BaseException:
            os.close(self.fd)
            raise
        self._closed = False

    def map_at(self, addr: int, prot: int = PROT_READ | PROT_WRITE, offset: int = 0,
               size: int | None = None, fixed: bool = True, noreplace: bool = False) -> int:
        """Map [offset, offset+size) of the block at `addr` (MAP_FIXED unless fixed=False, in which
        case addr is a hint, 0 = anywhere; noreplace=True: MAP_FIXED_NOREPLACE, which fails with
        EEXIST where anything is mapped already instead of replacing it). Returns the address. The
        caller owns that mapping (munmap it, or map over it); it keeps the pages alive after close()."""
        self._check()
        size = self.size - offset if size is None else size
        if offset < 0 or size <= 0 or offset + size > self.size or offset % 4096:
            raise InvalidArgument(f"map_at: range [{offset:#x}, {offset + size:#x}) is not a page-aligned "
                                  f"part of the {self.size:#x}-byte block {self.name!r}")
        placement = MAP_FIXED_NOREPLACE if noreplace else MAP_FIXED if fixed else 0
        return _os.mmap(addr, size, prot, MAP_SHARED | placement, self.fd, offset)

    def view(self, dtype=np.uint8, offset: int = 0, nbytes: int | None = None) -> np.ndarray:
        """Zero-copy numpy view of the mock-private mapping."""
        self._check()
        n = self.size - offset if nbytes is None else nbytes
        if offset < 0 or n < 0 or offset + n > self.size:
            raise InvalidArgument(f"view [{offset:#x}, {offset + n:#x}) outside block {self.name!r}")
        return hostmem.view(self.host_addr + offset, n, dtype)

    def _check(self) -> None:
        if self._closed:
            raise HwdrvError(f"physical block {self.name!r} was closed")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Drop the private view and the fd (mappings made with map_at stay valid until unmapped)."""
        if self._closed:
            return
        self._closed = True
        _os.munmap(self.host_addr, self.size)
        os.close(self.fd)

    def __enter__(self) -> "PhysBlock":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PhysBlock {self.name!r} size={self.size:#x} host={self.host_addr:#x}{' closed' if self._closed else ''}>"


class PhysPool:
    """A mock device's memory capacity: hands out PhysBlocks until `capacity` bytes are in use, then
    raises OutOfMemory, the way VRAM runs out (mock drivers turn that into ENOMEM / NV_ERR_NO_MEMORY)."""

    def __init__(self, capacity: int, name: str = "vram"):
        self.capacity, self.name = capacity, name
        self.used = 0
        self._lock = threading.Lock()

    def alloc(self, size: int, name: str | None = None) -> PhysBlock:
        size = page_align_up(size)
        with self._lock:
            if self.used + size > self.capacity:
                raise OutOfMemory(f"mock {self.name}: {size:#x} bytes requested, {self.capacity - self.used:#x} "
                                  f"of {self.capacity:#x} free")
            self.used += size
        try:
            return PhysBlock(size, name or f"hwdrv-mock-{self.name}")
        except BaseException:
            with self._lock:
                self.used -= size
            raise

    def free(self, block: PhysBlock) -> None:
        """Close `block` and return its bytes to the pool."""
        if block.closed:
            raise InvalidArgument(f"{block!r} was already freed")
        block.close()
        with self._lock:
            self.used -= block.size
