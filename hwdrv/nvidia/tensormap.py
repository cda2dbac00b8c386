"""Tiled-mode CUtensorMap encoder: the 128-byte object ``cp.async.bulk.tensor`` (TMA) reads,
built on the host without libcuda.

The bit layout was measured on an H100 (driver 580.159.04, shared/reference/nvidia-perf.md 2.2):
libcuda's ``cuTensorMapEncodeTiled`` and ptxas's ``tensormap.replace`` agree on every field, and
this encoder reproduces all 143 libcuda encodings of the committed dump bit-exactly
(tests/data/nvidia/tmap_libcuda_580.159.04.jsonl, tests/test_nvidia_tensormap.py). Bit ``b`` of
the object is bit ``b % 8`` of byte ``b // 8`` (the object read as one little-endian integer).
Element types are stored as PTX ``tensormap.replace`` codes (PTX ISA 9.7.9.28), not the
CUtensorMapDataType enum; tf32 is the f32 code with a separate flag bit.

Parameters are checked against the rules the CUDA driver API documents for
cuTensorMapEncodeTiled (box sizes, 16-byte granules, swizzle span, stride and address
alignment); a violation raises :class:`~hwdrv.errors.InvalidArgument` naming the parameter.
"""
from __future__ import annotations

from math import prod
from typing import Sequence

from ..errors import InvalidArgument

TENSOR_MAP_BYTES = 128
TENSOR_MAP_ALIGN = 64           # PTX ISA 5.5.8: a tensor map in memory is 64-byte aligned
MAX_RANK = 5

# Element types: name -> (PTX tensormap.replace code, bytes per element, tf32 flag)
DTYPES: dict[str, tuple[int, int, bool]] = {
    "u8": (0, 1, False), "u16": (1, 2, False), "u32": (2, 4, False), "s32": (3, 4, False),
    "u64": (4, 8, False), "s64": (5, 8, False), "f16": (6, 2, False), "f32": (7, 4, False),
    "f32.ftz": (8, 4, False), "f64": (9, 8, False), "bf16": (10, 2, False),
    "tf32": (7, 4, True), "tf32.ftz": (8, 4, True)}
FLOAT_DTYPES = frozenset({"f16", "f32", "f32.ftz", "f64", "bf16", "tf32", "tf32.ftz"})
#: CUtensorMapDataType (cuda.h) order: CU_TENSOR_MAP_DATA_TYPE_UINT8 = 0 ... TFLOAT32_FTZ = 12
CU_DATA_TYPES = ("u8", "u16", "u32", "s32", "u64", "s64", "f16", "f32", "f64", "bf16", "f32.ftz",
                 "tf32", "tf32.ftz")

# Field encodings, in bytes as the API takes them -> the stored code (the CUtensorMap enums' values)
INTERLEAVE_CODES = {0: 0, 16: 1, 32: 2}
SWIZZLE_CODES = {0: 0, 32: 1, 64: 2, 128: 3}
L2_PROMOTION_CODES = {0: 0, 64: 1, 128: 2, 256: 3}

# (first bit, per-dimension step) of each field (nvidia-perf.md 2.2)
_RANK_BIT = 68                  # rank - 1
_ELEMTYPE_BIT = 71
_INTERLEAVE_BIT = 75
_SWIZZLE_BIT = 77
_OOB_NAN_BIT = 79
_TF32_BIT = 80
_L2_BIT = 81
_STRIDE_LO = (96, 32)           # (stride >> 4) & 0xFFFFFFFF for dimensions 1..rank-1
_STRIDE_HI = (224, 4)           # stride >> 36
_DIM = (256, 32)                # dim - 1
_ESTRIDE = (416, 3)             # element stride - 1
_BOX = (440, 8)                 # box - 1
_BOX_BYTES_BIT = 512            # libcuda-only: bytes one box copies
_SMEM_ALIGN_BIT = 576           # libcuda-only: shared-memory alignment the box needs
_STRIDE_LO_SHIFT, _STRIDE_HI_SHIFT = 4, 36
_STRIDE_LO_MASK = 0xFFFFFFFF
# Shared-memory alignment libcuda records per swizzle span (bytes): the swizzle pattern repeats
# every 8 rows of the span
_SMEM_ALIGN = {0: 16, 32: 256, 64: 512, 128: 1024}

# Limits of cuTensorMapEncodeTiled (CUDA driver API documentation)
MAX_BOX = 256
MAX_ELEMENT_STRIDE = 8
MAX_DIM = 1 << 32
MAX_STRIDE = 1 << 40
GRANULE = 16                    # bytes: address, strides and inner box rows come in 16-byte units


def encode_tiled(address: int, dtype: str, dims: Sequence[int], strides: Sequence[int],
                 box: Sequence[int], element_strides: Sequence[int] | None = None, *,
                 interleave: int = 0, swizzle: int = 0, l2_promotion: int = 0,
                 oob_nan: bool = False) -> bytes:
    """The 128-byte tiled tensor map of a ``rank``-dimensional tensor at GPU address ``address``.

    ``dims``, ``box`` and ``element_strides`` list dimension 0 (the contiguous one) first;
    ``strides`` are the byte strides of dimensions 1..rank-1 (rank-1 values). ``dtype`` is a
    PTX element-type name (see :data:`DTYPES`). ``interleave`` (0, 16, 32), ``swizzle`` (0, 32,
    64, 128) and ``l2_promotion`` (0, 64, 128, 256) are in bytes; ``oob_nan`` makes
    out-of-bound elements read as NaN instead of zero (float types only).
    Raises InvalidArgument for parameters the driver API documents as invalid."""
    if dtype not in DTYPES:
        raise InvalidArgument(f"tensor map element type {dtype!r} is not one of {sorted(DTYPES)}")
    code, esize, tf32 = DTYPES[dtype]
    rank = len(dims)
    estr = list(element_strides) if element_strides is not None else [1] * rank
    _check(address, dtype, esize, list(dims), list(strides), list(box), estr, interleave, swizzle,
           l2_promotion, oob_nan)
    v = (address | (rank - 1) << _RANK_BIT | code << _ELEMTYPE_BIT
         | INTERLEAVE_CODES[interleave] << _INTERLEAVE_BIT | SWIZZLE_CODES[swizzle] << _SWIZZLE_BIT
         | int(oob_nan) << _OOB_NAN_BIT | int(tf32) << _TF32_BIT
         | L2_PROMOTION_CODES[l2_promotion] << _L2_BIT)
    for i, s in enumerate(strides):
        v |= ((s >> _STRIDE_LO_SHIFT) & _STRIDE_LO_MASK) << (_STRIDE_LO[0] + _STRIDE_LO[1] * i)
        v |= (s >> _STRIDE_HI_SHIFT) << (_STRIDE_HI[0] + _STRIDE_HI[1] * i)
    for i in range(rank):
        v |= (dims[i] - 1) << (_DIM[0] + _DIM[1] * i)
        v |= (estr[i] - 1) << (_ESTRIDE[0] + _ESTRIDE[1] * i)
        v |= (box[i] - 1) << (_BOX[0] + _BOX[1] * i)
    # the two fields only libcuda fills (the hardware loads correctly without them, nvidia-perf.md
    # 2.3); written anyway so the object is byte-identical to the driver's
    v |= esize * prod(b // e for b, e in zip(box, estr)) << _BOX_BYTES_BIT
    v |= _SMEM_ALIGN[swizzle] << _SMEM_ALIGN_BIT
    return v.to_bytes(TENSOR_MAP_BYTES, "little")


def _check(address: int, dtype: str, esize: int, dims: list[int], strides: list[int], box: list[int],
           estr: list[int], interleave: int, swizzle: int, l2: int, oob_nan: bool) -> None:
    """The parameter rules of cuTensorMapEncodeTiled (CUDA driver API reference)."""
    rank = len(dims)

    def bad(what: str) -> InvalidArgument:
        return InvalidArgument(f"tensor map: {what}")
    if interleave not in INTERLEAVE_CODES:
        raise bad(f"interleave {interleave} must be 0 (none), 16 or 32 bytes")
    if swizzle not in SWIZZLE_CODES:
        raise bad(f"swizzle {swizzle} must be 0 (none), 32, 64 or 128 bytes")
    if l2 not in L2_PROMOTION_CODES:
        raise bad(f"L2 promotion {l2} must be 0 (none), 64, 128 or 256 bytes")
    if not 1 <= rank <= MAX_RANK:
        raise bad(f"rank {rank} must be 1..{MAX_RANK}")
    if interleave and rank < 3:
        raise bad(f"an interleaved map needs rank >= 3, got {rank}")
    if len(box) != rank or len(estr) != rank or len(strides) != rank - 1:
        raise bad(f"a rank-{rank} map takes {rank} box sizes, {rank} element strides and {rank - 1} "
                  f"byte strides; got {len(box)}, {len(estr)} and {len(strides)}")
    align = 32 if interleave == 32 else GRANULE
    if not 0 <= address < 1 << 64 or address % align:
        raise bad(f"global address {address:#x} must be {align}-byte aligned")
    for i, d in enumerate(dims):
        if not 1 <= d <= MAX_DIM:
            raise bad(f"dims[{i}] = {d} must be 1..2^32")
    for i, s in enumerate(strides):
        if not 0 < s < MAX_STRIDE or s % align:
            raise bad(f"strides[{i}] = {s} (the byte stride of dimension {i + 1}) must be a positive "
                      f"multiple of {align} below 2^40; pad the rows")
    for i, b in enumerate(box):
        if not 1 <= b <= MAX_BOX:
            raise bad(f"box[{i}] = {b} must be 1..{MAX_BOX}")
    for i, e in enumerate(estr):
        if not 1 <= e <= MAX_ELEMENT_STRIDE:
            raise bad(f"element_strides[{i}] = {e} must be 1..{MAX_ELEMENT_STRIDE}")
    inner = box[0] * esize
    if not interleave:
        if inner % GRANULE:
            raise bad(f"box[0] * element size = {inner} bytes must be a multiple of {GRANULE}")
        if swizzle and inner > swizzle:
            raise bad(f"the inner box row ({inner} bytes) must fit the {swizzle}-byte swizzle span; "
                      f"use a smaller box[0] or a wider swizzle")
    if oob_nan and dtype not in FLOAT_DTYPES:
        raise bad(f"NaN out-of-bound fill needs a float element type, not {dtype}")


def cu_encode_tiled(address: int, cu_dtype: int, dims: Sequence[int], strides: Sequence[int],
                    box: Sequence[int], element_strides: Sequence[int], cu_interleave: int,
                    cu_swizzle: int, cu_l2_promotion: int, cu_oob_fill: int) -> bytes:
    """:func:`encode_tiled` with cuTensorMapEncodeTiled's enum arguments (CUtensorMapDataType,
    CUtensorMapInterleave/Swizzle/L2promotion/FloatOOBfill values)."""
    if not 0 <= cu_dtype < len(CU_DATA_TYPES):
        raise InvalidArgument(f"tensor map: CUtensorMapDataType {cu_dtype} is not 0..{len(CU_DATA_TYPES) - 1}")
    try:
        inter = list(INTERLEAVE_CODES)[cu_interleave]
        swz = list(SWIZZLE_CODES)[cu_swizzle]
        l2 = list(L2_PROMOTION_CODES)[cu_l2_promotion]
    except IndexError:
        raise InvalidArgument(f"tensor map: enum out of range (interleave {cu_interleave}, swizzle "
                              f"{cu_swizzle}, L2 promotion {cu_l2_promotion})") from None
    if cu_oob_fill not in (0, 1):
        raise InvalidArgument(f"tensor map: CUtensorMapFloatOOBfill {cu_oob_fill} is not 0 or 1")
    return encode_tiled(address, CU_DATA_TYPES[cu_dtype], dims, strides, box, element_strides,
                        interleave=inter, swizzle=swz, l2_promotion=l2, oob_nan=bool(cu_oob_fill))
