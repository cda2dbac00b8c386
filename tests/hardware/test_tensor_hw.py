"""The tensor op, fusion and fuzz tests on a real GPU (``-m hardware``): the same test
functions as on the mock, with the device fixture pointed at nvidia:0."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

from test_tensor_helpers import open_runtime  # noqa: E402
from test_tensor_ops import *  # noqa: E402,F401,F403
from test_tensor_fusion import *  # noqa: E402,F401,F403
from test_tensor_fuzz import *  # noqa: E402,F401,F403
from test_tensor_matmul import *  # noqa: E402,F401,F403
from test_tensor_elementwise import *  # noqa: E402,F401,F403
from test_tensor_rows import *  # noqa: E402,F401,F403
from test_tensor_fused_rows import *  # noqa: E402,F401,F403
from test_tensor_reduce_axes import *  # noqa: E402,F401,F403

HW_DEVICE = os.environ.get("TENSOR_HW_DEVICE", "nvidia:0")


@pytest.fixture(scope="session")
def device() -> str:  # noqa: F811 - the real GPU replaces the mock for every imported test
    open_runtime(HW_DEVICE)
    return HW_DEVICE


def test_matmul_large_tensor_cores(device):
    import numpy as np
    from tensor import Tensor, dtypes
    rng = np.random.default_rng(0)
    for dt in (dtypes.float16, dtypes.bfloat16):
        a = rng.standard_normal((512, 256)).astype(np.float32)
        b = rng.standard_normal((256, 384)).astype(np.float32)
        got = (Tensor(a, dt, device) @ Tensor(b, dt, device)).numpy().astype(np.float32)
        ta, tb = Tensor(a, dt, device).numpy().astype(np.float32), Tensor(b, dt, device).numpy().astype(np.float32)
        np.testing.assert_allclose(got, ta @ tb, rtol=2e-2, atol=2e-1)


def _launches(device, build):
    import tensor
    rt = tensor.runtime(device)
    before = rt.stats.launches
    out = build().numpy()
    return rt.stats.launches - before, out


def test_bench_sizes_bandwidth_kernels(device):
    """The benchmark's shapes at full size: 8192x8192 f32 softmax in one launch, sums over the
    last axis (one pass) and the first axis (two: the split), a 64 Mi-element add with a tail."""
    import numpy as np
    from tensor import Tensor
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8192, 8192)).astype(np.float32)
    t = Tensor(x, device=device)
    n, got = _launches(device, lambda: t.softmax(-1))
    assert n == 1
    h = x.astype(np.float64)
    e = np.exp(h - h.max(-1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(-1, keepdims=True), rtol=1e-4, atol=1e-7)
    n, got = _launches(device, lambda: t.sum(-1))
    assert n == 1
    np.testing.assert_allclose(got, h.sum(-1), rtol=1e-4, atol=1e-2)
    n, got = _launches(device, lambda: t.sum(0))
    assert n == 2
    np.testing.assert_allclose(got, h.sum(0), rtol=1e-4, atol=1e-2)
    a = rng.standard_normal((1 << 26) + 3).astype(np.float32)
    n, got = _launches(device, lambda: Tensor(a, device=device) + 1)
    assert n == 1
    np.testing.assert_array_equal(got, a + np.float32(1))
