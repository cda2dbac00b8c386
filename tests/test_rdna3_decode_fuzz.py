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


def _field_maker():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent / "data" / "amd" / "isa" / "make_vectors.py"
    spec = importlib.util.spec_from_file_location("rdna3_make_vectors", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.fields_for


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_executing_any_supported_instruction_ends_or_faults(seed):
    """One random supported instruction (random operands, random user SGPRs as addresses) then
    s_endpgm: the dispatch completes or raises a MockFault (memory fault, illegal operand...)."""
    import random
    import struct

    from amd_emu_harness import EmuMachine
    from hwdrv.errors import MockFault
    from hwdrv.mock.amd.rdna3.dispatch import dispatch
    from hwdrv.mock.amd.rdna3.support import encode, supported

    r = random.Random(seed)
    sup = supported()
    fmt = r.choice(sorted(f for f in sup if f != "VOPD"))
    op, name = r.choice(sorted(sup[fmt].items()))
    words = encode(fmt, _FIELDS(fmt, op, name, r)) + [r.getrandbits(32)]
    try:
        inst = decode(words)
    except DecodeError:
        return
    m = EmuMachine()
    data, _ = m.alloc(1 << 16)
    code = words[:inst.size // 4] + [0xBFB00000]          # s_endpgm
    pc, _ = m.upload(struct.pack(f"<{len(code)}I", *code))
    user = [data & 0xFFFFFFFF, data >> 32] + [r.getrandbits(32) for _ in range(14)]
    try:
        dispatch(m.mem, pgm_addr=pc, rsrc1=_RSRC1, rsrc2=_RSRC2, rsrc3=0, user_sgprs=user, grid=(1, 1, 1),
                 block=(64, 1, 1), lds_bytes=1024)
    except MockFault:
        pass


def _rsrc(reg: str, **fields) -> int:
    return sum(v << isa.KD_FIELDS[reg][k][0] for k, v in fields.items())


_FIELDS = _field_maker()
_RSRC1 = _rsrc("COMPUTE_PGM_RSRC1", GRANULATED_WORKITEM_VGPR_COUNT=31, FLOAT_DENORM_MODE_32=3,
               FLOAT_DENORM_MODE_16_64=3)                      # 256 VGPRs, IEEE denormals
_RSRC2 = _rsrc("COMPUTE_PGM_RSRC2", USER_SGPR_COUNT=16, ENABLE_SGPR_WORKGROUP_ID_X=1)
