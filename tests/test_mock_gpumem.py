"""PhysBlock/PhysPool and GpuPageTable: mapping rules, faults, vectorised load/store, throughput."""
from __future__ import annotations

import time

import numpy as np
import pytest

from hwdrv.errors import InvalidArgument, OutOfMemory
from hwdrv.ioctl import LinuxKernel, hostmem
from hwdrv.ioctl import kernel as K
from hwdrv.mock import GpuPageTable, MemoryFault, PhysBlock, PhysPool

VA = 0x20_0000_0000


@pytest.fixture
def blocks():
    bs = [PhysBlock(1 << 16, f"b{i}") for i in range(3)]
    yield bs
    for b in bs:
        b.close()


def test_physblock_aliases(blocks):
    b = blocks[0]
    assert b.size == 1 << 16 and b.host_addr % 4096 == 0
    lk = LinuxKernel()
    res = lk.mmap(0, 1 << 16, K.PROT_NONE, K.MAP_PRIVATE | K.MAP_ANONYMOUS | K.MAP_NORESERVE, -1, 0)
    try:
        assert b.map_at(res + 4096, offset=4096, size=8192) == res + 4096
        b.view(np.uint32)[1024] = 0xCAFE                       # private view, page 1
        assert hostmem.view(res + 4096, 8, np.uint32)[0] == 0xCAFE   # the user's mapping: same page
        hostmem.write(res + 8192, b"back")
        assert bytes(b.view()[8192:8196]) == b"back"
    finally:
        lk.munmap(res, 1 << 16)
    with pytest.raises(InvalidArgument):
        b.map_at(0, offset=100)
    with pytest.raises(InvalidArgument):
        PhysBlock(0)


def test_physpool_capacity():
    p = PhysPool(3 * 4096, "vram")
    a = p.alloc(4096)
    b = p.alloc(5000)                                          # rounds to 2 pages
    with pytest.raises(OutOfMemory, match="vram"):
        p.alloc(1)
    p.free(b)
    c = p.alloc(8192)
    with pytest.raises(InvalidArgument):
        p.free(b)
    p.free(a)
    p.free(c)
    assert p.used == 0


def test_map_rules(blocks):
    pt = GpuPageTable()
    pt.map(VA, blocks[0].host_addr, 1 << 16)
    with pytest.raises(InvalidArgument, match="overlaps"):
        pt.map(VA + 0x8000, blocks[1].host_addr, 1 << 16)
    with pytest.raises(InvalidArgument, match="overlaps"):
        pt.map(VA - 0x1000, blocks[1].host_addr, 0x2000)
    pt.map(VA + (1 << 16), blocks[1].host_addr, 1 << 16)       # adjacent is fine
    pt.unmap(VA + 0x4000, 0x1000)                              # split into two
    assert [(m.va - VA, m.size) for m in pt.mappings()] == [(0, 0x4000), (0x5000, 0xB000), (0x10000, 0x10000)]
    with pytest.raises(MemoryFault) as ei:
        pt.translate(VA + 0x4010, 4)
    assert ei.value.reason == "unmapped" and "bytes past" in str(ei.value)
    assert pt.translate(VA + 0x5000, 4) == blocks[0].host_addr + 0x5000
    with pytest.raises(InvalidArgument, match="covers no mapping"):
        pt.unmap(VA + 0x4000, 0x1000)


def test_translate_faults(blocks):
    pt = GpuPageTable()
    pt.map(VA, blocks[0].host_addr, 0x1000)
    pt.map(VA + 0x1000, blocks[1].host_addr, 0x1000, writable=False)
    with pytest.raises(MemoryFault) as ei:
        pt.translate(VA + 0xFFC, 8, "read")                    # runs into the next mapping: not contiguous
    assert (ei.value.address, ei.value.access, ei.value.reason) == (VA + 0xFFC, "read", "out-of-range")
    with pytest.raises(MemoryFault) as ei:
        pt.write(VA + 0x1000, b"x")
    assert (ei.value.access, ei.value.reason) == ("write", "read-only")
    with pytest.raises(MemoryFault) as ei:
        pt.translate(VA - 1, 1, "fetch")
    assert (ei.value.address, ei.value.access, ei.value.reason) == (VA - 1, "fetch", "unmapped")
    assert pt.read(VA + 0x1000, 4) == b"\0\0\0\0"


def test_vector_load_store(blocks):
    pt = GpuPageTable()
    for i, b in enumerate(blocks):
        pt.map(VA + i * 0x100000, b.host_addr, b.size)
    blocks[1].view(np.float32)[:] = np.arange(1 << 14)
    addrs = (VA + 0x100000 + 4 * np.arange(0, 1 << 14, 7)).astype(np.uint64)
    assert (pt.load(addrs, np.float32) == np.arange(0, 1 << 14, 7)).all()
    # lanes spread over different mappings, 2-D shape
    a2 = np.array([[VA, VA + 0x100000 + 8], [VA + 0x200000, VA + 0x100000]], np.uint64)
    pt.store(a2, np.array([[1, 2], [3, 4]], np.uint32))
    assert pt.load(a2, np.uint32).tolist() == [[1, 2], [3, 4]]
    assert blocks[2].view(np.uint32)[0] == 3
    # unaligned lanes
    pt.store(np.array([VA + 1, VA + 7], np.uint64), np.array([0x11223344, 0x55667788], np.uint32))
    assert pt.load(np.array([VA + 1, VA + 7], np.uint64), np.uint32).tolist() == [0x11223344, 0x55667788]
    assert bytes(blocks[0].view()[1:5]) == bytes.fromhex("44332211")
    # broadcast scalar value
    pt.store(np.array([VA + 64, VA + 72], np.uint64), np.uint64(9))
    assert pt.load(np.array([VA + 64, VA + 72], np.uint64), np.uint64).tolist() == [9, 9]


def test_vector_faults_report_lane(blocks):
    pt = GpuPageTable()
    pt.map(VA, blocks[0].host_addr, 0x1000)
    pt.map(VA + 0x2000, blocks[1].host_addr, 0x1000, writable=False)
    addrs = np.array([VA, VA + 4, VA + 0x1800, VA + 8], np.uint64)
    with pytest.raises(MemoryFault) as ei:
        pt.load(addrs, np.uint32)
    f = ei.value
    assert (f.address, f.lane, f.reason, f.access, f.size) == (VA + 0x1800, 2, "unmapped", "read", 4)
    with pytest.raises(MemoryFault) as ei:
        pt.load(np.array([[VA, VA + 0xFFE]], np.uint64), np.uint32)     # straddles the end
    assert (ei.value.lane, ei.value.reason) == (1, "out-of-range")
    with pytest.raises(MemoryFault) as ei:
        pt.store(np.array([VA, VA + 0x2010], np.uint64), np.uint32(1), access="atomic")
    assert (ei.value.address, ei.value.access, ei.value.reason) == (VA + 0x2010, "atomic", "read-only")
    assert blocks[0].view(np.uint32)[0] == 0                   # a faulting store writes no lane
    # masked-off lanes are neither checked nor touched
    m = np.array([True, True, False, True])
    out = pt.load(addrs, np.uint32, mask=m)
    assert out[2] == 0
    pt.store(addrs, np.uint32(5), mask=m)
    assert blocks[0].view(np.uint32)[:3].tolist() == [5, 5, 5]
    empty = GpuPageTable()
    with pytest.raises(MemoryFault, match="no memory is mapped"):
        empty.load(np.array([VA], np.uint64), np.uint8)
    with pytest.raises(InvalidArgument):
        pt.load(np.array([1.5]), np.uint8)


def test_load_throughput(blocks, record_property):
    pt = GpuPageTable()
    bs = [PhysBlock(1 << 20) for _ in range(64)]
    try:
        for i, b in enumerate(bs):
            pt.map(VA + i * (2 << 20), b.host_addr, b.size)
        rng = np.random.default_rng(0)
        n = 1 << 20
        blk = rng.integers(0, 64, n).astype(np.uint64)
        addrs = VA + blk * np.uint64(2 << 20) + 4 * rng.integers(0, 1 << 18, n).astype(np.uint64)
        pt.load(addrs[:10], np.float32)
        t = time.perf_counter()
        pt.load(addrs, np.float32)
        big = n / (time.perf_counter() - t)
        warp = addrs[:32].copy()
        k = 2000
        t = time.perf_counter()
        for _ in range(k):
            pt.load(warp, np.float32)
        small_us = (time.perf_counter() - t) / k * 1e6
        record_property("load_lanes_per_s", big)
        record_property("load_32_lanes_us", small_us)
        print(f"\npage-table load: {big / 1e6:.1f} M lanes/s (1M lanes, 64 mappings); 32-lane load {small_us:.1f} us")
        assert big > 1e6
    finally:
        for b in bs:
            b.close()


def test_masked_load_after_the_lowest_mapping_is_unmapped_and_freed():
    """Inactive lanes of a masked load must not read span[0]: once the lowest mapping is unmapped
    and its host memory freed, that byte is gone (this segfaulted the RDNA3 emulator's SMEM
    loads). Run in a child process so a crash fails the test instead of killing pytest."""
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import mmap, numpy as np
        from hwdrv.ioctl import hostmem
        from hwdrv.mock.gpumem import GpuPageTable
        pt = GpuPageTable()
        lo = mmap.mmap(-1, 1 << 20)
        hi = mmap.mmap(-1, 4096)
        lo_addr, hi_addr = hostmem.addr_of(lo), hostmem.addr_of(hi)
        if lo_addr > hi_addr:
            lo, hi, lo_addr, hi_addr = hi, lo, hi_addr, lo_addr
        pt.map(0x10000000, lo_addr, len(lo))
        pt.map(0x20000000, hi_addr, len(hi))
        hostmem.write(hi_addr, np.arange(4, dtype=np.uint32).tobytes())
        pt.unmap(0x10000000, len(lo))
        lo.close()                               # the lowest host range is gone
        addrs = np.array([0x20000000, 0, 0x20000008, 0], np.uint64)
        mask = np.array([True, False, True, False])
        got = pt.load(addrs, np.uint32, mask)
        assert got.tolist() == [0, 0, 2, 0], got
        print("OK")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "OK" in r.stdout, (r.returncode, r.stderr[-2000:])
