"""The matmul kernels on the device: every tile config the variant benchmark tries, on full
tiles (the unchecked path), ragged edges (zero-filled copies, predicated stores), enough k-tiles
to wrap the cp.async ring, and grids larger than one raster group. Sizes stay small: the mock
interprets every thread. On mock:amd the NVIDIA tile configs do not apply: every case runs the
gfx11 generator's kernel (WMMA for f16/bf16, SIMT for f32) and is checked the same way."""
from __future__ import annotations

import numpy as np
import pytest

import tensor
from tensor import Tensor, dtypes
from tensor.matmul import SIMT_SWEEP, MmaConfig, SimtConfig, matmul_kernel, uses_tensor_cores
from test_tensor_helpers import DEVICES, device, ptxas_check, ptxas_spills, rounded  # noqa: F401

#: small configs with the structure of the big ones (the big ones are run at the end)
MMA = [MmaConfig(64, 64, 32, 2, 2, 3, 2), MmaConfig(64, 128, 32, 1, 4, 2, 1),
       MmaConfig(32, 64, 64, 1, 2, 4, 3), MmaConfig(64, 64, 16, 2, 2, 3, 2, prefetch=False),
       MmaConfig(64, 64, 64, 2, 2, 2, 1, prefetch=False), MmaConfig(64, 64, 32, 2, 2, 4, 2, ctas=2)]
#: the structures of the SIMT family at 64 x 64 (64 threads): the cp.async ring with and without
#: fragment prefetch, 4x16 thread tiles, bk 16, 2 and 4 stages, and the register path
SIMT = [SimtConfig(64, 64, 8, 1, 2, 8, 8, stages=3, ctas=1, group=2),
        SimtConfig(64, 64, 16, 2, 1, 4, 16, stages=2, prefetch=False, group=1),
        SimtConfig(64, 64, 16, 2, 1, 4, 16, stages=4),
        SimtConfig(64, 64, 8, 1, 2, 8, 8, async_copy=False, group=1),
        SimtConfig(64, 64, 16, 2, 1, 4, 16, async_copy=False, prefetch=False)]
TOL = {dtypes.float32: (1e-5, 1e-4), dtypes.float16: (2e-3, 2e-2), dtypes.bfloat16: (1.6e-2, 1e-1)}


def check(device: str, dt, m: int, k: int, n: int, cfg=None) -> None:
    rt = tensor.runtime(device)
    rng = np.random.default_rng(m * 7 + n * 3 + k)
    a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
    a, b = rounded(a, dt).astype(np.float32), rounded(b, dt).astype(np.float32)
    saved = dict(rt.matmul_configs)
    if cfg is not None:
        rt.matmul_configs[dt.name] = cfg
    try:
        got = (Tensor(a, dt, device) @ Tensor(b, dt, device)).numpy().astype(np.float32)
    finally:
        rt.matmul_configs.clear()
        rt.matmul_configs.update(saved)
    want = a.astype(np.float64) @ b.astype(np.float64)
    rtol, atol = TOL[dt]
    np.testing.assert_allclose(got, rounded(want, dt).astype(np.float32), rtol=rtol, atol=atol)


@pytest.mark.parametrize("dt", [dtypes.float16, dtypes.bfloat16], ids=lambda d: d.name)
@pytest.mark.parametrize("cfg", MMA, ids=lambda c: c.tag())
@pytest.mark.parametrize("m, k, n", [(128, 256, 128), (72, 200, 136), (200, 8, 64)])
def test_mma_configs(device, dt, cfg, m, k, n):
    assert uses_tensor_cores("sm_90", dt, k, n)
    check(device, dt, m, k, n, cfg)


#: SimtConfigs apply to NVIDIA devices only (mock:amd and mock:qcom run their own generator)
NV_DEVICE = next((d for d in DEVICES if "nvidia" in d), "mock:nvidia")


@pytest.mark.parametrize("dt", [dtypes.float32, dtypes.float16], ids=lambda d: d.name)
@pytest.mark.parametrize("cfg", SIMT, ids=lambda c: c.tag())
@pytest.mark.parametrize("m, k, n", [(128, 48, 128), (70, 13, 66), (130, 24, 36)])
def test_simt_configs(dt, cfg, m, k, n):
    """Full tiles (k a multiple of every bk), K % 4 != 0 (per-element loads, 4-byte B copies),
    ragged M, N, K; f16 where the shape keeps it off the tensor cores."""
    check(NV_DEVICE, dt, m, k, n, cfg)


@pytest.mark.parametrize("dt", [dtypes.float32, dtypes.float16], ids=lambda d: d.name)
def test_odd_shapes(device, dt):
    check(device, dt, 70, 13, 66)


#: the sweep's configs of distinct structure (its other entries change stages, group or ctas,
#: which the small configs above cover)
SWEEP_SHAPES = list({(c.bm, c.bn, c.bk, c.warps_m, c.warps_n, c.tm, c.tn, c.prefetch, c.async_copy): c
                     for c in SIMT_SWEEP}.values())


@pytest.mark.slow
@pytest.mark.parametrize("cfg", SWEEP_SHAPES, ids=lambda c: c.tag())
def test_simt_sweep_configs(cfg):
    """The f32 sweep's tile structures on a shape ragged in M, N and K."""
    check(NV_DEVICE, dtypes.float32, 130, 20, 132, cfg)


def test_narrow_float_shapes_fall_back_to_simt(device):
    assert not uses_tensor_cores("sm_90", dtypes.float16, 12, 16)
    check(device, dtypes.float16, 20, 12, 16)          # K % 8: no 16-byte rows
    check(device, dtypes.bfloat16, 20, 16, 20)         # N % 8


@pytest.mark.parametrize("dt", [dtypes.float16, dtypes.float32], ids=lambda d: d.name)
def test_default_config_full_and_ragged(device, dt):
    check(device, dt, 256, 64, 256)
    check(device, dt, 136, 48, 264)


def test_kernel_resources_assemble():
    """The benchmark's shapes and every config assemble for sm_90."""
    big = [MmaConfig(), MmaConfig(prefetch=False), MmaConfig(stages=4), MmaConfig(256, 128, 64, 4, 2, 4),
           MmaConfig(128, 128, 32, 2, 4, 4, ctas=2), MmaConfig(128, 128, 32, 2, 2, 4)]
    for cfg in MMA + big:
        ptxas_check(matmul_kernel("sm_90", dtypes.bfloat16, 4096, 4096, 4096, cfg).ptx)
    for cfg in SIMT + [SimtConfig()]:
        ptxas_check(matmul_kernel("sm_90", dtypes.float32, 4096, 4096, 4096, cfg).ptx)


@pytest.mark.slow
def test_simt_sweep_fits_registers():
    """Every f32 sweep config assembles at 4096 with no spills (registers within .minnctapersm)."""
    for cfg in SIMT_SWEEP:
        spills = ptxas_spills(matmul_kernel("sm_90", dtypes.float32, 4096, 4096, 4096, cfg).ptx)
        assert spills == 0, f"{cfg.tag()}: {spills} bytes of spill"


def test_bad_config_is_refused():
    for bad in (SimtConfig(warps_m=1),                 # 64 lanes per warp
                SimtConfig(bk=12),                     # not a k-tile the copies split
                SimtConfig(stages=1),
                SimtConfig(bn=256, tn=16, bk=32, stages=4, ctas=2)):   # 2 x 217 KiB of shared memory
        with pytest.raises(ValueError, match="simt"):
            matmul_kernel("sm_90", dtypes.float32, 64, 64, 64, bad)
    with pytest.raises(ValueError):
        matmul_kernel("sm_90", dtypes.float16, 64, 64, 64, MmaConfig(64, 64, 24, 2, 2))
    with pytest.raises(ValueError):     # three k-steps: the fragment buffers would not alternate
        matmul_kernel("sm_90", dtypes.float16, 64, 64, 64, MmaConfig(64, 64, 48, 2, 2))


def test_default_simt_tiles_follow_the_sm_count():
    """Big f32 cases get the measured-fastest 256 x 128 tiles; cases with fewer such tiles than
    SMs (or an unknown SM count) the 128 x 128 ones."""
    from tensor.matmul import DEFAULT_SIMT, SMALL_SIMT, matmul_kernel
    big = matmul_kernel("sm_90", dtypes.float32, 4096, 4096, 4096, sms=132)
    small = matmul_kernel("sm_90", dtypes.float32, 1024, 1024, 1024, sms=132)
    unknown = matmul_kernel("sm_90", dtypes.float32, 4096, 4096, 4096)
    assert DEFAULT_SIMT.tag() in big.name
    assert SMALL_SIMT.tag() in small.name and SMALL_SIMT.tag() in unknown.name
