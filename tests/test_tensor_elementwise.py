"""Vectorised elementwise kernels: one 16-byte vector per thread (4 f32/i32, 8 f16/bf16, 16
bools), a grid covering the tensor (no grid-stride loop), and the last partial vector done
element by element by the thread after the last whole one. Checked at sizes with every tail
length class, every storage type, mixed widths in one kernel, several blocks, and broadcast and
masked (padded) inputs that stay scalar."""
from __future__ import annotations

import numpy as np
import pytest

import tensor
from tensor import Tensor, dtypes
from tensor.lazy import LazyNode, LazyView
from tensor.lower import lower
from tensor.ops import Op
from tensor.render.ptx import BLOCK, PTXRenderer, vector_width
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


def test_one_shot_grid_covers_the_tensor(device):
    rt = tensor.runtime(device)
    n = 3 * BLOCK * 4 + 5             # three whole blocks of f32 vectors, then a 5-element tail
    x = np.random.default_rng(4).standard_normal(n).astype(np.float32)
    got = (Tensor(x, device=device) + 1).numpy()
    per_thread = 1 if rt.renderer.device_kind == "qcom" else 4    # ir3: a fiber per element
    assert rt.stats.history[-1].grid[0] == -(-n // (BLOCK * per_thread))    # 4 on nvidia / amd
    assert_close(got, x + 1, dtypes.float32)


@pytest.mark.parametrize("dt", [dtypes.float16, dtypes.bfloat16, dtypes.int32, dtypes.bool], ids=lambda d: d.name)
@pytest.mark.parametrize("n", [7, 8, 16, 17, 2 * BLOCK * 8 + 13])
def test_wide_vectors_with_tails(device, dt, n):
    """8 (f16/bf16) or 16 (bool) elements per 16-byte vector: every tail length class, and
    more than one block."""
    rng = np.random.default_rng(n)
    if dt == dtypes.bool:
        a, b = rng.random(n) > 0.5, rng.random(n) > 0.3
        got = (Tensor(a, device=device) != Tensor(b, device=device)).numpy()
        assert_close(got, a != b, dt)
        return
    if dt == dtypes.int32:
        a, b = rng.integers(-99, 99, n).astype(np.int32), rng.integers(-99, 99, n).astype(np.int32)
        assert_close((Tensor(a, device=device) * 3 - Tensor(b, device=device)).numpy(), a * 3 - b, dt)
        return
    a, b = rounded(rng.standard_normal(n), dt), rounded(rng.standard_normal(n), dt)
    got = (Tensor(a, dt, device) * 2 + Tensor(b, dt, device)).numpy()
    assert_close(got, rounded(a.astype(np.float32) * 2 + b.astype(np.float32), dt), dt)


def test_mixed_widths_in_one_kernel(device):
    """f32 inputs, an f16 and a bool output: the kernel's vector is 8 (f16) or 16 (bool)
    elements, so each f32 vector takes 2 or 4 16-byte accesses."""
    rng = np.random.default_rng(9)
    n = 8 * 40 + 3
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    tx, ty = Tensor(x, device=device), Tensor(y, device=device)
    assert_close((tx - ty).cast(dtypes.float16).numpy(), rounded(x - y, dtypes.float16), dtypes.float16)
    assert_close((tx < ty).numpy(), x < y, dtypes.bool)


def test_vector_accesses_in_ptx():
    def buf(shape, dt):
        node = LazyNode(None, Op.BUFFER, dt, shape)
        node.buffer = object()
        return LazyView(node)
    for dt, vec, width in [(dtypes.float32, "v4.f32", 4), (dtypes.int32, "v4.s32", 4),
                           (dtypes.float16, "v4.b32", 8), (dtypes.bfloat16, "v4.b32", 8),
                           (dtypes.bool, "v4.b32", 16)]:
        a = buf((4099,), dt)
        kernel, _ = lower(a.alu(Op.MAX, a).node, set())
        src = PTXRenderer("sm_90").render(kernel)
        assert vector_width(kernel) == width and f"ld.global.nc.{vec}" in src and f"st.global.{vec}" in src
        assert "$VLOOP" not in src and src.count("st.global.") == 1 + 4099 % width  # no grid stride
        ptxas_check(src)


@pytest.mark.parametrize("dt", [dtypes.float16, dtypes.bfloat16], ids=lambda d: d.name)
def test_wide_vectors_with_broadcast_and_strided_inputs(device, dt):
    """An 8-wide (f16/bf16) kernel whose other inputs are a broadcast row, a transposed view
    and a padded view: those stay per-element loads, the own-index ones go 16 bytes at a time."""
    rng = np.random.default_rng(12)
    x = rounded(rng.standard_normal((9, 21)), dt)
    row = rounded(rng.standard_normal(21), dt)
    xt = rounded(rng.standard_normal((21, 9)), dt)
    tx, tr, tt = Tensor(x, dt, device), Tensor(row, dt, device), Tensor(xt, dt, device)
    got = (tx + tr - tt.T).numpy()
    f = lambda a: a.astype(np.float32)  # noqa: E731
    assert_close(got, rounded(f(x) + f(row) - f(xt).T, dt), dt)      # f32 registers, one rounding
    got = (tx.pad(((0, 0), (2, 1))) * 2).numpy()
    assert_close(got, rounded(np.pad(f(x), ((0, 0), (2, 1))) * 2, dt), dt)
