"""Mutation fuzzing of the code-object loader and the MessagePack decoder: any input either loads
or raises a clean ProgramError -- never another exception, never a hang."""
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwdrv.amd import codeobj
from hwdrv.amd.metadata import parse, unpack
from hwdrv.errors import ProgramError

KDIR = Path(__file__).parent / "data" / "amd" / "kernels"
SEEDS = [(KDIR / n).read_bytes() for n in ("wmma.hsaco", "loops.hsaco", "elementwise.o")]
NOTES = []
for data in SEEDS[:2]:
    # the note payload starts with the msgpack map header; before it: namesz, descsz, type, "AMDGPU\0\0"
    start = data.index(b"\x83\xaeamdhsa.kernels")
    size = int.from_bytes(data[start - 16:start - 12], "little")
    NOTES.append(data[start:start + size])
    parse(NOTES[-1])


def _mutate(data: bytes, edits, cut) -> bytes:
    b = bytearray(data)
    for pos, val in edits:
        b[pos % len(b)] = val
    return bytes(b[:cut]) if cut else bytes(b)


def _header_biased(n):
    # most structure lives in the first 512 bytes (ELF/program headers, note) and the section headers at the end
    return st.one_of(st.integers(0, 511), st.integers(0, n - 1), st.integers(max(0, n - 2048), n - 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_code_objects_load_or_raise_program_error(data):
    seed = data.draw(st.sampled_from(SEEDS))
    edits = data.draw(st.lists(st.tuples(_header_biased(len(seed)), st.integers(0, 255)), min_size=1, max_size=8))
    cut = data.draw(st.one_of(st.just(0), st.integers(1, len(seed))))
    try:
        co = codeobj.load(_mutate(seed, edits, cut))
    except ProgramError:
        return
    for k in co.kernels.values():       # whatever loads is self-consistent
        assert 0 <= k.kd_offset and k.kd_offset + 64 <= co.size and 0 <= k.code_offset < co.size
    co.relocated(0)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_metadata_notes_parse_or_raise_program_error(data):
    note = data.draw(st.sampled_from(NOTES))
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(note) - 1), st.integers(0, 255)), min_size=1, max_size=6))
    cut = data.draw(st.one_of(st.just(0), st.integers(1, len(note))))
    try:
        parse(_mutate(note, edits, cut))
    except ProgramError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_unpack_or_raise_program_error(blob):
    try:
        unpack(blob)
    except ProgramError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_unpack_inverts_an_independent_encoder(value):
    """Round trip against a straightforward encoder written from the MessagePack spec's format table."""
    assert unpack(_encode(value)) == value


def _encode(v) -> bytes:
    import struct
    if v is None:
        return b"\xc0"
    if v is True or v is False:
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack(">b", v)
        return b"\xcf" + struct.pack(">Q", v) if v >= 0 else b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        raw = v.encode()
        return (bytes([0xA0 | len(raw)]) if len(raw) < 32 else b"\xda" + struct.pack(">H", len(raw))) + raw
    if isinstance(v, list):
        return b"\xdc" + struct.pack(">H", len(v)) + b"".join(_encode(x) for x in v)
    return b"\xde" + struct.pack(">H", len(v)) + b"".join(_encode(k) + _encode(x) for k, x in v.items())
