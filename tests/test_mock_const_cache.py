"""The mock GPU's constant cache: banks a QMD keeps (CONSTANT_BUFFER_INVALIDATE clear) come from
the cache, so a chain whose queue did not invalidate the constant caches at its start reads the
arguments of an earlier submission -- the mock catches that as the GPU would show it."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import hwdrv
from hwdrv import Var
from hwdrv.nvidia import queue as nq

_PTX = (pathlib.Path(__file__).parent / "data" / "conformance" / "kernels.ptx").read_text()


def _chain_sums(dev, rounds: int = 3) -> list[int]:
    """A bound queue of two chained add_scalar launches (k, then 2k), resubmitted with k = 1..;
    the value after each run."""
    p = dev.program(dev.compiler.compile(_PTX), "add_scalar")
    x = dev.alloc(256 * 4)
    dev.upload(x, np.zeros(256, np.int32))
    sig = dev.signal(0)
    k = Var("k")
    q = dev.compute_queue()
    q.exec(p, grid=(1,), block=(256,), args=[x, k, 256]).exec(p, grid=(1,), block=(256,), args=[x, k * 2, 256])
    q.signal(sig, k).bind()
    out = []
    for i in range(1, rounds + 1):
        q.submit(k=i)
        sig.wait(i, timeout=30)
        out.append(int(dev.download(x, size=4, dtype=np.int32)[0]))
    return out


@pytest.fixture
def dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


def test_patched_chain_arguments_arrive(dev):
    assert _chain_sums(dev) == [3, 9, 18]


def test_a_chain_without_the_cache_invalidation_reads_old_arguments(dev, monkeypatch):
    # the queue's first launch without INVALIDATE_SHADER_CACHES_NO_WFI (constant caches kept)
    monkeypatch.setattr(nq, "_LAUNCH_WORDS", nq._PCAS_A)
    sums = _chain_sums(dev)
    assert sums[0] == 3 and sums != [3, 9, 18], "the second launch should have read k from the first run"
    assert sums == [3, 3 + 2 + 2, 3 + 2 + 2 + 3 + 2], sums     # launch 2 keeps reading 2k = 2
