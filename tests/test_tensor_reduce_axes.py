"""Reductions over any axis: last, middle, first and all axes, and the two-pass split
(``split.py``) that gives a reduce too few threads for its size more of them. The split
thresholds are lowered here so that mock-sized tensors take the two-pass path; checked against
numpy for sum/max/mean, every dtype, slices that do and do not divide the axis (identity
padding), with launch counts."""
from __future__ import annotations

import numpy as np
import pytest

import tensor
from tensor import Tensor, dtypes, split
from test_tensor_helpers import assert_close, device, rounded  # noqa: F401


@pytest.fixture
def small_split(monkeypatch):
    monkeypatch.setattr(split, "SPLIT_MIN", 512)
    monkeypatch.setattr(split, "SPLIT_THREADS", 4096)
    monkeypatch.setattr(split, "SPLIT_PART_MIN", 16)


def launches(device, build):
    rt = tensor.runtime(device)
    before = rt.stats.launches
    out = build().numpy()
    return rt.stats.launches - before, out


def test_plans():
    assert split.split_plan((8192, 8192), (1,)) is None              # 8192 block rows: enough
    assert split.split_plan((8192, 8192), (0,)) == (0, 32)           # columns: 32 slices of 256
    assert split.split_plan((8192, 8192), (0, 1)) == (0, 1024)       # all: 1024 blocks
    assert split.split_plan((4, 1 << 20), (1,)) == (1, 256)          # 4 long rows
    assert split.split_plan((100, 100), (0,)) is None                # small: one pass


# (shape, axis, launches): column (divides / padded), middle axis, all axes, few long rows
SPLIT_CASES = [((1024, 40), 0, 2), ((1000, 40), 0, 2), ((4, 900, 6), 1, 2), ((96, 70), None, 2),
               ((2, 3000), -1, 2), ((70, 50), (0, 1), 2)]


@pytest.mark.parametrize("shape,axis,n", SPLIT_CASES, ids=str)
def test_split_sum_max_mean(device, small_split, shape, axis, n):
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    t = Tensor(x, device=device)
    h = x.astype(np.float64)
    assert split.split_plan(shape, t._axes(axis)) is not None
    k, got = launches(device, lambda: t.sum(axis))
    assert k == n
    assert_close(got, h.sum(axis).astype(np.float32), dtypes.float32)
    k, got = launches(device, lambda: (-t).max(axis, keepdim=True))          # padding: -inf
    assert k == n
    assert_close(got, (-x).max(axis, keepdims=True), dtypes.float32)
    assert_close(t.mean(axis).numpy(), h.mean(axis).astype(np.float32), dtypes.float32)


@pytest.mark.parametrize("dt", [dtypes.float16, dtypes.bfloat16, dtypes.int32, dtypes.bool], ids=lambda d: d.name)
def test_split_dtypes(device, small_split, dt):
    rng = np.random.default_rng(3)
    shape = (1000, 24)
    if dt == dtypes.bool:
        x = rng.random(shape) > 0.7
        t = Tensor(x, device=device)
        assert_close(t.sum(0).numpy(), x.sum(0).astype(np.int32), dtypes.int32)
        assert_close(t.max(0).numpy(), x.max(0), dt)
        assert_close(t.min(0).numpy(), x.min(0), dt)
        return
    if dt == dtypes.int32:
        x = rng.integers(-2**20, 2**20, shape).astype(np.int32)
        t = Tensor(x, device=device)
        assert_close(t.sum(0).numpy(), x.sum(0).astype(np.int32), dt)
        assert_close((-t).max(0).numpy(), (-x).max(0), dt)           # padding: -2**31
        return
    x = rounded(rng.standard_normal(shape), dt)
    t = Tensor(x, dt, device)
    h = np.asarray(x, np.float64)
    np.testing.assert_allclose(t.sum(0).numpy().astype(np.float64), h.sum(0), rtol=2e-2, atol=0.3)
    assert_close(t.max(0).numpy(), rounded(h.max(0).astype(np.float32), dt), dt)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, (0, 2), None])
def test_every_axis_one_pass(device, axis):
    """Without a split (default thresholds): every axis choice, a ragged unroll remainder."""
    x = np.random.default_rng(5).standard_normal((9, 13, 150)).astype(np.float32)
    t = Tensor(x, device=device)
    h = x.astype(np.float64)
    assert_close(t.sum(axis).numpy(), h.sum(axis).astype(np.float32), dtypes.float32)
    assert_close(t.max(axis).numpy(), x.max(axis), dtypes.float32)
    assert_close(t.mean(axis).numpy(), h.mean(axis).astype(np.float32), dtypes.float32)
