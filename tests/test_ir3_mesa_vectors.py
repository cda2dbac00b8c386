"""ir3 disassembler and assembler against Mesa's own test vectors (src/freedreno/ir3/tests/disasm.c of
the pinned Mesa 25.0.7, extracted into tests/data/qcom/ir3/mesa_disasm_vectors.json by
tests/data/qcom/ir3/extract_vectors.py): every a6xx and a7xx entry must disassemble to Mesa's text and
assemble back to Mesa's bits, as Mesa's own test demands of Mesa."""
from __future__ import annotations

import json
import os
import struct
import sys

import pytest

from autogen.manifest import IR3_DISASM_TEST
from hwdrv.qcom import ir3

DATA = os.path.join(os.path.dirname(__file__), "data", "qcom", "ir3")
VECTORS = json.load(open(os.path.join(DATA, "mesa_disasm_vectors.json")))
SRC = os.environ.get("HWDRV_AUTOGEN_SRC")


def _word(v: dict) -> bytes:
    return struct.pack("<Q", int(v["hex"].replace("_", ""), 16))


def _id(v: dict) -> str:
    return f"{v['gpu_id'] // 100}xx-{v['hex']}"


def _ws(s: str) -> str:
    return " ".join(s.split())


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=_id)
def test_disassembles_as_mesa(v):
    assert [_ws(t) for t in ir3.disassemble(_word(v), gpu_id=v["gpu_id"])] == [_ws(v["text"])]


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=_id)
def test_assembles_to_mesa_bits(v):
    assert ir3.assemble(v["text"], gpu_id=v["gpu_id"]).hex() == _word(v).hex()


def test_vector_file_is_the_pinned_mesa_test():
    path, sha = IR3_DISASM_TEST
    assert VECTORS["source"] == {"repo": "mesa/mesa", "tag": "mesa-25.0.7", "path": path, "sha256": sha}
    by_gen = {g: sum(v["gpu_id"] == g for v in VECTORS["vectors"]) for g in (600, 700)}
    assert by_gen == {600: 276, 700: 37}
    assert "excluded" not in VECTORS    # nothing a6xx/a7xx is left out


@pytest.mark.skipif(not SRC or not os.path.exists(os.path.join(SRC or "", "mesa-25.0.7", IR3_DISASM_TEST[0])),
                    reason="set HWDRV_AUTOGEN_SRC to the pinned source trees to re-extract the vectors")
def test_vector_file_matches_re_extraction():
    sys.path.insert(0, DATA)
    import extract_vectors
    assert extract_vectors.extract(os.path.join(SRC, "mesa-25.0.7", IR3_DISASM_TEST[0])) == VECTORS
