"""hwdrv.ioctl.bindings: Field encode/decode/get/set (incl. multi-word spans), ffi helpers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from hwdrv.errors import HwdrvError, InvalidArgument
from hwdrv.ioctl.bindings import Field, addressof, build_ffi, new, sizeof


def test_field_attributes():
    f = Field(7, 4, "X")
    assert (f.hi, f.lo, f.width, f.shift, f.mask) == (7, 4, 4, 4, 0xF0)
    assert Field(0, 0).mask == 1 and Field(31, 0).mask == 0xFFFFFFFF
    assert Field(2, 0) == Field(2, 0, "other name") and hash(Field(2, 0)) == hash(Field(2, 0))


def test_field_encode_decode():
    f = Field(24, 23, "NVOS32_ATTR_PAGE_SIZE")
    assert f.encode(3) == 3 << 23
    assert f.decode(0xFFFFFFFF) == 3
    assert f.decode(f.encode(2) | 0x1234) == 2
    assert Field(31, 31).encode(1) == 0x80000000


@pytest.mark.parametrize("v", [-1, 4, 1 << 40])
def test_field_encode_range_error_names_field_and_value(v):
    with pytest.raises(InvalidArgument) as e:
        Field(1, 0, "NV_CTXSHARE_ALLOCATION_FLAGS_SUBCONTEXT").encode(v)
    assert "NV_CTXSHARE_ALLOCATION_FLAGS_SUBCONTEXT" in str(e.value)
    assert isinstance(e.value, HwdrvError)


def test_field_rejects_non_integers_and_bad_ranges():
    with pytest.raises(InvalidArgument):
        Field(3, 0).encode(1.5)
    with pytest.raises(InvalidArgument):
        Field(0, 3)
    with pytest.raises(InvalidArgument):
        Field(3, -1)


def test_field_set_get_single_word_keeps_other_bits():
    words = [0xFFFFFFFF, 0]
    Field(11, 4).set(words, 0)
    assert words == [0xFFFFF00F, 0]
    Field(43, 40).set(words, 0xA)
    assert words == [0xFFFFF00F, 0xA00]
    assert Field(43, 40).get(words) == 0xA and Field(11, 4).get(words) == 0


def test_field_spanning_word_boundary():
    # QMD-style numbering: bits 1055:1024 are word 32; 47:16 spans words 0 and 1.
    f = Field(47, 16)
    words = [0x0000FFFF, 0xFFFF0000, 0]
    f.set(words, 0x12345678)
    assert words == [0x5678FFFF, 0xFFFF1234, 0]
    assert f.get(words) == 0x12345678
    g = Field(95, 0)   # three whole words
    w = [0, 0, 0]
    g.set(w, (1 << 96) - 2)
    assert w == [0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFF]


def test_field_set_numpy_words_and_bounds():
    arr = np.zeros(4, dtype=np.uint32)
    Field(70, 60).set(arr, 0x7FF)
    assert Field(70, 60).get(arr) == 0x7FF
    assert arr[1] == 0xF0000000 and arr[2] == 0x7F
    with pytest.raises(InvalidArgument):
        Field(140, 130).set(arr, 1)
    with pytest.raises(InvalidArgument):
        Field(140, 130).get(arr)
    with pytest.raises(InvalidArgument):
        Field(70, 60).set(arr, 0x800)
    assert Field(70, 60).get(arr) == 0x7FF  # a rejected set leaves the words alone


@given(st.integers(0, 200), st.integers(1, 64), st.data())
def test_field_roundtrip_property(lo, width, data):
    f = Field(lo + width - 1, lo)
    v = data.draw(st.integers(0, (1 << width) - 1))
    nwords = (f.hi >> 5) + 1
    background = data.draw(st.lists(st.integers(0, 0xFFFFFFFF), min_size=nwords, max_size=nwords))
    words = list(background)
    f.set(words, v)
    assert f.get(words) == v
    assert f.decode(f.encode(v)) == v
    # every bit outside the field is unchanged
    big_before = sum(w << (32 * i) for i, w in enumerate(background))
    big_after = sum(w << (32 * i) for i, w in enumerate(words))
    assert (big_before ^ big_after) & ~f.mask == 0
    assert (big_after & f.mask) >> f.shift == v


def test_ffi_helpers():
    ffi = build_ffi("typedef struct { unsigned int a; unsigned long long b; unsigned char c[4]; } T;")
    p = new(ffi, "T", a=3, b=1 << 40, c=[1, 2, 3, 4])
    assert (p.a, p.b, list(p.c)) == (3, 1 << 40, [1, 2, 3, 4])
    assert sizeof(ffi, "T") == 24 == sizeof(ffi, p) == sizeof(ffi, p[0])
    addr = addressof(p)
    assert addr == addressof(p[0]) == int(ffi.cast("uintptr_t", p)) and addr != 0
    assert ffi.buffer(ffi.cast("unsigned int *", addr), 4)[:] == (3).to_bytes(4, "little")
    with pytest.raises(InvalidArgument):
        new(ffi, "T", nosuchfield=1)
    with pytest.raises(InvalidArgument):
        addressof(ffi.cast("int", 1))
