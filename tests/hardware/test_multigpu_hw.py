"""Two NVIDIA GPUs of one host (``-m hardware``; skipped unless the driver lists at least two):
peer discovery, peer copies both ways on the copy engine and the SMs, a kernel reading the other
GPU's memory, cross-device waits, 1k random cross-device ops with zero ordering violations,
the ring all-reduce of 1 GiB, and bandwidth / time against CuPy, torch and NCCL
(bench/multi_gpu_bench.py, each side in its own process).

    HWDRV_HW_DEVICES=nvidia:0,nvidia:1 python -m pytest -m hardware tests/hardware/test_multigpu_hw.py -s
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench"))

import multigpu_fuzz_kit as kit  # noqa: E402

NAMES = os.environ.get("HWDRV_HW_DEVICES", "nvidia:0,nvidia:1").split(",")


def _gpu_count() -> int:
    if not os.path.exists("/dev/nvidiactl"):
        return 0
    import hwdrv
    return len([d for d in hwdrv.devices(include_mock=False) if d.vendor == "nvidia" and d.available])


pytestmark = pytest.mark.skipif(_gpu_count() < 2, reason="needs at least two NVIDIA GPUs")


@pytest.fixture(scope="module")
def pair():
    import hwdrv
    a, b = hwdrv.open_device(NAMES[0]), hwdrv.open_device(NAMES[1])
    link = a.enable_peer(b)
    yield a, b, link
    b.close()
    a.close()


def test_peer_link_discovered(pair):
    a, b, link = pair
    assert link.kind in ("nvlink", "pcie", "none")
    assert a.peer_link(b) == b.peer_link(a)
    print(f"\n{a.name} <-> {b.name}: {link}")


@pytest.mark.parametrize("engine", ["copy", "compute"])
def test_peer_copy_both_ways(pair, engine):
    """Direct peer copies on either engine; where RM refuses P2P, hwdrv.peer.copy's staging."""
    from hwdrv import peer
    a, b, link = pair
    n = 64 << 20
    rng = np.random.default_rng(0)
    da, db = rng.integers(0, 255, n, dtype=np.uint8), rng.integers(0, 255, n, dtype=np.uint8)
    x, y, xa, yb = a.alloc(n), b.alloc(n), a.alloc(n), b.alloc(n)
    a.upload(x, da)
    b.upload(y, db)
    if link.direct:
        qa = a.copy_queue() if engine == "copy" else a.compute_queue()
        qa.copy(yb, x, n).submit().synchronize(30)
        qb = b.copy_queue() if engine == "copy" else b.compute_queue()
        qb.copy(xa, y, n).submit().synchronize(30)
    else:
        assert peer.copy(yb, x, n) != "direct" and peer.copy(xa, y, n) != "direct", link
    np.testing.assert_array_equal(b.download(yb, n), da)
    np.testing.assert_array_equal(a.download(xa, n), db)
    for buf in (x, y, xa, yb):
        buf.free()


def test_kernel_reads_peer_memory_and_waits_on_peer_signal(pair):
    a, b, link = pair
    if not link.direct:
        pytest.skip(f"no P2P: {link.reason}")
    n = 1 << 20
    va = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    vb = np.random.default_rng(2).standard_normal(n).astype(np.float32)
    xa, ya, out = a.alloc(4 * n), a.alloc(4 * n), b.alloc(4 * n)
    a.upload(ya, vb)
    stage = a.alloc(4 * n, host_visible=True)
    stage.view(np.float32)[:] = va
    ready, done = a.signal(0), b.signal(0)
    src, name = b.samples["vecadd"]
    prog = b.program(b.compiler.compile(src), name)
    # B's kernel waits for A's copy (A's signal), then reads both inputs from A's memory
    b.compute_queue().wait(ready, 1).exec(prog, grid=(n // 256,), block=(256,), args=[xa, ya, out, n]) \
        .signal(done, 1).submit()
    a.copy_queue().copy(xa, stage, 4 * n).signal(ready, 1).submit()
    done.wait(1, 30)
    np.testing.assert_array_equal(b.download(out, 4 * n).view(np.float32), va + vb)


def test_fuzz_1k_cross_device_ops(pair):
    a, b, link = pair
    if not link.direct:
        pytest.skip(f"no P2P: {link.reason}")
    ops = kit.make_graph(2, 1000, cells=24, seed=11)
    bad = kit.run_graph([a, b], ops, 24, 11)
    print(f"\n1000 cross-device ops on {a.name}, {b.name}: {bad} ordering violations")
    assert bad == 0


def test_allreduce_1gib_correct(pair):
    a, b, link = pair
    if not link.direct:
        pytest.skip(f"the ring all-reduce needs P2P, refused here: {link.reason}")
    from tensor import multi
    numel = (1 << 30) // 4
    bufs = [a.alloc(4 * numel), b.alloc(4 * numel)]
    rng = np.random.default_rng(3)
    parts = [rng.integers(-1000, 1000, numel).astype(np.float32) for _ in range(2)]
    for d, buf, p in zip((a, b), bufs, parts):
        d.upload(buf, p)
    multi._ring([a, b], bufs, numel, 120.0)
    want = parts[0] + parts[1]
    for d, buf in zip((a, b), bufs):
        np.testing.assert_array_equal(d.download(buf, 4 * numel).view(np.float32), want)
    for buf in bufs:
        buf.free()


def test_bandwidth_and_allreduce_against_cuda():
    """hwdrv's peer copy against CuPy's and torch's on the same GPUs, and its all-reduce of
    1 GiB against torch.distributed (NCCL, NVLS off); numbers printed, bars asserted: at least
    half CuPy's peer bandwidth, at most 5x NCCL's all-reduce time."""
    import multi_gpu_bench as bench

    class Args:
        devices = ",".join(NAMES)
        copy_bytes = 1 << 30
        allreduce_bytes = 1 << 30
    res = {s: bench._in_subprocess(s, Args) for s in ("hwdrv", "cupy", "torch", "nccl")}
    print("\n", res)
    h = res["hwdrv"]
    assert "error" not in h, h
    if not h.get("direct"):
        pytest.skip("no P2P between the GPUs")
    cupy = res["cupy"].get("peer_copy_gbps")
    if cupy:
        assert h["push_gbps"] >= 0.5 * cupy, res
    nccl = res["nccl"].get("allreduce_s")
    if nccl:
        assert h["allreduce_s"] <= 5 * nccl, res
    if not cupy and not nccl:
        pytest.skip(f"no CUDA library to compare with: {res['cupy']} {res['nccl']}")
