"""The mock's PTX image format: building, parsing entries and parameter layout, load_image."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwdrv.errors import ProgramError
from hwdrv.nvidia.cubin import CubinImage, ProgramImage
from hwdrv.nvidia.ptximage import (PTX_IMAGE_MAGIC, PtxImage, load_image, make_ptx_image)

DATA = Path(__file__).parent / "data" / "nvidia"
SM90_PARAM_BASE = 0x210

PTX = """\
.version 8.0
.target sm_90
.address_size 64
// .entry commented_out(.param .u32 x) {}
/* .entry also_commented(.param .u32 y) { } */
.func helper() { ret; }
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


def test_image_is_magic_text_nul():
    img = make_ptx_image(PTX)
    assert img == PTX_IMAGE_MAGIC + PTX.encode() + b"\0"


def test_entry_offsets_point_at_the_declarations():
    raw = make_ptx_image(PTX)
    img = PtxImage(raw)
    assert list(img.kernels) == ["first", "second"]
    first, second = img.kernel("first"), img.kernel("second")
    assert raw[first.text_offset:].startswith(b".visible .entry first(")
    assert raw[second.text_offset:].startswith(b".entry second")
    assert first.text_offset + first.text_size == second.text_offset
    assert second.text_offset + second.text_size == len(raw) - 1
    assert img.version == "8.0" and img.target == "sm_90" and img.address_size == "64"


def test_params_at_natural_alignment():
    k = PtxImage(make_ptx_image(PTX)).kernel("first")
    got = [(p.name, p.type, p.offset, p.size, p.align) for p in k.params]
    assert got == [("a", ".u8", 0, 1, 1), ("b", ".u64", 8, 8, 8), ("c", ".u16", 16, 2, 2),
                   ("blob", ".b8", 24, 4096, 8), ("p", ".u64", 4120, 8, 8),
                   ("f", ".f32", 4128, 4, 4)]
    assert k.params[3].count == 4096
    p = k.params[4]
    assert p.pointer and p.pointee_space == "global" and p.pointee_align == 16
    assert k.param_size == 4132 and k.param_base == SM90_PARAM_BASE
    assert k.maxntid == (128, 2, 1) and k.max_threads == 256
    assert (k.regs, k.shared_static, k.local_per_thread) == (0, 0, 0)
    assert PtxImage(make_ptx_image(PTX)).kernel("second").params == ()


@pytest.mark.parametrize("name", ["vector_add", "big_params", "two_kernels", "reqntid",
                                  "launch_bounds", "globals"])
def test_committed_ptx_parses(name):
    text = (DATA / f"{name}.ptx").read_text()
    img = load_image(make_ptx_image(text))
    assert isinstance(img, PtxImage) and isinstance(img, ProgramImage)
    assert img.kernels and img.target.startswith("sm_90")


def test_load_image_dispatches_on_magic():
    assert isinstance(load_image(make_ptx_image(PTX)), PtxImage)
    rdc = (DATA / "globals_rdc.cubin").read_bytes()
    cubin = load_image(rdc)
    assert isinstance(cubin, CubinImage) and isinstance(cubin, ProgramImage)
    with pytest.raises(ProgramError, match="unknown kernel binary format"):
        load_image(b"\x00asm\x01")


@pytest.mark.parametrize("blob,match", [
    (b"HWDRV-PTX\0", "truncated"),
    (b"HWDRV-PTX\0.entry k {}", "truncated"),
    (b"HWDRV-PTX\0.entry a {}\0.entry b {}\0", "NUL inside"),
    (b"HWDRV-PTX\0\xff\xfe\0", "not UTF-8"),
    (b"HWDRV-PTX", "does not start with"),
])
def test_malformed_images(blob, match):
    with pytest.raises(ProgramError, match=match):
        PtxImage(blob)


@pytest.mark.parametrize("params,match", [
    (".param .u32 a,", "empty parameter"),
    (".param .q32 a", "unsupported token"),
    (".param .align 3 .b8 a[4]", "not a power of two"),
    (".param .b8 a[0]", "0 elements"),
    (".reg .u32 a", "expected '.param'"),
    (".param .align", "needs a number|no parameter type"),
])
def test_bad_parameter_declarations(params, match):
    text = f".version 8.0\n.target sm_90\n.entry k({params})\n{{ ret; }}\n"
    with pytest.raises(ProgramError, match=match):
        PtxImage(make_ptx_image(text))


def test_structural_errors():
    with pytest.raises(ProgramError, match="never closed"):
        PtxImage(make_ptx_image(".entry k { /* oops "))
    with pytest.raises(ProgramError, match="no body"):
        PtxImage(make_ptx_image(".entry k (.param .u32 a)"))
    with pytest.raises(ProgramError, match="twice"):
        PtxImage(make_ptx_image(".entry k {}\n.entry k {}"))
    with pytest.raises(ProgramError, match="contains a NUL"):
        make_ptx_image("a\0b")
    with pytest.raises(ProgramError, match=r"'nope'.*first, second"):
        PtxImage(make_ptx_image(PTX)).kernel("nope")


def test_comment_markers_inside_strings_do_not_hide_entries():
    text = '.version 8.0\n.target sm_90\n.file 1 "a//b/*.cu"\n.entry k {}\n'
    assert list(PtxImage(make_ptx_image(text)).kernels) == ["k"]


def test_offsets_are_bytes_even_with_non_ascii_comments():
    text = "// größe ü\n.entry k(.param .u32 a) {}\n"
    raw = make_ptx_image(text)
    k = PtxImage(raw).kernel("k")
    assert raw[k.text_offset:].startswith(b".entry k(")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_only_program_error(data):
    for blob in (PTX_IMAGE_MAGIC + data, PTX_IMAGE_MAGIC + data + b"\0",
                 make_ptx_image(PTX)[:len(data) % 400] + data[:8]):
        try:
            PtxImage(blob)
        except ProgramError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=".entryparmu3264b8align(){}[] ,\n/*", max_size=200))
def test_fuzz_ptx_like_text(text):
    try:
        PtxImage(make_ptx_image(text))
    except ProgramError:
        pass
