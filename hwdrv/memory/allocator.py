"""VARangeAllocator: GPU virtual address ranges inside [base, base+size).

Best fit by size (lowest address among equal sizes), splitting a free range around the aligned
block, coalescing neighbours on free. Free ranges are indexed twice: a sorted list of starts (to
find neighbours) and a sorted list of (size, start) (to find the best fit); both use bisect, so a
lookup is O(log n) and an update moves list memory with memmove (fast for tens of thousands).
"""
from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right, insort
from typing import Iterator, NamedTuple

from ..errors import InvalidArgument, OutOfMemory


class Range(NamedTuple):
    """A [start, start+size) range."""
    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size


def _is_pow2(x: int) -> bool:
    return x > 0 and not x & (x - 1)


class VARangeAllocator:
    """Allocates aligned address ranges from one window.

    `granule` (a power of two) is the smallest unit: sizes are rounded up to it and every block is
    at least granule-aligned (use the page size for ranges that get mmapped). Thread-safe.
    """

    # How many too-small-after-alignment candidates best fit inspects before jumping to ranges that
    # surely fit (size >= need + align - granule); keeps allocation O(log n) with many ranges.
    _SCAN_LIMIT = 32

    def __init__(self, base: int, size: int, granule: int = 1):
        if not _is_pow2(granule):
            raise InvalidArgument(f"granule {granule:#x} must be a power of two")
        if base < 0 or size <= 0 or base % granule or size % granule:
            raise InvalidArgument(f"window base={base:#x} size={size:#x} must be non-negative, non-empty "
                                  f"and multiples of the granule {granule:#x}")
        self.base, self.size, self.granule = base, size, granule
        self._lock = threading.Lock()
        self._free_start: dict[int, int] = {base: size}   # start -> size
        self._starts: list[int] = [base]                   # sorted starts of free ranges
        self._by_size: list[tuple[int, int]] = [(size, base)]
        self._used: dict[int, int] = {}                    # va -> size of allocated blocks
        self._used_starts: list[int] = []                  # sorted, for owner_of()
        self.used_bytes = 0

    @property
    def end(self) -> int:
        return self.base + self.size

    # --- free-list primitives (callers hold the lock) ------------------------------------------------
    def _add_free(self, start: int, size: int) -> None:
        self._free_start[start] = size
        insort(self._starts, start)
        insort(self._by_size, (size, start))

    def _remove_free(self, start: int) -> int:
        size = self._free_start.pop(start)
        del self._starts[bisect_left(self._starts, start)]
        del self._by_size[bisect_left(self._by_size, (size, start))]
        return size

    def _take(self, fstart: int, va: int, size: int) -> None:
        """Carve [va, va+size) out of the free range starting at fstart."""
        fsize = self._remove_free(fstart)
        if va > fstart:
            self._add_free(fstart, va - fstart)
        if va + size < fstart + fsize:
            self._add_free(va + size, fstart + fsize - va - size)
        self._used[va] = size
        insort(self._used_starts, va)
        self.used_bytes += size

    def _round(self, size: int) -> int:
        if not isinstance(size, int) or size <= 0:
            raise InvalidArgument(f"allocation size must be a positive int, got {size!r}")
        g = self.granule
        return (size + g - 1) & ~(g - 1)

    # --- public API -------------------------------------------------------------------------------------
    def alloc(self, size: int, align: int = 0) -> int:
        """Allocate `size` bytes aligned to `align` (a power of two; 0 = the granule). Returns the va.
        Raises OutOfMemory if no free range fits."""
        size = self._round(size)
        align = align or self.granule
        if not _is_pow2(align):
            raise InvalidArgument(f"alignment {align:#x} is not a power of two")
        align = max(align, self.granule)
        with self._lock:
            bs = self._by_size
            i = bisect_left(bs, (size, -1))
            sure = size + align - self.granule  # any free range this big fits after alignment
            scanned = 0
            while i < len(bs):
                fsize, fstart = bs[i]
                va = (fstart + align - 1) & ~(align - 1)
                if va + size <= fstart + fsize:
                    self._take(fstart, va, size)
                    return va
                scanned += 1
                if scanned >= self._SCAN_LIMIT and fsize < sure:
                    i = max(i + 1, bisect_left(bs, (sure, -1)))
                else:
                    i += 1
            raise OutOfMemory(
                f"no free range of {size:#x} bytes aligned to {align:#x} in VA window "
                f"[{self.base:#x}, {self.end:#x}): {self.size - self.used_bytes:#x} bytes free, largest "
                f"free range {self._largest():#x}; free buffers or reserve a larger window")

    def reserve(self, va: int, size: int) -> int:
        """Claim the fixed range [va, va+size) (it must be free and granule-aligned). Returns va;
        release it with free(va)."""
        size = self._round(size)
        if va % self.granule:
            raise InvalidArgument(f"reserve address {va:#x} is not aligned to the granule {self.granule:#x}")
        if va < self.base or va + size > self.end:
            raise InvalidArgument(f"reserve [{va:#x}, {va + size:#x}) lies outside the VA window "
                                  f"[{self.base:#x}, {self.end:#x})")
        with self._lock:
            i = bisect_right(self._starts, va) - 1
            if i >= 0:
                fstart = self._starts[i]
                if va + size <= fstart + self._free_start[fstart]:
                    self._take(fstart, va, size)
                    return va
            hit = self._overlapping_used(va, size)
            raise InvalidArgument(f"cannot reserve [{va:#x}, {va + size:#x}): it overlaps the allocated "
                                  f"range [{hit.start:#x}, {hit.end:#x})" if hit else
                                  f"cannot reserve [{va:#x}, {va + size:#x}): not free")

    def free(self, va: int) -> int:
        """Free the block that starts at `va`; returns its size. Double free or an address that is not
        the start of a block raises InvalidArgument."""
        with self._lock:
            size = self._used.pop(va, None)
            if size is None:
                inside = self._owner_of(va)
                raise InvalidArgument(
                    f"free({va:#x}): no block starts there" +
                    (f"; it lies inside the block [{inside.start:#x}, {inside.end:#x}) - free that block's "
                     "start address" if inside else " (double free, or an address this allocator never "
                     "returned)"))
            del self._used_starts[bisect_left(self._used_starts, va)]
            self.used_bytes -= size
            start, end = va, va + size
            if end in self._free_start:                       # merge with the next free range
                end += self._remove_free(end)
            i = bisect_left(self._starts, start) - 1          # previous free range ends at start?
            if i >= 0:
                pstart = self._starts[i]
                if pstart + self._free_start[pstart] == start:
                    self._remove_free(pstart)
                    start = pstart
            self._add_free(start, end - start)
            return size

    def size_of(self, va: int) -> int:
        """Size of the block starting at `va` (InvalidArgument if none)."""
        try:
            return self._used[va]
        except KeyError:
            raise InvalidArgument(f"{va:#x} is not the start of an allocated block") from None

    def owner_of(self, addr: int) -> Range | None:
        """The allocated block containing `addr`, or None (e.g. to name the buffer behind a fault)."""
        with self._lock:
            return self._owner_of(addr)

    def _owner_of(self, addr: int) -> Range | None:
        i = bisect_right(self._used_starts, addr) - 1
        if i >= 0:
            s = self._used_starts[i]
            if addr < s + self._used[s]:
                return Range(s, self._used[s])
        return None

    def _overlapping_used(self, va: int, size: int) -> Range | None:
        hit = self._owner_of(va)                     # a block containing va ...
        if hit:
            return hit
        j = bisect_left(self._used_starts, va)       # ... or the first block starting inside the range
        if j < len(self._used_starts) and self._used_starts[j] < va + size:
            s = self._used_starts[j]
            return Range(s, self._used[s])
        return None

    def _largest(self) -> int:
        return self._by_size[-1][0] if self._by_size else 0

    @property
    def free_bytes(self) -> int:
        return self.size - self.used_bytes

    @property
    def largest_free(self) -> int:
        """Size of the largest free range."""
        with self._lock:
            return self._largest()

    def __contains__(self, va: int) -> bool:
        return va in self._used

    def __len__(self) -> int:
        """Number of allocated blocks."""
        return len(self._used)

    def free_ranges(self) -> list[Range]:
        """Free ranges in address order (for dumps and tests)."""
        with self._lock:
            return [Range(s, self._free_start[s]) for s in self._starts]

    def allocations(self) -> Iterator[Range]:
        """Allocated blocks in address order."""
        with self._lock:
            items = [Range(s, self._used[s]) for s in self._used_starts]
        return iter(items)

    def __repr__(self) -> str:
        return (f"VARangeAllocator([{self.base:#x}, {self.end:#x}), {len(self._used)} blocks, "
                f"{self.used_bytes:#x} used, {len(self._starts)} free ranges)")
