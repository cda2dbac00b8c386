"""The emulator's gfx11 decoder + disassembler agree with LLVM (llvm-mc-19) on every committed
vector of tests/data/amd/isa/vectors.txt (made by make_vectors.py; see its docstring).

Agreement means: the decoder consumes exactly the words LLVM consumed, and ``disasm`` prints
LLVM's text after one normalisation: runs of whitespace become one space. Nothing else is
rewritten, and a vector that disagrees fails the test.
"""
from __future__ import annotations

import re
from pathlib import Path

from hwdrv.mock.amd.rdna3.decode import decode, disasm
from hwdrv.mock.amd.rdna3.support import supported

VECTORS = Path(__file__).resolve().parent / "data" / "amd" / "isa" / "vectors.txt"


def load_vectors() -> list[tuple[list[int], str]]:
    out = []
    for line in VECTORS.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        hexw, text = line.split("\t")
        out.append(([int(w, 16) for w in hexw.split()], text))
    return out


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip())


VECS = load_vectors()


def test_vectors_cover_every_supported_instruction():
    names = {norm(t).split(" ")[0] for _, t in VECS}
    names |= {n for _, t in VECS if "::" in t for n in [norm(t).split(" :: ")[1].split(" ")[0]]}
    base = {re.sub(r"_(e32|e64|dpp)$", "", n) for n in names}
    want = {n for ops in supported().values() for n in ops.values()}
    missing = sorted(want - base)
    assert not missing, f"{len(missing)} supported instructions have no LLVM vector: {missing[:40]}"


def test_decoder_matches_llvm_mc_on_all_vectors():
    assert len(VECS) >= 2000
    bad = []
    for words, text in VECS:
        try:
            inst = decode(words + [0xFFFFFFFF])    # a following word must not be consumed
            got = disasm(inst)
            size_ok = inst.size == 4 * len(words)
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            got, size_ok = f"<{type(e).__name__}: {e}>", False
        if not size_ok or norm(got) != norm(text):
            bad.append(f"{' '.join(f'{w:08x}' for w in words)}: llvm {text!r} ours {got!r}")
    assert not bad, f"{len(bad)}/{len(VECS)} disagree:\n" + "\n".join(bad[:60])
