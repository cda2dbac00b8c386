"""Operand readers: a 9-bit source encoding + ISA type -> a function of the wave state giving
typed values broadcastable to (waves, 32 lanes) (vector context) or (waves,) (scalar context)."""
from __future__ import annotations

import numpy as np

from .faults import Unsupported
from .numeric import F32, F64, U32, U64, to_type
from .state import APERTURE_SIZE, OP, PRIVATE_APERTURE, SHARED_APERTURE

_INLINE_F = {240: 0.5, 241: -0.5, 242: 1.0, 243: -1.0, 244: 2.0, 245: -2.0, 246: 4.0, 247: -4.0}
INV_2PI = {"f32": 0x3E22F983, "f64": 0x3FC45F306DC9C882, "f16": 0x3118}
_SIXTY4 = ("u64", "i64", "b64", "f64")


def const_bits(code: int, t: str, literal: int | None) -> int | None:
    """Bits of a constant operand for type ``t`` (inline int/float or literal), else None."""
    wide = t in _SIXTY4
    if OP["INLINE_INT_ZERO"] <= code <= OP["INLINE_INT_POS_MAX"]:
        return code - OP["INLINE_INT_ZERO"]
    if OP["INLINE_INT_NEG_MIN"] <= code <= OP["INLINE_INT_NEG_MAX"]:
        v = OP["INLINE_INT_NEG_MIN"] - 1 - code
        return v & ((1 << 64) - 1 if wide else 0xFFFFFFFF)
    if code in _INLINE_F or code == OP["INLINE_INV_2PI"]:
        kind = "f64" if wide else "f16" if t in ("f16", "i16", "u16", "b16", "bf16") else "f32"
        if code == OP["INLINE_INV_2PI"]:
            return INV_2PI[kind]
        v = _INLINE_F[code]
        if kind == "f64":
            return int(np.array(v, F64).view(U64))
        if kind == "f16":
            return int(np.array(v, np.float16).view(np.uint16))
        return int(np.array(v, F32).view(U32))
    if code == OP["LITERAL"]:
        if literal is None:
            raise Unsupported("literal operand without a literal dword")
        if t == "f64":
            return literal << 32
        if t == "i64" and literal & 0x80000000:
            return literal | 0xFFFFFFFF00000000
        return literal
    return None


def reader(code: int, t: str, literal: int | None, vector: bool, hi: bool = False):
    """Return fn(state) -> typed values of operand ``code`` with ISA type ``t``."""
    wide = t in _SIXTY4
    c = const_bits(code, t, literal)
    if c is not None:
        if hi and not wide and t in ("f16", "i16", "u16", "b16", "bf16"):
            c = (c & 0xFFFF) * 0x10001        # a constant reads the same in both halves
        val = to_type(np.array(c, U64 if wide else U32), t, hi)
        return lambda st: val
    ax = (slice(None), None) if vector else (slice(None),)
    if code >= OP["VGPR_MIN"]:
        if not vector:
            raise Unsupported("VGPR operand in a scalar instruction")
        r = code - OP["VGPR_MIN"]
        if wide:
            return lambda st: to_type(st.v64(r), t)
        return lambda st: to_type(st.v[r], t, hi)
    if code <= OP["EXEC_HI"] and code != OP["NULL"]:
        if wide:
            return lambda st: to_type(st.s64(code)[ax], t)
        return lambda st: to_type(st.s[code][ax], t, hi)
    if code == OP["NULL"]:
        z = to_type(np.array(0, U64 if wide else U32), t)
        return lambda st: z
    if code == OP["SCC"]:
        return lambda st: to_type(st.scc.astype(U32)[ax], t)
    if code == OP["VCCZ"]:
        return lambda st: to_type((st.s[OP["VCC_LO"]] == 0).astype(U32)[ax], t)
    if code == OP["EXECZ"]:
        return lambda st: to_type((st.s[OP["EXEC_LO"]] == 0).astype(U32)[ax], t)
    ap = {OP["SHARED_BASE"]: SHARED_APERTURE >> 32, OP["SHARED_LIMIT"]: (SHARED_APERTURE + APERTURE_SIZE - 1) >> 32,
          OP["PRIVATE_BASE"]: PRIVATE_APERTURE >> 32, OP["PRIVATE_LIMIT"]: (PRIVATE_APERTURE + APERTURE_SIZE - 1) >> 32}
    if code in ap:
        # as a 64-bit operand the register reads as the full aperture address (hi:lo = base:0)
        val = to_type(np.array(ap[code] << 32 if wide else ap[code], U64 if wide else U32), t)
        return lambda st: val
    raise Unsupported(f"source operand encoding {code}")
