"""What a loader needs to know about a kernel, whatever binary it came from: parameter layout in
constant bank 0, resources (registers, shared, local memory), launch bounds, constant banks.

:class:`~hwdrv.nvidia.cubin.CubinImage` fills these from a cubin's ``.nv.info`` records and
sections; the mock's cubin-shaped binaries (:mod:`hwdrv.nvidia.mockcubin`) carry the same records,
so one loader path serves the GPU and the mock.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ProgramError

# Where kernel parameters start in constant bank 0, per SM (ptxas 13.0: EIATTR_PARAM_CBANK and
# .nv.constant0 sizes of the same kernel compiled for each; sm_120 measured the same way).
# Unknown SMs are rejected rather than guessed.
PARAM_BASE_BY_SM: dict[int, int] = {80: 0x160, 86: 0x160, 87: 0x160, 89: 0x160, 90: 0x210,
                                    100: 0x380, 120: 0x380}

# sm_80+ reserves 1 KiB of shared memory per block for the system. ptxas 13.0 for sm_90/sm_100
# places user data after it (SASS addresses start at 0x400) and includes it in the
# .nv.shared.<k> size, marking that layout with a `.nv.shared.reserved.0` section; for sm_89 it
# does neither and the loader must add the 1 KiB itself.
SHARED_RESERVED_BYTES = 0x400
SHARED_RESERVED_MIN_SM = 80
SHARED_RESERVED_SECTION = ".nv.shared.reserved.0"


@dataclass(frozen=True)
class ParamInfo:
    """One kernel parameter. ``offset`` is relative to the kernel's ``param_base`` in constant
    bank 0. Cubins give ``ordinal`` and the KPARAM_INFO ``flags``; the PTX reader
    (:mod:`hwdrv.nvidia.ptxscan`) also gives ``name``, ``type`` and ``align``."""
    offset: int
    size: int
    name: str = ""
    ordinal: int = 0
    type: str = ""
    align: int = 1
    count: int | None = None        # element count of an array parameter (PTX `p[4096]`)
    pointer: bool = False           # PTX `.ptr` attribute
    pointee_space: str = ""         # PTX `.ptr .global` -> "global"
    pointee_align: int | None = None
    flags: int = 0                  # cubin: the raw KPARAM_INFO attribute bits


@dataclass(frozen=True)
class KernelInfo:
    """What a loader needs to launch one kernel."""
    name: str
    text_offset: int                 # byte offset of the entry point within the (linked) image
    text_size: int
    params: tuple[ParamInfo, ...] = ()
    param_base: int = PARAM_BASE_BY_SM[90]
    param_size: int = 0
    regs: int = 0
    shared_static: int = 0           # bytes a block needs before dynamic smem (reserved included)
    shared_raw: int = 0              # size of the .nv.shared.<k> section as written
    shared_reserved: int = 0         # of shared_static, bytes the system reserves (sm_80+)
    local_per_thread: int = 0        # stack / local memory bytes per thread
    max_threads: int | None = None   # product of MAX_THREADS / REQNTID (the smaller if both)
    maxntid: tuple[int, int, int] | None = None
    reqntid: tuple[int, int, int] | None = None
    maxreg_count: int | None = None
    constant0_size: int = 0
    constant0: bytes = b""           # .nv.constant0.<k> contents (driver area + params template)
    constant_banks: tuple[int, ...] = ()   # N != 0 banks this kernel binds
    exit_offsets: tuple[int, ...] = ()     # kernel-relative offsets of EXIT instructions
    cuda_api_version: int | None = None
    symbol_index: int | None = None
    frame_size: int = 0
    barriers: int = 0                # EIATTR_NUM_BARRIERS: named barriers the kernel uses
    min_stack: int = 0
    max_stack: int = 0
    #: the kernel's code holds device functions it calls (FUNC symbols besides the kernel's in its
    #: .text section, ptxas's ``$kernel$function`` copies): it needs a call stack (program.py)
    calls: bool = False

    @property
    def shared_user(self) -> int:
        """Static shared memory the kernel itself declared (``ptxas -v``'s "bytes smem")."""
        return self.shared_static - self.shared_reserved


def lookup_kernel(kernels: dict[str, KernelInfo], name: str, what: str) -> KernelInfo:
    """``kernels[name]``, or a ProgramError that lists what ``what`` does contain."""
    try:
        return kernels[name]
    except (KeyError, TypeError):
        have = ", ".join(sorted(kernels)) or "no kernels at all"
        raise ProgramError(f"kernel {name!r} is not in this {what}; it has: {have}") from None



@dataclass(frozen=True)
class FunctionInfo:
    """A FUNC symbol (kernel or callee) with its module-wide .nv.info attributes."""
    name: str
    symbol_index: int
    section: str
    offset: int        # within its .text section
    size: int
    regs: int | None
    frame_size: int
    min_stack: int
    max_stack: int


@dataclass(frozen=True)
class ConstantBank:
    """A constant bank other than 0: ``.nv.constant<N>`` (module-wide, ``kernel`` None) or
    ``.nv.constant<N>.<k>``. Uploaded with the image and bound to index N in the QMD."""
    index: int
    kernel: str | None
    section: str
    data: bytes
    image_offset: int


# --------------------------------------------------------------------------------------------
