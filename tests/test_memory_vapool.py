"""VAPool on the real kernel (LinuxKernel) and Buffer lifetime."""
from __future__ import annotations

import os

import numpy as np
import pytest

from hwdrv.errors import BufferFreed, HwdrvError, InvalidArgument, OutOfMemory
from hwdrv.ioctl import LinuxKernel, hostmem
from hwdrv.ioctl import kernel as K
from hwdrv.memory import Buffer, VAPool

MB = 1 << 20


def _prot_at(addr: int) -> str | None:
    """The rwx flags of the /proc/self/maps line containing addr."""
    with open("/proc/self/maps") as f:
        for line in f:
            rng, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in rng.split("-"))
            if lo <= addr < hi:
                return perms[:3]
    return None


@pytest.fixture
def pool():
    p = VAPool(LinuxKernel(), None, 64 * MB)
    yield p
    p.close()


def test_reserve_prot_none_aligned(pool):
    assert pool.base % (2 * MB) == 0 and not pool.at_hint
    assert _prot_at(pool.base) == "---" and _prot_at(pool.end - 1) == "---"


def test_hint_honoured_then_fallback_when_taken():
    lk = LinuxKernel()
    hint = 0x3F_0000_0000
    p1 = VAPool(lk, hint, 8 * MB)
    try:
        assert p1.base == hint and p1.at_hint
        p2 = VAPool(lk, hint, 8 * MB)          # occupied by p1: NOREPLACE fails, falls back elsewhere
        try:
            assert not p2.at_hint and not (p2.base < p1.end and p1.base < p2.end)
        finally:
            p2.close()
    finally:
        p1.close()
    assert _prot_at(hint) is None


def test_place_anonymous_release(pool):
    va = pool.place_anonymous(3 * K.PAGE_SIZE, 1 << 16)
    assert va in pool and va % (1 << 16) == 0 and pool.size_of(va) == 3 * K.PAGE_SIZE
    assert _prot_at(va) == "rw-"
    v = hostmem.view(va, 3 * K.PAGE_SIZE, np.uint32)
    v[:] = 5
    pool.release(va)
    assert _prot_at(va) == "---"               # pages go back to PROT_NONE, still reserved
    va2 = pool.place_anonymous(3 * K.PAGE_SIZE, 1 << 16)
    assert va2 == va and hostmem.view(va2, 16, np.uint32)[0] == 0      # fresh pages
    pool.release(va2)
    with pytest.raises(InvalidArgument):
        pool.release(va2)


def test_place_file_mapping_shares_pages(pool):
    fd = os.memfd_create("vapool-test")
    try:
        os.ftruncate(fd, 2 * K.PAGE_SIZE)
        a = pool.place(2 * K.PAGE_SIZE, 0, fd, 0)
        b = pool.place(K.PAGE_SIZE, 0, fd, K.PAGE_SIZE)
        hostmem.write(a + K.PAGE_SIZE, b"shared")
        assert hostmem.read(b, 6) == b"shared"       # two VAs, same pages
        assert os.pread(fd, 6, K.PAGE_SIZE) == b"shared"
        pool.release(a)
        pool.release(b)
    finally:
        os.close(fd)


def test_place_failure_keeps_range_reserved(pool):
    with pytest.raises(HwdrvError) as ei:
        pool.place(K.PAGE_SIZE, 0, 987654, 0)       # bad fd: mmap fails
    assert getattr(ei.value, "errno", None) is not None
    assert pool.alloc.used_bytes == 0 and _prot_at(pool.base) == "---"


def test_place_at_replace_gpu_only(pool):
    va = pool.place_at(pool.base + 16 * MB, K.PAGE_SIZE, -1, 0, flags=K.MAP_SHARED | K.MAP_ANONYMOUS)
    assert va == pool.base + 16 * MB and _prot_at(va) == "rw-"
    pool.replace(va, -1, 0, prot=K.PROT_READ)
    assert _prot_at(va) == "r--"
    g = pool.reserve_gpu_only(4 * MB, 2 * MB)
    assert g % (2 * MB) == 0 and _prot_at(g) == "---"
    with pytest.raises(InvalidArgument):
        pool.place_at(va, K.PAGE_SIZE, -1, 0)         # taken
    pool.release(g)
    pool.release(va)
    with pytest.raises(OutOfMemory):
        pool.reserve_gpu_only(128 * MB)


def test_close_unmaps_everything():
    p = VAPool(LinuxKernel(), None, 4 * MB)
    va = p.place_anonymous(K.PAGE_SIZE)
    p.close()
    p.close()                                       # idempotent
    assert _prot_at(va) is None and _prot_at(p.base) is None
    with pytest.raises(HwdrvError, match="closed"):
        p.place_anonymous(K.PAGE_SIZE)


def test_bad_pool_args():
    with pytest.raises(InvalidArgument):
        VAPool(LinuxKernel(), None, 100)
    with pytest.raises(InvalidArgument):
        VAPool(LinuxKernel(), 0x1234000, MB)


# --- Buffer -----------------------------------------------------------------------------------------
class Owner:
    name = "testdev"

    def __init__(self, pool):
        self.pool, self.freed, self.live = pool, [], set()

    def alloc(self, size, host_visible=True):
        va = self.pool.place_anonymous(size) if host_visible else self.pool.reserve_gpu_only(size)
        b = Buffer(self, va, size, host_visible=host_visible)
        self.live.add(b)
        return b

    def _free_buffer(self, buf):
        self.freed.append(buf._va)
        self.live.discard(buf)
        self.pool.release(buf._va)

    def close(self):
        for b in list(self.live):
            b._release("device close")


def test_buffer_view_and_free(pool):
    dev = Owner(pool)
    b = dev.alloc(8192)
    assert b.device is dev and b.cpu_addr == b.va
    v = b.view(np.float32)
    v[:] = np.arange(2048)
    assert b.view(np.float32, offset=4, nbytes=8).tolist() == [1.0, 2.0]
    assert "live" in repr(b) and "host-visible" in repr(b) and "testdev" in repr(b)
    b.free()
    assert b.freed and dev.freed == [b._va]
    with pytest.raises(BufferFreed, match="free()"):
        b.free()                                     # double free is reported, not ignored
    with pytest.raises(BufferFreed):
        b.va
    with pytest.raises(BufferFreed):
        b.view()
    assert "freed by free()" in repr(b)
    with pytest.raises(InvalidArgument):
        b2 = dev.alloc(4096)
        b2.view(offset=4000, nbytes=200)


def test_buffer_device_only_has_no_view(pool):
    dev = Owner(pool)
    b = dev.alloc(4096, host_visible=False)
    with pytest.raises(InvalidArgument, match="host_visible=True"):
        b.view()
    b.free()


def test_buffer_context_manager_and_device_close(pool):
    dev = Owner(pool)
    with dev.alloc(4096) as b:
        b.view()[:] = 1
    assert b.freed and len(dev.freed) == 1
    with dev.alloc(4096) as c:
        c.free()                                     # freed inside: exit does not free again
    assert len(dev.freed) == 2
    d = dev.alloc(4096)
    dev.close()
    with pytest.raises(BufferFreed, match="device close"):
        d.view()
    assert pool.alloc.used_bytes == 0
