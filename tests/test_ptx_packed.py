"""fns, bmsk and packed 16-bit arithmetic against the PTX ISA's own examples and hand-worked values."""
from __future__ import annotations

import numpy as np
import pytest

from test_ptx_helpers import gpu, run_op  # noqa: F401


def test_fns_isa_examples(gpu):
    # PTX ISA, fns: 0xaaaaaaaa from 3 up 1 -> 3; down 1 -> 3; from 2 up 1 -> 3; from 2 down 1 -> 1
    mask = np.full(8, 0xAAAAAAAA, np.uint32)
    base = np.array([3, 3, 2, 2, 0, 31, 4, 1], np.uint32)
    off = np.array([1, -1, 1, -1, 16, 1, 0, 0], np.int32).view(np.uint32)
    (d,) = run_op(gpu, "fns.b32 %d, %a, %b, %c;", [mask, base, off], [np.uint32])
    # from 0 the 16th set bit of 0xaaaaaaaa is bit 31; from 31 up the first is 31;
    # offset 0 tests the base bit alone: bit 4 is clear (none), bit 1 is set (1)
    assert d[:8].tolist() == [3, 3, 3, 1, 31, 31, 0xFFFFFFFF, 1]


def test_fns_not_found(gpu):
    (d,) = run_op(gpu, "fns.b32 %d, %a, %b, %c;", [np.array([0x0000000F, 0], np.uint32), np.array([4, 0], np.uint32),
                                                    np.array([1, 1], np.uint32)], [np.uint32])
    assert d[:2].tolist() == [0xFFFFFFFF, 0xFFFFFFFF]


@pytest.mark.parametrize("mode, a, b, want", [
    ("wrap", 1, 2, 0x00000006),            # the ISA's example
    ("wrap", 0, 0, 0),                     # width 0
    ("wrap", 28, 8, 0xF0000000),           # runs past bit 31: the bits that fit
    ("wrap", 33, 2, 0x00000006),           # wrap: position 33 & 31 = 1
    ("clamp", 33, 2, 0),                   # clamp: position >= 32 gives nothing
    ("clamp", 4, 40, 0xFFFFFFF0),          # clamp: width >= 32 means "to the top"
])
def test_bmsk(gpu, mode, a, b, want):
    (d,) = run_op(gpu, f"bmsk.{mode}.b32 %d, %a, %b;", [np.array([a], np.uint32), np.array([b], np.uint32)], [np.uint32])
    assert int(d[0]) == want


@pytest.mark.parametrize("op, t, a, b, want", [
    ("add", "u16x2", 0xFFFF0001, 0x00020003, 0x00010004),      # halves wrap separately
    ("sub", "s16x2", 0x00010000, 0x00020001, 0xFFFFFFFF),      # 1-2 = -1, 0-1 = -1
    ("min", "s16x2", 0x8000_7FFF, 0x0001_0001, 0x8000_0001),   # -32768 < 1; 1 < 32767
    ("min", "u16x2", 0x8000_7FFF, 0x0001_0001, 0x0001_0001),
    ("max", "s16x2", 0x8000_0005, 0x0001_FFFB, 0x0001_0005),   # 1 > -32768; 5 > -5
    ("max.relu", "s16x2", 0xFFF0_0005, 0xFFFE_FFFB, 0x0000_0005),
])
def test_packed_16x2(gpu, op, t, a, b, want):
    (d,) = run_op(gpu, f"{op}.{t} %d, %a, %b;", [np.array([a], np.uint32), np.array([b], np.uint32)], [np.uint32])
    assert hex(int(d[0])) == hex(want)


@pytest.mark.parametrize("instr, a, b, c, want", [
    # bytes (lowest first) a = (10, 200, 5, 128), b = (20, 100, 5, 1)
    ("vabsdiff4.u32.u32.u32", 0x8005C80A, 0x01056414, 0, 0x7F00640A),
    ("vabsdiff4.u32.u32.u32.add", 0x8005C80A, 0x01056414, 1000, 1000 + 10 + 100 + 0 + 127),
    ("vadd4.u32.u32.u32.sat", 0x8005C80A, 0x01056414, 0, 0x810AFF1E),        # 200 + 100 saturates at 255
    ("vadd4.u32.u32.u32", 0x8005C80A, 0x01056414, 0, 0x810A2C1E),            # ... or wraps to 44
    # signed bytes a = (10, -56, 5, -128): 10-20 = -10, -56-100 -> -128, 0, -128-1 -> -128
    ("vsub4.s32.s32.s32.sat", 0x8005C80A, 0x01056414, 0, 0x800080F6),
    ("vmin4.s32.s32.s32", 0x8005C80A, 0x01056414, 0, 0x8005C80A),            # signed: 128 is -128, 200 is -56
    ("vavrg2.u32.u32.u32", 0x0003FFFF, 0x00040001, 0, 0x00048000),           # (3+4+1)>>1 = 4, (65535+1+1)>>1 = 32768
    ("vmax2.s32.s32.s32.add", 0xFFFF0005, 0x0002FFF0, 7, 7 + 5 + 2),
])
def test_video_simd(gpu, instr, a, b, c, want):
    (d,) = run_op(gpu, f"{instr} %d, %a, %b, %c;", [np.array([a], np.uint32), np.array([b], np.uint32),
                                                   np.array([c], np.uint32)], [np.uint32])
    assert hex(int(d[0])) == hex(want)


def test_set_on_half_pairs(gpu):
    """set.CmpOp.f16x2.f16x2: 1.0 or 0.0 per half (CUDA's __hgt2); .u32 destination: 0xffff per
    half; the unordered forms are true on NaN."""
    a = np.array([1.0, 0.25, -3, 0.5, np.nan, 0.75, 2, 0.5], np.float16).view(np.uint32)
    b = np.full(8, 0.5, np.float16).view(np.uint32)
    d, = run_op(gpu, "set.gt.f16x2.f16x2 %d, %a, %b;", [a, b], [np.uint32])
    assert d[:4].view(np.float16).tolist() == [1, 0, 0, 0, 0, 1, 1, 0]
    d, = run_op(gpu, "set.gtu.u32.f16x2 %d, %a, %b;", [a, b], [np.uint32])
    assert [hex(x) for x in d[:4].tolist()] == ["0xffff", "0x0", "0xffffffff", "0xffff"]
    bf = (np.array([2.0, -1.0], np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint32)
    one = (np.array([1.0, 1.0], np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint32)
    d, = run_op(gpu, "set.ge.bf16x2.bf16x2 %d, %a, %b;", [bf, one], [np.uint32])
    assert hex(int(d[0])) == "0x3f80"          # 2 >= 1 -> bf16 1.0 in the low half; -1 >= 1 false
