"""Turn decoded ir3 instructions into executable ops (once per shader; see ``load_program``).

An ``Op`` carries what the scheduler checks (the registers it reads and writes, at which cycle of
the instruction, its sync flags and its latency class) and ``run(m, mask)``, the vectorised effect
on a batch of fibers ``m`` (a ``machine.Batch``) restricted to ``mask`` (None = every lane).
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

from hwdrv.qcom.gen import ir3_isa as ISA

from . import alu, exec_alu, exec_mem, flow
from .decode import DecodeError, Scope, decode_word
from .ops import ALU, SS, HazardFault, Op, ShaderFault, Src, mk_src as _mk, undecodable_op, unsupported_op
from .regfile import A0, A1, P0

__all__ = ["load_program", "build", "Program", "Op", "Src", "ShaderFault", "HazardFault"]

FLUT = [0.0, 0.5, 1.0, 2.0, np.e, np.pi, 1 / np.pi, 1 / np.log2(np.e), np.log2(np.e), 1 / np.log2(10), np.log2(10), 4.0]


@dataclass
class Program:
    ops: list[Op]
    full_regs: set[int]
    half_regs: set[int]
    uses_relative: bool


_CACHE: dict[tuple[int, bytes, bool], Program] = {}


def load_program(iova: int, code: bytes, merged: bool) -> Program:
    """Decode ``code`` once: cached by (shader address, sha256 of the bytes, merged registers)."""
    key = (iova, hashlib.sha256(code).digest(), merged)
    prog = _CACHE.get(key)
    if prog is None:
        prog = _CACHE[key] = build(code, merged)
        if len(_CACHE) > 256:
            _CACHE.pop(next(iter(_CACHE)))
    return prog


def build(code: bytes, merged: bool) -> Program:
    words = struct.unpack(f"<{len(code) // 8}Q", code[: len(code) // 8 * 8])
    ops, full, half, rel = [], set(), set(), False
    for pc, w in enumerate(words):
        try:
            s = decode_word(w)
        except DecodeError as e:
            ops.append(undecodable_op(pc, w, str(e)))
            continue
        b = _Builder(pc, w, s, merged)
        try:
            op = b.build()
        except (DecodeError, KeyError) as e:
            op = unsupported_op(pc, w, s.name, f"cannot be modelled ({e})")
        ops.append(op)
        full |= b.full
        half |= b.half
        rel |= b.relative
    return Program(ops, full, half, rel)


class _Builder:
    def __init__(self, pc: int, word: int, s: Scope, merged: bool):
        self.pc, self.word, self.s, self.merged = pc, word, s, merged
        self.full: set[int] = set()
        self.half: set[int] = set()
        self.relative = False
        self.op = Op(pc, word, s.name, word >> 61)

    # --- helpers ------------------------------------------------------------------------------------
    def flag(self, name: str) -> bool:
        return bool(self.s.raw(name)) if self.s.has(name) else False

    def note_reg(self, n: int, half: bool) -> None:
        if n >= 0xFC and not (P0 <= n < P0 + 4):
            return
        (self.half if half and n not in (A0, A1) and not (P0 <= n < P0 + 4) else self.full).add(n)

    def read(self, src: Src, cycle: int, late: bool = False) -> None:
        if src.kind == "gpr":
            self.note_reg(src.n, src.half)
            self.op.reads.append((src.n, src.half, cycle, late))
        elif src.kind in ("relgpr", "relconst"):
            self.relative = True
            self.note_reg(A0, False)
            self.op.reads.append((A0, False, cycle, False))

    def write(self, n: int, half: bool, cycle: int) -> None:
        self.note_reg(n, half)
        self.op.writes.append((n, half, cycle))

    def multisrc(self, sc: Scope, half: bool, r: bool) -> Src:
        kind = sc.name
        absneg = sc.raw("ABSNEG") if sc.has("ABSNEG") else 0
        if kind == "#multisrc-gpr":
            return _mk("gpr", half, n=sc.get("SRC").val, r=r, absneg=absneg)
        if kind == "#multisrc-const":
            return _mk("const", half, n=sc.get("SRC").val, r=r, absneg=absneg)
        if kind == "#mulitsrc-immed":
            v = sc.get("IMMED")
            return _mk("imm", half, bits=v & (0xFFFF if half else 0xFFFFFFFF), absneg=absneg)
        if kind.startswith("#multisrc-immed-flut"):
            i = sc.raw("IMMED")
            if i >= len(FLUT):
                raise KeyError(f"float table index {i} (Mesa's #flut enum has {len(FLUT)})")
            x = FLUT[i]
            bits = int(np.float16(x).view(np.uint16)) if half else int(np.float32(x).view(np.uint32))
            return _mk("imm", half, bits=bits, absneg=absneg, flut=True)
        if kind == "#multisrc-relative-gpr":
            return _mk("relgpr", half, n=sc.get("SRC").get("OFFSET"), r=r, absneg=absneg)
        if kind == "#multisrc-relative-const":
            return _mk("relconst", half, n=sc.get("SRC").get("OFFSET"), r=r, absneg=absneg)
        raise KeyError(f"source kind {kind}")

    def cat3src(self, sc: Scope, half: bool, r: bool, neg: bool) -> Src:
        kind = sc.name
        an = 1 if neg else 0
        if kind == "#cat3-src-gpr":
            return _mk("gpr", half, n=sc.get("SRC").val, r=r, absneg=an)
        if kind == "#cat3-src-const-or-immed":
            if sc.raw("IMMED_ENCODING") if sc.has("IMMED_ENCODING") else False:
                return _mk("imm", half, bits=sc.raw("IMMED"), absneg=an)
            return _mk("const", half, n=sc.val & 0x7FF, r=r, absneg=an)
        if kind == "#cat3-src-relative-gpr":
            return _mk("relgpr", half, n=sc.get("OFFSET"), r=r, absneg=an)
        if kind == "#cat3-src-relative-const":
            return _mk("relconst", half, n=sc.get("OFFSET"), r=r, absneg=an)
        raise KeyError(f"source kind {kind}")

    def common(self) -> None:
        o = self.op
        o.ss, o.sy, o.jp = self.flag("SS"), self.flag("SY"), self.flag("JP")

    def rpt_nop(self) -> tuple[int, bool, bool]:
        """REPEAT, and the (r) flags of src1/src2; on cat2/cat3 with REPEAT 0 those bits are (nopN)."""
        rep = self.s.raw("REPEAT") if self.s.has("REPEAT") else 0
        r1, r2 = self.flag("SRC1_R"), self.flag("SRC2_R")
        if rep == 0 and self.op.cat in (2, 3) and (r1 or r2):
            self.op.nop = int(r1) | (int(r2) << 1)
            r1 = r2 = False
        self.op.repeat = rep
        return rep, r1, r2

    # --- dispatch -----------------------------------------------------------------------------------
    def build(self) -> Op:
        self.common()
        cat = self.op.cat
        fn = {0: self.cat0, 1: self.cat1, 2: self.cat2, 3: self.cat3, 4: self.cat4, 6: self.cat6, 7: self.cat7}.get(cat)
        if fn is None:
            return unsupported_op(self.pc, self.word, self.s.name, "(texture/cat5 instructions are not modelled)")
        return fn()

    # --- cat0 ---------------------------------------------------------------------------------------
    def cat0(self) -> Op:
        o, s = self.op, self.s
        o.consumer = "long"
        o.repeat = s.raw("REPEAT") if s.has("REPEAT") else 0
        name = s.name
        if name == "nop":
            o.run = flow.nop
            return o
        if name in ("br", "bany", "ball", "brao", "braa", "kill"):
            comps = [(s.raw("COMP1"), bool(s.raw("INV1")))]
            if name in ("brao", "braa"):
                comps.append((s.raw("COMP2"), bool(s.raw("INV2"))))
            for c, _ in comps:
                self.read(_mk("gpr", n=P0 + c), 0)
            if name == "kill":
                o.run = flow.make_kill(comps[0])
            else:
                o.run = flow.make_branch(name, comps, self.pc + s.get("IMMED"), self.pc)
            return o
        if name == "jump":
            o.run = flow.make_jump(self.pc + s.get("IMMED"))
            return o
        if name == "getone":
            o.run = flow.make_getone(self.pc + s.get("IMMED"), self.pc)
            return o
        if name == "end":
            o.run = flow.end
            return o
        return unsupported_op(self.pc, self.word, name)

    # --- cat1 ---------------------------------------------------------------------------------------
    def cat1(self) -> Op:
        o, s = self.op, self.s
        if s.name in ("swz", "gat", "sct"):
            return self.cat1_multi()
        if s.name not in ("mov-immed", "mov-const", "mov-gpr", "mov-relgpr", "mov-relconst"):
            return unsupported_op(self.pc, self.word, s.name)
        o.produces, o.consumer = ALU, "alu"
        o.repeat = s.raw("REPEAT")
        st, dt = s.raw("SRC_TYPE"), s.raw("DST_TYPE")
        shalf, dhalf = alu.TYPES[st][1] <= 16, alu.TYPES[dt][1] <= 16
        r = self.flag("SRC_R")
        sc = s.get("SRC")
        if s.name == "mov-immed":
            src = _mk("imm", shalf, bits=sc.raw("IMMED") & (0xFFFF if shalf else 0xFFFFFFFF))
        elif s.name == "mov-const":
            src = _mk("const", shalf, n=sc.get("CONST").val, r=r)
        elif s.name == "mov-gpr":
            src = _mk("gpr", shalf, n=sc.get("SRC").val, r=r)
        elif s.name == "mov-relgpr":
            src = _mk("relgpr", shalf, n=sc.get("SRC").get("OFFSET"), r=r)
        else:
            src = _mk("relconst", shalf, n=sc.get("SRC").get("OFFSET"), r=r)
        dst = s.get("DST")
        if s.raw("DST_REL"):
            dst_rel, dn = True, dst.raw("OFFSET")
            self.relative = True
            self.op.reads.append((A0, False, 0, False))
            self.note_reg(A0, False)
        else:
            dst_rel, dn = False, dst.get("DST").val
        if dn in (A0, A1):
            dhalf = False        # a0.x/a1.x hold the (sign-extended) 16-bit value as a 32-bit index
        for k in range(o.repeat + 1):
            self.read(Src(src.kind, src.reg(k), src.half, False), k)
            if not dst_rel:
                self.write(dn + k, dhalf, k)
        tn = ISA.ENUMS["#type"]
        o.name = {A0: "mova", A1: "mova1"}.get(dn, f"{'mov' if st == dt else 'cov'}.{tn[st]}{tn[dt]}") \
            if not dst_rel else f"mov.{tn[st]}{tn[dt]}"
        float_src = alu.TYPES[st][0] == "f"
        o.run = exec_alu.make_cov(src, st, dt, dn, dhalf, dst_rel, s.raw("ROUND"), o.repeat, float_src)
        return o

    def cat1_multi(self) -> Op:
        """swz/gat/sct (isa/ir3-cat1.xml): several movs that read every source before writing any
        destination; source i is read, and destination i written, in cycle i (ir3_delay.c
        ir3_src_read_delay / ir3_delayslots_with_repeat for gat, swz and sct)."""
        o, s = self.op, self.s
        o.produces, o.consumer = ALU, "alu"
        st, dt = s.raw("SRC_TYPE"), s.raw("DST_TYPE")
        shalf, dhalf = alu.TYPES[st][1] <= 16, alu.TYPES[dt][1] <= 16
        if s.name == "swz":
            srcs = [s.get("SRC0").get("REG").val, s.get("SRC1").get("REG").val]
            dsts = [s.get("DST0").get("REG").val, s.get("DST1").get("REG").val]
        elif s.name == "gat":
            srcs = [s.get(f"SRC{i}").get("REG").val for i in range(4)]
            dsts = [s.get("DST0").get("REG").val + i for i in range(4)]
        else:
            srcs = [s.get("SRC0").get("REG").val + i for i in range(4)]
            dsts = [s.get(f"DST{i}").get("REG").val for i in range(4)]
        o.repeat = len(srcs) - 1          # as slow as the equivalent movs: one cycle each
        for i, (sn, dn) in enumerate(zip(srcs, dsts)):
            self.read(_mk("gpr", shalf, n=sn), i)
            self.write(dn, dhalf, i)
        o.run = exec_alu.make_multi(srcs, dsts, shalf, dhalf, st, dt, s.raw("ROUND"))
        return o

    # --- cat2 ---------------------------------------------------------------------------------------
    def cat2(self) -> Op:
        o, s = self.op, self.s
        o.produces, o.consumer = ALU, "alu"
        rep, r1, r2 = self.rpt_nop()
        full = bool(s.raw("FULL"))
        dn = s.get("DST").val
        dhalf = bool(s.raw("DST_HALF"))
        if dn >= 0xF8:       # p0 destination: a predicate bit, whatever the precision
            dhalf = False
        name = s.name
        srcs = [self.multisrc(s.get("SRC1"), not full, r1)]
        if s.has("SRC2"):
            srcs.append(self.multisrc(s.get("SRC2"), not full, r2))
        for k in range(rep + 1):
            for src in srcs:
                self.read(Src(src.kind, src.reg(k), src.half, False), k)
            self.write(dn + k, dhalf, k)
        cond = s.raw("COND") if s.has("COND") else 0
        o.run = exec_alu.make_cat2(name, srcs, full, dn, dhalf, bool(s.raw("SAT")), cond, rep, o)
        return o

    # --- cat3 ---------------------------------------------------------------------------------------
    def cat3(self) -> Op:
        o, s = self.op, self.s
        name = s.name
        fn, kind, full = alu.cat3(name)
        o.produces, o.consumer = ALU, "alu"
        rep, r1, _ = self.rpt_nop()
        r2, r3 = self.flag("SRC2_R"), self.flag("SRC3_R")
        if o.nop:
            r2 = r3 = False
        half = not full
        s1 = self.cat3src(s.get("SRC1"), half, r1, bool(s.raw("SRC1_NEG")))
        s2 = _mk("gpr", half, n=s.get("SRC2").val, r=r2, absneg=int(bool(s.raw("SRC2_NEG"))))
        s3 = self.cat3src(s.get("SRC3"), half, r3, bool(s.raw("SRC3_NEG")))
        dn = s.get("DST").val
        dhalf = bool(s.raw("DST_HALF")) if s.has("DST_HALF") else half
        late = name.startswith("mad") or name.startswith("madsh")   # ir3_src_read_delay (a6xx: mad/madsh)
        for k in range(rep + 1):
            self.read(Src(s1.kind, s1.reg(k), s1.half), k)
            self.read(Src(s2.kind, s2.reg(k), s2.half), k)
            self.read(Src(s3.kind, s3.reg(k), s3.half), k, late)
            self.write(dn + k, dhalf, k)
        sat = bool(s.raw("SAT")) if s.has("SAT") else False
        o.run = exec_alu.make_cat3(name, fn, kind, full, [s1, s2, s3], dn, dhalf, sat, rep)
        return o

    # --- cat4 ---------------------------------------------------------------------------------------
    def cat4(self) -> Op:
        o, s = self.op, self.s
        if s.name not in alu.CAT4:
            return unsupported_op(self.pc, self.word, s.name)
        o.produces, o.consumer = SS, "long"
        o.repeat = rep = s.raw("REPEAT")
        full = bool(s.raw("FULL"))
        src = self.multisrc(s.get("SRC"), not full, self.flag("SRC_R"))
        dn, dhalf = s.get("DST").val, bool(s.raw("DST_HALF"))
        for k in range(rep + 1):
            self.read(Src(src.kind, src.reg(k), src.half), k)
            self.write(dn + k, dhalf, k)
        o.run = exec_alu.make_cat4(s.name, src, full, dn, dhalf, bool(s.raw("SAT")), rep)
        return o

    # --- cat6 ---------------------------------------------------------------------------------------
    def cat6(self) -> Op:
        return exec_mem.build(self)

    # --- cat7 ---------------------------------------------------------------------------------------
    def cat7(self) -> Op:
        o = self.op
        if o.name == "bar":
            o.run = flow.barrier
            return o
        if o.name in ("fence", "dccln", "dcinv", "dcflu", "icinv", "sleep"):
            o.run = flow.nop    # the mock's memory is coherent: fences and cache maintenance have no effect
            return o
        return unsupported_op(self.pc, self.word, o.name)
