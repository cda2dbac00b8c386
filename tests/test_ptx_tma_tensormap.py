"""CUtensorMap encodings made by libcuda's cuTensorMapEncodeTiled on an H100 (driver 580.159.04),
committed as tests/data/nvidia/tmap_libcuda_580.159.04.jsonl (measured data, see
shared/reference/nvidia-perf.md section 2.2), against our two readers and writers of the format:
the mock's decoder must give back the parameters libcuda was called with, and the public
encoder (hwdrv.nvidia.tensormap) must reproduce every one of the 143 objects bit for bit.
The encoder's parameter checks (the driver API's documented rules) are tested here too."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from hwdrv.mock.nvidia.ptx import IllegalInstruction
from hwdrv.mock.nvidia.ptx.tensormap import decode_tensor_map

from hwdrv.errors import InvalidArgument
from hwdrv.nvidia.tensormap import CU_DATA_TYPES, cu_encode_tiled, encode_tiled

DUMP = Path(__file__).resolve().parent / "data" / "nvidia" / "tmap_libcuda_580.159.04.jsonl"

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


# ---- the public encoder ----------------------------------------------------------------------
def _encode_record(rec: dict) -> bytes:
    return cu_encode_tiled(rec["addr"], rec["dtype"], rec["dims"], rec["strides"][:rec["rank"] - 1], rec["box"],
                           rec["estr"], rec["interleave"], rec["swizzle"], rec["l2"], rec["oob"])


@pytest.mark.parametrize("rec", VECTORS)
def test_encoder_matches_committed_vectors(rec):
    assert _encode_record(rec).hex() == rec["hex"]


def test_encoder_matches_every_libcuda_encoding():
    recs = _dump_records()
    bad = [r["name"] for r in recs if _encode_record(r).hex() != r["hex"]]
    assert not bad, f"{len(bad)}/{len(recs)} encodings differ from libcuda's: {bad}"


def test_encoder_round_trips_through_the_mock_decoder():
    m = decode_tensor_map(encode_tiled(0x7F0000001000, "bf16", [4096, 300], [8192], [64, 128],
                                       swizzle=128, l2_promotion=256))
    assert (m.elemtype, list(m.dims), list(m.strides), list(m.box), m.swizzle, m.l2_promotion) == \
        ("bf16", [4096, 300], [8192], [64, 128], 128, 256)


GOOD = dict(address=0x10000, dtype="f16", dims=[1024, 512], strides=[2048], box=[64, 32])


@pytest.mark.parametrize("change, message", [
    (dict(box=[64, 257]), "box\\[1\\] = 257 must be 1..256"),
    (dict(box=[0, 32]), "box\\[0\\] = 0"),
    (dict(box=[12, 32]), "box\\[0\\] \\* element size = 24 bytes must be a multiple of 16"),
    (dict(box=[128, 32], swizzle=128), "inner box row \\(256 bytes\\) must fit the 128-byte swizzle"),
    (dict(box=[32, 32], swizzle=32), "inner box row \\(64 bytes\\) must fit the 32-byte swizzle"),
    (dict(strides=[2040]), "strides\\[0\\] = 2040 .* multiple of 16"),
    (dict(strides=[1 << 40]), "below 2\\^40"),
    (dict(address=0x10008), "global address 0x10008 must be 16-byte aligned"),
    (dict(dims=[0, 512]), "dims\\[0\\] = 0"),
    (dict(dims=[(1 << 32) + 1, 512]), "dims\\[0\\]"),
    (dict(dims=[8] * 6, strides=[16] * 5, box=[8] * 6), "rank 6 must be 1..5"),
    (dict(strides=[]), "takes 2 box sizes, 2 element strides and 1 byte strides"),
    (dict(element_strides=[1, 9]), "element_strides\\[1\\] = 9"),
    (dict(swizzle=48), "swizzle 48"),
    (dict(interleave=16), "interleaved map needs rank >= 3"),
    (dict(dtype="u16", oob_nan=True), "NaN out-of-bound fill needs a float element type"),
    (dict(dtype="f8"), "element type 'f8'"),
])
def test_encoder_refuses_what_the_driver_api_forbids(change, message):
    with pytest.raises(InvalidArgument, match=message):
        encode_tiled(**{**GOOD, **change})


def test_encoder_accepts_the_limits():
    encode_tiled(**{**GOOD, "box": [64, 256], "swizzle": 128})          # 128-byte rows, 256 of them
    encode_tiled(**{**GOOD, "dims": [1 << 32, 512], "strides": [(1 << 40) - 16]})
    assert len(CU_DATA_TYPES) == 13
