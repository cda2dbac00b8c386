"""Random cross-device wait/signal/copy graphs on the mock machine (tests/multigpu_fuzz_kit.py):
zero ordering violations. The default run is short; the 10k-op run is marked slow."""
from __future__ import annotations

import time

import pytest

import hwdrv
from hwdrv import registry

import multigpu_fuzz_kit as kit
from multigpu_fuzz_kit import Op


def _run(ndev: int, nops: int, seed: int, link: str = "nvlink") -> int:
    registry.reset_mock_machine("nvidia", gpus=ndev, link=link)
    devs = [hwdrv.open_device(f"mock:nvidia:{i}") for i in range(ndev)]
    try:
        for i in range(ndev):
            for j in range(i + 1, ndev):
                devs[i].enable_peer(devs[j])
        return kit.run_graph(devs, kit.make_graph(ndev, nops, cells=24, seed=seed), 24, seed)
    finally:
        for d in reversed(devs):
            d.close()


def test_graph_generator_orders_every_conflict():
    """The kit's own premise, checked with vector clocks: every earlier op that conflicts with
    an op (writes what it reads or writes, or reads what it writes) happens before it --
    through its stream's order or a chain of waits."""
    ops = kit.make_graph(3, 400, cells=8, seed=1)
    nstreams = 6
    by_stream_seq = {(o.stream, o.seq): o for o in ops}
    clock: dict[int, list[int]] = {}
    last_on_stream: dict[int, Op] = {}
    for op in ops:
        c = list(clock[last_on_stream[op.stream].index]) if op.stream in last_on_stream else [0] * nstreams
        for s, v in op.waits.items():
            c = [max(x, y) for x, y in zip(c, clock[by_stream_seq[(s, v)].index])]
        c[op.stream] = op.seq
        clock[op.index] = c
        last_on_stream[op.stream] = op
    for i, op in enumerate(ops):
        for prev in ops[:i]:
            conflict = prev.dst == op.dst or prev.dst == op.src or prev.src == op.dst
            if conflict:
                assert clock[op.index][prev.stream] >= prev.seq, (prev, op)


@pytest.mark.parametrize("ndev,link,seed", [(2, "nvlink", 7), (3, "pcie", 8)])
def test_fuzz_cross_device_graph(ndev, link, seed):
    assert _run(ndev, 600, seed, link) == 0


def test_fuzz_detects_a_missing_wait(monkeypatch):
    """The checker can fail: drop every wait and the same graph shows violations."""
    real = kit.make_graph

    def no_waits(*a, **k):
        ops = real(*a, **k)
        for op in ops:
            op.waits = {}
        return ops
    monkeypatch.setattr(kit, "make_graph", no_waits)
    assert _run(2, 400, 9) > 0


@pytest.mark.slow
def test_fuzz_10k_ops():
    t0 = time.perf_counter()
    assert _run(3, 10_000, 10) == 0
    print(f"10k cross-device ops in {time.perf_counter() - t0:.1f} s")
