"""The conformance suite shared by every vendor: each case takes an open device (``dev``) and runs
unchanged on ``mock:nvidia`` (tests/test_conformance.py), ``mock:amd`` (tests/test_conformance_amd.py)
and real GPUs (tests/hardware/, ``-m hardware``). The kernels are the same program per vendor in
its own language (:data:`KERNEL_SOURCES`: CUDA-built PTX, OpenCL-built gfx1100 code object). Sizes
shrink on the mocks, whose interpreters are far slower than a GPU, but every case checks real
results against numpy.
"""
from __future__ import annotations

import os
import pathlib
import time

import numpy as np
import pytest

import hwdrv
from hwdrv import Var

_DATA = pathlib.Path(__file__).parent / "data"
#: per vendor kind: the conformance kernels (tests/data/conformance/kernels.cu, its OpenCL C twin
#: tests/data/amd/conformance/kernels.cl, and the ir3 assembly tests/data/conformance/kernels.ir3:
#: the same names, arguments and results) in the form that vendor's ``dev.compiler`` takes
KERNEL_SOURCES = {
    "nvidia": lambda: (_DATA / "conformance" / "kernels.ptx").read_text(),
    "amd": lambda: (_DATA / "amd" / "conformance" / "kernels.hsaco").read_bytes(),
    "qcom": lambda: (_DATA / "conformance" / "kernels.ir3").read_text(),
}
#: command words one copy-engine transfer takes (NVIDIA: methods OFFSET_IN/OUT, LINE_LENGTH_IN,
#: LAUNCH_DMA; AMD: an SDMA COPY_LINEAR packet)
COPY_WORDS = {"nvidia": 8, "amd": 7}
WAIT = 20.0


@pytest.fixture(scope="module")
def binary(dev):
    return dev.compiler.compile(KERNEL_SOURCES[dev.kind]())


def skip_on(dev, kinds: dict[str, str]) -> None:
    """Skip where the case cannot apply to this vendor, saying why (``kinds``: kind -> reason)."""
    if dev.kind in kinds:
        pytest.skip(f"{dev.kind}: {kinds[dev.kind]}")


def prog(dev, binary, name):
    return dev.program(binary, name)


def big(dev, real: int, mock: int) -> int:
    return mock if dev.is_mock else real


# ---- signals and waits ----------------------------------------------------------------
def test_signal(dev):
    sig = dev.signal(0)
    dev.compute_queue().signal(sig, 42).submit()
    sig.wait(42, timeout=WAIT)
    assert sig.value == 42
    dev.copy_queue().signal(sig, (1 << 40) + 3).submit()
    sig.wait((1 << 40) + 3, timeout=WAIT)
    assert sig.value == (1 << 40) + 3, "64-bit payloads must survive"


def test_wait_on_set_signal(dev):
    gate, done = dev.signal(5), dev.signal(0)
    dev.compute_queue().wait(gate, 5).signal(done, 1).submit()
    done.wait(1, timeout=WAIT)


def test_wait_on_late_set_signal(dev):
    gate, done = dev.signal(0), dev.signal(0)
    dev.compute_queue().wait(gate, 3).signal(done, 1).submit()
    time.sleep(0.2)
    assert done.value == 0, "the GPU must block on the wait until the CPU sets the signal"
    gate.value = 2
    time.sleep(0.1)
    assert done.value == 0, "2 < 3: still blocked"
    gate.value = 3
    done.wait(1, timeout=WAIT)


def test_wait_timeout_raises_gpuhang_with_report(dev):
    gate, done = dev.signal(0), dev.signal(0)
    dev.compute_queue().wait(gate, 1).signal(done, 1).submit()
    t = time.perf_counter()
    with pytest.raises(hwdrv.GPUHang) as ei:
        done.wait(1, timeout=0.3)
    assert time.perf_counter() - t < 5
    rep = ei.value.report
    assert rep is not None and rep.cause == "timeout" and rep.expected == 1 and rep.seen == 0
    gate.value = 1          # release the queue so the device drains
    done.wait(1, timeout=WAIT)


# ---- kernels ---------------------------------------------------------------------------
def test_vecadd(dev, binary):
    n = big(dev, 1 << 22, 3000)
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    ba, bb, bc = dev.alloc(n * 4), dev.alloc(n * 4), dev.alloc(n * 4)
    dev.upload(ba, a)
    dev.upload(bb, b)
    dev.upload(bc, np.full(n, np.nan, np.float32))          # poison: every element must be written
    sig = dev.signal(0)
    p = prog(dev, binary, "vecadd")
    dev.compute_queue().exec(p, grid=((n + 255) // 256,), block=(256,), args=[ba, bb, bc, n]) \
        .signal(sig, 1).submit()
    sig.wait(1, timeout=WAIT)
    np.testing.assert_array_equal(dev.download(bc, dtype=np.float32), a + b)


def test_block_reduce_shared_and_barrier(dev, binary):
    blocks = big(dev, 4096, 8)
    n = blocks * 256 - 17
    x = np.random.default_rng(2).random(n, dtype=np.float32)
    bi, bo = dev.alloc(n * 4), dev.alloc(blocks * 4)
    dev.upload(bi, x)
    sig = dev.signal(0)
    dev.compute_queue().exec(prog(dev, binary, "block_reduce"), grid=(blocks,), block=(256,),
                             args=[bi, bo, n]).signal(sig, 1).submit()
    sig.wait(1, timeout=WAIT)
    ref = np.pad(x, (0, blocks * 256 - n)).reshape(blocks, 256).astype(np.float64).sum(1)
    np.testing.assert_allclose(dev.download(bo, dtype=np.float32), ref, rtol=1e-5)


@pytest.mark.parametrize("grid,block", [((5,), (32,)), ((3, 4), (8, 4)), ((2, 3, 4), (4, 2, 3))])
def test_grid_dimensions(dev, binary, grid, block):
    g = tuple(grid) + (1,) * (3 - len(grid))
    b = tuple(block) + (1,) * (3 - len(block))
    total = int(np.prod(g) * np.prod(b))
    out = dev.alloc(total * 8)
    dev.upload(out, np.full(total * 2, 0xFFFFFFFF, np.uint32))
    sig = dev.signal(0)
    dev.compute_queue().exec(prog(dev, binary, "grid3d"), grid=grid, block=block, args=[out]) \
        .signal(sig, 1).submit()
    sig.wait(1, timeout=WAIT)
    got = dev.download(out, dtype=np.uint32).reshape(-1, 2)
    expect = []
    for bz in range(g[2]):
        for by in range(g[1]):
            for bx in range(g[0]):
                for tz in range(b[2]):
                    for ty in range(b[1]):
                        for tx in range(b[0]):
                            expect.append(((bx << 24) | (by << 16) | (bz << 8) | (tx << 4) | (ty << 2) | tz,
                                           (g[0] << 24) | (g[1] << 16) | (g[2] << 8) | (b[0] << 4)
                                           | (b[1] << 2) | b[2]))
    np.testing.assert_array_equal(got, np.array(expect, np.uint32))


def test_large_parameters(dev, binary):
    p = prog(dev, binary, "bigparam")
    assert p.param_size > 4096
    v = np.random.default_rng(3).integers(0, 2**32, 1100, dtype=np.uint32)
    out = dev.alloc(1100 * 4)
    sig = dev.signal(0)
    dev.compute_queue().exec(p, grid=(5,), block=(256,), args=[v, out, 0xA5A5A5A5]) \
        .signal(sig, 1).submit()
    sig.wait(1, timeout=WAIT)
    np.testing.assert_array_equal(dev.download(out, dtype=np.uint32), v ^ np.uint32(0xA5A5A5A5))


def test_dynamic_shared_over_48k(dev, binary):
    skip_on(dev, {"qcom": "an A630 SP has 32 KiB of shared memory (dev.limits.max_shared_per_block)"})
    # 96 KiB of dynamic shared memory, or all a block may have where that is less (AMD: 64 KiB)
    n = min(96 << 10, dev.limits.max_shared_per_block) // 4
    assert n * 4 > 48 << 10
    out = dev.alloc(n * 4)
    sig = dev.signal(0)
    dev.compute_queue().exec(prog(dev, binary, "dynshared"), grid=(1,), block=(big(dev, 1024, 256),),
                             args=[out, n], shared=n * 4).signal(sig, 1).submit()
    sig.wait(1, timeout=WAIT)
    np.testing.assert_array_equal(dev.download(out, dtype=np.float32), np.arange(n, dtype=np.float32)[::-1])


def test_local_memory(dev, binary):
    p = prog(dev, binary, "local_mem")
    n = big(dev, 1 << 16, 256)
    idx = np.random.default_rng(4).integers(0, 1 << 20, n, dtype=np.int32)
    bi, bo = dev.alloc(n * 4), dev.alloc(n * 4)
    dev.upload(bi, idx)
    sig = dev.signal(0)
    dev.compute_queue().exec(p, grid=(n // 128,), block=(128,), args=[bi, bo, n]).signal(sig, 1).submit()
    sig.wait(1, timeout=WAIT)
    np.testing.assert_array_equal(dev.download(bo, dtype=np.int32), 165 + np.arange(n, dtype=np.int32))


def test_bad_arguments_fail_before_the_gpu(dev, binary):
    p = prog(dev, binary, "vecadd")
    q = dev.compute_queue()
    buf = dev.alloc(64)
    with pytest.raises(hwdrv.InvalidArgument, match="takes 4 arguments"):
        q.exec(p, grid=(1,), block=(32,), args=[buf, buf])
    with pytest.raises(hwdrv.InvalidArgument, match="does not fit"):
        q.exec(p, grid=(1,), block=(32,), args=[buf, buf, buf, 1 << 40])
    with pytest.raises(hwdrv.InvalidArgument, match="block x = 2048 exceeds"):
        q.exec(p, grid=(1,), block=(2048,), args=[buf, buf, buf, 1])
    with pytest.raises(hwdrv.InvalidArgument, match="threads"):
        q.exec(p, grid=(1,), block=(64, 32), args=[buf, buf, buf, 1])
    lim = dev.limits
    with pytest.raises(hwdrv.InvalidArgument, match="block z = .* exceeds"):
        q.exec(p, grid=(1,), block=(1, 1, lim.max_block_dims[2] + 1), args=[buf, buf, buf, 1])
    with pytest.raises(hwdrv.InvalidArgument, match="grid x = .* exceeds"):
        q.exec(p, grid=(lim.max_grid_dims[0] + 1,), block=(32,), args=[buf, buf, buf, 1])
    with pytest.raises(hwdrv.ProgramError, match="vecadd"):
        dev.program(binary, "no_such_kernel")


# ---- dev.launch: exec + submit in one call --------------------------------------------
def test_launch_runs_in_order_with_queues(dev, binary):
    """dev.launch (the first launch of a shape goes through a queue, later ones take the
    backend's fast path where it has one) runs in order with queue submissions: a chain of
    launches, each adding the one before's result, ends with the right sums."""
    n = big(dev, 1 << 16, 512)
    p = prog(dev, binary, "vecadd")
    rng = np.random.default_rng(5)
    a = rng.integers(-1000, 1000, n).astype(np.float32)
    ba, bacc = dev.alloc(n * 4), dev.alloc(n * 4)
    dev.upload(ba, a)
    dev.upload(bacc, np.zeros(n, np.float32))
    rounds = big(dev, 300, 12)
    for _ in range(rounds):
        dev.launch(p, (n // 256,), (256,), [ba, bacc, bacc, n])
    sig = dev.signal(0)
    dev.compute_queue().signal(sig, 1).submit()               # after every launch before it
    sig.wait(1, timeout=WAIT)
    np.testing.assert_array_equal(dev.download(bacc, dtype=np.float32), a * rounds)


def test_launch_wraps_its_slots_and_falls_back_where_it_must(dev, binary):
    """More launches than launch()'s slots hold (each slot reused once its launch finished),
    a kernel with local memory and one whose parameters do not fit a slot (both through a
    queue): all give the right results."""
    from hwdrv.device import LAUNCH_RING_BYTES, LAUNCH_SLOT_BYTES
    p = prog(dev, binary, "vecadd")
    n = 256
    ones = dev.alloc(n * 4)
    dev.upload(ones, np.ones(n, np.float32))
    acc = dev.alloc(n * 4)
    dev.upload(acc, np.zeros(n, np.float32))
    count = LAUNCH_RING_BYTES // LAUNCH_SLOT_BYTES + 100 if not dev.is_mock else 40
    for _ in range(count):
        dev.launch(p, (1,), (256,), (ones, acc, acc, n))
    lm = prog(dev, binary, "local_mem")
    idx = np.arange(256, dtype=np.int32)
    bi, bo = dev.alloc(256 * 4), dev.alloc(256 * 4)
    dev.upload(bi, idx)
    dev.launch(lm, (2,), (128,), [bi, bo, 256])
    dev.launch(lm, (2,), (128,), [bi, bo, 256])
    bigp = prog(dev, binary, "bigparam")
    v = np.random.default_rng(6).integers(0, 2**32, 1100, dtype=np.uint32)
    out = dev.alloc(1100 * 4)
    dev.launch(bigp, (5,), (256,), [v, out, 0x5A5A5A5A])
    dev.launch(bigp, (5,), (256,), [v, out, 0x5A5A5A5A])
    dev.synchronize(WAIT)
    np.testing.assert_array_equal(dev.download(acc, dtype=np.float32), np.full(n, count, np.float32))
    np.testing.assert_array_equal(dev.download(bo, dtype=np.int32), 165 + np.arange(256, dtype=np.int32))
    np.testing.assert_array_equal(dev.download(out, dtype=np.uint32), v ^ np.uint32(0x5A5A5A5A))


def test_launch_refuses_what_it_cannot_run(dev, binary):
    """Bad arguments, a Var (nothing would patch it) and a freed program raise before the GPU
    sees anything, on a shape's first launch and on later ones alike; the device stays usable."""
    p = prog(dev, binary, "vecadd")
    buf = dev.alloc(64 * 4)
    dev.upload(buf, np.zeros(64, np.float32))
    for _ in range(2):
        with pytest.raises(hwdrv.InvalidArgument, match="takes 4 arguments"):
            dev.launch(p, (1,), (64,), [buf, buf])
        with pytest.raises(hwdrv.InvalidArgument, match="does not fit"):
            dev.launch(p, (1,), (64,), [buf, buf, buf, 1 << 40])
        with pytest.raises(hwdrv.InvalidArgument):
            dev.launch(p, (1,), (64,), [buf, buf, buf, Var("n")])
        dev.launch(p, (1,), (64,), [buf, buf, buf, 64])
    with pytest.raises(hwdrv.InvalidArgument, match="block x = 2048 exceeds"):
        dev.launch(p, (1,), (2048,), [buf, buf, buf, 64])
    dev.synchronize(WAIT)
    p.free()
    with pytest.raises(hwdrv.ProgramError, match="freed"):
        dev.launch(p, (1,), (64,), [buf, buf, buf, 64])


# ---- copies ----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 64 << 20])
def test_copy(dev, size):
    size = size if size < (1 << 20) or not dev.is_mock else 8 << 20
    data = np.random.default_rng(5).integers(0, 256, size, dtype=np.uint8)
    src, dst = dev.alloc(size), dev.alloc(size)
    dev.upload(src, data)
    sig = dev.signal(0)
    dev.copy_queue().copy(dst, src, size).signal(sig, 1).submit()
    sig.wait(1, timeout=WAIT)
    np.testing.assert_array_equal(dev.download(dst), data)


@pytest.mark.parametrize("size,offset", [(1 << 16, 0), ((1 << 16) + 5, 0), (1000, 3)])
def test_compute_queue_copy(dev, size, offset):
    """Compute queues copy with the SMs: 16-byte vectors, byte tails, unaligned addresses."""
    data = np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8)
    src, dst = dev.alloc(size + 16), dev.alloc(size + 16)
    dev.upload(src, data, offset=offset)
    dev.upload(dst, np.zeros(size + 16, np.uint8))
    sig = dev.signal(0)
    dev.compute_queue().copy(dst.va + offset, src.va + offset, size).signal(sig, 1).submit()
    sig.wait(1, timeout=WAIT)
    out = dev.download(dst)
    np.testing.assert_array_equal(out[offset:offset + size], data)
    assert not out[:offset].any() and not out[offset + size:].any(), "bytes outside the range stay"


def test_copy_splits_at_the_engine_limit(dev, monkeypatch):
    """The copy engine moves at most COPY_CHUNK bytes per launch: larger copies are split. On a
    real GPU the copy is > 4 GiB; on the mock the chunk is made small to exercise the split."""
    skip_on(dev, {"qcom": "there is no copy engine; copies run as compute blits (test_copy, "
                          "test_compute_queue_copy)"})
    import importlib
    nvq = importlib.import_module(f"hwdrv.{dev.kind}.queue")      # the backend's queue module
    if dev.is_mock:
        monkeypatch.setattr(nvq, "COPY_CHUNK", 1 << 20)
        size = (3 << 20) + 12345
    else:
        size = (4 << 30) + (64 << 20) + 4096
    src, dst = dev.alloc(size), dev.alloc(size)
    # 4 KiB probes straddling each chunk boundary, plus the first and last bytes
    marks = [0, nvq.COPY_CHUNK - 2048, 2 * nvq.COPY_CHUNK - 7, size - 4096]
    rng = np.random.default_rng(6)
    patterns = {m: rng.integers(0, 256, 4096, dtype=np.uint8) for m in marks}
    for m, pat in patterns.items():
        dev.upload(src, pat, offset=m)
    q = dev.copy_queue().copy(dst, src, size)
    assert len(q._words) >= COPY_WORDS[dev.kind] * (size // nvq.COPY_CHUNK), "one engine launch per chunk"
    sig = dev.signal(0)
    q.signal(sig, 1).submit()
    sig.wait(1, timeout=60)
    for m, pat in patterns.items():
        np.testing.assert_array_equal(dev.download(dst, 4096, m), pat)


def test_compute_waits_on_copy_and_copy_on_compute(dev, binary):
    n = big(dev, 1 << 20, 2048)
    x = np.arange(n, dtype=np.int32)
    host = dev.alloc(n * 4, host_visible=True)
    host.view(np.int32)[:] = x
    a, b = dev.alloc(n * 4), dev.alloc(n * 4)
    gate, copied, computed, done = dev.signal(0), dev.signal(0), dev.signal(0), dev.signal(0)
    add = prog(dev, binary, "add_scalar")
    # copy (held by a gate) -> compute waits for it -> copy waits for compute. Each engine runs
    # its submissions in order, so they are submitted in dependency order per engine.
    dev.copy_queue().wait(gate, 1).copy(a, host, n * 4).signal(copied, 1).submit()
    dev.compute_queue().wait(copied, 1).exec(add, grid=((n + 255) // 256,),
                                             block=(256,), args=[a, 7, n]).signal(computed, 1).submit()
    dev.copy_queue().wait(computed, 1).copy(b, a, n * 4).signal(done, 1).submit()
    time.sleep(0.1)
    assert (copied.value, computed.value, done.value) == (0, 0, 0), "everything waits for the gate"
    gate.value = 1
    done.wait(1, timeout=WAIT)
    np.testing.assert_array_equal(dev.download(b, dtype=np.int32), x + 7)


# ---- patching, resubmission, binding -----------------------------------------------------
def test_resubmit_100_times_with_patched_values(dev, binary):
    n = big(dev, 1 << 16, 512)
    x = dev.alloc(n * 4)
    dev.upload(x, np.zeros(n, np.int32))
    sig = dev.signal(0)
    k, v = Var("k"), Var("v")
    q = dev.compute_queue().exec(prog(dev, binary, "add_scalar"), grid=((n + 255) // 256,), block=(256,),
                                 args=[x, k, n]).signal(sig, v)
    for i in range(100):
        q.submit(k=i, v=i + 1)
    sig.wait(100, timeout=WAIT)
    np.testing.assert_array_equal(dev.download(x, dtype=np.int32), np.full(n, sum(range(100)), np.int32))
    # first submit writes every site (k: 1 word, v: 2 words); later ones only what changed
    assert q.patched_words == 100 * 3


def test_chained_launches_see_patched_arguments(dev, binary):
    """Arguments patched between submissions reach every launch of a chain, bound or not. A
    chained launch is scheduled by the QMD before it (NVIDIA: which also prefetches its constant
    bank, and the chained launch keeps its bank 0 cached), so a launch reading constants cached
    by an earlier submission would add an old value."""
    n = big(dev, 1 << 14, 256)
    p = prog(dev, binary, "add_scalar")
    k, v = Var("k"), Var("v")
    for bound in (False, True):
        x = dev.alloc(n * 4)
        dev.upload(x, np.zeros(n, np.int32))
        sig = dev.signal(0)
        q = dev.compute_queue()
        for j in range(1, 9):
            q.exec(p, grid=(n // 256,), block=(256,), args=[x, k * j, n])
        q.signal(sig, v)
        if bound:
            q.bind()
        rounds = big(dev, 50, 6)
        for i in range(1, rounds + 1):
            q.submit(k=i, v=i)
            sig.wait(i, timeout=WAIT)          # a bound queue's next run patches after this one
        total = 36 * rounds * (rounds + 1) // 2          # (1 + ... + 8) * (1 + ... + rounds)
        np.testing.assert_array_equal(dev.download(x, dtype=np.int32), np.full(n, total, np.int32))


def test_unchanged_values_rewrite_nothing(dev):
    sig = dev.signal(0)
    v = Var("v")
    q = dev.compute_queue().signal(sig, v + 1)
    q.submit(v=0)
    sig.wait(1, timeout=WAIT)
    before = q.patched_words
    sig.value = 0
    q.submit(v=0)
    sig.wait(1, timeout=WAIT)
    assert q.patched_words == before, "same value: no word rewritten"
    with pytest.raises(hwdrv.InvalidArgument, match="no value given"):
        q.submit()
    with pytest.raises(hwdrv.InvalidArgument, match="uses"):
        q.submit(v=1, w=2)


def test_bound_queue(dev, binary):
    n = big(dev, 4096, 256)
    x = dev.alloc(n * 4)
    dev.upload(x, np.zeros(n, np.int32))
    gate, sig = dev.signal(0), dev.signal(0)
    k, v = Var("k"), Var("v")
    q = dev.compute_queue().wait(gate, v).exec(prog(dev, binary, "add_scalar"), grid=((n + 255) // 256,),
                                               block=(256,), args=[x, k, n]).signal(sig, v).bind()
    q.submit(k=5, v=1)
    with pytest.raises(hwdrv.QueueBusy):
        q.submit(k=6, v=2)               # still waiting on the gate: patching now would race
    gate.value = 1
    sig.wait(1, timeout=WAIT)
    for i in range(2, 12):
        gate.value = i
        q.submit(k=1, v=i)
        sig.wait(i, timeout=WAIT)
    np.testing.assert_array_equal(dev.download(x, dtype=np.int32), np.full(n, 5 + 10, np.int32))


# ---- timestamps ----------------------------------------------------------------------------
def test_timestamps_monotonic_and_plausible(dev, binary):
    n = big(dev, 1 << 24, 4096)
    a = dev.alloc(n * 4)
    t0, t1, t2 = dev.signal(0), dev.signal(0), dev.signal(0)
    t1.value = 77
    p = prog(dev, binary, "add_scalar")
    host_before = time.time_ns()
    q = dev.compute_queue().timestamp(t0)
    for _ in range(4):
        q.exec(p, grid=((n + 255) // 256,), block=(256,), args=[a, 1, n])
    q.timestamp(t1).signal(t2, 1).submit()
    t2.wait(1, timeout=WAIT)
    host_after = time.time_ns()
    assert t1.value == 77, "timestamp() must not change the signal's value"
    assert 0 < t0.timestamp <= t1.timestamp <= t2.timestamp
    assert t2.timestamp - t0.timestamp < 5 * dev.timestamp_hz
    if dev.timestamps_track_wall_clock:
        # NVIDIA's timer counts nanoseconds of wall-clock time
        assert host_before - 2e9 < t0.timestamp_ns < host_after + 2e9, "GPU clock should track wall time"
    else:
        # AMD's and Adreno's GPU clock counters start at power-on: their rate must match the host's
        assert t2.timestamp_ns - t0.timestamp_ns <= host_after - host_before + 1e6, \
            "GPU time between the timestamps exceeds the host time around them: timestamp_hz is wrong"


# ---- lifetime ------------------------------------------------------------------------------
def _process_state():
    """What this process holds: open fd numbers, mapping count, live thread idents (sets, so
    that things other tests release meanwhile do not hide what this test leaks)."""
    import threading
    fds = set(os.listdir("/proc/self/fd"))
    maps = len(open("/proc/self/maps").read().splitlines())
    return fds, maps, {t.ident for t in threading.enumerate()}


def _assert_mock_driver_empty(kernel, cycle: int) -> None:
    """What the mock kernel driver holds after close, read from its own state (not from the
    backend's bookkeeping): no RM client / KFD process / kgsl context (so no object of the tree),
    no memory in its pools, no open fd, no doorbell mapping."""
    if hasattr(kernel, "amd"):
        kfd = kernel.amd
        assert kfd.processes == [], f"cycle {cycle}: KFD processes left in the mock driver"
        assert kfd.gpu.vram.used == 0 and kfd.gpu.gtt.used == 0, \
            f"cycle {cycle}: mock memory still allocated: vram {kfd.gpu.vram.used} gtt {kfd.gpu.gtt.used} bytes"
        assert kernel.open_fds() == {}, f"cycle {cycle}: fds left open: {kernel.open_fds()}"
        assert kfd.gpu.page_table.mappings() == [], f"cycle {cycle}: GPU page table not empty"
        assert kernel._mmio == {}, f"cycle {cycle}: doorbell mappings left: {list(kernel._mmio)}"
        return
    if hasattr(kernel, "qcom"):
        q = kernel.qcom
        assert q.contexts == {}, f"cycle {cycle}: kgsl contexts left: {list(q.contexts)}"
        assert not q.mem.entries, f"cycle {cycle}: kgsl memory entries left: {len(q.mem.entries)}"
        assert kernel.open_fds() == {}, f"cycle {cycle}: fds left open: {kernel.open_fds()}"
        return
    rm = kernel.nvidia
    assert rm.clients == {}, f"cycle {cycle}: RM clients left in the mock driver: {list(rm.clients)}"
    assert rm.vram.used == 0 and rm.sysmem.used == 0, \
        f"cycle {cycle}: mock memory still allocated: vram {rm.vram.used} sysmem {rm.sysmem.used} bytes"
    assert rm.uvm.fds == [], f"cycle {cycle}: UVM fds left open: {rm.uvm.fds}"
    assert kernel.open_fds() == {}, f"cycle {cycle}: fds left open: {kernel.open_fds()}"
    assert rm.mmio == {}, f"cycle {cycle}: usermode (doorbell) mappings left: {list(rm.mmio)}"


def test_100_open_close_cycles_leak_nothing(dev, dev_name):
    cycles = 100

    def cycle(i: int):
        d = hwdrv.open_device(dev_name)
        b = d.alloc(1 << 20)
        h = d.alloc(4096, host_visible=True)
        s = d.signal(0)
        d.compute_queue().signal(s, 1).submit()
        s.wait(1, timeout=WAIT)
        d.close()
        assert b.freed and h.freed
        if d.is_mock:
            _assert_mock_driver_empty(d.kernel, i)
        return d

    with hwdrv.open_device(dev_name) as d:     # warm caches (module imports, compiler, mock memory arenas)
        d.alloc(1 << 20).free()
        s = d.signal(0)
        d.compute_queue().signal(s, 1).submit()
        s.wait(1, timeout=WAIT)
    base = _process_state()
    for i in range(cycles):
        d = cycle(i)
    after = _process_state()
    assert not after[0] - base[0], f"file descriptors leaked: {sorted(after[0] - base[0])}"
    if after[1] > base[1] + 2:
        # glibc caches the stacks of exited threads and keeps per-thread malloc arenas (mock engines run
        # on threads whose stack is freed a moment after join() returns, so the caches can grow now and
        # then; measured: one stack, one 64 MiB arena). Caches level off; a leak grows with the cycles:
        # run them again and require no further growth.
        for i in range(cycles):
            d = cycle(cycles + i)
        again = _process_state()
        assert again[1] <= after[1] + 2, f"mappings leaked: {base[1]} -> {after[1]} -> {again[1]}"
    assert not after[2] - base[2], f"threads leaked: {len(after[2] - base[2])} new threads alive"
    with pytest.raises(hwdrv.DeviceClosed):
        d.alloc(16)
