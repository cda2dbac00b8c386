"""Parser: declarations, parameter layout, scoping, and fuzzing (any text either parses or
raises ProgramError, nothing else)."""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hwdrv.errors import ProgramError
from hwdrv.mock.nvidia import ptx

from test_ptx_helpers import DATA

HEAD = ".version 8.0\n.target sm_90\n.address_size 64\n"


def test_param_layout_natural_alignment():
    m = ptx.parse(HEAD + """
.visible .entry k(.param .u8 a, .param .u64 b, .param .u16 c, .param .f32 d, .param .align 16 .b8 e[20],
                  .param .u64 .ptr .global .align 16 f, .param .b8 g[3], .param .f64 h)
{ ret; }
""")
    got = [(p.name, p.type, p.size, p.align, p.offset) for p in m.entries["k"].params]
    assert got == [("a", "u8", 1, 1, 0), ("b", "u64", 8, 8, 8), ("c", "u16", 2, 2, 16), ("d", "f32", 4, 4, 20),
                   ("e", "b8", 20, 16, 32), ("f", "u64", 8, 8, 56), ("g", "b8", 3, 1, 64), ("h", "f64", 8, 8, 72)]
    assert m.entries["k"].param_size == 80


def test_declarations_comments_sections_and_scopes():
    m = ptx.parse(HEAD + """
// a comment
/* a block
   comment */
.extern .shared .align 16 .b8 dyn[];
.global .align 8 .u64 gtab[3] = {1, 2, 3};
.const .f32 cst[2] = {1.5, -2.0};
.visible .entry k(.param .u64 p)
.maxntid 128, 1, 1
{
    .reg .b32 %r<3>;
    .shared .align 8 .b8 s1[10];
    .shared .align 4 .b8 s2[4];
    .local .align 4 .b8 l1[12];
    {
        .reg .b32 %r0;          // shadows the outer %r0
        mov.u32 %r0, 5;
    }
    mov.u32 %r0, 1;
    ret;
}
.section .debug_str { .b8 65, 66, 0 }
""")
    e = m.entries["k"]
    assert e.shared_layout == {"s1": 0, "s2": 12, "dyn": 16} and e.static_shared == 16
    assert e.shared_bytes(100) == 116 and e.local_size == 12
    assert m.variables["gtab"].size == 24 and m.variables["gtab"].init == b"".join(i.to_bytes(8, "little") for i in (1, 2, 3))
    assert m.const_image[:8] == b"\x00\x00\xc0\x3f\x00\x00\x00\xc0"
    regs = [r.name for r in e.function.registers]
    assert regs.count("%r0") == 2                      # two distinct registers
    assert e.maxntid == (128, 1, 1)


def test_all_committed_ptx_parses():
    for f in sorted(DATA.glob("*.ptx")):
        m = ptx.parse(f.read_text())
        assert m.entries, f.name


@pytest.mark.parametrize("text, word", [
    (".version 8.0\n.target sm_90\n.address_size 32\n", "address_size"),
    (HEAD + ".visible .entry k() { .reg .b32 %r; mov.u32 %r, %q; ret; }", "%q"),
    (HEAD + ".visible .entry k() { L: L: ret; }", "twice"),
    (HEAD + ".visible .entry k() { ret; ", "unterminated"),
    (HEAD + ".visible .entry k() { .reg .b32 %r; ld.global.u32 %r, [%r+]; ret; }", "ld.global.u32"),
    (HEAD + ".visible .entry k() { ret; } .visible .entry k() { ret; }", "twice"),
    (HEAD + "@", "unexpected"),
])
def test_errors(text, word):
    with pytest.raises(ProgramError) as ei:
        ptx.parse(text)
    assert word in str(ei.value), str(ei.value)


@pytest.mark.parametrize("body, word", [
    ("add.u32 %r, %r;", "operands"),
    ("mov.u32 %r, 1.5;", "floating-point literal"),
    ("call.uni (x), f, ();", "f"),
])
def test_instructions_that_cannot_run_still_parse(body, word):
    """Well-formed PTX loads; what the interpreter cannot execute is kept for the launch to refuse."""
    m = ptx.parse(HEAD + f".visible .entry k() {{ .reg .b32 %r; .param .b32 x; {body} ret; }}")
    (err,) = m.entries["k"].unsupported
    assert word in err.message and err.function == "k"


_ALPHABET = st.sampled_from(list(".%$_{}[]();,:@!|<>+-*/0123456789abcdefxru \n\t\"=") +
                            [".reg", ".b32", "%r1", ".entry", ".visible", "ld.global.u32", "add.s32", "bra", "ret;",
                             "mov.u32", "0f3F800000", "{", "}", ".param", ".u64", "setp.lt.s32", "%p1", "@%p1",
                             ".shared", ".align", "4", "[%rd1+4]", "0x10", "//", "/*", "*/"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=80))
def test_fuzz_random_tokens(parts):
    text = HEAD + " ".join(parts)
    try:
        ptx.parse(text)
    except ProgramError:
        pass


_SOURCES = [f.read_text() for f in sorted(DATA.glob("*.ptx"))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_SOURCES) - 1), st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_fuzz_mutated_real_ptx(which, seed, nmut):
    rnd = random.Random(seed)
    text = list(_SOURCES[which])
    for _ in range(nmut):
        k = rnd.randrange(len(text))
        op = rnd.randrange(4)
        if op == 0:
            del text[k:k + rnd.randint(1, 20)]
        elif op == 1:
            text.insert(k, rnd.choice(list("{}[];,.%@!|+-0123456789xyz") + ["\n", " .reg ", " bra ", "%r1", "0x"]))
        elif op == 2:
            j = rnd.randrange(len(text))
            text[k], text[j] = text[j], text[k]
        else:
            text[k:k + 1] = list(rnd.choice([".f32", ".u64", ".s8", ".v4", ".rn", ".sat", ".x", "%tid.w", "99999999999999999999"]))
    try:
        ptx.parse("".join(text))
    except ProgramError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_bytes(data):
    try:
        ptx.parse(HEAD + data.decode("latin-1"))
    except ProgramError:
        pass
