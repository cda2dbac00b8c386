"""Warp matrix instructions of the CUDA wmma API: wmma.load.{a,b,c}, wmma.mma, wmma.store.d
(f16, bf16, tf32, f64, s8, u8, s4, u4, b1 inputs; f16/f32/f64/s32 accumulators; shapes
m16n16k16, m32n8k16, m8n32k16, m16n16k8 (tf32), m8n8k4 (f64), m8n8k32 (s4/u4), m8n8k128 (b1,
.and.popc / .xor.popc); row and col layouts; .global, .shared or generic addresses with an
optional stride in elements), and stmatrix.

The PTX ISA leaves the distribution of matrix elements over the lanes' fragment registers
unspecified ("target architecture dependent"): a program may only pass fragments between wmma
instructions of the same shape and type, or change every element alike. The mock uses its own
mapping, the same for every shape: element ``e`` of lane ``l`` holds the matrix element at
row-major index ``(32 * e + l) mod (rows * cols)`` (fragments larger than their matrix, such as
f16 A/B, hold it twice; a load fills both copies and mma reads the first)."""
from __future__ import annotations

import numpy as np

from . import fpround as fr
from .ast import Vec
from .decode import Ctx, family
from .errors import IllegalInstruction
from .memory import check_aligned
from .ops_mem import get_space, space_of
from .ops_warp import executing_grid
from .types import TYPES

SHAPES = {"m16n16k16": (16, 16, 16), "m32n8k16": (32, 8, 16), "m8n32k16": (8, 32, 16),
          "m16n16k8": (16, 16, 8), "m8n8k4": (8, 8, 4), "m8n8k32": (8, 8, 32), "m8n8k128": (8, 8, 128)}
# element type -> (bits per element, dtype its bits are handled in)
ELEMS = {"f16": (16, np.uint16), "bf16": (16, np.uint16), "tf32": (32, np.uint32), "f32": (32, np.uint32),
         "f64": (64, np.uint64), "s8": (8, np.uint8), "u8": (8, np.uint8), "s32": (32, np.uint32),
         "s4": (4, np.uint8), "u4": (4, np.uint8), "b1": (1, np.uint8)}
INTS = {"s8", "u8", "s4", "u4", "b1"}
# which element types each shape takes for A/B (the ISA's table of wmma shapes)
SHAPE_TYPES = {"m16n16k16": {"f16", "bf16", "s8", "u8"}, "m32n8k16": {"f16", "bf16", "s8", "u8"},
               "m8n32k16": {"f16", "bf16", "s8", "u8"}, "m16n16k8": {"tf32"}, "m8n8k4": {"f64"},
               "m8n8k32": {"s4", "u4"}, "m8n8k128": {"b1"}}
_SYNC = {"sync", "aligned"}


def _dims(which: str, shape: tuple[int, int, int]) -> tuple[int, int]:
    m, n, k = shape
    return {"a": (m, k), "b": (k, n), "c": (m, n), "d": (m, n)}[which]


def _shape(ctx: Ctx, mods: list[str]) -> tuple[str, tuple[int, int, int]]:
    s = [m for m in mods if m in SHAPES]
    if len(s) != 1:
        raise ctx.error(f"wmma needs one shape of {sorted(SHAPES)}")
    return s[0], SHAPES[s[0]]


def _index(rows: int, cols: int, nelem: int) -> np.ndarray:
    """(32, nelem) row-major matrix index held by each lane's fragment element."""
    return (np.arange(nelem)[None, :] * 32 + np.arange(32)[:, None]) % (rows * cols)


def _fragment_regs(ctx: Ctx, op, etype: str, rows: int, cols: int):
    """The fragment's registers, how many elements each holds, and the register type."""
    if not isinstance(op, Vec):
        raise ctx.error("a wmma fragment is a {register list}")
    ebits = ELEMS[etype][0]
    rtype = TYPES["b64"] if ebits == 64 else TYPES["b32"]
    per = rtype.size * 8 // ebits
    if len(op.items) * per * 32 < rows * cols:
        raise ctx.error(f"fragment of {len(op.items)} registers cannot hold a {rows}x{cols} .{etype} matrix")
    return op.items, per, rtype


def _pack(vals: np.ndarray, per: int, rtype) -> list[np.ndarray]:
    """(n, nregs*per) element bits -> per-register arrays (element 0 in the low bits)."""
    n, ne = vals.shape
    wide = rtype.dtype
    bits = 8 * rtype.size // per
    v = vals.astype(wide).reshape(n, ne // per, per)
    out = np.zeros((n, ne // per), wide)
    for k in range(per):
        out |= v[:, :, k] << wide.type(bits * k)
    return [out[:, r] for r in range(ne // per)]


def _unpack(regs: list[np.ndarray], per: int, rtype, edt) -> np.ndarray:
    bits = 8 * rtype.size // per
    mask = (1 << bits) - 1
    cols = []
    for r in regs:
        r = np.asarray(r).astype(rtype.dtype)
        for k in range(per):
            cols.append(((r >> rtype.dtype.type(bits * k)) & rtype.dtype.type(mask)).astype(edt))
    return np.stack(cols, axis=1)


def _load_store(ctx: Ctx, ins, store: bool):
    mods = list(ins.mods)
    which = mods[1] if len(mods) > 1 else ""
    if which not in (("d",) if store else ("a", "b", "c")):
        raise ctx.error(f"wmma.{mods[0]} needs {'.d' if store else '.a, .b or .c'}")
    name, shape = _shape(ctx, mods)
    layouts = [m for m in mods if m in ("row", "col")]
    types = [m for m in mods if m in ELEMS]
    if len(layouts) != 1 or len(types) != 1:
        raise ctx.error(f"wmma.{mods[0]} needs one layout (.row/.col) and one element type")
    layout, etype = layouts[0], types[0]
    extra = set(mods[2:]) - _SYNC - {name, layout, etype, "global", "shared", "shared::cta"}
    if extra:
        raise ctx.error(f"wmma.{mods[0]} modifiers {sorted(extra)} are not supported")
    if which in ("a", "b") and etype not in SHAPE_TYPES[name]:
        raise ctx.error(f"wmma .{name} does not take .{etype} A/B matrices")
    if ELEMS[etype][0] < 8 and (which, layout) not in (("a", "row"), ("b", "col")):
        raise ctx.error(f"sub-byte wmma matrices are A .row and B .col only (not {which} .{layout})")
    rows, cols = _dims(which, shape)
    space = space_of(ctx, ins)
    ctx.nops(ins, 2, 3)
    frag, addr_op = (ins.operands[1], ins.operands[0]) if store else (ins.operands[0], ins.operands[1])
    items, per, rtype = _fragment_regs(ctx, frag, etype, rows, cols)
    addr = ctx.addr(addr_op, space)
    if len(ins.operands) == 3:
        stride = ctx.rd(ins.operands[2], TYPES["u32"])
    else:
        default = cols if layout == "row" else rows
        stride = lambda s, i, d=np.uint32(default): d          # noqa: E731 - the ISA's default
    ebits, edt = ELEMS[etype]
    idx = _index(rows, cols, len(items) * per)
    r, c = idx // cols, idx % cols
    major, minor = (r, c) if layout == "row" else (c, r)
    readers = [ctx.rd(x, rtype) for x in items] if store else None
    writers = None if store else [ctx.wr(x, rtype) for x in items]

    def addresses(s, i):
        lanes = np.arange(s.L) if i is None else i
        n = len(lanes)
        base = np.broadcast_to(np.asarray(addr(s, i), np.uint64), (n,))
        ld = np.broadcast_to(np.asarray(stride(s, i), np.uint64), (n,))
        # CUDA: "mptr must be a 256-bit aligned pointer pointing to the first element"
        check_aligned(base, 32, lanes, get_space(s, space).name, "write" if store else "read")
        lane = s.lane_t[lanes] % 32
        bit = (major[lane].astype(np.uint64) * ld[:, None] + minor[lane].astype(np.uint64)) * np.uint64(ebits)
        return lanes, base[:, None] + bit // np.uint64(8), (bit % np.uint64(8)).astype(np.uint8)

    if store:
        def run(s, i):
            lanes, ea, _ = addresses(s, i)
            vals = _unpack([rd(s, i) for rd in readers], per, rtype, edt)
            vals = np.broadcast_to(vals, ea.shape)
            # a store writes each element once: the first copy a fragment holds
            first = (np.arange(ea.shape[1]) * 32)[None, :] + (s.lane_t[lanes] % 32)[:, None] < rows * cols
            get_space(s, space).store(ea[first], np.broadcast_to(lanes[:, None], ea.shape)[first],
                                      np.ascontiguousarray(vals[first]))
        return run

    def run(s, i):
        lanes, ea, shift = addresses(s, i)
        vals = get_space(s, space).load(ea.ravel(), np.repeat(lanes, ea.shape[1]), edt).reshape(ea.shape)
        if ebits < 8:                 # sub-byte elements: packed from bit 0 of each byte up
            vals = (vals >> shift) & np.uint8((1 << ebits) - 1)
        for w, v in zip(writers, _pack(vals, per, rtype)):
            w(s, i, v)
    return run


@family("wmma")
def build_wmma(ctx: Ctx, ins):
    mods = list(ins.mods)
    if not mods or mods[0] not in ("load", "store", "mma") or not _SYNC <= set(mods):
        raise ctx.error("wmma needs .load/.store/.mma with .sync.aligned")
    if mods[0] == "load":
        return _load_store(ctx, ins, store=False)
    if mods[0] == "store":
        return _load_store(ctx, ins, store=True)
    return _mma(ctx, ins)


def _values(bits: np.ndarray, etype: str) -> np.ndarray:
    """Element bits -> numbers to multiply (float64 for floats, int64 for integers)."""
    if etype == "f16":
        return bits.astype(np.uint16).view(np.float16).astype(np.float64)
    if etype == "bf16":
        return fr.bf16_to_f32(bits.astype(np.uint16)).astype(np.float64)
    if etype == "tf32":      # the tensor core reads the 19 tf32 bits of the f32 pattern
        return (bits.astype(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)
    if etype == "f32":
        return bits.astype(np.uint32).view(np.float32).astype(np.float64)
    if etype == "f64":
        return bits.astype(np.uint64).view(np.float64)
    if etype == "s8":
        return bits.astype(np.uint8).view(np.int8).astype(np.int64)
    if etype in ("u8", "u4", "b1"):
        return bits.astype(np.int64)
    if etype == "s4":
        return (bits.astype(np.int64) ^ 8) - 8
    if etype == "s32":
        return bits.astype(np.uint32).view(np.int32).astype(np.int64)
    raise AssertionError(etype)


def _bits(x: np.ndarray, etype: str, satfinite: bool) -> np.ndarray:
    if etype == "f16":
        return x.astype(np.float16).view(np.uint16)
    if etype == "f32":
        return x.astype(np.float32).view(np.uint32)
    if etype == "f64":
        return x.astype(np.float64).view(np.uint64)
    if etype == "s32":
        if satfinite:
            x = np.clip(x, -2**31, 2**31 - 1)
        return x.astype(np.int64).astype(np.uint32)
    raise AssertionError(etype)


def _mma(ctx: Ctx, ins):
    mods = list(ins.mods)
    name, shape = _shape(ctx, mods)
    m, n, k = shape
    layouts = [x for x in mods if x in ("row", "col")]
    types = [x for x in mods if x in ELEMS]
    satfinite = "satfinite" in mods
    bitop = "and" if "and" in mods else ("xor" if "xor" in mods else None)
    extra = set(mods[1:]) - _SYNC - {name, "row", "col", "satfinite", "rn", "rz", "rm", "rp", "and", "xor", "popc"} - set(ELEMS)
    if len(layouts) != 2 or extra:
        raise ctx.error("wmma.mma needs .alayout.blayout and supported modifiers"
                        + (f" (not {sorted(extra)})" if extra else ""))
    if len(types) == 2:                       # .dtype.ctype: f16 inputs
        dt, ct, at = types[0], types[1], "f16"
    elif len(types) == 4:                     # .dtype.atype.btype.ctype
        dt, at, bt, ct = types
        if at != bt:
            raise ctx.error("wmma.mma needs A and B of one type")
    else:
        raise ctx.error("wmma.mma needs .dtype.ctype or .dtype.atype.btype.ctype")
    if at not in SHAPE_TYPES[name]:
        raise ctx.error(f"wmma.mma .{name} does not take .{at} inputs")
    if (at == "b1") != (bitop is not None and "popc" in mods):
        raise ctx.error("wmma.mma on .b1 needs .and.popc or .xor.popc (and only .b1 takes them)")
    ints = at in INTS
    if ints != (dt == "s32") or ints != (ct == "s32") or (at == "f64") != (dt == "f64"):
        raise ctx.error(f"wmma.mma .{dt}/.{ct} accumulators do not go with .{at} inputs")
    ctx.nops(ins, 4)
    frags = []
    for op, (etype, which) in zip(ins.operands, [(dt, "d"), (at, "a"), (at, "b"), (ct, "c")]):
        r, c = _dims(which, shape)
        items, per, rtype = _fragment_regs(ctx, op, etype, r, c)
        frags.append((items, per, rtype, etype, r, c))
    d_items, d_per, d_rtype = frags[0][:3]
    readers = [[ctx.rd(x, f[2]) for x in f[0]] for f in frags[1:]]
    writers = [ctx.wr(x, d_rtype) for x in d_items]
    line, text = ins.line, ins.text

    def matrix(s, f, rds, warps) -> np.ndarray:
        """The (W, rows, cols) matrix a warp's fragments hold."""
        items, per, rtype, etype, r, c = f
        regs = [np.asarray(rd(s, None)) for rd in rds]
        regs = [np.broadcast_to(x, (s.L,)) for x in regs]
        vals = _values(_unpack(regs, per, rtype, ELEMS[etype][1]), etype)          # (L, nelem)
        vals = vals.reshape(-1, 32, vals.shape[1])[warps]                          # (W, 32, nelem)
        flat = vals.transpose(0, 2, 1).reshape(len(warps), -1)[:, :r * c]          # first copies
        return flat.reshape(len(warps), r, c)

    def run(s, i):
        ex = executing_grid(s, i)
        warps = np.flatnonzero(ex.any(axis=1))
        if not ex[warps].all():
            raise IllegalInstruction("wmma.mma.sync.aligned executed by a partial warp", text, line)
        A = matrix(s, frags[1], readers[0], warps)
        B = matrix(s, frags[2], readers[1], warps)
        C = matrix(s, frags[3], readers[2], warps)
        if bitop == "xor":        # popc(a ^ b) over k = sum a + sum b - 2 sum ab for bits
            D = A.sum(2)[:, :, None] + B.sum(1)[:, None, :] - 2 * np.matmul(A, B) + C
        else:                     # .and.popc on bits is the 0/1 matrix product
            D = np.matmul(A, B) + C
        if not ints and dt == "f32":
            D = D.astype(np.float32).astype(np.float64)
        bits = _bits(D.reshape(len(warps), -1), dt, satfinite)                      # (W, m*n)
        idx = _index(m, n, len(d_items) * d_per)                                    # (32, nelem)
        per_lane = bits[:, idx]                                                     # (W, 32, nelem)
        lanes = (warps[:, None] * 32 + np.arange(32)[None, :]).ravel()
        regs = _pack(per_lane.reshape(len(lanes), -1), d_per, d_rtype)
        pos = np.full(s.L, -1, np.int64)
        pos[lanes] = np.arange(len(lanes))
        sel = pos[np.arange(s.L) if i is None else i]
        for w, v in zip(writers, regs):
            w(s, i, v[sel])
    return run


@family("stmatrix")
def build_stmatrix(ctx: Ctx, ins):
    """stmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}.shared.b16 [p], {r..}: the inverse of
    ldmatrix: lane t's register j holds row t/4, columns 2(t%4) and 2(t%4)+1 of matrix j; lanes
    8j..8j+7 give the row addresses of matrix j."""
    mods = list(ins.mods)
    if not {"sync", "aligned", "m8n8", "b16"} <= set(mods):
        raise ctx.error("stmatrix needs .sync.aligned.m8n8 ... .b16")
    nums = [x for x in mods if x in ("x1", "x2", "x4")]
    if len(nums) != 1:
        raise ctx.error("stmatrix needs .x1, .x2 or .x4")
    extra = set(mods) - {"sync", "aligned", "m8n8", "b16", "trans", "shared", "shared::cta", nums[0]}
    if extra:
        raise ctx.error(f"stmatrix modifiers {sorted(extra)} are not supported")
    nm, trans = int(nums[0][1:]), "trans" in mods
    ctx.nops(ins, 2)
    a, v = ins.operands
    if not isinstance(v, Vec) or len(v.items) != nm:
        raise ctx.error(f"stmatrix.x{nm} needs {nm} source registers")
    rds = [ctx.rd(x, TYPES["b32"]) for x in v.items]
    addr = ctx.addr(a, "shared")
    line, text = ins.line, ins.text
    L = np.arange(32)
    r, c0 = L // 4, 2 * (L % 4)

    def run(s, i):
        ex = executing_grid(s, i)
        warps = np.flatnonzero(ex.any(axis=1))
        if not ex[warps].all():
            raise IllegalInstruction("stmatrix.sync.aligned executed by a partial warp", text, line)
        W = len(warps)
        lanes = (warps[:, None] * 32 + L[None, :]).ravel()
        M = np.zeros((W, nm, 8, 8), np.uint16)
        for j, rd in enumerate(rds):
            val = np.broadcast_to(np.asarray(rd(s, None)), (s.L,))[lanes].astype(np.uint32).reshape(W, 32)
            lo, hi = (val & np.uint32(0xFFFF)).astype(np.uint16), (val >> np.uint32(16)).astype(np.uint16)
            if trans:
                M[:, j, c0, r], M[:, j, c0 + 1, r] = lo, hi
            else:
                M[:, j, r, c0], M[:, j, r, c0 + 1] = lo, hi
        ad = np.broadcast_to(np.asarray(addr(s, None), np.uint64), (s.L,))
        src = (warps[:, None] * 32 + np.arange(8 * nm)[None, :]).ravel()
        rows_addr = ad[src]
        check_aligned(rows_addr, 16, src, "shared", "write")
        ea = (rows_addr[:, None] + (np.arange(8, dtype=np.uint64) * np.uint64(2))[None, :]).ravel()
        s.shared.store(ea, np.repeat(src, 8), M.reshape(-1))
    return run
