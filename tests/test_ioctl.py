"""hwdrv.ioctl: request encoding, errno hints, LinuxKernel on the real OS, host memory and fences."""
from __future__ import annotations

import errno
import os
import time

import numpy as np
import pytest
from hypothesis import given, strategies as st

from hwdrv.errors import InvalidArgument, IoctlError, SyscallError
from hwdrv.ioctl import _IO, _IOR, _IOW, _IOWR, LinuxKernel, decode, describe, hostmem
from hwdrv.ioctl import kernel as K
from hwdrv.ioctl.errnos import hint_for, ioctl_error
from hwdrv.ioctl.linux import _off_t

FIONREAD = 0x541B   # asm-generic ioctls.h (x86-64 and arm64)


# --- ioc ------------------------------------------------------------------------------------------------
def test_known_request_numbers():
    # Values from the kernels' headers (KFD, kgsl, NVIDIA RM escape through _IOWR('F', ...)).
    assert _IOWR("K", 0x02, 0x58) == 0xC0584B02          # AMDKFD_IOC_CREATE_QUEUE
    assert _IOR("K", 0x01, 8) == 0x80084B01              # AMDKFD_IOC_GET_VERSION
    assert _IOWR(0x09, 0x4A, 0x40) == 0xC040094A         # kgsl, seen in a real log
    assert _IOW(0x09, 0x07, 0x0C) == 0x400C0907
    assert _IO("F", 0) == 0x4600
    assert decode(0xC0584B02) == (3, ord("K"), 2, 0x58)


@given(st.integers(0, 3), st.integers(0, 255), st.integers(0, 255), st.integers(0, (1 << 14) - 1))
def test_encode_decode_roundtrip(d, t, nr, size):
    from hwdrv.ioctl.ioc import _IOC
    req = _IOC(d, t, nr, size)
    assert decode(req) == (d, t, nr, size)
    assert req < 1 << 32


def test_encode_rejects_out_of_range():
    with pytest.raises(InvalidArgument, match="size"):
        _IOWR("F", 1, 1 << 14)       # would silently wrap into the direction bits
    with pytest.raises(InvalidArgument, match="nr"):
        _IOR("F", 256, 4)
    with pytest.raises(InvalidArgument):
        _IO("FF", 1)
    with pytest.raises(InvalidArgument):
        decode(1 << 32)


def test_describe():
    assert describe(0xC0584B02) == "0xc0584b02 (_IOWR 'K' nr 0x02 size 88)"
    assert "_IO " in describe(_IO(0x09, 3))


# --- errno hints ----------------------------------------------------------------------------------------
def test_hints_name_path_and_cause():
    assert "/dev/kfd" in hint_for(errno.EACCES, "/dev/kfd")
    assert "ABI" in hint_for(errno.EINVAL)
    assert hint_for(errno.ENOMEM) and hint_for(errno.EBUSY)
    assert hint_for(12345) == ""
    e = ioctl_error(0xC0584B02, errno.EINVAL, "AMDKFD_IOC_CREATE_QUEUE", "/dev/kfd")
    assert isinstance(e, IoctlError) and e.errno == errno.EINVAL
    s = str(e)
    assert "AMDKFD_IOC_CREATE_QUEUE on /dev/kfd" in s and "EINVAL" in s and "struct size" in s


# --- LinuxKernel ----------------------------------------------------------------------------------------
@pytest.fixture
def lk():
    return LinuxKernel()


def test_ioctl_on_dev_null_is_enotty(lk):
    fd = lk.open("/dev/null", K.O_RDWR | K.O_CLOEXEC)
    try:
        buf = np.zeros(4, np.uint8)
        with pytest.raises(IoctlError) as ei:
            lk.ioctl(fd, _IOR("F", 1, 4), hostmem.addr_of(buf), name="TEST_IOCTL")
        e = ei.value
        assert e.errno == errno.ENOTTY and e.name == "TEST_IOCTL on /dev/null"
        assert "ENOTTY" in str(e) and "does not know this request" in str(e)
        with pytest.raises(IoctlError) as ei:
            lk.ioctl(fd, _IOR("F", 1, 4), hostmem.addr_of(buf))   # unnamed: the decoded request
        assert "_IOR 'F' nr 0x01 size 4" in str(ei.value)
    finally:
        lk.close(fd)


def test_fionread_on_pipe_through_big_arg(lk):
    r, w = os.pipe()
    try:
        os.write(w, b"x" * 1234)
        # The arg lives inside a 4 KiB buffer (fcntl.ioctl would cap an in-place buffer at 1024 bytes):
        # the kernel writes straight into our memory at the address we pass.
        big = np.full(4096, 0xAA, np.uint8)
        addr = hostmem.addr_of(big) + 2048
        assert lk.ioctl(r, FIONREAD, addr, name="FIONREAD") == 0
        assert int(big[2048:2052].view(np.int32)[0]) == 1234
        assert (big[:2048] == 0xAA).all() and (big[2052:] == 0xAA).all()
    finally:
        os.close(r)
        os.close(w)


def test_open_missing_and_close_bad_fd(lk):
    with pytest.raises(SyscallError) as ei:
        lk.open("/dev/hwdrv-does-not-exist", K.O_RDWR)
    assert ei.value.errno == errno.ENOENT and "/dev/hwdrv-does-not-exist" in str(ei.value)
    assert isinstance(ei.value, IoctlError)
    with pytest.raises(SyscallError) as ei:
        lk.close(987654)
    assert ei.value.errno == errno.EBADF
    with pytest.raises(IoctlError) as ei:
        lk.ioctl(987654, FIONREAD, 0)
    assert ei.value.errno == errno.EBADF


def test_mmap_munmap_and_fixed_noreplace(lk):
    size = 4 * K.PAGE_SIZE
    a = lk.mmap(0, size, K.PROT_READ | K.PROT_WRITE, K.MAP_PRIVATE | K.MAP_ANONYMOUS, -1, 0)
    try:
        v = hostmem.view(a, size, np.uint32)
        v[:] = 7
        assert hostmem.read(a, 8) == b"\x07\0\0\0\x07\0\0\0"
        with pytest.raises(SyscallError) as ei:   # the range is taken: NOREPLACE refuses (kernel >= 4.17)
            lk.mmap(a, K.PAGE_SIZE, K.PROT_READ, K.MAP_PRIVATE | K.MAP_ANONYMOUS | K.MAP_FIXED_NOREPLACE, -1, 0)
        assert ei.value.errno == errno.EEXIST
        b = lk.mmap(a + K.PAGE_SIZE, K.PAGE_SIZE, K.PROT_READ | K.PROT_WRITE,
                    K.MAP_PRIVATE | K.MAP_ANONYMOUS | K.MAP_FIXED, -1, 0)
        assert b == a + K.PAGE_SIZE and v[K.PAGE_SIZE // 4] == 0   # replaced by fresh zero pages
    finally:
        lk.munmap(a, size)
    with pytest.raises(SyscallError) as ei:    # no fd and not anonymous
        lk.mmap(0, K.PAGE_SIZE, K.PROT_READ, K.MAP_PRIVATE, -1, 0)
    assert ei.value.errno == errno.EBADF and "mmap(" in str(ei.value)
    with pytest.raises(InvalidArgument):
        lk.mmap(0, 0, K.PROT_READ, K.MAP_PRIVATE | K.MAP_ANONYMOUS, -1, 0)


def test_mmap_file_offset_and_high_offset_bits(lk):
    fd = os.memfd_create("t")
    try:
        os.ftruncate(fd, 2 * K.PAGE_SIZE)
        os.pwrite(fd, b"second page", K.PAGE_SIZE)
        a = lk.mmap(0, K.PAGE_SIZE, K.PROT_READ, K.MAP_SHARED, fd, K.PAGE_SIZE)
        assert hostmem.read(a, 11) == b"second page"
        lk.munmap(a, K.PAGE_SIZE)
    finally:
        os.close(fd)
    # KFD-style offsets with bit 63 set keep their bit pattern in the signed off_t
    assert _off_t(3 << 62) == (3 << 62) - (1 << 64)
    assert _off_t(0x1000) == 0x1000
    with pytest.raises(InvalidArgument):
        _off_t(1 << 64)


def test_files(lk, tmp_path):
    (tmp_path / "a").write_bytes(b"hello\n")
    (tmp_path / "d").mkdir()
    assert lk.read_file(str(tmp_path / "a")) == b"hello\n"
    assert lk.listdir(str(tmp_path)) == ["a", "d"]
    assert lk.exists(str(tmp_path / "d")) and not lk.exists(str(tmp_path / "zz"))
    with pytest.raises(SyscallError) as ei:
        lk.read_file(str(tmp_path / "zz"))
    assert ei.value.errno == errno.ENOENT


def test_linux_kernel_is_not_mock(lk):
    assert lk.is_mock is False


# --- hostmem --------------------------------------------------------------------------------------------
def test_hostmem_read_write_view():
    arr = np.zeros(64, np.uint8)
    a = hostmem.addr_of(arr)
    hostmem.write(a + 3, b"abc")
    assert bytes(arr[3:6]) == b"abc" and hostmem.read(a + 3, 3) == b"abc"
    v = hostmem.view(a, 64, np.uint32)
    v[0] = 0x11223344
    assert list(arr[:4]) == [0x44, 0x33, 0x22, 0x11]          # zero-copy both ways
    hostmem.write(a + 8, np.array([1, 2], np.uint16))
    assert list(arr[8:12]) == [1, 0, 2, 0]
    assert hostmem.view(a, 0).size == 0
    with pytest.raises(InvalidArgument):
        hostmem.view(a, 6, np.uint32)
    with pytest.raises(InvalidArgument):
        hostmem.read(0, 4)
    ba = bytearray(8)
    hostmem.write(hostmem.addr_of(ba), b"\x01")
    assert ba[0] == 1


def test_fences_and_mmio_stores():
    hostmem.store_fence()
    hostmem.full_fence()
    buf = np.zeros(4, np.uint64)
    a = hostmem.addr_of(buf)
    hostmem.mmio_write32(a + 4, 0xDEADBEEF)
    hostmem.mmio_write64(a + 8, 0x0123456789ABCDEF)
    assert buf[0] == 0xDEADBEEF << 32 and buf[1] == 0x0123456789ABCDEF
    assert hostmem.mmio_read32(a + 4) == 0xDEADBEEF and hostmem.mmio_read64(a + 8) == 0x0123456789ABCDEF
    with pytest.raises(InvalidArgument, match="aligned"):
        hostmem.mmio_write32(a + 2, 1)
    with pytest.raises(InvalidArgument, match="aligned"):
        hostmem.mmio_write64(a + 4, 1)
    with pytest.raises(InvalidArgument, match="32 bits"):
        hostmem.mmio_write32(a, 1 << 32)
    with pytest.raises(InvalidArgument, match="64 bits"):
        hostmem.mmio_write64(a, -1)
    assert buf[0] == 0xDEADBEEF << 32                              # failed stores wrote nothing


def test_prepared_doorbell_store():
    """fenced_store32 checks once and each call stores the value (a channel's doorbell)."""
    buf = np.zeros(4, np.uint32)
    a = hostmem.addr_of(buf)
    ring = hostmem.fenced_store32(a + 8, 0xCAFE)
    assert buf[2] == 0                       # preparing stores nothing
    ring()
    assert buf[2] == 0xCAFE and buf[[0, 1, 3]].tolist() == [0, 0, 0]
    buf[2] = 0                               # the doorbell page reads back 0 on Hopper
    ring()
    assert buf[2] == 0xCAFE
    with pytest.raises(InvalidArgument, match="aligned"):
        hostmem.fenced_store32(a + 2, 1)
    with pytest.raises(InvalidArgument, match="32 bits"):
        hostmem.fenced_store32(a, 1 << 32)


def test_default_doorbell_sees_intercepted_stores():
    """Kernel.doorbell32's default looks mmio_write32 up at each ring, so a kernel whose MMIO
    stores are intercepted (the mock's, bench/launch_cpu.py's quiet doorbell) sees every ring."""
    from hwdrv.mock.kernel import MockKernel
    k = MockKernel()
    seen = []
    ring = k.doorbell32(0x1000, 7)
    k.mmio_write32 = lambda addr, value: seen.append((addr, value))
    ring()
    ring()
    assert seen == [(0x1000, 7), (0x1000, 7)]


def test_fence_and_mmio_cost(record_property):
    """Measured, reported; the bounds only catch a pathological slowdown (e.g. a syscall per fence)."""
    buf = np.zeros(2, np.uint32)
    a = hostmem.addr_of(buf)
    n = 100_000
    f, w = hostmem.store_fence, hostmem.mmio_write32
    f()
    t = time.perf_counter()
    for _ in range(n):
        f()
    fence_us = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for i in range(n):
        w(a, i)
    mmio_us = (time.perf_counter() - t) / n * 1e6
    assert buf[0] == n - 1
    record_property("store_fence_us", fence_us)
    record_property("mmio_write32_us", mmio_us)
    print(f"\nstore_fence {fence_us:.3f} us/call, mmio_write32 {mmio_us:.3f} us/call")
    assert fence_us < 20 and mmio_us < 50
