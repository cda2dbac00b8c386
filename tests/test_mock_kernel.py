"""The mock framework end to end, proven with a tiny test driver ("testgpu"):

* ioctl TEST_INFO checks its argument size exactly (EINVAL otherwise), like real drivers do;
* ioctl TEST_ALLOC allocates a PhysBlock, maps it in the GPU page table at the caller's VA and
  returns an mmap offset; mmap of that offset puts the same pages at the caller's CPU address;
* mmap of DOORBELL_OFFSET gives a doorbell page; writing the ring's put index there kicks an Engine
  that runs commands from a ring in GPU memory: COPY (through the GpuPageTable), SIGNAL (write a
  completion value), WAIT (poll memory until >= value, BLOCKED meanwhile);
* GPU faults are recorded as MemoryFault; a driver bug surfaces as EngineError.
Both engine modes run: threaded, and HWDRV_MOCK_SYNC=1 (inline).
"""
from __future__ import annotations

import errno
import struct
import time

import numpy as np
import pytest

from hwdrv.errors import EngineError, HwdrvError, IoctlError, SyscallError
from hwdrv.ioctl import _IOWR, hostmem
from hwdrv.ioctl import kernel as K
from hwdrv.ioctl.ioc import decode
from hwdrv.memory import VAPool
from hwdrv.mock import Engine, Errno, GpuPageTable, MemoryFault, MockDriver, MockKernel, PhysBlock, Work
from hwdrv.mock.kernel import FD_BASE

TEST_INFO = _IOWR("T", 1, 16)       # {u32 version_in; u32 pad; u64 value_out}
TEST_ALLOC = _IOWR("T", 2, 24)      # {u64 size; u64 va; u64 mmap_offset_out}
TEST_RING = _IOWR("T", 3, 16)       # {u64 ring_va; u64 entries}
SIZES = {1: 16, 2: 24, 3: 16}
DOORBELL_OFFSET = 0xD00_0000_0000
OP_COPY, OP_WAIT, OP_SIGNAL = 1, 2, 3
CMD = struct.Struct("<5Q")          # op, a, b, c, pad


class GpuState:
    """Per-open state: the fd's GPU (page table, memory, ring, engine)."""

    def __init__(self, kernel: MockKernel, sync: bool):
        self.kernel = kernel
        self.pt = GpuPageTable("testgpu")
        self.blocks: dict[int, PhysBlock] = {}
        self.ring_va = self.entries = 0
        self.put = self.get = 0
        self.faults: list[MemoryFault] = []
        self.doorbell: tuple[int, PhysBlock] | None = None
        self.engine = Engine("testgpu-copy", self.work, sync=sync)

    def on_doorbell(self, addr: int, value: int, width: int) -> None:
        self.put = value
        self.engine.kick()

    def work(self) -> Work:
        if self.get >= self.put or self.faults:
            return Work.IDLE
        raw = self.pt.read(self.ring_va + (self.get % self.entries) * CMD.size, CMD.size)
        op, a, b, c, _ = CMD.unpack(raw)
        try:
            if op == OP_COPY:
                src = np.uint64(a) + np.arange(c, dtype=np.uint64)
                self.pt.store(np.uint64(b) + np.arange(c, dtype=np.uint64), self.pt.load(src, np.uint8))
            elif op == OP_WAIT:
                if int(self.pt.load(np.array([a], np.uint64), np.uint64)[0]) < b:
                    return Work.BLOCKED
            elif op == OP_SIGNAL:
                self.pt.store(np.array([a], np.uint64), np.array([b], np.uint64))
            else:
                raise HwdrvError(f"testgpu: unknown op {op}")   # a bug in the mock: must surface
        except MemoryFault as f:
            self.faults.append(f)          # hardware stops the channel and reports the fault
            return Work.IDLE
        self.get += 1
        return Work.PROGRESS


class FakeDriver(MockDriver):
    name = "testgpu"

    def __init__(self, kernel: MockKernel, sync: bool):
        self.kernel, self.sync = kernel, sync
        self.opened: list[GpuState] = []
        self.closed: list[GpuState] = []
        self.handles: dict[int, PhysBlock] = {}
        self.next_handle = 1

    def open(self, path, flags):
        if flags & 3 != K.O_RDWR:
            raise Errno(errno.EACCES, "testgpu needs O_RDWR")
        s = GpuState(self.kernel, self.sync)
        self.opened.append(s)
        return s

    def close(self, s):
        s.engine.stop()
        for b in s.blocks.values():
            b.close()
        if s.doorbell:
            self.kernel.unregister_mmio(s.doorbell[0])
            s.doorbell[1].close()
        self.closed.append(s)

    def ioctl(self, s, request, arg):
        d = decode(request)
        if d.type != ord("T") or d.nr not in SIZES:
            raise Errno(errno.ENOTTY)
        if d.size != SIZES[d.nr]:
            raise Errno(errno.EINVAL, f"arg size {d.size} != {SIZES[d.nr]}")
        if d.nr == 1:
            version, _ = struct.unpack("<II", self.read_arg(arg, 8))
            if version != 7:
                raise Errno(errno.EINVAL, f"version {version} unsupported")
            self.write_arg(arg + 8, struct.pack("<Q", 0x1234_5678_9ABC))
        elif d.nr == 2:
            size, va, _ = struct.unpack("<3Q", self.read_arg(arg, 24))
            if size == 0 or size % 4096 or va % 4096:
                raise Errno(errno.EINVAL, "size and va must be page aligned")
            blk = PhysBlock(size, "testgpu-vram")
            h = self.next_handle
            self.next_handle += 1
            s.pt.map(va, blk.host_addr, size)
            s.blocks[h] = self.handles[h] = blk
            self.write_arg(arg + 16, struct.pack("<Q", h << 12))
        else:
            s.ring_va, s.entries = struct.unpack("<2Q", self.read_arg(arg, 16))
        return 0

    def mmap(self, s, addr, size, prot, flags, offset):
        fixed = bool(flags & K.MAP_FIXED)
        if offset == DOORBELL_OFFSET:
            if size != 4096:
                raise Errno(errno.EINVAL, "doorbell page is 4096 bytes")
            blk = PhysBlock(4096, "testgpu-doorbell")
            got = blk.map_at(addr, prot, fixed=fixed)
            self.kernel.register_mmio(got, 4096, s.on_doorbell)
            s.doorbell = (got, blk)
            return got
        blk = s.blocks.get(offset >> 12)
        if blk is None or offset & 0xFFF:
            raise Errno(errno.EINVAL, f"no allocation at offset {offset:#x}")
        if size != blk.size:
            raise Errno(errno.ERANGE, "mmap size must equal the allocation size")
        return blk.map_at(addr, prot, fixed=fixed)


# --- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(params=["threaded", "sync"])
def env(request, monkeypatch):
    sync = request.param == "sync"
    monkeypatch.setenv("HWDRV_MOCK_SYNC", "1" if sync else "0")
    mk = MockKernel()
    drv = FakeDriver(mk, sync=None)          # None: the Engine reads HWDRV_MOCK_SYNC itself
    mk.register_driver("/dev/testgpu0", drv)
    pool = VAPool(mk, None, 64 << 20)
    fd = mk.open("/dev/testgpu0", K.O_RDWR)
    yield mk, drv, pool, fd, sync
    if fd in mk.open_fds():
        mk.close(fd)
    pool.close()


def alloc(mk, pool, fd, size, host=True):
    va = pool.reserve_gpu_only(size) if not host else pool.alloc.alloc(size, 4096)
    arg = np.zeros(3, np.uint64)
    arg[:2] = size, va
    mk.ioctl(fd, TEST_ALLOC, hostmem.addr_of(arg), "TEST_ALLOC")
    if host:
        pool.alloc.free(va)
        assert pool.place_at(va, size, fd, int(arg[2])) == va
    return va


def wait_value(addr, value, timeout=5.0):
    deadline = time.monotonic() + timeout
    v = hostmem.view(addr, 8, np.uint64)
    while v[0] < value:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {value} at {addr:#x} (have {v[0]})")
        time.sleep(0.0005)


# --- tests -----------------------------------------------------------------------------------------------
def test_fd_numbers_and_open_errors(env):
    mk, drv, pool, fd, _ = env
    assert fd >= FD_BASE and mk.open_fds() == {fd: "/dev/testgpu0"}
    assert mk.state_of(fd) is drv.opened[0] and mk.is_mock
    with pytest.raises(SyscallError) as ei:
        mk.open("/dev/testgpu1", K.O_RDWR)
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(SyscallError) as ei:
        mk.open("/dev/testgpu0", K.O_RDONLY)
    assert ei.value.errno == errno.EACCES and "needs O_RDWR" in str(ei.value) and "/dev/testgpu0" in str(ei.value)


def test_ioctl_size_check_and_unknown(env):
    mk, drv, pool, fd, _ = env
    arg = np.zeros(4, np.uint64)
    arg.view(np.uint32)[0] = 7
    assert mk.ioctl(fd, TEST_INFO, hostmem.addr_of(arg), "TEST_INFO") == 0
    assert arg[1] == 0x1234_5678_9ABC                      # the driver wrote the caller's struct in place
    with pytest.raises(IoctlError) as ei:
        mk.ioctl(fd, _IOWR("T", 1, 24), hostmem.addr_of(arg), "TEST_INFO")
    e = ei.value
    assert e.errno == errno.EINVAL and "TEST_INFO on /dev/testgpu0" in str(e) and "arg size 24 != 16" in str(e)
    arg.view(np.uint32)[0] = 6
    with pytest.raises(IoctlError, match="version 6"):
        mk.ioctl(fd, TEST_INFO, hostmem.addr_of(arg))
    with pytest.raises(IoctlError) as ei:
        mk.ioctl(fd, _IOWR("T", 9, 8), hostmem.addr_of(arg))
    assert ei.value.errno == errno.ENOTTY and "nr 0x09" in str(ei.value)
    with pytest.raises(IoctlError) as ei:
        mk.ioctl(fd + 100, TEST_INFO, hostmem.addr_of(arg))
    assert ei.value.errno == errno.EBADF


def test_alloc_mmap_shares_pages_with_gpu(env):
    mk, drv, pool, fd, _ = env
    va = alloc(mk, pool, fd, 2 * 4096)
    st = mk.state_of(fd)
    hostmem.write(va + 4096, b"cpu wrote this")
    assert st.pt.read(va + 4096, 14) == b"cpu wrote this"          # GPU page table sees CPU stores
    st.pt.write(va, b"gpu wrote this")
    assert hostmem.read(va, 14) == b"gpu wrote this"
    with pytest.raises(SyscallError) as ei:
        mk.mmap(0, 4096, K.PROT_READ, K.MAP_SHARED, fd, 1 << 12)    # wrong size for handle 1
    assert ei.value.errno == errno.ERANGE
    with pytest.raises(SyscallError) as ei:
        mk.mmap(0, 4096, K.PROT_READ, K.MAP_SHARED, fd, 99 << 12)
    assert ei.value.errno == errno.EINVAL and "no allocation" in str(ei.value)
    a = mk.mmap(0, 4096, K.PROT_READ | K.PROT_WRITE, K.MAP_PRIVATE | K.MAP_ANONYMOUS, -1, 0)   # passthrough
    hostmem.write(a, b"x")
    mk.munmap(a, 4096)


def _setup_ring(mk, pool, fd):
    ring = alloc(mk, pool, fd, 4096)
    arg = np.array([ring, 4096 // CMD.size], np.uint64)
    mk.ioctl(fd, TEST_RING, hostmem.addr_of(arg), "TEST_RING")
    db = pool.place(4096, 0, fd, DOORBELL_OFFSET)
    return ring, db


def _submit(mk, ring, db, cmds, start=0):
    for i, c in enumerate(cmds):
        hostmem.write(ring + (start + i) * CMD.size, CMD.pack(*c, 0))
    mk.mmio_write32(db, start + len(cmds))


def test_doorbell_copy_and_signal(env):
    mk, drv, pool, fd, sync = env
    ring, db = _setup_ring(mk, pool, fd)
    src, dst, sig = (alloc(mk, pool, fd, 1 << 16) for _ in range(3))
    data = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)
    hostmem.write(src + 3, data)
    _submit(mk, ring, db, [(OP_COPY, src + 3, dst + 1, 5000), (OP_SIGNAL, sig, 42, 0)])
    if sync:   # inline: done when the doorbell write returns
        assert hostmem.view(sig, 8, np.uint64)[0] == 42
    wait_value(sig, 42)
    assert hostmem.read(dst + 1, 5000) == data.tobytes()
    assert hostmem.read(db, 4) == (2).to_bytes(4, "little")      # the doorbell store really happened
    st = mk.state_of(fd)
    assert st.get == 2 and not st.faults
    assert st.engine.wait_idle(5.0)


def test_wait_blocks_until_cpu_releases(env):
    mk, drv, pool, fd, sync = env
    ring, db = _setup_ring(mk, pool, fd)
    sem, sig = alloc(mk, pool, fd, 4096), alloc(mk, pool, fd, 4096)
    _submit(mk, ring, db, [(OP_WAIT, sem, 5, 0), (OP_SIGNAL, sig, 1, 0)])
    st = mk.state_of(fd)
    time.sleep(0.02)
    assert hostmem.view(sig, 8, np.uint64)[0] == 0 and st.engine.blocked
    hostmem.view(sem, 8, np.uint64)[0] = 4                  # not enough yet
    time.sleep(0.01)
    if sync:
        st.engine.poll()
    assert hostmem.view(sig, 8, np.uint64)[0] == 0
    hostmem.view(sem, 8, np.uint64)[0] = 5                  # a plain CPU store, no doorbell
    if sync:
        st.engine.poll()                                     # sync mode: the waiter polls
    wait_value(sig, 1)
    assert not st.engine.blocked


@pytest.mark.parametrize("case", ["unmapped-read", "read-only-write"])
def test_gpu_fault_becomes_memory_fault(env, case):
    mk, drv, pool, fd, sync = env
    ring, db = _setup_ring(mk, pool, fd)
    st = mk.state_of(fd)
    good = alloc(mk, pool, fd, 4096)
    if case == "unmapped-read":
        bad = pool.reserve_gpu_only(4096)                   # reserved VA, nothing mapped on the GPU
        cmd, want = (OP_COPY, bad + 0x10, good, 64), (bad + 0x10, "read", "unmapped")
    else:
        ro = pool.reserve_gpu_only(4096)
        blk = PhysBlock(4096)
        st.pt.map(ro, blk.host_addr, 4096, writable=False)
        st.blocks[-1] = blk                                 # closed with the fd
        cmd, want = (OP_COPY, good, ro + 8, 64), (ro + 8, "write", "read-only")
    _submit(mk, ring, db, [cmd])
    st.engine.wait_idle(5.0)
    deadline = time.monotonic() + 5
    while not st.faults and time.monotonic() < deadline:
        time.sleep(0.001)
    f = st.faults[0]
    assert (f.address, f.access, f.reason) == want and f.lane == 0
    assert f"{want[0]:#x}" in str(f)


def test_driver_bug_surfaces_as_engine_error(env):
    mk, drv, pool, fd, sync = env
    ring, db = _setup_ring(mk, pool, fd)
    st = mk.state_of(fd)
    if sync:
        with pytest.raises(EngineError, match="unknown op 77") as ei:
            _submit(mk, ring, db, [(77, 0, 0, 0)])
    else:
        _submit(mk, ring, db, [(77, 0, 0, 0)])
        with pytest.raises(EngineError, match="unknown op 77") as ei:
            st.engine.wait_idle(5.0)
    assert isinstance(ei.value.__cause__, HwdrvError) and "testgpu-copy" in str(ei.value)
    with pytest.raises(EngineError):                        # stays failed: every later kick says so
        mk.mmio_write32(db, 2)
    mk.close(fd)                                            # stop() after the error was seen: no raise


def test_close_releases_state(env):
    mk, drv, pool, fd, _ = env
    _setup_ring(mk, pool, fd)
    mk.close(fd)
    assert drv.closed == drv.opened and mk.open_fds() == {}
    with pytest.raises(SyscallError) as ei:
        mk.close(fd)
    assert ei.value.errno == errno.EBADF


def test_mmio_outside_registered_ranges_is_a_plain_store():
    mk = MockKernel()
    calls = []
    buf = np.zeros(1024, np.uint32)
    a = hostmem.addr_of(buf)
    mk.register_mmio(a + 64, 16, lambda addr, v, w: calls.append((addr - a, v, w)))
    mk.mmio_write32(a, 1)
    mk.mmio_write64(a + 64 + 8, 5)
    mk.mmio_write32(a + 80, 3)                               # just past the range
    assert calls == [(72, 5, 8)] and buf[0] == 1 and buf[20] == 3
    with pytest.raises(Exception, match="overlaps"):
        mk.register_mmio(a + 72, 64, lambda *x: None)
    mk.unregister_mmio(a + 64)
    mk.mmio_write32(a + 64, 9)
    assert len(calls) == 1


def test_sysfs_tree():
    mk = MockKernel()
    n = [0]

    def counter():
        n[0] += 1
        return f"{n[0]}\n"

    mk.add_file("/sys/class/kfd/kfd/topology/nodes/1/gpu_id", "27005\n")
    mk.add_file("/sys/class/kfd/kfd/topology/nodes/1/properties", b"simd_count 192\n")
    mk.add_file("/sys/kernel/debug/dri/0/counter", counter)
    mk.register_driver("/dev/kfd", MockDriver())
    assert mk.read_file("/sys/class/kfd/kfd/topology/nodes/1/gpu_id") == b"27005\n"
    assert mk.read_file("/sys/kernel/debug/dri/0/counter") == b"1\n"
    assert mk.read_file("/sys/kernel/debug/dri/0/counter") == b"2\n"       # computed on every read
    assert mk.listdir("/sys/class/kfd/kfd/topology/nodes") == ["1"]
    assert mk.listdir("/sys/class/kfd/kfd/topology/nodes/1") == ["gpu_id", "properties"]
    assert mk.listdir("/dev") == ["kfd"] and mk.exists("/dev/kfd") and mk.exists("/sys/class")
    assert not mk.exists("/dev/nvidiactl") and not mk.exists("/sys/class/drm")
    for call, path, err in ((mk.read_file, "/sys/nope", errno.ENOENT), (mk.read_file, "/sys/class", errno.EISDIR),
                            (mk.listdir, "/sys/nope", errno.ENOENT),
                            (mk.listdir, "/sys/class/kfd/kfd/topology/nodes/1/gpu_id", errno.ENOTDIR)):
        with pytest.raises(SyscallError) as ei:
            call(path)
        assert ei.value.errno == err and path in str(ei.value)
    fd = mk.open("/dev/kfd", K.O_RDWR)
    with pytest.raises(IoctlError) as ei:       # the base driver supports nothing: ENOTTY, not "ok"
        mk.ioctl(fd, _IOWR("K", 1, 8), 0)
    assert ei.value.errno == errno.ENOTTY
    with pytest.raises(SyscallError) as ei:
        mk.mmap(0, 4096, K.PROT_READ, K.MAP_SHARED, fd, 0)
    assert ei.value.errno == errno.ENODEV


def test_prefix_routing():
    class Nodes(MockDriver):
        name = "nodes"

        def device_paths(self):
            return ["/dev/dri/renderD128", "/dev/dri/renderD129"]

    mk = MockKernel()
    mk.register_driver("/dev/dri/renderD*", Nodes())
    assert mk.listdir("/dev/dri") == ["renderD128", "renderD129"]
    assert mk.exists("/dev/dri/renderD129") and not mk.exists("/dev/dri/renderD130")
    fd = mk.open("/dev/dri/renderD128", K.O_RDWR)
    assert mk.open_fds()[fd] == "/dev/dri/renderD128"
    with pytest.raises(SyscallError):
        mk.open("/dev/dri/renderD130", K.O_RDWR)
