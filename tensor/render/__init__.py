"""Renderers: a linear IR :class:`~tensor.ir.Kernel` in, source text for the device's compiler
out. One per backend: PTX for NVIDIA (``ptx.py``); an AMD one (LLVM IR through llvmlite) or a
Qualcomm one (ir3 assembly) implement the same interface without touching the scheduler."""
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
    from hwdrv.errors import UnsupportedDevice
    raise UnsupportedDevice(f"tensor has no renderer for {device_kind!r} devices yet "
                            "(only nvidia: PTX); use an nvidia or mock:nvidia device")
