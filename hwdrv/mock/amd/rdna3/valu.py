"""Compile VALU instructions (VOP1/VOP2/VOPC/VOP3/VOP3P/VOPD, DPP16/DPP8) into closures over the
wave state. A closure reads its sources for all waves/lanes at once, computes with numpy and
writes the lanes enabled by EXEC (and DPP row/bank masks)."""
from __future__ import annotations

import inspect

import numpy as np

from .decode import Inst
from .faults import Unsupported
from .numeric import F32, F64, U32, U64, fma32, fma64, from_type, popcount32, to_type
from .operands import reader
from .optypes import valu_types
from .state import EXEC, LANES, OP, VCC, WaveState
from .valu_ops import FCMP, ICMP, OPS, PK_OPS, cmp_class, div_fmas, div_scale, dot_iu

_LANE = np.arange(LANES)
_LANE_U32 = _LANE.astype(U32)
_ROW = _LANE & ~15
_SIXTEEN = ("f16", "i16", "u16", "b16", "bf16")


def _arity(fn) -> int:
    if isinstance(fn, np.ufunc):
        return fn.nin
    return len(inspect.signature(fn).parameters)


def _write(st: WaveState, d: int, t: str, val, mask, hi: bool = False) -> None:
    bits = from_type(val, t)
    if t in ("u64", "i64", "b64", "f64"):
        st.set_v64(d, bits, mask)
    elif t in _SIXTEEN:
        old = st.v[d]
        bits = np.asarray(bits, U32)
        new = (old & U32(0x0000FFFF)) | (bits << U32(16)) if hi else (old & U32(0xFFFF0000)) | bits
        st.set_v(d, new, mask)
    else:
        st.set_v(d, bits, mask)


_SIGN = {"b32": U32(0x80000000), "b16": np.uint16(0x8000), "b64": U64(1 << 63)}


def _mods(fn_read, t: str, neg: int, abs_: int):
    if not (neg or abs_):
        return fn_read
    if t in _SIGN:
        # untyped (b32/b16/b64) operands: abs clears and neg flips the sign bit
        sb = _SIGN[t]

        def rdb(st):
            x = fn_read(st)
            if abs_:
                x = x & ~sb
            return x ^ sb if neg else x
        return rdb
    if not (t.startswith("f") or t == "bf16"):
        raise Unsupported(f"neg/abs modifier on a {t} operand (integer sext is not modelled)")

    def rd(st):
        x = fn_read(st)
        if abs_:
            x = np.abs(x)
        return -x if neg else x
    return rd


def _omod_clamp(res, t: str, omod: int, clamp: bool):
    if omod:
        res = res * res.dtype.type({1: 2.0, 2: 4.0, 3: 0.5}[omod])
    if clamp:
        res = np.where(np.isnan(res), res.dtype.type(0), np.clip(res, 0, 1)).astype(res.dtype)
    return res


def _saturating(op, t):
    info = np.iinfo({"u32": np.uint32, "i32": np.int32, "u16": np.uint16, "i16": np.int16}[t])
    dt = {"u32": U32, "i32": np.int32, "u16": np.uint16, "i16": np.int16}[t]

    def f(a, b):
        r = op(np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64))
        return np.clip(r, info.min, info.max).astype(dt)
    return f


# VOP3 clamp on integer add/sub saturates (ISA guide 7.x "clamp: saturate integer result")
_SAT = {f"v_{o}_{t}": _saturating(fn, t[-3:]) for o, fn in (("add_nc", lambda a, b: a + b), ("sub_nc", lambda a, b: a - b),
                                                              ("subrev_nc", lambda a, b: b - a))
        for t in ("u32", "i32", "u16", "i16")}


# ---- DPP -------------------------------------------------------------------------------------------
def dpp16_map(ctrl: int):
    """(source lane (32,), valid (32,)) of a DPP16 control."""
    r = _LANE & 15
    if ctrl <= 0xFF:
        return (_LANE & ~3) | ((ctrl >> (2 * (_LANE & 3))) & 3), np.ones(LANES, bool)
    if 0x101 <= ctrl <= 0x10F:
        n = ctrl & 0xF
        return _LANE + n, r + n < 16
    if 0x111 <= ctrl <= 0x11F:
        n = ctrl & 0xF
        return _LANE - n, r >= n
    if 0x121 <= ctrl <= 0x12F:
        n = ctrl & 0xF
        return _ROW + ((r - n) & 15), np.ones(LANES, bool)
    if ctrl == 0x140:
        return _ROW + 15 - r, np.ones(LANES, bool)
    if ctrl == 0x141:
        return (_LANE & ~7) + 7 - (_LANE & 7), np.ones(LANES, bool)
    if 0x150 <= ctrl <= 0x15F:
        return _ROW + (ctrl & 0xF), np.ones(LANES, bool)
    if 0x160 <= ctrl <= 0x16F:
        return _ROW + (r ^ (ctrl & 0xF)), np.ones(LANES, bool)
    raise Unsupported(f"DPP control {ctrl:#x}")


class _Dpp:
    """Source-0 lane permutation and write mask of a DPP instruction."""

    def __init__(self, inst: Inst):
        d = inst.dpp
        self.src = d["src0"]
        if inst.dpp8:
            sel = d["lane_sel"]
            self.idx = (_LANE & ~7) | np.array([(sel >> (3 * (l & 7))) & 7 for l in range(LANES)])
            self.valid = np.ones(LANES, bool)
            self.write = np.ones(LANES, bool)
            self.bc, self.fi = False, bool(d["fi"])
            self.neg = self.abs = (0, 0)
        else:
            self.idx, self.valid = dpp16_map(d["dpp_ctrl"])
            self.idx = np.clip(self.idx, 0, LANES - 1)
            rows = (d["row_mask"] >> (_LANE >> 4)) & 1
            banks = (d["bank_mask"] >> ((_LANE >> 2) & 3)) & 1
            self.write = (rows & banks).astype(bool)
            self.bc, self.fi = bool(d["bound_ctrl"]), bool(d["fi"])
            self.neg = (d["src0_neg"], d["src1_neg"])
            self.abs = (d["src0_abs"], d["src1_abs"])

    def read(self, st: WaveState, t: str):
        """(typed src0 values, lanes whose source is valid)."""
        x = st.v[self.src][:, self.idx]
        valid = np.broadcast_to(self.valid, (st.W, LANES))
        if not self.fi:
            srcexec = ((st.s[EXEC][:, None] >> self.idx.astype(U32)) & U32(1)).astype(bool)
            valid = valid & srcexec
        x = np.where(valid, x, U32(0))
        return to_type(x, t), valid

    def mask(self, st: WaveState, valid):
        m = st.emask() & self.write
        return m if self.bc else m & valid


# ---- compile -----------------------------------------------------------------------------------
def compile_valu(inst: Inst):
    if inst.fmt == "VOPD":
        return _vopd(inst)
    if inst.fmt == "VOP3P":
        return _vop3p(inst)
    n = inst.name
    f = inst.f
    fmt = inst.fmt
    if fmt == "VOP3" and inst.dpp is not None:
        raise Unsupported("VOP3 with DPP")
    lit = inst.literal
    vop3 = fmt == "VOP3"
    dt, sts = valu_types(n)
    neg = f.get("neg", 0) if vop3 else 0
    sd = n in ("v_add_co_u32", "v_sub_co_u32", "v_subrev_co_u32", "v_add_co_ci_u32", "v_sub_co_ci_u32",
               "v_subrev_co_ci_u32", "v_div_scale_f32", "v_div_scale_f64", "v_mad_u64_u32", "v_mad_i64_i32")
    abs_ = f.get("abs", 0) if vop3 and not sd else 0
    opsel = f.get("opsel", 0) if vop3 and not sd else 0
    clamp = bool(f.get("clamp", 0)) if vop3 else False
    omod = f.get("omod", 0) if vop3 else 0
    dpp = _Dpp(inst) if inst.dpp is not None else None
    if dpp is not None:
        neg, abs_ = dpp.neg[0] | (dpp.neg[1] << 1), dpp.abs[0] | (dpp.abs[1] << 1)
    if vop3:
        codes = [f["src0"], f["src1"], f["src2"]]
        vdst = f["vdst"]
        sdst = f["sdst"] if sd else None
    elif fmt == "VOP1":
        codes, vdst, sdst = [f["src0"]], f["vdst"], None
    else:
        codes, vdst, sdst = [f["src0"], OP["VGPR_MIN"] + f["vsrc1"]], f.get("vdst"), None
    if fmt in ("VOP1", "VOP2", "VOPC") and any(t in _SIXTEEN for t in (dt,) + tuple(sts)):
        # gfx11 32-bit encodings of 16-bit ops address v0-v127; bit 7 of a register field selects
        # the high half (true16), which the emulator does not model
        regs = [c - OP["VGPR_MIN"] for c in codes if c >= OP["VGPR_MIN"]]
        if dpp is not None:
            regs.append(dpp.src)
        if (vdst is not None and fmt != "VOPC" and vdst >= 128) or any(r >= 128 for r in regs):
            raise Unsupported(f"{n}: true16 high-half register operand")
    if clamp and not dt.startswith("f") and n not in _SAT:
        raise Unsupported(f"{n}: integer clamp")
    if omod and not dt.startswith("f"):
        raise Unsupported(f"{n}: output modifier on a non-float result")

    def rd(k: int, t: str):
        if k == 0 and dpp is not None:
            return None
        hi = bool((opsel >> k) & 1) and t in _SIXTEEN
        return _mods(reader(codes[k], t, lit, True, hi), t, (neg >> k) & 1, (abs_ >> k) & 1)

    def src0_dpp(st, t):
        x, valid = dpp.read(st, t)
        if dpp.abs[0]:
            x = np.abs(x)
        if dpp.neg[0]:
            x = -x
        return x, valid

    hi_dst = bool((opsel >> 3) & 1)

    # ---- compares ---------------------------------------------------------------------------
    if n.startswith(("v_cmp_", "v_cmpx_")):
        t = sts[0]
        cls = "_class_" in n
        pred = None
        if not cls:
            key = n.split("_")[2]
            pred = (FCMP if t.startswith("f") else ICMP)[key]
        rds = [rd(0, t), rd(1, "u32" if cls else t)]
        x = n.startswith("v_cmpx_")
        dst = VCC if not vop3 else vdst

        def cmp(st):
            if dpp is not None:
                a, valid = src0_dpp(st, t)
                m = dpp.mask(st, valid)
            else:
                a, m = rds[0](st), st.emask()
            b = rds[1](st)
            r = cmp_class(a, b) if cls else pred(a, b)
            bits = st.pack(np.broadcast_to(r, m.shape) & m)
            if x:
                st.set_s(EXEC, bits)
            else:
                st.set_s(dst, bits)
        return cmp

    # ---- lane-select / cross-lane -----------------------------------------------------------
    if n == "v_readfirstlane_b32":
        r0 = codes[0]
        if r0 < OP["VGPR_MIN"]:
            src = reader(r0, "u32", lit, False)
            return lambda st: st.set_s(vdst, src(st))

        def rfl(st):
            e = st.s[EXEC]
            lane = np.where(e == 0, 0, np.log2((e & (~e + U32(1))).astype(F64)).astype(np.int64))
            st.set_s(vdst, st.v[r0 - OP["VGPR_MIN"]][np.arange(st.W), lane])
        return rfl
    if n == "v_readlane_b32":
        r0, sel = codes[0] - OP["VGPR_MIN"], reader(codes[1], "u32", lit, False)
        return lambda st: st.set_s(vdst, st.v[r0][np.arange(st.W), (sel(st) & U32(31)).astype(np.int64)])
    if n == "v_writelane_b32":
        val, sel = reader(codes[0], "u32", lit, False), reader(codes[1], "u32", lit, False)

        def wl(st):
            lane = (np.broadcast_to(sel(st), (st.W,)) & U32(31)).astype(np.int64)
            m = np.zeros((st.W, LANES), bool)
            m[np.arange(st.W), lane] = True
            m &= st.act[:, None]
            st.set_v(vdst, np.broadcast_to(val(st), (st.W,))[:, None], m)
        return wl
    if n in ("v_permlane16_b32", "v_permlanex16_b32"):
        src = codes[0] - OP["VGPR_MIN"]
        lo, hi = reader(codes[1], "u32", lit, False), reader(codes[2], "u32", lit, False)
        fi, bc = bool(opsel & 1), bool(opsel & 2)
        x16 = n == "v_permlanex16_b32"

        def perm(st):
            sel = (np.broadcast_to(hi(st), (st.W,)).astype(U64) << U64(32)) | np.broadcast_to(lo(st), (st.W,)).astype(U64)
            nib = ((sel[:, None] >> (U64(4) * (_LANE & 15).astype(U64))) & U64(15)).astype(np.int64)
            base = (_ROW ^ 16) if x16 else _ROW
            idx = base + nib
            x = np.take_along_axis(st.v[src], idx, axis=1)
            m = st.emask()
            if not fi:
                srcon = np.take_along_axis((st.s[EXEC][:, None] & (U32(1) << _LANE.astype(U32))) != 0, idx, axis=1)
                x = np.where(srcon, x, U32(0))
                m = m if bc else m & srcon
            st.set_v(vdst, x, m)
        return perm
    if n in ("v_mbcnt_lo_u32_b32", "v_mbcnt_hi_u32_b32"):
        a, b = rd(0, "u32"), rd(1, "u32")
        hi_half = n.endswith("hi_u32_b32")

        below = np.zeros(LANES, U32) if hi_half else (U32(1) << _LANE_U32) - U32(1)
        # wave32: the high mask covers lanes 32-63, none of which is below any lane of the wave

        def mbcnt(st):
            x = np.broadcast_to(a(st), (st.W, LANES)).astype(U32)
            _write(st, vdst, "u32", popcount32(x & below) + b(st), st.emask())
        return mbcnt
    if n in ("v_movrels_b32", "v_movreld_b32", "v_movrelsd_b32"):
        # VGPRs indexed by M0 (per wave): movrels reads v[src0 + M0], movreld writes v[vdst + M0],
        # movrelsd does both
        if codes[0] < OP["VGPR_MIN"] and n != "v_movreld_b32":
            raise Unsupported(f"{n}: source must be a VGPR")
        src = codes[0] - OP["VGPR_MIN"]
        rd_src = n in ("v_movrels_b32", "v_movrelsd_b32")
        wr_dst = n in ("v_movreld_b32", "v_movrelsd_b32")
        val = reader(codes[0], "u32", lit, True)

        def movrel(st):
            m0 = st.s[OP["M0"]].astype(np.int64)
            m = st.emask()
            rows = np.arange(st.W)
            si = src + m0 if rd_src else None
            di = vdst + m0 if wr_dst else np.full(st.W, vdst)
            if (di[st.act] >= st.v.shape[0]).any() or (rd_src and (si[st.act] >= st.v.shape[0]).any()):
                raise Unsupported(f"{n}: M0-relative VGPR index past the wave's {st.v.shape[0]} VGPRs")
            x = st.v[np.minimum(si, st.v.shape[0] - 1), rows] if rd_src else np.broadcast_to(val(st), (st.W, LANES))
            for w in np.flatnonzero(st.act):
                np.copyto(st.v[di[w], w], x[w], where=m[w])
        return movrel
    if n == "v_swap_b32":
        a = codes[0] - OP["VGPR_MIN"]

        def swap(st):
            m = st.emask()
            x, y = st.v[a].copy(), st.v[vdst].copy()
            st.set_v(vdst, x, m)
            st.set_v(a, y, m)
        return swap
    if n in ("v_nop", "v_pipeflush"):
        return lambda st: None

    # ---- carry / select -----------------------------------------------------------------------
    if n in ("v_cndmask_b32", "v_cndmask_b16"):
        t = "b32" if n.endswith("b32") else "b16"
        r0, r1 = rd(0, t), rd(1, t)
        msk = codes[2] if vop3 else VCC

        def cnd(st):
            if dpp is not None:
                x, valid = src0_dpp(st, t)
                m = dpp.mask(st, valid)
            else:
                x, m = r0(st), st.emask()
            sel = ((st.s[msk][:, None] >> _LANE.astype(U32)) & U32(1)).astype(bool)
            _write(st, vdst, t, np.where(sel, r1(st), x), m, hi_dst)
        return cnd
    if n in ("v_add_co_u32", "v_sub_co_u32", "v_subrev_co_u32", "v_add_co_ci_u32", "v_sub_co_ci_u32",
             "v_subrev_co_ci_u32"):
        r0, r1 = rd(0, "u32"), rd(1, "u32")
        ci = n.endswith("_ci_u32")
        cin = (codes[2] if vop3 else VCC) if ci else None
        cout = sdst if vop3 else VCC
        sub = "_sub" in n
        rev = "subrev" in n

        def addc(st):
            if dpp is not None:
                a, valid = src0_dpp(st, "u32")
                m = dpp.mask(st, valid)
            else:
                a, m = r0(st), st.emask()
            b = r1(st)
            if rev:
                a, b = b, a
            a = np.asarray(a, U32)
            b = np.asarray(b, U32)
            if sub:
                r = a - b
                carry = b > a
            else:
                r = a + b
                carry = r < a
            if ci:
                c = ((st.s[cin][:, None] >> _LANE_U32) & U32(1))
                r2 = r - c if sub else r + c
                carry = carry | ((r2 > r) if sub else (r2 < r))
                r = r2
            _write(st, vdst, "u32", r, m)
            st.set_s(cout, st.pack(np.broadcast_to(carry, m.shape) & m))
        return addc
    if n in ("v_mad_u64_u32", "v_mad_i64_i32"):
        sgn = n == "v_mad_i64_i32"
        t32, t64 = ("i32", "i64") if sgn else ("u32", "u64")
        r0, r1, r2 = rd(0, t32), rd(1, t32), rd(2, t64)

        def mad(st):
            a, b, c = r0(st), r1(st), r2(st)
            if sgn:
                p = a.astype(np.int64) * b.astype(np.int64)
                c64 = np.asarray(c, np.int64)
                res = p.astype(U64) + c64.astype(U64)
                # carry-out of the signed form: the 64-bit sum overflowed
                r64 = res.view(np.int64)
                ov = ((p >= 0) == (c64 >= 0)) & ((r64 >= 0) != (p >= 0))
            else:
                p = a.astype(U64) * b.astype(U64)
                res = p + np.asarray(c, U64)
                ov = res < p
            m = st.emask()
            st.set_v64(vdst, res, m)
            st.set_s(sdst, st.pack(np.broadcast_to(ov, m.shape) & m))
        return mad
    if n in ("v_div_scale_f32", "v_div_scale_f64"):
        r0, r1, r2 = rd(0, dt), rd(1, dt), rd(2, dt)

        def dscale(st):
            m = st.emask()
            d, vcc = div_scale(r0(st), r1(st), r2(st))
            _write(st, vdst, dt, np.broadcast_to(d, m.shape), m)
            st.set_s(sdst, st.pack(np.broadcast_to(vcc, m.shape) & m))
        return dscale
    if n in ("v_div_fmas_f32", "v_div_fmas_f64"):
        r0, r1, r2 = rd(0, dt), rd(1, dt), rd(2, dt)

        def fmas(st):
            vcc = ((st.s[VCC][:, None] >> _LANE_U32) & U32(1)).astype(bool)
            res = div_fmas(r0(st), r1(st), r2(st), vcc)
            _write(st, vdst, dt, _omod_clamp(np.asarray(res), dt, omod, clamp), st.emask())
        return fmas

    # ---- generic ops ------------------------------------------------------------------------------
    if n in ("v_fmamk_f32", "v_fmaak_f32", "v_fmamk_f16", "v_fmaak_f16"):
        t = dt
        k = reader(OP["LITERAL"], t, lit, True)
        a, b = rd(0, t), rd(1, t)
        fn = OPS["v_fma_f32"] if t == "f32" else OPS["v_fma_f16"]
        order = (lambda st: (a(st), k(st), b(st))) if "fmamk" in n else (lambda st: (a(st), b(st), k(st)))

        def fmak(st):
            _write(st, vdst, t, fn(*order(st)), st.emask())
        return fmak
    fn = OPS.get(n)
    if clamp and n in _SAT:
        fn = _SAT[n]
    if fn is None:
        raise Unsupported(f"{n} is not implemented by the emulator")
    nargs = _arity(fn)
    acc = n in ("v_fmac_f32", "v_fmac_f16", "v_dot2acc_f32_f16")
    types = list(sts) + [sts[-1]] * 3
    if acc:
        nargs = 3
        if not vop3:
            codes = codes + [OP["VGPR_MIN"] + vdst]
        else:
            codes = codes[:2] + [OP["VGPR_MIN"] + vdst]
    rds = [rd(k, types[k]) for k in range(nargs)]

    def run(st):
        if dpp is not None:
            x, valid = src0_dpp(st, types[0])
            m = dpp.mask(st, valid)
            args = [x] + [r(st) for r in rds[1:]]
        else:
            m = st.emask()
            args = [r(st) for r in rds]
        res = fn(*args)
        if dt.startswith(("f", "bf")) and (omod or clamp):
            res = _omod_clamp(np.asarray(res), dt, omod, clamp)
        _write(st, vdst, dt, res, m, hi_dst)
    return run


# ---- VOP3P ---------------------------------------------------------------------------------------
def _vop3p(inst: Inst):
    n, f, lit = inst.name, inst.f, inst.literal
    if n.startswith("v_wmma_"):
        return _wmma(inst)
    vdst = f["vdst"]
    opsel, neg, neg_hi = f["opsel"], f["neg"], f["neg_hi"]
    opsel_hi = f["opsel_hi"] | (f["opsel_hi2"] << 2)
    if n in PK_OPS:
        et, fn = PK_OPS[n]
        nargs = _arity(fn)
        codes = [f["src0"], f["src1"], f["src2"]][:nargs]
        raw = [reader(c, "u32", lit, True) for c in codes]

        def half(x, sel, ng):
            h = to_type(x, et, bool(sel))
            return -h if ng else h

        def pk(st):
            xs = [r(st) for r in raw]
            lo = fn(*[half(xs[k], (opsel >> k) & 1, (neg >> k) & 1 and et == "f16") for k in range(nargs)])
            hi = fn(*[half(xs[k], (opsel_hi >> k) & 1, (neg_hi >> k) & 1 and et == "f16") for k in range(nargs)])
            if f["clamp"]:
                raise Unsupported(f"{n}: clamp")
            bits = (from_type(lo, et) & U32(0xFFFF)) | (from_type(hi, et) << U32(16))
            st.set_v(vdst, bits, st.emask())
        return pk
    if n in ("v_dot2_f32_f16", "v_dot2_f32_bf16", "v_dot4_i32_iu8", "v_dot4_u32_u8", "v_dot8_i32_iu4",
             "v_dot8_u32_u4"):
        iu = n.endswith(("_iu8", "_iu4"))
        if opsel or (opsel_hi != 7) or neg_hi or (neg and not iu) or (iu and neg & 4):
            raise Unsupported(f"{n}: op_sel/neg modifiers")
        dt, sts = valu_types(n)
        r = [reader(f["src0"], "u32", lit, True), reader(f["src1"], "u32", lit, True),
             reader(f["src2"], sts[2], lit, True)]
        fn = OPS[n]
        if iu:
            # v_dot*_i32_iu*: NEG[0]/NEG[1] mark A/B as signed (clang's sudot4/sudot8 flags)
            fn = dot_iu(n, bool(neg & 1), bool(neg & 2))

        def dot(st):
            _write(st, vdst, dt, fn(r[0](st), r[1](st), r[2](st)), st.emask())
        return dot
    if n in ("v_fma_mix_f32", "v_fma_mixlo_f16", "v_fma_mixhi_f16"):
        codes = [f["src0"], f["src1"], f["src2"]]
        raw = [reader(c, "u32", lit, True) for c in codes]

        def mixsrc(x, k):
            # op_sel_hi[k] = 1: the source is f16 (op_sel[k] picks its half); else f32
            if (opsel_hi >> k) & 1:
                v = to_type(x, "f16", bool((opsel >> k) & 1)).astype(F32)
            else:
                v = to_type(x, "f32")
            if (neg_hi >> k) & 1:
                v = np.abs(v)
            return -v if (neg >> k) & 1 else v

        def mix(st):
            xs = [mixsrc(r(st), k) for k, r in enumerate(raw)]
            if n == "v_fma_mix_f32":
                res = fma32(*xs)
                _write(st, vdst, "f32", res, st.emask())
            else:
                res = fma64(*[np.asarray(x, F64) for x in xs]).astype(np.float16)
                _write(st, vdst, "f16", res, st.emask(), n.endswith("hi_f16"))
        return mix
    raise Unsupported(f"{n} is not implemented by the emulator")


def _wmma(inst: Inst):
    """v_wmma_*_16x16x16 (wave32): A and B are 16x16 matrices held as 8 VGPRs of packed 16-bit
    values; lane l (0-15 and 16-31 alike) holds row l%16 of A / column l%16 of B (all 16 K values).
    C/D (f32/i32): VGPR k of lane l holds element (row 2k + l//16, column l%16)."""
    n, f = inst.name, inst.f
    if n not in ("v_wmma_f32_16x16x16_f16", "v_wmma_f32_16x16x16_bf16"):
        raise Unsupported(f"{n} is not implemented by the emulator")
    if f["opsel"] or f["neg"] or f["neg_hi"] or f["clamp"]:
        raise Unsupported(f"{n}: modifiers")
    et = "f16" if n.endswith("_f16") else "bf16"
    a0, b0 = f["src0"] - OP["VGPR_MIN"], f["src1"] - OP["VGPR_MIN"]
    c_code, d0 = f["src2"], f["vdst"]
    if min(a0, b0) < 0 or c_code < OP["VGPR_MIN"]:
        raise Unsupported(f"{n}: non-VGPR matrix operand")
    c0 = c_code - OP["VGPR_MIN"]

    def unpack(st, base):
        regs = st.v[base:base + 8]                       # (8, W, 32)
        lo, hi = to_type(regs, et), to_type(regs, et, True)
        vals = np.stack([lo, hi], axis=-1).reshape(8, st.W, LANES, 2)   # k = 2*reg + half
        vals = np.moveaxis(vals, 0, 2).reshape(st.W, LANES, 16)           # [w, lane, k]
        return vals[:, :16, :].astype(F64)               # lanes 16-31 replicate lanes 0-15

    def wmma(st):
        A = unpack(st, a0)                               # [w, m, k]
        B = unpack(st, b0)                               # [w, n, k]
        C = st.v[c0:c0 + 8].view(F32)                    # [reg, w, lane]
        Cm = np.empty((st.W, 16, 16), F64)
        for k in range(8):
            Cm[:, 2 * k, :] = C[k][:, :16]
            Cm[:, 2 * k + 1, :] = C[k][:, 16:]
        D = (np.einsum("wmk,wnk->wmn", A, B) + Cm).astype(F32)
        m = np.broadcast_to(st.act[:, None], (st.W, LANES))
        for k in range(8):
            row = np.concatenate([D[:, 2 * k, :], D[:, 2 * k + 1, :]], axis=1)
            st.set_v(d0 + k, row.view(U32), m)
    return wmma


# ---- VOPD ----------------------------------------------------------------------------------------
_VOPD_NAMES = {"v_dual_fmac_f32": "v_fmac_f32", "v_dual_fmaak_f32": "v_fmaak_f32", "v_dual_fmamk_f32": "v_fmamk_f32",
               "v_dual_mul_f32": "v_mul_f32", "v_dual_add_f32": "v_add_f32", "v_dual_sub_f32": "v_sub_f32",
               "v_dual_subrev_f32": "v_subrev_f32", "v_dual_mul_dx9_zero_f32": "v_mul_dx9_zero_f32",
               "v_dual_mov_b32": "v_mov_b32", "v_dual_cndmask_b32": "v_cndmask_b32", "v_dual_max_f32": "v_max_f32",
               "v_dual_min_f32": "v_min_f32", "v_dual_dot2acc_f32_f16": "v_dot2acc_f32_f16",
               "v_dual_add_nc_u32": "v_add_nc_u32", "v_dual_lshlrev_b32": "v_lshlrev_b32", "v_dual_and_b32": "v_and_b32"}


def _vopd(inst: Inst):
    """Two independent VOP2-like ops; both read their sources before either writes."""
    f = inst.f
    vdsty = (f["vdsty"] << 1) | ((f["vdstx"] & 1) ^ 1)
    halves = []
    for name, dst, s0, s1 in ((inst.name, f["vdstx"], f["srcx0"], f["vsrcx1"]),
                              (inst.vopd_y, vdsty, f["srcy0"], f["vsrcy1"])):
        base = _VOPD_NAMES.get(name)
        if base is None:
            raise Unsupported(f"{name} is not implemented by the emulator")
        halves.append(_vopd_half(base, dst, s0, s1, inst.literal))

    def dual(st):
        m = st.emask()
        outs = [h(st) for h in halves]
        for d, t, val in outs:
            _write(st, d, t, val, m)
    return dual


def _vopd_half(name: str, dst: int, s0: int, s1: int, lit):
    dt, sts = valu_types(name)
    a = reader(s0, sts[0], lit, True)
    b = reader(OP["VGPR_MIN"] + s1, sts[1] if len(sts) > 1 else "b32", lit, True)
    if name == "v_mov_b32":
        return lambda st: (dst, dt, np.broadcast_to(a(st), (st.W, LANES)))
    if name == "v_cndmask_b32":
        def cnd(st):
            sel = ((st.s[VCC][:, None] >> _LANE.astype(U32)) & U32(1)).astype(bool)
            return dst, dt, np.where(sel, b(st), a(st))
        return cnd
    if name in ("v_fmaak_f32", "v_fmamk_f32"):
        k = reader(OP["LITERAL"], "f32", lit, True)
        fn = OPS["v_fma_f32"]
        if name == "v_fmamk_f32":
            return lambda st: (dst, dt, fn(a(st), k(st), b(st)))
        return lambda st: (dst, dt, fn(a(st), b(st), k(st)))
    if name in ("v_fmac_f32", "v_dot2acc_f32_f16"):
        c = reader(OP["VGPR_MIN"] + dst, "f32", lit, True)
        fn = OPS[name]
        return lambda st: (dst, dt, fn(a(st), b(st), c(st)))
    fn = OPS[name]
    return lambda st: (dst, dt, fn(a(st), b(st)))
