"""The compiler contract every backend fills: source text in, a binary ``Device.program`` loads.

NVIDIA compiles PTX (ptxas to a cubin on the GPU; a cubin-shaped image on the mock), AMD LLVM IR
or OpenCL-built code objects, Qualcomm ir3 assembly. The core only relies on this protocol.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Compiler(Protocol):
    """Turns source text for one target into a loadable binary."""

    #: the target the binaries are for, e.g. "sm_90", "gfx1100", "a630"
    arch: str
    #: what ``compile`` takes, e.g. "ptx", "llvm-ir", "ir3-asm"
    source_kind: str

    def compile(self, source: str | bytes) -> bytes:
        """Compile ``source``; raises :class:`~hwdrv.errors.ProgramError` naming the problem."""
        ...
