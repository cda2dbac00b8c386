"""QMD V04_00: the 384-byte launch descriptor HOPPER_COMPUTE_A reads for every kernel launch.

A template is built once per (kernel, block shape, shared size); a launch copies it and fills
the grid and the constant-bank-0 address. Fields come from the generated clcbc0qmd.h facts.
"""
from __future__ import annotations

import numpy as np

from .gen import hopper as hw

QMD_SIZE = 384
QMD_WORDS = QMD_SIZE // 4
#: the hardware takes the QMD address >> 8 (SEND_PCAS_A): QMDs are 256-byte aligned
QMD_ALIGN = 256
#: constant buffers are addressed >> 6 and sized >> 4
CBUF_ALIGN = 64

_P = "NVCBC0_QMDV04_00_"
# Shared-memory carveouts Hopper offers per SM (bytes); the SM-config fields take an index-like
# value: carveout / 4 KiB + 1.
SMEM_CARVEOUTS_KB = (0, 8, 16, 32, 64, 100, 132, 164, 196, 228)
#: shared memory the hardware reserves per block on sm_80+ (system use)
RESERVED_SHARED = 1024


def _f(name: str):
    return getattr(hw, _P + name)


#: the limits that decide how many blocks share a Hopper SM (CUDA C Programming Guide, compute
#: capability 9.0): registers are allocated per warp in units of 256
REGISTERS_PER_SM = 65536
REGISTER_ALLOC_UNIT = 256
WARP_SIZE = 32
MAX_THREADS_PER_SM = 2048
MAX_BLOCKS_PER_SM = 32


def resident_blocks(threads: int, regs: int) -> int:
    """Blocks of ``threads`` threads using ``regs`` registers each that one SM can hold by its
    register, thread and block limits (shared memory aside); at least 1."""
    warps = -(-threads // WARP_SIZE)
    # a count of 0 (an invalid QMD the GPU refuses at launch) sizes like 1
    per_warp = -(-max(regs, 1) * WARP_SIZE // REGISTER_ALLOC_UNIT) * REGISTER_ALLOC_UNIT
    by_regs = REGISTERS_PER_SM // (per_warp * warps)
    return max(1, min(by_regs, MAX_THREADS_PER_SM // (warps * WARP_SIZE), MAX_BLOCKS_PER_SM))


def occupancy_carveout(shared_bytes: int, blocks: int) -> int:
    """Bytes of shared memory to configure an SM with so that as many of ``blocks`` blocks of
    ``shared_bytes`` (reserved KiB included) as the largest carveout allows run together; at
    least one block's worth."""
    most = SMEM_CARVEOUTS_KB[-1] << 10
    return max(1, min(blocks, most // max(shared_bytes, 1))) * shared_bytes


def sm_config(nbytes: int) -> int:
    """The SM_CONFIG_SHARED_MEM_SIZE value of the smallest carveout holding ``nbytes``."""
    for kb in SMEM_CARVEOUTS_KB:
        if nbytes <= kb << 10:
            return kb // 4 + 1
    raise ValueError(f"{nbytes} bytes of shared memory exceed Hopper's 228 KiB per SM")


def build_template(*, block: tuple[int, int, int], regs: int, shared_bytes: int, local_bytes: int,
                   program_va: int, program_size: int, barriers: int = 1,
                   const_banks: dict[int, tuple[int, int]] | None = None) -> np.ndarray:
    """A QMD with everything but the grid and constant bank 0 filled in.

    ``shared_bytes`` is the block's total (static + dynamic + reserved); ``local_bytes`` the
    per-thread local memory (stack) size; ``const_banks`` maps bank index -> (va, size) for
    banks other than 0. The SM's shared-memory carveout (MIN and TARGET) holds as many blocks
    as the registers and threads let one SM run, as CUDA's default carveout does: the smallest
    carveout holding one block would cap a 26 KiB block at one per SM (32 KiB carveout).
    """
    q = np.zeros(QMD_WORDS, np.uint32)
    # Measured on an H100 with driver 580.159.04: a QMD of type QUEUE (0) is fetched and then
    # silently not run; a grid launch must say GRID_CTA.
    _f("QMD_TYPE").set(q, hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_CTA)
    _f("QMD_MAJOR_VERSION").set(q, 4)
    _f("QMD_MINOR_VERSION").set(q, 0)
    _f("API_VISIBLE_CALL_LIMIT").set(q, hw.NVCBC0_QMDV04_00_API_VISIBLE_CALL_LIMIT_NO_CHECK)
    _f("SAMPLER_INDEX").set(q, hw.NVCBC0_QMDV04_00_SAMPLER_INDEX_INDEPENDENTLY)
    _f("SASS_VERSION").set(q, 0x90)
    _f("CTA_THREAD_DIMENSION0").set(q, block[0])
    _f("CTA_THREAD_DIMENSION1").set(q, block[1])
    _f("CTA_THREAD_DIMENSION2").set(q, block[2])
    _f("REGISTER_COUNT").set(q, regs)
    _f("BARRIER_COUNT").set(q, max(barriers, 1))
    _f("SHARED_MEMORY_SIZE").set(q, -(-shared_bytes // 128) * 128)
    threads = block[0] * block[1] * block[2]
    cfg = sm_config(occupancy_carveout(shared_bytes, resident_blocks(threads, regs)))
    _f("MIN_SM_CONFIG_SHARED_MEM_SIZE").set(q, cfg)
    _f("TARGET_SM_CONFIG_SHARED_MEM_SIZE").set(q, cfg)
    _f("MAX_SM_CONFIG_SHARED_MEM_SIZE").set(q, sm_config(SMEM_CARVEOUTS_KB[-1] << 10))
    _f("SHADER_LOCAL_MEMORY_HIGH_SIZE").set(q, local_bytes)
    # Every launch starts with the SM data caches invalidated: a chained launch is scheduled by
    # the QMD before it, with no INVALIDATE_SHADER_CACHES method in between, and an L1 line an
    # earlier kernel cached would hide what the kernels since wrote (an H100 read stale values
    # in a chain of 2048-block kernels without these: tests/hardware/pdl_probe.py's wide chain).
    _f("INVALIDATE_SHADER_DATA_CACHE").set(q, hw.NVCBC0_QMDV04_00_INVALIDATE_SHADER_DATA_CACHE_TRUE)
    _f("INVALIDATE_TEXTURE_DATA_CACHE").set(q, hw.NVCBC0_QMDV04_00_INVALIDATE_TEXTURE_DATA_CACHE_TRUE)
    # make the kernel's global writes visible to the host when it completes
    _f("CWD_MEMBAR_TYPE").set(q, hw.NVCBC0_QMDV04_00_CWD_MEMBAR_TYPE_L1_SYSMEMBAR)
    _f("PROGRAM_ADDRESS_LOWER").set(q, program_va & 0xFFFFFFFF)
    _f("PROGRAM_ADDRESS_UPPER").set(q, program_va >> 32)
    _f("PROGRAM_PREFETCH_ADDR_LOWER_SHIFTED").set(q, (program_va >> 8) & 0xFFFFFFFF)
    _f("PROGRAM_PREFETCH_ADDR_UPPER_SHIFTED").set(q, program_va >> 40)
    _f("PROGRAM_PREFETCH_SIZE").set(q, min(program_size >> 8, (1 << _f("PROGRAM_PREFETCH_SIZE").width) - 1))
    for bank, (va, size) in (const_banks or {}).items():
        set_const_bank(q, bank, va, size)
    return q


def set_const_bank(q: np.ndarray, bank: int, va: int, size: int) -> None:
    """Bind constant bank ``bank`` to ``size`` bytes at ``va`` (64-byte aligned)."""
    if va % CBUF_ALIGN:
        raise ValueError(f"constant bank {bank} at {va:#x} is not {CBUF_ALIGN}-byte aligned")
    _f("CONSTANT_BUFFER_VALID")(bank).set(q, 1)
    _f("CONSTANT_BUFFER_INVALIDATE")(bank).set(q, 1)
    _f("CONSTANT_BUFFER_ADDR_LOWER_SHIFTED6")(bank).set(q, (va >> 6) & 0xFFFFFFFF)
    _f("CONSTANT_BUFFER_ADDR_UPPER_SHIFTED6")(bank).set(q, va >> 38)
    _f("CONSTANT_BUFFER_SIZE_SHIFTED4")(bank).set(q, -(-size // 16))


def word_field(field) -> tuple[int, int, int]:
    """(word index, shift, mask in the word) of a field lying inside one 32-bit word."""
    word, shift = divmod(field.lo, 32)
    if shift + field.width > 32:
        raise ValueError(f"{field} spans two words")
    return word, shift, ((1 << field.width) - 1) << shift


#: the grid fields and constant bank 0's address fields, patched on every launch
GRID_X = word_field(_f("GRID_WIDTH"))
GRID_Y = word_field(_f("GRID_HEIGHT"))
GRID_Z = word_field(_f("GRID_DEPTH"))
CB0_ADDR_LO = word_field(_f("CONSTANT_BUFFER_ADDR_LOWER_SHIFTED6")(0))
CB0_ADDR_HI = word_field(_f("CONSTANT_BUFFER_ADDR_UPPER_SHIFTED6")(0))
if CB0_ADDR_HI[0] != CB0_ADDR_LO[0] + 1 or CB0_ADDR_LO[1:] != (0, 0xFFFFFFFF) or CB0_ADDR_HI[1]:
    raise ImportError("QMD layout changed: a launch writes constant bank 0's address as two adjacent words")


def put_word_field(w: np.ndarray, field: tuple[int, int, int], v: int) -> None:
    """Write ``v`` into the one-word field ``field`` (from :func:`word_field`) of QMD words ``w``."""
    word, shift, mask = field
    if (v << shift) & ~mask:
        raise ValueError(f"{v} does not fit a {mask.bit_count()}-bit QMD field")
    w[word] = (int(w[word]) & ~mask) | (v << shift)


def word_patch(field, value: int) -> tuple[int, int, int]:
    """(word index, mask to clear, bits to set) writing ``value`` into a one-word field."""
    word, shift, mask = word_field(field)
    return word, mask, field.encode(value) >> (32 * word)
