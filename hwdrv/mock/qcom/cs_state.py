"""CsState: everything the mock CP hands the ir3 emulator for one compute dispatch.

The CP builds it at CP_EXEC_CS / CP_EXEC_CS_INDIRECT / CP_RUN_OPENCL from its register file (the
SP_CS_* / HLSQ_CS_* registers of hwdrv.qcom.gen.a6xx, decoded with their generated fields) and from
the state loaded by CP_LOAD_STATE6 (const file, descriptors, preloaded instructions), then calls the
emulator's entry point

    hwdrv.mock.qcom.ir3emu.run_cs(state: CsState) -> None

which runs every workgroup to completion (or raises: a ``hwdrv.mock.gpumem.MemoryFault`` for a bad
access, another ``hwdrv.errors.MockFault`` for an illegal instruction / scheduling violation / hang).
Memory is reached through ``state.memory`` (GPU virtual addresses, bounds-checked). All sizes below are
decoded (not register encodings): ``local_size`` is the real size, not size-1.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwdrv.mock.gpumem import GpuPageTable

CONST_VEC4 = 512   # const file entries (vec4 of u32) the state keeps; a6xx compute uses at most 512 (CONSTLEN_512)


@dataclass
class CsState:
    """One compute dispatch (see the module doc). Register ids (``*_regid``) are ir3 register numbers
    as the HLSQ_CS_CNTL_0/1 fields hold them: (n << 2) | component, 0xfc = unused (r63.x)."""

    memory: GpuPageTable
    # program
    shader_iova: int                 # SP_CS_OBJ_START: GPU address of instruction 0 (64-bit instructions)
    instrlen: int                    # SP_CS_INSTRLEN: program length in 128-byte (16-instruction) units
    first_exec_offset: int           # SP_CS_OBJ_FIRST_EXEC_OFFSET: index of the first instruction to run
    preloaded: bytes                 # instructions CP_LOAD_STATE6(SHADER, CS_SHADER) put in the cache (may be b"")
    threadsize: int                  # 64 or 128 fibers per wave (SP_CS_CTRL_REG0.THREADSIZE)
    full_regs: int                   # SP_CS_CTRL_REG0.FULLREGFOOTPRINT (full registers r0.. used, in vec4 units)
    half_regs: int                   # SP_CS_CTRL_REG0.HALFREGFOOTPRINT
    mergedregs: bool                 # SP_CS_CTRL_REG0.MERGEDREGS: half registers alias full ones
    branchstack: int                 # SP_CS_CTRL_REG0.BRANCHSTACK
    # constants: CONST_VEC4 x 4 uint32, c[i].xyzw = consts[i]; loaded marks vec4s written by CP_LOAD_STATE6
    consts: np.ndarray
    consts_loaded: np.ndarray        # bool per vec4
    constlen_vec4: int               # HLSQ_CS_CNTL.CONSTLEN decoded (<< shr); 0 may mean "not programmed"
    const_enabled: bool              # HLSQ_CS_CNTL.ENABLED
    constant_demotion: bool          # SP_MODE_CONTROL.CONSTANT_DEMOTION_ENABLE
    isammode: int                    # SP_MODE_CONTROL.ISAMMODE (a6xx_isam_mode)
    # descriptors loaded by CP_LOAD_STATE6, by slot: IBO (storage buffer / image, 16 dwords),
    # UBO (2 dwords: A6XX_UBO_0/1), texture (16 dwords), sampler (4 dwords)
    ibos: dict[int, np.ndarray] = field(default_factory=dict)
    ubos: dict[int, np.ndarray] = field(default_factory=dict)
    textures: dict[int, np.ndarray] = field(default_factory=dict)
    samplers: dict[int, np.ndarray] = field(default_factory=dict)
    ibo_table_iova: int = 0          # SP_CS_IBO: address of the IBO descriptor table in memory
    ibo_count: int = 0               # SP_CS_IBO_COUNT
    tex_const_iova: int = 0          # SP_CS_TEX_CONST: address of the texture descriptor table
    tex_samp_iova: int = 0           # SP_CS_TEX_SAMP: address of the sampler table
    tex_count: int = 0               # SP_CS_TEX_COUNT
    # dispatch geometry
    kernel_dim: int = 3              # HLSQ_CS_NDRANGE_0.KERNELDIM
    local_size: tuple[int, int, int] = (1, 1, 1)    # NDRANGE_0 LOCALSIZEX/Y/Z + 1
    global_size: tuple[int, int, int] = (1, 1, 1)   # NDRANGE_1/3/5: threads (groups * local) per dimension
    global_offset: tuple[int, int, int] = (0, 0, 0)  # NDRANGE_2/4/6
    groups: tuple[int, int, int] = (1, 1, 1)        # workgroup counts (CP_EXEC_CS payload or KERNEL_GROUP_X/Y/Z)
    # system-value registers the hardware fills before the shader starts
    wgid_regid: int = 0xFC           # HLSQ_CS_CNTL_0.WGIDCONSTID: workgroup id (x,y,z)
    wgsize_regid: int = 0xFC         # WGSIZECONSTID: local size
    wgoffset_regid: int = 0xFC       # WGOFFSETCONSTID: global offset
    localid_regid: int = 0xFC        # LOCALIDREGID: local invocation id (x,y,z)
    linearlocalid_regid: int = 0xFC  # HLSQ_CS_CNTL_1.LINEARLOCALIDREGID
    # memories
    shared_size: int = 32 * 1024     # bytes of shared (local) memory: SP_CS_CTRL_REG1.SHARED_SIZE (0 = 32 KiB)
    pvt_iova: int = 0                # SP_CS_PVT_MEM_ADDR
    pvt_per_fiber: int = 0           # SP_CS_PVT_MEM_PARAM.MEMSIZEPERITEM in bytes (field * 512)
    pvt_total: int = 0               # SP_CS_PVT_MEM_SIZE.TOTALPVTMEMSIZE in bytes (field * 4096), per SP
    pvt_per_wave_layout: bool = False  # SP_CS_PVT_MEM_SIZE.PERWAVEMEMLAYOUT
    hw_stack_offset: int = 0         # SP_CS_PVT_MEM_HW_STACK_OFFSET.OFFSET (bytes)
    regs: dict[int, int] = field(default_factory=dict)   # the whole CP register file at dispatch (offset -> value)
