"""Matmul kernels for C[M,N] = A[M,K] @ B[K,N] (row-major, contiguous): which generator and
tile shape a case gets. Shapes are baked into the PTX, so each (shape, dtype, config) is its
own cached program.

* ``mma`` (``matmul_mma.py``, f16/bf16 on sm_80+ with K and N multiples of 8): pipelined
  ``cp.async`` + ``ldmatrix`` + ``mma.sync.m16n8k16``.
* ``simt`` (``matmul_simt.py``, f32 and the other narrow-float shapes): register-tiled FMAs."""
from __future__ import annotations

from .dtype import DType, bfloat16, float16
from .matmul_mma import MmaConfig, mma_kernel
from .matmul_ptx import MatmulKernel
from .matmul_simt import SimtConfig, simt_kernel

#: the tile shapes a case gets unless a config is passed (the fastest measured/predicted)
DEFAULT_MMA = MmaConfig()
DEFAULT_SIMT = SimtConfig()


def uses_tensor_cores(arch: str, dtype: DType, k: int, n: int) -> bool:
    """Whether ``matmul_kernel`` picks mma.sync for this case."""
    sm = int(arch.removeprefix("sm_").rstrip("a") or 0)
    return dtype in (float16, bfloat16) and sm >= 80 and k % 8 == 0 and n % 8 == 0


def matmul_kernel(arch: str, dtype: DType, m: int, n: int, k: int,
                  config: MmaConfig | SimtConfig | None = None) -> MatmulKernel:
    """The kernel for a (m, k) @ (k, n) matmul of ``dtype`` on ``arch``. ``config`` sets the
    tile shape when it is for the path the case takes (an MmaConfig for tensor cores, a
    SimtConfig otherwise); else the default of that path is used."""
    if uses_tensor_cores(arch, dtype, k, n):
        return mma_kernel(arch, dtype, m, n, k, config if isinstance(config, MmaConfig) else DEFAULT_MMA)
    return simt_kernel(arch, dtype, m, n, k, config if isinstance(config, SimtConfig) else DEFAULT_SIMT)


__all__ = ["MatmulKernel", "MmaConfig", "SimtConfig", "matmul_kernel", "uses_tensor_cores",
           "DEFAULT_MMA", "DEFAULT_SIMT"]
