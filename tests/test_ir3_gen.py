"""The generated ir3 tables (hwdrv/qcom/gen/ir3_isa.py) and the isaspec generator's C->Python
expression translation."""
from __future__ import annotations

import pytest

from autogen.isaspec import IsaSpecError, c_to_python
from hwdrv.qcom.gen import ir3_isa as G


@pytest.mark.parametrize("c, py", [
    ("{A} == 0", "v('A') == 0"),
    ("!{A} == 0", "(not v('A')) == 0"),          # C: ! binds tighter than ==
    ("({A} != 0) || ({B} != 0) &amp;&amp; {C}".replace("&amp;", "&"),
     "(v('A') != 0) or ((v('B') != 0) and v('C'))"),
    ("{A} | ({B} << 1) + 2", "v('A') | ((v('B') << 1) + 2)"),
    ("{A} << 1 + 2", "v('A') << (1 + 2)"),                       # C: + binds tighter than <<
    ("2ULL << {W}", "2 << v('W')"),
    ("ISA_GPU_ID() >= 600 /* a6xx */", "gpu_id >= 600"),
    ("{A} ? 1 : 0x10", "1 if v('A') else 16"),
])
def test_c_expressions_translate_with_c_precedence(c, py):
    assert c_to_python(c)[0] == py


def test_c_expression_errors_are_loud():
    with pytest.raises(IsaSpecError):
        c_to_python("{A} == ")
    with pytest.raises(IsaSpecError):
        c_to_python("{A} @ 2")


def test_table_shape():
    assert G.GENS == (600, 799)
    assert {s["path"].rsplit("/", 1)[1] for s in G.SOURCES} == {
        "ir3.xml", "ir3-common.xml", *(f"ir3-cat{i}.xml" for i in range(8))}
    for bid, b in G.BITSETS.items():
        match, dontcare, mask = b["pattern"]
        assert match & ~mask == 0 and dontcare & ~mask == 0, bid
        assert b["cases"][-1]["expr"] is None, bid     # the default case comes last
        for c in b["cases"]:
            assert c["expr"] is None or c["expr"] in G.EXPRS, bid
            for f in c["fields"]:
                t = f["type"]
                assert t in G.ENUMS or t in G.ROOTS or t in (
                    "uint", "int", "hex", "float", "bool", "bool_inv", "offset", "uoffset", "branch",
                    "absbranch", "custom", "assert"), (bid, f)
                assert "expr" not in f or f["expr"] in G.EXPRS
    # every instruction leaf pins the category bits 61..63 (qcom.md 3.2)
    for bid in G.ROOTS["#instruction"]:
        assert G.BITSETS[bid]["pattern"][2] >> 61 == 0b111, bid
    # a leaf's gen range lies within GENS' reach and a7xx-only instructions are marked so
    assert G.BITSETS["lock"]["gen"][0] == 700 and G.BITSETS["nop"]["gen"][0] <= 600
