"""The wgmma + TMA matmul (tensor/matmul_wgmma.py) on a real sm_90 GPU (``-m hardware``):
the benchmark's sizes 4096 and 8192 and odd shapes (ragged M, N and K tiles), f16 and bf16,
each config of the benchmark's sweep, checked against numpy on sampled rows and columns (a
full float64 product of 8192^3 would take minutes on the host). Every case asserts that the
wgmma kernel is the one that ran."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

from test_tensor_helpers import open_runtime, rounded  # noqa: E402

import tensor  # noqa: E402
from tensor import Tensor, dtypes  # noqa: E402
from tensor.matmul import WgmmaConfig  # noqa: E402

HW_DEVICE = os.environ.get("TENSOR_HW_DEVICE", "nvidia:0")
SAMPLES = 48
TOL = {dtypes.float16: (1e-2, 5e-2), dtypes.bfloat16: (3e-2, 2e-1)}


@pytest.fixture(scope="module")
def device() -> str:
    rt = open_runtime(HW_DEVICE)
    if rt.device.arch != "sm_90":
        pytest.skip(f"wgmma needs an sm_90 GPU (this is {rt.device.arch})")
    return HW_DEVICE


def check(device: str, dt, m: int, k: int, n: int, cfg: WgmmaConfig | None = None) -> None:
    rt = tensor.runtime(device)
    rng = np.random.default_rng(m + 3 * n + 7 * k)
    a = rounded(rng.standard_normal((m, k), np.float32), dt).astype(np.float32)
    b = rounded(rng.standard_normal((k, n), np.float32), dt).astype(np.float32)
    saved = dict(rt.matmul_configs)
    if cfg is not None:
        rt.matmul_configs[dt.name] = cfg
    try:
        got = (Tensor(a, dt, device) @ Tensor(b, dt, device)).numpy().astype(np.float32)
    finally:
        rt.matmul_configs.clear()
        rt.matmul_configs.update(saved)
    assert rt.stats.history[-1].name.startswith("matmul_wgmma_"), rt.stats.history[-1].name
    rtol, atol = TOL[dt]
    rows = np.unique(np.concatenate([[0, m - 1], rng.integers(0, m, SAMPLES)]))
    cols = np.unique(np.concatenate([[0, n - 1], rng.integers(0, n, SAMPLES)]))
    want_rows = rounded(a[rows].astype(np.float64) @ b.astype(np.float64), dt).astype(np.float32)
    want_cols = rounded(a.astype(np.float64) @ b[:, cols].astype(np.float64), dt).astype(np.float32)
    np.testing.assert_allclose(got[rows], want_rows, rtol=rtol, atol=atol * np.sqrt(k / 64))
    np.testing.assert_allclose(got[:, cols], want_cols, rtol=rtol, atol=atol * np.sqrt(k / 64))


@pytest.mark.parametrize("dt", [dtypes.float16, dtypes.bfloat16], ids=lambda d: d.name)
@pytest.mark.parametrize("size", [4096, 8192])
def test_bench_sizes(device, dt, size):
    check(device, dt, size, size, size)


@pytest.mark.parametrize("dt", [dtypes.float16, dtypes.bfloat16], ids=lambda d: d.name)
@pytest.mark.parametrize("m, k, n", [(1000, 4104, 2056), (4095, 200, 8200), (33, 72, 40), (2048, 8, 1024)])
def test_odd_shapes(device, dt, m, k, n):
    check(device, dt, m, k, n)


SWEEP = [WgmmaConfig(stages=3), WgmmaConfig(bn=128, stages=6), WgmmaConfig(bn=256, consumers=1),
         WgmmaConfig(bn=192, consumers=3, stages=3), WgmmaConfig(group=16), WgmmaConfig(sms=66),
         WgmmaConfig(lag=1), WgmmaConfig(stages=3, lag=1), WgmmaConfig(stages=3, store="tma"),
         WgmmaConfig(bn=128, stages=5, lag=1, store="tma"), WgmmaConfig(setmaxnreg=False),
         WgmmaConfig(bn=128, m_blocks=2), WgmmaConfig(bn=128, m_blocks=2, stages=3, store="tma"),
         WgmmaConfig(bn=128, m_blocks=2, stages=6, pingpong=True),
         WgmmaConfig(bn=256, stages=3, store="tma", pingpong=True)]


@pytest.mark.parametrize("cfg", SWEEP, ids=lambda c: c.tag())
def test_configs(device, cfg):
    check(device, dtypes.float16, 2048, 1032, 1560, cfg)
