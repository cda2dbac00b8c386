"""NVMemory's one alloc/map/rollback path (NVMemory._map): when mapping to the GPU fails, every
kind of allocation gives back what it took -- checked in the mock RM's own object tree and the
VA pool, not in the driver's bookkeeping -- and the next allocation works."""
from __future__ import annotations

import pytest

import hwdrv
from hwdrv.errors import HwdrvError


@pytest.fixture
def dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


def mock_rm_objects(dev) -> set[int]:
    """Handles in the mock RM's object tree of the device's client."""
    return set(dev.kernel.nvidia.clients[dev.rm.client].objects)


@pytest.mark.parametrize("make", [
    lambda m: m.vidmem(1 << 16),
    lambda m: m.vidmem(1 << 16, cpu_map=True),
    lambda m: m.sysmem(1 << 16),
    lambda m: m.rm_sysmem(1 << 12),
])
def test_failed_gpu_mapping_rolls_back(dev, monkeypatch, make):
    mem = dev.mem
    objects, used, live = mock_rm_objects(dev), dev._pool.alloc.used_bytes, dict(mem.live)

    def refuse(*a, **k):
        raise HwdrvError("UVM_MAP_EXTERNAL_ALLOCATION refused (test)")
    monkeypatch.setattr(mem.uvm, "map_external", refuse)
    with pytest.raises(HwdrvError, match="refused"):
        make(mem)
    assert mock_rm_objects(dev) == objects          # the memory object is gone from the mock RM
    assert dev._pool.alloc.used_bytes == used       # the address went back to the pool
    assert mem.live == live
    monkeypatch.undo()
    a = make(mem)
    assert a.handle in mock_rm_objects(dev) and mem.live[a.va] is a
    mem.free(a)
    assert mock_rm_objects(dev) == objects and dev._pool.alloc.used_bytes == used
