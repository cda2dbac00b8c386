"""Device.launch on the mock NVIDIA GPU: the fast path's slot ring (reuse only after the GPU
finished a slot's launch), its records for hang reports, and a closed device."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import hwdrv
import hwdrv.device as core

_PTX = (pathlib.Path(__file__).parent / "data" / "conformance" / "kernels.ptx").read_text()


@pytest.fixture
def dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


def test_slots_are_reused_only_after_their_launch_finished(dev, monkeypatch):
    """Four slots and 25 dependent launches: the ring wraps six times, each reuse waiting for
    the launch that held the slot; every launch's addition lands."""
    monkeypatch.setattr(core, "LAUNCH_RING_BYTES", 4 * core.LAUNCH_SLOT_BYTES)
    p = dev.program(dev.compiler.compile(_PTX), "vecadd")
    n = 256
    ones, acc = dev.alloc(n * 4), dev.alloc(n * 4)
    dev.upload(ones, np.ones(n, np.float32))
    dev.upload(acc, np.zeros(n, np.float32))
    for _ in range(25):
        dev.launch(p, (1,), (256,), [ones, acc, acc, n])
    dev.synchronize(30)
    np.testing.assert_array_equal(dev.download(acc, dtype=np.float32), np.full(n, 25, np.float32))
    slots = dev._launch_slots
    assert slots is not None and len(slots.last) == 4
    # 24 launches took the fast path (the first went through a queue): slots 0..3 in turn
    assert slots.next == 24 % 4
    assert sorted(slots.last) == list(range(min(slots.last), min(slots.last) + 4))   # the last four
    # each fast launch is recorded for hang reports with its QMD's address in its slot
    recorded = [launches for _, launches in list(dev.submissions)[-24:]]
    assert all(len(ls) == 1 and ls[0][0] is p and ls[0][1] == (1, 1, 1) for ls in recorded)
    assert {ls[0][3] for ls in recorded} == {slots.va + i * slots.slot_size for i in range(4)}


def test_launch_on_a_closed_device_raises(dev):
    p = dev.program(dev.compiler.compile(_PTX), "vecadd")
    buf = dev.alloc(256)
    dev.launch(p, (1,), (64,), [buf, buf, buf, 64])
    dev.launch(p, (1,), (64,), [buf, buf, buf, 64])
    dev.synchronize(30)
    dev.close()
    with pytest.raises(hwdrv.DeviceClosed):
        dev.launch(p, (1,), (64,), [buf, buf, buf, 64])
