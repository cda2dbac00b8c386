"""Elementwise epilogues fused into the matmul kernels (tensor/matmul_epilogue.py) against numpy
on mock:nvidia: bias + activation, residual adds, casts, ragged tiles, for the wgmma kernel
(store "tma" and "direct", one and two 64-row blocks, ping-pong) and the f32 SIMT kernel; chains
that must not fuse still compute the right values in two kernels. ``runtime.stats`` counts the
kernels launched. Sizes stay small: the mock interprets every thread."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tensor
from tensor import Tensor, dtypes
from tensor.lazy import LazyNode, LazyView, const_view
from tensor.lower import lower_epilogue
from tensor.matmul import DEFAULT_SIMT, SMALL_SIMT, MmaConfig, SimtConfig, WgmmaConfig, matmul_kernel
from tensor.ops import Op
from tensor.schedule import schedule
from test_tensor_helpers import ptxas_log

DEVICE = "mock:nvidia"
F16, BF16, F32 = dtypes.float16, dtypes.bfloat16, dtypes.float32
#: (rtol, atol) per output dtype: one rounding of values of magnitude ~10
TOL = {F16: (2e-3, 2e-2), BF16: (1.6e-2, 1e-1), F32: (1e-5, 1e-4)}


def operands(dt, m: int, k: int, n: int):
    """A, B, a bias of N, a bias of (M, 1) and a residual of (M, N), as Tensors of ``dt``."""
    rng = np.random.default_rng(m * 7 + n * 3 + k)
    shapes = ((m, k), (k, n), (n,), (m, 1), (m, n))
    return [Tensor(rng.standard_normal(s, np.float32), dt, DEVICE) for s in shapes]


def launched(fn, cfg=None, dt=None, fuse: bool = True) -> tuple[np.ndarray, list[str]]:
    """(fn()'s values as f64, names of the kernels it launched), with matmul config ``cfg``
    for ``dt`` and epilogue fusion on or off."""
    rt = tensor.runtime(DEVICE)
    saved, saved_fuse = dict(rt.matmul_configs), rt.fuse_epilogues
    if cfg is not None:
        rt.matmul_configs[dt.name] = cfg
    rt.fuse_epilogues = fuse
    try:
        before = rt.stats.launches
        got = fn().numpy().astype(np.float64)
        names = [launch.name for launch in rt.stats.history[len(rt.stats.history) - (rt.stats.launches - before):]]
    finally:
        rt.matmul_configs.clear()
        rt.matmul_configs.update(saved)
        rt.fuse_epilogues = saved_fuse
    return got, names


def host(*ts: Tensor) -> list[np.ndarray]:
    return [t.numpy().astype(np.float64) for t in ts]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


# (config, m, k, n): store "tma" (the default), "direct", two 64-row blocks, ping-pong, ragged M and N
WGMMA = [(None, 128, 64, 256),
         (WgmmaConfig(bn=128, stages=2, sms=2), 130, 72, 136),
         (WgmmaConfig(bn=64, consumers=1, m_blocks=2, stages=3, sms=2, store="tma"), 136, 64, 72),
         (WgmmaConfig(bn=64, stages=3, sms=2, store="direct", m_blocks=2, pingpong=True), 200, 64, 72)]


@pytest.mark.parametrize("cfg, m, k, n", WGMMA,
                         ids=[f"{c.tag() if c else 'default'}-{m}x{k}x{n}" for c, m, k, n in WGMMA])
def test_wgmma_bias_relu_is_one_kernel(cfg, m, k, n):
    a, b, bias, _, _ = operands(F16, m, k, n)
    got, names = launched(lambda: (a @ b + bias).relu(), cfg, F16)
    ha, hb, hbias = host(a, b, bias)
    assert len(names) == 1 and names[0].startswith("matmul_wgmma_float16_") and "_ep" in names[0], names
    np.testing.assert_allclose(got, np.maximum(ha @ hb + hbias, 0), *TOL[F16])


@pytest.mark.parametrize("store", ["tma", "direct"])
def test_wgmma_residual_row_bias_and_sigmoid_bf16(store):
    """A (M, 1) bias, a residual of C's shape, and x * sigmoid(x) (the matmul's value used twice
    inside the chain), ragged in M and N."""
    m, k, n = 130, 64, 136
    a, b, _, rbias, res = operands(BF16, m, k, n)
    cfg = WgmmaConfig(bn=128, stages=2, sms=2, store=store)

    def fn():
        x = a @ b * 0.25 + rbias
        return x * x.sigmoid() + res
    got, names = launched(fn, cfg, BF16)
    ha, hb, hr, hres = host(a, b, rbias, res)
    x = ha @ hb * 0.25 + hr
    assert len(names) == 1 and names[0].startswith("matmul_wgmma_bfloat16_"), names
    assert names[0].endswith("_tma_" + names[0].split("_")[-1]) == (store == "tma")
    np.testing.assert_allclose(got, x * sigmoid(x) + hres, *TOL[BF16])


def test_wgmma_cast_to_f32_stores_direct():
    """An f32 result: the kernel stores f32 pairs (v2.f32) directly, not through the f16 TMA
    staging buffer of the default config."""
    m, k, n = 72, 64, 136
    a, b, bias, _, _ = operands(F16, m, k, n)
    got, names = launched(lambda: (a @ b).cast(F32) + bias.cast(F32))
    ha, hb, hbias = host(a, b, bias)
    assert len(names) == 1 and "_tma" not in names[0] and "_ep" in names[0], names
    np.testing.assert_allclose(got, ha @ hb + hbias, *TOL[F32])


def test_wgmma_cast_bf16_to_f16():
    m, k, n = 64, 64, 64
    a, b, bias, _, _ = operands(BF16, m, k, n)
    got, names = launched(lambda: (a @ b + bias).tanh().cast(F16))
    ha, hb, hbias = host(a, b, bias)
    assert len(names) == 1 and names[0].startswith("matmul_wgmma_bfloat16_"), names
    np.testing.assert_allclose(got, np.tanh(ha @ hb + hbias), 2e-3, 2e-3)


@pytest.mark.parametrize("m, k, n", [(64, 32, 64), (100, 40, 66)])
def test_simt_f32_bias_relu_residual(m, k, n):
    """The f32 SIMT kernel: 16-byte stores when N allows, per element on ragged N."""
    a, b, bias, _, res = operands(F32, m, k, n)
    got, names = launched(lambda: (a @ b + bias).relu() + res)
    ha, hb, hbias, hres = host(a, b, bias, res)
    assert len(names) == 1 and names[0].startswith("matmul_simt_float32_") and "_ep" in names[0], names
    np.testing.assert_allclose(got, np.maximum(ha @ hb + hbias, 0) + hres, *TOL[F32])


def test_simt_f32_cast_to_f16():
    m, k, n = 70, 24, 40
    a, b, bias, _, _ = operands(F32, m, k, n)
    got, names = launched(lambda: ((a @ b - bias) * 0.25).exp().cast(F16))     # within f16's range
    ha, hb, hbias = host(a, b, bias)
    assert len(names) == 1 and names[0].startswith("matmul_simt_float32_"), names
    np.testing.assert_allclose(got, np.exp((ha @ hb - hbias) * 0.25), 2e-3, 2e-3)


#: (config, input dtype, output dtype, m, k, n): every thread tile of the SIMT family along M
#: and N (4, 8, 16; 64 threads each), the cp.async ring and the register pipeline (f32 with
#: async_copy off, and f16 inputs), 16-byte stores (N % 4 == 0) and per-element f32 / f16 ones,
#: ragged M, N and K
SIMT_FAMILY = [(SimtConfig(32, 32, 8, 1, 2, 4, 4, stages=2, ctas=1), F32, F32, 40, 20, 36),
               (SimtConfig(64, 64, 8, 1, 2, 16, 4, stages=3, group=1), F32, F16, 70, 24, 66),
               (SimtConfig(64, 64, 16, 2, 1, 4, 16, async_copy=False, prefetch=False), F32, F32, 70, 20, 68),
               (SimtConfig(64, 64, 8, 1, 2, 8, 8, async_copy=False, group=1), F16, F16, 70, 12, 66),
               (SimtConfig(64, 128, 8, 1, 2, 16, 8, async_copy=False, ctas=1), F32, F32, 70, 24, 132)]


@pytest.mark.parametrize("cfg, dt, out, m, k, n", SIMT_FAMILY,
                         ids=[f"{c[0].tag()}-{c[1].name}-{c[2].name}" for c in SIMT_FAMILY])
def test_simt_family_row_and_column_bias_relu_residual(cfg, dt, out, m, k, n):
    """Per-column, per-row and per-element epilogue values on each thread-tile shape and copy
    pipeline of the SIMT kernel."""
    a, b, bias, rbias, res = operands(dt, m, k, n)

    def fn():
        x = (a @ b + bias + rbias).relu() + res
        return x if out == dt else x.cast(out)
    got, names = launched(fn, cfg, dt)
    ha, hb, hbias, hr, hres = host(a, b, bias, rbias, res)
    assert len(names) == 1 and names[0].startswith(f"matmul_simt_{dt.name}_") and cfg.tag() in names[0], names
    assert "_ep" in names[0], names
    np.testing.assert_allclose(got, np.maximum(ha @ hb + hbias + hr, 0) + hres, *TOL[out])


def test_unfusable_chains_keep_their_own_kernel():
    """A reduction of the product, a product used by two different outputs, a product asked for
    itself: the matmul writes its buffer and the rest runs in a kernel of its own."""
    m, k, n = 64, 64, 64
    a, b, bias, _, _ = operands(F16, m, k, n)
    ha, hb, hbias = host(a, b, bias)
    got, names = launched(lambda: (a @ b + bias).sum(1))
    assert len(names) == 2 and names[0].startswith("matmul_wgmma_") and "_ep" not in names[0], names
    np.testing.assert_allclose(got, (ha @ hb + hbias).sum(1), rtol=2e-3, atol=0.2)
    c = a @ b
    got, names = launched(lambda: (c + 1) * c.sum(0))
    assert names[0].startswith("matmul_wgmma_") and not any("_ep" in name for name in names), names
    p = ha @ hb
    np.testing.assert_allclose(got, (p + 1) * p.sum(0), rtol=4e-3, atol=1.0)
    c = a @ b
    rt = tensor.runtime(DEVICE)
    before = rt.stats.launches
    d = (c + bias).relu()
    rt.realize([c.lazy.node, d.lazy.node])
    assert rt.stats.launches - before == 2
    np.testing.assert_allclose(d.numpy().astype(np.float64), np.maximum(p + hbias, 0), *TOL[F16])


def test_paths_without_epilogues_and_fusion_off_run_two_kernels():
    m, k, n = 64, 64, 64
    a, b, bias, _, _ = operands(F16, m, k, n)
    ha, hb, hbias = host(a, b, bias)
    want = np.maximum(ha @ hb + hbias, 0)
    for cfg, fuse in ((MmaConfig(), True), (None, False)):
        got, names = launched(lambda: (a @ b + bias).relu(), cfg, F16, fuse)
        assert len(names) == 2 and "_ep" not in names[0], names
        np.testing.assert_allclose(got, want, *TOL[F16])


def test_schedule_fuses_only_when_asked():
    def buffer(shape):
        node = LazyNode(None, Op.BUFFER, F16, shape)
        node.buffer = object()
        return LazyView(node)
    a, b, bias = buffer((8, 16)), buffer((16, 8)), buffer((8,))
    mm = LazyView(LazyNode(None, Op.MATMUL, F16, (8, 8), (a, b)))
    out = mm.alu(Op.ADD, bias.reshape((1, 8)).expand((8, 8))).node
    assert schedule([out]) == [mm.node, out]
    assert schedule([out], lambda mm, out: True) == [out]
    assert schedule([out], lambda mm, out: False) == [mm.node, out]
    assert schedule([mm.node, out], lambda mm, out: True) == [mm.node, out]


def test_epilogue_is_refused_by_paths_without_one():
    a = LazyView(LazyNode(None, Op.BUFFER, F16, (64, 64)))
    mm = LazyView(LazyNode(None, Op.MATMUL, F16, (64, 64), (a, a)))
    epi, _ = lower_epilogue(mm.alu(Op.NEG).node, mm.node, {id(a.node)})
    with pytest.raises(ValueError, match="the mma matmul kernel takes no fused epilogue"):
        matmul_kernel("sm_90", F16, 64, 64, 64, MmaConfig(), epilogue=epi)
    with pytest.raises(ValueError, match="stores one of"):
        lower_epilogue(mm.alu(Op.CAST, arg=dtypes.int32).node, mm.node, {id(a.node)})


# ---- ptxas: the H100 sizes --------------------------------------------------------------------
def _bias_relu_residual(dt, size: int):
    a = LazyView(LazyNode(None, Op.BUFFER, dt, (size, size)))
    mm = LazyView(LazyNode(None, Op.MATMUL, dt, (size, size), (a, a)))
    bias = LazyView(LazyNode(None, Op.BUFFER, dt, (size,))).reshape((1, size)).expand((size, size))
    x = mm.alu(Op.ADD, bias).alu(Op.MAX, const_view(None, 0.0, dt, (size, size))).alu(Op.ADD, a)
    return lower_epilogue(x.node, mm.node, {id(a.node), id(bias.node)})[0]


@pytest.mark.parametrize("dt, cfg, size", [(F16, None, 8192), (BF16, WgmmaConfig(stages=4), 8192),
                                           (F16, WgmmaConfig(bn=128, m_blocks=2, stages=3, store="tma"), 8192),
                                           (F32, SimtConfig(), 8192), (F32, DEFAULT_SIMT, 4096),
                                           (F32, SMALL_SIMT, 4096)],
                         ids=["f16-default", "bf16-direct", "f16-m2-tma", "f32-simt", "f32-simt-default",
                              "f32-simt-small"])
def test_fused_kernels_assemble_without_spills(dt, cfg, size):
    mk = matmul_kernel("sm_90", dt, size, size, size, cfg, 132, epilogue=_bias_relu_residual(dt, size))
    log = ptxas_log(mk.ptx, "sm_90a", verbose=True)
    assert re.search(r"0 bytes spill stores, 0 bytes spill loads", log), log
