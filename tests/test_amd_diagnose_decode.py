"""The AMD hang-report decoders against sources nobody on the project wrote: the PM4 decoder on
the gfx11 packet words tinygrad / amdgpu emit (reference/amd.md 2.4, the same words
test_amd_backend.py records), the instruction describer on llvm-mc 19's gfx1100 disassembly
(tests/data/amd/isa/vectors.txt: mnemonic and size of every vector), and fuzzing of both."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwdrv.amd import pm4decode as PD
from hwdrv.amd.disasm import describe, operand
from hwdrv.errors import InvalidArgument

VECTORS = Path(__file__).resolve().parent / "data" / "amd" / "isa" / "vectors.txt"

# gfx11 compute packets as tinygrad's AMDComputeQueue / amdgpu's gfx_v11_0.c emit them
WAIT_GEQ = [0xC0053C00, 0x15, 0x1000, 0, 5, 0xFFFFFFFF, 4]          # WAIT_REG_MEM mem >= 5, poll 4
RELEASE = [0xC0064900, 0x0070F514, 0x20000000, 0x22334455, 0x11, 7, 0, 0]   # RELEASE_MEM EOP, 32-bit data
DISPATCH = [0xC0031500, 3, 2, 1, 0x8005]                              # DISPATCH_DIRECT 3x2x1, wave32
PGM = [0xC0027600, 0x20C, 1, 2]                                       # SET_SH_REG COMPUTE_PGM_LO/HI
PARTIAL_FLUSH = [0xC0004600, 0x407]                                   # EVENT_WRITE CS_PARTIAL_FLUSH


def test_packets_decode_with_their_nvd_names_and_fields():
    pk = PD.decode_stream(WAIT_GEQ + RELEASE + DISPATCH + PGM + PARTIAL_FLUSH)
    assert [p.name for p in pk] == ["WAIT_REG_MEM", "RELEASE_MEM", "DISPATCH_DIRECT", "SET_SH_REG", "EVENT_WRITE"]
    assert [p.pos for p in pk] == [0, 7, 15, 20, 24]
    w, r, d, s, e = (p.text for p in pk)
    assert "FUNCTION=5" in w and "MEM_SPACE=1" in w and "address=0x1000" in w and "REFERENCE=0x5" in w \
        and "POLL_INTERVAL=4" in w and ">= reference" in w
    assert "EVENT_TYPE=20" in r and "EVENT_INDEX=5" in r and "DATA_SEL=1" in r and "INT_SEL=0" in r \
        and "address=0x1122334455" in r and "DATA=0x7" in r
    assert "DIM_X=3 DIM_Y=2 DIM_Z=1" in d and "CS_W32_EN=1" in d and "COMPUTE_SHADER_EN=1" in d
    assert s == "SET_SH_REG COMPUTE_PGM_LO=0x1, COMPUTE_PGM_HI=0x2"
    assert e == "EVENT_WRITE EVENT_TYPE=7 EVENT_INDEX=4"


def test_ring_marks_the_packet_at_the_read_pointer():
    words = PGM + DISPATCH + RELEASE + WAIT_GEQ
    packets, stalled = PD.decode_ring(words + [0] * 64, rptr=len(PGM), wptr=len(words))
    assert stalled is not None and stalled.name == "DISPATCH_DIRECT" and stalled.pos == 4
    assert [p.name for p in packets] == ["SET_SH_REG", "DISPATCH_DIRECT", "RELEASE_MEM", "WAIT_REG_MEM"]
    assert PD.decode_ring(words, rptr=len(words), wptr=len(words))[1] is None     # drained


def test_wrapped_ring_resynchronises_on_the_read_pointer():
    stream = (RELEASE + DISPATCH) * 3              # 39 dwords through a 16-dword ring
    ndw = 16
    ring = [0] * ndw
    for i, w in enumerate(stream):
        ring[i % ndw] = w
    rptr = len(stream) - len(DISPATCH)             # stopped at the last DISPATCH_DIRECT
    packets, stalled = PD.decode_ring(ring, rptr, len(stream))
    assert stalled.name == "DISPATCH_DIRECT" and stalled.pos == rptr and "DIM_X=3" in stalled.text
    assert packets[-2].name == "RELEASE_MEM"


def test_bad_headers_and_short_packets_fail_loudly():
    with pytest.raises(InvalidArgument, match="type-0"):
        PD.decode_stream([0x00001234])
    with pytest.raises(InvalidArgument, match="WAIT_REG_MEM at dword 0x0 .* needs 7 dwords, only 3"):
        PD.decode_stream(WAIT_GEQ[:3])
    with pytest.raises(InvalidArgument, match="do not fit"):
        PD.decode_ring([0] * 8, 9, 4)


def test_decode_cli_reads_a_saved_ring_dump(tmp_path):
    f = tmp_path / "ring.bin"
    f.write_bytes(b"".join(w.to_bytes(4, "little") for w in PGM + DISPATCH + WAIT_GEQ + [0] * 20))
    out = subprocess.run([sys.executable, "-m", "hwdrv", "decode", "--vendor", "amd", str(f)],
                         capture_output=True, text=True, check=True).stdout
    assert "36 dwords, packets in the first 16" in out
    assert "0x000004  DISPATCH_DIRECT DIM_X=3" in out and "0x000009  WAIT_REG_MEM FUNCTION=5" in out
    (tmp_path / "odd.bin").write_bytes(b"\x00" * 6)
    r = subprocess.run([sys.executable, "-m", "hwdrv", "decode", "--vendor", "amd", str(tmp_path / "odd.bin")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "not a whole number of dwords" in r.stderr


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=40))
def test_fuzz_pm4_decoder_decodes_or_raises_invalid_argument(words):
    try:
        pk = PD.decode_stream(words)
    except InvalidArgument:
        return
    assert sum(p.size for p in pk) == len(words)


def _llvm_vectors():
    for line in VECTORS.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        hexw, text = line.split("\t")
        yield [int(w, 16) for w in hexw.split()], re.sub(r"\s+", " ", text.strip())


def _base(name: str) -> str:
    return re.sub(r"_(e32|e64|dpp)\b", "", name)


def test_describer_matches_llvm_mc_mnemonic_and_size_on_every_vector():
    vecs = list(_llvm_vectors())
    assert len(vecs) >= 5000
    bad = []
    for words, text in vecs:
        d = describe(words + [0xFFFFFFFF])
        first = text.split(" ")[0]
        llvm = f"{first} :: {text.split(' :: ')[1].split(' ')[0]}" if "::" in text else first
        if _base(d.name) != _base(llvm) or d.size != 4 * len(words):
            bad.append(f"{' '.join(f'{w:08x}' for w in words)}: llvm {text!r}, ours {d.name} ({d.size} bytes)")
    assert not bad, f"{len(bad)}/{len(vecs)} disagree:\n" + "\n".join(bad[:40])


def test_operands_are_named_like_llvm():
    assert [operand(v) for v in (5, 106, 124, 125, 126, 128, 129, 193, 240, 256 + 7)] == \
        ["s5", "vcc_lo", "null", "m0", "exec_lo", "0", "1", "-1", "0.5", "v7"]
    d = describe([0xBF900002])           # llvm-mc 19 (vectors.txt: bf90002f is s_trap 47): s_trap 2
    assert d.name == "s_trap" and d.text == "s_trap simm16=2" and d.size == 4


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=3))
def test_fuzz_describer_never_raises(words):
    d = describe(words)
    assert d.size in (4, 8, 12) and d.text
