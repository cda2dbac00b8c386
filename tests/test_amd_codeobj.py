"""Code-object loader against LLVM's own view of the committed gfx1100 code objects.

llvm_facts.json (tests/data/amd/kernels, recorded by build.sh) holds, per code object, the
`.amdhsa_*` directives clang-19 emitted for each kernel descriptor, llvm-readelf-19's decode of the
metadata note, its dynamic symbols and PT_LOAD headers. None of it comes from hwdrv.
"""
import json
import math
import struct
from pathlib import Path

import pytest

from hwdrv.amd import codeobj
from hwdrv.amd.metadata import unpack
from hwdrv.errors import InvalidArgument, ProgramError

KDIR = Path(__file__).parent / "data" / "amd" / "kernels"
FACTS = json.loads((KDIR / "llvm_facts.json").read_text())
FILES = sorted(f for f in FACTS if f.endswith(".hsaco"))
OBJECTS = sorted(f for f in FACTS if f.endswith(".o"))


def _load(name: str) -> codeobj.CodeObject:
    return codeobj.load((KDIR / name).read_bytes())


# directive -> (register, field) of the descriptor (AMDGPUUsage ".amdhsa_kernel" directive table)
DIRECTIVE_FIELDS = {
    "amdhsa_user_sgpr_count": ("COMPUTE_PGM_RSRC2", "USER_SGPR_COUNT"),
    "amdhsa_user_sgpr_dispatch_ptr": ("KERNEL_CODE_PROPERTY", "ENABLE_SGPR_DISPATCH_PTR"),
    "amdhsa_user_sgpr_queue_ptr": ("KERNEL_CODE_PROPERTY", "ENABLE_SGPR_QUEUE_PTR"),
    "amdhsa_user_sgpr_kernarg_segment_ptr": ("KERNEL_CODE_PROPERTY", "ENABLE_SGPR_KERNARG_SEGMENT_PTR"),
    "amdhsa_user_sgpr_dispatch_id": ("KERNEL_CODE_PROPERTY", "ENABLE_SGPR_DISPATCH_ID"),
    "amdhsa_user_sgpr_private_segment_size": ("KERNEL_CODE_PROPERTY", "ENABLE_SGPR_PRIVATE_SEGMENT_SIZE"),
    "amdhsa_wavefront_size32": ("KERNEL_CODE_PROPERTY", "ENABLE_WAVEFRONT_SIZE32"),
    "amdhsa_uses_dynamic_stack": ("KERNEL_CODE_PROPERTY", "USES_DYNAMIC_STACK"),
    "amdhsa_enable_private_segment": ("COMPUTE_PGM_RSRC2", "ENABLE_PRIVATE_SEGMENT"),
    "amdhsa_system_sgpr_workgroup_id_x": ("COMPUTE_PGM_RSRC2", "ENABLE_SGPR_WORKGROUP_ID_X"),
    "amdhsa_system_sgpr_workgroup_id_y": ("COMPUTE_PGM_RSRC2", "ENABLE_SGPR_WORKGROUP_ID_Y"),
    "amdhsa_system_sgpr_workgroup_id_z": ("COMPUTE_PGM_RSRC2", "ENABLE_SGPR_WORKGROUP_ID_Z"),
    "amdhsa_system_sgpr_workgroup_info": ("COMPUTE_PGM_RSRC2", "ENABLE_SGPR_WORKGROUP_INFO"),
    "amdhsa_system_vgpr_workitem_id": ("COMPUTE_PGM_RSRC2", "ENABLE_VGPR_WORKITEM_ID"),
    "amdhsa_float_round_mode_32": ("COMPUTE_PGM_RSRC1", "FLOAT_ROUND_MODE_32"),
    "amdhsa_float_round_mode_16_64": ("COMPUTE_PGM_RSRC1", "FLOAT_ROUND_MODE_16_64"),
    "amdhsa_float_denorm_mode_32": ("COMPUTE_PGM_RSRC1", "FLOAT_DENORM_MODE_32"),
    "amdhsa_float_denorm_mode_16_64": ("COMPUTE_PGM_RSRC1", "FLOAT_DENORM_MODE_16_64"),
    "amdhsa_dx10_clamp": ("COMPUTE_PGM_RSRC1", "ENABLE_DX10_CLAMP"),
    "amdhsa_ieee_mode": ("COMPUTE_PGM_RSRC1", "ENABLE_IEEE_MODE"),
    "amdhsa_workgroup_processor_mode": ("COMPUTE_PGM_RSRC1", "WGP_MODE"),
    "amdhsa_memory_ordered": ("COMPUTE_PGM_RSRC1", "MEM_ORDERED"),
    "amdhsa_forward_progress": ("COMPUTE_PGM_RSRC1", "FWD_PROGRESS"),
    "amdhsa_shared_vgpr_count": ("COMPUTE_PGM_RSRC3", "SHARED_VGPR_COUNT"),
    "amdhsa_exception_fp_ieee_invalid_op": ("COMPUTE_PGM_RSRC2", "ENABLE_EXCEPTION_IEEE_754_FP_INVALID_OPERATION"),
    "amdhsa_exception_fp_denorm_src": ("COMPUTE_PGM_RSRC2", "ENABLE_EXCEPTION_FP_DENORMAL_SOURCE"),
    "amdhsa_exception_fp_ieee_div_zero": ("COMPUTE_PGM_RSRC2", "ENABLE_EXCEPTION_IEEE_754_FP_DIVISION_BY_ZERO"),
    "amdhsa_exception_fp_ieee_overflow": ("COMPUTE_PGM_RSRC2", "ENABLE_EXCEPTION_IEEE_754_FP_OVERFLOW"),
    "amdhsa_exception_fp_ieee_underflow": ("COMPUTE_PGM_RSRC2", "ENABLE_EXCEPTION_IEEE_754_FP_UNDERFLOW"),
    "amdhsa_exception_fp_ieee_inexact": ("COMPUTE_PGM_RSRC2", "ENABLE_EXCEPTION_IEEE_754_FP_INEXACT"),
    "amdhsa_exception_int_div_zero": ("COMPUTE_PGM_RSRC2", "ENABLE_EXCEPTION_INT_DIVIDE_BY_ZERO"),
}
DIRECTIVE_PLAIN = {"amdhsa_group_segment_fixed_size": "group_segment_fixed_size",
                   "amdhsa_private_segment_fixed_size": "private_segment_fixed_size",
                   "amdhsa_kernarg_size": "kernarg_size"}
# directives with no single descriptor field (register-allocation hints and gfx9-only bits)
DIRECTIVE_OTHER = {"amdhsa_next_free_vgpr", "amdhsa_next_free_sgpr", "amdhsa_reserve_vcc", "amdhsa_fp16_overflow"}


@pytest.mark.parametrize("name", FILES)
def test_every_code_object_loads_with_llvms_kernels(name):
    co = _load(name)
    assert co.arch == "gfx1100"
    assert set(co.kernels) == {k[".name"] for k in FACTS[name]["metadata"]["amdhsa.kernels"]}
    assert co.metadata.target == FACTS[name]["metadata"]["amdhsa.target"]
    assert list(co.metadata.version) == FACTS[name]["metadata"]["amdhsa.version"]


@pytest.mark.parametrize("name", FILES)
def test_metadata_note_equals_llvm_readelf(name):
    co = _load(name)
    by_name = {k[".name"]: k for k in FACTS[name]["metadata"]["amdhsa.kernels"]}
    for kname, k in co.kernels.items():
        assert k.metadata.raw == by_name[kname]          # every key and value of the msgpack map
        want = by_name[kname][".args"]
        assert [(a.offset, a.size, a.value_kind) for a in k.metadata.args] == \
               [(a[".offset"], a[".size"], a[".value_kind"]) for a in want]


@pytest.mark.parametrize("name", [f for f in sorted(FACTS) if "directives" in FACTS[f]])
def test_descriptor_fields_equal_clang_directives(name):
    co = _load(name)
    for kname, directives in FACTS[name]["directives"].items():
        d = co.kernels[kname].descriptor
        assert set(directives) <= set(DIRECTIVE_FIELDS) | set(DIRECTIVE_PLAIN) | DIRECTIVE_OTHER, set(directives)
        for key, value in directives.items():
            if key in DIRECTIVE_FIELDS:
                assert d.field(*DIRECTIVE_FIELDS[key]) == value, (kname, key)
            elif key in DIRECTIVE_PLAIN:
                assert getattr(d, DIRECTIVE_PLAIN[key]) == value, (kname, key)
        # wave32 gfx10+: VGPRs are encoded in granules of 8 (LLVM getEncodedNumVGPRBlocks)
        blocks = math.ceil(max(1, directives["amdhsa_next_free_vgpr"]) / 8) - 1
        assert d.field("COMPUTE_PGM_RSRC1", "GRANULATED_WORKITEM_VGPR_COUNT") == blocks


@pytest.mark.parametrize("name", FILES)
def test_user_sgpr_layout_fits_llvms_count(name):
    co = _load(name)
    for kname, d in FACTS[name]["directives"].items():
        layout = co.kernels[kname].descriptor.user_sgpr_layout()
        enabled = {DIRECTIVE_FIELDS[k][1] for k, v in d.items() if k.startswith("amdhsa_user_sgpr_") and
                   k != "amdhsa_user_sgpr_count" and v}
        assert {p for p, _, _ in layout} == enabled
        assert sum(c for _, _, c in layout) <= d["amdhsa_user_sgpr_count"]


def test_user_sgpr_layout_in_hsa_order():
    raw = bytearray(_load("wmma.hsaco").kernels["wmma_gemm_f16_f32"].descriptor.raw)
    struct.pack_into("<H", raw, 56, 0b1111111)            # every user-SGPR property bit
    struct.pack_into("<I", raw, 52, 15 << 1)              # USER_SGPR_COUNT 15
    d = codeobj.KernelDescriptor.from_bytes(bytes(raw), "test")
    assert [(n, c) for _, n, c in d.user_sgpr_layout()] == [(0, 4), (4, 2), (6, 2), (8, 2), (10, 2), (12, 2), (14, 1)]
    struct.pack_into("<I", raw, 52, 14 << 1)
    with pytest.raises(ProgramError, match="USER_SGPR_COUNT is 14"):
        codeobj.KernelDescriptor.from_bytes(bytes(raw), "test").user_sgpr_layout()


@pytest.mark.parametrize("name", FILES)
def test_descriptor_and_entry_at_llvm_symbols(name):
    co = _load(name)
    syms = FACTS[name]["symbols"]
    for kname, k in co.kernels.items():
        assert k.kd_offset == syms[kname + ".kd"]["value"] and syms[kname + ".kd"]["size"] == 64
        assert k.code_offset == syms[kname]["value"] and syms[kname]["type"] == "FUNC"
        assert k.code_offset % 256 == 0


@pytest.mark.parametrize("name", FILES)
def test_pt_load_placement(name):
    data = (KDIR / name).read_bytes()
    co = _load(name)
    for seg in FACTS[name]["load"]:
        assert co.image[seg["vaddr"]:seg["vaddr"] + seg["filesz"]] == data[seg["offset"]:seg["offset"] + seg["filesz"]]
        assert co.image[seg["vaddr"] + seg["filesz"]:seg["vaddr"] + seg["memsz"]] == bytes(seg["memsz"] - seg["filesz"])
    assert co.size == max(s["vaddr"] + s["memsz"] for s in FACTS[name]["load"])
    if not FACTS[name]["relocations"]:      # lld resolved everything: nothing to relocate
        assert co.relocated(0x7F0000000000) == co.image


def test_relocatable_object_matches_linked_one():
    rel = codeobj.load((KDIR / "elementwise.o").read_bytes())
    dyn = _load("elementwise.hsaco")
    assert rel.elf_type == codeobj.ET_REL and dyn.elf_type == codeobj.ET_DYN
    assert {r.type_name for r in rel.relocations} >= {"R_AMDGPU_REL64"}
    base = 0x1234_5600_0000
    img = rel.relocated(base)
    for name, k in rel.kernels.items():
        kd = dyn.kernels[name]
        # the REL64 relocation fills kernel_code_entry_byte_offset (bytes 16..23)
        assert k.descriptor.raw[:16] == kd.descriptor.raw[:16] and k.descriptor.raw[24:] == kd.descriptor.raw[24:]
        entry = struct.unpack_from("<q", img, k.kd_offset + 16)[0]
        assert k.kd_offset + entry == k.code_offset
        size = FACTS["elementwise.hsaco"]["symbols"][name]["size"]
        assert img[k.code_offset:k.code_offset + size] == dyn.image[kd.code_offset:kd.code_offset + size]


@pytest.mark.parametrize("name", FILES + OBJECTS)
def test_relocations_equal_llvm_readelf(name):
    """Every relocation llvm-readelf lists is one the loader applies: same type and addend, at the
    place of its section, against the symbol's placement (or none for RELATIVE64)."""
    co = _load(name)
    want = FACTS[name]["relocations"]
    got = sorted((r.type_name, r.addend) for r in co.relocations)
    assert got == sorted((r["type"], r["addend"]) for rs in want.values() for r in rs)
    if name.endswith(".hsaco"):               # ET_DYN: r_offset is the image offset
        assert sorted(r.offset for r in co.relocations) == sorted(r["offset"] for rs in want.values() for r in rs)


def test_relocations_are_applied_for_the_base():
    base = 0x7FAB_CD00_0000
    rel, dyn = _load("globals.o"), _load("globals.hsaco")
    for co in (rel, dyn):
        img = co.relocated(base)
        ptrs = [r for r in co.relocations if r.type_name in ("R_AMDGPU_ABS64", "R_AMDGPU_RELATIVE64")]
        assert len(ptrs) == 2
        vals = [struct.unpack_from("<Q", img, r.offset)[0] for r in ptrs]
        # the pointer table holds &coeffs[0] and &coeffs[4]: 16 bytes apart, inside the image at base
        assert sorted(vals)[1] - sorted(vals)[0] == 16 and base <= min(vals) < base + co.size
        coeffs = struct.unpack_from("<8f", img, min(vals) - base)
        assert coeffs == (1.0, -2.0, 0.5, 4.0, -0.25, 3.0, 8.0, -1.5)
    # pc-relative code relocations do not depend on the base
    lo = [r for r in rel.relocations if r.type_name == "R_AMDGPU_REL32_LO"]
    assert lo and rel.relocated(base)[lo[0].offset:lo[0].offset + 4] == rel.relocated(0)[lo[0].offset:lo[0].offset + 4]


def test_nobits_section_is_zero_filled_and_reachable():
    co = _load("bss.o")
    assert co.elf_type == codeobj.ET_REL
    img = co.relocated(0x5000_0000_0000)
    lo, hi = [r for r in co.relocations if r.type_name in ("R_AMDGPU_REL32_LO", "R_AMDGPU_REL32_HI")]
    assert lo.symbol == hi.symbol and co.image[lo.symbol:lo.symbol + 256] == bytes(256)   # .bss: 64 ints of 0
    # s_getpc_b64 yields the address of the following s_add_u32 (4 bytes before its literal); adding
    # the REL32_LO / REL32_HI literals (a 64-bit pc-relative offset) must land on the .bss array
    off = struct.unpack_from("<I", img, lo.offset)[0] | struct.unpack_from("<I", img, hi.offset)[0] << 32
    off -= (1 << 64) if off >> 63 else 0
    assert (lo.offset - 4) + off == lo.symbol


def test_relocated_rejects_misaligned_base():
    co = codeobj.load((KDIR / "elementwise.o").read_bytes())
    with pytest.raises(InvalidArgument, match="alignment"):
        co.relocated(0x1000 + co.align // 2)


def _hidden(k, kind):
    return [a for a in k.metadata.args if a.value_kind == kind][0]


def test_pack_kernargs_hidden_arguments_as_rocm_fills_them():
    k = _load("grid.hsaco").kernels["grid_queries"]
    seg = k.pack_kernargs([0xABCD_0000_1000], global_size=(10, 6, 3), local_size=(4, 4, 2))
    assert len(seg) == k.metadata.kernarg_segment_size
    assert struct.unpack_from("<Q", seg, 0)[0] == 0xABCD_0000_1000

    def get(kind):
        a = _hidden(k, kind)
        return int.from_bytes(seg[a.offset:a.offset + a.size], "little")
    # ROCm clr: block count = global / local (full groups), remainder = global % local
    assert [get(f"hidden_block_count_{d}") for d in "xyz"] == [2, 1, 1]
    assert [get(f"hidden_group_size_{d}") for d in "xyz"] == [4, 4, 2]
    assert [get(f"hidden_remainder_{d}") for d in "xyz"] == [2, 2, 1]
    assert get("hidden_grid_dims") == 3
    assert [get(f"hidden_global_offset_{d}") for d in "xyz"] == [0, 0, 0]


def test_pack_kernargs_one_dimension_and_by_value_types():
    k = _load("elementwise.hsaco").kernels["saxpy"]
    import numpy as np
    seg = k.pack_kernargs([np.float32(2.5), 0x1000, 0x2000, 1000], global_size=(1000,), local_size=(64,))
    assert struct.unpack_from("<f4xQQI", seg, 0) == (2.5, 0x1000, 0x2000, 1000)

    def get(kind):
        a = _hidden(k, kind)
        return int.from_bytes(seg[a.offset:a.offset + a.size], "little")
    assert [get(f"hidden_block_count_{d}") for d in "xyz"] == [15, 1, 1]
    assert [get(f"hidden_remainder_{d}") for d in "xyz"] == [40, 0, 0]
    assert get("hidden_grid_dims") == 1


@pytest.mark.parametrize("args,sizes,match", [
    ([1, 2, 3], ((64,), (64,)), "takes 4 arguments"),
    ([2.5, 1, 2, "x"], ((64,), (64,)), "cannot pass a str"),
    ([2.5, 1, 2, 1 << 40], ((64,), (64,)), "does not fit"),
    ([2.5, 1.5, 2, 3], ((64,), (64,)), "GPU address"),
    ([2.5, 1, 2, 3], ((64,), (64, 1)), "same number"),
    ([2.5, 1, 2, 3], ((64,), (2048,)), "max_flat_workgroup_size"),
    ([2.5, 1, 2, 3], ((0,), (64,)), ">= 1"),
])
def test_pack_kernargs_rejects_bad_launches(args, sizes, match):
    k = _load("elementwise.hsaco").kernels["saxpy"]
    with pytest.raises(InvalidArgument, match=match):
        k.pack_kernargs(args, *sizes)


def _patched(data: bytes, off: int, fmt: str, value) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def test_errors_name_the_part():
    data = (KDIR / "wmma.hsaco").read_bytes()
    with pytest.raises(ProgramError, match="not an ELF"):
        codeobj.load(b"\0" + data[1:])
    with pytest.raises(ProgramError, match="e_machine is 62"):
        codeobj.load(_patched(data, 18, "<H", 62))
    with pytest.raises(ProgramError, match="EI_OSABI"):
        codeobj.load(_patched(data, 7, "<B", 0))
    with pytest.raises(ProgramError, match="EI_ABIVERSION"):
        codeobj.load(_patched(data, 8, "<B", 1))
    k = _load("wmma.hsaco").kernels["wmma_gemm_f16_f32"]
    seg = FACTS["wmma.hsaco"]["load"][0]
    kd_file = k.kd_offset - seg["vaddr"] + seg["offset"]
    with pytest.raises(ProgramError, match="kernarg_size = 99 but the metadata note says 36"):
        codeobj.load(_patched(data, kd_file + 8, "<I", 99))
    with pytest.raises(ProgramError, match="kernel_code_entry_byte_offset"):
        codeobj.load(_patched(data, kd_file + 16, "<q", 4))


def test_msgpack_spec_vectors():
    # examples from the MessagePack specification's format table
    assert unpack(b"\x93\x01\x02\x03") == [1, 2, 3]
    assert unpack(b"\x82\xa1a\xc3\xa1b\xc0") == {"a": True, "b": None}
    assert unpack(b"\xff") == -1 and unpack(b"\xd0\x80") == -128 and unpack(b"\xcd\x01\x00") == 256
    assert unpack(b"\xcf" + (2**64 - 1).to_bytes(8, "big")) == 2**64 - 1
    assert unpack(b"\xd3" + (2**63).to_bytes(8, "big")) == -(2**63)
    assert unpack(b"\xcb" + struct.pack(">d", 1.5)) == 1.5 and unpack(b"\xca" + struct.pack(">f", -2.0)) == -2.0
    assert unpack(b"\xc4\x03abc") == b"abc" and unpack(b"\xd9\x03abc") == "abc"
    assert unpack(b"\xdc\x00\x02\x01\x02") == [1, 2] and unpack(b"\xde\x00\x01\x01\x02") == {1: 2}
    for bad, match in [(b"\x92\x01", "truncated"), (b"\x01\x02", "after the MessagePack value"),
                       (b"\xc1", "0xc1"), (b"\xd4\x00\x00", "0xd4"), (b"\xa2\xff\xfe", "UTF-8"),
                       (b"\x81\x90\x01", "list key"), (b"\xdd\xff\xff\xff\xff", "claims"),
                       (b"\x91" * 100 + b"\x01", "deeper")]:
        with pytest.raises(ProgramError, match=match):
            unpack(bad)
