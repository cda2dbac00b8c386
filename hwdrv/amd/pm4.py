"""PM4 type-3 packet builders for a gfx11 KFD compute queue (reference/amd.md 2.1-2.4, 2.6).

Opcodes, header and field macros come from the generated nvd.h bindings (gen/pm4.py), register
offsets and fields from gc_11_0_0 (gen/gc11.py). The selector values below are the MEC packet
enumerations of amdkfd's kfd_pm4_headers_ai.h and the VGT event types of the PM4 spec; the C
header pipeline cannot read that header yet (anonymous unions), so they are named here once.
"""
from __future__ import annotations

from .gen import gc11 as G
from .gen import pm4 as PM

_U32 = 0xFFFFFFFF
# kfd_pm4_headers_ai.h enums (MEC RELEASE_MEM / WAIT_REG_MEM)
EVENT_INDEX_END_OF_PIPE = 5                     # event_index__mec_release_mem__end_of_pipe
CACHE_FLUSH_AND_INV_TS_EVENT = 0x14             # the end-of-pipe event RELEASE_MEM waits for
INT_SEL_NONE = 0                                # int_sel__mec_release_mem__none
INT_SEL_AFTER_WRITE_CONFIRM = 2                 # int_sel__mec_release_mem__send_interrupt_after_write_confirm
DATA_SEL_32 = 1                                 # data_sel__mec_release_mem__send_32_bit_low
DATA_SEL_64 = 2                                 # data_sel__mec_release_mem__send_64_bit_data
DATA_SEL_CLOCK = 3                              # data_sel__mec_release_mem__send_gpu_clock_counter
FUNCTION_GEQ = 5                                # function__mec_wait_reg_mem__greater_than_or_equal_reference_value
MEM_SPACE_MEMORY = 1                            # mem_space__mec_wait_reg_mem__memory_space
POLL_INTERVAL = 4                               # WAIT_REG_MEM poll interval (tinygrad's and ROCr's value)
# VGT event: wait until earlier dispatches finished (gfx_v11_0.c emits it with EVENT_INDEX 4)
CS_PARTIAL_FLUSH, CS_PARTIAL_FLUSH_INDEX = 7, 4

_SEG = (G.GC_BASE__INST0_SEG0, G.GC_BASE__INST0_SEG1, G.GC_BASE__INST0_SEG2, G.GC_BASE__INST0_SEG3)

# caches per reference 2.6: before a dispatch invalidate the instruction, scalar, vector and L1 caches
# (code, kernargs and data may have been written by the host or an earlier copy); a memory barrier
# also writes back and invalidates L2 so the host sees every result
_GCR_DISPATCH = (PM.PACKET3_ACQUIRE_MEM_GCR_CNTL_GLM_WB(1) | PM.PACKET3_ACQUIRE_MEM_GCR_CNTL_GLM_INV(1)
                 | PM.PACKET3_ACQUIRE_MEM_GCR_CNTL_GLK_WB(1) | PM.PACKET3_ACQUIRE_MEM_GCR_CNTL_GLK_INV(1)
                 | PM.PACKET3_ACQUIRE_MEM_GCR_CNTL_GLV_INV(1) | PM.PACKET3_ACQUIRE_MEM_GCR_CNTL_GL1_INV(1))
_GCR_FULL = (_GCR_DISPATCH | PM.PACKET3_ACQUIRE_MEM_GCR_CNTL_GLI_INV(1) | PM.PACKET3_ACQUIRE_MEM_GCR_CNTL_GL2_INV(1)
             | PM.PACKET3_ACQUIRE_MEM_GCR_CNTL_GL2_WB(1))
# RELEASE_MEM after the end of pipe: write back and invalidate down to L2 before the value lands
_RELEASE_FLUSH = (PM.PACKET3_RELEASE_MEM_GCR_GLV_INV | PM.PACKET3_RELEASE_MEM_GCR_GL1_INV | PM.PACKET3_RELEASE_MEM_GCR_GL2_INV
                  | PM.PACKET3_RELEASE_MEM_GCR_GLM_WB | PM.PACKET3_RELEASE_MEM_GCR_GLM_INV | PM.PACKET3_RELEASE_MEM_GCR_GL2_WB
                  | PM.PACKET3_RELEASE_MEM_GCR_SEQ)
#: dword index of the 64-bit data inside a release_mem() packet (patch sites)
RELEASE_DATA = 5
#: dword index of the reference value inside a wait_mem_geq() packet
WAIT_REFERENCE = 4
#: largest indirect buffer, in dwords (IB_SIZE is 20 bits)
IB_MAX_DWORDS = (1 << 20) - 1


def sh_offset(name: str) -> int:
    """SET_SH_REG offset of COMPUTE_* register ``name``: GC segment base + regX - SET_SH_REG_START."""
    return _SEG[getattr(G, f"reg{name}_BASE_IDX")] + getattr(G, f"reg{name}") - PM.PACKET3_SET_SH_REG_START


def set_sh_reg(name: str, *values: int) -> list[int]:
    """SET_SH_REG writing ``values`` to ``name`` and the registers after it."""
    return [PM.PACKET3(PM.PACKET3_SET_SH_REG, len(values)), sh_offset(name), *values]


def acquire_mem(full: bool = False) -> list[int]:
    """ACQUIRE_MEM over the whole address space (size all ones, base 0) with the cache actions
    a dispatch needs, or (``full``) the ones a memory barrier needs."""
    return [PM.PACKET3(PM.PACKET3_ACQUIRE_MEM, 6), 0, _U32, 0xFF, 0, 0, POLL_INTERVAL,
            _GCR_FULL if full else _GCR_DISPATCH]


def release_mem(addr: int, value: int, data_sel: int, int_sel: int = INT_SEL_NONE, ctx_id: int = 0) -> list[int]:
    """RELEASE_MEM at end of pipe (earlier work done, caches flushed): write ``value`` (32/64-bit)
    or the GPU clock to ``addr``, then optionally raise the interrupt with context ``ctx_id``."""
    return [PM.PACKET3(PM.PACKET3_RELEASE_MEM, 6),
            PM.PACKET3_RELEASE_MEM_EVENT_TYPE(CACHE_FLUSH_AND_INV_TS_EVENT)
            | PM.PACKET3_RELEASE_MEM_EVENT_INDEX(EVENT_INDEX_END_OF_PIPE) | _RELEASE_FLUSH,
            PM.PACKET3_RELEASE_MEM_DATA_SEL(data_sel) | PM.PACKET3_RELEASE_MEM_INT_SEL(int_sel),
            addr & _U32, addr >> 32, value & _U32, (value >> 32) & _U32, ctx_id]


def wait_mem_geq(addr: int, reference: int) -> list[int]:
    """WAIT_REG_MEM on memory: block until the 32-bit word at ``addr`` >= ``reference``
    (the CP compares 32 bits: reference 2.3)."""
    return [PM.PACKET3(PM.PACKET3_WAIT_REG_MEM, 5),
            PM.WAIT_REG_MEM_FUNCTION(FUNCTION_GEQ) | PM.WAIT_REG_MEM_MEM_SPACE(MEM_SPACE_MEMORY),
            addr & _U32, addr >> 32, reference & _U32, _U32, POLL_INTERVAL]


def cs_partial_flush() -> list[int]:
    """EVENT_WRITE CS_PARTIAL_FLUSH: later packets wait until earlier dispatches have finished."""
    return [PM.PACKET3(PM.PACKET3_EVENT_WRITE, 0), PM.EVENT_TYPE(CS_PARTIAL_FLUSH) | PM.EVENT_INDEX(CS_PARTIAL_FLUSH_INDEX)]


def indirect_buffer(va: int, ndwords: int) -> list[int]:
    """INDIRECT_BUFFER: run ``ndwords`` dwords at ``va`` (4-byte aligned) as part of this stream."""
    return [PM.PACKET3(PM.PACKET3_INDIRECT_BUFFER, 2), va & _U32, va >> 32, ndwords | PM.INDIRECT_BUFFER_VALID]


def dispatch_direct(dims: tuple[int, int, int], work_items: bool = False) -> list[int]:
    """DISPATCH_DIRECT, wave32, from (0, 0, 0): ``dims`` are workgroup counts, or (``work_items``)
    work-item counts with a partial last workgroup where they are not multiples of the group size
    (USE_THREAD_DIMENSIONS + PARTIAL_TG_EN: OpenCL's non-uniform work-groups)."""
    init = (G.COMPUTE_DISPATCH_INITIATOR__COMPUTE_SHADER_EN.encode(1) | G.COMPUTE_DISPATCH_INITIATOR__CS_W32_EN.encode(1)
            | G.COMPUTE_DISPATCH_INITIATOR__FORCE_START_AT_000.encode(1))
    if work_items:
        init |= (G.COMPUTE_DISPATCH_INITIATOR__USE_THREAD_DIMENSIONS.encode(1)
                 | G.COMPUTE_DISPATCH_INITIATOR__PARTIAL_TG_EN.encode(1))
    return [PM.PACKET3(PM.PACKET3_DISPATCH_DIRECT, 3), *dims, init]
