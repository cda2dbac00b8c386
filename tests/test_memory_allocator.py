"""VARangeAllocator: unit tests, hypothesis state machine, and a 10k-range speed measurement."""
from __future__ import annotations

import random
import time

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hwdrv.errors import InvalidArgument, OutOfMemory
from hwdrv.memory import Range, VARangeAllocator

BASE = 0x10_0000_0000


def test_alloc_free_coalesce():
    a = VARangeAllocator(BASE, 0x10000, granule=0x1000)
    x = a.alloc(0x1000)
    y = a.alloc(0x1800)                  # rounded to the granule
    z = a.alloc(0x1000)
    assert (x, y, z) == (BASE, BASE + 0x1000, BASE + 0x3000)
    assert a.size_of(y) == 0x2000 and a.used_bytes == 0x4000
    a.free(y)
    assert a.free_ranges() == [Range(BASE + 0x1000, 0x2000), Range(BASE + 0x4000, 0xC000)]
    a.free(x)
    assert a.free_ranges()[0] == Range(BASE, 0x3000)          # merged with the previous hole
    a.free(z)
    assert a.free_ranges() == [Range(BASE, 0x10000)] and a.used_bytes == 0 and len(a) == 0


def test_best_fit_prefers_smallest_hole():
    a = VARangeAllocator(0, 0x100, granule=1)
    blocks = [a.alloc(0x10) for _ in range(8)]
    a.free(blocks[1])                                          # 0x10 hole at 0x10
    a.free(blocks[4]); a.free(blocks[5])                        # 0x20 hole at 0x40
    assert a.alloc(0x10) == 0x10
    assert a.alloc(0x18) == 0x40


def test_alignment():
    a = VARangeAllocator(BASE + 0x1000, 1 << 30, granule=0x1000)
    a.alloc(0x1000)
    va = a.alloc(0x1000, 1 << 21)
    assert va % (1 << 21) == 0
    with pytest.raises(InvalidArgument, match="power of two"):
        a.alloc(0x1000, 0x3000)
    assert a.alloc(0x10, 0x10) % 0x1000 == 0                   # never below the granule


def test_out_of_memory_message():
    a = VARangeAllocator(0, 0x4000, granule=0x1000)
    a.alloc(0x3000)
    with pytest.raises(OutOfMemory, match=r"0x2000 bytes aligned.*0x1000 bytes free"):
        a.alloc(0x2000)
    # fits in size but not once aligned
    b = VARangeAllocator(0x1000, 0x3000, granule=0x1000)
    with pytest.raises(OutOfMemory):
        b.alloc(0x2000, 0x4000)


def test_free_errors():
    a = VARangeAllocator(0, 0x10000, granule=0x1000)
    x = a.alloc(0x4000)
    with pytest.raises(InvalidArgument, match="inside the block"):
        a.free(x + 0x1000)
    a.free(x)
    with pytest.raises(InvalidArgument, match="double free"):
        a.free(x)
    with pytest.raises(InvalidArgument, match="double free"):
        a.free(0x12345000)
    with pytest.raises(InvalidArgument):
        a.alloc(0)
    with pytest.raises(InvalidArgument):
        VARangeAllocator(0x10, 0x1000, granule=0x1000)


def test_reserve():
    a = VARangeAllocator(0, 0x10000, granule=0x1000)
    assert a.reserve(0x4000, 0x2000) == 0x4000
    assert a.free_ranges() == [Range(0, 0x4000), Range(0x6000, 0xA000)]
    with pytest.raises(InvalidArgument, match=r"overlaps the allocated range \[0x4000, 0x6000\)"):
        a.reserve(0x3000, 0x2000)
    with pytest.raises(InvalidArgument, match=r"overlaps the allocated range \[0x4000, 0x6000\)"):
        a.reserve(0x5000, 0x100)
    with pytest.raises(InvalidArgument, match="outside"):
        a.reserve(0xF000, 0x2000)
    with pytest.raises(InvalidArgument, match="granule"):
        a.reserve(0x100, 0x1000)
    assert a.alloc(0x4000) == 0                                 # allocation avoids the reserved block
    assert a.owner_of(0x5fff) == Range(0x4000, 0x2000) and a.owner_of(0x6000) is None
    a.free(0x4000)
    a.free(0)
    assert a.free_ranges() == [Range(0, 0x10000)]


class AllocatorMachine(RuleBasedStateMachine):
    """Random alloc/reserve/free against a simple model: no overlap, alignment, full coalescing."""

    SIZE = 1 << 24
    G = 0x1000

    def __init__(self):
        super().__init__()
        self.a = VARangeAllocator(BASE, self.SIZE, granule=self.G)
        self.live: dict[int, int] = {}

    @rule(size=st.integers(1, 1 << 20), align_log=st.integers(0, 22))
    def alloc(self, size, align_log):
        align = 1 << align_log
        try:
            va = self.a.alloc(size, align)
        except OutOfMemory:
            # must be genuinely impossible: no free range can hold an aligned block of this size
            need = -(-size // self.G) * self.G
            al = max(align, self.G)
            for r in self.a.free_ranges():
                s = -(-r.start // al) * al
                assert s + need > r.end
            return
        assert va % max(align, self.G) == 0
        assert self.a.size_of(va) >= size and self.a.size_of(va) % self.G == 0
        self.live[va] = self.a.size_of(va)

    @rule(off=st.integers(0, (1 << 24) // 0x1000 - 1), pages=st.integers(1, 64))
    def reserve(self, off, pages):
        va, size = BASE + off * self.G, pages * self.G
        overlaps = any(v < va + size and va < v + s for v, s in self.live.items())
        inside = va + size <= BASE + self.SIZE
        if overlaps or not inside:
            with pytest.raises(InvalidArgument):
                self.a.reserve(va, size)
        else:
            assert self.a.reserve(va, size) == va
            self.live[va] = size

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        va = data.draw(st.sampled_from(sorted(self.live)))
        assert self.a.free(va) == self.live.pop(va)

    @invariant()
    def consistent(self):
        blocks = sorted(self.live.items())
        for (v1, s1), (v2, _) in zip(blocks, blocks[1:]):
            assert v1 + s1 <= v2                                  # no overlap
        free = self.a.free_ranges()
        for r1, r2 in zip(free, free[1:]):
            assert r1.end < r2.start                              # coalesced: free ranges never touch
        assert sum(r.size for r in free) + sum(self.live.values()) == self.SIZE
        assert list(self.a.allocations()) == [Range(v, s) for v, s in blocks]

    def teardown(self):
        for va in list(self.live):
            self.a.free(va)
        assert self.a.free_ranges() == [Range(BASE, self.SIZE)]


TestAllocatorMachine = AllocatorMachine.TestCase
TestAllocatorMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


def test_10k_ranges_speed(record_property):
    a = VARangeAllocator(BASE, 1 << 44, granule=0x1000)
    rng = random.Random(1)
    n = 10_000
    t0 = time.perf_counter()
    vas = [a.alloc(rng.choice((0x1000, 0x3000, 0x10000, 0x200000)), rng.choice((0, 0x10000, 0x200000)))
           for _ in range(n)]
    t1 = time.perf_counter()
    rng.shuffle(vas)
    for va in vas[: n // 2]:                                      # fragment: thousands of holes
        a.free(va)
    t2 = time.perf_counter()
    live = vas[n // 2:]
    for i in range(n):                                            # steady state: free one, alloc one
        j = rng.randrange(len(live))
        a.free(live[j])
        live[j] = a.alloc(rng.choice((0x1000, 0x3000, 0x10000)), rng.choice((0, 0x10000)))
    t3 = time.perf_counter()
    for va in live:
        a.free(va)
    t4 = time.perf_counter()
    assert a.free_ranges() == [Range(BASE, 1 << 44)]
    alloc_rate = n / (t1 - t0)
    free_rate = (n // 2) / (t2 - t1)
    frag_rate = n / (t3 - t2)
    record_property("alloc_per_s", alloc_rate)
    record_property("free_per_s", free_rate)
    print(f"\n10k: alloc {alloc_rate:,.0f}/s, free {free_rate:,.0f}/s, free+alloc pairs in fragmented space "
          f"{frag_rate:,.0f}/s, teardown {(t4 - t3) * 1e3:.1f} ms")
    assert alloc_rate > 5_000 and free_rate > 5_000
