"""The mock compiler's cubins (hwdrv.nvidia.mockcubin) against real ptxas cubins of the same PTX
(committed in tests/data/nvidia, see its README): the same sections, .nv.info attributes,
parameter layout, resources, constant banks and relocations, read by the one CubinImage loader;
plus the PTX reading they rest on, checked against hand-derived values."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from hwdrv.errors import ProgramError
from hwdrv.mock.nvidia import ptx
from hwdrv.nvidia.compiler import MockPtxCompiler
from hwdrv.nvidia.cubin import RCUDA, CubinImage
from hwdrv.nvidia.ptxscan import blank_comments, estimate_registers, functions

DATA = Path(__file__).parent / "data" / "nvidia"
CODE_VA = 0x7F12_3456_0000
GLOBAL_VA = 0x7E00_0000_1000
COMPARED = ["vector_add", "globals", "local_array", "two_kernels", "launch_bounds", "reqntid",
            "block_reduce", "big_params"]
# Attributes every kernel of the mock carries, each present in ptxas's output of the same kernel
# (CRS_STACK_SIZE only where ptxas needed one: the mock always says 0).
PER_KERNEL = {"EIATTR_MAXREG_COUNT"}
PER_FUNCTION = {"EIATTR_REGCOUNT", "EIATTR_FRAME_SIZE", "EIATTR_MIN_STACK_SIZE"}

PTX = """
.version 8.0
.target sm_90
.address_size 64
// .entry commented_out(.param .u32 x) {}
/* .entry also_commented(.param .u32 y) { } */
.visible .entry first(
\t.param .u8 a,          // 1 byte at 0
\t.param .u64 b,         // 8-aligned -> 8
\t.param .u16 c,         // 16
\t.param .align 8 .b8 blob[4096],
\t.param .u64 .ptr .global .align 16 p,
\t.param .f32 f
)
.maxntid 128, 2, 1
{
\tret;
}
.entry second
{
\tret;
}
"""


def pair(name: str) -> tuple[CubinImage, CubinImage]:
    """(ptxas's cubin, the mock compiler's cubin) of tests/data/nvidia/<name>.ptx."""
    real = CubinImage((DATA / f"{name}.cubin").read_bytes())
    mock = CubinImage(MockPtxCompiler().compile((DATA / f"{name}.ptx").read_text()))
    return real, mock


def section_kinds(img: CubinImage) -> set[str]:
    """Section names with kernel names replaced, ptxas's host-only/tool sections left out."""
    out = set()
    for s in img.sections:
        n = s.name
        for k in img.kernels:
            n = n.replace(f".{k}", ".<k>")
        if n.startswith((".debug", ".rela.debug", ".note", ".nv.compat", ".nv.callgraph", ".rela.text")):
            continue
        out.add(n)
    return out


@pytest.mark.parametrize("name", COMPARED)
def test_same_sections_as_ptxas(name):
    real, mock = pair(name)
    assert mock.sm == real.sm == 90 and mock.e_flags == real.e_flags
    assert section_kinds(mock) == section_kinds(real)


@pytest.mark.parametrize("name", COMPARED)
def test_same_kernel_info_as_ptxas(name):
    real, mock = pair(name)
    assert list(mock.kernels) == list(real.kernels) or set(mock.kernels) == set(real.kernels)
    for k in real.kernels:
        r, m = real.kernel(k), mock.kernel(k)
        assert [(p.offset, p.size, p.ordinal) for p in m.params] == \
            [(p.offset, p.size, p.ordinal) for p in r.params]
        assert (m.param_base, m.param_size, m.constant0_size) == (r.param_base, r.param_size, r.constant0_size)
        assert (m.shared_static, m.shared_raw, m.shared_reserved) == \
            (r.shared_static, r.shared_raw, r.shared_reserved)
        assert (m.local_per_thread, m.frame_size, m.min_stack) == \
            (r.local_per_thread, r.frame_size, r.min_stack)
        assert (m.maxntid, m.reqntid, m.max_threads) == (r.maxntid, r.reqntid, r.max_threads)
        assert m.constant_banks == r.constant_banks
        assert m.maxreg_count == r.maxreg_count
        assert m.barriers == r.barriers
        # a real estimate: nonzero, and within a factor of three of what ptxas allocated
        assert m.regs > 0 and r.regs / 3 <= m.regs <= 3 * r.regs, (k, m.regs, r.regs)


@pytest.mark.parametrize("name", COMPARED)
def test_same_nv_info_attributes_as_ptxas(name):
    real, mock = pair(name)
    for k in real.kernels:
        have_r = {r.name for r in real.records if r.section == f".nv.info.{k}"}
        have_m = {r.name for r in mock.records if r.section == f".nv.info.{k}"}
        assert PER_KERNEL <= have_m
        if real.kernel(k).params:
            assert {"EIATTR_CBANK_PARAM_SIZE", "EIATTR_PARAM_CBANK"} <= have_m
            assert have_m & {"EIATTR_KPARAM_INFO", "EIATTR_KPARAM_INFO_V2"} == \
                have_r & {"EIATTR_KPARAM_INFO", "EIATTR_KPARAM_INFO_V2"}
        assert have_m - {"EIATTR_CRS_STACK_SIZE"} <= have_r
        fr = {r.name for r in real.records if r.section == ".nv.info" and r.symbol == k}
        fm = {r.name for r in mock.records if r.section == ".nv.info" and r.symbol == k}
        assert PER_FUNCTION <= fm <= fr | {"EIATTR_MIN_STACK_SIZE"}
        pr = [r.words for r in real.records if r.section == f".nv.info.{k}" and r.name == "EIATTR_PARAM_CBANK"]
        pm = [r.words for r in mock.records if r.section == f".nv.info.{k}" and r.name == "EIATTR_PARAM_CBANK"]
        assert [w[1] for w in pm] == [w[1] for w in pr]       # (size << 16) | 0x210
        for img, words in ((real, pr), (mock, pm)):
            for w in words:
                assert img.symbols[w[0]].name == f".nv.constant0.{k}"


def test_globals_relocated_like_ptxas():
    real, mock = pair("globals")
    for img in (real, mock):
        assert img.global_size == 4                           # `counter` (uninitialised)
        relocs = {(img.symbols[r.symbol].name, r.type, img.sections[r.target].name) for r in img.relocations}
        assert relocs == {("counter", RCUDA.R_CUDA_64, ".nv.constant4"), ("table", RCUDA.R_CUDA_64, ".nv.constant4")}
        image = img.link(CODE_VA, GLOBAL_VA)
        bank4 = img.section_offset(".nv.constant4")
        table = img.section_offset(".nv.global.init")
        slots = {img.symbols[r.symbol].name: struct.unpack_from("<Q", image, bank4 + r.offset)[0]
                 for r in img.relocations}
        assert slots == {"counter": GLOBAL_VA, "table": CODE_VA + table}
        init = image[table:table + 12]
        assert struct.unpack("<3f", init) == (1.0, 2.0, 3.0)   # {0,0,128,63, 0,0,0,64, 0,0,64,64}
        bank3 = img.constant_bank("use_globals", 3).data
        assert struct.unpack("<4f", bank3[:16]) == (0.5, 0.25, 0.125, 0.0625)


def test_text_is_the_kernels_ptx_and_the_mock_parses_it():
    _, mock = pair("two_kernels")
    for k in mock.kernels:
        text = mock.section(f".text.{k}").data
        assert text.endswith(b"\0") and mock.kernel(k).text_offset == mock.section_offset(f".text.{k}")
        entries = [f.name for f in functions(blank_comments(text[:-1])) if f.is_entry]
        assert entries == [k]                       # the other kernel's definition is gone
    assert b"_Z4pickPKfi" in mock.section(".text.generic").data        # its device function stays
    module = ptx.parse(mock.section(".text.dims").data[:-1].decode())   # what the mock GPU runs
    assert list(module.entries) == ["dims"]


def test_params_at_natural_alignment_and_bounds():
    img = CubinImage(MockPtxCompiler().compile(PTX))
    assert list(img.kernels) == ["first", "second"]
    k = img.kernel("first")
    assert [(p.offset, p.size) for p in k.params] == [(0, 1), (8, 8), (16, 2), (24, 4096), (4120, 8), (4128, 4)]
    assert k.param_size == 4132 and k.param_base == 0x210 and k.constant0_size == 0x210 + 4132
    assert k.maxntid == (128, 2, 1) and k.max_threads == 256
    assert img.kernel("second").params == ()


@pytest.mark.parametrize("body,regs", [
    # three 32-bit values live together, then one: 3
    (".reg .b32 %r<4>; mov.u32 %r1, 1; mov.u32 %r2, 2; add.u32 %r3, %r1, %r2; st.u32 [x], %r3;", 3),
    # a 64-bit value is two registers; predicates are not general registers
    (".reg .b64 %rd<2>; .reg .pred %p<2>; mov.u64 %rd1, 1; setp.eq.u64 %p1, %rd1, 0; st.u64 [x], %rd1;", 2),
    # %r1 is read after the loop's back edge is taken: it is live over the whole loop
    (".reg .b32 %r<4>; mov.u32 %r1, 1; L: mov.u32 %r2, 2; mov.u32 %r3, %r2; bra L; st.u32 [x], %r1;", 3),
    (".reg .b32 %r<2>; ret;", 0),
])
def test_register_estimate(body, regs):
    assert estimate_registers(body.encode()) == regs


def test_function_spans():
    raw = (DATA / "two_kernels.ptx").read_bytes()
    fs = functions(blank_comments(raw))
    assert [(f.name, f.is_entry) for f in fs] == [("_Z4pickPKfi", False), ("dims", True), ("generic", True)]
    for f in fs:
        assert raw[f.end - 1:f.end] == b"}" and raw[f.body - 1:f.body] == b"{"


@pytest.mark.parametrize("text,match", [
    (".version 8.0\n.target sm_90\n.entry k(.param .u32 a,)\n{ ret; }", "empty parameter"),
    (".version 8.0\n.target sm_90\n.entry k(.param .q32 a)\n{ ret; }", "unsupported token"),
    (".version 8.0\n.target sm_90\n.entry k(.param .align 3 .b8 a[4])\n{ ret; }", "not a power of two"),
    (".version 8.0\n.target sm_90\n.entry k {}\n.entry k {}", "twice"),
    (".version 8.0\n.target sm_90\n.entry k { /* oops ", "never closed"),
    (".version 8.0\n.target sm_90\n.local .u32 x;\n.entry k { ret; }", "module-scope .local"),
    (".version 8.0\n.target sm_90\n.global .u64 p = {f};\n.entry k { ret; }", "not a function defined in the module"),
    (".version 8.0\n.target sm_90\n.global .u64 p = {generic(x)};\n.entry k { ret; }", "neither a number nor a symbol"),
    (".version 8.0\n.target sm_90\n.entry k { ret; }\0", "NUL"),
    (b".version 8.0\n.target sm_90\n.entry k { ret; } \xff", "not UTF-8"),
])
def test_compile_errors(text, match):
    with pytest.raises(ProgramError, match=match):
        MockPtxCompiler().compile(text)


def test_comment_markers_inside_strings_do_not_hide_entries():
    text = '.version 8.0\n.target sm_90\n.file 1 "a//b/*.cu"\n.entry k {}\n'
    assert list(CubinImage(MockPtxCompiler().compile(text)).kernels) == ["k"]


def test_non_ascii_comments_survive_into_the_text():
    text = ".version 8.0\n.target sm_90\n// größe ü\n.entry k(.param .u32 a) { ret; }\n"
    img = CubinImage(MockPtxCompiler().compile(text))
    assert img.section(".text.k").data == text.encode() + b"\0"
    assert [(p.offset, p.size) for p in img.kernel("k").params] == [(0, 4)]


def test_launch_bounds_cap_the_register_count():
    # 100 values live at once; declared for 1024 threads, which leave 65536 / 1024 = 64 registers
    body = "".join(f"mov.u32 %r{i}, {i};\n" for i in range(100)) + \
        "".join(f"st.u32 [%rd1+{4 * i}], %r{i};\n" for i in range(100))
    text = (".version 8.0\n.target sm_90\n.entry k(.param .u64 p) .maxntid 1024, 1, 1\n{\n"
            ".reg .b32 %r<100>; .reg .b64 %rd<2>;\nld.param.u64 %rd1, [p];\n" + body + "ret;\n}\n")
    unbounded = text.replace(" .maxntid 1024, 1, 1", "")
    assert CubinImage(MockPtxCompiler().compile(unbounded)).kernel("k").regs == 100 + 2 + 2
    assert CubinImage(MockPtxCompiler().compile(text)).kernel("k").regs == 64
