"""Renderers: a linear IR :class:`~tensor.ir.Kernel` in, source text for the device's compiler
out. One per backend: PTX for NVIDIA (``ptx.py``), LLVM IR for AMD gfx11 (``llvm_amdgpu.py``,
compiled by llvmlite), ir3 assembly for Qualcomm Adreno a6xx (``ir3.py``, assembled by
hwdrv.qcom's compiler); each implements the same interface without touching the scheduler. A renderer may also provide ``matmul_kernel(dtype, m, n, k, config)``
(a :class:`~tensor.matmul_ptx.MatmulKernel` whose ``ptx`` field holds its source); the runtime
uses it instead of the PTX matmul generators."""
from __future__ import annotations

from typing import Protocol

from ..ir import Kernel


class Renderer(Protocol):
    """What the runtime needs from a backend's code generator."""

    #: the device kind it targets ("nvidia", "amd", "qcom")
    device_kind: str

    def render(self, kernel: Kernel) -> str:
        """Source text of ``kernel`` (one entry point named ``kernel.name``) for the device's
        compiler; its parameters are ``kernel.params`` buffers in order."""
        ...


def renderer_for(device_kind: str, arch: str) -> Renderer:
    """The renderer for a device kind (``dev.kind``) and architecture (``dev.arch``)."""
    if device_kind == "nvidia":
        from .ptx import PTXRenderer
        return PTXRenderer(arch)
    if device_kind == "amd":
        from .llvm_amdgpu import LLVMAMDGPURenderer
        return LLVMAMDGPURenderer(arch)
    if device_kind == "qcom":
        from .ir3 import IR3Renderer
        return IR3Renderer(arch)
    from hwdrv.errors import UnsupportedDevice
    raise UnsupportedDevice(f"tensor has no renderer for {device_kind!r} devices yet "
                            "(nvidia: PTX, amd: LLVM IR, qcom: ir3); use one of those or their mocks")
