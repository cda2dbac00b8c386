"""Malformed cubins: each is a real (committed) cubin with one thing broken, and each must
raise ProgramError saying what is wrong."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from hwdrv.errors import ProgramError
from hwdrv.nvidia.cubin import ELF64_EHDR, ELF64_SHDR, EIFMT, CubinImage

RDC_CUBIN = Path(__file__).parent / "data" / "nvidia" / "globals_rdc.cubin"
E_TYPE_AT, E_MACHINE_AT, E_FLAGS_AT, E_SHSTRNDX_AT = 16, 18, 48, 62
SH_TYPE_AT, SH_SIZE_AT, SH_LINK_AT, SH_INFO_AT = 4, 32, 40, 44
RELA_INFO_AT = 8


def good() -> bytearray:
    return bytearray(RDC_CUBIN.read_bytes())


def section_headers(data: bytes) -> dict[str, int]:
    """Section name -> file offset of its header."""
    f = ELF64_EHDR.unpack_from(data)
    shoff, shnum, shstrndx = f[6], f[12], f[13]
    heads = [shoff + i * ELF64_SHDR.size for i in range(shnum)]
    strtab = ELF64_SHDR.unpack_from(data, heads[shstrndx])
    names = data[strtab[4]:strtab[4] + strtab[5]]
    out = {}
    for h in heads:
        name_off = ELF64_SHDR.unpack_from(data, h)[0]
        out[names[name_off:names.index(b"\0", name_off)].decode()] = h
    return out


def section_body(data: bytes, name: str) -> int:
    return ELF64_SHDR.unpack_from(data, section_headers(data)[name])[4]


def test_good_cubin_parses():
    assert list(CubinImage(bytes(good())).kernels) == ["use_globals"]


@pytest.mark.parametrize("data,match", [
    (b"", "shorter than an ELF64 header"),
    (b"\x7fELF", "shorter than an ELF64 header"),
    (b"MZ" + bytes(100), "no ELF magic"),
])
def test_not_elf(data, match):
    with pytest.raises(ProgramError, match=match):
        CubinImage(data)


def test_elf32_is_refused():
    d = good()
    d[4] = 1
    with pytest.raises(ProgramError, match="ELF64 little-endian"):
        CubinImage(bytes(d))


def test_wrong_machine():
    d = good()
    struct.pack_into("<H", d, E_MACHINE_AT, 62)     # EM_X86_64
    with pytest.raises(ProgramError, match=r"e_machine is 62, not EM_CUDA \(190\)"):
        CubinImage(bytes(d))


def test_relocatable_object_is_refused():
    d = good()
    struct.pack_into("<H", d, E_TYPE_AT, 1)
    with pytest.raises(ProgramError, match="relocatable.*nvlink"):
        CubinImage(bytes(d))


@pytest.mark.parametrize("flags", [0x6004b04, 0x6000004])    # "sm_75", "sm_0"
def test_unknown_sm_encoding(flags):
    d = good()
    struct.pack_into("<I", d, E_FLAGS_AT, flags)
    with pytest.raises(ProgramError, match=rf"e_flags 0x{flags:x}.*hwdrv knows sm_80"):
        CubinImage(bytes(d))


def test_truncated():
    d = good()
    shoff = ELF64_EHDR.unpack_from(d)[6]
    for cut in (64, 1000, 3000, shoff + 100, len(d) - 1):
        with pytest.raises(ProgramError, match="truncated"):
            CubinImage(bytes(d[:cut]))


def test_shstrndx_out_of_range():
    d = good()
    struct.pack_into("<H", d, E_SHSTRNDX_AT, 200)
    with pytest.raises(ProgramError, match="section name table index 200"):
        CubinImage(bytes(d))


def test_section_link_out_of_range():
    d = good()
    struct.pack_into("<I", d, section_headers(d)[".rela.text.use_globals"] + SH_LINK_AT, 999)
    with pytest.raises(ProgramError, match="links to section 999"):
        CubinImage(bytes(d))


def test_relocation_target_out_of_range():
    d = good()
    struct.pack_into("<I", d, section_headers(d)[".rela.text.use_globals"] + SH_INFO_AT, 77)
    with pytest.raises(ProgramError, match="targets section 77"):
        CubinImage(bytes(d))


def test_section_past_end_of_file():
    d = good()
    struct.pack_into("<Q", d, section_headers(d)[".text.use_globals"] + SH_SIZE_AT, 1 << 20)
    with pytest.raises(ProgramError, match="truncated cubin: section"):
        CubinImage(bytes(d))


def test_nv_info_record_running_past_its_section():
    d = good()
    body = section_body(d, ".nv.info.use_globals")
    fmt, attr, size = struct.unpack_from("<BBH", d, body)
    assert fmt == EIFMT.SVAL
    struct.pack_into("<H", d, body + 2, 0xFFF0)
    with pytest.raises(ProgramError, match=r"\.nv\.info\.use_globals.*claims 65520 payload bytes"):
        CubinImage(bytes(d))


def test_nv_info_unknown_format():
    d = good()
    d[section_body(d, ".nv.info.use_globals")] = 9
    with pytest.raises(ProgramError, match="unknown format 9"):
        CubinImage(bytes(d))


def test_regcount_for_symbol_out_of_range():
    d = good()
    body = section_body(d, ".nv.info")
    fmt, attr, _ = struct.unpack_from("<BBH", d, body)
    assert (fmt, attr) == (EIFMT.SVAL, 0x11)            # the first record is FRAME_SIZE
    struct.pack_into("<I", d, body + 4, 5000)
    with pytest.raises(ProgramError, match="symbol 5000, out of range"):
        CubinImage(bytes(d))


def test_unknown_relocation_type_is_named():
    d = good()
    rela = section_body(d, ".rela.text.use_globals")
    info = struct.unpack_from("<Q", d, rela + RELA_INFO_AT)[0]
    struct.pack_into("<Q", d, rela + RELA_INFO_AT, (info & ~0xFFFFFFFF) | 0x3A)
    with pytest.raises(ProgramError, match=r"R_CUDA_ABS47_34 \(0x3a\) is not supported"):
        CubinImage(bytes(d))


def test_relocation_symbol_out_of_range():
    d = good()
    rela = section_body(d, ".rela.text.use_globals")
    info = struct.unpack_from("<Q", d, rela + RELA_INFO_AT)[0]
    struct.pack_into("<Q", d, rela + RELA_INFO_AT, (900 << 32) | (info & 0xFFFFFFFF))
    with pytest.raises(ProgramError, match="symbol 900, out of range"):
        CubinImage(bytes(d))


def test_relocation_past_its_target():
    d = good()
    rela = section_body(d, ".rela.text.use_globals")
    struct.pack_into("<Q", d, rela, 0x10000)
    with pytest.raises(ProgramError, match=r"beyond the end of \.text\.use_globals"):
        CubinImage(bytes(d))


def test_symbol_table_must_be_whole_entries():
    d = good()
    struct.pack_into("<Q", d, section_headers(d)[".symtab"] + SH_SIZE_AT, 25)
    with pytest.raises(ProgramError, match=r"\.symtab|symbol table size"):
        CubinImage(bytes(d))
