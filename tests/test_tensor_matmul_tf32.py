"""The opt-in TF32 matmul for f32 (tensor/matmul_tf32.py) on mock:nvidia against numpy: with
``matmul_precision("tf32")`` (or TENSOR_MATMUL_PRECISION=tf32) f32 matmuls run mma.sync m16n8k8
on inputs rounded to TF32 and must equal numpy's float64 product of the same rounded inputs;
by default f32 stays the exact SIMT kernel. The kernels also go through ptxas (sm_90)."""
from __future__ import annotations

import numpy as np
import pytest

import tensor
import tensor.matmul as tm
from tensor import Tensor, dtypes
from tensor.matmul import SimtConfig, Tf32Config, matmul_kernel, matmul_precision, uses_tf32
from test_tensor_helpers import ptxas_check

DEVICE = "mock:nvidia"
CONFIGS = [Tf32Config(), Tf32Config(64, 64, 16, 2, 2, 2, 2), Tf32Config(64, 128, 32, 1, 4, 4, 1)]


@pytest.fixture
def precision():
    """Restores the process-wide precision (and its unset state) after the test."""
    saved = list(tm._precision)
    yield matmul_precision
    tm._precision[:] = saved


def tf32_round(x: np.ndarray) -> np.ndarray:
    """cvt.rna.tf32.f32 in numpy: keep 10 fraction bits, nearest, ties away from zero (the
    magnitude bits round up at half, the sign bit is untouched)."""
    bits = x.astype(np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def run(m: int, k: int, n: int, cfg=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(got, want with TF32-rounded inputs, exact want, kernel name)."""
    rt = tensor.runtime(DEVICE)
    rng = np.random.default_rng(m + 5 * n + 11 * k)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    saved = dict(rt.matmul_configs)
    if cfg is not None:
        rt.matmul_configs["float32"] = cfg
    try:
        got = (Tensor(a, dtypes.float32, DEVICE) @ Tensor(b, dtypes.float32, DEVICE)).numpy()
    finally:
        rt.matmul_configs.clear()
        rt.matmul_configs.update(saved)
    want = tf32_round(a).astype(np.float64) @ tf32_round(b).astype(np.float64)
    return got, want, a.astype(np.float64) @ b.astype(np.float64), rt.stats.history[-1].name


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.tag())
@pytest.mark.parametrize("m, k, n", [(128, 96, 128), (70, 36, 132), (200, 200, 68)])
def test_tf32_matmul_on_mock(precision, cfg, m, k, n):
    precision("tf32")
    got, want, exact, name = run(m, k, n, cfg)
    assert name.startswith("matmul_tf32_"), name
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.abs(got - exact).max() > 1e-4          # the inputs really were rounded


def test_default_stays_exact_f32(precision):
    precision("highest")
    got, _, exact, name = run(70, 36, 132)
    assert name.startswith("matmul_simt_"), name
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5)


def test_environment_variable(precision, monkeypatch):
    tm._precision.clear()
    monkeypatch.setenv("TENSOR_MATMUL_PRECISION", "tf32")
    assert matmul_precision() == "tf32"
    got, want, _, name = run(64, 32, 64)
    assert name.startswith("matmul_tf32_")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    monkeypatch.setenv("TENSOR_MATMUL_PRECISION", "fast")
    with pytest.raises(ValueError, match="TENSOR_MATMUL_PRECISION='fast'"):
        matmul_precision()
    monkeypatch.delenv("TENSOR_MATMUL_PRECISION")
    assert matmul_precision() == "highest"


def test_selection(precision):
    with pytest.raises(ValueError, match="not one of"):
        precision("fp16")
    precision("tf32")
    assert uses_tf32("sm_90", dtypes.float32, 8, 8) and uses_tf32("sm_80", dtypes.float32, 8, 8)
    assert not uses_tf32("sm_75", dtypes.float32, 8, 8)
    assert not uses_tf32("sm_90", dtypes.float32, 6, 8) and not uses_tf32("sm_90", dtypes.float16, 8, 8)
    assert matmul_kernel("sm_90", dtypes.float32, 64, 64, 64, SimtConfig()).name.startswith("matmul_simt_")
    assert matmul_kernel("sm_90", dtypes.float32, 64, 64, 6).name.startswith("matmul_simt_")   # K % 4
    assert matmul_kernel("sm_90", dtypes.float32, 64, 64, 64, precision="highest").name.startswith("matmul_simt_")
    precision("highest")
    assert matmul_kernel("sm_90", dtypes.float32, 64, 64, 64, Tf32Config()).name.startswith("matmul_tf32_")
    with pytest.raises(ValueError, match="unsupported tf32 tile config"):
        matmul_kernel("sm_90", dtypes.float32, 64, 64, 64, Tf32Config(bk=12))


def test_ragged_k_falls_back_and_runs(precision):
    precision("tf32")
    got, _, exact, name = run(40, 13, 24)
    assert name.startswith("matmul_simt_")
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cfg", CONFIGS + [Tf32Config(128, 256, 32, 2, 4, 3), Tf32Config(stages=4)],
                         ids=lambda c: c.tag())
def test_kernels_assemble(cfg):
    for m, n, k in ((4096, 4096, 4096), (1000, 1004, 300)):
        ptxas_check(matmul_kernel("sm_90", dtypes.float32, m, n, k, cfg).ptx)
