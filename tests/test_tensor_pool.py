"""The tensor runtime's buffer pool: collected tensors' buffers are reused by later tensors of
the same size, never while earlier work may still read them, within a byte limit."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import hwdrv
from hwdrv.errors import InvalidArgument, OutOfMemory
from tensor import Tensor, runtime
from tensor.pool import BufferPool, pool_limit

DEV = "mock:nvidia"


def test_collected_result_is_reused_with_correct_values():
    rt = runtime(DEV)
    x = Tensor(np.arange(1000, dtype=np.float32), device=DEV)
    y = (x + 1).realize()
    va = y.lazy.node.buffer.va
    del y
    gc.collect()
    before = rt.pool.reused
    z = (x * 2).realize()
    assert rt.pool.reused == before + 1
    assert z.lazy.node.buffer.va == va
    np.testing.assert_array_equal(z.numpy(), np.arange(1000, dtype=np.float32) * 2)


def test_not_reused_while_earlier_work_runs():
    dev = hwdrv.open_device(DEV)
    try:
        pool = BufferPool(dev, limit=1 << 20)
        gate = dev.signal(0)
        q = dev.compute_queue().wait(gate, 1)
        q.submit()                                   # the engine now waits on the gate
        buf = dev.alloc(4096)
        pool.give(buf)                               # given back while that work is pending
        other = pool.take(4096)
        assert other is not buf and pool.reused == 0
        gate.value = 1
        q.synchronize(timeout=10)
        assert pool.take(4096) is buf and pool.reused == 1
        other.free()
        buf.free()
    finally:
        dev.close()


def test_limit_evicts_oldest_and_zero_turns_pooling_off():
    dev = hwdrv.open_device(DEV)
    try:
        pool = BufferPool(dev, limit=8192)
        a, b, c = dev.alloc(4096), dev.alloc(4096), dev.alloc(4096)
        for buf in (a, b, c):
            pool.give(buf)
        assert a.freed and not b.freed and not c.freed and pool.bytes == 8192
        pool.clear()
        assert b.freed and c.freed and pool.bytes == 0
        off = BufferPool(dev, limit=0)
        d = dev.alloc(4096)
        off.give(d)
        assert d.freed
    finally:
        dev.close()


class _TightDevice:
    """A device whose first allocation fails as out of memory (what a full GPU says)."""

    closed = False
    _timelines: dict = {}

    def __init__(self):
        self.calls = 0

    def alloc(self, size):
        self.calls += 1
        if self.calls == 1:
            raise OutOfMemory("video memory exhausted")
        return _Buf(size)


class _Buf:
    def __init__(self, size):
        self.size, self.freed = size, False

    def free(self):
        self.freed = True


def test_out_of_memory_empties_pool_and_retries():
    dev = _TightDevice()
    pool = BufferPool(dev, limit=1 << 20)
    held = _Buf(64)
    pool.give(held)
    got = pool.take(128)
    assert got.size == 128 and held.freed and pool.bytes == 0 and dev.calls == 2


@pytest.mark.parametrize("raw, want", [("", 4 << 30), ("0", 0), ("0x1000", 4096)])
def test_pool_limit_setting(monkeypatch, raw, want):
    monkeypatch.setenv("TENSOR_POOL_BYTES", raw)
    assert pool_limit() == want


@pytest.mark.parametrize("raw", ["-1", "lots"])
def test_pool_limit_bad_setting(monkeypatch, raw):
    monkeypatch.setenv("TENSOR_POOL_BYTES", raw)
    with pytest.raises(InvalidArgument, match="TENSOR_POOL_BYTES"):
        pool_limit()
