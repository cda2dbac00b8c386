"""ALU semantics of ir3 cat1 (mov/cov), cat2, cat3 and cat4 (SFU), vectorised over fibers.

Values travel as raw register bits: uint32 arrays for full registers, uint16 for half ones. An
operation interprets them in the precision its sources have (cat2/cat4: the FULL bit; cat3: the
opcode) and converts the result to the destination's precision ("The source precision is
determined by the instruction opcode. If DST_CONV the result is widened/narrowed to the opposite
precision": Mesa isa/ir3-cat2.xml, ir3-cat3.xml). Integer results narrow by truncation and widen by
sign extension for signed opcodes (.s), zero extension otherwise. Where Mesa's NIR opcode defines the
meaning (nir_opcodes.py: umul_low = mull.u, imadsh_mix16 = madsh.m16, imul24/umul24 = mul.s24/u24,
fsign = sign.f) that definition is used.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from hwdrv.errors import MockFault

F = {True: np.float32, False: np.float16}     # float dtype by "full"
U = {True: np.uint32, False: np.uint16}
S = {True: np.int32, False: np.int16}

# cat2 COND field (Mesa #cond enum: lt le gt ge eq ne)
_CMP = [np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal]


def fview(bits, full: bool):
    return np.asarray(bits).view(F[full])


def sview(bits, full: bool):
    return np.asarray(bits).view(S[full])


def to_bits_float(x, full_out: bool) -> np.ndarray:
    """A float array (any precision) as register bits of the destination precision."""
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=F[full_out]).view(U[full_out])


def to_bits_int(x, full_out: bool, signed: bool) -> np.ndarray:
    """An integer array (either width) as register bits of the destination precision."""
    x = np.asarray(x)
    if signed:
        return x.astype(S[full_out]).view(U[full_out])
    if x.dtype.kind == "i":
        x = x.view(np.dtype(x.dtype.str.replace("i", "u")))
    return x.astype(U[full_out])


def apply_fabsneg(x, absneg: int):
    if absneg & 2:
        x = np.abs(x)
    if absneg & 1:
        x = -x
    return x


def apply_iabsneg(x, absneg: int, full: bool, bitwise: bool):
    """(abs)/(neg) on integer sources: two's complement for arithmetic ops, (neg) = bitwise not on
    .b ops (Mesa ir3: IR3_REG_SABS/SNEG vs IR3_REG_BNOT)."""
    if not absneg:
        return x
    if bitwise:
        return np.invert(np.asarray(x, U[full])) if absneg & 1 else x
    s = np.asarray(x).view(S[full])
    if absneg & 2:
        s = np.abs(s)
    if absneg & 1:
        s = np.negative(s)
    return s.view(U[full])


def _round_away(x):
    return np.copysign(np.floor(np.abs(x) + np.asarray(0.5, x.dtype)), x)


def _sign(x):
    return np.where(np.isnan(x), np.zeros_like(x), np.where(x == 0, x, np.where(x > 0, 1, -1).astype(x.dtype)))


# --- cat2 -------------------------------------------------------------------------------------------
# float ops: f(a, b) -> float in source precision
CAT2_FLOAT: dict[str, Callable] = {
    "add.f": np.add, "mul.f": np.multiply, "min.f": np.fmin, "max.f": np.fmax,
    "sign.f": lambda a, b=None: _sign(a), "absneg.f": lambda a, b=None: a,
    "floor.f": lambda a, b=None: np.floor(a), "ceil.f": lambda a, b=None: np.ceil(a),
    "rndne.f": lambda a, b=None: np.rint(a), "rndaz.f": lambda a, b=None: _round_away(a),
    "trunc.f": lambda a, b=None: np.trunc(a),
}
CAT2_NSRC = {"sign.f": 1, "absneg.f": 1, "floor.f": 1, "ceil.f": 1, "rndne.f": 1, "rndaz.f": 1, "trunc.f": 1,
             "absneg.s": 1, "not.b": 1, "bfrev.b": 1, "clz.s": 1, "clz.b": 1, "cbits.b": 1}


def _mask_shift(b, full):
    return np.asarray(b, U[full]) & U[full](31 if full else 15)


def _clz(x, full):
    w = 32 if full else 16
    v = np.asarray(x, np.uint32)
    nz = v != 0
    # floor(log2(v)) through float64 is exact for 32-bit values
    lg = np.floor(np.log2(np.where(nz, v, 1).astype(np.float64))).astype(np.int32)
    return np.where(nz, w - 1 - lg, w)


def _popcount(x):
    x = np.atleast_1d(np.asarray(x, np.uint32))
    return np.unpackbits(x.view(np.uint8).reshape(x.shape + (4,)), axis=-1).sum(-1).astype(np.uint32)


def _bfrev(x, full):
    w = 32 if full else 16
    x = np.atleast_1d(np.asarray(x, np.uint32))
    bits = np.unpackbits(x.astype("<u4").view(np.uint8).reshape(x.shape + (4,)), axis=-1, bitorder="little")
    rev = np.packbits(bits[..., ::-1], axis=-1, bitorder="little").view("<u4")[..., 0]
    return rev >> np.uint32(32 - w)


def int_op(name: str, full: bool) -> tuple[Callable, bool]:
    """(f(a_bits, b_bits) -> int array, result_is_signed) for a cat2 integer op at this precision."""
    u, s = U[full], S[full]

    def su(x):
        return np.asarray(x, u).view(s)

    ops: dict[str, tuple[Callable, bool]] = {
        "add.u": (lambda a, b: np.add(np.asarray(a, u), b, dtype=u), False),
        "add.s": (lambda a, b: np.add(np.asarray(a, u), b, dtype=u), True),
        "sub.u": (lambda a, b: np.subtract(np.asarray(a, u), b, dtype=u), False),
        "sub.s": (lambda a, b: np.subtract(np.asarray(a, u), b, dtype=u), True),
        "min.u": (lambda a, b: np.minimum(np.asarray(a, u), np.asarray(b, u)), False),
        "max.u": (lambda a, b: np.maximum(np.asarray(a, u), np.asarray(b, u)), False),
        "min.s": (lambda a, b: np.minimum(su(a), su(b)), True),
        "max.s": (lambda a, b: np.maximum(su(a), su(b)), True),
        "absneg.s": (lambda a, b=None: su(a), True),
        "and.b": (lambda a, b: np.bitwise_and(np.asarray(a, u), np.asarray(b, u)), False),
        "or.b": (lambda a, b: np.bitwise_or(np.asarray(a, u), np.asarray(b, u)), False),
        "xor.b": (lambda a, b: np.bitwise_xor(np.asarray(a, u), np.asarray(b, u)), False),
        "not.b": (lambda a, b=None: np.invert(np.asarray(a, u)), False),
        "shl.b": (lambda a, b: np.left_shift(np.asarray(a, u), _mask_shift(b, full)), False),
        "shr.b": (lambda a, b: np.right_shift(np.asarray(a, u), _mask_shift(b, full)), False),
        "ashr.b": (lambda a, b: np.right_shift(su(a), _mask_shift(b, full).astype(s)), True),
        "mul.u24": (lambda a, b: ((np.asarray(a, np.uint64) & 0xFFFFFF) * (np.asarray(b, np.uint64) & 0xFFFFFF))
                    .astype(u), False),
        "mul.s24": (lambda a, b: (_sext24(a) * _sext24(b)).astype(np.int64).astype(s), True),
        "mull.u": (lambda a, b: ((np.asarray(a, np.uint64) & 0xFFFF) * (np.asarray(b, np.uint64) & 0xFFFF))
                   .astype(u), False),
        "getbit.b": (lambda a, b: (np.right_shift(np.asarray(a, u), _mask_shift(b, full)) & u(1)), False),
        "cbits.b": (lambda a, b=None: _popcount(np.asarray(a, u)).astype(u), False),
        "clz.b": (lambda a, b=None: _clz(np.asarray(a, u), full).astype(u), False),
        "clz.s": (lambda a, b=None: _clz(np.where(su(a) < 0, np.invert(np.asarray(a, u)), np.asarray(a, u)), full)
                  .astype(u), False),
        "bfrev.b": (lambda a, b=None: _bfrev(np.asarray(a, u), full).astype(u), False),
    }
    return ops[name]


def _sext24(x):
    x = np.asarray(x, np.int64) & 0xFFFFFF
    return np.where(x & 0x800000, x - (1 << 24), x)


def compare(name: str, cond: int, full: bool) -> Callable:
    """cmps.f/.u/.s: 1 where the condition holds, else 0."""
    if cond >= len(_CMP):
        raise KeyError(f"condition {cond} (Mesa's #cond enum ends at ne = 5)")
    fn = _CMP[cond]
    if name == "cmps.f":
        return lambda a, b: fn(fview(a, full), fview(b, full))
    if name == "cmps.u":
        return lambda a, b: fn(np.asarray(a, U[full]), np.asarray(b, U[full]))
    return lambda a, b: fn(sview(a, full), sview(b, full))


# --- cat3 -------------------------------------------------------------------------------------------
def cat3(name: str) -> tuple[Callable, str, bool]:
    """(f(a, b, c) -> result, kind "f"/"u"/"s", full) for a cat3 op; the sources' precision is the opcode's."""
    def lo16(x):
        return np.asarray(x, np.uint32) & 0xFFFF

    table: dict[str, tuple[Callable, str, bool]] = {
        "mad.f32": (lambda a, b, c: fview(a, True) * fview(b, True) + fview(c, True), "f", True),
        "mad.f16": (lambda a, b, c: fview(a, False) * fview(b, False) + fview(c, False), "f", False),
        "mad.u24": (lambda a, b, c: ((np.asarray(a, np.uint64) & 0xFFFFFF) * (np.asarray(b, np.uint64) & 0xFFFFFF)
                                     + np.asarray(c, np.uint64)).astype(np.uint32), "u", True),
        "mad.s24": (lambda a, b, c: (_sext24(a) * _sext24(b) + np.asarray(c, np.uint32).view(np.int32))
                    .astype(np.int64).astype(np.int32), "s", True),
        "madsh.m16": (lambda a, b, c: (((lo16(a) * (np.asarray(b, np.uint32) >> 16)) << 16) + np.asarray(c, np.uint32))
                      .astype(np.uint32), "u", True),
        "mad.u16": (lambda a, b, c: (np.asarray(a, np.uint32) * np.asarray(b, np.uint32) + np.asarray(c, np.uint32))
                    .astype(np.uint16), "u", False),
        "mad.s16": (lambda a, b, c: (sview(a, False).astype(np.int32) * sview(b, False) + sview(c, False))
                    .astype(np.int16), "s", False),
        "sel.b32": (lambda a, b, c: np.where(np.asarray(b, np.uint32) != 0, a, c), "u", True),
        "sel.s32": (lambda a, b, c: np.where(np.asarray(b, np.uint32) != 0, a, c), "u", True),
        "sel.f32": (lambda a, b, c: np.where(fview(b, True) != 0, a, c), "u", True),
        "sel.b16": (lambda a, b, c: np.where(np.asarray(b, np.uint16) != 0, a, c), "u", False),
        "sel.s16": (lambda a, b, c: np.where(np.asarray(b, np.uint16) != 0, a, c), "u", False),
        "sel.f16": (lambda a, b, c: np.where(fview(b, False) != 0, a, c), "u", False),
        "sad.s32": (lambda a, b, c: (np.abs(sview(a, True).astype(np.int64) - sview(b, True))
                                     + np.asarray(c, np.uint32)).astype(np.uint32), "u", True),
        "sad.s16": (lambda a, b, c: (np.abs(sview(a, False).astype(np.int32) - sview(b, False))
                                     + np.asarray(c, np.uint16)).astype(np.uint16), "u", False),
    }
    # alternate (immediate) encoding, a6xx: documented in isa/ir3-cat3.xml
    sh = {
        "shrm": lambda a, b, c: (b >> (a & 31)) & c, "shlm": lambda a, b, c: (b << (a & 31)) & c,
        "shrg": lambda a, b, c: (b >> (a & 31)) | c, "shlg": lambda a, b, c: (b << (a & 31)) | c,
        "andg": lambda a, b, c: (b & a) | c,
    }
    if name in table:
        return table[name]
    if name in sh:
        f = sh[name]
        return (lambda a, b, c: f(np.asarray(a, np.uint32), np.asarray(b, np.uint32), np.asarray(c, np.uint32))
                .astype(np.uint32)), "u", True
    raise KeyError(name)


# --- cat4 (SFU) -------------------------------------------------------------------------------------
def _sfu(fn):
    def run(x):
        with np.errstate(all="ignore"):
            return fn(x)
    return run


CAT4: dict[str, Callable] = {
    "rcp": _sfu(lambda x: np.reciprocal(x)),
    "rsq": _sfu(lambda x: np.reciprocal(np.sqrt(x))),
    "log2": _sfu(np.log2), "exp2": _sfu(np.exp2),
    "sin": _sfu(np.sin), "cos": _sfu(np.cos), "sqrt": _sfu(np.sqrt),
    "hrsq": _sfu(lambda x: np.reciprocal(np.sqrt(x))), "hlog2": _sfu(np.log2), "hexp2": _sfu(np.exp2),
}


# --- cat1 conversions ------------------------------------------------------------------------------
TYPES = {0: ("f", 16), 1: ("f", 32), 2: ("u", 16), 3: ("u", 32), 4: ("s", 16), 5: ("s", 32), 6: ("u", 8), 7: ("s", 8)}


def convert(bits, src_type: int, dst_type: int, round_mode: int) -> np.ndarray:
    """cov.<src><dst>: reinterpret ``bits`` as src_type and convert to dst_type; returns the
    destination's register bits (uint16 for 8/16-bit types, uint32 for 32-bit). Float to integer
    rounds toward zero (ROUND = 0; NIR's f2i) and saturates, NaN -> 0; other ROUND values follow
    Mesa's #round enum (even, +inf, -inf)."""
    sk, sw = TYPES[src_type]
    dk, dw = TYPES[dst_type]
    bits = np.asarray(bits)
    if sk == "f":
        x = bits.astype(np.uint32 if sw == 32 else np.uint16).view(np.float32 if sw == 32 else np.float16)
    elif sk == "u":
        x = bits.astype(np.uint64) & ((1 << sw) - 1)
    else:
        v = bits.astype(np.int64) & ((1 << sw) - 1)
        x = np.where(v >> (sw - 1), v - (1 << sw), v)
    out_u = np.uint32 if dw == 32 else np.uint16
    if dk == "f":
        with np.errstate(over="ignore"):     # out of range rounds to infinity, as IEEE narrowing does
            y = np.asarray(x, np.float64 if sk != "f" else x.dtype).astype(np.float32 if dw == 32 else np.float16)
        return y.view(out_u)
    if sk == "f":
        with np.errstate(invalid="ignore"):
            xf = x.astype(np.float64)
            xf = {0: np.trunc, 1: np.rint, 2: np.ceil, 3: np.floor}[round_mode](xf)
            lo, hi = (0, (1 << dw) - 1) if dk == "u" else (-(1 << (dw - 1)), (1 << (dw - 1)) - 1)
            xi = np.where(np.isnan(xf), 0, np.clip(xf, lo, hi)).astype(np.int64)
    else:
        xi = np.asarray(x, np.int64)
    xi = xi & ((1 << dw) - 1)
    if dw == 8:   # 8-bit values live in half registers, extended to 16 bits by their signedness
        xi = np.where((xi >> 7) & 1, xi | 0xFF00, xi) if dk == "s" else xi
    return xi.astype(out_u)


def unsupported(name: str) -> MockFault:
    return MockFault(f"{name} is not modelled by the ir3 emulator")
