"""Instruction selection for the ir3 renderer: a linear IR :class:`~tensor.ir.Kernel` ->
:class:`~tensor.render.ir3_regs.VInst`s over virtual registers.

Values live in full 32-bit registers whatever their dtype: f32 (f16 and bf16 are widened on
load and rounded on store and by CAST), int32, bool as 0/1. Buffers are IBOs (parameter k is
IBO k, an untyped buffer of 32-bit elements: ``ldib.b`` / ``stib.b``); narrower elements are
read as the 32-bit word holding them and written with an IBO ``atomic.b.and`` (clear the
element's bits) then ``atomic.b.or`` (set them), so neighbouring elements stored by other fibers
are never lost. a6xx has no 32-bit integer multiply or divide: multiplication is Mesa's
``mull.u`` + two ``madsh.m16`` (``ir3_compiler_nir.c``, nir_op_imul), division an f32
reciprocal estimate refined twice in integers (exact for every int32 but INT_MIN)."""
from __future__ import annotations

import struct

import numpy as np

from hwdrv.errors import ProgramError

from ..dtype import DType, bfloat16, bool_, float16, float32, int32
from ..ir import Inst, Kernel
from .ir3_legalize import END_LABEL
from .ir3_regs import LOCALID_SCALAR, PRED, WGID_SCALAR, R, VInst, VReg

#: threads per workgroup (the runtime launches BLOCK-thread blocks for every renderer)
from .ptx import BLOCK

#: the dtypes a6xx computes and stores; anything else is refused by name
SUPPORTED = (float32, float16, bfloat16, int32, bool_)
#: immediates an ALU source may hold as Mesa's compiler uses them (``ir3_valid_immediate``: "up
#: to 10 bits, sign-extended", though the isaspec field is 11 bits); larger ones go in a register
IMM_MIN, IMM_MAX = -511, 511
#: bytes of local memory per workgroup an ALLREDUCE exchanges through (one word per fiber)
ROW_SHARED = BLOCK * 4
#: distinct 32-bit constants kept in registers for the whole kernel (more are loaded where used)
MAX_HOISTED = 24
INT32_MIN, INT32_MAX = -2**31, 2**31 - 1
#: values below this are exact in f32 and fit the 24-bit multipliers (mul.u24)
U24 = 1 << 24
#: the word address bits of the 32-bit IBO element holding a 16- / 8-bit element
_WORD_SHIFT = {2: 1, 1: 2}


class UnsupportedDType(ProgramError):
    """A dtype the Adreno path cannot compute or store (a6xx has no 64-bit ALU or memory ops)."""


def f32_bits(v: float) -> int:
    return struct.unpack("<I", struct.pack("<f", float(v)))[0]


def mov_imm(bits: int) -> str:
    """``mov.u32u32 {d0}, imm`` spelled as Mesa prints it (ir3-cat1.xml: hex above 0x1000)."""
    return f"mov.u32u32 {{d0}}, {bits if bits <= 0x1000 else hex(bits)}"


def check_dtypes(kernel: Kernel) -> None:
    """Refuse, by name, a kernel using a dtype outside :data:`SUPPORTED`."""
    for dt in list(kernel.params) + [ins.dtype for ins in kernel.insts]:
        if dt not in SUPPORTED:
            raise UnsupportedDType(
                f"kernel {kernel.name}: dtype {dt.name} is not supported on Adreno (a6xx ir3 has no "
                f"{8 * dt.itemsize}-bit {dt.kind} instructions); supported: "
                f"{', '.join(d.name for d in SUPPORTED)}. Cast to float32 / int32 first")


class Selector:
    """Builds the VInst list of one kernel. After :meth:`run`: ``code``, ``reserved`` (the
    registers the hardware fills), ``shared`` (local memory bytes), ``branchstack``."""

    def __init__(self, kernel: Kernel):
        check_dtypes(kernel)
        self.insts = kernel.insts
        self.code: list[VInst] = []
        self.vals: dict[int, R] = {}
        self.consts: dict[int, object] = {}     # inst index -> python value of a CONST
        self.bounds: dict[int, tuple[int, int]] = {}    # int values' known ranges (index math)
        self.mutable: set[int] = set()          # ACC / LOOP values (redefined in loops)
        self.n = 0
        self.labels = 0
        self.lid = R(VReg(-1))
        self.wgid = R(VReg(-2))
        self.pred = R(VReg(-3))
        self.reserved = {self.lid.reg: LOCALID_SCALAR, self.wgid.reg: WGID_SCALAR, self.pred.reg: PRED}
        self.shared = 0
        self.exits = False          # threads past the end branch to the kernel's end
        self.gated = False          # some store branches around itself
        self.live: R | None = None  # row kernels: whether this thread's row exists
        self.end_label = END_LABEL
        self.loop_labels: dict[int, str] = {}
        self.prologue: list[VInst] = []         # the hoisted constants
        self.imms: dict[int, R] = {}

    # ---- building blocks ---------------------------------------------------------------
    def reg(self, half: bool = False, width: int = 1) -> VReg:
        self.n += 1
        return VReg(self.n, half, width)

    def emit(self, text: str, dsts: list[R], srcs: list[R], cls: str = "alu",
             target: str | None = None) -> None:
        self.code.append(VInst(text, dsts, srcs, cls, target))

    def op(self, text: str, *srcs: R, cls: str = "alu", half: bool = False) -> R:
        """A new register = ``text`` over ``srcs`` (``{d0}``, ``{s0}``.. in ``text``)."""
        d = R(self.reg(half))
        self.emit(text, [d], list(srcs), cls)
        return d

    def imm(self, value: int) -> R:
        """A register holding the 32-bit pattern ``value``: one per distinct value, loaded once at
        the kernel's start (before any branch, so every path sees it), up to MAX_HOISTED values."""
        bits = value & 0xFFFFFFFF
        if bits in self.imms:
            return self.imms[bits]
        text = mov_imm(bits)
        if len(self.imms) >= MAX_HOISTED:
            return self.op(text)
        d = R(self.reg())
        self.prologue.append(VInst(text, [d], []))
        self.imms[bits] = d
        return d

    def label(self) -> str:
        self.labels += 1
        return f"L{self.labels}"

    def branch(self, cond: R, when: bool, target: str) -> None:
        """Branch to ``target`` where ``cond`` (a 0/1 register) is ``when``."""
        self.branch_if("cmps.u.ne {d0}, {s0}, 0", [cond], when, target)

    def branch_if(self, compare: str, srcs: list[R], when: bool, target: str) -> None:
        """Branch to ``target`` where the comparison ``compare`` of ``srcs`` is ``when`` (the
        comparison written straight into p0.x)."""
        self.emit(compare, [self.pred], srcs)
        self.emit(f"br {'' if when else '!'}{{s0}}, #@", [], [self.pred], "branch", target)

    def small(self, j: int) -> int | None:
        """Instruction ``j``'s value when it is an int constant a cat2 immediate can hold."""
        v = self.consts.get(j)
        if isinstance(v, int) and not isinstance(v, bool) and IMM_MIN <= v <= IMM_MAX:
            return v
        return None

    def val(self, j: int) -> R:
        """Instruction ``j``'s value as a register (a constant is loaded on first use; one used
        only as an immediate or a shift never is)."""
        if j in self.vals:
            return self.vals[j]
        v = self.consts[j]
        bits = (f32_bits(v) if self.insts[j].dtype.is_float else int(v)) & 0xFFFFFFFF
        r = self.imm(bits)
        if bits in self.imms:       # hoisted: valid on every path; else loaded here, per use
            self.vals[j] = r
        return r

    # ---- the kernel --------------------------------------------------------------------
    def run(self) -> None:
        for i, ins in enumerate(self.insts):
            self.inst(i, ins)
        self.emit("", [], [], "label", self.end_label)
        self.emit("end", [], [], "end")
        self.code = self.prologue + self.code

    def inst(self, i: int, ins: Inst) -> None:
        b = self.bound(ins)
        if b is not None and INT32_MIN <= b[0] <= b[1] <= INT32_MAX:
            self.bounds[i] = b
        self.select(i, ins)

    def bound(self, ins: Inst) -> tuple[int, int] | None:
        """The range of an int / bool value, where the IR makes it known: constants, thread
        indices, loop counters and arithmetic over them (what view index math is made of)."""
        op, arg = ins.op, ins.arg
        if ins.dtype == bool_:
            return (0, 1)
        if ins.dtype != int32:
            return None
        if op == "CONST":
            return (arg, arg)
        if op == "SPECIAL":
            return (0, arg[1] - 1)
        if op == "LOOP":
            end = self.bounds.get(ins.src[0])
            return (0, end[1] - 1) if end and end[1] >= 1 else None
        if op == "CAST":
            return (0, 1) if self.insts[ins.src[0]].dtype == bool_ else None
        bs = [self.bounds.get(j) for j in ins.src]
        if op == "WHERE":
            return (min(bs[1][0], bs[2][0]), max(bs[1][1], bs[2][1])) if bs[1] and bs[2] else None
        if any(x is None for x in bs) or op not in ("ADD", "SUB", "MUL", "MAX", "IDIV", "MOD"):
            return None
        (a0, a1), (b0, b1) = bs[0], bs[1]
        if op == "ADD":
            return (a0 + b0, a1 + b1)
        if op == "SUB":
            return (a0 - b1, a1 - b0)
        if op == "MUL":
            c = [a0 * b0, a0 * b1, a1 * b0, a1 * b1]
            return (min(c), max(c))
        if op == "MAX":
            return (max(a0, b0), max(a1, b1))
        if a0 >= 0 and b0 > 0:
            return (a0 // b1, a1 // b0) if op == "IDIV" else (0, min(a1, b1 - 1))
        return None

    def select(self, i: int, ins: Inst) -> None:
        op, dt = ins.op, ins.dtype
        if op == "PARAM":
            return
        if op == "CONST":           # loaded when first read as a register (val)
            self.consts[i] = ins.arg
            return
        if op == "SPECIAL":
            self.vals[i] = self.special(ins.arg)
            return
        if op == "LOAD":
            self.vals[i] = self.load(i, ins)
            return
        if op == "STORE":
            self.store(ins)
            return
        if op == "ACC":
            init = (f32_bits(0.0 if ins.arg == "sum" else float("-inf")) if dt.is_float else
                    0 if ins.arg == "sum" or dt == bool_ else -2**31)
            self.vals[i] = self.op(mov_imm(init & 0xFFFFFFFF))    # redefined: its own register
            self.mutable.add(i)
            return
        if op == "ACCUM":
            acc, v = ins.src
            d = self.val(acc)
            self.emit(self.combine_text(dt, ins.arg), [d], [d, self.val(v)])
            return
        if op == "LOOP":
            ctr = self.op(mov_imm(0))       # redefined: its own register
            lab = self.label()
            self.emit("", [], [], "label", lab)
            self.vals[i] = ctr
            self.mutable.add(i)
            self.loop_labels[i] = lab
            return
        if op == "ENDLOOP":
            j = ins.src[0]
            ctr = self.val(j)
            self.emit("add.u {d0}, {s0}, 1", [ctr], [ctr])
            end = self.insts[j].src[0]
            self.branch_if("cmps.s.lt {d0}, {s0}, {s1}", [ctr, self.val(end)], True, self.loop_labels[j])
            return
        if op == "ALLREDUCE":
            self.vals[i] = self.allreduce(self.val(ins.src[0]), dt, *ins.arg)
            return
        if op == "CAST":
            self.vals[i] = self.cast(ins.src[0], ins.arg)
            return
        self.vals[i] = self.alu(i, ins)

    def special(self, arg: tuple) -> R:
        """gidx (threads past ``size`` branch to the end), or a row kernel's row / lane. A row
        past the end is clamped to the last row and its stores are gated off (``self.live``):
        its fibers still take part in the row exchange's barriers."""
        name, size = arg[:2]
        if name == "lane":
            return self.op(f"and.b {{d0}}, {{s0}}, {size - 1}", self.lid)
        base = self.op(f"shl.b {{d0}}, {{s0}}, {BLOCK.bit_length() - 1}", self.wgid)
        g = self.op("add.u {d0}, {s0}, {s1}", base, self.lid)
        limit = self.imm(size)
        if name == "gidx":
            self.branch_if("cmps.s.lt {d0}, {s0}, {s1}", [g, limit], False, self.end_label)
            self.exits = True
            return g
        assert name == "row", name
        row = self.op(f"shr.b {{d0}}, {{s0}}, {arg[2].bit_length() - 1}", g)
        self.live = self.op("cmps.s.lt {d0}, {s0}, {s1}", row, limit)
        last = self.imm(size - 1)
        return self.op("min.s {d0}, {s0}, {s1}", row, last)

    # ---- memory ------------------------------------------------------------------------
    def load(self, i: int, ins: Inst) -> R:
        """A load from IBO ``param``; a gated one reads element 0 where its gate is off and
        gives 0 there."""
        slot, store_t = self.insts[ins.src[0]].arg
        idx = self.val(ins.src[1])
        gate = self.val(ins.src[2]) if len(ins.src) > 2 else None
        if gate is not None:
            zero = self.imm(0)
            idx = self.op("sel.b32 {d0}, {s0}, {s1}, {s2}", idx, gate, zero)
        size = store_t.itemsize
        if size == 4:
            v = self.op(f"ldib.b.untyped.1d.u32.1.imm {{d0}}, {{s0}}, {slot}", idx, cls="ldsy")
        else:
            word = self.op(f"shr.b {{d0}}, {{s0}}, {_WORD_SHIFT[size]}", idx)
            w = self.op(f"ldib.b.untyped.1d.u32.1.imm {{d0}}, {{s0}}, {slot}", word, cls="ldsy")
            part = self.op(f"and.b {{d0}}, {{s0}}, {4 // size - 1}", idx)
            if store_t == bfloat16:     # the element into the high half: odd ones are there
                part = self.op("xor.b {d0}, {s0}, 1", part)
                sh = self.op("shl.b {d0}, {s0}, 4", part)
                t = self.op("shl.b {d0}, {s0}, {s1}", w, sh)
                v = self.op("and.b {d0}, {s0}, {s1}", t, self.imm(0xFFFF0000))
            else:
                sh = self.op(f"shl.b {{d0}}, {{s0}}, {3 + size // 2}", part)   # bit offset
                t = self.op("shr.b {d0}, {s0}, {s1}", w, sh)
                if store_t == float16:
                    v = self.op("cov.f16f32 {d0}, {s0}", R(t.reg, as_half=True))
                else:
                    b = self.op("and.b {d0}, {s0}, 255", t)
                    v = self.op("cmps.u.ne {d0}, {s0}, 0", b)
        if gate is not None:
            v = self.op("sel.b32 {d0}, {s0}, {s1}, {s2}", v, gate, self.imm(0))
        return v

    def store(self, ins: Inst) -> None:
        slot, store_t = self.insts[ins.src[0]].arg
        idx, v = self.val(ins.src[1]), self.val(ins.src[2])
        gate = self.val(ins.src[3]) if len(ins.src) > 3 else None
        if self.live is not None:
            gate = self.live if gate is None else self.op("and.b {d0}, {s0}, {s1}", gate, self.live)
        skip = None
        if gate is not None:
            skip = self.label()
            self.branch(gate, False, skip)
            self.gated = True
        size = store_t.itemsize
        if size == 4:
            self.emit(f"stib.b.untyped.1d.u32.1.imm {{s0}}, {{s1}}, {slot}", [], [v, idx], "store")
        else:
            bits = self.to_storage(v, store_t)
            word = self.op(f"shr.b {{d0}}, {{s0}}, {_WORD_SHIFT[size]}", idx)
            part = self.op(f"and.b {{d0}}, {{s0}}, {4 // size - 1}", idx)
            sh = self.op(f"shl.b {{d0}}, {{s0}}, {3 + size // 2}", part)
            mask = self.op("shl.b {d0}, {s0}, {s1}", self.imm((1 << 8 * size) - 1), sh)
            keep = self.op("not.b {d0}, {s0}", mask)
            put = self.op("shl.b {d0}, {s0}, {s1}", bits, sh)
            pair = self.reg(width=2)        # the atomic's old value, then its operand
            for kind, operand in (("and", keep), ("or", put)):
                self.emit("mov.u32u32 {d0}, {s0}", [R(pair, 1)], [operand])
                self.emit(f"atomic.b.{kind}.untyped.1d.u32.1.imm {{d0}}, {{s0}}, {slot}",
                          [R(pair, 0)], [word, R(pair, 1)], "ldsy")
        if skip is not None:
            self.emit("", [], [], "label", skip)

    def to_storage(self, v: R, store_t: DType) -> R:
        """The bits of a 16- or 8-bit element, zero-extended to 32."""
        if store_t == float16:
            h = self.op("cov.f32f16 {d0}, {s0}", v, half=True)
            return self.op("cov.u16u32 {d0}, {s0}", h)
        if store_t == bfloat16:
            return self.bf16_bits(v)
        return v                    # bool: already 0 / 1

    def bf16_bits(self, v: R) -> R:
        """f32 -> bfloat16 bits, rounded to nearest even (NaN -> 0x7FC0, as dtype.py does)."""
        odd = self.op("shr.b {d0}, {s0}, 16", v)
        odd = self.op("and.b {d0}, {s0}, 1", odd)
        t = self.op("add.u {d0}, {s0}, {s1}", v, odd)
        t = self.op("add.u {d0}, {s0}, {s1}", t, self.imm(0x7FFF))
        t = self.op("shr.b {d0}, {s0}, 16", t)
        nan = self.op("cmps.f.ne {d0}, {s0}, {s1}", v, v)
        return self.op("sel.b32 {d0}, {s0}, {s1}, {s2}", self.imm(0x7FC0), nan, t)

    # ---- row exchange ------------------------------------------------------------------
    def allreduce(self, v: R, dt: DType, kind: str, group: int) -> R:
        """Every lane of a ``group``-lane row gets the ``kind`` of the row's values: an xor
        butterfly through local memory (one word per fiber), a barrier after each write and
        each read so the words are reused safely."""
        self.shared = ROW_SHARED
        addr = self.op("shl.b {d0}, {s0}, 2", self.lid)
        text = self.combine_text(dt, kind)
        s = group // 2
        while s:
            self.emit("stl.u32 l[{s0}], {s1}, 1", [], [addr, v], "store")
            self.emit("bar", [], [], "bar")
            other = self.op(f"xor.b {{d0}}, {{s0}}, {4 * s}", addr) if 4 * s <= IMM_MAX else \
                self.op("xor.b {d0}, {s0}, {s1}", addr, self.imm(4 * s))
            x = self.op("ldl.u32 {d0}, l[{s0}], 1", other, cls="ldss")
            self.emit("bar", [], [], "bar")
            v = self.op(text, v, x)
            s //= 2
        return v

    @staticmethod
    def combine_text(dt: DType, kind: str) -> str:
        if dt == bool_:
            return "or.b {d0}, {s0}, {s1}"
        if dt.is_float:
            return "add.f {d0}, {s0}, {s1}" if kind == "sum" else "max.f {d0}, {s0}, {s1}"
        return "add.u {d0}, {s0}, {s1}" if kind == "sum" else "max.s {d0}, {s0}, {s1}"

    # ---- conversions -------------------------------------------------------------------
    def copy(self, j: int) -> R:
        """Instruction ``j``'s value, copied when its register is redefined later (ACC, LOOP)."""
        if j in self.mutable:
            return self.op("mov.u32u32 {d0}, {s0}", self.val(j))
        return self.val(j)

    def round_to(self, v: R, target: DType) -> R:
        """An f32 value rounded through a narrow float type."""
        if target == float16:
            h = self.op("cov.f32f16 {d0}, {s0}", v, half=True)
            return self.op("cov.f16f32 {d0}, {s0}", h)
        if target == bfloat16:
            return self.op("shl.b {d0}, {s0}, 16", self.bf16_bits(v))
        return v

    def cast(self, j: int, target: DType) -> R:
        src = self.insts[j].dtype
        s = self.val(j)
        if target.is_float:
            if src.is_float:
                v = self.copy(j) if target == float32 else s
            else:
                v = self.op(f"cov.{'s32' if src == int32 else 'u32'}f32 {{d0}}, {{s0}}", s)
            return self.round_to(v, target)
        if target == int32:
            if src.is_float:        # toward zero, saturating, NaN -> 0 (as PTX cvt.rzi.s32.f32)
                return self.op("cov.f32s32 {d0}, {s0}", s)
            return self.copy(j)     # int, or a bool's 0 / 1
        if src.is_float:            # NaN is true, as in numpy: "not equal or unordered"
            return self.op("cmps.f.ne {d0}, {s0}, (0.0)", s)
        if src == int32:
            return self.op("cmps.s.ne {d0}, {s0}, 0", s)
        return self.copy(j)

    # ---- arithmetic --------------------------------------------------------------------
    def alu(self, i: int, ins: Inst) -> R:
        op = ins.op
        src_dt = self.insts[ins.src[0]].dtype
        if src_dt == int32 and op in ("MUL", "IDIV", "DIV", "MOD"):    # constants may stay immediates
            return self.imul(ins.src[0], ins.src[1]) if op == "MUL" else \
                self.idiv(ins.src[0], ins.src[1], op == "MOD")
        if src_dt == int32 and op == "ADD" and self.small(ins.src[1]) is not None:
            return self.op(f"add.u {{d0}}, {{s0}}, {self.small(ins.src[1])}", self.val(ins.src[0]))
        s = [self.val(j) for j in ins.src]
        if op == "WHERE":
            return self.op("sel.b32 {d0}, {s0}, {s1}, {s2}", s[1], s[0], s[2])
        if src_dt == bool_:
            if op in ("CMPLT", "CMPEQ"):
                return self.op(f"cmps.u.{op[3:].lower()} {{d0}}, {{s0}}, {{s1}}", *s)
            if op == "NEG":
                return self.op("xor.b {d0}, {s0}, 1", s[0])
            text = {"ADD": "or.b", "MAX": "or.b", "MUL": "and.b", "AND": "and.b", "SUB": "xor.b",
                    "CMPNE": "xor.b"}[op]
            return self.op(text + " {d0}, {s0}, {s1}", *s)
        if src_dt.is_float:
            if op in ("CMPLT", "CMPEQ", "CMPNE"):
                return self.op(f"cmps.f.{op[3:].lower()} {{d0}}, {{s0}}, {{s1}}", *s)
            if op == "DIV":
                r = self.op("rcp {d0}, {s0}", s[1], cls="sfu")
                return self.op("mul.f {d0}, {s0}, {s1}", s[0], r)
            if op in ("EXP2", "LOG2", "SQRT", "RECIP"):
                name = {"EXP2": "exp2", "LOG2": "log2", "SQRT": "sqrt", "RECIP": "rcp"}[op]
                return self.op(f"{name} {{d0}}, {{s0}}", s[0], cls="sfu")
            text = {"ADD": "add.f {d0}, {s0}, {s1}", "SUB": "add.f {d0}, {s0}, (neg){s1}",
                    "MUL": "mul.f {d0}, {s0}, {s1}", "MAX": "max.f {d0}, {s0}, {s1}",
                    "NEG": "absneg.f {d0}, (neg){s0}", "ABS": "absneg.f {d0}, (abs){s0}"}[op]
            return self.op(text, *s)
        # int32
        if op in ("CMPLT", "CMPEQ", "CMPNE"):
            return self.op(f"cmps.s.{op[3:].lower()} {{d0}}, {{s0}}, {{s1}}", *s)
        text = {"ADD": "add.u {d0}, {s0}, {s1}", "SUB": "sub.u {d0}, {s0}, {s1}",
                "MAX": "max.s {d0}, {s0}, {s1}", "AND": "and.b {d0}, {s0}, {s1}",
                "NEG": "absneg.s {d0}, (neg){s0}", "ABS": "absneg.s {d0}, (abs){s0}"}[op]
        return self.op(text, *s)

    def pow2(self, j: int) -> int | None:
        """log2 of instruction ``j``'s value when it is a positive int power of two constant."""
        v = self.consts.get(j)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0 and v & (v - 1) == 0:
            return v.bit_length() - 1
        return None

    def imul(self, a: int, b: int) -> R:
        """32-bit a * b (low word): a shift for a power-of-two constant, else Mesa's lowering
        mull.u (lo * lo) + madsh.m16 (lo(a) * hi(b) << 16) + madsh.m16 (lo(b) * hi(a) << 16)."""
        for x, y in ((a, b), (b, a)):
            k = self.pow2(y)
            if k is not None:
                return self.op(f"shl.b {{d0}}, {{s0}}, {k}", self.val(x))
        ra, rb = self.val(a), self.val(b)
        if self.u24(a) and self.u24(b):     # both in [0, 2^24): the product's low word
            return self.op("mul.u24 {d0}, {s0}, {s1}", ra, rb)
        lo = self.op("mull.u {d0}, {s0}, {s1}", ra, rb)
        t = self.op("madsh.m16 {d0}, {s0}, {s1}, {s2}", ra, rb, lo, cls="mad")
        return self.op("madsh.m16 {d0}, {s0}, {s1}, {s2}", rb, ra, t, cls="mad")

    def u24(self, j: int) -> bool:
        """Whether instruction ``j``'s value is known to lie in [0, 2^24)."""
        b = self.bounds.get(j)
        return b is not None and b[0] >= 0 and b[1] < U24

    def mul32(self, x: R, y: R) -> R:
        lo = self.op("mull.u {d0}, {s0}, {s1}", x, y)
        t = self.op("madsh.m16 {d0}, {s0}, {s1}, {s2}", x, y, lo, cls="mad")
        return self.op("madsh.m16 {d0}, {s0}, {s1}, {s2}", y, x, t, cls="mad")

    def small_udiv(self, a: R, d: int, mod: bool) -> R:
        """a / d or a % d for a in [0, 2^24) and a constant d in (0, 2^24): f32(a) is exact, so
        trunc(a * rcp(d)) is the quotient or one off; one compare each way fixes it."""
        fa = self.op("cov.u32f32 {d0}, {s0}", a)
        rcp = self.imm(f32_bits(np.float32(1.0) / np.float32(d)))
        q = self.op("cov.f32s32 {d0}, {s0}", self.op("mul.f {d0}, {s0}, {s1}", fa, rcp))
        dv = self.imm(d)
        r = self.op("sub.u {d0}, {s0}, {s1}", a, self.op("mul.u24 {d0}, {s0}, {s1}", q, dv))
        neg = self.op("cmps.s.lt {d0}, {s0}, 0", r)
        big = self.op("cmps.s.ge {d0}, {s0}, {s1}", r, dv)
        step = self.op("sub.u {d0}, {s0}, {s1}", big, neg)        # +1, -1 or 0
        if not mod:
            return self.op("add.u {d0}, {s0}, {s1}", q, step)
        zero = self.imm(0)
        up = self.op("sel.b32 {d0}, {s0}, {s1}, {s2}", dv, neg, zero)      # r < 0: add d
        down = self.op("sel.b32 {d0}, {s0}, {s1}, {s2}", dv, big, zero)    # r >= d: take d
        return self.op("sub.u {d0}, {s0}, {s1}", self.op("add.u {d0}, {s0}, {s1}", r, up), down)

    def neg(self, v: R) -> R:
        return self.op("absneg.s {d0}, (neg){s0}", v)

    def idiv(self, a: int, b: int, mod: bool) -> R:
        """Truncating int32 a / b or a % b (C / PTX div.s32, rem.s32 semantics).

        Power-of-two constant divisors shift (with the rounding bias for negative dividends).
        Otherwise, on magnitudes: q0 = trunc(f32(|a|) * rcp(f32(|b|))) is within 2^8 of the
        quotient (f32's 24-bit precision on a 32-bit value); r0 = |a| - q0|b| in integers; a
        second estimate q0 + trunc(f32(r0) * rcp) is within 1; one last compare fixes it. The
        signs are then applied as truncation wants (quotient negative when the signs differ,
        remainder with the dividend's sign). A divisor of 0 gives an unspecified value."""
        ra = self.val(a)
        k = self.pow2(b)
        nonneg = self.bounds.get(a, (-1, 0))[0] >= 0
        if k is not None and nonneg:
            if not mod:
                return self.op(f"shr.b {{d0}}, {{s0}}, {k}", ra)
            mask = (1 << k) - 1
            if mask <= IMM_MAX:
                return self.op(f"and.b {{d0}}, {{s0}}, {mask}", ra)
            return self.op("and.b {d0}, {s0}, {s1}", ra, self.imm(mask))
        bv = self.consts.get(b)
        if nonneg and self.u24(a) and isinstance(bv, int) and not isinstance(bv, bool) and 0 < bv < U24:
            return self.small_udiv(ra, bv, mod)
        if k is not None:
            sign = self.op("ashr.b {d0}, {s0}, 31", ra)
            bias = self.op(f"shr.b {{d0}}, {{s0}}, {32 - k}", sign) if k else self.imm(0)
            t = self.op("add.u {d0}, {s0}, {s1}", ra, bias)
            q = self.op(f"ashr.b {{d0}}, {{s0}}, {k}", t)
            if not mod:
                return q
            back = self.op(f"shl.b {{d0}}, {{s0}}, {k}", q)
            return self.op("sub.u {d0}, {s0}, {s1}", ra, back)
        ua = self.op("absneg.s {d0}, (abs){s0}", ra)
        bv = self.consts.get(b)
        if isinstance(bv, int) and not isinstance(bv, bool) and bv != 0:
            ub = self.imm(abs(bv))
            rcp = self.imm(f32_bits(np.float32(1.0) / np.float32(abs(bv))))
        else:
            ub = self.op("absneg.s {d0}, (abs){s0}", self.val(b))
            fb = self.op("cov.u32f32 {d0}, {s0}", ub)
            rcp = self.op("rcp {d0}, {s0}", fb, cls="sfu")
        fa = self.op("cov.u32f32 {d0}, {s0}", ua)
        q = self.op("cov.f32u32 {d0}, {s0}", self.op("mul.f {d0}, {s0}, {s1}", fa, rcp))
        r = self.op("sub.u {d0}, {s0}, {s1}", ua, self.mul32(q, ub))
        fr = self.op("cov.s32f32 {d0}, {s0}", r)
        dq = self.op("cov.f32s32 {d0}, {s0}", self.op("mul.f {d0}, {s0}, {s1}", fr, rcp))
        q = self.op("add.u {d0}, {s0}, {s1}", q, dq)
        r = self.op("sub.u {d0}, {s0}, {s1}", ua, self.mul32(q, ub))
        # r is now in [-|b|, 2|b|): step once toward [0, |b|)
        neg = self.op("cmps.s.lt {d0}, {s0}, 0", r)
        big = self.op("cmps.u.ge {d0}, {s0}, {s1}", r, ub)
        big = self.op("sel.b32 {d0}, {s0}, {s1}, {s2}", self.imm(0), neg, big)
        step = self.op("sub.u {d0}, {s0}, {s1}", big, neg)        # +1, -1 or 0
        q = self.op("add.u {d0}, {s0}, {s1}", q, step)
        if mod:
            r = self.op("sub.u {d0}, {s0}, {s1}", r, self.mul32(step, ub))
            sa = self.op("cmps.s.lt {d0}, {s0}, 0", ra)
            nr = self.op("absneg.s {d0}, (neg){s0}", r)
            return self.op("sel.b32 {d0}, {s0}, {s1}, {s2}", nr, sa, r)
        diff = self.op("xor.b {d0}, {s0}, {s1}", ra, self.val(b))
        sd = self.op("cmps.s.lt {d0}, {s0}, 0", diff)
        nq = self.op("absneg.s {d0}, (neg){s0}", q)
        return self.op("sel.b32 {d0}, {s0}, {s1}, {s2}", nq, sd, q)
