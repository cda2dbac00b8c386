"""IR -> LLVM IR for ``amdgcn-amd-amdhsa`` (gfx11, wave32), compiled in-process by llvmlite
(``dev.compiler``) to an ET_REL code object that hwdrv's loader places and relocates.

The kernels have the PTX renderer's shape, so the runtime launches both the same way: BLOCK
work-items per workgroup; elementwise kernels walk VEC-element vectors in a grid-stride loop
(the workgroup count comes from the hidden kernarg ``hidden_block_count_x``) with a scalar
tail; row kernels combine a row's lanes across the wave with an xor butterfly (DPP
``row_xmask`` within each row of 16 lanes, ``ds_swizzle`` across the two rows) and across the
waves of a workgroup through LDS.

Mutable state (loop counters, accumulators, the vector index) lives in ``alloca``s of the
private address space; the compiler's O2 pipeline promotes them to registers (mem2reg), so the
text stays simple straight-line blocks. Values are named ``%v<inst><suffix>`` (the suffix
tells the lanes of a vector step apart)."""
from __future__ import annotations

import struct
from typing import Callable

from ..dtype import DType, bfloat16, bool_, float16, float32, int32
from ..ir import Inst, Kernel
from .ptx import BLOCK
from .ptx import vector_width as _ptx_vector_width

#: elements per vector access of an elementwise kernel (f32: one global_load_b128)
VEC = 4


def vector_width(kernel: Kernel) -> int:
    """Elements each work-item handles per loop step: VEC for an elementwise kernel (the PTX
    renderer's rule decides which kernels are elementwise), 1 for reductions and row groups."""
    return VEC if _ptx_vector_width(kernel) > 1 else 1

WAVE = 32
#: ds_swizzle offset in bitmask mode (bit 15 clear): lane' = ((lane & and) | or) ^ xor, within
#: groups of 32 lanes (RDNA3 ISA, DS_SWIZZLE_B32)
SWIZZLE_AND_ALL = 0x1F
SWIZZLE_XOR_SHIFT = 10
#: DPP16 control ``row_xmask:n`` (lane' = lane ^ n within a row of 16; RDNA3 ISA, DPP_CTRL),
#: and the row / bank masks that enable every lane
DPP_ROW_XMASK = 0x160
DPP_ALL = 0xF
ROW_LDS = "@rowred"

_STORE_TY = {float32: "float", float16: "half", bfloat16: "bfloat", int32: "i32", bool_: "i8"}


def reg_ty(dt: DType) -> str:
    """The LLVM type a value of register dtype ``dt`` is computed in."""
    return {"float": "float", "int": "i32", "bool": "i1"}[dt.kind]


def f32_literal(v: float) -> str:
    """An LLVM float constant: the f32 value's exact double, in hex."""
    f = struct.unpack("<f", struct.pack("<f", v))[0]
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", f))[0]


def const_literal(dt: DType, v) -> str:
    if dt.is_float:
        return f32_literal(float(v))
    if dt == bool_:
        return "true" if v else "false"
    return str(int(v))


_INT_BIN = {"ADD": "add", "SUB": "sub", "MUL": "mul", "IDIV": "sdiv", "DIV": "sdiv", "MOD": "srem"}
_F32_BIN = {"ADD": "fadd", "SUB": "fsub", "MUL": "fmul", "DIV": "fdiv"}
_BOOL_BIN = {"ADD": "or", "MUL": "and", "MAX": "or", "SUB": "xor", "AND": "and", "CMPNE": "xor"}
_F32_UN = {"EXP2": "llvm.exp2.f32", "LOG2": "llvm.log2.f32", "SQRT": "llvm.sqrt.f32", "ABS": "llvm.fabs.f32"}
_FCMP = {"CMPLT": "olt", "CMPEQ": "oeq", "CMPNE": "une"}     # numpy: NaN != x is true
_ICMP = {"CMPLT": "slt", "CMPEQ": "eq", "CMPNE": "ne"}
_BCMP = {"CMPLT": "ult", "CMPEQ": "eq", "CMPNE": "ne"}        # on i1: a < b is !a & b

DECLS = """declare i32 @llvm.amdgcn.workitem.id.x()
declare i32 @llvm.amdgcn.workgroup.id.x()
declare ptr addrspace(4) @llvm.amdgcn.implicitarg.ptr()
declare i32 @llvm.amdgcn.ds.swizzle(i32, i32 immarg)
declare i32 @llvm.amdgcn.update.dpp.i32(i32, i32, i32 immarg, i32 immarg, i32 immarg, i1 immarg)
declare void @llvm.amdgcn.s.barrier()
declare float @llvm.exp2.f32(float)
declare float @llvm.log2.f32(float)
declare float @llvm.sqrt.f32(float)
declare float @llvm.fabs.f32(float)
declare float @llvm.maxnum.f32(float, float)
declare i32 @llvm.smax.i32(i32, i32)
declare i32 @llvm.abs.i32(i32, i1 immarg)
declare i32 @llvm.fptosi.sat.i32.f32(float)
"""


#: LLVM 22 selects gfx11's true16 forms (16-bit operands in register halves, ``v4.h``) by
#: default; 16-bit values in whole VGPRs are what the mock RDNA3 core executes (its true16
#: high-half operands fault as unsupported), and the same code runs on hardware
FEATURES = "-real-true16"


def kernel_attrs(threads: int) -> str:
    """Function attributes: the exact workgroup size (lets LLVM size registers and barriers)
    and the subtarget features (FEATURES)."""
    return (f'attributes #0 = {{ "amdgpu-flat-work-group-size"="{threads},{threads}" '
            f'"target-features"="{FEATURES}" }}')


class Body:
    """Collects a function body: blocks, entry-block allocas, fresh temporaries."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.allocas: list[str] = []
        self.block = "entry"
        self.n = 0

    def __call__(self, line: str) -> None:
        self.lines.append("  " + line)

    def tmp(self) -> str:
        self.n += 1
        return f"%t{self.n}"

    def label(self, name: str) -> None:
        """Start block ``name`` (the previous block must have ended with a branch)."""
        self.lines.append(f"{name}:")
        self.block = name

    def fresh_label(self, stem: str) -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def alloca(self, name: str, ty: str) -> None:
        self.allocas.append(f"  {name} = alloca {ty}, addrspace(5)")

    def text(self) -> list[str]:
        return ["entry:"] + self.allocas + self.lines


class LLVMAMDGPURenderer:
    """Renders linear IR kernels as LLVM IR for an AMDGPU ``arch`` (e.g. ``"gfx1100"``)."""
    device_kind = "amd"

    #: elements per work-item step of an elementwise kernel (the runtime sizes launches with it)
    vector_width = staticmethod(vector_width)

    def __init__(self, arch: str = "gfx1100"):
        self.arch = arch

    def matmul_kernel(self, dtype: DType, m: int, n: int, k: int, config=None):
        """The matmul program for this target (see ``tensor/matmul_amdgpu.py``). ``config``
        (NVIDIA's MmaConfig / SimtConfig tile shapes) does not apply: gfx11 has one tile shape
        per path."""
        from ..matmul_amdgpu import amdgpu_matmul
        return amdgpu_matmul(self.arch, dtype, m, n, k)

    def render(self, kernel: Kernel) -> str:
        insts = kernel.insts
        b = Body()
        self.b, self.insts = b, insts
        vec = vector_width(kernel)
        if vec > 1:
            self._elementwise(kernel)
        else:
            for i, ins in enumerate(insts):
                self._inst(i, ins, lambda j: "")
        b("br label %exit")
        b.label("exit")
        b("ret void")
        params = ", ".join(f"ptr addrspace(1) %a{k}" for k in range(len(kernel.params)))
        groups = [ins.arg[1] for ins in insts if ins.op == "ALLREDUCE"]
        lds = [f"{ROW_LDS} = internal addrspace(3) global [{max(groups) // WAVE} x i32] poison, align 4", ""] \
            if groups and max(groups) > WAVE else []
        return "\n".join(lds + [f"define amdgpu_kernel void @{kernel.name}({params}) #0 {{"] + b.text() +
                         ["}", "", DECLS, kernel_attrs(BLOCK), ""])

    # ---- kernel shapes -----------------------------------------------------------------
    def _gidx(self) -> str:
        b = self.b
        tid, bid, base, g = b.tmp(), b.tmp(), b.tmp(), b.tmp()
        b(f"{tid} = call i32 @llvm.amdgcn.workitem.id.x()")
        b(f"{bid} = call i32 @llvm.amdgcn.workgroup.id.x()")
        b(f"{base} = mul i32 {bid}, {BLOCK}")
        b(f"{g} = add i32 {base}, {tid}")
        return g

    def _elementwise(self, kernel: Kernel) -> None:
        """A grid-stride loop over vectors of VEC elements, then the last numel % VEC elements
        one per work-item. Work that does not depend on the element index is done once before
        the loop; contiguous unmasked loads / stores at the element's own index move VEC
        elements in one vector access (``load <4 x float>``: global_load_b128)."""
        b, insts = self.b, kernel.insts
        varying: set[int] = set()
        for i, ins in enumerate(insts):
            if ins.op == "SPECIAL" or any(j in varying for j in ins.src):
                varying.add(i)
        special = next(i for i, ins in enumerate(insts) if ins.op == "SPECIAL")
        total = insts[special].arg[1]
        nvec = total // VEC
        for i, ins in enumerate(insts):
            if i not in varying:
                self._inst(i, ins, lambda j: "")
        g = self._gidx()
        if nvec:
            ia, nb, stride = b.tmp(), b.tmp(), b.tmp()
            # hidden_block_count_x: the first hidden kernarg (code object v5 implicit args)
            b(f"{ia} = call ptr addrspace(4) @llvm.amdgcn.implicitarg.ptr()")
            b(f"{nb} = load i32, ptr addrspace(4) {ia}, align 4")
            b(f"{stride} = mul i32 {nb}, {BLOCK}")
            b.alloca("%vi.addr", "i32")
            b(f"store i32 {g}, ptr addrspace(5) %vi.addr")
            b("br label %vloop")
            b.label("vloop")
            b("%vi = load i32, ptr addrspace(5) %vi.addr")
            b(f"%vq = icmp sge i32 %vi, {nvec}")
            b("br i1 %vq, label %vdone, label %vbody")
            b.label("vbody")
            for i in sorted(varying):
                self._lanes(i, insts, special, varying)
            b(f"%vnext = add i32 %vi, {stride}")
            b("store i32 %vnext, ptr addrspace(5) %vi.addr")
            b("br label %vloop")
            b.label("vdone")
        if total % VEC:
            q = b.tmp()
            b(f"{q} = icmp sge i32 {g}, {total % VEC}")
            b(f"br i1 {q}, label %exit, label %tail")
            b.label("tail")

            def tail(j: int) -> str:
                return "_t" if j in varying else ""
            for i in sorted(varying):
                if i == special:
                    b(f"%v{i}_t = add i32 {g}, {nvec * VEC}")
                else:
                    self._inst(i, insts[i], tail)

    def _lanes(self, i: int, insts: list[Inst], special: int, varying: set[int]) -> None:
        """Instruction ``i`` for each of the VEC lanes of vector ``%vi``."""
        b, ins = self.b, insts[i]
        if ins.op == "SPECIAL":
            base = b.tmp()
            b(f"{base} = mul i32 %vi, {VEC}")
            for j in range(VEC):
                b(f"%v{i}_{j} = add i32 {base}, {j}")
            return
        if ins.op in ("LOAD", "STORE") and ins.src[1] == special and \
                len(ins.src) == (3 if ins.op == "STORE" else 2):
            self._vector_memory(i, ins, insts, varying)
            return
        for lane in range(VEC):
            self._inst(i, ins, lambda j, lane=lane: f"_{lane}" if j in varying else "")

    def _vector_memory(self, i: int, ins: Inst, insts: list[Inst], varying: set[int]) -> None:
        """A VEC-wide load or store at the vector's own elements (aligned: the buffers start
        aligned and the vector index scales by VEC elements)."""
        b = self.b
        store_t: DType = insts[ins.src[0]].arg[1]
        st = _STORE_TY[store_t]
        vt = f"<{VEC} x {st}>"
        align = VEC * store_t.itemsize
        p = b.tmp()
        b(f"{p} = getelementptr {vt}, ptr addrspace(1) %a{insts[ins.src[0]].arg[0]}, i32 %vi")
        if ins.op == "LOAD":
            raw = b.tmp()
            b(f"{raw} = load {vt}, ptr addrspace(1) {p}, align {align}")
            if store_t in (float16, bfloat16):
                wide = b.tmp()
                b(f"{wide} = fpext {vt} {raw} to <{VEC} x float>")
                raw, ty = wide, "float"
            elif store_t == bool_:
                wide = b.tmp()
                b(f"{wide} = icmp ne {vt} {raw}, zeroinitializer")
                raw, ty = wide, "i1"
            else:
                ty = st
            for j in range(VEC):
                b(f"%v{i}_{j} = extractelement <{VEC} x {ty}> {raw}, i32 {j}")
            return
        src = ins.src[2]
        vdt = insts[src].dtype
        vec = "poison"
        for j in range(VEC):
            v = self._val(src, lambda k, j=j: f"_{j}" if k in varying else "")
            v = self._to_storage(v, vdt, store_t)
            nxt = b.tmp()
            b(f"{nxt} = insertelement {vt} {vec}, {st} {v}, i32 {j}")
            vec = nxt
        b(f"store {vt} {vec}, ptr addrspace(1) {p}, align {align}")

    # ---- one instruction ---------------------------------------------------------------
    def _val(self, j: int, sfx: Callable[[int], str]) -> str:
        """The operand for instruction ``j``'s value (constants inline, accumulators loaded)."""
        ins = self.insts[j]
        if ins.op == "CONST":
            return const_literal(ins.dtype, ins.arg)
        if ins.op == "PARAM":
            return f"%a{ins.arg[0]}"
        if ins.op == "ACC":
            t = self.b.tmp()
            self.b(f"{t} = load {reg_ty(ins.dtype)}, ptr addrspace(5) %acc{j}")
            return t
        return f"%v{j}{sfx(j)}"

    def _inst(self, i: int, ins: Inst, insts_sfx: Callable[[int], str]) -> None:
        b, op, dt = self.b, ins.op, ins.dtype
        sfx = insts_sfx
        d = f"%v{i}{sfx(i)}"
        if op in ("CONST", "PARAM"):
            return
        if op == "SPECIAL":
            self._special(d, ins.arg)
            return
        s = [self._val(j, sfx) for j in ins.src] if op not in ("ENDLOOP", "LOOP") else []
        ty = reg_ty(dt)
        if op == "ALLREDUCE":
            self._allreduce(d, dt, s[0], *ins.arg)
        elif op in ("LOAD", "STORE"):
            self._memory(i, d, ins, s, sfx)
        elif op == "ACC":
            init = (0.0 if ins.arg == "sum" else float("-inf")) if dt.is_float else \
                (0 if ins.arg == "sum" else -2**31) if dt == int32 else False
            b.alloca(f"%acc{i}", ty)
            b(f"store {ty} {const_literal(dt, init)}, ptr addrspace(5) %acc{i}")
        elif op == "ACCUM":
            a, v = s
            t = b.tmp()
            b(self._binary(t, "ADD" if ins.arg == "sum" else "MAX", dt, a, v))
            b(f"store {ty} {t}, ptr addrspace(5) %acc{ins.src[0]}")
        elif op == "LOOP":
            b.alloca(f"%ctr{i}", "i32")
            b(f"store i32 0, ptr addrspace(5) %ctr{i}")
            b(f"br label %L{i}")
            b.label(f"L{i}")
            b(f"{d} = load i32, ptr addrspace(5) %ctr{i}")
        elif op == "ENDLOOP":
            j = ins.src[0]
            end = self._val(self.insts[j].src[0], sfx)
            nxt, q = b.tmp(), b.tmp()
            b(f"{nxt} = add i32 %v{j}{sfx(j)}, 1")
            b(f"store i32 {nxt}, ptr addrspace(5) %ctr{j}")
            b(f"{q} = icmp slt i32 {nxt}, {end}")
            b(f"br i1 {q}, label %L{j}, label %E{i}")
            b.label(f"E{i}")
        elif op == "CAST":
            self._cast(d, self.insts[ins.src[0]].dtype, s[0], ins.arg)
        elif op == "WHERE":
            b(f"{d} = select i1 {s[0]}, {ty} {s[1]}, {ty} {s[2]}")
        elif op in _FCMP:
            sdt = self.insts[ins.src[0]].dtype
            if sdt.is_float:
                b(f"{d} = fcmp {_FCMP[op]} float {s[0]}, {s[1]}")
            else:
                table = _BCMP if sdt == bool_ else _ICMP
                b(f"{d} = icmp {table[op]} {reg_ty(sdt)} {s[0]}, {s[1]}")
        elif len(s) == 2:
            b(self._binary(d, op, dt, *s))
        else:
            self._unary(d, op, dt, s[0])

    @staticmethod
    def _binary(d: str, op: str, dt: DType, a: str, c: str) -> str:
        if dt == bool_:
            return f"{d} = {_BOOL_BIN[op]} i1 {a}, {c}"
        if dt.is_float:
            if op == "MAX":     # max.f32 / numpy-free: the non-NaN operand (IEEE maxNum)
                return f"{d} = call float @llvm.maxnum.f32(float {a}, float {c})"
            return f"{d} = {_F32_BIN[op]} float {a}, {c}"
        if op == "MAX":
            return f"{d} = call i32 @llvm.smax.i32(i32 {a}, i32 {c})"
        return f"{d} = {_INT_BIN[op]} i32 {a}, {c}"

    def _unary(self, d: str, op: str, dt: DType, a: str) -> None:
        b = self.b
        if dt.is_float:
            if op == "NEG":
                b(f"{d} = fneg float {a}")
            elif op == "RECIP":
                b(f"{d} = fdiv float 1.0, {a}")
            else:
                b(f"{d} = call float @{_F32_UN[op]}(float {a})")
        elif dt == bool_:
            assert op == "NEG", op
            b(f"{d} = xor i1 {a}, true")
        elif op == "NEG":
            b(f"{d} = sub i32 0, {a}")
        else:
            assert op == "ABS", op
            b(f"{d} = call i32 @llvm.abs.i32(i32 {a}, i1 false)")

    def _special(self, d: str, arg: tuple) -> None:
        """gidx, or a row kernel's row / lane (groups are whole waves or the whole workgroup,
        so a row past the end retires whole groups: no barrier waits on a missing wave)."""
        b = self.b
        name, size = arg[:2]
        if name == "lane":
            tid = b.tmp()
            b(f"{tid} = call i32 @llvm.amdgcn.workitem.id.x()")
            b(f"{d} = and i32 {tid}, {size - 1}")
            return
        assert name in ("gidx", "row"), name
        g = self._gidx()
        if name == "row":
            b(f"{d} = lshr i32 {g}, {arg[2].bit_length() - 1}")
        else:
            b(f"{d} = add i32 {g}, 0")
        q = b.tmp()
        ok = b.fresh_label("in")
        b(f"{q} = icmp sge i32 {d}, {size}")
        b(f"br i1 {q}, label %exit, label %{ok}")
        b.label(ok)

    def _allreduce(self, d: str, dt: DType, a: str, kind: str, group: int) -> None:
        """``d`` = the ``kind`` of ``a`` over the ``group`` lanes of a row: an xor butterfly
        within the wave (ds_swizzle for 16, DPP row_xmask for 8..1), then (workgroup-wide rows) each wave's result through LDS,
        read back by every work-item. Values travel as i32 (floats bitcast, bools 0/1)."""
        b = self.b
        ty = reg_ty(dt)

        def to_word(v: str) -> str:
            t = b.tmp()
            b(f"{t} = zext i1 {v} to i32" if dt == bool_ else f"{t} = bitcast {ty} {v} to i32")
            return t

        def from_word(w: str) -> str:
            t = b.tmp()
            b(f"{t} = trunc i32 {w} to i1" if dt == bool_ else f"{t} = bitcast i32 {w} to {ty}")
            return t

        def combine(x: str, y: str) -> str:
            t = b.tmp()
            b(self._binary(t, "ADD" if kind == "sum" else "MAX", dt, x, y))
            return t
        v = a
        for off in (16, 8, 4, 2, 1):
            w, sw = to_word(v), b.tmp()
            if off == 16:       # across the wave's two DPP rows of 16 lanes
                b(f"{sw} = call i32 @llvm.amdgcn.ds.swizzle(i32 {w}, i32 {SWIZZLE_AND_ALL | off << SWIZZLE_XOR_SHIFT})")
            else:               # within a row: DPP row_xmask (every source lane is active: rows
                # retire whole waves), so ``old`` is never kept
                b(f"{sw} = call i32 @llvm.amdgcn.update.dpp.i32(i32 {w}, i32 {w}, i32 {DPP_ROW_XMASK | off}, "
                  f"i32 {DPP_ALL}, i32 {DPP_ALL}, i1 false)")
            v = combine(v, from_word(sw))
        if group > WAVE:
            tid, lane, wid, first, slot = b.tmp(), b.tmp(), b.tmp(), b.tmp(), b.tmp()
            st, join = b.fresh_label("wst"), b.fresh_label("wjoin")
            b(f"{tid} = call i32 @llvm.amdgcn.workitem.id.x()")
            b(f"{lane} = and i32 {tid}, {WAVE - 1}")
            b(f"{wid} = lshr i32 {tid}, 5")
            b(f"{first} = icmp eq i32 {lane}, 0")
            w = to_word(v)
            b(f"br i1 {first}, label %{st}, label %{join}")
            b.label(st)
            b(f"{slot} = getelementptr [{group // WAVE} x i32], ptr addrspace(3) {ROW_LDS}, i32 0, i32 {wid}")
            b(f"store i32 {w}, ptr addrspace(3) {slot}, align 4")
            b(f"br label %{join}")
            b.label(join)
            b('fence syncscope("workgroup") release')
            b("call void @llvm.amdgcn.s.barrier()")
            b('fence syncscope("workgroup") acquire')
            words = []
            for k in range(group // WAVE):
                p, x = b.tmp(), b.tmp()
                b(f"{p} = getelementptr [{group // WAVE} x i32], ptr addrspace(3) {ROW_LDS}, i32 0, i32 {k}")
                b(f"{x} = load i32, ptr addrspace(3) {p}, align 4")
                words.append(from_word(x))
            v = words[0]
            for x in words[1:]:
                v = combine(v, x)
        b(f"{d} = bitcast {ty} {v} to {ty}")

    def _cast(self, d: str, src: DType, s: str, target: DType) -> None:
        b = self.b
        if target.is_float:
            if src.is_float:
                v = s
            else:
                v = b.tmp()
                b(f"{v} = {'sitofp i32' if src == int32 else 'uitofp i1'} {s} to float")
            if target in (float16, bfloat16):       # round through the storage type
                n = b.tmp()
                b(f"{n} = fptrunc float {v} to {_STORE_TY[target]}")
                b(f"{d} = fpext {_STORE_TY[target]} {n} to float")
            else:
                b(f"{d} = bitcast float {v} to float")
        elif target == int32:
            if src.is_float:        # saturating, NaN -> 0 (PTX cvt.rzi.s32.f32)
                b(f"{d} = call i32 @llvm.fptosi.sat.i32.f32(float {s})")
            elif src == int32:
                b(f"{d} = bitcast i32 {s} to i32")
            else:
                b(f"{d} = zext i1 {s} to i32")
        elif src.is_float:          # NaN is true, as in numpy: "not equal or unordered"
            b(f"{d} = fcmp une float {s}, 0.0")
        elif src == int32:
            b(f"{d} = icmp ne i32 {s}, 0")
        else:
            b(f"{d} = bitcast i1 {s} to i1")

    def _to_storage(self, v: str, vdt: DType, store_t: DType) -> str:
        b = self.b
        if store_t in (float16, bfloat16):
            t = b.tmp()
            b(f"{t} = fptrunc float {v} to {_STORE_TY[store_t]}")
            return t
        if store_t == bool_:
            t = b.tmp()
            b(f"{t} = zext i1 {v} to i8")
            return t
        return v

    def _memory(self, i: int, d: str, ins: Inst, s: list[str], sfx: Callable[[int], str]) -> None:
        """A scalar load or store; gated ones branch around the access (a gated-off address
        may be outside the buffer)."""
        b = self.b
        param = self.insts[ins.src[0]]
        store_t: DType = param.arg[1]
        st = _STORE_TY[store_t]
        p = b.tmp()
        b(f"{p} = getelementptr {st}, ptr addrspace(1) {s[0]}, i32 {s[1]}")
        gate = s[3] if ins.op == "STORE" and len(s) > 3 else s[2] if ins.op == "LOAD" and len(s) > 2 else None
        if ins.op == "STORE":
            v = self._to_storage(s[2], self.insts[ins.src[2]].dtype, store_t)
            if gate is None:
                b(f"store {st} {v}, ptr addrspace(1) {p}")
                return
            go, join = b.fresh_label("st"), b.fresh_label("stj")
            b(f"br i1 {gate}, label %{go}, label %{join}")
            b.label(go)
            b(f"store {st} {v}, ptr addrspace(1) {p}")
            b(f"br label %{join}")
            b.label(join)
            return
        ty = reg_ty(ins.dtype)

        def load() -> str:
            raw = b.tmp()
            b(f"{raw} = load {st}, ptr addrspace(1) {p}")
            if store_t in (float16, bfloat16):
                t = b.tmp()
                b(f"{t} = fpext {st} {raw} to float")
                return t
            if store_t == bool_:
                t = b.tmp()
                b(f"{t} = icmp ne i8 {raw}, 0")
                return t
            return raw
        if gate is None:
            b(f"{d} = bitcast {ty} {load()} to {ty}")
            return
        before, go, join = b.block, b.fresh_label("ld"), b.fresh_label("ldj")
        b(f"br i1 {gate}, label %{go}, label %{join}")
        b.label(go)
        v = load()
        b(f"br label %{join}")
        b.label(join)
        b(f"{d} = phi {ty} [ {v}, %{go} ], [ {const_literal(ins.dtype, 0)}, %{before} ]")
