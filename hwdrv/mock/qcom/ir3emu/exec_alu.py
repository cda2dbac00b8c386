"""Executable closures for the ALU categories: cat1 mov/cov, cat2, cat3 and cat4 (SFU).

Each ``make_*`` returns ``run(m, mask)``; (rptN) runs the body N+1 times, advancing the destination
and every (r) source by one register per repetition (qcom.md §3.2), each repetition reading what the
previous one wrote.
"""
from __future__ import annotations

import numpy as np

from . import alu
from .regfile import A0, A1


def _check_float_immediates(srcs, name: str) -> None:
    for s in srcs:
        if s.kind == "imm" and not s.flut:
            # Mesa never emits these (ir3_cp.c lowers float immediates to the FLUT or the const file);
            # computerator's test-flut.sh exists because their hardware meaning is unknown.
            raise KeyError(f"{name} with an integer immediate source (meaning unknown on hardware)")


def make_cov(src, st: int, dt: int, dn: int, dhalf: bool, dst_rel: bool, rnd: int, rep: int, float_src: bool):
    same = st == dt
    to_addr = dn in (A0, A1) and not dst_rel

    def run(m, mask):
        for k in range(rep + 1):
            bits = m.src(src, k, float_src)
            out = bits if same else alu.convert(bits, st, dt, rnd)
            if to_addr:   # mova: a0.x/a1.x take the 16-bit value, sign-extended for mova (s16)
                out = np.asarray(out, np.uint16).view(np.int16 if dn == A0 else np.uint16).astype(np.int32).view(np.uint32)
            if dst_rel:
                m.regs.scatter(m.a0() + dn + k, dhalf, np.broadcast_to(out, (m.lanes,)), mask)
            else:
                m.wr(dn + k, dhalf, out, mask)
    return run


def make_multi(srcs: list[int], dsts: list[int], shalf: bool, dhalf: bool, st: int, dt: int, rnd: int):
    def run(m, mask):
        vals = [np.array(m.reg(n, shalf)) for n in srcs]          # copies: every source before any write
        for n, v in zip(dsts, vals):
            m.wr(n, dhalf, v if st == dt else alu.convert(v, st, dt, rnd), mask)
    return run


def make_cat2(name: str, srcs, full: bool, dn: int, dhalf: bool, sat: bool, cond: int, rep: int, op):
    full_out = not dhalf
    if name in alu.CAT2_FLOAT:
        _check_float_immediates(srcs, name)
        fn = alu.CAT2_FLOAT[name]
        ftype = alu.F[full]

        def body(vals):
            args = [alu.apply_fabsneg(np.asarray(v).view(ftype), s.absneg) for v, s in zip(vals, srcs)]
            with np.errstate(all="ignore"):
                r = fn(*args)
            if sat:
                r = np.clip(r, 0, 1)
            return alu.to_bits_float(r, full_out)
    elif name in ("cmps.f", "cmps.u", "cmps.s"):
        if name == "cmps.f":
            _check_float_immediates(srcs, name)
        cmp = alu.compare(name, cond, full)
        if sat:
            raise KeyError("(sat) on a compare")

        def body(vals):
            if name == "cmps.f":
                args = [alu.to_bits_float(alu.apply_fabsneg(alu.fview(v, full), s.absneg), full)
                        for v, s in zip(vals, srcs)]
            else:
                args = [alu.apply_iabsneg(v, s.absneg, full, False) for v, s in zip(vals, srcs)]
            return cmp(*args).astype(alu.U[full_out])
    else:
        fn, signed = alu.int_op(name, full)
        if sat:
            raise KeyError("(sat) on an integer op")
        bitwise = name.endswith(".b")

        def body(vals):
            args = [alu.apply_iabsneg(np.asarray(v, alu.U[full]), s.absneg, full, bitwise) for v, s in zip(vals, srcs)]
            return alu.to_bits_int(fn(*args), full_out, signed)

    def run(m, mask):
        for k in range(rep + 1):
            m.wr(dn + k, dhalf, body([m.src(s, k, name.endswith(".f")) for s in srcs]), mask)
    return run


def make_cat3(name: str, fn, kind: str, full: bool, srcs, dn: int, dhalf: bool, sat: bool, rep: int):
    full_out = not dhalf
    if kind != "f" and sat:
        raise KeyError("(sat) on an integer cat3 op")
    is_float = kind == "f"

    def run(m, mask):
        for k in range(rep + 1):
            vals = []
            for s in srcs:
                v = m.src(s, k, is_float)
                if s.absneg:
                    v = alu.to_bits_float(-alu.fview(v, full), full) if is_float else \
                        alu.apply_iabsneg(v, 1, full, False)
                vals.append(v)
            with np.errstate(all="ignore"):
                r = fn(*vals)
            if is_float:
                if sat:
                    r = np.clip(r, 0, 1)
                out = alu.to_bits_float(r, full_out)
            else:
                out = alu.to_bits_int(r, full_out, kind == "s")
            m.wr(dn + k, dhalf, out, mask)
    return run


def make_cat4(name: str, src, full: bool, dn: int, dhalf: bool, sat: bool, rep: int):
    _check_float_immediates([src], name)
    fn = alu.CAT4[name]
    full_out = not dhalf

    def run(m, mask):
        for k in range(rep + 1):
            x = alu.apply_fabsneg(alu.fview(m.src(src, k, True), full), src.absneg).astype(np.float32)
            r = fn(x)
            if sat:
                r = np.clip(r, 0, 1)
            m.wr(dn + k, dhalf, alu.to_bits_float(r, full_out), mask)
    return run
