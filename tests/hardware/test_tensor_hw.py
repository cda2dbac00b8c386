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
