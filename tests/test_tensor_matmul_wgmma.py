"""The Hopper wgmma + TMA matmul (tensor/matmul_wgmma.py) against numpy on mock:nvidia, whose
PTX interpreter executes the TMA copies (hand-encoded tensor maps in global memory), the
mbarrier rings, setmaxnreg/elect and wgmma.mma_async on swizzled descriptors. Cases cover full
tiles, ragged M/N/K (zero-filled loads, predicated stores), K tiles that wrap the stage ring,
persistent blocks that take several tiles, and each consumer count. Sizes stay small: the mock
interprets every thread. The kernels also go through ptxas -arch=sm_90a (when ptxas is found:
PATH, $CUDA_HOME or the `nvidia` extra's wheel) at the benchmark's sizes."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tensor
from tensor import Tensor, dtypes
from tensor.matmul import (DEFAULT_WGMMA, MmaConfig, SimtConfig, WgmmaConfig, matmul_kernel, uses_tensor_cores,
                           uses_wgmma)
from tensor.runtime import TENSOR_MAP_CACHE
from test_tensor_helpers import ptxas_log, rounded

DEVICE = "mock:nvidia"
TOL = {dtypes.float16: (2e-3, 2e-2), dtypes.bfloat16: (1.6e-2, 1e-1)}

# (config, m, k, n): small configs with the structure of the default one
CASES = [
    (WgmmaConfig(), 128, 128, 256),                                       # the default tile, one tile
    (WgmmaConfig(bn=128, stages=2, sms=2), 200, 328, 136),                # 6 k-tiles over 2 stages, ragged
    (WgmmaConfig(bn=64, consumers=1, stages=3, sms=3), 130, 200, 264),    # 15 tiles on 3 blocks
    (WgmmaConfig(bn=192, consumers=3, stages=2, group=2, sms=4), 384, 72, 200),
    (WgmmaConfig(bn=64, stages=4, group=1, sms=1), 72, 8, 8),             # K and N of one 16-byte row
    (WgmmaConfig(bn=128, stages=3, sms=2, lag=1), 136, 456, 264),         # stages handed back a k-tile late
    (WgmmaConfig(stages=3, sms=2, store="tma"), 264, 72, 520),            # TMA stores, clipped at the edges
    (WgmmaConfig(bn=64, consumers=1, stages=3, sms=3, lag=1, store="tma"), 130, 200, 264),
    (WgmmaConfig(bn=128, sms=2, setmaxnreg=False), 136, 136, 136),          # no register reconfiguration
    (WgmmaConfig(bn=128, m_blocks=2, stages=3, sms=2), 264, 136, 200),      # 256 x 128 tiles: 2 wgmmas a step
    (WgmmaConfig(bn=64, consumers=1, m_blocks=2, stages=3, sms=2, store="tma"), 200, 72, 136),
    # ping-pong: consumers take alternate tiles; 4 k-tiles over 3 stages make the skip wrap the ring
    (WgmmaConfig(bn=128, m_blocks=2, stages=3, sms=2, pingpong=True), 300, 200, 264),
    (WgmmaConfig(bn=64, stages=5, sms=3, lag=1, store="tma", pingpong=True), 200, 136, 200),
    (WgmmaConfig(bn=64, consumers=3, stages=4, sms=2, pingpong=True), 136, 328, 200),
]


def run(dt, m: int, k: int, n: int, cfg=None) -> tuple[np.ndarray, np.ndarray, str]:
    """(got, want, kernel name) of an (m, k) @ (k, n) matmul on the mock."""
    rt = tensor.runtime(DEVICE)
    rng = np.random.default_rng(m * 7 + n * 3 + k)
    a = rounded(rng.standard_normal((m, k), np.float32), dt).astype(np.float32)
    b = rounded(rng.standard_normal((k, n), np.float32), dt).astype(np.float32)
    saved = dict(rt.matmul_configs)
    if cfg is not None:
        rt.matmul_configs[dt.name] = cfg
    try:
        got = (Tensor(a, dt, DEVICE) @ Tensor(b, dt, DEVICE)).numpy().astype(np.float32)
    finally:
        rt.matmul_configs.clear()
        rt.matmul_configs.update(saved)
    want = rounded(a.astype(np.float64) @ b.astype(np.float64), dt).astype(np.float32)
    return got, want, rt.stats.history[-1].name


@pytest.mark.parametrize("dt", [dtypes.float16, dtypes.bfloat16], ids=lambda d: d.name)
@pytest.mark.parametrize("cfg, m, k, n", CASES, ids=[c[0].tag() + f"-{c[1]}x{c[2]}x{c[3]}" for c in CASES])
def test_wgmma_matmul_on_mock(dt, cfg, m, k, n):
    got, want, name = run(dt, m, k, n, cfg)
    assert name.startswith("matmul_wgmma_"), name
    np.testing.assert_allclose(got, want, rtol=TOL[dt][0], atol=TOL[dt][1])


def test_default_path_is_wgmma_on_sm90():
    got, want, name = run(dtypes.float16, 136, 48, 264)
    assert name.startswith("matmul_wgmma_") and name.endswith(DEFAULT_WGMMA.tag())
    assert DEFAULT_WGMMA.store == "tma"             # the fastest on the H100 (tensor/matmul.py)
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-2)


def test_selection():
    f16, bf16, f32 = dtypes.float16, dtypes.bfloat16, dtypes.float32
    assert uses_wgmma("sm_90", f16, 1, 8, 8) and uses_wgmma("sm_90a", bf16, 4096, 4096, 4096)
    assert not uses_wgmma("sm_90", f32, 64, 64, 64)                 # f32: SIMT (or the TF32 opt-in)
    assert not uses_wgmma("sm_90", f16, 64, 12, 64)                 # N % 8: no 16-byte map rows
    assert not uses_wgmma("sm_90", f16, 64, 64, 12)
    assert not uses_wgmma("sm_80", f16, 64, 64, 64) and not uses_wgmma("sm_100", f16, 64, 64, 64)
    assert uses_tensor_cores("sm_80", f16, 64, 64)
    k = matmul_kernel("sm_90", f16, 64, 64, 64)
    assert k.name.startswith("matmul_wgmma_") and k.target == "sm_90a" and len(k.tensor_maps) == 3   # A, B, C
    assert matmul_kernel("sm_90", f16, 64, 64, 64, MmaConfig()).name.startswith("matmul_mma_")
    assert matmul_kernel("sm_89", f16, 64, 64, 64).name.startswith("matmul_mma_")
    assert matmul_kernel("sm_90", f16, 64, 12, 64, WgmmaConfig()).name.startswith("matmul_simt_")
    assert matmul_kernel("sm_90", f32, 64, 64, 64, SimtConfig()).target is None


def test_tensor_maps_describe_the_operands():
    k = matmul_kernel("sm_90", dtypes.bfloat16, 300, 520, 200, WgmmaConfig(bn=128))
    a, b = k.tensor_maps
    assert (a.operand, a.dtype, a.dims, a.strides, a.box, a.swizzle) == \
        ("a", "bf16", (200, 300), (400,), (64, 128), 128)
    assert (b.operand, b.dims, b.strides, b.box) == ("b", (520, 200), (1040,), (64, 64))
    assert a.l2_promotion == b.l2_promotion == 256
    c, = matmul_kernel("sm_90", dtypes.bfloat16, 300, 520, 200, WgmmaConfig(stages=3, store="tma")).tensor_maps[2:]
    assert (c.operand, c.dims, c.strides, c.box, c.swizzle) == ("c", (520, 300), (1040,), (64, 64), 128)
    assert k.grid == (3 * 5, 1, 1) and k.block == (384, 1, 1)


def test_tensor_maps_are_cached_per_buffer_pair():
    rt = tensor.runtime(DEVICE)
    # the second product's C must be the first's buffer back from the pool, not an older one of
    # its size that earlier tests left there
    rt.pool.clear()
    a = Tensor(np.ones((64, 64), np.float32), dtypes.float16, DEVICE)
    b = Tensor(np.ones((64, 64), np.float32), dtypes.float16, DEVICE)
    (a @ b).realize()
    n = len(rt.tensor_maps)
    c = (a @ b).numpy()
    assert len(rt.tensor_maps) == n                   # same kernel, same buffers: the same maps
    np.testing.assert_array_equal(c, np.full((64, 64), 64, np.float32))
    (b @ a).realize()
    assert len(rt.tensor_maps) == min(n + 1, TENSOR_MAP_CACHE)


def test_setmaxnreg_option():
    on = matmul_kernel("sm_90", dtypes.float16, 256, 256, 256, WgmmaConfig()).ptx
    off = matmul_kernel("sm_90", dtypes.float16, 256, 256, 256, WgmmaConfig(setmaxnreg=False)).ptx
    assert "setmaxnreg.dec.sync.aligned.u32 40;" in on and "setmaxnreg.inc.sync.aligned.u32 232;" in on
    assert "setmaxnreg" not in off and ".maxnreg 168" in off
    one = WgmmaConfig(consumers=1)                  # the launch already gives the most a thread may have
    assert one.launch_regs == one.consumer_regs == 248 and not one.reconfigures
    assert "setmaxnreg" not in matmul_kernel("sm_90", dtypes.float16, 256, 256, 256, one).ptx


def test_bad_configs_are_refused():
    # bn not a multiple of 64 or above 256; 4 consumer warpgroups; a 1-stage ring; 5 stages of
    # 48 KiB; lag 1 with 2 stages; TMA stores' C buffers next to 4 stages; unknown store mode;
    # 384 rows (A's box is at most 256); 2 x 128 accumulators in one warpgroup; ping-pong alone
    for cfg in (WgmmaConfig(bn=96), WgmmaConfig(bn=320), WgmmaConfig(consumers=4), WgmmaConfig(stages=1),
                WgmmaConfig(stages=5), WgmmaConfig(stages=2, lag=1), WgmmaConfig(lag=2),
                WgmmaConfig(store="tma"), WgmmaConfig(stages=3, store="smem"),
                WgmmaConfig(bn=64, consumers=3, m_blocks=2), WgmmaConfig(consumers=1, m_blocks=2),
                WgmmaConfig(consumers=1, pingpong=True)):
        with pytest.raises(ValueError, match="unsupported wgmma tile config"):
            matmul_kernel("sm_90", dtypes.float16, 256, 256, 256, cfg)


# ---- ptxas ---------------------------------------------------------------------------------------
BIG = [WgmmaConfig(), WgmmaConfig(stages=3), WgmmaConfig(bn=128, stages=6), WgmmaConfig(bn=256, consumers=1, stages=4),
       WgmmaConfig(bn=192, consumers=3, stages=3), WgmmaConfig(group=16), WgmmaConfig(lag=1),
       WgmmaConfig(stages=3, store="tma"), WgmmaConfig(bn=128, stages=5, lag=1, store="tma"),
       WgmmaConfig(setmaxnreg=False), WgmmaConfig(stages=3, store="tma", setmaxnreg=False),
       WgmmaConfig(bn=128, m_blocks=2), WgmmaConfig(bn=128, m_blocks=2, stages=3, store="tma"),
       WgmmaConfig(bn=128, m_blocks=2, consumers=1), WgmmaConfig(bn=128, m_blocks=2, pingpong=True),
       WgmmaConfig(bn=128, m_blocks=2, stages=6, pingpong=True), WgmmaConfig(bn=256, stages=3, store="tma", pingpong=True)]


@pytest.mark.parametrize("cfg", BIG + [c[0] for c in CASES], ids=lambda c: c.tag())
def test_kernels_assemble_for_sm90a_without_spills(cfg):
    for dt, (m, n, k) in ((dtypes.bfloat16, (4096, 4096, 4096)), (dtypes.float16, (8192, 8200, 1000))):
        log = ptxas_log(matmul_kernel("sm_90", dt, m, n, k, cfg).ptx, "sm_90a", verbose=True)
        assert re.search(r"0 bytes spill stores, 0 bytes spill loads", log), log
        assert "serialized" not in log, log          # ptxas warns when it must serialize wgmma


def test_runtime_assembles_sm90a_kernels_with_an_sm90a_ptxas():
    """On a real device (a PtxasCompiler for sm_90) the runtime hands .target sm_90a kernels to
    a ptxas for sm_90a (ptxas refuses sm_90a PTX for -arch=sm_90); the mock's compiler keeps
    the PTX as it is."""
    from hwdrv.nvidia.compiler import PtxasCompiler, find_ptxas
    from tensor.runtime import Runtime

    class Device:
        compiler = PtxasCompiler(arch="sm_90", ptxas=find_ptxas() or "ptxas")

    class Fake:
        device = Device()
        _compilers: dict = {}
    got = Runtime._compiler(Fake, "sm_90a")
    assert isinstance(got, PtxasCompiler) and got.arch == "sm_90a"
    assert Runtime._compiler(Fake, "sm_90a") is got and Runtime._compiler(Fake, None) is Device.compiler
    mock = tensor.runtime(DEVICE)
    assert mock._compiler("sm_90a") is mock.device.compiler
    if find_ptxas() is None:
        pytest.skip("no ptxas found (install the `nvidia` extra)")
    assert got.compile(matmul_kernel("sm_90", dtypes.float16, 256, 256, 256).ptx)[:4] == b"\x7fELF"
