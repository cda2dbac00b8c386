"""ir3 assembler <-> disassembler round trips over every instruction encoding the generated tables
describe, plus whole programs (labels, comments, flag order) and error reporting."""
from __future__ import annotations

import json
import os
import random
import re
import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hwdrv.errors import ProgramError
from hwdrv.qcom import ir3
from hwdrv.qcom.ir3 import tables as T
from hwdrv.qcom.ir3.disasm import decode_one

GENS = (600, 700)


def _leaves(gpu_id: int) -> list[T.Bitset]:
    return [b for b in T.leaves("#instruction") if b.gen[0] <= gpu_id <= b.gen[1]]


def _printable(leaf: T.Bitset) -> bool:
    """Mesa's XML gives the leaf a display template somewhere in its chain (brax has none: Mesa
    cannot print it either)."""
    return any(c.display is not None for b in leaf.chain() for c in b.cases)


def _random_word(leaf: T.Bitset, rng: random.Random, sparse: bool) -> int:
    """The leaf's fixed bits, random bits in all of its fields, nothing in its don't-care bits."""
    bits = rng.getrandbits(64)
    if sparse:   # fewer bits set: more zero offsets, r0, no flags
        bits &= rng.getrandbits(64) & rng.getrandbits(64)
    return (bits & ~leaf.mask) | leaf.match


def _check_round_trip(word: int, gpu_id: int) -> None:
    """``word`` decodes cleanly: assembling its text gives bits that print the same text, and those
    bits are a fixed point of disassemble -> assemble."""
    text, errors = decode_one(word, gpu_id)
    assert not errors
    code = ir3.assemble(text, gpu_id=gpu_id)
    assert [" ".join(t.split()) for t in ir3.disassemble(code, gpu_id=gpu_id)] == [" ".join(text.split())]
    assert ir3.assemble(ir3.disassemble(code, gpu_id=gpu_id)[0], gpu_id=gpu_id) == code


@pytest.mark.parametrize("gpu_id", GENS)
def test_every_instruction_round_trips(gpu_id):
    """Each instruction bitset of the generation: random clean encodings round-trip."""
    rng = random.Random(gpu_id)
    tried = 0
    for leaf in _leaves(gpu_id):
        if not _printable(leaf):
            continue
        clean = 0
        for attempt in range(80):
            word = _random_word(leaf, rng, sparse=attempt % 2 == 1)
            text, errors = decode_one(word, gpu_id)
            if errors or text.startswith("raw"):
                continue
            _check_round_trip(word, gpu_id)
            clean += 1
            if clean == 2:
                break
        assert clean, f"{leaf.id}: no random encoding decoded cleanly"
        tried += 1
    assert tried == sum(_printable(b) for b in _leaves(gpu_id)) > 200


@st.composite
def _instruction(draw):
    gpu_id = draw(st.sampled_from(GENS))
    leaf = draw(st.sampled_from([b for b in _leaves(gpu_id) if _printable(b)]))
    fields = draw(st.integers(0, (1 << 64) - 1))
    if draw(st.booleans()):
        fields &= draw(st.integers(0, (1 << 64) - 1))
    return (fields & ~leaf.mask) | leaf.match, gpu_id


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(_instruction())
def test_random_instructions_round_trip(inst):
    word, gpu_id = inst
    text, errors = decode_one(word, gpu_id)
    assume(not errors and not text.startswith("raw"))
    _check_round_trip(word, gpu_id)


def test_program_with_labels_comments_and_flags():
    src = """
        ; computerator-style kernel: branch over a store
        cmps.u.gt p0.x, r0.x, 0
        br !p0.x, #skip        // forward branch to a label
        mov.u32u32 r1.x, 0x12345678
    skip:
        (jp)(rpt5)nop
    back:
        nop(sy)                ; flag written after the mnemonic
        (jp)(sy)nop            ; flags in another order
        br p0.x, #back
        end
    """
    code = ir3.assemble(src)
    assert len(code) == 8 * 8
    assert ir3.disassemble(code) == [
        "cmps.u.gt p0.x, r0.x, 0", "br !p0.x, #2", "mov.u32u32 r1.x, 0x12345678", "(jp)(rpt5)nop",
        "(sy)nop", "(sy)(jp)nop", "br p0.x, #-2", "end"]
    # the two branches are the words Mesa's vectors give for these encodings
    assert struct.unpack_from("<Q", code, 8)[0] == 0x00900000_00000002
    assert struct.unpack_from("<Q", code, 48)[0] == 0x00800000_fffffffe


def test_immediates_and_operands():
    lines = ["mov.f32f32 r0.x, (0.5)", "mov.f16f16 hr1.y, h(0.625)", "mov.s16s16 hr1.y, -1",
             "mov.u32u32 r0.y, 0x00000010", "add.f r1.w, r2.x, (neg)(pi)", "mov.s32s32 r<a0.x + 4>, r2.x",
             "(ul)mov.s32s32 r1.x, c<a0.x + 17>", "stg.a.u32 g[r1.x+r0.y<<4+2<<2], r2.x, 1",
             "stp.u32 p[r0.x + 0], r1.x, 1"]
    assert ir3.disassemble(ir3.assemble("\n".join(lines))) == [
        "mov.f32f32 r0.x, (0.500000)", "mov.f16f16 hr1.y, h(0.625000)", "mov.s16s16 hr1.y, -1",
        "mov.u32u32 r0.y, 16", "add.f r1.w, r2.x, (neg)(pi)", "mov.s32s32 r<a0.x + 4>, r2.x",
        "(ul)mov.s32s32 r1.x, c<a0.x + 17>", "stg.a.u32 g[r1.x+r0.y<<4+2<<2], r2.x, 1",
        "stp.u32 p[r0.x], r1.x, 1"]


def test_a7xx_only_instruction_needs_a7xx():
    assert ir3.disassemble(ir3.assemble("lock", gpu_id=700), gpu_id=700) == ["lock"]
    with pytest.raises(ProgramError, match="line 1"):
        ir3.assemble("lock", gpu_id=600)


@pytest.mark.parametrize("src, where, what", [
    ("nop\nfrobnicate r0.x, r1.x\n", "line 2, column 1", "expected"),
    ("add.f r0.x, r1.x\n", "line 1", "expected"),
    ("mov.u32u32 r0.x, r1.x\n  add.f r0.x, r1.x, bogus\n", "line 2, column 21", "operand"),
    ("mov.u32u32 r99.x, r0.x\n", "line 1", "expected"),
    ("br p0.x, #nowhere\n", "line 1", "expected"),
    ("@localsize 1, 1, 1\nnop\n", "line 1", "directive"),
    ("a:\na:\nnop\n", "line 2", "defined twice"),
])
def test_errors_name_line_column_and_expectation(src, where, what):
    with pytest.raises(ProgramError) as e:
        ir3.assemble(src)
    assert where in str(e.value) and what in str(e.value)


@pytest.mark.parametrize("src", [
    "mov.f32f32 hr0.x, r1.x",      # a f32 destination cannot be a half register
    "add.f hr0.x, r1.x, hr2.x",    # cat2 sources share one precision bit
    "mova a0.x, r0.x",             # mova reads a half register
])
def test_unencodable_combinations_are_refused(src):
    with pytest.raises(ProgramError, match="no encoding of gpu_id 600 prints back as written"):
        ir3.assemble(src)


def test_disassemble_rejects_partial_instruction():
    with pytest.raises(ProgramError, match="multiple of 8"):
        ir3.disassemble(b"\0" * 12)


def test_unknown_encoding_prints_as_mesa_raw():
    assert ir3.disassemble(b"\xff" * 8) == ["raw 0xFFFFFFFFFFFFFFFF"]


_SRC = os.environ.get("HWDRV_AUTOGEN_SRC")
_EXAMPLES = os.path.join(_SRC or "", "mesa-25.0.7", "src", "freedreno", "computerator", "examples")


@pytest.mark.skipif(not os.path.isdir(_EXAMPLES),
                    reason="set HWDRV_AUTOGEN_SRC to the pinned source trees (Mesa 25.0.7) to assemble "
                           "Mesa's computerator examples")
def test_mesa_computerator_examples_assemble():
    names = sorted(n for n in os.listdir(_EXAMPLES) if n.endswith(".asm"))
    assert len(names) == 8
    for name in names:
        src = "".join(line for line in open(os.path.join(_EXAMPLES, name)) if not line.lstrip().startswith("@"))
        code = ir3.assemble(src)
        n_instr = sum(1 for line in src.splitlines()
                      if line.split(";")[0].strip() and not line.split(";")[0].strip().endswith(":"))
        assert len(code) == 8 * n_instr, name
        assert ir3.assemble("\n".join(ir3.disassemble(code))) == code, name


_VECTORS = json.load(open(os.path.join(os.path.dirname(__file__), "data", "qcom", "ir3", "mesa_disasm_vectors.json")))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_VECTORS["vectors"]), st.integers(0, 200), st.sampled_from("0123456789abcxyzwhrc.,()[]<>+-#! "),
       st.integers(0, 2))
def test_mutated_lines_fail_cleanly_or_round_trip(v, at, ch, op):
    """An edited line either is an instruction (whose encoding prints back as something that
    assembles to the same bits) or raises ProgramError; nothing else escapes. Mesa prints float
    immediates with %f, so a float written with more digits (0.0000001) prints back rounded: then
    the printed text must be a fixed point instead."""
    s = v["text"]
    at %= len(s) + 1
    s = [s[:at] + ch + s[at:], s[:at] + s[at + 1:], s[:at] + ch + s[at + 1:]][op]
    try:
        code = ir3.assemble(s, gpu_id=v["gpu_id"])
    except ProgramError as e:
        assert str(e).startswith("line 1")
        return
    text = ir3.disassemble(code, gpu_id=v["gpu_id"])[0]
    if text.startswith("raw"):
        # Mesa prints a word with no instruction as "raw" + the low and high words unpadded,
        # which is ambiguous (docs/ir3.md); such words are outside the round-trip property, as in
        # test_random_instructions_round_trip. They must still print as raw again:
        assert ir3.disassemble(ir3.assemble(text, gpu_id=v["gpu_id"]), gpu_id=v["gpu_id"])[0].startswith("raw")
        return
    again = ir3.assemble(text, gpu_id=v["gpu_id"])
    if again != code:
        assert re.search(r"\d\.\d{6}", text), f"{s!r} -> {text!r} does not assemble back to the same bits"
        assert ir3.disassemble(again, gpu_id=v["gpu_id"]) == [text]


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=8, max_size=8), st.sampled_from(GENS))
def test_any_word_disassembles(data, gpu_id):
    (line,) = ir3.disassemble(data, gpu_id=gpu_id)
    assert line
