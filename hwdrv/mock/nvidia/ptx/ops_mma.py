"""Tensor-core warp instructions: mma.sync.aligned m16n8k16 / m16n8k8 (.row.col, f16/bf16
inputs, f32 or f16 accumulators; m16n8k8 also with tf32 inputs and f32 accumulators) and
ldmatrix.sync.aligned.m8n8 (.x1/.x2/.x4, .trans).

Fragment layouts follow the PTX ISA ("Matrix Fragments for mma.m16n8k16 with floating point
type", "... for mma.m16n8k8" with .tf32 elements): groupID = laneid >> 2, threadID_in_group =
laneid % 4. A tf32 operand register holds an f32 pattern; the tensor core reads its sign,
exponent and top 10 fraction bits (the low 13 bits are ignored, as wgmma's tf32 does)."""
from __future__ import annotations

import numpy as np

from . import fpround as fr
from .ast import Vec
from .decode import Ctx, family
from .ops_mem import space_of
from .ops_warp import executing_grid
from .errors import IllegalInstruction
from .types import TYPES

_LANE = np.arange(32)
_G, _T = _LANE >> 2, _LANE & 3


def _a_layout(k: int):
    """(rows, cols) of A elements a_i held by each lane: shape (32, n_elems)."""
    n = 8 if k == 16 else 4
    i = np.arange(n)[None, :]
    row = _G[:, None] + 8 * ((i // 2) % 2)
    col = 2 * _T[:, None] + (i & 1) + 8 * (i >= 4)
    return row, col


def _b_layout(k: int):
    n = 4 if k == 16 else 2
    i = np.arange(n)[None, :]
    row = 2 * _T[:, None] + (i & 1) + 8 * (i >= 2)
    col = np.broadcast_to(_G[:, None], row.shape)
    return row, col


def _tf32_layouts():
    """(A rows, A cols), (B rows, B cols) of m16n8k8 .tf32: a0 (g, t), a1 (g+8, t), a2 (g, t+4),
    a3 (g+8, t+4); b0 (t, g), b1 (t+4, g)."""
    i = np.arange(4)[None, :]
    arow, acol = _G[:, None] + 8 * (i % 2), _T[:, None] + 4 * (i // 2)
    j = np.arange(2)[None, :]
    brow = _T[:, None] + 4 * j
    return (arow, acol), (brow, np.broadcast_to(_G[:, None], brow.shape))


def _tf32(regs: list[np.ndarray]) -> np.ndarray:
    """(W, 32) uint32 registers -> (W, 32, len) float64 tf32 values (low 13 bits dropped)."""
    return np.stack([(r.astype(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)
                     for r in regs], axis=-1)


def _c_layout():
    i = np.arange(4)[None, :]
    row = _G[:, None] + 8 * (i >= 2)
    col = 2 * _T[:, None] + (i & 1)
    return row, col


def _halves(regs: list[np.ndarray], fmt: str) -> np.ndarray:
    """(W, 32) uint32 registers -> (W, 32, 2*len) float64 elements, low half first."""
    out = []
    for r in regs:
        r = r.astype(np.uint32)
        for h in (r & np.uint32(0xFFFF), r >> np.uint32(16)):
            h = h.astype(np.uint16)
            out.append(h.view(np.float16).astype(np.float64) if fmt == "f16" else fr.bf16_to_f32(h).astype(np.float64))
    return np.stack(out, axis=-1)


@family("mma")
def build_mma(ctx: Ctx, ins):
    mods = list(ins.mods)
    if "sync" not in mods or "aligned" not in mods:
        raise ctx.error("mma needs .sync.aligned")
    shapes = [m for m in mods if m.startswith("m") and "n" in m and "k" in m]
    if shapes not in (["m16n8k16"], ["m16n8k8"]):
        raise ctx.error(f"mma shape {shapes} is not supported (m16n8k16, m16n8k8)")
    k = 16 if shapes[0] == "m16n8k16" else 8
    if "row" not in mods or "col" not in mods:
        raise ctx.error("mma needs .row.col")
    types = [m for m in mods if m in ("f16", "bf16", "f32", "tf32", "s8", "u8", "f64", "e4m3", "e5m2")]
    if len(types) != 4:
        raise ctx.error("mma needs .dtype.atype.btype.ctype")
    dt, at, bt, ct = types
    tf32 = at == "tf32"
    if at != bt or at not in ("f16", "bf16", "tf32") or dt not in ("f16", "f32") or ct not in ("f16", "f32") \
            or (at in ("bf16", "tf32") and (dt != "f32" or ct != "f32")) or (tf32 and k != 8):
        raise ctx.error(f"mma.{shapes[0]} .{dt}.{at}.{bt}.{ct} is not supported")
    extra = set(mods) - {"sync", "aligned", "row", "col", shapes[0], dt, at, bt, ct}
    if extra:
        raise ctx.error(f"mma modifiers {sorted(extra)} are not supported")
    ctx.nops(ins, 4)
    d, a, b, c = ins.operands
    na, nb = (4, 2) if k == 16 or tf32 else (2, 1)
    nc = 4 if ct == "f32" else 2
    nd = 4 if dt == "f32" else 2
    for op, n, nm in ((d, nd, "d"), (a, na, "a"), (b, nb, "b"), (c, nc, "c")):
        if not isinstance(op, Vec) or len(op.items) != n:
            raise ctx.error(f"mma operand {nm} must be a vector of {n} registers")
    b32 = TYPES["b32"]
    f32 = TYPES["f32"]
    ra = [ctx.rd(x, b32) for x in a.items]
    rb = [ctx.rd(x, b32) for x in b.items]
    rc = [ctx.rd(x, f32 if ct == "f32" else b32) for x in c.items]
    wd = [ctx.wr(x, f32 if dt == "f32" else b32) for x in d.items]
    (arow, acol), (brow, bcol) = _tf32_layouts() if tf32 else (_a_layout(k), _b_layout(k))
    crow, ccol = _c_layout()
    line, text = ins.line, ins.text

    def run(s, i):
        ex = executing_grid(s, i)
        warps = np.flatnonzero(ex.any(axis=1))
        if not ex[warps].all():
            raise IllegalInstruction("mma.sync.aligned executed by a partial warp", text, line)
        lanes = (warps[:, None] * 32 + _LANE[None, :])            # (W, 32)

        def grab(rs, dtype):
            return [np.asarray(r(s, None)).astype(dtype)[lanes] if np.ndim(r(s, None)) else
                    np.full(lanes.shape, r(s, None), dtype) for r in rs]
        W = len(warps)
        A = np.zeros((W, 16, k))
        B = np.zeros((W, k, 8))
        C = np.zeros((W, 16, 8))
        unpack = _tf32 if tf32 else (lambda regs: _halves(regs, at))
        av = unpack(grab(ra, np.uint32))                        # (W, 32, elements per lane)
        bv = unpack(grab(rb, np.uint32))
        A[:, arow, acol] = av
        B[:, brow, bcol] = bv
        if ct == "f32":
            cv = np.stack(grab(rc, np.float32), axis=-1).astype(np.float64)
        else:
            cv = _halves(grab(rc, np.uint32), "f16")
        C[:, crow, ccol] = cv
        D = np.matmul(A, B) + C                                  # exact products, f64 sums
        dv = D[:, crow, ccol]                                    # (W, 32, 4)
        if dt == "f32":
            outs = [dv[..., j].astype(np.float32) for j in range(4)]
        else:
            h = dv.astype(np.float16).view(np.uint16).astype(np.uint32)
            outs = [(h[..., 2 * j] | (h[..., 2 * j + 1] << np.uint32(16))) for j in range(2)]
        flat = lanes.ravel()
        pos = np.full(s.L, -1, np.int64)
        pos[flat] = np.arange(flat.size)
        sel = pos[np.arange(s.L) if i is None else i]
        for wr_, o in zip(wd, outs):
            wr_(s, i, o.ravel()[sel])
    return run


@family("ldmatrix")
def build_ldmatrix(ctx: Ctx, ins):
    mods = list(ins.mods)
    if "sync" not in mods or "aligned" not in mods or "m8n8" not in mods or "b16" not in mods:
        raise ctx.error("ldmatrix needs .sync.aligned.m8n8 ... .b16")
    nums = [m for m in mods if m in ("x1", "x2", "x4")]
    if len(nums) != 1:
        raise ctx.error("ldmatrix needs .x1, .x2 or .x4")
    extra = set(mods) - {"sync", "aligned", "m8n8", "b16", "trans", "shared", "shared::cta", nums[0]}
    if extra:
        raise ctx.error(f"ldmatrix modifiers {sorted(extra)} are not supported")
    nm = int(nums[0][1:])
    trans = "trans" in mods
    space = space_of(ctx, ins)
    ctx.nops(ins, 2)
    d, a = ins.operands
    if not isinstance(d, Vec) or len(d.items) != nm:
        raise ctx.error(f"ldmatrix.x{nm} needs {nm} destination registers")
    wd = [ctx.wr(x, TYPES["b32"]) for x in d.items]
    addr = ctx.addr(a, space)
    line, text = ins.line, ins.text

    def run(s, i):
        ex = executing_grid(s, i)
        warps = np.flatnonzero(ex.any(axis=1))
        if not ex[warps].all():
            raise IllegalInstruction("ldmatrix.sync.aligned executed by a partial warp", text, line)
        ad = addr(s, None)
        ad = np.broadcast_to(np.asarray(ad, np.uint64), (s.L,))
        src_lanes = (warps[:, None] * 32 + np.arange(8 * nm)[None, :]).ravel()      # row providers
        rows_addr = ad[src_lanes]
        ea = (rows_addr[:, None] + (np.arange(8, dtype=np.uint64) * np.uint64(2))[None, :]).ravel()
        el = np.repeat(src_lanes, 8)
        from .memory import check_aligned
        sp = s.space(space)
        check_aligned(rows_addr, 16, src_lanes, sp.name, "read")
        M = sp.load(ea, el, np.uint16).reshape(len(warps), nm, 8, 8)    # [w, matrix, row, col]
        L = np.arange(32)
        r, c0 = L // 4, 2 * (L % 4)
        if trans:
            lo, hi = M[:, :, c0, r], M[:, :, c0 + 1, r]
        else:
            lo, hi = M[:, :, r, c0], M[:, :, r, c0 + 1]
        val = lo.astype(np.uint32) | (hi.astype(np.uint32) << np.uint32(16))     # (W, nm, 32)
        lanes = (warps[:, None] * 32 + L[None, :]).ravel()
        pos = np.full(s.L, -1, np.int64)
        pos[lanes] = np.arange(lanes.size)
        sel = pos[np.arange(s.L) if i is None else i]
        for m, wr_ in enumerate(wd):
            wr_(s, i, val[:, m, :].ravel()[sel])
    return run
