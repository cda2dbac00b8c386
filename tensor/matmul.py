"""Matmul kernels for C[M,N] = A[M,K] @ B[K,N] (row-major, contiguous): which generator and
tile shape a case gets. Shapes are baked into the PTX, so each (shape, dtype, config) is its
own cached program.

* ``wgmma`` (``matmul_wgmma.py``, f16/bf16 on sm_90 with K and N multiples of 8): TMA loads
  into a ring of swizzled stages, a producer warpgroup and consumer warpgroups issuing
  ``wgmma.mma_async``, persistent grid. Assembled for ``sm_90a``; the host encodes the tensor
  maps per call (``MatmulKernel.tensor_maps``).
* ``mma`` (``matmul_mma.py``, f16/bf16 on sm_80+ with K and N multiples of 8): pipelined
  ``cp.async`` + ``ldmatrix`` + ``mma.sync.m16n8k16``. What sm_80/89 get, and sm_90 when an
  MmaConfig is asked for.
* ``simt`` (``matmul_simt.py``, f32 and the other narrow-float shapes): register-tiled FMAs,
  warp tiles, a cp.async ring for f32 (``SimtConfig``'s knobs: docs/matmul-hopper.md).
* ``tf32`` (``matmul_tf32.py``, f32 on sm_80+ with K and N multiples of 4, only after
  ``matmul_precision("tf32")`` or with ``TENSOR_MATMUL_PRECISION=tf32``): inputs rounded to
  TF32, ``mma.sync.m16n8k8`` with f32 accumulation.

The wgmma and SIMT kernels also take a fused elementwise epilogue (``matmul_epilogue.py``:
bias, activation, residual, cast applied to the accumulators before the store)."""
from __future__ import annotations

import os
from dataclasses import replace

from .dtype import DType, bfloat16, float16, float32
from .matmul_epilogue import Epilogue
from .matmul_mma import MmaConfig, mma_kernel
from .matmul_ptx import MatmulKernel, TensorMapSpec, cdiv
from .matmul_simt import SimtConfig, simt_kernel
from .matmul_tf32 import Tf32Config, tf32_kernel
from .matmul_wgmma import WgmmaConfig, wgmma_kernel

#: the tile shapes a case gets unless a config is passed (the fastest measured/predicted)
#: the fastest of bench/tensor_bench.py --matmul-configs on an H100 (2026-12-06, 8192^3): 3 stages
#: with TMA stores, 1.04x cuBLAS in f16 and bf16 (WgmmaConfig()'s 4 stages with direct stores: 0.96, 0.91)
DEFAULT_WGMMA = WgmmaConfig(stages=3, store="tma")
DEFAULT_MMA = MmaConfig()
#: the fastest of `bench/tensor_bench.py --matmul-configs --f32` on an H100 (2026-12-06, 4096^3,
#: exact f32): 256 x 128 tiles of 16 x 8 per lane, one block per SM, 49.6 TFLOPS = 0.97x cuBLAS
#: (SimtConfig(), the CUTLASS shape: 0.90; 128 x 128 with 8 x 16 per lane: 0.93)
DEFAULT_SIMT = SimtConfig(bm=256, tm=16, ctas=1)
#: where DEFAULT_SIMT's big tiles would leave SMs idle (fewer tiles than SMs): 0.93 at 4096
SMALL_SIMT = SimtConfig(warps_m=2, warps_n=2, tn=16)
#: the f32 SIMT configs `bench/tensor_bench.py --matmul-configs --f32` times: the default, then
#: each knob changed alone, the larger thread tiles, and the register-staged pipeline
SIMT_SWEEP = [SimtConfig(), SimtConfig(bk=16), SimtConfig(stages=2), SimtConfig(stages=4),
              SimtConfig(bk=16, stages=2), SimtConfig(bk=16, stages=4), SimtConfig(warps_m=4, warps_n=2),
              SimtConfig(prefetch=False), SimtConfig(warps_m=4, warps_n=2, bk=16), SimtConfig(group=16),
              SimtConfig(warps_m=2, warps_n=2, tn=16),              # 128 threads of 8 x 16 (cuBLAS's shape)
              SimtConfig(warps_m=2, warps_n=2, tn=16, bk=16),
              SimtConfig(bn=256, tn=16, ctas=1), SimtConfig(bm=256, tm=16, ctas=1),
              SimtConfig(bn=64, warps_n=2, bk=16, ctas=4),          # 128 threads, 4 blocks per SM
              SimtConfig(async_copy=False, stages=2, ctas=1)]       # the register-staged pipeline
DEFAULT_TF32 = Tf32Config()
Config = WgmmaConfig | MmaConfig | SimtConfig | Tf32Config

PRECISION_ENV = "TENSOR_MATMUL_PRECISION"
#: "highest": f32 matmuls are exact f32 FMAs; "tf32": they may round their inputs to TF32
PRECISIONS = ("highest", "tf32")
_precision: list[str] = []             # the value set by matmul_precision(), if any


def matmul_precision(value: str | None = None) -> str:
    """The f32 matmul precision, after setting it to ``value`` when given: ``"highest"`` (the
    default: exact f32 on CUDA cores) or ``"tf32"`` (tensor cores on inputs rounded to TF32,
    ~1e-3 relative error; sm_80+, K and N multiples of 4). Until set, the environment variable
    TENSOR_MATMUL_PRECISION decides (unset: "highest")."""
    if value is not None:
        if value not in PRECISIONS:
            raise ValueError(f"matmul precision {value!r} is not one of {PRECISIONS}")
        _precision[:] = [value]
    if _precision:
        return _precision[0]
    env = os.environ.get(PRECISION_ENV, "") or "highest"
    if env not in PRECISIONS:
        raise ValueError(f"{PRECISION_ENV}={env!r} is not one of {PRECISIONS}")
    return env


def _sm(arch: str) -> int:
    return int(arch.removeprefix("sm_").rstrip("af") or 0)


def uses_tensor_cores(arch: str, dtype: DType, k: int, n: int) -> bool:
    """Whether ``matmul_kernel`` picks a tensor-core kernel (wgmma or mma.sync) for this case."""
    return dtype in (float16, bfloat16) and _sm(arch) >= 80 and k % 8 == 0 and n % 8 == 0


def uses_wgmma(arch: str, dtype: DType, m: int, n: int, k: int) -> bool:
    """Whether ``matmul_kernel`` picks the wgmma kernel for this case (when no MmaConfig is
    asked for): f16/bf16 on sm_90 (wgmma is sm_90a-only: not on later SMs), with K and N
    multiples of 8 (the tensor maps' 16-byte row strides). Any M: TMA zero-fills past the edge."""
    return dtype in (float16, bfloat16) and _sm(arch) == 90 and k % 8 == 0 and n % 8 == 0 and m > 0


def uses_tf32(arch: str, dtype: DType, k: int, n: int, precision: str | None = None) -> bool:
    """Whether ``matmul_kernel`` picks the TF32 kernel for this f32 case at ``precision`` (default:
    the current ``matmul_precision()``)."""
    return ((precision or matmul_precision()) == "tf32" and dtype == float32 and _sm(arch) >= 80
            and k % 4 == 0 and n % 4 == 0)


#: the generators that take a fused elementwise epilogue (``matmul_epilogue.py``); a case on
#: another path keeps its epilogue in a kernel of its own
EPILOGUE_PATHS = ("wgmma", "simt")


def matmul_path(arch: str, dtype: DType, m: int, n: int, k: int, config: Config | None = None,
                precision: str | None = None) -> str:
    """The generator ``matmul_kernel`` uses for this case: "wgmma", "mma", "tf32" or "simt"."""
    if uses_wgmma(arch, dtype, m, n, k) and not isinstance(config, MmaConfig):
        return "wgmma"
    if uses_tensor_cores(arch, dtype, k, n):
        return "mma"
    if isinstance(config, Tf32Config):
        precision = "tf32"
    if uses_tf32(arch, dtype, k, n, precision) and not isinstance(config, SimtConfig):
        return "tf32"
    return "simt"


def matmul_kernel(arch: str, dtype: DType, m: int, n: int, k: int,
                  config: Config | None = None, sms: int | None = None,
                  precision: str | None = None, epilogue: Epilogue | None = None) -> MatmulKernel:
    """The kernel for a (m, k) @ (k, n) matmul of ``dtype`` on ``arch``. ``config`` picks the
    path when it names one the case can take (a WgmmaConfig or MmaConfig for tensor cores, a
    SimtConfig otherwise) and sets its tile shape; else the case gets its best path's default.
    ``sms``: the device's SM count, the persistent grid of the default wgmma config (one block
    per SM: its shared memory allows no second). ``precision``: the f32 precision (default: the
    current ``matmul_precision()``); a Tf32Config also asks for TF32. ``epilogue``: elementwise
    work fused into the kernel's store (only on the EPILOGUE_PATHS: ValueError elsewhere)."""
    path = matmul_path(arch, dtype, m, n, k, config, precision)
    if epilogue is not None and path not in EPILOGUE_PATHS:
        raise ValueError(f"the {path} matmul kernel takes no fused epilogue (only {', '.join(EPILOGUE_PATHS)} do)")
    if path == "wgmma":
        if not isinstance(config, WgmmaConfig):
            config = replace(DEFAULT_WGMMA, sms=sms) if sms else DEFAULT_WGMMA
        return wgmma_kernel(dtype, m, n, k, config, epilogue)
    if path == "mma":
        return mma_kernel(arch, dtype, m, n, k, config if isinstance(config, MmaConfig) else DEFAULT_MMA)
    if path == "tf32":
        return tf32_kernel(arch, m, n, k, config if isinstance(config, Tf32Config) else DEFAULT_TF32)
    if not isinstance(config, SimtConfig):
        big = sms is not None and cdiv(m, DEFAULT_SIMT.bm) * cdiv(n, DEFAULT_SIMT.bn) >= sms
        config = DEFAULT_SIMT if big else SMALL_SIMT
    return simt_kernel(arch, dtype, m, n, k, config, epilogue)


__all__ = ["MatmulKernel", "TensorMapSpec", "WgmmaConfig", "MmaConfig", "SimtConfig", "Tf32Config",
           "matmul_kernel", "matmul_path", "matmul_precision", "uses_tensor_cores", "uses_wgmma", "uses_tf32",
           "EPILOGUE_PATHS",
           "DEFAULT_WGMMA", "DEFAULT_MMA", "DEFAULT_SIMT", "SMALL_SIMT", "DEFAULT_TF32", "SIMT_SWEEP"]
