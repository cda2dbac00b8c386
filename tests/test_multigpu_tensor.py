"""Tensors over several mock GPUs: Tensor.to between devices, the ring all-reduce on the raw
queues, data-parallel elementwise and matmul (tensor/multi.py), checked against numpy."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from hwdrv import peer, registry
from tensor import Tensor, multi
from tensor import device as tdev


@pytest.fixture
def gpus(request):
    n, link = getattr(request, "param", (2, "nvlink"))
    registry.reset_mock_machine("nvidia", gpus=n, link=link)
    names = [f"mock:nvidia:{i}" for i in range(n)]
    yield names
    for name in names:                 # only ours: other modules' runtimes stay open
        rt = tdev._RUNTIMES.pop(name, None)
        if rt is not None:
            rt.device.close()


def test_to_moves_device_to_device(gpus):
    x = Tensor(np.arange(1000, dtype=np.float32).reshape(10, 100), device=gpus[0])
    y = x.to(gpus[1])
    assert y.device == gpus[1] and y.shape == (10, 100)
    np.testing.assert_array_equal(y.numpy(), np.arange(1000, dtype=np.float32).reshape(10, 100))
    # the bytes went GPU to GPU: the destination device saw no upload from the host
    assert y.lazy.node.buffer.device is tdev.runtime(gpus[1]).device
    z = (y * 2).to(gpus[0])[3]
    np.testing.assert_array_equal(z.numpy(), np.arange(300, 400, dtype=np.float32) * 2)


def test_to_a_device_of_another_machine_goes_through_the_host(gpus):
    x = Tensor(np.arange(8, dtype=np.int32), device=gpus[0])
    np.testing.assert_array_equal(x.to("mock:nvidia").numpy(), np.arange(8, dtype=np.int32))


@pytest.mark.parametrize("gpus", [(2, "nvlink"), (3, "pcie"), (4, "nvlink")], indirect=True)
@pytest.mark.parametrize("numel", [1, 5, 4099])
def test_ring_allreduce_matches_numpy(gpus, numel):
    rng = np.random.default_rng(numel)
    # small integers: every order of summation gives the exact same float32 result
    parts = [rng.integers(-1000, 1000, numel).astype(np.float32) for _ in gpus]
    ts = [Tensor(p, device=d) for p, d in zip(parts, gpus)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # direct peers: no fallback
        out = multi.allreduce(ts)
    want = np.sum(parts, axis=0)
    for t in out:
        np.testing.assert_array_equal(t.numpy(), want)


@pytest.mark.parametrize("gpus", [(2, "none")], indirect=True)
def test_allreduce_without_p2p_warns_and_sums_on_host(gpus):
    parts = [np.full(64, i + 1, np.float32) for i in range(2)]
    ts = [Tensor(p, device=d) for p, d in zip(parts, gpus)]
    with pytest.warns(peer.PeerFallbackWarning):
        multi.allreduce(ts)
    for t in ts:
        np.testing.assert_array_equal(t.numpy(), np.full(64, 3, np.float32))


@pytest.mark.parametrize("gpus", [(3, "nvlink")], indirect=True)
def test_split_matmul_and_elementwise(gpus):
    rng = np.random.default_rng(1)
    a = rng.integers(-8, 8, (12, 30)).astype(np.float32)
    b = rng.integers(-8, 8, (30, 10)).astype(np.float32)
    for c in multi.split_matmul(a, b, gpus):
        np.testing.assert_array_equal(c.numpy(), a @ b)
    parts = multi.elementwise(lambda x, y: (x - y) * x, a, a[::-1].copy(), devices_=gpus)
    assert [p.device for p in parts] == gpus
    np.testing.assert_array_equal(multi.gather(parts, gpus[0]), (a - a[::-1]) * a)


def test_allreduce_argument_checks(gpus):
    x = Tensor(np.zeros(4, np.float32), device=gpus[0])
    with pytest.raises(Exception, match="different device"):
        multi.allreduce([x, Tensor(np.zeros(4, np.float32), device=gpus[0])])
    with pytest.raises(Exception, match="float32"):
        multi.allreduce([x, Tensor(np.zeros(5, np.float32), device=gpus[1])])
