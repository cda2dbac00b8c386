"""QcomProgram: one kernel of an hwdrv ir3 binary, its code uploaded for the SP to fetch."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import ProgramError
from ..program import Param, Program
from . import binary as B

if TYPE_CHECKING:
    from .device import QcomDevice

#: registers per SP for a wave's footprint (tinygrad ops_qcom: 12288 // (regs * 128) waves of 128)
_REG_BUDGET = 12288


class QcomProgram(Program):
    """A loaded ir3 kernel: ``meta`` (binary.KernelMeta), ``code`` (GPU buffer), ``instrlen``
    (SP_CS_INSTRLEN units of 128 bytes). Parameters are const-file byte offsets (binary.py)."""

    def __init__(self, device: "QcomDevice", binary: bytes, name: str):
        arch, kernels, code = B.unpack(binary)
        if arch != device.arch:
            raise ProgramError(f"this binary is for {arch}; {device.name} is an {device.arch}")
        if name not in kernels:
            raise ProgramError(f"no kernel {name!r} in this binary; it has {sorted(kernels)}")
        meta = self.meta = kernels[name]
        max_threads = min(device.limits.max_threads_per_block,
                          (_REG_BUDGET // (max(1, meta.full_regs) * 128)) * 128)
        super().__init__(device, name, [Param(o, s, n) for n, o, s in meta.params], meta.param_size,
                         max_threads=max_threads, shared_static=meta.shared)
        text = code[meta.code_offset:meta.code_offset + meta.code_size]
        self.instrlen = meta.code_size // B.CODE_ALIGN
        self.code = device._backend_alloc(len(text), True, for_commands=True)
        device._buffers.add(self.code)
        self.code.view()[:] = np.frombuffer(text, np.uint8)
        device._host_write_fence()
