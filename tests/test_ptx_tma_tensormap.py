"""The mock's CUtensorMap decoder against 143 encodings made by libcuda's cuTensorMapEncodeTiled
on an H100 (driver 580.159.04): decoding each ``hex`` must give back the parameters libcuda was
called with. The dump lives beside the repository (shared/reference/data/, see
nvidia-perf.md section 2.2); five of its records are kept here as vectors so the test also runs
without it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


# ---- an encoder written from the bit table of nvidia-perf.md 2.2 (the tests' own, to build maps;
# checked below against libcuda's encodings, libcuda-only fields included) ----------------------
CU_TO_PTX_CODE = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 8, 7, 8]     # CUtensorMapDataType -> PTX elemtype code
PTX_CODES = {"u8": 0, "u16": 1, "u32": 2, "s32": 3, "u64": 4, "s64": 5, "f16": 6, "f32": 7, "f32.ftz": 8,
             "f64": 9, "bf16": 10}
ELEM_BYTES = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 5: 8, 6: 2, 7: 4, 8: 4, 9: 8, 10: 2}
SMEM_ALIGN = [16, 256, 512, 1024]                             # by swizzle code (libcuda-only field)


def encode_tensor_map(addr: int, code: int, dims, strides, box, estr=None, *, interleave: int = 0,
                      swizzle: int = 0, oob: int = 0, l2: int = 0, tf32: bool = False) -> bytes:
    """A tiled tensor map: ``code`` is the PTX element-type code, ``swizzle``/``interleave``/
    ``l2`` the CUtensorMap enum values, ``strides`` the byte strides of dimensions 1..rank-1."""
    rank = len(dims)
    estr = estr or [1] * rank
    v = addr | (rank - 1) << 68 | code << 71 | interleave << 75 | swizzle << 77 | oob << 79 | int(tf32) << 80 | l2 << 81
    for i, st_ in enumerate(strides):
        v |= ((st_ >> 4) & 0xFFFFFFFF) << (96 + 32 * i) | (st_ >> 36) << (224 + 4 * i)
    for i in range(rank):
        v |= (dims[i] - 1) << (256 + 32 * i) | (estr[i] - 1) << (416 + 3 * i) | (box[i] - 1) << (440 + 8 * i)
    nbox = ELEM_BYTES[code] * int(np.prod([b // e for b, e in zip(box, estr)]))
    v |= nbox << 512 | SMEM_ALIGN[swizzle] << 576
    return v.to_bytes(128, "little")


def _encode_record(rec: dict) -> bytes:
    return encode_tensor_map(rec["addr"], CU_TO_PTX_CODE[rec["dtype"]], rec["dims"], rec["strides"][:rec["rank"] - 1],
                             rec["box"], rec["estr"], interleave=rec["interleave"], swizzle=rec["swizzle"],
                             oob=rec["oob"], l2=rec["l2"], tf32=rec["dtype"] in (11, 12))


@pytest.mark.parametrize("rec", VECTORS)
def test_test_encoder_matches_committed_vectors(rec):
    assert _encode_record(rec).hex() == rec["hex"]


def test_test_encoder_matches_every_libcuda_encoding():
    bad = [r["name"] for r in _dump_records() if _encode_record(r).hex() != r["hex"]]
    assert not bad
