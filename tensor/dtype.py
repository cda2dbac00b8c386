"""Data types of tensors: how each is stored in device memory and held in registers.

Floats are computed in f32 registers whatever their storage type (f16/bf16 are converted on
load and store); ``cast`` to a narrow float rounds through the storage type so results match
numpy's rounding."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    """A tensor element type. ``np`` is the host numpy type of its storage (bf16 has none: it
    travels as uint16 bit patterns and ``Tensor.numpy()`` widens it to float32)."""
    name: str
    itemsize: int
    kind: str            # "float", "int" or "bool"
    np: type
    ptx: str             # PTX type of one stored element

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def register(self) -> "DType":
        """The dtype values of this type are computed in."""
        return float32 if self.is_float else self

    def __repr__(self) -> str:
        return f"dtypes.{self.name}"


float32 = DType("float32", 4, "float", np.float32, "f32")
float16 = DType("float16", 2, "float", np.float16, "f16")
bfloat16 = DType("bfloat16", 2, "float", np.uint16, "bf16")
int32 = DType("int32", 4, "int", np.int32, "s32")
bool_ = DType("bool", 1, "bool", np.bool_, "u8")

ALL = (float32, float16, bfloat16, int32, bool_)
_BY_NAME = {d.name: d for d in ALL} | {"f32": float32, "f16": float16, "bf16": bfloat16,
                                      "i32": int32, "half": float16, "float": float32,
                                      "int": int32, "bool": bool_}


def to_dtype(x: "DType | str | np.dtype | type") -> DType:
    """A DType from a DType, a name (``"f16"``, ``"bfloat16"``) or a numpy dtype."""
    if isinstance(x, DType):
        return x
    if isinstance(x, str) and x in _BY_NAME:
        return _BY_NAME[x]
    npd = np.dtype(x)
    if npd == np.float64:
        return float32          # numpy's default float: tensors hold f32
    if npd.kind in "iu":
        return int32
    for d in (float32, float16, bool_):
        if np.dtype(d.np) == npd:
            return d
    raise TypeError(f"no tensor dtype for {x!r}; supported: {', '.join(d.name for d in ALL)}")


def promote(a: DType, b: DType) -> DType:
    """The result type of a binary op, numpy-style on this small lattice:
    bool < int32 < float16/bfloat16 < float32, and float16 with bfloat16 gives float32."""
    if a == b:
        return a
    rank = {"bool": 0, "int": 1, "float": 2}
    if a.kind != b.kind:
        return a if rank[a.kind] > rank[b.kind] else b
    return float32          # two different floats: f16+bf16, or anything with f32


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (nearest even), as uint16 bit patterns."""
    bits = np.array(x, np.float32).view(np.uint32).astype(np.uint64)    # a copy: C-contiguous, keeps 0-d
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(np.asarray(x, np.float32))
    return np.where(nan, 0x7FC0, rounded).astype(np.uint16)


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    """Widen bfloat16 bit patterns (uint16) to float32 values."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


class dtypes:
    """Namespace of the supported dtypes: ``dtypes.float32`` ... ``dtypes.bool``."""
    float32, float16, bfloat16, int32, bool = float32, float16, bfloat16, int32, bool_
    f32, f16, bf16, i32 = float32, float16, bfloat16, int32
