"""CUtensorMap (tiled mode): decode the 128-byte tensor-map object that cp.async.bulk.tensor reads.

The bit layout is the one measured on an H100 (driver 580.159.04) and reproduced bit-exactly
against 143 libcuda encodings (shared/reference/nvidia-perf.md section 2.2). Bit ``b`` of the
object is bit ``b % 8`` of byte ``b // 8`` (the object read as one little-endian integer).
Element-type codes are the PTX ``tensormap.replace`` codes (PTX ISA 9.7.9.28), not the
CUtensorMapDataType enum. Bits 512-639 (box bytes, smem alignment) are filled only by libcuda
and are not needed by the hardware, so the decoder ignores them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import IllegalInstruction

TENSOR_MAP_BYTES = 128
TENSOR_MAP_ALIGN = 64          # PTX ISA 5.5.8: a tensor map is a 64-byte aligned object

# (first bit, width) of each field; per-dimension fields give the bit of dimension 0 and the step
_ADDRESS = (0, 64)
_RESERVED_LOW = (64, 4)
_RANK = (68, 3)                # rank - 1
_ELEMTYPE = (71, 4)
_INTERLEAVE = (75, 2)
_SWIZZLE = (77, 2)
_OOB_FILL = (79, 1)
_TF32 = (80, 1)
_L2_PROMOTION = (81, 2)
_STRIDE_LO = (96, 32, 32)      # (stride >> 4) & 0xFFFFFFFF, dims 1..4 (4 fields)
_STRIDE_HI = (224, 4, 4)       # stride >> 36
_DIM = (256, 32, 32)           # dim - 1, 5 fields
_ESTRIDE = (416, 3, 3)         # element stride - 1, 5 fields
_BOX = (440, 8, 8)             # box - 1, 5 fields
_STRIDE_LO_SHIFT, _STRIDE_HI_SHIFT = 4, 36
MAX_RANK = 5

# PTX tensormap.replace element-type codes -> (name, bytes per element). tf32 is stored as the
# f32 / f32.ftz code with the tf32 flag bit set (nvidia-perf.md 2.2).
ELEMTYPES = {0: ("u8", 1), 1: ("u16", 2), 2: ("u32", 4), 3: ("s32", 4), 4: ("u64", 8), 5: ("s64", 8),
             6: ("f16", 2), 7: ("f32", 4), 8: ("f32.ftz", 4), 9: ("f64", 8), 10: ("bf16", 2)}
TF32_NAMES = {7: "tf32", 8: "tf32.ftz"}
INTERLEAVE_BYTES = {0: 0, 1: 16, 2: 32}
SWIZZLE_BYTES = {0: 0, 1: 32, 2: 64, 3: 128}          # tensor-map numbering (wgmma's differs)
L2_PROMOTION_BYTES = {0: 0, 1: 64, 2: 128, 3: 256}
FLOAT_TYPES = {"f16", "bf16", "f32", "f32.ftz", "f64", "tf32", "tf32.ftz"}


@dataclass(frozen=True)
class TensorMap:
    """A decoded tiled tensor map. ``dims``/``box``/``element_strides`` list dimension 0 (the
    contiguous one) first; ``strides`` are the byte strides of dimensions 1..rank-1."""
    address: int
    rank: int
    elemtype: str
    elem_bytes: int
    interleave: int            # bytes: 0 (none), 16, 32
    swizzle: int               # bytes: 0 (none), 32, 64, 128
    oob_nan: bool              # out-of-bound elements read as NaN (else zero)
    l2_promotion: int          # bytes: 0, 64, 128, 256
    dims: tuple[int, ...]
    strides: tuple[int, ...]
    box: tuple[int, ...]
    element_strides: tuple[int, ...]

    @property
    def box_bytes(self) -> int:
        """Bytes one tile copy moves (and completes on its mbarrier)."""
        return self.elem_bytes * int(np.prod(self.box))


def _field(value: int, spec, index: int = 0) -> int:
    first, width = spec[0], spec[1]
    step = spec[2] if len(spec) == 3 else 0
    return (value >> (first + index * step)) & ((1 << width) - 1)


def decode_tensor_map(raw: bytes, where: str = "tensor map") -> TensorMap:
    """Decode 128 bytes of a tiled CUtensorMap. A malformed object (reserved bits set, a rank
    or element type the format has no code for) raises IllegalInstruction naming the field."""
    raw = bytes(raw)
    if len(raw) != TENSOR_MAP_BYTES:
        raise IllegalInstruction(f"{where}: a tensor map is {TENSOR_MAP_BYTES} bytes, got {len(raw)}")
    v = int.from_bytes(raw, "little")
    if _field(v, _RESERVED_LOW):
        raise IllegalInstruction(f"{where}: reserved bits 64-67 are set (not a tiled tensor map?)")
    rank = _field(v, _RANK) + 1
    if rank > MAX_RANK:
        raise IllegalInstruction(f"{where}: rank {rank} (tensor maps have 1 to {MAX_RANK} dimensions)")
    code = _field(v, _ELEMTYPE)
    if code not in ELEMTYPES:
        raise IllegalInstruction(f"{where}: element type code {code} is not a PTX tensor-map element type")
    name, size = ELEMTYPES[code]
    if _field(v, _TF32):
        if code not in TF32_NAMES:
            raise IllegalInstruction(f"{where}: the tf32 flag is set on element type {name}")
        name = TF32_NAMES[code]
    inter = _field(v, _INTERLEAVE)
    if inter not in INTERLEAVE_BYTES:
        raise IllegalInstruction(f"{where}: interleave code {inter} is reserved")
    strides = tuple((_field(v, _STRIDE_LO, i) << _STRIDE_LO_SHIFT) | (_field(v, _STRIDE_HI, i) << _STRIDE_HI_SHIFT)
                    for i in range(rank - 1))
    return TensorMap(address=_field(v, _ADDRESS), rank=rank, elemtype=name, elem_bytes=size,
                     interleave=INTERLEAVE_BYTES[inter], swizzle=SWIZZLE_BYTES[_field(v, _SWIZZLE)],
                     oob_nan=bool(_field(v, _OOB_FILL)), l2_promotion=L2_PROMOTION_BYTES[_field(v, _L2_PROMOTION)],
                     dims=tuple(_field(v, _DIM, i) + 1 for i in range(rank)), strides=strides,
                     box=tuple(_field(v, _BOX, i) + 1 for i in range(rank)),
                     element_strides=tuple(_field(v, _ESTRIDE, i) + 1 for i in range(rank)))


def swizzle_offsets(offsets: np.ndarray, swizzle: int) -> np.ndarray:
    """Shared-memory byte offsets after the swizzle pattern of ``swizzle`` bytes (0, 32, 64,
    128): the 16-byte chunk index (offset bits 4..) is XORed with the 128-byte row index
    (bits 7..) modulo 2, 4 or 8 — measured for TMA (nvidia-perf.md 2.3: 128B chunk ^ row % 8
    for 128-byte rows, 64B ^ (row/2) % 4 for 64-byte rows, 32B ^ (row/4) % 2 for 32-byte rows)
    and the same as wgmma's Swizzle<3,4,3>/<2,4,3>/<1,4,3> (PTX ISA 9.7.15.5.1.2). The pattern
    works on address bits, so it repeats every 8 x 128 bytes."""
    if not swizzle:
        return offsets
    mask = {32: 1, 64: 3, 128: 7}[swizzle]
    o = np.asarray(offsets).astype(np.uint64)
    return o ^ (((o >> np.uint64(7)) & np.uint64(mask)) << np.uint64(4))
