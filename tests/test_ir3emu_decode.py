"""The emulator's own ir3 decoder (hwdrv.mock.qcom.ir3emu.decode, built on the generated isaspec
tables, not on the backend's disassembler) against Mesa's disassembler test vectors
(src/freedreno/ir3/tests/disasm.c, extracted to tests/data/qcom/ir3/mesa_disasm_vectors.json), and
fuzzed: any 64-bit word decodes or raises DecodeError, never anything else."""
from __future__ import annotations

import json
import os
import re
import struct

import pytest
from hypothesis import given, settings, strategies as st

from hwdrv.mock.qcom.ir3emu.decode import DecodeError, decode_word
from hwdrv.mock.qcom.ir3emu.program import ShaderFault, build

_VEC = json.load(open(os.path.join(os.path.dirname(__file__), "data", "qcom", "ir3", "mesa_disasm_vectors.json")))
A6XX = [v for v in _VEC["vectors"] if v["gpu_id"] == 600]
_FLAGS = re.compile(r"^(\((sy|ss|jp|ul|sat|eq|rpt\d|nop\d)\)\s*)+")


def _word(v) -> int:
    hi, lo = v["hex"].split("_")
    return (int(hi, 16) << 32) | int(lo, 16)


def _mnemonic(text: str) -> str:
    return _FLAGS.sub("", text.strip()).split()[0]


def test_every_a6xx_vector_decodes_to_mesas_instruction():
    assert len(A6XX) > 200
    bad = []
    for v in A6XX:
        want = _mnemonic(v["text"])
        if want == "raw":            # Mesa cannot decode it either
            with pytest.raises(DecodeError):
                decode_word(_word(v))
            continue
        if want.startswith("ldc.") and ".k." in want:      # ldc.k prints its load size before .k
            want = "ldc.k"
        try:
            got = decode_word(_word(v)).name
        except DecodeError as e:
            bad.append((v["text"], str(e)))
            continue
        ok = want.startswith(("mov", "cov", "mova", "swz", "gat", "sct", "movmsk")) if got.startswith("mov-") \
            or got in ("swz", "gat", "sct", "movmsk") else (want == got or want.startswith(got + "."))
        if not ok:
            bad.append((v["text"], got))
    assert not bad, bad[:10]


@pytest.mark.parametrize("hexword,reads,writes", [
    ("63820005_10315030", {(4, False)}, {(5, False)}),                     # mad.f32 r1.y, (neg)c12.x, r1.x, c12.y
    ("c0ca0505_03800042", {(2, False), (3, False), (33, False), (34, False), (35, False)}, set()),  # stg.s32 g[r0.z+5], r8.y, 3
    ("20150000_00000000", {(0x0, False)}, {(0x0, True)}),     # cov.s32s16 hr0.x, r0.x
])
def test_operands_of_known_encodings(hexword, reads, writes):
    hi, lo = hexword.split("_")
    op = build(struct.pack("<Q", (int(hi, 16) << 32) | int(lo, 16)), merged=True).ops[0]
    assert {(n, h) for n, h, *_ in op.reads} == reads
    assert {(n, h) for n, h, _ in op.writes} == writes


_NEAR_VALID = st.builds(lambda v, flips: _word(v) ^ flips, st.sampled_from(A6XX),
                       st.lists(st.integers(0, 63), max_size=4).map(lambda bits: sum(1 << b for b in set(bits))))


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.integers(0, 2**64 - 1), _NEAR_VALID))
def test_any_word_decodes_or_fails_cleanly(word):
    try:
        s = decode_word(word)
    except DecodeError:
        return
    assert isinstance(s.name, str)
    op = build(struct.pack("<Q", word), merged=True).ops[0]
    assert op.pc == 0 and callable(op.run)


def test_an_undecodable_word_becomes_a_faulting_op():
    op = build(b"\xff" * 8, merged=True).ops[0]
    with pytest.raises(ShaderFault, match="illegal instruction"):
        op.run(None, None)


def test_programs_are_decoded_once_per_address_and_contents():
    from hwdrv.mock.qcom.ir3emu.program import load_program
    code = struct.pack("<2Q", 0, 0x03000000_00000000)          # nop; end
    p = load_program(0x1000, code, True)
    assert load_program(0x1000, code, True) is p
    assert load_program(0x2000, code, True) is not p
    assert load_program(0x1000, code[:8] + struct.pack("<Q", 0), True) is not p
    assert [op.name for op in p.ops] == ["nop", "end"]
