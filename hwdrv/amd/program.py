"""AMDProgram: one kernel of an HSA code object placed in GPU memory.

Placement: the loader (codeobj.load) lays out the PT_LOAD segments (ET_DYN) or ALLOC sections
(ET_REL) as one image; it is relocated for the buffer's GPU address and uploaded, so ``.data`` and
``.bss`` live in ordinary writable GPU memory. The kernel descriptor gives the dispatch registers,
LDS, scratch and the user SGPRs; the metadata note gives the kernarg layout, explicit and hidden.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ProgramError
from ..program import Param, Program
from . import codeobj
from .gen import gc11 as G

if TYPE_CHECKING:
    from .device import AMDDevice

#: COMPUTE_PGM_RSRC2.LDS_SIZE granule (bytes) on gfx11 compute (reference 2.5)
LDS_GRANULE = 512
#: COMPUTE_TMPRING_SIZE.WAVESIZE granule (bytes per wave) on gfx11
SCRATCH_GRANULE = 256
WAVE_SIZE = 32
#: user SGPRs hwdrv can provide: the kernarg pointer, the dispatch id and the private segment size.
#: The others (private segment buffer V#, dispatch/queue packet pointers, flat scratch init) belong
#: to the ROCm runtime's AQL path; LLVM enables them only when a kernel uses them.
SUPPORTED_USER_SGPRS = ("ENABLE_SGPR_KERNARG_SEGMENT_PTR", "ENABLE_SGPR_DISPATCH_ID",
                        "ENABLE_SGPR_PRIVATE_SEGMENT_SIZE")
_DYNAMIC_LDS = "dynamic_shared_pointer"
#: the dynamic LDS region (exec's ``shared`` bytes) starts after the static LDS at this alignment
DYNAMIC_LDS_ALIGN = 16


class AMDProgram(Program):
    """A kernel of a code object loaded on an AMD device."""

    def __init__(self, device: "AMDDevice", binary: bytes, name: str):
        co = codeobj.load(binary)
        if co.arch != device.arch:
            raise ProgramError(f"code object is for {co.arch}, this device is {device.arch}: rebuild with "
                               f"-mcpu={device.arch}")
        k = co.kernels.get(name)
        if k is None:
            raise ProgramError(f"no kernel {name!r} in the code object; it has {', '.join(sorted(co.kernels))}")
        d, m = k.descriptor, k.metadata
        if not d.wave32:
            raise ProgramError(f"{name}: the kernel is compiled for wave64; hwdrv dispatches gfx11 kernels as wave32 "
                               "(build without -mwavefrontsize64)")
        self.user_sgprs = d.user_sgpr_layout()
        bad = [p for p, _, _ in self.user_sgprs if p not in SUPPORTED_USER_SGPRS]
        if bad:
            raise ProgramError(f"{name}: the kernel descriptor asks for {', '.join(bad)}, which hwdrv does not "
                               f"provide (it passes {', '.join(SUPPORTED_USER_SGPRS)}); build with -O2 so LLVM's "
                               "attributor drops unused inputs")
        explicit = [a for a in m.explicit_args if a.value_kind != _DYNAMIC_LDS]
        dyn = [a for a in m.explicit_args if a.value_kind == _DYNAMIC_LDS]
        if len(dyn) > 1:
            raise ProgramError(f"{name}: {len(dyn)} __local pointer arguments; hwdrv passes one dynamic LDS "
                               "region (exec(shared=...)); declare one and carve it up in the kernel")
        self.kernel, self.code_object = k, co
        self.dynamic_lds_arg = dyn[0] if dyn else None
        self.private_size = d.private_segment_fixed_size
        lim = device.limits
        super().__init__(device, name, [Param(a.offset, a.size, a.name) for a in explicit],
                         m.kernarg_segment_size, max_threads=min(m.max_flat_workgroup_size, lim.max_threads_per_block),
                         shared_static=d.group_segment_fixed_size, max_shared=lim.max_shared_per_block)
        self.image = device.alloc(max(co.size, 1))
        device.upload(self.image, np.frombuffer(co.relocated(self.image.va), np.uint8))
        # the instruction cache may hold older code at these addresses (a freed program's): the
        # compute engine invalidates every cache before any later dispatch (engines run in order)
        device.compute_queue().memory_barrier().submit()
        self.code_va = self.image.va + k.code_offset
        self.kd_va = self.image.va + k.kd_offset
        self._templates: dict[tuple, bytes] = {}

    # ---- what the dispatcher needs ---------------------------------------------------------------
    def rsrc(self, shared: int) -> tuple[int, int, int]:
        """COMPUTE_PGM_RSRC1/2/3: the descriptor's, with the PRIV bit set on gfx11 (the CWSR trap
        handler needs it: reference 2.5) and LDS_SIZE holding static + dynamic LDS (LLVM leaves it 0)."""
        d = self.kernel.descriptor
        static = d.group_segment_fixed_size
        lds = math.ceil(((_align(static, DYNAMIC_LDS_ALIGN) + shared) if shared else static) / LDS_GRANULE)
        return (d.compute_pgm_rsrc1 | G.COMPUTE_PGM_RSRC1__PRIV.encode(1),
                d.compute_pgm_rsrc2 | G.COMPUTE_PGM_RSRC2__LDS_SIZE.encode(lds), d.compute_pgm_rsrc3)

    def scratch_per_wave(self) -> int:
        """Bytes of scratch one wave needs (0: none), in TMPRING_SIZE.WAVESIZE granules."""
        if not self.private_size:
            return 0
        return math.ceil(self.private_size * WAVE_SIZE / SCRATCH_GRANULE) * SCRATCH_GRANULE

    def kernarg_template(self, global_size: tuple, block: tuple, shared: int) -> bytes:
        """The kernarg segment for ``global_size`` work-items in groups of ``block``, with every
        hidden argument filled (ROCm's values: full block counts, group sizes, remainders of a
        partial last group, grid dims, dynamic LDS size) and the explicit arguments zero."""
        key = (global_size, block, shared)
        t = self._templates.get(key)
        if t is None:
            k = self.kernel
            zeros = [0] * len(k.metadata.explicit_args)
            if self.dynamic_lds_arg is not None:
                # the __local pointer argument holds the LDS offset of the dynamic region
                i = k.metadata.explicit_args.index(self.dynamic_lds_arg)
                zeros[i] = _align(k.descriptor.group_segment_fixed_size, DYNAMIC_LDS_ALIGN)
            t = k.pack_kernargs(zeros, global_size, block, dynamic_lds=shared)
            if len(self._templates) < 64:
                self._templates[key] = t
        return t

    def hidden_offset(self, kind: str) -> int | None:
        """Byte offset of hidden argument ``kind`` (e.g. "hidden_block_count_x"), if the kernel has it."""
        for a in self.kernel.metadata.args:
            if a.value_kind == kind:
                return a.offset
        return None


def _align(v: int, a: int) -> int:
    return (v + a - 1) // a * a
