"""Tensor copies (TMA): cp.async.bulk.tensor.{1..5}d tile loads global -> shared::cluster that
complete a transaction on an mbarrier, tile stores shared::cta -> global (.bulk_group), and
cp.async.bulk.prefetch.tensor.

The copy is described by a 128-byte tiled CUtensorMap (tensormap.py) reached through the
instruction's ``[tmap, {c0, ...}]`` operand: a kernel parameter (a by-value map, ``.param
.align 64 .b8 tmap[128]``) or a register holding its generic address (a map in global memory,
or cvta.param of the parameter). The box of ``box[0] x box[1] x ...`` elements starting at the
(signed) coordinates lies row-major in shared memory, dimension 0 innermost; elements outside
the tensor read as zero (or, with the map's NaN fill, as the type's canonical NaN) and are not
written by a store. The map's swizzle permutes 16-byte chunks by shared-memory address bits
(tensormap.swizzle_offsets). Copies are done at once; a load's box bytes (out-of-bound ones
included) complete on its mbarrier at once, as cp.async.bulk does (ops_mbarrier.py).

A box whose first coordinate does not start on a 16-byte boundary (coordinate x element size
not a multiple of 16, negative ones included) faults, whatever the swizzle: an H100 (driver
580.159.04, 2026-12-06, tests/hardware/tma_swizzle_probe.py) stopped with a shader exception on
each of 7 such loads (starts of -10, 6, 18, 82 and 100 bytes; swizzle none, 32B, 64B, 128B) and
loaded every 16-byte-aligned one. Stores are held to the same rule (not measured).

Not modelled, and refused with an IllegalInstruction naming the feature: im2col mode,
.multicast::cluster, interleaved maps, element strides other than 1, and swizzled boxes whose
inner dimension is narrower than the swizzle span (the same H100 accepted three such loads but
laid the rows out otherwise than full-span rows; that layout was not measured)."""
from __future__ import annotations

import numpy as np

from .ast import Addr, Group, Reg, Sym, Vec
from .errors import IllegalInstruction
from .memory import PARAM_WINDOW, WINDOW_SIZE, check_aligned
from .ops_mbarrier import update
from .tensormap import FLOAT_TYPES, TENSOR_MAP_ALIGN, TENSOR_MAP_BYTES, TensorMap, decode_tensor_map, swizzle_offsets
from .types import TYPES

SMEM_BOX_ALIGN = 128        # PTX ISA cp.async.bulk.tensor: the shared-memory box is 128-byte aligned
_RAW = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
# Canonical NaN bit patterns per element size (PTX's canonical NaN: sign 0, all exponent and
# mantissa bits set); the exact pattern the TMA unit writes was not measured.
_NAN_BITS = {2: 0x7FFF, 4: 0x7FFFFFFF, 8: 0x7FFFFFFFFFFFFFFF}
_IGNORED = {"async", "bulk", "tensor", "tile", "L2::cache_hint"}


def _tensor_operand(ctx, op, rank: int):
    """``[tmap, {c0, ..}]`` -> (map reader, coordinate readers). The map reader returns, per
    issuing lane, (space name, byte offset or address)."""
    if not isinstance(op, Group) or len(op.items) != 2 or not isinstance(op.items[1], Vec):
        raise ctx.error("the tensor operand must be [tensorMap, {coordinates}]")
    base, coords = op.items
    if len(coords.items) != rank:
        raise ctx.error(f"a {rank}d tensor copy takes {rank} coordinates, got {len(coords.items)}")
    readers = [ctx.rd(c, TYPES["s32"]) for c in coords.items]
    if isinstance(base, Sym):
        space, off = ctx.syms.lookup(base.name, ctx.line)
        if space not in ("param", "global"):
            raise ctx.error(f"tensor map {base.name} is in .{space}; the mock reads maps from .param or .global")
        where = ctx.addr(Addr(base, 0), space)
        return (lambda s, i: (space, where(s, i))), readers
    if isinstance(base, Reg):
        where = ctx.addr(Addr(base, 0), "generic")

        def generic(s, i):
            a = np.asarray(where(s, i), np.uint64)
            in_param = (a >= np.uint64(PARAM_WINDOW)) & (a < np.uint64(PARAM_WINDOW + WINDOW_SIZE))
            if in_param.all():
                return "param", a - np.uint64(PARAM_WINDOW)
            if in_param.any():
                raise IllegalInstruction("tensor-map addresses of one instruction span .param and .global")
            return "global", a
        return generic, readers
    raise ctx.error(f"bad tensor-map operand {base!r}")


def _read_map(s, space: str, addr: int, lane: int) -> TensorMap:
    a = np.uint64(addr)
    if int(a) % TENSOR_MAP_ALIGN:
        raise IllegalInstruction(f"tensor map at .{space} address {int(a):#x} is not {TENSOR_MAP_ALIGN}-byte aligned")
    offs = a + np.arange(TENSOR_MAP_BYTES, dtype=np.uint64)
    sp = s.param if space == "param" else s.global_
    raw = sp.load(offs, np.full(TENSOR_MAP_BYTES, lane), np.uint8, "read")
    return decode_tensor_map(raw.tobytes(), f"tensor map at .{space} {int(a):#x}")


def _check_map(tm: TensorMap, rank: int, fill: bool) -> None:
    if tm.rank != rank:
        raise IllegalInstruction(f"{rank}d tensor copy with a rank-{tm.rank} tensor map")
    if tm.interleave:
        raise IllegalInstruction("interleaved tensor maps are not modelled by the mock")
    if any(e != 1 for e in tm.element_strides):
        raise IllegalInstruction(f"tensor-map element strides {tm.element_strides} are not modelled (only 1)")
    inner = tm.box[0] * tm.elem_bytes
    if inner % 16:
        raise IllegalInstruction(f"tensor-map inner box of {inner} bytes is not a multiple of 16")
    if tm.swizzle and inner != tm.swizzle:
        raise IllegalInstruction(f"a {inner}-byte inner box with {tm.swizzle}B swizzle: only boxes exactly as wide "
                                 "as the swizzle span are modelled")
    if any(b > 256 for b in tm.box):
        raise IllegalInstruction(f"tensor-map box {tm.box} exceeds 256 elements in a dimension")
    if fill and tm.oob_nan and tm.elemtype not in FLOAT_TYPES:
        raise IllegalInstruction(f"NaN out-of-bound fill on a .{tm.elemtype} tensor map")


def _box(tm: TensorMap, coords: list[int]):
    """Global addresses, in-bound mask and shared-memory byte offsets (before swizzle) of the
    box's elements in shared-memory order."""
    if coords[0] * tm.elem_bytes % 16:
        raise IllegalInstruction(f"tensor copy starting at inner coordinate {coords[0]} ({coords[0] * tm.elem_bytes} "
                                 "bytes): the box must start on a 16-byte boundary")
    grids = np.indices(tm.box[::-1]).reshape(tm.rank, -1)[::-1]        # dimension 0 fastest
    c = grids.astype(np.int64) + np.asarray(coords, np.int64)[:, None]
    inb = np.all((c >= 0) & (c < np.asarray(tm.dims, np.int64)[:, None]), axis=0)
    steps = np.asarray((tm.elem_bytes,) + tm.strides, np.int64)[:, None]
    gaddr = (np.int64(tm.address) + (np.where(inb, c, 0) * steps).sum(axis=0)).astype(np.uint64)
    soff = np.arange(c.shape[1], dtype=np.uint64) * np.uint64(tm.elem_bytes)
    return gaddr, inb, soff


def build_tensor_copy(ctx, ins):
    """cp.async.bulk.tensor.Nd loads/stores and cp.async.bulk.prefetch.tensor.Nd."""
    mods = list(ins.mods)
    dims = [m for m in mods if len(m) == 2 and m[1] == "d" and m[0] in "12345"]
    if len(dims) != 1:
        raise ctx.error("cp.async.bulk.tensor needs a dimension modifier .1d ... .5d")
    rank = int(dims[0][0])
    if "im2col" in mods or "im2col_no_offs" in mods:
        raise ctx.error("cp.async.bulk.tensor .im2col mode is not modelled by the mock")
    if "multicast::cluster" in mods:
        raise ctx.error("cp.async.bulk.tensor .multicast::cluster is not modelled by the mock")
    rest = set(mods) - _IGNORED - {dims[0]}
    line, text = ins.line, ins.text
    if "prefetch" in rest:
        if rest - {"prefetch", "L2", "global"}:
            raise ctx.error(f"cp.async.bulk.prefetch.tensor modifiers {sorted(rest)} are not supported")
        ctx.nops(ins, 1, 2)
        tmap, coords = _tensor_operand(ctx, ins.operands[0], rank)

        def prefetch(s, i):                      # a cache hint; the map must still be valid
            for lane, (space, a) in _issuers(s, i, tmap):
                _check_map(_read_map(s, space, a, lane), rank, False)
        return prefetch
    if rest == {"shared::cluster", "global", "mbarrier::complete_tx::bytes"}:
        ctx.nops(ins, 3, 4)
        dst, mbar = ctx.addr(ins.operands[0], "shared"), ctx.addr(ins.operands[2], "shared")
        tmap, coords = _tensor_operand(ctx, ins.operands[1], rank)

        def load(s, i):
            for k, (lane, (space, a)) in enumerate(_issuers(s, i, tmap)):
                tm = _read_map(s, space, a, lane)
                _check_map(tm, rank, True)
                d = int(_lane_value(dst(s, i), k))
                m = np.uint64(_lane_value(mbar(s, i), k))
                ln = np.array([lane])
                check_aligned(np.array([d], np.uint64), SMEM_BOX_ALIGN, ln, "shared", "write")
                check_aligned(np.array([m], np.uint64), 8, ln, "shared", "read")
                gaddr, inb, soff = _box(tm, [int(_lane_value(c(s, i), k)) for c in coords])
                raw = _RAW[tm.elem_bytes]
                vals = np.full(len(gaddr), _NAN_BITS[tm.elem_bytes] if tm.oob_nan else 0, raw)
                if inb.any():
                    vals[inb] = s.global_.load(gaddr[inb], np.full(int(inb.sum()), lane), raw)
                where = swizzle_offsets(np.uint64(d) + soff, tm.swizzle)
                s.shared.store(where, np.full(len(where), lane), vals)
                update(s, s.shared, ln, np.array([m]), np.zeros(1, np.int64), np.array([-tm.box_bytes]),
                       False, text, line)
        return load
    if rest == {"global", "shared::cta", "bulk_group"}:
        ctx.nops(ins, 2, 3)
        tmap, coords = _tensor_operand(ctx, ins.operands[0], rank)
        src = ctx.addr(ins.operands[1], "shared")

        def store(s, i):
            for k, (lane, (space, a)) in enumerate(_issuers(s, i, tmap)):
                tm = _read_map(s, space, a, lane)
                _check_map(tm, rank, False)
                d = int(_lane_value(src(s, i), k))
                check_aligned(np.array([d], np.uint64), SMEM_BOX_ALIGN, np.array([lane]), "shared", "read")
                gaddr, inb, soff = _box(tm, [int(_lane_value(c(s, i), k)) for c in coords])
                where = swizzle_offsets(np.uint64(d) + soff, tm.swizzle)
                raw = _RAW[tm.elem_bytes]
                vals = s.shared.load(where, np.full(len(where), lane), raw)
                if inb.any():
                    s.global_.store(gaddr[inb], np.full(int(inb.sum()), lane), vals[inb])
        return store
    raise ctx.error(f"cp.async.bulk.tensor form .{'.'.join(mods)} is not supported")


def _lane_value(v, k: int):
    a = np.asarray(v)
    return a[()] if a.ndim == 0 else a[k]


def _issuers(s, i, tmap):
    """(lane, (space, map address)) for each lane issuing the copy (usually one elected lane)."""
    lanes = np.arange(s.L) if i is None else i
    space, addrs = tmap(s, i)
    addrs = np.broadcast_to(np.asarray(addrs, np.uint64), (len(lanes),))
    return [(int(lane), (space, int(a))) for lane, a in zip(lanes, addrs)]
