"""Pushbuffer method headers and GPFIFO entries (host class C86F / C56F encodings).

A method header is one 32-bit word: SEC_OP (how the following data words map to methods),
COUNT, SUBCHANNEL and the method's byte offset >> 2. Data words follow.
"""
from __future__ import annotations

from .gen import hopper as hw

#: subchannel numbers by convention (cla06fsubch.h): where SET_OBJECT binds each class
SUBCH_COMPUTE = hw.NVA06F_SUBCHANNEL_COMPUTE
SUBCH_COPY = hw.NVA06F_SUBCHANNEL_COPY_ENGINE
#: host (channel) methods such as semaphores are executed by the PBDMA on any subchannel
SUBCH_HOST = 0

_SEC_OP = hw.NVC56F_DMA_SEC_OP
_COUNT = hw.NVC56F_DMA_METHOD_COUNT
_SUBCH = hw.NVC56F_DMA_METHOD_SUBCHANNEL
_ADDR = hw.NVC56F_DMA_METHOD_ADDRESS
_IMMD = hw.NVC56F_DMA_IMMD_DATA


def inc(subch: int, method: int, count: int) -> int:
    """Header for ``count`` data words written to consecutive methods from ``method``."""
    return (_SEC_OP.encode(hw.NVC56F_DMA_SEC_OP_INC_METHOD) | _COUNT.encode(count)
            | _SUBCH.encode(subch) | _ADDR.encode(method >> 2))


def non_inc(subch: int, method: int, count: int) -> int:
    """Header for ``count`` data words all written to ``method``."""
    return (_SEC_OP.encode(hw.NVC56F_DMA_SEC_OP_NON_INC_METHOD) | _COUNT.encode(count)
            | _SUBCH.encode(subch) | _ADDR.encode(method >> 2))


def immd(subch: int, method: int, value: int) -> int:
    """A header carrying a 13-bit value for ``method`` itself (no data word)."""
    return (_SEC_OP.encode(hw.NVC56F_DMA_SEC_OP_IMMD_DATA_METHOD) | _IMMD.encode(value)
            | _SUBCH.encode(subch) | _ADDR.encode(method >> 2))


# GP entry layout: entry0 holds VA[31:2] in place, entry1 VA[39:32] and the length in dwords.
_GP_E0 = hw.NVC56F_GP_ENTRY0_FETCH.encode(hw.NVC56F_GP_ENTRY0_FETCH_UNCONDITIONAL)
_GP_E1 = hw.NVC56F_GP_ENTRY1_LEVEL.encode(hw.NVC56F_GP_ENTRY1_LEVEL_MAIN)
_GP_GET_MASK = hw.NVC56F_GP_ENTRY0_GET.mask
_GP_LEN_SHIFT = 32 + hw.NVC56F_GP_ENTRY1_LENGTH.lo
_GP_LEN_MAX = (1 << hw.NVC56F_GP_ENTRY1_LENGTH.width) - 1
_GP_HI_SHIFT = 32 + hw.NVC56F_GP_ENTRY1_GET_HI.lo


def gp_entry(va: int, ndwords: int) -> int:
    """A GPFIFO entry (64-bit) that fetches ``ndwords`` words of pushbuffer at ``va``."""
    if va & 3 or va >> 40 or not 0 < ndwords <= _GP_LEN_MAX:
        raise ValueError(f"pushbuffer segment {va:#x} + {ndwords} words: the address must be "
                         f"4-byte aligned below 2**40 and the length 1..{_GP_LEN_MAX} words")
    return ((va & _GP_GET_MASK) | _GP_E0 | (((va >> 32) & 0xFF) << _GP_HI_SHIFT)
            | (ndwords << _GP_LEN_SHIFT) | (_GP_E1 << 32))


# Semaphore execute words (host class): a 64-bit acquire ">=" that yields the TSG while it
# waits, and a 64-bit release after the channel is idle, with or without the ns timestamp.
SEM_ACQUIRE_GEQ = (hw.NVC56F_SEM_EXECUTE_OPERATION.encode(hw.NVC56F_SEM_EXECUTE_OPERATION_ACQ_CIRC_GEQ)
                   | hw.NVC56F_SEM_EXECUTE_ACQUIRE_SWITCH_TSG.encode(hw.NVC56F_SEM_EXECUTE_ACQUIRE_SWITCH_TSG_EN)
                   | hw.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE.encode(hw.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE_64BIT))
SEM_RELEASE = (hw.NVC56F_SEM_EXECUTE_OPERATION.encode(hw.NVC56F_SEM_EXECUTE_OPERATION_RELEASE)
               | hw.NVC56F_SEM_EXECUTE_RELEASE_WFI.encode(hw.NVC56F_SEM_EXECUTE_RELEASE_WFI_EN)
               | hw.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE.encode(hw.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE_64BIT))
SEM_RELEASE_TS = SEM_RELEASE | hw.NVC56F_SEM_EXECUTE_RELEASE_TIMESTAMP.encode(
    hw.NVC56F_SEM_EXECUTE_RELEASE_TIMESTAMP_EN)
# A reduction that adds 0 leaves the value as it is; with the timestamp bit it records the
# time only (the timestamp verb must not change the signal's value).
SEM_TIMESTAMP_ONLY = (hw.NVC56F_SEM_EXECUTE_OPERATION.encode(hw.NVC56F_SEM_EXECUTE_OPERATION_REDUCTION)
                      | hw.NVC56F_SEM_EXECUTE_REDUCTION.encode(hw.NVC56F_SEM_EXECUTE_REDUCTION_IADD)
                      | hw.NVC56F_SEM_EXECUTE_REDUCTION_FORMAT.encode(
                          hw.NVC56F_SEM_EXECUTE_REDUCTION_FORMAT_UNSIGNED)
                      | hw.NVC56F_SEM_EXECUTE_RELEASE_WFI.encode(hw.NVC56F_SEM_EXECUTE_RELEASE_WFI_EN)
                      | hw.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE.encode(hw.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE_64BIT)
                      | hw.NVC56F_SEM_EXECUTE_RELEASE_TIMESTAMP.encode(
                          hw.NVC56F_SEM_EXECUTE_RELEASE_TIMESTAMP_EN))
SEM_HEADER = inc(SUBCH_HOST, hw.NVC86F_SEM_ADDR_LO, 5)


def semaphore(va: int, payload: int, execute: int) -> list[int]:
    """The 6 words of a host semaphore operation on the 64-bit cell at ``va``."""
    return [SEM_HEADER, va & 0xFFFFFFFC, hw.NVC86F_SEM_ADDR_HI_OFFSET.encode(va >> 32),
            payload & 0xFFFFFFFF, payload >> 32, execute]
