"""Compile scalar instructions (SOP1/SOP2/SOPC/SOPK/SOPP) into closures over the wave state.
Values are per wave: uint32 (W,) arrays (uint64 for 64-bit operands). A closure returns True when
it set the PC itself (branches, s_endpgm)."""
from __future__ import annotations

import numpy as np

from .decode import Inst
from .faults import Unsupported
from .numeric import I32, I64, U32, U64, brev32, clz32, ctz32, popcount32, popcount64
from .operands import reader
from .optypes import salu_types
from .state import EXEC, M0, OP, VCC, WaveState
from .valu_ops import _cls

M32 = U64(0xFFFFFFFF)


def _sext16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


# name -> (fn(a, b) -> (result, scc or None)) for 32-bit (uint32) and 64-bit (uint64) operands
def _logic(op):
    return lambda a, b: (lambda r: (r, r != 0))(op(a, b))


_SOP2 = {
    "s_and": _logic(lambda a, b: a & b), "s_or": _logic(lambda a, b: a | b), "s_xor": _logic(lambda a, b: a ^ b),
    "s_nand": _logic(lambda a, b: ~(a & b)), "s_nor": _logic(lambda a, b: ~(a | b)),
    "s_xnor": _logic(lambda a, b: ~(a ^ b)), "s_and_not1": _logic(lambda a, b: a & ~b),
    "s_or_not1": _logic(lambda a, b: a | ~b),
}


def _shift_fns(w: int):
    dt = U64 if w == 64 else U32
    sdt = I64 if w == 64 else I32
    m = dt(w - 1)
    return {
        "s_lshl": lambda a, b: (lambda r: (r, r != 0))(a << (b.astype(dt) & m)),
        "s_lshr": lambda a, b: (lambda r: (r, r != 0))(a >> (b.astype(dt) & m)),
        "s_ashr": lambda a, b: (lambda r: (r, r != 0))((a.view(sdt) >> (b.astype(dt) & m).astype(sdt)).view(dt)),
    }


def _sop2_fn(name: str):
    base, _, suf = name.rpartition("_")
    w64 = suf.endswith("64")
    if base in _SOP2:
        return _SOP2[base], w64
    sh = _shift_fns(64 if w64 else 32)
    if base in sh:
        return sh[base], w64
    i32 = lambda x: x.view(I32)  # noqa: E731
    fns = {
        "s_add_u32": lambda a, b: (lambda r: ((r & M32).astype(U32), r > M32))(a.astype(U64) + b.astype(U64)),
        "s_sub_u32": lambda a, b: (a - b, b > a),
        "s_add_i32": lambda a, b: (lambda r: (r, ((i32(a) >= 0) == (i32(b) >= 0)) & ((i32(r) >= 0) != (i32(a) >= 0))))(a + b),
        "s_sub_i32": lambda a, b: (lambda r: (r, ((i32(a) >= 0) != (i32(b) >= 0)) & ((i32(r) >= 0) != (i32(a) >= 0))))(a - b),
        "s_min_i32": lambda a, b: (np.minimum(i32(a), i32(b)).view(U32), i32(a) < i32(b)),
        "s_max_i32": lambda a, b: (np.maximum(i32(a), i32(b)).view(U32), i32(a) > i32(b)),
        "s_min_u32": lambda a, b: (np.minimum(a, b), a < b), "s_max_u32": lambda a, b: (np.maximum(a, b), a > b),
        "s_mul_i32": lambda a, b: (a * b, None),
        "s_mul_hi_u32": lambda a, b: (((a.astype(U64) * b.astype(U64)) >> U64(32)).astype(U32), None),
        "s_mul_hi_i32": lambda a, b: (((i32(a).astype(I64) * i32(b).astype(I64)) >> I64(32)).astype(I32).view(U32), None),
        "s_lshl1_add_u32": lambda a, b: _shadd(a, b, 1), "s_lshl2_add_u32": lambda a, b: _shadd(a, b, 2),
        "s_lshl3_add_u32": lambda a, b: _shadd(a, b, 3), "s_lshl4_add_u32": lambda a, b: _shadd(a, b, 4),
        "s_bfe_u32": lambda a, b: (lambda r: (r, r != 0))(_bfe(a, b, False, 32)),
        "s_bfe_i32": lambda a, b: (lambda r: (r, r != 0))(_bfe(a, b, True, 32)),
        "s_bfe_u64": lambda a, b: (lambda r: (r, r != 0))(_bfe(a, b, False, 64)),
        "s_bfe_i64": lambda a, b: (lambda r: (r, r != 0))(_bfe(a, b, True, 64)),
        "s_bfm_b32": lambda a, b: (((U32(1) << (a & U32(31))) - U32(1)) << (b & U32(31)), None),
        "s_bfm_b64": lambda a, b: (((U64(1) << (a & U32(63)).astype(U64)) - U64(1)) << (b & U32(63)).astype(U64), None),
        "s_absdiff_i32": lambda a, b: (lambda r: (r, r != 0))(np.abs(i32(a).astype(I64) - i32(b).astype(I64)).astype(U32)),
        "s_pack_ll_b32_b16": lambda a, b: ((a & U32(0xFFFF)) | (b << U32(16)), None),
        "s_pack_lh_b32_b16": lambda a, b: ((a & U32(0xFFFF)) | (b & U32(0xFFFF0000)), None),
        "s_pack_hh_b32_b16": lambda a, b: ((a >> U32(16)) | (b & U32(0xFFFF0000)), None),
        "s_pack_hl_b32_b16": lambda a, b: ((a >> U32(16)) | (b << U32(16)), None),
    }
    if name not in fns:
        raise Unsupported(f"{name} is not implemented by the emulator")
    return fns[name], name.endswith("64")


def _shadd(a, b, n):
    r = (a.astype(U64) << U64(n)) + b.astype(U64)
    return (r & M32).astype(U32), r > M32


def _bfe(a, b, signed, w):
    dt, sdt = (U64, I64) if w == 64 else (U32, I32)
    off = (b & U32(w - 1)).astype(dt)
    width = ((b >> U32(16)) & U32(0x7F)).astype(dt)
    width = np.minimum(width, dt(w))
    if signed:
        sh = (dt(w) - off - width).astype(np.int64).clip(0, w - 1).astype(dt)
        v = ((a << sh).view(sdt) >> (sh + off).astype(np.int64).clip(0, w - 1).astype(sdt)).view(dt)
    else:
        mask = np.where(width >= dt(w), ~dt(0), (dt(1) << width) - dt(1))
        v = (a >> off) & mask
    return np.where(width == 0, dt(0), v).astype(dt)


def compile_salu(inst: Inst, ctx):
    return {"SOP2": _sop2, "SOP1": _sop1, "SOPC": _sopc, "SOPK": _sopk, "SOPP": _sopp}[inst.fmt](inst, ctx)


def _src(code, w, lit):
    return reader(code, "u64" if w == 2 else "u32", lit, False)


def _setd(st: WaveState, d: int, w: int, val) -> None:
    if w == 2:
        st.set_s64(d, val)
    else:
        st.set_s(d, val)


def _sop2(inst: Inst, ctx):
    n, f, lit = inst.name, inst.f, inst.literal
    dw, (w0, w1) = salu_types(n)[0], salu_types(n)[1]
    a, b, d = _src(f["ssrc0"], w0, lit), _src(f["ssrc1"], w1, lit), f["sdst"]
    if n in ("s_cselect_b32", "s_cselect_b64"):
        return lambda st: _setd(st, d, dw, np.where(st.scc, a(st), b(st)))
    if n in ("s_addc_u32", "s_subb_u32"):
        sub = n == "s_subb_u32"

        def addc(st):
            x, y = np.broadcast_to(a(st), (st.W,)).astype(np.int64), np.broadcast_to(b(st), (st.W,)).astype(np.int64)
            c = st.scc.astype(np.int64)
            r = x - y - c if sub else x + y + c
            _setd(st, d, 1, (r & 0xFFFFFFFF).astype(U32))
            st.set_scc(r < 0 if sub else r > 0xFFFFFFFF)
        return addc
    if n in ("s_fmac_f32", "s_fmaak_f32", "s_fmamk_f32"):
        raise Unsupported(f"{n} is not implemented by the emulator")
    fn, _ = _sop2_fn(n)

    def run(st):
        r, scc = fn(np.broadcast_to(a(st), (st.W,)), np.broadcast_to(b(st), (st.W,)))
        _setd(st, d, dw, r)
        if scc is not None:
            st.set_scc(scc)
    return run


def _sop1(inst: Inst, ctx):
    n, f, lit = inst.name, inst.f, inst.literal
    dw, srcs = salu_types(n)
    d = f["sdst"]
    a = _src(f["ssrc0"], srcs[0], lit) if srcs else None
    if n.endswith(("_saveexec_b32", "_wrexec_b32")):
        wr = "_wrexec" in n

        def saveexec(st):
            s = np.broadcast_to(a(st), (st.W,)).astype(U32)
            old = st.s[EXEC].copy()
            new = _saveexec_value(n, s, old)
            st.set_s(EXEC, new)
            if wr:
                st.set_s(d, new)
            else:
                st.set_s(d, old)
            st.set_scc(new != 0)
        return saveexec
    if n in ("s_getpc_b64",):
        base = ctx.pgm_addr

        def getpc(st):
            _setd(st, d, 2, np.asarray(st.pc, np.int64).astype(U64) + U64(base + inst.size))
        return getpc
    if n in ("s_setpc_b64", "s_swappc_b64"):
        base = ctx.pgm_addr
        swap = n == "s_swappc_b64"

        def setpc(st):
            target = np.broadcast_to(a(st), (st.W,)).astype(np.int64) - base
            if swap:
                _setd(st, d, 2, np.asarray(st.pc, np.int64).astype(U64) + U64(base + inst.size))
            st.pc[st.act] = target[st.act]
            return True
        return setpc
    simple = {
        "s_mov_b32": lambda x: (x, None), "s_mov_b64": lambda x: (x, None),
        "s_not_b32": lambda x: (~x, ~x != 0), "s_not_b64": lambda x: (~x, ~x != 0),
        "s_brev_b32": lambda x: (brev32(x), None),
        "s_bcnt1_i32_b32": lambda x: (lambda r: (r, r != 0))(popcount32(x)),
        "s_bcnt0_i32_b32": lambda x: (lambda r: (r, r != 0))(U32(32) - popcount32(x)),
        "s_bcnt1_i32_b64": lambda x: (lambda r: (r, r != 0))(popcount64(x).astype(U32)),
        "s_bcnt0_i32_b64": lambda x: (lambda r: (r, r != 0))((U32(64) - popcount64(x)).astype(U32)),
        "s_ctz_i32_b32": lambda x: (ctz32(x), None), "s_clz_i32_u32": lambda x: (clz32(x), None),
        "s_ctz_i32_b64": lambda x: (_ctz64(x), None), "s_clz_i32_u64": lambda x: (_clz64(x), None),
        "s_sext_i32_i8": lambda x: (x.astype(np.uint8).view(np.int8).astype(I32).view(U32), None),
        "s_sext_i32_i16": lambda x: (x.astype(np.uint16).view(np.int16).astype(I32).view(U32), None),
        "s_abs_i32": lambda x: (lambda r: (r, r != 0))(np.abs(x.view(I32).astype(I64)).astype(U32)),
        "s_cls_i32": lambda x: (_cls(x).view(U32), None),
        "s_cls_i32_i64": lambda x: (_cls64(x), None),
        "s_brev_b64": lambda x: ((brev32((x & M32).astype(U32)).astype(U64) << U64(32))
                                 | brev32((x >> U64(32)).astype(U32)).astype(U64), None),
        "s_quadmask_b32": lambda x: (lambda r: (r, r != 0))(_quadmask(x, 8).astype(U32)),
        "s_quadmask_b64": lambda x: (lambda r: (r, r != 0))(_quadmask(x, 16)),
        "s_wqm_b32": lambda x: (lambda r: (r, r != 0))(_wqm(x, 8).astype(U32)),
        "s_wqm_b64": lambda x: (lambda r: (r, r != 0))(_wqm(x, 16)),
        "s_bitreplicate_b64_b32": lambda x: (_bitreplicate(x), None),
    }
    if n in ("s_bitset0_b32", "s_bitset1_b32", "s_bitset0_b64", "s_bitset1_b64"):
        one = n.startswith("s_bitset1")
        w64 = n.endswith("64")

        def bitset(st):
            dt = U64 if w64 else U32
            cur = st.s64(d) if w64 else st.s[d].copy()
            bit = dt(1) << (np.broadcast_to(a(st), (st.W,)) & U32(63 if w64 else 31)).astype(dt)
            _setd(st, d, 2 if w64 else 1, cur | bit if one else cur & ~bit)
        return bitset
    if n in ("s_cmov_b32", "s_cmov_b64"):
        w = 2 if n.endswith("64") else 1

        def cmov(st):
            cur = st.s64(d) if w == 2 else st.s[d]
            _setd(st, d, w, np.where(st.scc, a(st), cur))
        return cmov
    if n in ("s_movrels_b32", "s_movrels_b64", "s_movreld_b32", "s_movreld_b64"):
        # SGPRs indexed by M0 (per wave): movrels reads s[ssrc0 + M0], movreld writes s[sdst + M0]
        w = 2 if n.endswith("64") else 1
        rel_src = n.startswith("s_movrels")
        base = f["ssrc0"] if rel_src else d
        if base > OP["SGPR_MAX"]:
            raise Unsupported(f"{n}: M0-relative operand must be an SGPR")

        def movrel(st):
            idx = base + st.s[M0].astype(np.int64)
            cols = np.flatnonzero(st.act)
            if (idx[cols] + w > OP["SGPR_MAX"] + 1).any():
                raise Unsupported(f"{n}: M0-relative SGPR index past s{OP['SGPR_MAX']}")
            if rel_src:
                for k in range(w):
                    st.set_s(d + k, st.s[np.minimum(idx + k, 127), np.arange(st.W)])
            else:
                val = np.broadcast_to(a(st), (st.W,)).astype(U64)
                for k in range(w):
                    st.s[idx[cols] + k, cols] = ((val[cols] >> U64(32 * k)) & M32).astype(U32)
        return movrel
    if n in ("s_sendmsg_rtn_b32", "s_sendmsg_rtn_b64", "s_rfe_b64"):
        raise Unsupported(f"{n} is not implemented by the emulator")
    fn = simple.get(n)
    if fn is None:
        raise Unsupported(f"{n} is not implemented by the emulator")

    def run(st):
        r, scc = fn(np.broadcast_to(a(st), (st.W,)))
        _setd(st, d, dw, r)
        if scc is not None:
            st.set_scc(scc)
    return run


def _saveexec_value(n: str, s, e):
    """EXEC after s_<op>_saveexec / wrexec (ISA: 'EXEC = S0.u & EXEC' style, 'not0' negates S0,
    'not1' negates EXEC)."""
    op = n[2:].rsplit("_", 2)[0]
    return {"and": s & e, "or": s | e, "xor": s ^ e, "nand": ~(s & e), "nor": ~(s | e), "xnor": ~(s ^ e),
            "and_not0": ~s & e, "or_not0": ~s | e, "and_not1": s & ~e, "or_not1": s | ~e}[op].astype(U32)


def _quadmask(x, groups):
    x = np.asarray(x).astype(U64)
    r = np.zeros(x.shape, U64)
    for g in range(groups):
        r |= (((x >> U64(4 * g)) & U64(0xF)) != 0).astype(U64) << U64(g)
    return r


def _wqm(x, groups):
    x = np.asarray(x).astype(U64)
    r = np.zeros(x.shape, U64)
    for g in range(groups):
        r |= (((x >> U64(4 * g)) & U64(0xF)) != 0).astype(U64) * U64(0xF) << U64(4 * g)
    return r


def _bitreplicate(x):
    x = np.asarray(x).astype(U64)
    r = np.zeros(x.shape, U64)
    for b in range(32):
        r |= ((x >> U64(b)) & U64(1)) * U64(3) << U64(2 * b)
    return r


def _cls64(x):
    """Leading bits equal to the sign bit, minus one; -1 (0xFFFFFFFF) for 0 and -1."""
    x = np.asarray(x, U64)
    v = np.where((x >> U64(63)) != 0, ~x, x)
    lz = _clz64(v).astype(np.int64)
    return np.where(lz == 0xFFFFFFFF, U32(0xFFFFFFFF), (lz - 1).astype(U32)).astype(U32)


def _ctz64(x):
    lo, hi = (x & M32).astype(U32), (x >> U64(32)).astype(U32)
    r = np.where(lo != 0, ctz32(lo), np.where(hi != 0, ctz32(hi) + U32(32), U32(0xFFFFFFFF)))
    return r.astype(U32)


def _clz64(x):
    lo, hi = (x & M32).astype(U32), (x >> U64(32)).astype(U32)
    r = np.where(hi != 0, clz32(hi), np.where(lo != 0, clz32(lo) + U32(32), U32(0xFFFFFFFF)))
    return r.astype(U32)


_CMP = {"eq": np.equal, "lg": np.not_equal, "gt": np.greater, "ge": np.greater_equal, "lt": np.less,
        "le": np.less_equal}


def _sopc(inst: Inst, ctx):
    n, f, lit = inst.name, inst.f, inst.literal
    _, (w0, w1) = salu_types(n)
    a, b = _src(f["ssrc0"], w0, lit), _src(f["ssrc1"], w1, lit)
    parts = n.split("_")
    if parts[1] in ("bitcmp0", "bitcmp1"):
        want = parts[1] == "bitcmp1"
        w64 = n.endswith("64")

        def bitcmp(st):
            x = np.broadcast_to(a(st), (st.W,))
            sh = (np.broadcast_to(b(st), (st.W,)) & U32(63 if w64 else 31)).astype(U64 if w64 else U32)
            bit = ((x >> sh) & (U64(1) if w64 else U32(1))) != 0
            st.set_scc(bit == want)
        return bitcmp
    pred, ty = parts[2], parts[3]
    if ty in ("f32", "f16"):
        raise Unsupported(f"{n}: scalar float compares are gfx11.5+, not gfx1100")
    fn = _CMP[pred]
    sgn = ty == "i32"

    def cmp(st):
        x, y = np.broadcast_to(a(st), (st.W,)), np.broadcast_to(b(st), (st.W,))
        if sgn:
            x, y = x.view(I32), y.view(I32)
        st.set_scc(fn(x, y))
    return cmp


def _sopk(inst: Inst, ctx):
    n, f = inst.name, inst.f
    d, k = f["sdst"], f["simm16"]
    ks, ku = np.uint32(_sext16(k) & 0xFFFFFFFF), np.uint32(k)
    if n == "s_movk_i32":
        return lambda st: st.set_s(d, ks)
    if n == "s_cmovk_i32":
        return lambda st: st.set_s(d, np.where(st.scc, ks, st.s[d]))
    if n == "s_addk_i32":
        def addk(st):
            a = st.s[d].copy()
            r = a + ks
            st.set_s(d, r)
            st.set_scc(((a.view(I32) >= 0) == (ks.view(I32) >= 0)) & ((r.view(I32) >= 0) != (a.view(I32) >= 0)))
        return addk
    if n == "s_mulk_i32":
        return lambda st: st.set_s(d, st.s[d] * ks)
    if n.startswith("s_cmpk_"):
        _, _, pred, ty = n.split("_")
        fn = _CMP[pred]
        if ty == "i32":
            return lambda st: st.set_scc(fn(st.s[d].view(I32), ks.view(I32)))
        return lambda st: st.set_scc(fn(st.s[d], ku))
    if n == "s_getreg_b32":
        return _getreg(k, d, ctx)
    if n in ("s_setreg_b32", "s_setreg_imm32_b32"):
        return _setreg(inst, k, d)
    if n in ("s_waitcnt_vscnt", "s_waitcnt_vmcnt", "s_waitcnt_expcnt", "s_waitcnt_lgkmcnt"):
        # Memory operations complete in program order in the mock: every counter is already 0.
        return lambda st: None
    if n == "s_version":
        return lambda st: None
    raise Unsupported(f"{n} is not implemented by the emulator")


# gfx11 hardware register ids (s_getreg/s_setreg; LLVM SIDefines.h Hwreg::ID_*).
HW_REG_MODE, HW_REG_STATUS, HW_REG_TRAPSTS, HW_REG_HW_ID1, HW_REG_HW_ID2 = 1, 2, 3, 23, 24


def _getreg(simm: int, d: int, ctx):
    rid, off, size = simm & 0x3F, (simm >> 6) & 0x1F, ((simm >> 11) & 0x1F) + 1
    mask = np.uint32((1 << size) - 1) if size < 32 else np.uint32(0xFFFFFFFF)

    def val(st):
        if rid == HW_REG_MODE:
            return st.mode
        if rid == HW_REG_HW_ID1:
            return ctx.hw_id1(st)
        if rid == HW_REG_HW_ID2:
            return np.zeros(st.W, U32)
        if rid in (HW_REG_STATUS, HW_REG_TRAPSTS):
            return np.zeros(st.W, U32)
        raise Unsupported(f"s_getreg of hardware register {rid}")
    return lambda st: st.set_s(d, (np.asarray(val(st), U32) >> np.uint32(off)) & mask)


def _setreg(inst: Inst, simm: int, d: int):
    rid, off, size = simm & 0x3F, (simm >> 6) & 0x1F, ((simm >> 11) & 0x1F) + 1
    if rid != HW_REG_MODE:
        raise Unsupported(f"s_setreg of hardware register {rid}")
    field = ((1 << size) - 1) << off
    # MODE bits 0-7 hold the FP round/denorm modes; only the IEEE default (round to nearest,
    # denormals kept = 0xF0) is modelled, so other values stop the wave rather than compute wrongly.

    def setreg(st):
        src = np.uint32(inst.literal) if inst.name == "s_setreg_imm32_b32" else st.s[d]
        new = (st.mode & ~np.uint32(field)) | ((np.asarray(src, U32) << np.uint32(off)) & np.uint32(field))
        if np.any((new[st.act] if np.ndim(new) else new) & 0xFF != 0xF0):
            raise Unsupported("s_setreg MODE with a non-default FP round/denorm mode")
        st.mode = np.where(st.act, new, st.mode).astype(U32)
    return setreg


_MSG_DEALLOC_VGPRS = 3


def _sopp(inst: Inst, ctx):
    n, k = inst.name, inst.f["simm16"]
    size = inst.size
    if n in ("s_nop", "s_waitcnt", "s_delay_alu", "s_clause", "s_set_inst_prefetch_distance", "s_sleep", "s_setprio",
             "s_waitcnt_depctr", "s_icache_inv", "s_wait_idle", "s_ttracedata",
             "s_ttracedata_imm", "s_incperflevel", "s_decperflevel", "s_wakeup"):
        # Timing hints: the mock completes every instruction before the next starts.
        return lambda st: None
    if n == "s_barrier":
        # Waves execute in PC order (the lowest PC first, waves at the same PC together), so
        # when a wave reaches s_barrier every wave of its workgroup that has not ended is
        # at this barrier too: the barrier is already satisfied.
        return lambda st: None
    if n == "s_endpgm":
        def endpgm(st):
            st.done |= st.act
            return True
        return endpgm
    if n == "s_sendmsg":
        if k != _MSG_DEALLOC_VGPRS:
            raise Unsupported(f"s_sendmsg {k:#x}")
        return lambda st: None
    if n == "s_trap":
        def trap(st):
            raise ctx.fault(st, "trap", f"s_trap {k:#x}")
        return trap
    if n in ("s_round_mode", "s_denorm_mode"):
        raise Unsupported(f"{n} {k:#x} (only the default FP modes are modelled)")
    off = 4 * _sext16(k) + size
    if n == "s_branch":
        def br(st):
            st.pc[st.act] += off
            return True
        return br
    conds = {
        "s_cbranch_scc0": lambda st: ~st.scc, "s_cbranch_scc1": lambda st: st.scc,
        "s_cbranch_vccz": lambda st: st.s[VCC] == 0, "s_cbranch_vccnz": lambda st: st.s[VCC] != 0,
        "s_cbranch_execz": lambda st: st.s[EXEC] == 0, "s_cbranch_execnz": lambda st: st.s[EXEC] != 0,
    }
    if n in conds:
        c = conds[n]

        def cbr(st):
            take = c(st)
            st.pc += np.where(st.act, np.where(take, off, size), 0)
            return True
        return cbr
    raise Unsupported(f"{n} is not implemented by the emulator")


def compile_smem(inst: Inst, ctx):
    n, f = inst.name, inst.f
    if n in ("s_dcache_inv", "s_gl1_inv"):
        return lambda st: None       # no caches in the mock
    if not n.startswith(("s_load_b", "s_buffer_load_b")):
        raise Unsupported(f"{n} is not implemented by the emulator")
    width = {"b32": 1, "b64": 2, "b128": 4, "b256": 8, "b512": 16}[n.rsplit("_", 1)[1]]
    off = f["offset"] - (1 << 21) if f["offset"] & (1 << 20) else f["offset"]
    base, d = f["sbase"] * 2, f["sdata"]
    so = None if f["soffset"] == OP["NULL"] else reader(f["soffset"], "u32", None, False)
    buf = n.startswith("s_buffer_")
    mem = ctx.mem

    def load(st):
        if buf:
            addr = (st.s[base].astype(U64) | ((st.s[base + 1] & U32(0xFFFF)).astype(U64) << U64(32)))
        else:
            addr = st.s64(base)
        a = addr.astype(np.int64) + off
        if so is not None:
            a = a + np.broadcast_to(so(st), (st.W,)).astype(np.int64)
        a = a & ~3                    # scalar loads ignore the low two address bits
        vals = mem.load(a[:, None] + 4 * np.arange(width), np.uint32, st.act[:, None])
        for k in range(width):
            st.set_s(d + k, vals[:, k])
    return load
