"""The kind of model openpilot runs on an Adreno 630, compiled by the ir3 renderer and run on the
mock Adreno (mock:qcom, which executes the ir3 machine code and enforces ir3's scheduling
rules): a small convolution and a 2-layer MLP forward, against numpy."""
from __future__ import annotations

import numpy as np
import pytest

import tensor
from tensor import Tensor, dtypes

DEVICE = "mock:qcom"


@pytest.fixture(scope="module")
def rt():
    return tensor.runtime(DEVICE)


def conv2d_taps(x: Tensor, w: np.ndarray, bias: np.ndarray) -> Tensor:
    """A valid 3x3 convolution (stride 1) of x (C, H, W): for each of the 9 taps, the input
    window (C, OH*OW) multiplied by that tap's filter matrix (O, C) — im2col one tap at a time,
    each a matmul — summed, plus the bias, through relu."""
    o, c, kh, kw = w.shape
    _, h, wd = x.shape
    oh, ow = h - kh + 1, wd - kw + 1
    out = None
    for ky in range(kh):
        for kx in range(kw):
            window = x[:, ky:ky + oh, kx:kx + ow].reshape(c, oh * ow)
            term = Tensor(np.ascontiguousarray(w[:, :, ky, kx]), device=DEVICE) @ window
            out = term if out is None else out + term
    return (out + Tensor(bias.reshape(o, 1), device=DEVICE)).relu().reshape(o, oh, ow)


def conv2d_numpy(x: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    o, c, kh, kw = w.shape
    _, h, wd = x.shape
    oh, ow = h - kh + 1, wd - kw + 1
    cols = np.stack([x[:, ky:ky + oh, kx:kx + ow] for ky in range(kh) for kx in range(kw)], 1)  # C, 9, OH, OW
    out = np.einsum("ock,ckyx->oyx", w.reshape(o, c, kh * kw).astype(np.float64), cols.astype(np.float64))
    return np.maximum(out + bias[:, None, None], 0)


def test_convolution_1x3x16x16_8_filters(rt):
    rng = np.random.default_rng(16)
    x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
    w = (rng.standard_normal((8, 3, 3, 3)) / 3).astype(np.float32)
    bias = rng.standard_normal(8).astype(np.float32)
    got = conv2d_taps(Tensor(x[0], device=DEVICE), w, bias).numpy()
    want = conv2d_numpy(x[0], w, bias)
    assert got.shape == (8, 14, 14)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert (want > 0).any() and (want == 0).any()        # relu did something both ways


def mlp_numpy(x, w1, b1, w2, b2):
    h = np.maximum(x.astype(np.float64) @ w1 + b1, 0)
    z = h @ w2 + b2
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("dt", [dtypes.float32, dtypes.float16], ids=lambda d: d.name)
def test_mlp_64_128_10_softmax_argmax(rt, dt):
    rng = np.random.default_rng(64)
    batch = 8
    x = rng.standard_normal((batch, 64)).astype(np.float32)
    w1 = (rng.standard_normal((64, 128)) / 8).astype(np.float32)
    b1 = (rng.standard_normal(128) / 4).astype(np.float32)
    w2 = (rng.standard_normal((128, 10)) / 11).astype(np.float32)
    b2 = (rng.standard_normal(10) / 4).astype(np.float32)
    if dt == dtypes.float16:        # the model's weights and input as f16: numpy gets the same values
        x, w1, b1, w2, b2 = (a.astype(np.float16).astype(np.float32) for a in (x, w1, b1, w2, b2))

    def t(a):
        return Tensor(a, dt, DEVICE)
    before = rt.stats.launches
    h = (t(x) @ t(w1) + t(b1)).relu()
    probs = (h @ t(w2) + t(b2)).softmax(-1).cast(dtypes.float32).numpy()
    launches = rt.stats.launches - before
    want = mlp_numpy(x, w1, b1, w2, b2)
    tol = 1e-5 if dt == dtypes.float32 else 2e-2
    np.testing.assert_allclose(probs, want, rtol=tol, atol=tol)
    np.testing.assert_array_equal(probs.argmax(-1), want.argmax(-1))
    np.testing.assert_allclose(probs.sum(-1), 1, rtol=1e-2 if dt == dtypes.float16 else 1e-5)
    assert launches <= 6, launches     # 2 matmuls, bias+relu, bias+softmax (fused), the cast
