"""Vectorised elementwise kernels: a grid-stride loop over 4-element vectors (16-byte accesses
where a buffer is read at the element's own index) and a scalar tail. Checked at sizes with
every tail length, every storage type, broadcast and masked (padded) inputs that stay scalar,
and a grid capped small enough that each thread walks several vectors."""
from __future__ import annotations

import numpy as np
import pytest

import tensor
from tensor import Tensor, dtypes
from tensor.lazy import LazyNode, LazyView
from tensor.lower import lower
from tensor.ops import Op
from tensor.render.ptx import PTXRenderer, vector_width
from test_tensor_helpers import assert_close, device, ptxas_check, rounded  # noqa: F401


@pytest.mark.parametrize("n", [1, 3, 4, 5, 8, 1023, 1030])
def test_every_tail_length(device, n):
    rng = np.random.default_rng(n)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    got = (Tensor(x, device=device) * 2 + Tensor(y, device=device)).numpy()
    assert_close(got, x * 2 + y, dtypes.float32)


@pytest.mark.parametrize("dt", [dtypes.float16, dtypes.bfloat16, dtypes.int32], ids=lambda d: d.name)
def test_storage_types(device, dt):
    rng = np.random.default_rng(1)
    x = rounded(rng.standard_normal(37) * 4, dt) if dt.is_float else rng.integers(-50, 50, 37).astype(np.int32)
    t = Tensor(x, dt, device)
    got = (t + t).numpy()
    assert_close(got, rounded(x.astype(np.float32) * 2, dt) if dt.is_float else x * 2, dt)


def test_bool_vectors(device):
    x = np.random.default_rng(2).standard_normal(45).astype(np.float32)
    t = Tensor(x, device=device)
    mask = (t < 0.25).realize()
    got = (mask.where(t, 0.0) + mask.cast(dtypes.float32)).numpy()
    assert_close(got, np.where(x < 0.25, x + 1, 0.0), dtypes.float32)
    assert_close((t < 0).numpy(), x < 0, dtypes.bool)


def test_broadcast_and_padded_inputs_stay_scalar(device):
    rng = np.random.default_rng(3)
    x, row = rng.standard_normal((6, 10)).astype(np.float32), rng.standard_normal(10).astype(np.float32)
    tx, tr = Tensor(x, device=device), Tensor(row, device=device)
    assert_close((tx - tr + Tensor(x[0, 0], device=device)).numpy(), x - row + x[0, 0], dtypes.float32)
    assert_close(tx.pad(((1, 0), (0, 3))).exp().numpy(), np.exp(np.pad(x, ((1, 0), (0, 3)))), dtypes.float32)


def test_grid_stride_walks_several_vectors(device):
    rt = tensor.runtime(device)
    n = rt.compute_units * 256 * 4 * 2 + 7          # two sweeps of a one-block-per-SM grid
    x = np.random.default_rng(4).standard_normal(n).astype(np.float32)
    saved, rt.blocks_per_sm = rt.blocks_per_sm, 1
    try:
        got = (Tensor(x, device=device) + 1).numpy()
        assert rt.stats.history[-1].grid[0] == rt.compute_units
    finally:
        rt.blocks_per_sm = saved
    assert_close(got, x + 1, dtypes.float32)


def test_vector_accesses_in_ptx():
    def buf(shape, dt):
        node = LazyNode(None, Op.BUFFER, dt, shape)
        node.buffer = object()
        return LazyView(node)
    for dt, vec in [(dtypes.float32, "v4.f32"), (dtypes.float16, "v4.b16"), (dtypes.bool, "v4.u8")]:
        a = buf((4099,), dt)
        kernel, _ = lower(a.alu(Op.ADD, a).node, set())
        src = PTXRenderer("sm_90").render(kernel)
        assert vector_width(kernel) == 4 and f"ld.global.nc.{vec}" in src and f"st.global.{vec}" in src
        ptxas_check(src)
