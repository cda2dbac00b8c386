"""The opt-in TF32 f32 matmul (tensor/matmul_tf32.py) on a real GPU (``-m hardware``): the
result must equal numpy's float64 product of the TF32-rounded inputs (sampled rows and
columns), at the benchmark's 4096 and at ragged shapes."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

from test_tensor_helpers import open_runtime  # noqa: E402
from test_tensor_matmul_tf32 import tf32_round  # noqa: E402

import tensor  # noqa: E402
from tensor import Tensor, dtypes  # noqa: E402
from tensor.matmul import Tf32Config  # noqa: E402

HW_DEVICE = os.environ.get("TENSOR_HW_DEVICE", "nvidia:0")


@pytest.fixture(scope="module")
def device() -> str:
    rt = open_runtime(HW_DEVICE)
    if not rt.device.arch.startswith("sm_") or int(rt.device.arch[3:5]) < 8:
        pytest.skip(f"TF32 mma needs sm_80+ (this is {rt.device.arch})")
    return HW_DEVICE


@pytest.mark.parametrize("m, k, n", [(4096, 4096, 4096), (1000, 300, 1004), (37, 8, 132)])
def test_tf32_matmul_on_gpu(device, m, k, n):
    rt = tensor.runtime(device)
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    rt.matmul_configs["float32"] = Tf32Config()
    try:
        got = (Tensor(a, dtypes.float32, device) @ Tensor(b, dtypes.float32, device)).numpy()
    finally:
        rt.matmul_configs.pop("float32")
    assert rt.stats.history[-1].name.startswith("matmul_tf32_")
    ra, rb = tf32_round(a).astype(np.float64), tf32_round(b).astype(np.float64)
    rows = np.unique(rng.integers(0, m, 48))
    cols = np.unique(rng.integers(0, n, 48))
    np.testing.assert_allclose(got[rows], ra[rows] @ rb, rtol=1e-4, atol=1e-4 * np.sqrt(k))
    np.testing.assert_allclose(got[:, cols], ra @ rb[:, cols], rtol=1e-4, atol=1e-4 * np.sqrt(k))
