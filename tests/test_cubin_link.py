"""Linking: R_CUDA_ABS32_LO_32 / HI_32 in code, on the committed nvlink'd cubin (no ptxas
needed), checked by reading the patched instruction words back."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from hwdrv.errors import InvalidArgument, ProgramError
from hwdrv.nvidia.cubin import RCUDA, CubinImage

RDC_CUBIN = Path(__file__).parent / "data" / "nvidia" / "globals_rdc.cubin"
SASS_OPCODE_MASK = 0xFFF
SASS_UMOV = 0x882             # UMOV URx, imm32 (nvdisasm -hex of globals_rdc.cubin)
CODE_VA = 0x7F12_3456_0000
GLOBAL_VA = 0x7E00_0000_1000


@pytest.fixture()
def img() -> CubinImage:
    return CubinImage(RDC_CUBIN.read_bytes())


def test_code_relocations_patch_the_umov_immediates(img):
    assert {r.type for r in img.relocations} == {RCUDA.R_CUDA_ABS32_LO_32,
                                                 RCUDA.R_CUDA_ABS32_HI_32}
    image = img.link(CODE_VA, GLOBAL_VA)
    k = img.kernel("use_globals")
    targets = {"counter": GLOBAL_VA, "table": CODE_VA + img.section_offset(".nv.global.init")}
    seen = set()
    for r in img.relocations:
        name = img.symbols[r.symbol].name
        at = k.text_offset + r.offset
        lo_word, imm = struct.unpack_from("<II", image, at)
        assert lo_word & SASS_OPCODE_MASK == SASS_UMOV
        want = targets[name] & 0xFFFFFFFF if r.type == RCUDA.R_CUDA_ABS32_LO_32 \
            else targets[name] >> 32
        assert imm == want, (name, hex(imm), hex(want))
        seen.add((name, r.type))
    assert len(seen) == 4


def test_link_leaves_unrelocated_bytes_alone(img):
    a = img.link(CODE_VA, GLOBAL_VA)
    b = img.link(CODE_VA + 0x10000, GLOBAL_VA)
    patched = {img.kernel("use_globals").text_offset + r.offset + 4 + i
               for r in img.relocations for i in range(4)}
    diff = {i for i, (x, y) in enumerate(zip(a, b)) if x != y}
    assert diff and diff <= patched


def test_text_address_needs_a_link_or_a_va(img):
    with pytest.raises(InvalidArgument, match="link"):
        img.text_address("use_globals")
    assert img.text_address("use_globals", code_va=CODE_VA) == \
        CODE_VA + img.kernel("use_globals").text_offset
    img.link(CODE_VA, GLOBAL_VA)
    assert img.text_address("use_globals") == CODE_VA + img.kernel("use_globals").text_offset


@pytest.mark.parametrize("code_va", [CODE_VA + 4, -128, 1 << 64])
def test_bad_code_va(img, code_va):
    with pytest.raises(InvalidArgument, match="code_va"):
        img.link(code_va, GLOBAL_VA)


def test_misaligned_global_va(img):
    with pytest.raises(InvalidArgument, match="global_va"):
        img.link(CODE_VA, GLOBAL_VA + 2)


def test_missing_global_va_names_the_size(img):
    with pytest.raises(ProgramError, match=r"counter.*\.nv\.global.*4 bytes"):
        img.link(CODE_VA)


def test_high_addresses_split_across_lo_and_hi():
    """The ABS32 LO/HI pair carries a full 64-bit address: bits 63:32 land in the HI word."""
    img = CubinImage(RDC_CUBIN.read_bytes())
    image = img.link(0xFFFF_FF00_0000_0000, 0x1_0000_0000)
    hi = [r for r in img.relocations if r.type == RCUDA.R_CUDA_ABS32_HI_32
          and img.symbols[r.symbol].name == "counter"][0]
    at = img.kernel("use_globals").text_offset + hi.offset + 4
    assert struct.unpack_from("<I", image, at)[0] == 1
