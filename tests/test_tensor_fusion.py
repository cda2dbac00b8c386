"""Fusion and caching: how many kernels a graph launches, and that repeats compile nothing."""
from __future__ import annotations

import numpy as np

import tensor
from tensor import Tensor
from test_tensor_helpers import assert_close, device  # noqa: F401


def launches(device: str, build) -> tuple[int, np.ndarray]:
    rt = tensor.runtime(device)
    before = rt.stats.launches
    out = build().numpy()
    return rt.stats.launches - before, out


def test_elementwise_chain_is_one_kernel(device):
    x = np.linspace(-2, 2, 96, dtype=np.float32).reshape(8, 12)
    y = np.arange(12, dtype=np.float32)
    tx, ty = Tensor(x, device=device), Tensor(y, device=device)
    n, out = launches(device, lambda: ((tx * 2 + ty).relu().exp() - ty.T.sqrt()).sigmoid().permute(1, 0))
    assert n == 1
    want = 1 / (1 + np.exp(-(np.exp(np.maximum(x * 2 + y, 0)) - np.sqrt(y))))
    assert_close(out, want.T, tensor.dtypes.float32)


def test_reduce_with_prologue_and_epilogue_is_one_kernel(device):
    x = np.random.default_rng(0).standard_normal((6, 40)).astype(np.float32)
    tx = Tensor(x, device=device)
    n, out = launches(device, lambda: ((tx * tx + 1).sum(axis=1) * 0.5).sqrt())
    assert n == 1
    assert_close(out, np.sqrt((x * x + 1).sum(1) * 0.5), tensor.dtypes.float32)


def test_softmax_is_one_kernel(device):
    x = np.random.default_rng(1).standard_normal((5, 33)).astype(np.float32)
    n, out = launches(device, lambda: Tensor(x, device=device).softmax())
    assert n == 1       # max, sum(exp) and the normalisation in one fused row kernel
    e = np.exp(x - x.max(-1, keepdims=True))
    assert_close(out, e / e.sum(-1, keepdims=True), tensor.dtypes.float32)


def test_realized_inputs_are_not_recomputed(device):
    tx = Tensor(np.ones((4, 4), np.float32), device=device)
    y = (tx + 1).realize()
    n, out = launches(device, lambda: y * 2)
    assert n == 1 and (out == 4).all()
    n, _ = launches(device, lambda: y)
    assert n == 0


def test_repeated_graph_compiles_nothing(device):
    rt = tensor.runtime(device)
    x = np.random.default_rng(2).standard_normal((7, 9)).astype(np.float32)
    (Tensor(x, device=device).exp() * 3).sum(axis=0).numpy()
    compiled = rt.stats.compiles
    for _ in range(3):
        (Tensor(x + 1, device=device).exp() * 3).sum(axis=0).numpy()
    assert rt.stats.compiles == compiled


def test_debug_prints_launches(device, monkeypatch, capsys):
    monkeypatch.setenv("TENSOR_DEBUG", "1")
    (Tensor(np.ones(5, np.float32), device=device) + 1).numpy()
    err = capsys.readouterr().err
    assert "e_5" in err and "us" in err
