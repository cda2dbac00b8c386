"""The ELF layer of a cubin: header checks, sections, symbols, relocations and ``.nv.info``
records, read with pyelftools plus the raw headers.

A cubin is an ELF64 file with ``e_machine == EM_CUDA`` that ptxas (or nvlink) writes.
:class:`CudaElf` reads one; :class:`~hwdrv.nvidia.cubin.CubinImage` builds the kernel view and the
linker on top. The facts here (section types, ``EIATTR_*`` codes, ``R_CUDA_*`` relocation types,
the ``e_flags`` layout) are also what :mod:`hwdrv.nvidia.mockcubin` writes. Every malformed input
raises :class:`~hwdrv.errors.ProgramError` saying what is wrong.
"""
from __future__ import annotations

import io
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import Iterator

from elftools.common.exceptions import ELFError
from elftools.construct import ConstructError
from elftools.elf.elffile import ELFFile

from ..errors import ProgramError
from .kernelinfo import PARAM_BASE_BY_SM

# --------------------------------------------------------------------------------------------
# ELF facts (System V gABI) and the CUDA extensions to it.

EM_CUDA = 190
ET_REL, ET_EXEC = 1, 2
ELFCLASS64, ELFDATA2LSB = 2, 1
ELF64_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr, 64 bytes
ELF64_SHDR = struct.Struct("<IIQQQQIIQQ")        # Elf64_Shdr, 64 bytes
ELF64_SYM_SIZE, ELF64_REL_SIZE, ELF64_RELA_SIZE = 24, 16, 24
EI_ABIVERSION = 8
SHT_PROGBITS, SHT_SYMTAB, SHT_RELA, SHT_NOBITS, SHT_REL = 1, 2, 4, 8, 9
SHF_ALLOC = 0x2
SHN_UNDEF, SHN_LORESERVE, SHN_ABS = 0, 0xFF00, 0xFFF1
STT_FUNC = 2
SHT_CUDA_INFO = 0x70000000   # .nv.info and .nv.info.<kernel> (readelf: LOPROC+0)

# e_flags layout. ELF ABI version 8 (every cubin ptxas/nvlink 13.0 writes) keeps the SM number in
# bits 15:8 (sm_90 -> 0x6005a04, sm_89 -> 0x6005904, sm_100 -> 0x6006402, observed here); older
# ABI versions kept it in bits 7:0.
EF_CUDA_SM_SHIFT_V8 = 8
EF_CUDA_SM_SHIFT_OLD = 0
EF_CUDA_SM_MASK = 0xFF
ELF_ABI_VERSION_SM_IN_BITS_15_8 = 8

SHT_STRTAB = 3
SHF_WRITE, SHF_EXECINSTR, SHF_INFO_LINK = 0x1, 0x4, 0x40
STT_OBJECT, STT_SECTION = 1, 3
STB_LOCAL, STB_GLOBAL = 0, 1
STO_CUDA_ENTRY = 0x10        # st_other of a kernel's FUNC symbol (observed in ptxas 13.0 output)
ELFOSABI_CUDA = 0x41         # EI_OSABI of ptxas 13.0 cubins (observed)
EI_OSABI = 7

MAX_SECTION_ALIGN = 1 << 16  # larger sh_addralign values are corrupt, not intent
U32_MASK = 0xFFFFFFFF

class EIFMT(IntEnum):
    """Format byte of a .nv.info record. Every record starts on a 4-byte grid with a 4-byte
    header (format, attribute, u16); only SVAL is followed by a payload of u16 bytes."""
    NVAL = 1   # no value (u16 is padding)
    BVAL = 2   # byte value in the u16
    HVAL = 3   # 16-bit value in the u16
    SVAL = 4   # sized: u16 = payload bytes, payload follows


class EIATTR(IntEnum):
    """.nv.info attribute codes. Not in NVIDIA's public headers: names as cuobjdump -elf prints
    them (the same list is carried by public cubin tools); the codes hwdrv reads were observed in
    ptxas 13.0 sm_90 output of tests/data/nvidia/*.ptx (see the tests)."""
    ERROR = 0x00
    PAD = 0x01
    IMAGE_SLOT = 0x02
    JUMPTABLE_RELOCS = 0x03
    CTAIDZ_USED = 0x04
    MAX_THREADS = 0x05            # observed: [x, y, z] from __launch_bounds__ / .maxntid
    IMAGE_OFFSET = 0x06
    IMAGE_SIZE = 0x07
    TEXTURE_NORMALIZED = 0x08
    SAMPLER_INIT = 0x09
    PARAM_CBANK = 0x0A            # observed: [sym of .nv.constant0.<k>, size << 16 | offset]
    SMEM_PARAM_OFFSETS = 0x0B
    CBANK_PARAM_OFFSETS = 0x0C
    SYNC_STACK = 0x0D
    TEXID_SAMPID_MAP = 0x0E
    EXTERNS = 0x0F
    REQNTID = 0x10                # observed: [x, y, z] from .reqntid
    FRAME_SIZE = 0x11             # observed in .nv.info: [func sym, bytes]
    MIN_STACK_SIZE = 0x12         # observed in .nv.info: [func sym, bytes] (cumulative stack)
    SAMPLER_FORCE_UNNORMALIZED = 0x13
    BINDLESS_IMAGE_OFFSETS = 0x14
    BINDLESS_TEXTURE_BANK = 0x15
    BINDLESS_SURFACE_BANK = 0x16
    KPARAM_INFO = 0x17            # observed: [index, offset << 16 | ordinal, size << 18 | flags]
    SMEM_PARAM_SIZE = 0x18
    CBANK_PARAM_SIZE = 0x19       # observed: HVAL total parameter bytes
    QUERY_NUMATTRIB = 0x1A
    MAXREG_COUNT = 0x1B           # observed: HVAL 0xff
    EXIT_INSTR_OFFSETS = 0x1C     # observed: kernel-relative byte offsets of EXIT
    S2RCTAID_INSTR_OFFSETS = 0x1D
    CRS_STACK_SIZE = 0x1E         # observed
    NEED_CNP_WRAPPER = 0x1F
    NEED_CNP_PATCH = 0x20
    EXPLICIT_CACHING = 0x21
    ISTYPEP_USED = 0x22
    MAX_STACK_SIZE = 0x23
    SUQ_USED = 0x24
    LD_CACHEMOD_INSTR_OFFSETS = 0x25
    LOAD_CACHE_REQUEST = 0x26
    ATOM_SYS_INSTR_OFFSETS = 0x27
    COOP_GROUP_INSTR_OFFSETS = 0x28
    COOP_GROUP_MASK_REGIDS = 0x29
    SW1850030_WAR = 0x2A
    WMMA_USED = 0x2B
    HAS_PRE_V10_OBJECT = 0x2C
    ATOMF16_EMUL_INSTR_OFFSETS = 0x2D
    ATOM16_EMUL_INSTR_REG_MAP = 0x2E
    REGCOUNT = 0x2F               # observed in .nv.info: [func sym, registers]
    SW2393858_WAR = 0x30
    INT_WARP_WIDE_INSTR_OFFSETS = 0x31
    SHARED_SCRATCH = 0x32
    STATISTICS = 0x33
    INDIRECT_BRANCH_TARGETS = 0x34
    SW2861232_WAR = 0x35
    SW_WAR = 0x36                 # observed
    CUDA_API_VERSION = 0x37       # observed: [0x82]
    NUM_MBARRIERS = 0x38
    MBARRIER_INSTR_OFFSETS = 0x39
    COROUTINE_RESUME_ID_OFFSETS = 0x3A
    SAM_REGION_STACK_SIZE = 0x3B
    PER_REG_TARGET_PERF_STATS = 0x3C
    CTA_PER_CLUSTER = 0x3D
    EXPLICIT_CLUSTER = 0x3E
    MAX_CLUSTER_RANK = 0x3F
    INSTR_REG_MAP = 0x40
    RESERVED_SMEM_USED = 0x41
    RESERVED_SMEM_0_SIZE = 0x42
    UCODE_SECTION_DATA = 0x43
    UNUSED_LOAD_BYTE_OFFSET = 0x44
    KPARAM_INFO_V2 = 0x45         # observed (params > 4 KiB): [index, offset << 16 | ordinal, size]
    SYSCALL_OFFSETS = 0x46
    SW_WAR_MEMBAR_SYS_INSTR_OFFSETS = 0x47
    GRAPHICS_GLOBAL_CBANK = 0x48
    SHADER_TYPE = 0x49
    VRC_CTA_INIT_COUNT = 0x4A
    TOOLS_PATCH_FUNC = 0x4B
    NUM_BARRIERS = 0x4C           # observed: BVAL
    TEXMODE_INDEPENDENT = 0x4D
    PERF_STATISTICS = 0x4E
    AT_ENTRY_FRAGMENTS = 0x4F
    SPARSE_MMA_MASK = 0x50        # observed: HVAL
    TCGEN05_1CTA_USED = 0x51
    TCGEN05_2CTA_USED = 0x52
    GEN_ERRBAR_AT_EXIT = 0x53
    REG_RECONFIG = 0x54
    ANNOTATIONS = 0x55
    SANITIZE = 0x56
    STACK_CANARY_TRAP_OFFSETS = 0x57
    STUB_FUNCTION_KIND = 0x58
    LOCAL_CTA_ASYNC_STORE_OFFSETS = 0x59
    MERCURY_FINALIZER_OPTIONS = 0x5A


class RCUDA(IntEnum):
    """CUDA ELF relocation types (names as cuobjdump prints them). Only the ones in
    :data:`APPLIED_RELOCATIONS` are applied; ptxas 13.0 executables use R_CUDA_64 (constant
    bank 4 holding addresses of ``__device__`` globals), nvlink'd ``-rdc`` executables use
    ABS32_LO_32/HI_32 in code (tests/data/nvidia/globals_rdc.cubin)."""
    R_CUDA_NONE = 0x00
    R_CUDA_32 = 0x01
    R_CUDA_64 = 0x02
    R_CUDA_G32 = 0x03
    R_CUDA_G64 = 0x04
    R_CUDA_ABS32_26 = 0x05
    R_CUDA_TEX_HEADER_INDEX = 0x06
    R_CUDA_SAMP_HEADER_INDEX = 0x07
    R_CUDA_SURF_HW_DESC = 0x08
    R_CUDA_SURF_HW_SW_DESC = 0x09
    R_CUDA_ABS32_LO_26 = 0x0A
    R_CUDA_ABS32_HI_26 = 0x0B
    R_CUDA_ABS32_23 = 0x0C
    R_CUDA_ABS32_LO_23 = 0x0D
    R_CUDA_ABS32_HI_23 = 0x0E
    R_CUDA_ABS24_26 = 0x0F
    R_CUDA_ABS24_23 = 0x10
    R_CUDA_ABS16_26 = 0x11
    R_CUDA_ABS16_23 = 0x12
    R_CUDA_TEX_SLOT = 0x13
    R_CUDA_SAMP_SLOT = 0x14
    R_CUDA_SURF_SLOT = 0x15
    R_CUDA_TEX_BINDLESSOFF13_32 = 0x16
    R_CUDA_TEX_BINDLESSOFF13_47 = 0x17
    R_CUDA_CONST_FIELD19_28 = 0x18
    R_CUDA_CONST_FIELD19_23 = 0x19
    R_CUDA_TEX_SLOT9_49 = 0x1A
    R_CUDA_6_31 = 0x1B
    R_CUDA_2_47 = 0x1C
    R_CUDA_TEX_BINDLESSOFF13_41 = 0x1D
    R_CUDA_TEX_BINDLESSOFF13_45 = 0x1E
    R_CUDA_FUNC_DESC32_23 = 0x1F
    R_CUDA_FUNC_DESC32_LO_23 = 0x20
    R_CUDA_FUNC_DESC32_HI_23 = 0x21
    R_CUDA_FUNC_DESC_32 = 0x22
    R_CUDA_FUNC_DESC_64 = 0x23
    R_CUDA_CONST_FIELD21_26 = 0x24
    R_CUDA_QUERY_DESC21_37 = 0x25
    R_CUDA_CONST_FIELD19_26 = 0x26
    R_CUDA_CONST_FIELD21_23 = 0x27
    R_CUDA_PCREL_IMM24_26 = 0x28
    R_CUDA_PCREL_IMM24_23 = 0x29
    R_CUDA_ABS32_20 = 0x2A
    R_CUDA_ABS32_LO_20 = 0x2B
    R_CUDA_ABS32_HI_20 = 0x2C
    R_CUDA_ABS24_20 = 0x2D
    R_CUDA_ABS16_20 = 0x2E
    R_CUDA_FUNC_DESC32_20 = 0x2F
    R_CUDA_FUNC_DESC32_LO_20 = 0x30
    R_CUDA_FUNC_DESC32_HI_20 = 0x31
    R_CUDA_CONST_FIELD19_20 = 0x32
    R_CUDA_BINDLESSOFF13_36 = 0x33
    R_CUDA_SURF_HEADER_INDEX = 0x34
    R_CUDA_INSTRUCTION64 = 0x35
    R_CUDA_CONST_FIELD21_20 = 0x36
    R_CUDA_ABS32_32 = 0x37
    R_CUDA_ABS32_LO_32 = 0x38
    R_CUDA_ABS32_HI_32 = 0x39
    R_CUDA_ABS47_34 = 0x3A
    R_CUDA_ABS16_32 = 0x3B
    R_CUDA_ABS24_32 = 0x3C
    R_CUDA_FUNC_DESC32_32 = 0x3D
    R_CUDA_FUNC_DESC32_LO_32 = 0x3E
    R_CUDA_FUNC_DESC32_HI_32 = 0x3F
    R_CUDA_CONST_FIELD19_40 = 0x40
    R_CUDA_BINDLESSOFF14_40 = 0x41
    R_CUDA_CONST_FIELD21_38 = 0x42
    R_CUDA_INSTRUCTION128 = 0x43
    R_CUDA_YIELD_OPCODE9_0 = 0x44
    R_CUDA_YIELD_CLEAR_PRED4_87 = 0x45
    R_CUDA_32_LO = 0x46
    R_CUDA_32_HI = 0x47
    R_CUDA_UNUSED_CLEAR32 = 0x48
    R_CUDA_UNUSED_CLEAR64 = 0x49


@dataclass(frozen=True)
class _RelocField:
    """Where a relocation writes: ``width`` bytes at ``r_offset + skip``, the value shifted right
    by ``shift`` first; ``checked`` rejects values that do not fit instead of truncating."""
    skip: int
    width: int
    shift: int
    checked: bool


# The types hwdrv applies. Instruction fields of the *_32 kinds are the upper 32 bits of the
# 64-bit word at r_offset (bits 63:32), i.e. the u32 at r_offset + 4.
APPLIED_RELOCATIONS: dict[int, _RelocField] = {
    RCUDA.R_CUDA_32: _RelocField(0, 4, 0, True),
    RCUDA.R_CUDA_64: _RelocField(0, 8, 0, True),
    RCUDA.R_CUDA_ABS32_32: _RelocField(4, 4, 0, True),
    RCUDA.R_CUDA_ABS32_LO_32: _RelocField(4, 4, 0, False),
    RCUDA.R_CUDA_ABS32_HI_32: _RelocField(4, 4, 32, False),
}


def reloc_name(rtype: int) -> str:
    """``R_CUDA_*`` name of a relocation type number (or its hex value if unnamed)."""
    try:
        return f"{RCUDA(rtype).name} (0x{rtype:x})"
    except ValueError:
        return f"unnamed relocation type 0x{rtype:x}"


def eiattr_name(attr: int) -> str:
    """``EIATTR_*`` name of a .nv.info attribute code (or its hex value if unnamed)."""
    try:
        return f"EIATTR_{EIATTR(attr).name}"
    except ValueError:
        return f"EIATTR_0x{attr:02x}"



# Parsed pieces of a cubin.

@dataclass(frozen=True)
class NvInfoRecord:
    """One decoded .nv.info record. ``value`` is set for NVAL/BVAL/HVAL records, ``payload``
    for SVAL ones; ``symbol`` names the function a module-wide record describes."""
    section: str
    offset: int
    format: int
    attr: int
    name: str
    value: int | None
    payload: bytes
    symbol: str | None = None

    @property
    def words(self) -> tuple[int, ...]:
        """The payload as little-endian u32 words (a trailing partial word is dropped)."""
        n = len(self.payload) // 4
        return struct.unpack_from(f"<{n}I", self.payload) if n else ()


@dataclass(frozen=True)
class SectionInfo:
    """One ELF section as hwdrv uses it; ``image_offset`` is its place in the linked image
    (None for sections that are not part of it)."""
    index: int
    name: str
    type: int
    flags: int
    size: int
    align: int
    link: int
    info: int
    data: bytes
    image_offset: int | None = None


@dataclass(frozen=True)
class Symbol:
    """One ELF symbol."""
    index: int
    name: str
    value: int
    size: int
    type: int
    bind: int
    other: int
    shndx: int


@dataclass(frozen=True)
class Relocation:
    """One REL/RELA entry that targets a section of the image."""
    target: int        # section index patched
    offset: int        # byte offset within that section
    type: int
    symbol: int
    addend: int




_PYELFTOOLS_ERRORS = (ELFError, ConstructError, struct.error, ValueError, KeyError, IndexError,
                      OverflowError, AssertionError, EOFError, AttributeError, TypeError)


@contextmanager
def malformed(what: str) -> Iterator[None]:
    """Turn pyelftools' exceptions on broken input into a ProgramError naming ``what``."""
    try:
        yield
    except ProgramError:
        raise
    except _PYELFTOOLS_ERRORS as e:
        raise ProgramError(f"malformed cubin: {what}: {type(e).__name__}: {e}") from e


def _cstring(table: bytes, offset: int, what: str) -> str:
    end = table.find(b"\0", offset)
    if offset >= len(table) or end < 0:
        raise ProgramError(f"malformed cubin: {what} at string offset {offset} runs past its "
                           f"string table ({len(table)} bytes)")
    try:
        return table[offset:end].decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProgramError(f"malformed cubin: {what} at string offset {offset} is not UTF-8") \
            from e


class CudaElf:
    """The ELF view of a cubin: ``e_flags``, ``sm``, ``sections``, ``symbols``. Subclasses place
    sections (setting :attr:`SectionInfo.image_offset`) before reading relocations: relocations
    of sections that are not placed (``.rela.debug_frame``) are only counted."""

    def __init__(self, binary: bytes | bytearray | memoryview):
        data = bytes(binary)
        self.e_flags, self.abi_version, headers = self._check_header(data)
        self.sm = self._sm_from_flags(self.e_flags, self.abi_version)
        self.arch = f"sm_{self.sm}"
        with malformed("reading sections"):
            elf = ELFFile(io.BytesIO(data))
            self.sections = self._read_sections(elf, data, headers)
        self._by_name = {s.name: s for s in self.sections}
        with malformed("reading the symbol table"):
            self.symbols = self._read_symbols(elf)

    def section(self, name: str) -> SectionInfo | None:
        """The section called ``name`` (None if there is none)."""
        return self._by_name.get(name)

    @staticmethod
    def _check_header(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
        if len(data) < ELF64_EHDR.size:
            raise ProgramError(f"not a cubin: {len(data)} bytes is shorter than an ELF64 header "
                               f"({ELF64_EHDR.size} bytes)")
        (ident, e_type, e_machine, _ver, _entry, e_phoff, e_shoff, e_flags, _ehsize, e_phentsize,
         e_phnum, e_shentsize, e_shnum, e_shstrndx) = ELF64_EHDR.unpack_from(data)
        if ident[:4] != b"\x7fELF":
            raise ProgramError(f"not a cubin: no ELF magic (starts with {ident[:4]!r})")
        if ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB:
            raise ProgramError(f"not a cubin: ELF class {ident[4]} / data encoding {ident[5]}; "
                               f"cubins are ELF64 little-endian")
        if e_machine != EM_CUDA:
            raise ProgramError(f"not a cubin: e_machine is {e_machine}, not EM_CUDA ({EM_CUDA})")
        if e_type == ET_REL:
            raise ProgramError("this is a relocatable CUDA object (ptxas -c / -rdc): link it "
                               "with nvlink first, or compile without -c")
        if e_type != ET_EXEC:
            raise ProgramError(f"cubin e_type is {e_type}; expected ET_EXEC ({ET_EXEC})")
        if e_shentsize != ELF64_SHDR.size or e_shnum == 0:
            raise ProgramError(f"malformed cubin: section header entries of {e_shentsize} bytes, "
                               f"{e_shnum} of them (expected {ELF64_SHDR.size}-byte entries)")
        end = e_shoff + e_shnum * e_shentsize
        if end > len(data):
            raise ProgramError(f"truncated cubin: the section header table ends at byte {end} "
                               f"but the file has {len(data)} bytes")
        # The loader does not use program headers, but a file cut inside them is still cut.
        if e_phnum and e_phoff + e_phnum * e_phentsize > len(data):
            raise ProgramError(f"truncated cubin: the program header table ends at byte "
                               f"{e_phoff + e_phnum * e_phentsize} but the file has {len(data)} "
                               f"bytes")
        if e_shstrndx >= e_shnum:
            raise ProgramError(f"malformed cubin: section name table index {e_shstrndx} is out "
                               f"of range ({e_shnum} sections)")
        headers = [ELF64_SHDR.unpack_from(data, e_shoff + i * e_shentsize) for i in range(e_shnum)]
        for i, h in enumerate(headers):
            (_name, sh_type, _flags, _addr, sh_offset, sh_size, sh_link, _info, sh_addralign,
             _entsize) = h
            if i and sh_type != SHT_NOBITS and sh_offset + sh_size > len(data):
                raise ProgramError(f"truncated cubin: section {i} spans bytes {sh_offset}.."
                                   f"{sh_offset + sh_size} of a {len(data)}-byte file")
            if sh_link >= e_shnum:
                raise ProgramError(f"malformed cubin: section {i} links to section {sh_link}, "
                                   f"out of range ({e_shnum} sections)")
            if sh_addralign > MAX_SECTION_ALIGN or sh_addralign & (sh_addralign - 1):
                raise ProgramError(f"malformed cubin: section {i} alignment {sh_addralign} is "
                                   f"not a power of two <= {MAX_SECTION_ALIGN}")
        return e_flags, ident[EI_ABIVERSION], headers

    @staticmethod
    def _sm_from_flags(e_flags: int, abi_version: int) -> int:
        shift = (EF_CUDA_SM_SHIFT_V8 if abi_version >= ELF_ABI_VERSION_SM_IN_BITS_15_8
                 else EF_CUDA_SM_SHIFT_OLD)
        sm = (e_flags >> shift) & EF_CUDA_SM_MASK
        if sm not in PARAM_BASE_BY_SM:
            known = ", ".join(f"sm_{k}" for k in sorted(PARAM_BASE_BY_SM))
            raise ProgramError(f"unknown cubin architecture: e_flags 0x{e_flags:x} (ELF ABI "
                               f"version {abi_version}) decodes to SM {sm}; hwdrv knows {known}")
        return sm

    @staticmethod
    def _read_sections(elf: ELFFile, data: bytes, headers: list[tuple[int, ...]]) \
            -> list[SectionInfo]:
        # pyelftools names the sections; the numbers come from the raw headers because it turns
        # types it knows into strings and leaves CUDA's processor-specific ones as numbers.
        out = []
        for i, s in enumerate(elf.iter_sections()):
            (_name, sh_type, sh_flags, _addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign,
             _entsize) = headers[i]
            body = b"" if sh_type == SHT_NOBITS or i == 0 else data[sh_offset:sh_offset + sh_size]
            out.append(SectionInfo(index=i, name=s.name, type=sh_type, flags=sh_flags,
                                   size=sh_size, align=sh_addralign, link=sh_link, info=sh_info,
                                   data=body))
        if len(out) != len(headers):
            raise ProgramError(f"malformed cubin: read {len(out)} of {len(headers)} sections")
        return out

    def _read_symbols(self, elf: ELFFile) -> list[Symbol]:
        tabs = [s for s in self.sections if s.type == SHT_SYMTAB]
        if len(tabs) != 1:
            raise ProgramError(f"malformed cubin: expected one symbol table, found {len(tabs)}")
        tab = tabs[0]
        if tab.size % ELF64_SYM_SIZE:
            raise ProgramError(f"malformed cubin: symbol table size {tab.size} is not a multiple "
                               f"of {ELF64_SYM_SIZE}")
        strtab = self.sections[tab.link]
        out = []
        for i in range(tab.size // ELF64_SYM_SIZE):
            st_name, st_info, st_other, st_shndx, st_value, st_size = struct.unpack_from(
                "<IBBHQQ", tab.data, i * ELF64_SYM_SIZE)
            out.append(Symbol(index=i, name=_cstring(strtab.data, st_name, "symbol name"),
                              value=st_value, size=st_size, type=st_info & 0xF,
                              bind=st_info >> 4, other=st_other, shndx=st_shndx))
            if 0 < st_shndx < SHN_LORESERVE and st_shndx >= len(self.sections):
                raise ProgramError(f"malformed cubin: symbol {i} ({out[-1].name!r}) is in "
                                   f"section {st_shndx}, out of range ({len(self.sections)})")
        return out

    def _read_relocations(self) -> tuple[list[Relocation], int]:
        relocs: list[Relocation] = []
        skipped = 0
        for s in self.sections:
            if s.type not in (SHT_REL, SHT_RELA):
                continue
            entsize = ELF64_RELA_SIZE if s.type == SHT_RELA else ELF64_REL_SIZE
            if s.size % entsize:
                raise ProgramError(f"malformed cubin: {s.name} size {s.size} is not a multiple "
                                   f"of {entsize}")
            if s.info >= len(self.sections):
                raise ProgramError(f"malformed cubin: {s.name} targets section {s.info}, out of "
                                   f"range ({len(self.sections)} sections)")
            if self.sections[s.link].type != SHT_SYMTAB:
                raise ProgramError(f"malformed cubin: {s.name} links to section {s.link}, "
                                   f"which is not a symbol table")
            target = self.sections[s.info]
            count = s.size // entsize
            if target.image_offset is None:
                # e.g. .rela.debug_frame: the target never reaches the GPU.
                skipped += count
                continue
            for i in range(count):
                if s.type == SHT_RELA:
                    r_offset, r_info, r_addend = struct.unpack_from("<QQq", s.data, i * entsize)
                else:
                    # No REL entries were seen from ptxas/nvlink; treat the field as holding
                    # no implicit addend, like the instruction fields RELA patches.
                    (r_offset, r_info), r_addend = struct.unpack_from("<QQ", s.data,
                                                                      i * entsize), 0
                rtype, rsym = r_info & U32_MASK, r_info >> 32
                where = f"{s.name} entry {i}"
                field_ = APPLIED_RELOCATIONS.get(rtype)
                if field_ is None:
                    raise ProgramError(f"{where}: relocation type {reloc_name(rtype)} is not "
                                       f"supported by hwdrv (it applies "
                                       f"{', '.join(reloc_name(t) for t in APPLIED_RELOCATIONS)})")
                if rsym >= len(self.symbols):
                    raise ProgramError(f"malformed cubin: {where} refers to symbol {rsym}, out "
                                       f"of range ({len(self.symbols)} symbols)")
                if r_offset + field_.skip + field_.width > target.size:
                    raise ProgramError(f"malformed cubin: {where} patches bytes beyond the end "
                                       f"of {target.name} (offset 0x{r_offset:x}, size "
                                       f"0x{target.size:x})")
                relocs.append(Relocation(target.index, r_offset, rtype, rsym, r_addend))
        return relocs, skipped

    def _read_all_records(self) -> list[NvInfoRecord]:
        out: list[NvInfoRecord] = []
        for s in self.sections:
            if s.type == SHT_CUDA_INFO:
                out.extend(self._parse_records(s))
        return out

    def _parse_records(self, s: SectionInfo) -> list[NvInfoRecord]:
        out, data, off = [], s.data, 0
        module_wide = s.info == 0
        while off < len(data):
            if off + 4 > len(data):
                raise ProgramError(f"malformed cubin: {s.name}: record header at offset {off} "
                                   f"runs past the section end ({len(data)} bytes)")
            fmt, attr, value = struct.unpack_from("<BBH", data, off)
            if fmt not in EIFMT.__members__.values():
                raise ProgramError(f"malformed cubin: {s.name}: record at offset {off} has "
                                   f"unknown format {fmt} (attribute {eiattr_name(attr)})")
            payload = b""
            start = off
            off += 4
            if fmt == EIFMT.SVAL:
                if off + value > len(data):
                    raise ProgramError(f"malformed cubin: {s.name}: {eiattr_name(attr)} record at "
                                       f"offset {start} claims {value} payload bytes, only "
                                       f"{len(data) - off} remain in the section")
                payload, value = data[off:off + value], None
                off += len(payload)
            symbol = None
            if module_wide and len(payload) >= 4:
                idx = struct.unpack_from("<I", payload)[0]
                if idx < len(self.symbols):
                    symbol = self.symbols[idx].name
            out.append(NvInfoRecord(s.name, start, fmt, attr, eiattr_name(attr), value, payload,
                                    symbol))
        return out

    def _is_module_info(self, name: str) -> bool:
        s = self._by_name.get(name)
        return s is not None and s.type == SHT_CUDA_INFO and s.info == 0
