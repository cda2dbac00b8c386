"""Logic and bit manipulation: and or xor not cnot lop3 shl shr shf bfe bfi popc clz brev bfind prmt."""
from __future__ import annotations

import numpy as np

from .decode import Ctx, family
from .types import TYPES, UNSIGNED, PType

U64 = np.uint64


def _u(v, t: PType) -> np.ndarray:
    """Value of type t as an unsigned array of its width."""
    return np.asarray(v).view(UNSIGNED[t.size]) if np.ndim(v) else np.array(v).view(UNSIGNED[t.size])


def _shr64(x: np.ndarray, n) -> np.ndarray:
    n = np.asarray(n, np.uint64)
    return np.where(n >= 64, U64(0), x >> np.minimum(n, U64(63)))


def _shl64(x: np.ndarray, n) -> np.ndarray:
    n = np.asarray(n, np.uint64)
    return np.where(n >= 64, U64(0), x << np.minimum(n, U64(63)))


def _mask64(n) -> np.ndarray:
    """Low-n-bit masks (n in 0..64)."""
    n = np.asarray(n, np.uint64)
    return np.where(n >= 64, ~U64(0), (U64(1) << np.minimum(n, U64(63))) - U64(1))


@family("and", "or", "xor", "not", "cnot")
def build_logic(ctx: Ctx, ins):
    t = ctx.one_type(ins, {"pred", "b16", "b32", "b64"})
    ctx.check_mods(ins, set())
    op = ins.opcode
    ctx.nops(ins, 2 if op in ("not", "cnot") else 3)
    srcs = [ctx.rd(o, t) for o in ins.operands[1:]]
    w = ctx.wr(ins.operands[0], t)
    if op == "not":
        a, = srcs
        return lambda s, i: w(s, i, np.invert(a(s, i)))
    if op == "cnot":
        if t.kind == "p":
            raise ctx.error("cnot.pred does not exist")
        a, = srcs
        return lambda s, i: w(s, i, (np.asarray(a(s, i)) == 0).astype(t.dtype))
    f = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[op]
    a, b = srcs
    return lambda s, i: w(s, i, f(a(s, i), b(s, i)))


@family("lop3")
def build_lop3(ctx: Ctx, ins):
    t = ctx.one_type(ins, {"b32"})
    ctx.check_mods(ins, set())
    ctx.nops(ins, 5)
    from .ast import Imm
    if not isinstance(ins.operands[4], Imm):
        raise ctx.error("lop3 needs an immediate truth table")
    lut = ins.operands[4].value & 0xFF
    a, b, c = (ctx.rd(o, t) for o in ins.operands[1:4])
    w = ctx.wr(ins.operands[0], t)

    def run(s, i):
        x, y, z = np.asarray(a(s, i)), np.asarray(b(s, i)), np.asarray(c(s, i))
        r = np.zeros(np.broadcast(x, y, z).shape, np.uint32)
        for k in range(8):
            if lut >> k & 1:
                r |= (x if k & 4 else ~x) & (y if k & 2 else ~y) & (z if k & 1 else ~z)
        w(s, i, r)
    return run


@family("shl", "shr")
def build_shift(ctx: Ctx, ins):
    t = ctx.one_type(ins, {"b16", "b32", "b64", "u16", "u32", "u64", "s16", "s32", "s64"})
    ctx.check_mods(ins, set())
    if ins.opcode == "shl" and t.kind != "b":
        raise ctx.error("shl takes a .b type")
    ctx.nops(ins, 3)
    a = ctx.rd(ins.operands[1], t)
    n = ctx.rd(ins.operands[2], TYPES["u32"])
    w = ctx.wr(ins.operands[0], t)
    W = t.bits
    if ins.opcode == "shl":
        # shift amounts >= the width give 0 (numpy, like C, leaves them undefined)
        return lambda s, i: w(s, i, _shl64(_u(a(s, i), t).astype(U64), n(s, i)).astype(UNSIGNED[t.size]))
    if t.kind == "s":
        def run(s, i):
            x = np.asarray(a(s, i)).astype(np.int64)
            k = np.minimum(np.asarray(n(s, i), np.int64), W - 1)
            w(s, i, (x >> k).astype(t.dtype))
        return run
    return lambda s, i: w(s, i, _shr64(_u(a(s, i), t).astype(U64), n(s, i)).astype(UNSIGNED[t.size]).view(t.dtype))


@family("shf")
def build_shf(ctx: Ctx, ins):
    ctx.one_type(ins, {"b32"})
    ctx.check_mods(ins, {"l", "r", "wrap", "clamp"})
    left = "l" in ins.mods
    if left == ("r" in ins.mods) or ("wrap" in ins.mods) == ("clamp" in ins.mods):
        raise ctx.error("shf needs one of .l/.r and one of .wrap/.clamp")
    wrap = "wrap" in ins.mods
    ctx.nops(ins, 4)
    u32 = TYPES["u32"]
    a, b, c = (ctx.rd(o, u32) for o in ins.operands[1:])
    w = ctx.wr(ins.operands[0], TYPES["b32"])

    def run(s, i):
        v = (np.asarray(b(s, i)).astype(U64) << U64(32)) | np.asarray(a(s, i)).astype(U64)
        k = np.asarray(c(s, i)).astype(U64)
        k = k & U64(31) if wrap else np.minimum(k, U64(32))
        r = ((v << k) >> U64(32)) if left else (v >> k)
        w(s, i, (r & U64(0xFFFFFFFF)).astype(np.uint32))
    return run


@family("bfe")
def build_bfe(ctx: Ctx, ins):
    t = ctx.one_type(ins, {"u32", "u64", "s32", "s64"})
    ctx.check_mods(ins, set())
    ctx.nops(ins, 4)
    a = ctx.rd(ins.operands[1], t)
    pos_r, len_r = (ctx.rd(o, TYPES["u32"]) for o in ins.operands[2:])
    w = ctx.wr(ins.operands[0], t)
    W = t.bits

    def run(s, i):
        x = _u(a(s, i), t).astype(U64)
        pos = np.asarray(pos_r(s, i)).astype(U64) & U64(0xFF)
        ln = np.asarray(len_r(s, i)).astype(U64) & U64(0xFF)
        avail = np.where(pos >= W, U64(0), U64(W) - np.minimum(pos, U64(W)))
        take = np.minimum(ln, avail)
        field = _shr64(x, pos) & _mask64(take)
        if t.kind == "s":
            sb = np.minimum(pos + ln - U64(1), U64(W - 1))
            sbit = (_shr64(x, sb) & U64(1)).astype(bool) & (ln > 0)
            fill = _mask64(U64(W)) & ~_mask64(take)
            field = np.where(sbit, field | fill, field)
        field = np.where(ln == 0, U64(0), field)
        w(s, i, field.astype(UNSIGNED[t.size]).view(t.dtype))
    return run


@family("bfi")
def build_bfi(ctx: Ctx, ins):
    t = ctx.one_type(ins, {"b32", "b64"})
    ctx.check_mods(ins, set())
    ctx.nops(ins, 5)
    f_r, b_r = ctx.rd(ins.operands[1], t), ctx.rd(ins.operands[2], t)
    pos_r, len_r = (ctx.rd(o, TYPES["u32"]) for o in ins.operands[3:])
    w = ctx.wr(ins.operands[0], t)
    W = t.bits

    def run(s, i):
        f = _u(f_r(s, i), t).astype(U64)
        b = _u(b_r(s, i), t).astype(U64)
        pos = np.asarray(pos_r(s, i)).astype(U64) & U64(0xFF)
        ln = np.asarray(len_r(s, i)).astype(U64) & U64(0xFF)
        avail = np.where(pos >= W, U64(0), U64(W) - np.minimum(pos, U64(W)))
        m = _shl64(_mask64(np.minimum(ln, avail)), pos)
        r = (b & ~m) | (_shl64(f, pos) & m)
        w(s, i, r.astype(UNSIGNED[t.size]))
    return run


def _popc64(x: np.ndarray) -> np.ndarray:
    x = x - ((x >> U64(1)) & U64(0x5555555555555555))
    x = (x & U64(0x3333333333333333)) + ((x >> U64(2)) & U64(0x3333333333333333))
    x = (x + (x >> U64(4))) & U64(0x0F0F0F0F0F0F0F0F)
    return ((x * U64(0x0101010101010101)) >> U64(56)).astype(np.uint32)


def _clz(x: np.ndarray, W: int) -> np.ndarray:
    x = np.asarray(x, U64)
    n = np.zeros(x.shape, np.uint32)
    for sh in (32, 16, 8, 4, 2, 1):
        if sh >= W:
            continue
        top = (x >> U64(W - sh)) == 0
        n = n + np.where(top, np.uint32(sh), np.uint32(0))
        x = np.where(top, (x << U64(sh)) & _mask64(U64(W)), x)
    return n + ((x >> U64(W - 1)) == 0).astype(np.uint32)


def _brev(x: np.ndarray, W: int) -> np.ndarray:
    x = np.asarray(x, U64)
    for sh, m in ((1, 0x5555555555555555), (2, 0x3333333333333333), (4, 0x0F0F0F0F0F0F0F0F),
                  (8, 0x00FF00FF00FF00FF), (16, 0x0000FFFF0000FFFF), (32, 0x00000000FFFFFFFF)):
        x = ((x >> U64(sh)) & U64(m)) | ((x & U64(m)) << U64(sh))
    return x >> U64(64 - W)


@family("popc", "clz", "brev", "bfind")
def build_bitcount(ctx: Ctx, ins):
    op = ins.opcode
    allowed = {"b32", "b64"} if op != "bfind" else {"u32", "u64", "s32", "s64"}
    t = ctx.one_type(ins, allowed)
    ctx.check_mods(ins, {"shiftamt"} if op == "bfind" else set())
    ctx.nops(ins, 2)
    a = ctx.rd(ins.operands[1], t)
    W = t.bits
    if op == "brev":
        w = ctx.wr(ins.operands[0], t)
        return lambda s, i: w(s, i, _brev(_u(a(s, i), t).astype(U64), W).astype(UNSIGNED[t.size]))
    w = ctx.wr(ins.operands[0], TYPES["u32"])
    if op == "popc":
        return lambda s, i: w(s, i, _popc64(_u(a(s, i), t).astype(U64)))
    if op == "clz":
        return lambda s, i: w(s, i, _clz(_u(a(s, i), t).astype(U64), W))
    shiftamt = "shiftamt" in ins.mods

    def run(s, i):
        x = _u(a(s, i), t).astype(U64)
        if t.kind == "s":
            neg = (x >> U64(W - 1)) & U64(1) == 1
            x = np.where(neg, ~x & _mask64(U64(W)), x)
        lz = _clz(x, W).astype(np.int64)
        pos = (W - 1) - lz
        r = np.where(x == 0, 0xFFFFFFFF, (W - 1 - pos) if shiftamt else pos)
        w(s, i, np.asarray(r).astype(np.uint32))
    return run


# prmt modes: byte sources of d.b0..d.b3 for selector c[1:0] (PTX ISA prmt table)
_PRMT_MODES = {
    "f4e": [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]],
    "b4e": [[0, 7, 6, 5], [1, 0, 7, 6], [2, 1, 0, 7], [3, 2, 1, 0]],
    "rc8": [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]],
    "ecl": [[0, 1, 2, 3], [1, 1, 2, 3], [2, 2, 2, 3], [3, 3, 3, 3]],
    "ecr": [[0, 0, 0, 0], [0, 1, 1, 1], [0, 1, 2, 2], [0, 1, 2, 3]],
    "rc16": [[0, 1, 0, 1], [2, 3, 2, 3], [0, 1, 0, 1], [2, 3, 2, 3]],
}


@family("prmt")
def build_prmt(ctx: Ctx, ins):
    ctx.one_type(ins, {"b32"})
    modes = [m for m in ins.mods if m in _PRMT_MODES]
    ctx.check_mods(ins, set(_PRMT_MODES))
    ctx.nops(ins, 4)
    u32 = TYPES["u32"]
    a, b, c = (ctx.rd(o, u32) for o in ins.operands[1:])
    w = ctx.wr(ins.operands[0], TYPES["b32"])
    table = np.array(_PRMT_MODES[modes[0]], np.uint64) if modes else None

    def run(s, i):
        x, y, sel = (np.asarray(f(s, i)).astype(U64) for f in (a, b, c))
        x, y, sel = np.broadcast_arrays(x, y, sel)
        src = x | (y << U64(32))
        r = np.zeros(x.shape, U64)
        for k in range(4):
            if table is None:
                nib = (sel >> U64(4 * k)) & U64(0xF)
                byte = (src >> ((nib & U64(7)) * U64(8))) & U64(0xFF)
                byte = np.where(nib & U64(8) != 0, np.where(byte & U64(0x80) != 0, U64(0xFF), U64(0)), byte)
            else:
                idx = table[(sel & U64(3)).astype(np.int64), k]
                byte = (src >> (idx * U64(8))) & U64(0xFF)
            r |= byte << U64(8 * k)
        w(s, i, r.astype(np.uint32))
    return run
