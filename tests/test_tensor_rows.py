"""Row kernels: reductions over the last axis get a group of threads per output (a warp, or a
block for long rows) with coalesced loads and a shuffle / shared-memory combine. Checked against
numpy around the group-size thresholds, with ragged row lengths, several reduced axes, fused
prologues and epilogues, each dtype; and that the kernels assemble for sm_90."""
from __future__ import annotations

import numpy as np
import pytest

from tensor import Tensor, dtypes
from tensor.lazy import LazyNode, LazyView
from tensor.lower import ROW_BLOCK, ROW_MIN, ROW_WARP_MAX, lower, row_group
from tensor.ops import Op
from tensor.render.ptx import BLOCK, PTXRenderer
from tensor.schedule import schedule
from test_tensor_helpers import assert_close, device, ptxas_check, rounded  # noqa: F401

#: row lengths around the thresholds: thread per row, warp (ragged and even), block (ragged)
LENGTHS = [ROW_MIN - 1, ROW_MIN, 300, ROW_WARP_MAX, ROW_WARP_MAX + 1, 4100]


def buffer(shape, dt=dtypes.float32) -> LazyView:
    """A graph input that counts as realized."""
    node = LazyNode(None, Op.BUFFER, dt, shape)
    node.buffer = object()
    return LazyView(node)


def kernels(view: LazyView):
    items = schedule([view.node])
    planned = {id(n) for n in items}
    return [lower(n, planned)[0] for n in items]


def test_block_rows_fill_the_launch_block():
    assert ROW_BLOCK == BLOCK       # a block-wide row is one launch block


@pytest.mark.parametrize("length", LENGTHS)
def test_group_choice_and_threads(length):
    red = buffer((3, length)).reduce(Op.SUM, (1,))
    group = row_group(red.node)
    assert group == (None if length < ROW_MIN else 32 if length <= ROW_WARP_MAX else ROW_BLOCK)
    (kernel,) = kernels(red)
    assert kernel.threads == 3 * (group or 1)


def test_other_axes_keep_a_thread_per_output():
    assert row_group(buffer((300, 3)).reduce(Op.SUM, (0,)).node) is None
    assert row_group(buffer((4, 300, 1)).reduce(Op.RMAX, (1,)).node) == 32     # trailing unit axis


@pytest.mark.parametrize("dt", [dtypes.float32, dtypes.float16, dtypes.int32, dtypes.bool], ids=lambda d: d.name)
@pytest.mark.parametrize("length", [300, 4100])
def test_row_kernels_assemble(dt, length):
    for op in (Op.SUM, Op.RMAX):
        for kernel in kernels(buffer((5, length), dt).reduce(op, (1,))):
            assert "shfl.sync.bfly" in (src := PTXRenderer("sm_90").render(kernel))
            ptxas_check(src)


@pytest.mark.parametrize("length", LENGTHS)
def test_row_sum_max_mean(device, length):
    x = np.random.default_rng(length).standard_normal((3, length)).astype(np.float32)
    t = Tensor(x, device=device)
    assert_close(t.sum(-1).numpy(), x.astype(np.float64).sum(-1).astype(np.float32), dtypes.float32)
    assert_close(t.max(-1, keepdim=True).numpy(), x.max(-1, keepdims=True), dtypes.float32)
    assert_close(t.mean(-1).numpy(), x.astype(np.float64).mean(-1).astype(np.float32), dtypes.float32)


def test_rows_of_several_axes_with_prologue_and_epilogue(device):
    x = np.random.default_rng(3).standard_normal((2, 3, 5, 90)).astype(np.float32)
    t = Tensor(x, device=device)
    got = ((t * t + 1).sum(axis=(1, 3)) * 0.5).sqrt().numpy()
    assert_close(got, np.sqrt((x.astype(np.float64) ** 2 + 1).sum((1, 3)) * 0.5).astype(np.float32),
                 dtypes.float32)


def test_rows_of_a_transposed_view(device):
    x = np.random.default_rng(4).standard_normal((260, 6)).astype(np.float32)
    assert_close(Tensor(x, device=device).T.max(-1).numpy(), x.max(0), dtypes.float32)


def test_int_and_bool_rows(device):
    rng = np.random.default_rng(5)
    xi = rng.integers(-1000, 1000, (4, 2100)).astype(np.int32)
    ti = Tensor(xi, device=device)
    assert_close(ti.sum(-1).numpy(), xi.sum(-1).astype(np.int32), dtypes.int32)
    assert_close(ti.max(-1).numpy(), xi.max(-1), dtypes.int32)
    xb = rng.random((4, 3000)) > 0.9995
    xb[0] = False
    tb = Tensor(xb, device=device)
    assert_close(tb.max(-1).numpy(), xb.max(-1), dtypes.bool)
    assert_close(tb.min(-1).numpy(), xb.min(-1), dtypes.bool)


@pytest.mark.parametrize("dt", [dtypes.float32, dtypes.float16, dtypes.bfloat16], ids=lambda d: d.name)
def test_long_row_softmax(device, dt):
    x = rounded(np.random.default_rng(6).standard_normal((3, 2500)).astype(np.float32) * 4, dt)
    hx = np.asarray(x, np.float64)
    e = np.exp(hx - hx.max(-1, keepdims=True))
    got = Tensor(x, dt, device).softmax(-1).numpy()
    assert_close(got, rounded((e / e.sum(-1, keepdims=True)).astype(np.float32), dt), dt)
