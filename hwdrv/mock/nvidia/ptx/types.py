"""PTX fundamental types: size, kind and the numpy dtype used for their bits."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PType:
    """A PTX scalar type. ``kind``: 'b' bits, 'u' unsigned, 's' signed, 'f' float, 'p' predicate.
    ``dtype`` is the numpy dtype a value is computed in (bf16 is held as raw uint16 bits)."""
    name: str
    size: int
    kind: str
    dtype: np.dtype

    @property
    def bits(self) -> int:
        return self.size * 8

    @property
    def is_float(self) -> bool:
        return self.kind == "f"

    @property
    def is_signed(self) -> bool:
        return self.kind == "s"


def _t(name: str, size: int, kind: str, dt) -> PType:
    return PType(name, size, kind, np.dtype(dt))


TYPES: dict[str, PType] = {t.name: t for t in [
    _t("b8", 1, "b", np.uint8), _t("u8", 1, "u", np.uint8), _t("s8", 1, "s", np.int8),
    _t("b16", 2, "b", np.uint16), _t("u16", 2, "u", np.uint16), _t("s16", 2, "s", np.int16),
    _t("b32", 4, "b", np.uint32), _t("u32", 4, "u", np.uint32), _t("s32", 4, "s", np.int32),
    _t("b64", 8, "b", np.uint64), _t("u64", 8, "u", np.uint64), _t("s64", 8, "s", np.int64),
    _t("f16", 2, "f", np.float16), _t("bf16", 2, "f", np.uint16),
    _t("f32", 4, "f", np.float32), _t("f64", 8, "f", np.float64),
    _t("f16x2", 4, "b", np.uint32), _t("bf16x2", 4, "b", np.uint32),
    _t("pred", 1, "p", np.bool_),
]}

UNSIGNED = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16), 4: np.dtype(np.uint32), 8: np.dtype(np.uint64)}
SIGNED = {1: np.dtype(np.int8), 2: np.dtype(np.int16), 4: np.dtype(np.int32), 8: np.dtype(np.int64)}


def ptype(name: str) -> PType | None:
    """The PType called ``name`` (without the dot), or None."""
    return TYPES.get(name)


def storage_dtype(t: PType) -> np.dtype:
    """The dtype a register declared with type ``t`` is stored in (raw bits, or bool)."""
    return np.dtype(np.bool_) if t.kind == "p" else UNSIGNED[t.size]


def int_type(size: int, signed: bool) -> PType:
    return TYPES[("s" if signed else "u") + str(size * 8)]
