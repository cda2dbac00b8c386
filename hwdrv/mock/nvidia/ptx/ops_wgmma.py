"""Warpgroup instructions of sm_90a: wgmma.mma_async (with shared-memory matrix descriptors),
wgmma.fence / commit_group / wait_group, and setmaxnreg.

wgmma.mma_async.sync.aligned.m64nNk{8,16,32}.f32.{f16,bf16,tf32,e4m3,e5m2}: D (64 x N, f32, in the
registers of the 128 threads of a warpgroup) = A (64 x K) * B (K x N) (+ D when scale-d is
true), A from four registers per thread or from a descriptor, B from a descriptor. The
descriptor (PTX ISA 9.7.15.5.1.2.2, table in nvidia-perf.md 1.1) gives the start address, the
leading/stride byte offsets, the base offset and the swizzle mode; element (row, k) of a
K-major operand (imm-trans 0) lies at

    start + (row / 8) * SBO + (row % 8) * R + k-byte            (R: 16 bytes, or the swizzle width)

with k-bytes beyond 16 at + LBO when not swizzled; an MN-major operand (imm-trans 1, 16-bit
types) follows the transposed canonical layouts of the same section: ((T,S,m),(8,k)) with
strides ((1,T,LBO),(S*T,SBO)) for swizzle width S*16 bytes, ((1,T,SBO),(T,LBO)) without swizzle
(T: elements per 16 bytes). A swizzled address has its 16-byte chunk bits XORed with its
(128-byte row - base offset) bits, as tensor copies write them (tensormap.swizzle_offsets, here with the base offset).

Asynchrony: the product is computed when mma_async issues, but the accumulator registers (and
the A registers) count as in flight until a wgmma.wait_group retires the group that holds the
instruction. Any other instruction that touches an in-flight register faults (the PTX ISA makes
such an access undefined: the mock refuses it instead of handing out a value), as does an
mma_async issued without a wgmma.fence after the warpgroup last touched wgmma registers with
other instructions (or before its first mma_async). Proxy ordering of shared memory
(fence.proxy.async) needs no model: the mock has one memory proxy."""
from __future__ import annotations

import numpy as np

from .ast import Group, Imm, Reg, Vec
from .decode import Ctx, family
from .errors import IllegalInstruction
from .fp8 import decode as fp8_decode
from .types import TYPES

WARPGROUP = 128
M = 64
# A/B element types: (bytes per element, K of one instruction, may be transposed)
ELEMENTS = {"f16": (2, 16, True), "bf16": (2, 16, True), "tf32": (4, 8, False), "e4m3": (1, 32, False),
            "e5m2": (1, 32, False)}
K_BYTES = 32                           # every wgmma shape reads 32 bytes of K per row

# Matrix descriptor fields (nvidia-perf.md 1.1): (first bit, width)
_START, _LBO, _SBO = (0, 14), (16, 14), (32, 14)
_BASE_OFFSET, _SWIZZLE = (49, 3), (62, 2)
_ENCODE_SHIFT = 4                      # encode(x) = (x & 0x3FFFF) >> 4
_USED_BITS = sum(((1 << w) - 1) << b for b, w in (_START, _LBO, _SBO, _BASE_OFFSET, _SWIZZLE))
SWIZZLE_BYTES = {0: 0, 1: 128, 2: 64, 3: 32}           # wgmma numbering (not the tensor map's)
SETMAXNREG_RANGE = (24, 256)


def _bits(v: int, field) -> int:
    return (v >> field[0]) & ((1 << field[1]) - 1)


def decode_descriptor(desc: int) -> dict:
    """The fields of a wgmma shared-memory matrix descriptor; IllegalInstruction if bits the
    format leaves unused are set (e.g. a Blackwell tcgen05 descriptor)."""
    desc = int(desc) & (2**64 - 1)
    if desc & ~_USED_BITS:
        raise IllegalInstruction(f"wgmma matrix descriptor {desc:#018x} sets reserved bits "
                                 f"{desc & ~_USED_BITS:#x} (not an sm_90 descriptor?)")
    sw = SWIZZLE_BYTES[_bits(desc, _SWIZZLE)]
    base = _bits(desc, _BASE_OFFSET)
    if base and not sw:
        raise IllegalInstruction(f"wgmma matrix descriptor {desc:#018x}: base offset {base} without a swizzle mode")
    return {"start": _bits(desc, _START) << _ENCODE_SHIFT, "lbo": _bits(desc, _LBO) << _ENCODE_SHIFT,
            "sbo": _bits(desc, _SBO) << _ENCODE_SHIFT, "base_offset": base, "swizzle": sw}


def operand_offsets(d: dict, rows: int, k: int, esize: int, trans: bool) -> np.ndarray:
    """Shared-memory byte addresses (rows x k) of the operand a descriptor describes."""
    r = np.arange(rows, dtype=np.int64)[:, None]
    kk = np.arange(k, dtype=np.int64)[None, :]
    sw, lbo, sbo = d["swizzle"], d["lbo"], d["sbo"]
    if not trans:
        kb = kk * esize
        width = sw or 16
        off = (r // 8) * sbo + (r % 8) * width + kb % width + (0 if sw else (kb // 16) * lbo)
    else:
        t = 16 // esize                                   # elements per 16 bytes
        if sw:
            s = sw // 16
            off = (r % t) * esize + ((r // t) % s) * 16 + (r // (t * s)) * lbo + (kk % 8) * sw + (kk // 8) * sbo
        else:
            off = (r % t) * esize + (r // t) * sbo + (kk % 8) * 16 + (kk // 8) * lbo
    a = (d["start"] + off).astype(np.uint64)
    if sw:
        mask = np.uint64({32: 1, 64: 3, 128: 7}[sw])
        phase = ((a >> np.uint64(7)) - np.uint64(d["base_offset"])) & mask
        a = a ^ (phase << np.uint64(4))
    return a


def _values(raw: np.ndarray, etype: str) -> np.ndarray:
    """Raw element bits -> float64 values."""
    if etype == "f16":
        return raw.astype(np.uint16).view(np.float16).astype(np.float64)
    if etype == "bf16":
        return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
    if etype == "tf32":                                   # the low 13 mantissa bits are not used
        return (raw.astype(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)
    return fp8_decode(raw.astype(np.uint8), etype).astype(np.float64)


# ---- asynchronous register state ----------------------------------------------------------------
class AsyncState:
    """Per-lane wgmma bookkeeping of one chunk: the group each in-flight register belongs to,
    groups committed and retired, and whether a wgmma.fence is due."""

    def __init__(self, L: int):
        self.committed = np.zeros(L, np.int64)
        self.retired = np.zeros(L, np.int64)
        self.need_fence = np.ones(L, bool)
        self.group: dict[int, np.ndarray] = {}          # register slot -> group per lane (-1: none)

    def slot(self, k: int, L: int) -> np.ndarray:
        g = self.group.get(k)
        if g is None:
            g = self.group[k] = np.full(L, -1, np.int64)
        return g


def async_state(s) -> AsyncState:
    st = getattr(s, "wgmma_async", None)
    if st is None:
        st = s.wgmma_async = AsyncState(s.L)
    return st


def _warpgroups(s, i, text: str, line: int, what: str) -> np.ndarray:
    """The executing lanes as (warpgroups, 128); faults unless whole warpgroups execute."""
    lanes = np.arange(s.L) if i is None else np.asarray(i)
    t = s.lane_t[lanes]
    if len(lanes) % WARPGROUP == 0 and len(lanes):
        g = lanes.reshape(-1, WARPGROUP)
        tt = t.reshape(-1, WARPGROUP)
        cta = s.lane_cta[g]
        if ((tt % WARPGROUP) == np.arange(WARPGROUP)).all() and (cta == cta[:, :1]).all() and \
                (tt[:, -1] < s.nthreads).all():
            return g
    raise IllegalInstruction(f"{what} must be executed by all 128 threads of each warpgroup together "
                             f"(.sync.aligned); {len(lanes)} threads executed it", text, line)


def _regs(op) -> list[Reg]:
    """Every register an operand names (vectors, addresses and groups included)."""
    if isinstance(op, Reg):
        return [op]
    if isinstance(op, (Vec, Group)):
        return [r for x in op.items for r in _regs(x)]
    base = getattr(op, "base", None)
    if isinstance(base, Reg):
        return [base]
    inner = getattr(op, "operand", None)
    return _regs(inner) if inner is not None else [r for x in (getattr(op, "first", None), getattr(op, "second", None))
                                                    if x is not None for r in _regs(x)]


def guard_async_registers(ops: list, decoded: list) -> None:
    """Make every instruction that touches a register some wgmma.mma_async of the kernel writes
    or reads asynchronously (accumulators, A fragments) check, when it runs, that no wgmma
    holding that register is in flight for its lanes, and mark that a wgmma.fence is due.
    ``decoded``: (index in ops, instruction) of each decoded instruction."""
    async_regs: dict[int, str] = {}
    for _, ins in decoded:
        if ins.opcode == "wgmma" and ins.mods[:1] == ("mma_async",):
            frags = [x for x in ins.operands[:2] if isinstance(x, Vec)]      # D, and A when in registers
            for op in frags:
                for r in _regs(op):
                    if r.type.kind != "p":
                        async_regs[r.slot] = r.name
    if not async_regs:
        return
    for idx, ins in decoded:
        if ins.opcode == "wgmma":
            continue
        touched = sorted({r.slot for op in ins.operands for r in _regs(op)} & set(async_regs))
        if touched and ops[idx].run is not None:
            ops[idx].run = _guarded(ops[idx].run, touched, async_regs, ins.text, ins.line)


def _guarded(run, slots: list[int], names: dict[int, str], text: str, line: int):
    def check(s, i):
        st = getattr(s, "wgmma_async", None)
        if st is not None:
            lanes = np.arange(s.L) if i is None else i
            for k in slots:
                g = st.group.get(k)
                if g is not None and (g[lanes] >= st.retired[lanes]).any():
                    raise IllegalInstruction(
                        f"register {names[k]} accessed while a wgmma.mma_async that uses it is in flight: wait for its "
                        "group with wgmma.wait_group first (the PTX ISA leaves the value undefined)", text, line)
            st.need_fence[lanes] = True
        return run(s, i)
    return check


# ---- instructions ---------------------------------------------------------------------------------
@family("wgmma")
def build_wgmma(ctx: Ctx, ins):
    what = ins.mods[0] if ins.mods else ""
    line, text = ins.line, ins.text
    if what in ("fence", "commit_group", "wait_group"):
        ctx.check_mods(ins, {what})
        if "sync" not in ins.mods or "aligned" not in ins.mods:
            raise ctx.error(f"wgmma.{what} needs .sync.aligned")
        if what == "wait_group":
            ctx.nops(ins, 1)
            if not isinstance(ins.operands[0], Imm):
                raise ctx.error("wgmma.wait_group takes an integer constant")
            n = int(ins.operands[0].value)
        else:
            ctx.nops(ins, 0)

        def run(s, i):
            lanes = _warpgroups(s, i, text, line, f"wgmma.{what}").ravel()
            st = async_state(s)
            if what == "fence":
                st.need_fence[lanes] = False
            elif what == "commit_group":
                st.committed[lanes] += 1
            else:
                st.retired[lanes] = np.maximum(st.retired[lanes], st.committed[lanes] - n)
        return run
    if what != "mma_async":
        raise ctx.error(f"wgmma.{what} is not supported")
    return _build_mma(ctx, ins)


def _build_mma(ctx: Ctx, ins):
    mods = list(ins.mods)
    shape = next((m for m in mods if m.startswith("m64n")), None)
    if shape is None or "k" not in shape:
        raise ctx.error("wgmma.mma_async needs a shape .m64nNkK")
    n, k = (int(x) for x in shape[4:].split("k"))
    types = [m for m in mods if m in ELEMENTS or m in ("f32", "f16", "s32")]
    if len(types) != 3:
        raise ctx.error("wgmma.mma_async needs .dtype.atype.btype")
    dtype, atype, btype = types
    if dtype != "f32":
        raise ctx.error(f"wgmma.mma_async with a .{dtype} accumulator is not supported by the mock (only .f32)")
    if atype not in ELEMENTS or btype not in ELEMENTS or ELEMENTS[atype][1] != ELEMENTS[btype][1] or \
            (atype in ("f16", "bf16", "tf32") and atype != btype):
        raise ctx.error(f"wgmma.mma_async .{atype}.{btype} is not a valid type combination")
    esize, kdim, can_trans = ELEMENTS[atype]
    if k != kdim or n % 8 or not 8 <= n <= 256:
        raise ctx.error(f"wgmma.mma_async shape {shape} is not valid for .{atype} (m64nNk{kdim}, N = 8..256 step 8)")
    extra = set(mods) - {"mma_async", "sync", "aligned", shape, dtype, atype, btype}
    if extra:
        raise ctx.error(f"wgmma.mma_async modifiers {sorted(extra)} are not supported")
    ops = ins.operands
    a_regs = isinstance(ops[1], Vec)
    nimm = 4 if can_trans and not a_regs else 3 if can_trans else 2
    ctx.nops(ins, 4 + nimm)
    d_vec = ops[0]
    if not isinstance(d_vec, Vec) or len(d_vec.items) != n // 2:
        raise ctx.error(f"wgmma.mma_async m64n{n} takes {n // 2} accumulator registers")
    for x in d_vec.items:
        if not isinstance(x, Reg) or x.type.size != 4:
            raise ctx.error("wgmma accumulators must be 32-bit registers")
    d_rd = [ctx.rd(x, TYPES["f32"]) for x in d_vec.items]
    d_wr = [ctx.wr(x, TYPES["f32"]) for x in d_vec.items]
    if a_regs:
        if len(ops[1].items) != 4:
            raise ctx.error("wgmma.mma_async with A in registers takes 4 A registers")
        a_rd = [ctx.rd(x, TYPES["b32"]) for x in ops[1].items]
        a_desc = None
    else:
        a_desc = ctx.rd(ops[1], TYPES["b64"])
    b_desc = ctx.rd(ops[2], TYPES["b64"])
    scale_d = ctx.rd(ops[3], TYPES["pred"])
    imms = []
    for x in ops[4:]:
        if not isinstance(x, Imm):
            raise ctx.error("wgmma.mma_async scale/transpose operands must be integer constants")
        imms.append(int(x.value))
    sa, sb = imms[0], imms[1]
    if sa not in (1, -1) or sb not in (1, -1):
        raise ctx.error("imm-scale-a/b must be 1 or -1")
    trans = imms[2:]
    if any(t not in (0, 1) for t in trans):
        raise ctx.error("imm-trans-a/b must be 0 or 1")
    ta = bool(trans[0]) if can_trans and not a_regs else False
    tb = bool(trans[-1]) if can_trans else False
    raw = {1: np.uint8, 2: np.uint16, 4: np.uint32}[esize]
    # fragment positions (PTX ISA wgmma register fragments): lane l of warp w of the warpgroup
    lane = np.arange(WARPGROUP)[:, None]
    w, g, t4 = lane // 32, (lane % 32) // 4, lane % 4
    ri = np.arange(n // 2)[None, :]
    d_row = 16 * w + g + 8 * ((ri % 4) // 2)
    d_col = 8 * (ri // 4) + 2 * t4 + ri % 2
    per_reg = 4 // esize
    line, text = ins.line, ins.text
    name = f"wgmma.mma_async.{shape}"

    def operand(s, lanes, desc_rd, i, rows, trans_, etype):
        descs = np.broadcast_to(np.asarray(desc_rd(s, i)).astype(np.uint64), (lanes.size,)).reshape(lanes.shape)
        if (descs != descs[:, :1]).any():
            raise IllegalInstruction(f"{name}: the threads of a warpgroup hold different matrix descriptors",
                                     text, line)
        out = []
        for gi in range(lanes.shape[0]):
            d = decode_descriptor(int(descs[gi, 0]))
            addr = operand_offsets(d, rows, k, esize, trans_).ravel()
            ln = np.full(addr.size, lanes[gi, 0])
            out.append(_values(s.shared.load(addr, ln, raw), etype).reshape(rows, k))
        return np.stack(out)

    def run(s, i):
        wg = _warpgroups(s, i, text, line, name)
        flat = wg.ravel()
        st = async_state(s)
        if st.need_fence[flat].any():
            raise IllegalInstruction(f"{name} issued without a wgmma.fence after the warpgroup's registers were "
                                     "last accessed (or before its first wgmma)", text, line)
        if a_desc is None:
            # A fragments from registers: register j holds row g + 8 (j % 2), columns
            # (j // 2) * K/2 + 4/esize * (lane % 4) + element
            a = np.zeros((wg.shape[0], M, k))
            for j, rd in enumerate(a_rd):
                v = np.broadcast_to(np.asarray(rd(s, i)).astype(np.uint32), (flat.size,)).reshape(wg.shape)
                for e in range(per_reg):
                    bits = (v >> np.uint32(8 * esize * e)) & np.uint32((1 << (8 * esize)) - 1) if esize < 4 else v
                    row = (16 * w + g + 8 * (j % 2)).ravel()
                    col = ((j // 2) * (k // 2) + per_reg * t4 + e).ravel()
                    a[:, row, col] = _values(bits, atype)
        else:
            a = operand(s, wg, a_desc, i, M, ta, atype)
        b = operand(s, wg, b_desc, i, n, tb, btype)                 # (groups, N, K)
        prod = np.einsum("gmk,gnk->gmn", sa * a, sb * b)
        frag = prod[:, d_row, d_col]                          # (groups, 128, N/2)
        keep = np.broadcast_to(np.asarray(scale_d(s, i), bool), (flat.size,)).reshape(wg.shape)
        for r in range(n // 2):
            old = np.broadcast_to(np.asarray(d_rd[r](s, i)), (flat.size,)).reshape(wg.shape).astype(np.float64)
            val = frag[:, :, r] + np.where(keep, old, 0.0)
            d_wr[r](s, i, val.astype(np.float32).ravel())
        for x in d_vec.items + (ops[1].items if a_desc is None else ()):
            st.slot(x.slot, s.L)[flat] = st.committed[flat]
    return run


@family("setmaxnreg")
def build_setmaxnreg(ctx: Ctx, ins):
    """setmaxnreg.{inc,dec}.sync.aligned.u32 imm: a register-budget hint for the warpgroup. The
    mock's register file does not change; it checks the PTX ISA rules: a constant in 24..256,
    a multiple of 8, executed by whole warpgroups."""
    mods = set(ins.mods)
    if len(mods & {"inc", "dec"}) != 1 or not {"sync", "aligned", "u32"} <= mods or mods - {"inc", "dec", "sync",
                                                                                            "aligned", "u32"}:
        raise ctx.error("setmaxnreg takes .inc or .dec with .sync.aligned.u32")
    ctx.nops(ins, 1)
    c = ins.operands[0]
    lo, hi = SETMAXNREG_RANGE
    if not isinstance(c, Imm) or not lo <= int(c.value) <= hi or int(c.value) % 8:
        raise ctx.error(f"setmaxnreg needs a constant register count in {lo}..{hi}, a multiple of 8")
    line, text = ins.line, ins.text

    def run(s, i):
        _warpgroups(s, i, text, line, "setmaxnreg")
    return run
