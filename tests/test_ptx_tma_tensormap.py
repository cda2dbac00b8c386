"""The mock's CUtensorMap decoder against 143 encodings made by libcuda's cuTensorMapEncodeTiled
on an H100 (driver 580.159.04): decoding each ``hex`` must give back the parameters libcuda was
called with. The dump lives beside the repository (shared/reference/data/, see
nvidia-perf.md section 2.2); five of its records are kept here as vectors so the test also runs
without it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from hwdrv.mock.nvidia.ptx import IllegalInstruction
from hwdrv.mock.nvidia.ptx.tensormap import decode_tensor_map

DUMP = Path(__file__).resolve().parents[2] / "shared" / "reference" / "data" / "tmap_libcuda_580.159.04.jsonl"

# CUtensorMapDataType (CUDA driver API, cuda.h) -> the element-type name the decoder reports
CU_DTYPES = ["u8", "u16", "u32", "s32", "u64", "s64", "f16", "f32", "f64", "bf16", "f32.ftz", "tf32", "tf32.ftz"]
CU_SWIZZLE_BYTES = [0, 32, 64, 128]       # CU_TENSOR_MAP_SWIZZLE_NONE/32B/64B/128B
CU_INTERLEAVE_BYTES = [0, 16, 32]         # CU_TENSOR_MAP_INTERLEAVE_NONE/16B/32B
CU_L2_BYTES = [0, 64, 128, 256]           # CU_TENSOR_MAP_L2_PROMOTION_NONE/64B/128B/256B

# Records copied verbatim from tmap_libcuda_580.159.04.jsonl (by name)
VECTORS = [
    {"name": "base", "dtype": 6, "rank": 2, "addr": 140317084876800, "dims": [1024, 512], "strides": [2048], "box": [64, 32], "estr": [1, 1], "interleave": 0, "swizzle": 0, "l2": 0, "oob": 0, "hex": "0000001e9e7f0000100300008000000000000000000000000000000000000000ff030000ff0100000000000000000000000000000000003f1f0000000000000000100000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    {"name": "rank=5", "dtype": 6, "rank": 5, "addr": 140317084876800, "dims": [1024, 512, 7, 5, 3], "strides": [2048, 1048576, 7340032, 36700160], "box": [64, 32, 2, 3, 1], "estr": [1, 1, 1, 1, 1], "interleave": 0, "swizzle": 0, "l2": 0, "oob": 0, "hex": "0000001e9e7f0000400300008000000000000100000007000000230000000000ff030000ff0100000600000004000000020000000000003f1f0102000000000000600000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    {"name": "dtype=12", "dtype": 12, "rank": 2, "addr": 140317084876800, "dims": [1024, 512], "strides": [4096], "box": [64, 32], "estr": [1, 1], "interleave": 0, "swizzle": 0, "l2": 0, "oob": 0, "hex": "0000001e9e7f0000100401000001000000000000000000000000000000000000ff030000ff0100000000000000000000000000000000003f1f0000000000000000200000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    {"name": "oob=1", "dtype": 6, "rank": 2, "addr": 140317084876800, "dims": [1024, 512], "strides": [2048], "box": [64, 32], "estr": [1, 1], "interleave": 0, "swizzle": 0, "l2": 0, "oob": 1, "hex": "0000001e9e7f0000108300008000000000000000000000000000000000000000ff030000ff0100000000000000000000000000000000003f1f0000000000000000100000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    {"name": "gemm_n4096_rows64", "dtype": 9, "rank": 2, "addr": 140317084876800, "dims": [4096, 4096], "strides": [8192], "box": [64, 64], "estr": [1, 1], "interleave": 0, "swizzle": 3, "l2": 2, "oob": 0, "hex": "0000001e9e7f0000106504000002000000000000000000000000000000000000ff0f0000ff0f00000000000000000000000000000000003f3f0000000000000000200000000000000004000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
]


def _expect(rec: dict, got) -> None:
    rank = rec["rank"]
    assert got.address == rec["addr"]
    assert got.rank == rank
    assert got.elemtype == CU_DTYPES[rec["dtype"]]
    assert list(got.dims) == rec["dims"]
    assert list(got.strides) == rec["strides"][:rank - 1]
    assert list(got.box) == rec["box"]
    assert list(got.element_strides) == rec["estr"]
    assert got.interleave == CU_INTERLEAVE_BYTES[rec["interleave"]]
    assert got.swizzle == CU_SWIZZLE_BYTES[rec["swizzle"]]
    assert got.l2_promotion == CU_L2_BYTES[rec["l2"]]
    assert got.oob_nan == bool(rec["oob"])


@pytest.mark.parametrize("rec", VECTORS)
def test_decode_committed_vectors(rec):
    _expect(rec, decode_tensor_map(bytes.fromhex(rec["hex"])))


def _dump_records() -> list[dict]:
    if not DUMP.exists():
        pytest.skip(f"libcuda tensor-map dump not present at ../shared/reference/data/{DUMP.name}")
    recs = [json.loads(line) for line in DUMP.read_text().splitlines() if line.strip()]
    return [r for r in recs if r.get("kind") == "enc" and r.get("rc") == 0]


def test_decode_every_libcuda_encoding():
    recs = _dump_records()
    assert len(recs) == 143
    for rec in recs:
        try:
            _expect(rec, decode_tensor_map(bytes.fromhex(rec["hex"])))
        except AssertionError as exc:
            raise AssertionError(f"record {rec['name']}: {exc}") from None


def test_bad_maps_fault():
    raw = bytearray(bytes.fromhex(VECTORS[0]["hex"]))
    with pytest.raises(IllegalInstruction, match="128 bytes"):
        decode_tensor_map(bytes(raw[:64]))
    bad = bytearray(raw)
    bad[8] |= 0x01                                   # reserved bits 64-67
    with pytest.raises(IllegalInstruction, match="reserved"):
        decode_tensor_map(bytes(bad))
    bad = bytearray(raw)
    bad[8] = (bad[8] & 0x8F) | (5 << 4)              # rank field 5 -> rank 6
    with pytest.raises(IllegalInstruction, match="rank 6"):
        decode_tensor_map(bytes(bad))


@given(st.binary(min_size=128, max_size=128))
def test_decoder_never_crashes(raw):
    try:
        m = decode_tensor_map(raw)
    except IllegalInstruction:
        return
    assert 1 <= m.rank <= 5 and len(m.dims) == m.rank and len(m.strides) == m.rank - 1
