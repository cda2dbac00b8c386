"""Hypothesis fuzzing of the gfx11 decoder, disassembler and instruction compiler: arbitrary words
either decode or raise DecodeError; a decoded instruction prints (or raises DecodeError) and
compiles to a closure or raises Unsupported — never any other exception."""
from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from hwdrv.amd.gen import rdna3_isa as isa
from hwdrv.mock.amd.rdna3.decode import DecodeError, decode, disasm
from hwdrv.mock.amd.rdna3.dispatch import _COMPILERS
from hwdrv.mock.amd.rdna3.faults import Unsupported

_PREFIXES = [val for mask, val, _, _ in isa.FORMATS.values()]
word = st.integers(0, 2 ** 32 - 1)
# bias the first word towards known encodings: a format's fixed bits OR random low bits
first = st.one_of(word, st.tuples(st.sampled_from(_PREFIXES), st.integers(0, 2 ** 26 - 1)).map(lambda t: t[0] | t[1]))


@settings(max_examples=800, deadline=None)
@given(w0=first, rest=st.lists(word, min_size=0, max_size=3))
def test_decode_disasm_compile_never_crash(w0, rest):
    words = [w0] + rest
    try:
        inst = decode(words)
    except DecodeError:
        return
    assert 4 <= inst.size <= 4 * len(words)
    try:
        assert isinstance(disasm(inst), str)
    except DecodeError:
        pass
    try:
        _COMPILERS[inst.fmt](inst, SimpleNamespace(mem=None, pgm_addr=0))
    except Unsupported:
        pass
