"""CubinImage on real ptxas output: the test kernels of tests/data/nvidia compiled here, every
value checked against ptxas's own -v report, the PTX declaration, or the bytes of the image."""
from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from hwdrv.errors import ProgramError
from hwdrv.nvidia.compiler import PtxasCompiler, find_ptxas
from hwdrv.nvidia.cubin import (IMAGE_ALIGN, PREFETCH_SLACK, RCUDA, SHARED_RESERVED_BYTES,
                                CubinImage)
from hwdrv.nvidia.ptxscan import blank_comments, launch_dims, parse_params, scan_entries

DATA = Path(__file__).parent / "data" / "nvidia"
SASS_OPCODE_MASK = 0xFFF      # low 12 bits of a Hopper instruction's first 64-bit word
SASS_EXIT = 0x94D             # EXIT (nvdisasm -hex of the test kernels)
SM90_PARAM_BASE = 0x210       # reference/nvidia.md 3.8
CODE_VA = 0x7F12_3456_0000
GLOBAL_VA = 0x7E00_0000_1000


def parse_ptxas_v(log: str) -> dict[str, dict[str, int]]:
    """Per entry function: registers, smem bytes, cumulative stack bytes from `ptxas -v`."""
    out: dict[str, dict[str, int]] = {}
    current = None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '([^']+)'", line)
        if m:
            current = m.group(1)
            out[current] = {"regs": 0, "smem": 0, "stack": 0}
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m and current:
            out[current]["regs"] = int(m.group(1))
            if s := re.search(r"(\d+) bytes smem", line):
                out[current]["smem"] = int(s.group(1))
            if s := re.search(r"(\d+) bytes cumulative stack size", line):
                out[current]["stack"] = int(s.group(1))
    return out


@pytest.fixture(scope="module")
def build():
    """build(name, arch) -> (CubinImage, ptxas -v report, PTX text) for tests/data/nvidia."""
    if find_ptxas() is None:
        pytest.skip("no ptxas found (HWDRV_PTXAS, PATH, $CUDA_HOME/bin, nvidia-cuda-nvcc wheel)")
    compilers: dict[str, PtxasCompiler] = {}

    def _build(name: str, arch: str = "sm_90"):
        ptx = (DATA / f"{name}.ptx").read_text()
        if arch != "sm_90":
            ptx = ptx.replace(".target sm_90", f".target {arch}")
        comp = compilers.setdefault(arch, PtxasCompiler(arch))
        cubin, log = comp.compile_with_log(ptx, extra=("-v",))
        return CubinImage(cubin), parse_ptxas_v(log), ptx
    return _build


class Declared:
    """An entry's parameters and launch bounds as its PTX declaration gives them."""

    def __init__(self, ptx: str, name: str):
        raw = ptx.encode()
        e = next(e for e in scan_entries(raw)[1] if e.name == name)
        self.params, self.param_size = parse_params(name, e.params_text)
        self.maxntid, self.reqntid = launch_dims(blank_comments(raw)[e.offset:e.header_end])


def _u32(image: bytes, at: int) -> int:
    return struct.unpack_from("<I", image, at)[0]


def _u64(image: bytes, at: int) -> int:
    return struct.unpack_from("<Q", image, at)[0]


def test_vector_add_matches_ptxas_and_ptx(build):
    img, report, ptx = build("vector_add")
    assert img.sm == 90 and img.arch == "sm_90"
    assert list(img.kernels) == ["vector_add"]
    k = img.kernel("vector_add")
    assert k.regs == report["vector_add"]["regs"]
    assert k.param_base == SM90_PARAM_BASE
    declared = Declared(ptx, "vector_add")
    assert [(p.offset, p.size) for p in k.params] == [(p.offset, p.size) for p in declared.params]
    assert [(p.offset, p.size) for p in k.params] == [(0, 8), (8, 8), (16, 8), (24, 4)]
    assert k.param_size == declared.param_size == 28
    assert k.constant0_size == SM90_PARAM_BASE + 28 == len(k.constant0)
    assert k.cuda_api_version is not None and k.cuda_api_version > 0
    assert k.local_per_thread == 0 and k.max_threads is None


def test_exit_offsets_point_at_exit_instructions(build):
    img, _, _ = build("vector_add")
    k = img.kernel("vector_add")
    image = img.link(CODE_VA)
    assert k.exit_offsets
    for off in k.exit_offsets:
        assert off < k.text_size
        word = _u64(image, k.text_offset + off)
        assert word & SASS_OPCODE_MASK == SASS_EXIT, hex(word)


def test_image_layout_and_prefetch_slack(build):
    img, _, _ = build("two_kernels")
    image = img.link(CODE_VA)
    assert len(image) == img.image_size
    placed = [s for s in img.sections if s.image_offset is not None]
    assert {s.name for s in placed} >= {".text.generic", ".text.dims", ".nv.constant0.generic"}
    assert ".debug_frame" not in {s.name for s in placed}
    end = 0
    for s in placed:
        assert s.image_offset % IMAGE_ALIGN == 0
        assert image[s.image_offset:s.image_offset + s.size] == s.data
        end = max(end, s.image_offset + s.size)
    assert len(image) - end >= PREFETCH_SLACK
    assert image[end:] == bytes(len(image) - end)
    for k in img.kernels.values():
        assert img.text_address(k.name) == CODE_VA + k.text_offset
        assert k.text_offset == img.section_offset(f".text.{k.name}")


def test_static_shared_memory(build):
    img, report, _ = build("block_reduce")
    k = img.kernel("block_reduce")
    assert k.regs == report["block_reduce"]["regs"]
    shared_section = next(s for s in img.sections if s.name == ".nv.shared.block_reduce")
    assert k.shared_raw == shared_section.size
    assert k.shared_user == report["block_reduce"]["smem"] == 256 * 4
    assert k.shared_reserved == SHARED_RESERVED_BYTES
    assert k.shared_static == k.shared_user + SHARED_RESERVED_BYTES


def test_reserved_shared_memory_is_counted_once_on_each_arch(build):
    """sm_90 cubins already include the reserved KiB in .nv.shared.<k>; sm_89 ones do not.
    The effective size must come out the same."""
    sizes = {}
    for arch in ("sm_89", "sm_90", "sm_100"):
        img, report, _ = build("block_reduce", arch)
        k = img.kernel("block_reduce")
        assert k.shared_user == report["block_reduce"]["smem"]
        sizes[arch] = (k.shared_raw, k.shared_static)
    assert sizes["sm_89"] == (1024, 2048)
    assert sizes["sm_90"] == (2048, 2048)
    assert sizes["sm_100"][1] == 2048


@pytest.mark.parametrize("arch,sm,base", [("sm_89", 89, 0x160), ("sm_90", 90, 0x210),
                                          ("sm_90a", 90, 0x210), ("sm_100", 100, 0x380)])
def test_arch_from_e_flags_and_param_base(build, arch, sm, base):
    img, _, _ = build("vector_add", arch)
    assert img.sm == sm
    k = img.kernel("vector_add")
    assert k.param_base == base and k.constant0_size == base + k.param_size


def test_params_larger_than_4k(build):
    img, report, ptx = build("big_params")
    k = img.kernel("big_params")
    assert k.regs == report["big_params"]["regs"]
    assert [(p.offset, p.size) for p in k.params] == [(0, 5000), (5000, 8), (5008, 4)]
    assert k.param_size == 5012 > 4096
    declared = Declared(ptx, "big_params")
    assert [(p.offset, p.size) for p in declared.params] == [(p.offset, p.size) for p in k.params]
    names = {r.name for r in img.records}
    assert "EIATTR_KPARAM_INFO_V2" in names   # ptxas switches record kind above 4 KiB


def test_local_memory_stack(build):
    img, report, _ = build("local_array")
    k = img.kernel("local_array")
    assert k.regs == report["local_array"]["regs"]
    assert k.local_per_thread == report["local_array"]["stack"] == 64 * 4
    assert k.min_stack == k.local_per_thread


def test_two_kernels_get_their_own_register_counts(build):
    img, report, _ = build("two_kernels")
    assert set(img.kernels) == {"generic", "dims"}
    regs = {name: img.kernel(name).regs for name in img.kernels}
    assert regs == {name: report[name]["regs"] for name in regs}
    assert regs["generic"] != regs["dims"]
    assert img.kernel("generic").local_per_thread == report["generic"]["stack"] > 0
    assert img.kernel("dims").local_per_thread == report["dims"]["stack"] == 0
    # The __noinline__ callee: a LOCAL FUNC inside .text.generic with its own FRAME_SIZE record.
    callee = next(f for f in img.functions.values() if "pick" in f.name)
    assert callee.section == ".text.generic" and callee.regs is None
    text = next(s for s in img.sections if s.name == ".text.generic")
    assert 0 < callee.offset and callee.offset + callee.size <= text.size
    frame = [r for r in img.records if r.name == "EIATTR_FRAME_SIZE" and r.symbol == callee.name]
    assert len(frame) == 1 and frame[0].words == (callee.symbol_index, callee.frame_size)
    assert callee.frame_size > 0


def test_records_are_decoded_for_diagnostics(build):
    img, _, _ = build("two_kernels")
    regcounts = {r.symbol: r.words[1] for r in img.records if r.name == "EIATTR_REGCOUNT"}
    assert regcounts == {"generic": img.kernel("generic").regs, "dims": img.kernel("dims").regs}
    assert all(r.name.startswith("EIATTR_") for r in img.records)
    assert {r.section for r in img.records} == {".nv.info", ".nv.info.generic", ".nv.info.dims"}


def test_device_globals_constant_banks_and_relocations(build):
    img, _, _ = build("globals")
    k = img.kernel("use_globals")
    assert img.global_size == 4 and img.global_align == 4          # `counter`
    assert k.constant_banks == (3, 4)
    coeffs = img.constant_bank("use_globals", 3).data
    assert struct.unpack("<4f", coeffs) == (0.5, 0.25, 0.125, 0.0625)
    assert {r.type for r in img.relocations} == {RCUDA.R_CUDA_64}
    image = img.link(CODE_VA, GLOBAL_VA)
    bank4 = img.constant_bank_address("use_globals", 4) - CODE_VA
    syms = {img.symbols[r.symbol].name: r for r in img.relocations}
    init = img.section_offset(".nv.global.init")
    assert _u64(image, bank4 + syms["counter"].offset) == GLOBAL_VA
    assert _u64(image, bank4 + syms["table"].offset) == CODE_VA + init
    assert struct.unpack_from("<3f", image, init) == (1.0, 2.0, 3.0)


def test_link_refuses_global_relocation_without_global_va(build):
    img, _, _ = build("globals")
    with pytest.raises(ProgramError, match=r"\.nv\.global.*4 bytes"):
        img.link(CODE_VA)


def test_launch_bounds_and_kernel_without_params(build):
    img, report, _ = build("launch_bounds")
    b = img.kernel("bounded")
    assert b.maxntid == (256, 1, 1) and b.max_threads == 256
    n = img.kernel("no_params")
    assert n.params == () and n.param_size == 0 and n.param_base == SM90_PARAM_BASE
    assert n.regs == report["no_params"]["regs"]


def test_reqntid_and_aligned_blob_param(build):
    img, _, ptx = build("reqntid")
    k = img.kernel("fixed_block")
    assert k.reqntid == (64, 2, 1) and k.max_threads == 128
    declared = Declared(ptx, "fixed_block")
    assert [(p.offset, p.size) for p in k.params] == [(0, 8), (8, 24)]
    assert [(p.offset, p.size) for p in declared.params] == [(0, 8), (8, 24)]
    assert declared.reqntid == (64, 2, 1)


def test_per_kernel_constant_bank(build):
    img, _, _ = build("indirect_call")
    image = img.link(CODE_VA)
    for name in ("apply", "apply_both"):
        k = img.kernel(name)
        assert k.constant_banks == (2, 4)
        bank2 = img.constant_bank(name, 2)
        assert bank2.kernel == name and bank2.section == f".nv.constant2.{name}"
        addr = img.constant_bank_address(name, 2) - CODE_VA
        assert image[addr:addr + len(bank2.data)] == bank2.data
        assert img.constant_bank(name, 4).kernel is None          # module-wide bank 4
    assert img.constant_bank_address("apply", 2) != img.constant_bank_address("apply_both", 2)
    with pytest.raises(ProgramError, match="no constant bank 7"):
        img.constant_bank("apply", 7)


def test_driver_provided_symbol_is_refused(build):
    img, _, _ = build("device_assert")
    with pytest.raises(ProgramError, match="__assertfail"):
        img.link(CODE_VA)


def test_unknown_kernel_lists_the_ones_there(build):
    img, _, _ = build("two_kernels")
    with pytest.raises(ProgramError, match=r"'nope'.*dims, generic"):
        img.kernel("nope")
