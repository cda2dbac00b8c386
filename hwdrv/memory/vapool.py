"""VAPool: one PROT_NONE range of this process's address space, reserved once, that every
CPU-visible GPU allocation lands in with MAP_FIXED (GPU VA == CPU VA).

Why a pool: MAP_FIXED at an address we merely hope is free silently replaces whatever the process
had there (libc heaps, other libraries' mappings). Inside a range we reserved ourselves, MAP_FIXED
only ever replaces our own PROT_NONE pages. Releasing a block maps PROT_NONE back over it, so the
range stays reserved and no one else can land there.
"""
from __future__ import annotations

import errno as E
import threading

from ..errors import HwdrvError, InvalidArgument, IoctlError
from ..ioctl.kernel import (MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_NORESERVE, MAP_PRIVATE,
                            MAP_SHARED, PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE, Kernel)
from .allocator import VARangeAllocator

_RESERVE_FLAGS = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE


class VAPool:
    """A reserved address window plus a VARangeAllocator over it.

    `base_hint`: where to put the window (e.g. below 2^40 for NVIDIA QMD/semaphore address limits);
    tried with MAP_FIXED_NOREPLACE, falling back to any address the kernel picks (check `.at_hint`).
    `align`: alignment of the window's base (default 2 MiB, so huge-page-sized blocks can be aligned).
    """

    def __init__(self, kernel: Kernel, base_hint: int | None, size: int, align: int = 2 << 20):
        if size <= 0 or size % PAGE_SIZE:
            raise InvalidArgument(f"VA pool size {size:#x} must be a positive multiple of the page size "
                                  f"{PAGE_SIZE:#x}")
        if align < PAGE_SIZE or align & (align - 1):
            raise InvalidArgument(f"VA pool alignment {align:#x} must be a power of two >= the page size")
        if base_hint is not None and base_hint % align:
            raise InvalidArgument(f"VA pool hint {base_hint:#x} is not aligned to {align:#x}")
        self.kernel = kernel
        self._lock = threading.Lock()
        self._kinds: dict[int, str] = {}       # va -> "mapped" | "gpu-only"
        self._detached: dict[int, int] = {}    # va -> size: anonymous stand-ins close() keeps
        self.base, self.at_hint = self._reserve(base_hint, size, align)
        self.size = size
        self.alloc = VARangeAllocator(self.base, size, granule=PAGE_SIZE)
        self._closed = False

    def _reserve(self, hint: int | None, size: int, align: int) -> tuple[int, bool]:
        k = self.kernel
        if hint:
            try:
                got = k.mmap(hint, size, PROT_NONE, _RESERVE_FLAGS | MAP_FIXED_NOREPLACE, -1, 0)
            except IoctlError as e:
                if e.errno not in (E.EEXIST, E.ENOMEM, E.EINVAL, E.EPERM):
                    raise
            else:
                if got == hint:
                    return got, True
                k.munmap(got, size)    # pre-4.17 kernels treat the flag as a hint: not where we asked
        # Anywhere: over-reserve by `align`, then trim both ends so the base is aligned.
        got = k.mmap(0, size + align, PROT_NONE, _RESERVE_FLAGS, -1, 0)
        base = (got + align - 1) & ~(align - 1)
        if base > got:
            k.munmap(got, base - got)
        tail = got + size + align - (base + size)
        if tail:
            k.munmap(base + size, tail)
        return base, False

    @property
    def end(self) -> int:
        return self.base + self.size

    def __contains__(self, addr: int) -> bool:
        return self.base <= addr < self.end

    def _check_open(self) -> None:
        if self._closed:
            raise HwdrvError(f"VA pool [{self.base:#x}, {self.end:#x}) was closed; create a new one")

    def _map_fixed(self, va: int, size: int, prot: int, flags: int, fd: int, offset: int) -> None:
        try:
            got = self.kernel.mmap(va, size, prot, flags | MAP_FIXED, fd, offset)
        except BaseException:
            # A failed MAP_FIXED may already have removed the old pages: re-reserve before reuse.
            self._protnone(va, size)
            raise
        if got != va:
            self._protnone(va, size)
            raise HwdrvError(f"mmap with MAP_FIXED at {va:#x} returned {got:#x}: the kernel (or mock) did not "
                             "honour MAP_FIXED; this is a driver bug")

    def _protnone(self, va: int, size: int) -> None:
        self.kernel.mmap(va, size, PROT_NONE, _RESERVE_FLAGS | MAP_FIXED, -1, 0)

    def place(self, size: int, align: int, fd: int, offset: int, prot: int = PROT_READ | PROT_WRITE,
              flags: int = MAP_SHARED) -> int:
        """Pick a free aligned range and mmap (fd, offset) over it with MAP_FIXED. Returns the va."""
        with self._lock:
            self._check_open()
            va = self.alloc.alloc(size, align)
            try:
                self._map_fixed(va, self.alloc.size_of(va), prot, flags, fd, offset)
            except BaseException:
                self.alloc.free(va)
                raise
            self._kinds[va] = "mapped"
            return va

    def place_at(self, va: int, size: int, fd: int, offset: int, prot: int = PROT_READ | PROT_WRITE,
                 flags: int = MAP_SHARED) -> int:
        """Like place(), at a caller-chosen free va inside the pool."""
        with self._lock:
            self._check_open()
            self.alloc.reserve(va, size)
            try:
                self._map_fixed(va, self.alloc.size_of(va), prot, flags, fd, offset)
            except BaseException:
                self.alloc.free(va)
                raise
            self._kinds[va] = "mapped"
            return va

    def place_anonymous(self, size: int, align: int = PAGE_SIZE, prot: int = PROT_READ | PROT_WRITE,
                        flags: int = MAP_SHARED) -> int:
        """Fresh zeroed host memory at a pool address (e.g. pinned sysmem that is then registered
        with the driver). MAP_SHARED by default so the pages survive fork() shared, not COW."""
        return self.place(size, align, -1, 0, prot, flags | MAP_ANONYMOUS)

    def replace(self, va: int, fd: int, offset: int, prot: int = PROT_READ | PROT_WRITE,
                flags: int = MAP_SHARED) -> None:
        """Map something else over an existing block (same va and size), e.g. after a driver migrated it."""
        with self._lock:
            self._check_open()
            size = self.alloc.size_of(va)
            if fd == -1:
                flags |= MAP_ANONYMOUS
            self._map_fixed(va, size, prot, flags, fd, offset)
            self._kinds[va] = "mapped"

    def reserve_gpu_only(self, size: int, align: int = PAGE_SIZE) -> int:
        """A range for GPU-only memory: the CPU side stays PROT_NONE (touching it segfaults)."""
        with self._lock:
            self._check_open()
            va = self.alloc.alloc(size, align)
            self._kinds[va] = "gpu-only"
            return va

    def release(self, va: int) -> None:
        """Return the block at `va` to PROT_NONE and free its range."""
        with self._lock:
            self._check_open()
            size = self.alloc.size_of(va)
            if self._kinds.get(va) == "mapped":
                self._protnone(va, size)
            self._kinds.pop(va, None)
            self.alloc.free(va)

    def detach(self, va: int) -> None:
        """Replace the block at ``va`` by private zero pages that outlive the pool: for memory the
        driver is about to take away while host views of it still exist (a device closing). The
        views then read zeros instead of faulting; ``close()`` leaves the block mapped and
        ``drop_detached`` unmaps it once the views are gone."""
        with self._lock:
            size = self.alloc.size_of(va)
            self.kernel.mmap(va, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
            self._kinds[va] = "detached"
            self._detached[va] = size

    def drop_detached(self, va: int) -> None:
        """Unmap a detached block (after close) or return it to the pool (before)."""
        with self._lock:
            size = self._detached.pop(va)
            if self._closed:
                self.kernel.munmap(va, size)
                return
            self._protnone(va, size)
            self._kinds.pop(va, None)
            self.alloc.free(va)

    def size_of(self, va: int) -> int:
        """Size of the block at `va`."""
        return self.alloc.size_of(va)

    def close(self) -> None:
        """Unmap the whole window (every block in it goes away). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            at = self.base
            for va in sorted(self._detached):      # keep the detached blocks: views still use them
                if va > at:
                    self.kernel.munmap(at, va - at)
                at = va + self._detached[va]
            if at < self.end:
                self.kernel.munmap(at, self.end - at)

    def __enter__(self) -> "VAPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self.alloc)} blocks, {self.alloc.used_bytes:#x} used"
        return f"VAPool([{self.base:#x}, {self.end:#x}), {state})"
