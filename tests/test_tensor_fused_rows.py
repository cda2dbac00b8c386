"""Fused row kernels: softmax, log-softmax and other reductions read back through a broadcast
over the last axis run as ONE kernel (a warp or a block per row; rows of up to 32 elements per
lane held in registers and read once, longer rows in loop passes). Checked against numpy for
row lengths on both sides of every threshold (warp / block, registers / loops, whole loop steps
and a remainder), each float dtype, 3-D inputs, views, kept intermediates; launch counts; and
the PTX (one load per element for register-resident rows) assembling with ptxas."""
from __future__ import annotations

import numpy as np
import pytest

import tensor
from tensor import Tensor, dtypes
from tensor.lower import ROW_BLOCK, ROW_REG_PARTS, ROW_UNROLL, fused_group, lower
from tensor.render.ptx import PTXRenderer
from tensor.schedule import schedule
from test_tensor_helpers import assert_close, device, ptxas_check, rounded  # noqa: F401

WARP_MAX = 32 * ROW_REG_PARTS                 # longest row a warp holds in registers
BLOCK_MAX = ROW_BLOCK * ROW_REG_PARTS         # longest row a block holds in registers (8192)
STEP = ROW_BLOCK * ROW_UNROLL                 # one loop step of a long row
#: a warp with 2 parts; ragged warp rows; the longest warp row; the first block row; the
#: longest register row (softmax 8192); loop rows with a remainder and with whole steps only
LENGTHS = [2, 33, 300, WARP_MAX, WARP_MAX + 1, BLOCK_MAX, BLOCK_MAX + 808, 5 * STEP]


def launches(device, build):
    rt = tensor.runtime(device)
    before = rt.stats.launches
    out = build().numpy()
    return rt.stats.launches - before, out


def np_softmax(x: np.ndarray) -> np.ndarray:
    h = np.asarray(x, np.float64)
    e = np.exp(h - h.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_log_softmax(x: np.ndarray) -> np.ndarray:
    h = np.asarray(x, np.float64)
    s = h - h.max(-1, keepdims=True)
    return s - np.log(np.exp(s).sum(-1, keepdims=True))


def test_thresholds():
    assert fused_group(WARP_MAX) == 32 and fused_group(WARP_MAX + 1) == ROW_BLOCK
    assert BLOCK_MAX == 8192        # softmax 8192 f32 stays in registers


@pytest.mark.parametrize("length", LENGTHS)
def test_softmax_one_launch(device, length):
    rows = 3 if length <= BLOCK_MAX else 2
    x = np.random.default_rng(length).standard_normal((rows, length)).astype(np.float32) * 3
    t = Tensor(x, device=device)
    n, got = launches(device, lambda: t.softmax(-1))
    assert n == 1
    assert_close(got, np_softmax(x).astype(np.float32), dtypes.float32)


@pytest.mark.parametrize("length", [300, WARP_MAX + 1, BLOCK_MAX + 808])
def test_log_softmax_one_launch(device, length):
    x = np.random.default_rng(length + 1).standard_normal((2, length)).astype(np.float32) * 3
    n, got = launches(device, lambda: Tensor(x, device=device).log_softmax(-1))
    assert n == 1
    np.testing.assert_allclose(got, np_log_softmax(x), rtol=1e-5, atol=5e-5)


@pytest.mark.parametrize("dt", [dtypes.float16, dtypes.bfloat16], ids=lambda d: d.name)
@pytest.mark.parametrize("length", [100, 2000])
def test_softmax_narrow_floats(device, dt, length):
    x = rounded(np.random.default_rng(7).standard_normal((4, length)).astype(np.float32) * 4, dt)
    n, got = launches(device, lambda: Tensor(x, dt, device).softmax(-1))
    assert n == 1
    assert_close(got, rounded(np_softmax(x).astype(np.float32), dt), dt)


def test_two_reductions_normalise(device):
    """layer-norm style: mean, then the variance of (x - mean), then the output: one kernel."""
    x = np.random.default_rng(8).standard_normal((5, 700)).astype(np.float32) * 2 + 1
    t = Tensor(x, device=device)

    def norm():
        c = t - t.mean(-1, keepdim=True)
        return c / ((c * c).mean(-1, keepdim=True) + 1e-5).sqrt()
    n, got = launches(device, norm)
    assert n == 1
    h = x.astype(np.float64)
    c = h - h.mean(-1, keepdims=True)
    np.testing.assert_allclose(got, c / np.sqrt((c * c).mean(-1, keepdims=True) + 1e-5), rtol=1e-4, atol=1e-4)


def test_int_row_max_subtract(device):
    x = np.random.default_rng(9).integers(-10**6, 10**6, (6, 500)).astype(np.int32)
    n, got = launches(device, lambda: Tensor(x, device=device) - Tensor(x, device=device).max(-1, keepdim=True))
    assert n == 1
    assert_close(got, x - x.max(-1, keepdims=True), dtypes.int32)


def test_3d_and_views(device):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 300)).astype(np.float32)
    n, got = launches(device, lambda: Tensor(x, device=device).softmax(-1))
    assert n == 1
    assert_close(got, np_softmax(x).astype(np.float32), dtypes.float32)
    y = rng.standard_normal((300, 5)).astype(np.float32)        # rows of a transposed view
    n, got = launches(device, lambda: Tensor(y, device=device).T.softmax(-1))
    assert n == 1
    assert_close(got, np_softmax(y.T).astype(np.float32), dtypes.float32)
    z = rng.standard_normal((40, 6)).astype(np.float32)         # not the last axis: not fused
    n, got = launches(device, lambda: Tensor(z, device=device).softmax(0))
    assert n == 3
    assert_close(got, np_softmax(z.T).T.astype(np.float32), dtypes.float32)


def test_kept_intermediate(device):
    """Asking for exp(x - max) too: the per-element value is a kernel of its own, the softmax
    reads it; both right."""
    x = np.random.default_rng(11).standard_normal((3, 200)).astype(np.float32)
    t = Tensor(x, device=device)
    e = (t - t.max(-1, keepdim=True)).exp()
    s = e / e.sum(-1, keepdim=True)
    rt = tensor.runtime(device)
    rt.realize([e.lazy.node, s.lazy.node])
    h = x.astype(np.float64)
    assert_close(e.numpy(), np.exp(h - h.max(-1, keepdims=True)).astype(np.float32), dtypes.float32)
    assert_close(s.numpy(), np_softmax(x).astype(np.float32), dtypes.float32)


@pytest.mark.parametrize("length", [300, BLOCK_MAX, BLOCK_MAX + 808])
def test_fused_ptx(device, length):
    t = Tensor(np.zeros((2, length), np.float32), device=device).softmax(-1)
    (node,) = schedule([t.lazy.node])
    kernel, inputs = lower(node, {id(node)})
    src = PTXRenderer("sm_90").render(kernel)
    group = fused_group(length)
    parts = -(-length // group)
    assert len(inputs) == 1 and kernel.threads == 2 * group
    if parts <= ROW_REG_PARTS:      # the row in registers: each element loaded once, stored once
        assert src.count("ld.global") == parts and src.count("st.global") == parts
        assert "$L" not in src
    else:                           # loop passes: max, sum(exp), output
        assert src.count("bra $L") == 3
    assert src.count("bar.sync") == (2 if group > 32 else 0)      # one exchange per reduce
    ptxas_check(src)
