"""Every Tensor op against numpy, per dtype, on the test devices (mock:nvidia and mock:amd)."""
from __future__ import annotations

import numpy as np
import pytest

from tensor import Tensor, dtypes, where
from test_tensor_helpers import FLOATS, assert_close, device, rounded  # noqa: F401

RNG = np.random.default_rng(1234)


def data(shape, dt, positive=False):
    if dt == dtypes.bool:
        return RNG.random(shape) < 0.5
    if dt == dtypes.int32:
        x = RNG.integers(1 if positive else -20, 20, shape).astype(np.int32)
        return x
    x = RNG.standard_normal(shape).astype(np.float32)
    return rounded(np.abs(x) + 0.1 if positive else x, dt)


def ref_dtype(dt):
    return np.float32 if dt == dtypes.bfloat16 else dt.np


def T(x, dt, device):
    return Tensor(x, dtype=dt, device=device)


UNARY = {
    "neg": (lambda t: -t, lambda x: -x, False),
    "exp": (lambda t: t.exp(), np.exp, False),
    "log": (lambda t: t.log(), np.log, True),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, True),
    "abs": (lambda t: t.abs(), np.abs, False),
    "relu": (lambda t: t.relu(), lambda x: np.maximum(x, 0), False),
    "sigmoid": (lambda t: t.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), False),
    "tanh": (lambda t: t.tanh(), np.tanh, False),
    "reciprocal": (lambda t: t.reciprocal(), lambda x: 1 / x, True),
}


@pytest.mark.parametrize("dt", FLOATS, ids=lambda d: d.name)
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_float(device, op, dt):
    f, ref, positive = UNARY[op]
    x = data((7, 33), dt, positive)
    got = f(T(x, dt, device))
    assert got.dtype == dt
    assert_close(got.numpy(), rounded(ref(x.astype(np.float32)), dt), dt)


@pytest.mark.parametrize("op", ["neg", "abs", "relu"])
def test_unary_int(device, op):
    f, ref, _ = UNARY[op]
    x = data((50,), dtypes.int32)
    assert_close(f(T(x, dtypes.int32, device)).numpy(), ref(x), dtypes.int32)


BINARY = {
    "add": (lambda a, b: a + b, np.add), "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply), "div": (lambda a, b: a / b, np.divide),
    "maximum": (lambda a, b: a.maximum(b), np.maximum),
    "minimum": (lambda a, b: a.minimum(b), np.minimum),
}


@pytest.mark.parametrize("dt", FLOATS + [dtypes.int32], ids=lambda d: d.name)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary(device, op, dt):
    f, ref = BINARY[op]
    a, b = data((5, 1, 9), dt), data((4, 1), dt, positive=(op == "div"))
    got = f(T(a, dt, device), T(b, dt, device)).numpy()
    want = ref(a.astype(ref_dtype(dt)), b.astype(ref_dtype(dt)))
    out_dt = dtypes.float32 if (op == "div" and dt == dtypes.int32) else dt
    assert_close(got, rounded(want, out_dt) if out_dt != dtypes.int32 else want, out_dt)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
@pytest.mark.parametrize("dt", [dtypes.float32, dtypes.float16, dtypes.int32], ids=lambda d: d.name)
def test_compare(device, op, dt):
    a, b = data((6, 10), dt), data((10,), dt)
    a[0, :] = b                                   # some equal elements
    f = eval(f"lambda a, b: a {op} b")
    got = f(T(a, dt, device), T(b, dt, device))
    assert got.dtype == dtypes.bool
    assert_close(got.numpy(), f(a, b), dtypes.bool)


def test_scalar_operands_and_reflected(device):
    x = data((3, 4), dtypes.float32)
    t = T(x, dtypes.float32, device)
    assert_close((2 - t * 3 + 1.5 / (t.abs() + 1)).numpy(), 2 - x * 3 + 1.5 / (np.abs(x) + 1), dtypes.float32)
    i = T(np.arange(6, dtype=np.int32), dtypes.int32, device)
    assert (i + 0.5).dtype == dtypes.float32
    assert_close((i * 2 + 1).numpy(), np.arange(6) * 2 + 1, dtypes.int32)


def test_where_and_bool_logic(device):
    x, y = data((4, 8), dtypes.float32), data((8,), dtypes.float32)
    c = x > 0
    got = where(T(c, dtypes.bool, device), T(x, dtypes.float32, device), T(y, dtypes.float32, device))
    assert_close(got.numpy(), np.where(c, x, y), dtypes.float32)
    tc = T(c, dtypes.bool, device)
    assert_close((~tc).numpy(), ~c, dtypes.bool)
    assert_close(tc.where(1.0, -1.0).numpy(), np.where(c, 1.0, -1.0).astype(np.float32), dtypes.float32)


@pytest.mark.parametrize("src", [dtypes.float32, dtypes.float16, dtypes.bfloat16, dtypes.int32, dtypes.bool],
                         ids=lambda d: d.name)
@pytest.mark.parametrize("dst", [dtypes.float32, dtypes.float16, dtypes.bfloat16, dtypes.int32, dtypes.bool],
                         ids=lambda d: d.name)
def test_cast(device, src, dst):
    x = data((40,), src) if src != dtypes.int32 else data((40,), src)
    if src.is_float:
        x = rounded(x * 7, src)
    got = T(x, src, device).cast(dst).numpy()
    host = x.astype(np.float32) if src == dtypes.bfloat16 else x
    if dst == dtypes.bfloat16:
        want = rounded(host.astype(np.float32), dst)
    else:
        want = host.astype(dst.np)
    if dst.is_float:
        assert_close(got, want, dtypes.float32)    # a cast rounds exactly like numpy
    else:
        assert_close(got, want, dst)


@pytest.mark.parametrize("dt", FLOATS + [dtypes.int32], ids=lambda d: d.name)
@pytest.mark.parametrize("axis, keepdim", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
def test_reductions(device, dt, axis, keepdim):
    x = data((5, 6, 7), dt)
    t = T(x, dt, device)
    hx = x.astype(ref_dtype(dt))
    for name in ("sum", "max", "mean"):
        got = getattr(t, name)(axis=axis, keepdim=keepdim).numpy()
        want = getattr(np, name)(hx.astype(np.float64), axis=axis, keepdims=keepdim)
        if name == "mean" or dt != dtypes.int32:
            rtol_dt = dtypes.float32 if name == "mean" and dt == dtypes.int32 else dt
            assert_close(got, rounded(want, rtol_dt) if rtol_dt != dtypes.float32 else want.astype(np.float32), rtol_dt)
        else:
            assert_close(got, want.astype(np.int32), dt)


def test_bool_reductions(device):
    c = data((6, 5), dtypes.bool)
    t = T(c, dtypes.bool, device)
    assert_close(t.sum(axis=0).numpy(), c.sum(axis=0).astype(np.int32), dtypes.int32)
    assert_close(t.max(axis=1).numpy(), c.max(axis=1), dtypes.bool)
    assert_close(t.min().numpy(), c.min(), dtypes.bool)


@pytest.mark.parametrize("dt", FLOATS, ids=lambda d: d.name)
def test_softmax(device, dt):
    x = data((6, 50), dt) * 3
    hx = x.astype(np.float32)
    e = np.exp(hx - hx.max(-1, keepdims=True))
    got = T(x, dt, device).softmax(-1)
    assert_close(got.numpy(), rounded(e / e.sum(-1, keepdims=True), dt), dt)
    assert_close(T(x, dt, device).softmax(0).numpy(),
                 rounded(np.exp(hx - hx.max(0)) / np.exp(hx - hx.max(0)).sum(0), dt), dt)


def test_movement(device):
    x = data((2, 3, 4), dtypes.float32)
    t = T(x, dtypes.float32, device)
    assert_close(t.reshape(4, 6).numpy(), x.reshape(4, 6), dtypes.float32)
    assert_close(t.reshape(-1, 2).numpy(), x.reshape(-1, 2), dtypes.float32)
    assert_close(t.permute(2, 0, 1).numpy(), x.transpose(2, 0, 1), dtypes.float32)
    assert_close(t.T.numpy(), x.T, dtypes.float32)
    assert_close(t.permute(2, 0, 1).reshape(8, 3).numpy(), x.transpose(2, 0, 1).reshape(8, 3), dtypes.float32)
    assert_close(t[:, :1].expand(2, 5, 4).numpy(), np.broadcast_to(x[:, :1], (2, 5, 4)), dtypes.float32)
    assert_close(t.pad(((1, 0), (0, 2), (1, 1))).numpy(), np.pad(x, ((1, 0), (0, 2), (1, 1))), dtypes.float32)
    assert_close(t.pad(((0, 1), (0, 0), (2, 0)), value=-3.0).numpy(),
                 np.pad(x, ((0, 1), (0, 0), (2, 0)), constant_values=-3.0), dtypes.float32)
    assert_close(t.flip(1).numpy(), x[:, ::-1], dtypes.float32)


@pytest.mark.parametrize("idx", [
    (1,), (slice(None), 2), (slice(1, None), slice(None, None, 2)), (Ellipsis, -1),
    (None, 0, slice(1, 3)), (slice(None, None, -1), slice(3, 0, -2)), (-1, None, Ellipsis, slice(0, 4, 3)),
], ids=str)
def test_slicing(device, idx):
    x = data((3, 5, 4), dtypes.float32)
    assert_close(T(x, dtypes.float32, device)[idx].numpy(), x[idx], dtypes.float32)


def test_slice_of_padded_then_reshaped(device):
    x = data((4, 6), dtypes.float32)
    t = T(x, dtypes.float32, device).pad(((1, 1), (2, 0)))[1:, ::3].T.reshape(-1)
    assert_close(t.numpy(), np.pad(x, ((1, 1), (2, 0)))[1:, ::3].T.reshape(-1), dtypes.float32)


@pytest.mark.parametrize("dt", FLOATS, ids=lambda d: d.name)
@pytest.mark.parametrize("m, k, n", [(16, 32, 24), (33, 16, 40), (8, 20, 6)])
def test_matmul(device, dt, m, k, n):
    a, b = data((m, k), dt), data((k, n), dt)
    got = (T(a, dt, device) @ T(b, dt, device)).numpy()
    want = a.astype(np.float32) @ b.astype(np.float32)
    rtol, atol = {dtypes.float32: (1e-5, 1e-4), dtypes.float16: (2e-3, 2e-2),
                  dtypes.bfloat16: (1.6e-2, 1e-1)}[dt]
    np.testing.assert_allclose(got.astype(np.float32), rounded(want, dt), rtol=rtol, atol=atol)


def test_matmul_transposed_and_batched(device):
    a, b = data((3, 4, 8), dtypes.float32), data((6, 8), dtypes.float32)
    ta, tb = T(a, dtypes.float32, device), T(b, dtypes.float32, device)
    assert_close((ta[0] @ tb.T).numpy(), a[0] @ b.T, dtypes.float32)
    assert_close((ta @ tb.T).numpy(), a @ b.T, dtypes.float32)        # batched: generic path
    assert_close((ta[1] @ tb[0]).numpy(), a[1] @ b[0], dtypes.float32)  # matrix @ vector
    i = data((4, 5), dtypes.int32)
    assert_close((T(i, dtypes.int32, device) @ T(i.T.copy(), dtypes.int32, device)).numpy(), i @ i.T, dtypes.int32)


def test_constructors(device):
    assert_close(Tensor.arange(10, device=device).numpy(), np.arange(10, dtype=np.int32), dtypes.int32)
    assert_close(Tensor.arange(1.0, 2.0, 0.25, device=device).numpy(), np.arange(1.0, 2.0, 0.25, dtype=np.float32),
                 dtypes.float32)
    assert_close(Tensor.zeros(2, 3, device=device).numpy(), np.zeros((2, 3), np.float32), dtypes.float32)
    assert_close(Tensor.ones((3,), dtype=dtypes.float16, device=device).numpy(), np.ones(3, np.float16), dtypes.float16)
    r = Tensor.rand(4, 5, seed=3, device=device).numpy()
    assert r.shape == (4, 5) and (r >= 0).all() and (r < 1).all()
    assert_close(Tensor(3.5, device=device).numpy(), np.float32(3.5), dtypes.float32)
    assert_close(Tensor([[1, 2], [3, 4]], device=device).numpy(), np.array([[1, 2], [3, 4]], np.int32), dtypes.int32)
    bf = Tensor([1.0, 2.5, 1e-3], dtype="bf16", device=device)
    assert bf.dtype == dtypes.bfloat16
    assert_close(bf.numpy(), rounded(np.array([1.0, 2.5, 1e-3]), dtypes.bfloat16), dtypes.float32)


def test_to_same_device_is_identity(device):
    t = Tensor([1.0, 2.0], device=device)
    assert t.to(device) is t
    assert t.device == device
