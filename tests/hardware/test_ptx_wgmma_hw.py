"""The wgmma and TMA cases of tests/test_ptx_wgmma_device.py on the H100: the same PTX, compiled
with ``ptxas -arch=sm_90a``, the same numpy expectations. A pass here means the mock's models of
the matrix descriptor, the swizzle patterns, the accumulator fragment layout and the tensor-map
decode agree with the hardware for these cases. `pytest -m hardware tests/hardware`."""
from __future__ import annotations

import pytest

from hwdrv.nvidia.compiler import PtxasCompiler

from test_ptx_wgmma_device import GEMM_CASES, TMA_CASES, run_gemm_case, run_tma_case


@pytest.fixture(scope="module")
def sm90a(dev):
    if getattr(dev, "arch", None) != "sm_90":
        pytest.skip(f"wgmma needs an sm_90 GPU (this is {getattr(dev, 'arch', dev.name)})")
    return PtxasCompiler(arch="sm_90a").compile


@pytest.mark.parametrize("case", GEMM_CASES, ids=[f"n{c[0]}-{c[1]}-sw{c[2]}-tb{c[3]}" for c in GEMM_CASES])
def test_wgmma_on_gpu(dev, sm90a, case):
    run_gemm_case(dev, sm90a, *case)


@pytest.mark.parametrize("case", TMA_CASES, ids=[f"sw{c[0]}" for c in TMA_CASES])
def test_tma_on_gpu(dev, sm90a, case):
    run_tma_case(dev, sm90a, *case)
