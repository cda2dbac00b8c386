"""IR -> PTX. A plain, standard subset (what ptxas and the mock GPU's interpreter both take):
global loads/stores, int/f32 arithmetic, cvt, setp/selp, branches, ex2/lg2/rcp/sqrt, and for
row kernels (a group of threads per output, see ``lower.py``) shfl.sync and a shared-memory
exchange across the warps of a block.

Registers are named by the defining instruction's index and its register type: ``%f7`` (f32),
``%r7`` (s32), ``%p7`` (pred), ``%rd7`` (an address), ``%h7`` (a 16-bit float in transit),
``%t7``/``%q7`` (scratch b32 / pred)."""
from __future__ import annotations

import os
import struct
from typing import Callable

from ..dtype import DType, bfloat16, bool_, float16, int32
from ..ir import Inst, Kernel

PTX_VERSION = "8.0"
BLOCK = 256             # threads per block of an elementwise / reduce launch
VEC_BYTES = 16          # one vector access of an elementwise kernel (LDG.E.128 / STG.E.128)
#: 16-byte accesses per thread of the narrowest buffer of an elementwise kernel (more bytes in
#: flight per thread), and the cache hint of its stores ("" or ".cs": streaming, evict first).
#: Tuned on the GPU with bench/elementwise_sweep.py, which sets them per process through the
#: TENSOR_NV_ACCESSES / TENSOR_NV_STORE_HINT environment variables.
def _tunable(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, default)
    if value not in allowed:
        from hwdrv.errors import InvalidArgument
        raise InvalidArgument(f"{name}={value!r}: expected one of {', '.join(map(repr, allowed))}")
    return value


ACCESSES = int(_tunable("TENSOR_NV_ACCESSES", "1", ("1", "2", "4")))
STORE_HINT = _tunable("TENSOR_NV_STORE_HINT", "", ("", ".cs"))
ROW_SHARED = "rowred"   # one word per warp: a block-wide row's warp results meet here (one
                        # array per ALLREDUCE, suffixed with its instruction number)


def vector_width(kernel: Kernel) -> int:
    """Elements each thread of an elementwise kernel handles: one 16-byte access of the
    narrowest buffer it moves at the element's own index (4 for f32/i32, 8 for f16/bf16, 16 for
    bool; wider buffers take several 16-byte accesses). 1 for kernels with a reduction or a
    row group (a thread, or a group of threads, per output element)."""
    insts = kernel.insts
    if any(ins.op in ("ACC", "ALLREDUCE") for ins in insts):
        return 1
    special = next((i for i, ins in enumerate(insts) if ins.op == "SPECIAL"), None)
    if special is None or insts[special].arg[0] != "gidx":
        return 1
    sizes = [insts[ins.src[0]].arg[1].itemsize for ins in insts if _own_index(ins, special)]
    return VEC_BYTES * ACCESSES // min(sizes, default=VEC_BYTES // 4)


def _own_index(ins: Inst, special: int) -> bool:
    """A load or store at the thread's own element, unmasked: it can move whole vectors."""
    return ins.op in ("LOAD", "STORE") and ins.src[1] == special and \
        len(ins.src) == (3 if ins.op == "STORE" else 2)


def _same(j: int) -> int:
    return j


def f32_hex(v: float) -> str:
    """A PTX f32 immediate (exact bit pattern)."""
    return "0f%08X" % struct.unpack("<I", struct.pack("<f", v))[0]


def _reg(dt: DType, i: int) -> str:
    return {"float": "%f", "int": "%r", "bool": "%p"}[dt.kind] + str(i)


_INT_BIN = {"ADD": "add.s32", "SUB": "sub.s32", "MUL": "mul.lo.s32", "IDIV": "div.s32",
            "DIV": "div.s32", "MOD": "rem.s32", "MAX": "max.s32"}
_F32_BIN = {"ADD": "add.f32", "SUB": "sub.f32", "MUL": "mul.f32", "DIV": "div.rn.f32",
            "MAX": "max.f32"}
_BOOL_BIN = {"ADD": "or.pred", "MUL": "and.pred", "MAX": "or.pred", "SUB": "xor.pred",
             "AND": "and.pred", "CMPNE": "xor.pred"}
_F32_UN = {"NEG": "neg.f32", "ABS": "abs.f32", "EXP2": "ex2.approx.f32", "LOG2": "lg2.approx.f32",
           "SQRT": "sqrt.rn.f32", "RECIP": "rcp.rn.f32"}
_CMP = {"CMPLT": "lt", "CMPEQ": "eq", "CMPNE": "ne"}


class PTXRenderer:
    """Renders linear IR kernels as PTX for ``arch`` (e.g. ``"sm_90"``)."""
    device_kind = "nvidia"

    #: elements per thread of an elementwise kernel (the runtime sizes launches with it)
    vector_width = staticmethod(vector_width)

    def __init__(self, arch: str = "sm_90"):
        self.arch = arch

    def render(self, kernel: Kernel) -> str:
        insts = kernel.insts
        n = len(insts) + 1
        vec = vector_width(kernel)
        body = self._elementwise(kernel, n, vec) if vec > 1 else \
            [line for i, ins in enumerate(insts) for line in self._inst(i, ins, insts, _same)]
        regs = n * (vec + 1)            # a register set per lane, and one for the tail
        params = ",\n".join(f"\t.param .u64 p{k}" for k in range(len(kernel.params)))
        # one exchange array per block-wide ALLREDUCE: a fused row kernel combines several in
        # sequence, and a shared array reused would let a fast warp overwrite a slot that a
        # slow warp has not read yet
        shared = [f".shared .align 4 .b32 {ROW_SHARED}{i}[{ins.arg[1] // 32}];"
                  for i, ins in enumerate(insts) if ins.op == "ALLREDUCE" and ins.arg[1] > 32]
        head = [f".version {PTX_VERSION}", f".target {self.arch}", ".address_size 64", ""] + shared + [
                f".visible .entry {kernel.name}(", params, ")", "{",
                f"\t.reg .pred %p<{regs}>;", f"\t.reg .pred %q<{regs}>;", f"\t.reg .b16 %h<{regs}>;",
                f"\t.reg .b32 %r<{regs}>;", f"\t.reg .b32 %t<{regs}>;", f"\t.reg .f32 %f<{regs}>;",
                f"\t.reg .b64 %rd<{regs}>;", "\t.reg .b32 %vi, %vs, %vt;", "\t.reg .b64 %va;", "\t.reg .pred %vq;",
                "\t.reg .f32 %wf;"]
        return "\n".join(head + ["\t" + b if not b.endswith(":") else b for b in body] +
                          ["$END:", "\tret;", "}", ""])

    def _elementwise(self, kernel: Kernel, n: int, vec: int) -> list[str]:
        """One vector of ``vec`` elements per thread, the grid covering the tensor (no
        grid-stride loop: on an H100 a one-shot grid streams 2-5 % faster). All of a thread's
        loads come before its arithmetic and stores. The numel % vec elements past the last
        whole vector belong to the thread after it, which does them one by one (predicated by
        its index: no second kernel). Values that do not depend on the element index are
        computed once; the others once per lane, lane j's registers numbered ``n * j`` above
        the instruction's."""
        insts = kernel.insts
        varying: set[int] = set()
        for i, ins in enumerate(insts):
            if ins.op == "SPECIAL" or any(j in varying for j in ins.src):
                varying.add(i)
        special = next(i for i, ins in enumerate(insts) if ins.op == "SPECIAL")
        total = insts[special].arg[1]
        nvec, rem = divmod(total, vec)
        out = [line for i, ins in enumerate(insts) if i not in varying
               for line in self._inst(i, ins, insts, _same)]
        out += ["mov.u32 %vi, %ctaid.x;", "mov.u32 %vs, %ntid.x;", "mul.lo.s32 %vi, %vi, %vs;",
                "mov.u32 %vs, %tid.x;", "add.s32 %vi, %vi, %vs;"]          # this thread's vector
        if nvec:
            out += [f"setp.ge.s32 %vq, %vi, {nvec};", "@%vq bra $TAIL;"]
            for i in sorted(varying):
                out += self._lanes(i, insts, special, n, varying, vec)
            out += ["bra.uni $END;"]
        out += ["$TAIL:"]
        if rem:
            out += [f"setp.ne.s32 %vq, %vi, {nvec};", "@%vq bra $END;"]
            for j in range(rem):
                def ren(k: int, j: int = j) -> int:
                    return k + n * j if k in varying else k
                for i in sorted(varying):
                    if i == special:
                        out.append(f"mov.s32 %r{i + n * j}, {nvec * vec + j};")
                    else:
                        out += self._inst(i, insts[i], insts, ren)
        return out

    def _lanes(self, i: int, insts: list[Inst], special: int, n: int, varying: set[int],
               vec: int) -> list[str]:
        """Instruction ``i`` for each of the ``vec`` lanes of the vector %vi."""
        ins = insts[i]
        if ins.op == "SPECIAL":
            return [f"mad.lo.s32 %r{i + n * j}, %vi, {vec}, {j};" for j in range(vec)]
        if _own_index(ins, special):
            return self._vector_memory(i, ins, insts, n, varying, vec)
        out = []
        for lane in range(vec):
            def ren(j: int, lane: int = lane) -> int:
                return j + n * lane if j in varying else j
            out += self._inst(i, ins, insts, ren)
        return out

    def _vector_memory(self, i: int, ins: Inst, insts: list[Inst], n: int, varying: set[int],
                       vec: int) -> list[str]:
        """A load or store of the vector's ``vec`` elements in 16-byte accesses (aligned: buffers
        start 16-byte aligned and a vector is a whole number of 16-byte chunks). Narrow types
        travel packed in b32 words: two f16/bf16 or four bools per word."""
        store_t: DType = insts[ins.src[0]].arg[1]
        per = VEC_BYTES // store_t.itemsize             # elements per 16-byte access
        lines = [f"mul.wide.s32 %va, %vi, {vec * store_t.itemsize};", f"add.s64 %va, %rd{ins.src[0]}, %va;"]
        lanes = [i + n * j for j in range(vec)]
        if ins.op == "STORE":
            src = ins.src[2]
            vdt = insts[src].dtype
            vals = [_reg(vdt, src + n * j if src in varying else src) for j in range(vec)]
        for c in range(vec // per):
            part = lanes[c * per:(c + 1) * per]
            addr = f"[%va+{c * VEC_BYTES}]"
            if ins.op == "LOAD":
                lines += self._unpack(part, store_t, ins.dtype, addr)
            else:
                lines += self._pack(part, store_t, vals[c * per:(c + 1) * per], addr)
        return lines

    @staticmethod
    def _unpack(lanes: list[int], store_t: DType, dt: DType, addr: str) -> list[str]:
        """One 16-byte load into the registers of ``lanes``."""
        if store_t in (float16, bfloat16):
            words = lanes[0::2]
            return [f"ld.global.nc.v4.b32 {{{', '.join(f'%t{w}' for w in words)}}}, {addr};"] + \
                [f"mov.b32 {{%h{a}, %h{b}}}, %t{a};" for a, b in zip(lanes[0::2], lanes[1::2])] + \
                [f"cvt.f32.{store_t.ptx} %f{r}, %h{r};" for r in lanes]
        if store_t == bool_:
            words = lanes[0::4]
            lines = [f"ld.global.nc.v4.b32 {{{', '.join(f'%t{w}' for w in words)}}}, {addr};"]
            for w in range(4):          # the word's own lane last: it is overwritten
                quad = lanes[4 * w:4 * w + 4]
                lines += [f"bfe.u32 %t{quad[b]}, %t{quad[0]}, {8 * b}, 8;" for b in (3, 2, 1, 0)]
            return lines + [f"setp.ne.u32 %p{r}, %t{r}, 0;" for r in lanes]
        return [f"ld.global.nc.v4.{store_t.ptx} {{{', '.join(_reg(dt, r) for r in lanes)}}}, {addr};"]

    @staticmethod
    def _pack(lanes: list[int], store_t: DType, vals: list[str], addr: str) -> list[str]:
        """One 16-byte store of ``vals`` (registers), packed in the scratch registers of ``lanes``."""
        if store_t in (float16, bfloat16):
            return [f"cvt.rn.{store_t.ptx}.f32 %h{r}, {v};" for r, v in zip(lanes, vals)] + \
                [f"mov.b32 %t{a}, {{%h{a}, %h{b}}};" for a, b in zip(lanes[0::2], lanes[1::2])] + \
                [f"st.global{STORE_HINT}.v4.b32 {addr}, {{{', '.join(f'%t{w}' for w in lanes[0::2])}}};"]
        if store_t == bool_:
            lines = [f"selp.u32 %t{r}, 1, 0, {v};" for r, v in zip(lanes, vals)]
            for w in range(4):
                quad = lanes[4 * w:4 * w + 4]
                lines += [f"bfi.b32 %t{quad[0]}, %t{quad[b]}, %t{quad[0]}, {8 * b}, 8;" for b in (1, 2, 3)]
            return lines + [f"st.global{STORE_HINT}.v4.b32 {addr}, {{{', '.join(f'%t{w}' for w in lanes[0::4])}}};"]
        return [f"st.global{STORE_HINT}.v4.{store_t.ptx} {addr}, {{{', '.join(vals)}}};"]

    # ---- one instruction ---------------------------------------------------------------
    def instruction(self, i: int, insts: list[Inst], ren: Callable[[int], int]) -> list[str]:
        """Instruction ``i`` of ``insts`` alone, registers numbered by ``ren`` (the matmul
        generators emit fused epilogues with it, ``tensor/matmul_epilogue.py``)."""
        return self._inst(i, insts[i], insts, ren)

    def _inst(self, i: int, ins: Inst, insts: list[Inst], ren: Callable[[int], int]) -> list[str]:
        """Instruction ``i``; ``ren`` maps an instruction index to its register number (the
        lanes of a vectorised kernel each have their own)."""
        op, dt = ins.op, ins.dtype
        src = ins.src
        ins = Inst(op, dt, tuple(ren(j) for j in src), ins.arg)
        i = ren(i)
        d = _reg(dt, i) if op not in ("PARAM", "STORE", "ENDLOOP") else ""
        s = [_reg(insts[j].dtype, r) for j, r in zip(src, ins.src)]
        if op == "CONST":
            return self._const(d, dt, ins.arg, i)
        if op == "SPECIAL":
            return self._special(i, d, ins.arg)
        if op == "ALLREDUCE":
            return self._allreduce(d, dt, s[0], *ins.arg, f"{ROW_SHARED}{i}")
        if op == "PARAM":
            return [f"ld.param.u64 %rd{i}, [p{ins.arg[0]}];", f"cvta.to.global.u64 %rd{i}, %rd{i};"]
        if op in ("LOAD", "STORE"):
            return self._memory(i, ins, [insts[j] for j in src])
        if op == "ACC":
            init = (0.0 if ins.arg == "sum" else float("-inf")) if dt.is_float else \
                (0 if ins.arg == "sum" else -2**31)
            return self._const(d, dt, init, i)
        if op == "ACCUM":
            a, v = s
            if dt == bool_:
                return [f"or.pred {a}, {a}, {v};"]
            table = _F32_BIN if dt.is_float else _INT_BIN
            return [f"{table['ADD' if ins.arg == 'sum' else 'MAX']} {a}, {a}, {v};"]
        if op == "LOOP":
            return [f"mov.s32 {d}, 0;", f"$L{i}:"]
        if op == "ENDLOOP":
            j = ins.src[0]
            end = _reg(int32, ren(insts[src[0]].src[0]))
            return [f"add.s32 %r{j}, %r{j}, 1;", f"setp.lt.s32 %q{i}, %r{j}, {end};",
                    f"@%q{i} bra $L{j};"]
        if op == "CAST":
            return self._cast(i, d, insts[src[0]].dtype, s[0], ins.arg)
        if op == "WHERE":
            c, a, b = s
            if dt == bool_:
                return [f"and.pred %q{i}, {c}, {a};", f"not.pred {d}, {c};",
                        f"and.pred {d}, {d}, {b};", f"or.pred {d}, {d}, %q{i};"]
            return [f"selp.{'f32' if dt.is_float else 's32'} {d}, {a}, {b}, {c};"]
        src_dt = insts[src[0]].dtype
        if op in _CMP:
            if src_dt == bool_:
                if op == "CMPLT":       # a < b  <=>  !a & b
                    return [f"not.pred %q{i}, {s[0]};", f"and.pred {d}, %q{i}, {s[1]};"]
                lines = [f"xor.pred {d}, {s[0]}, {s[1]};"]
                return lines + ([f"not.pred {d}, {d};"] if op == "CMPEQ" else [])
            return [f"setp.{_CMP[op]}.{'f32' if src_dt.is_float else 's32'} {d}, {s[0]}, {s[1]};"]
        if len(s) == 2:
            table = _BOOL_BIN if dt == bool_ else _F32_BIN if dt.is_float else _INT_BIN
            return [f"{table[op]} {d}, {s[0]}, {s[1]};"]
        if dt.is_float:
            return [f"{_F32_UN[op]} {d}, {s[0]};"]
        if dt == bool_ and op == "NEG":
            return [f"not.pred {d}, {s[0]};"]
        return [f"{op.lower()}.s32 {d}, {s[0]};"]

    @staticmethod
    def _special(i: int, d: str, arg: tuple) -> list[str]:
        """gidx, or a row kernel's row / lane (groups are whole warps or the whole block, so a
        row past the end retires whole groups: no barrier waits on a missing thread)."""
        name, size = arg[:2]
        if name == "lane":
            return ["mov.u32 %vt, %tid.x;", f"and.b32 {d}, %vt, {size - 1};"]
        assert name in ("gidx", "row"), name
        lines = [f"mov.u32 %t{i}, %ctaid.x;", f"mov.u32 {d}, %ntid.x;",
                 f"mul.lo.s32 {d}, %t{i}, {d};", f"mov.u32 %t{i}, %tid.x;",
                 f"add.s32 {d}, {d}, %t{i};"]
        if name == "row":
            lines.append(f"shr.u32 {d}, {d}, {arg[2].bit_length() - 1};")
        return lines + [f"setp.ge.s32 %q{i}, {d}, {size};", f"@%q{i} bra $END;"]

    @staticmethod
    def _allreduce(d: str, dt: DType, a: str, kind: str, group: int, shared: str) -> list[str]:
        """``d`` = the ``kind`` of ``a`` over the ``group`` lanes of a row: a butterfly of
        shuffles within the warp, then (block-wide rows) each warp's result through shared
        memory, read back by every thread. Predicates travel as 0/1 words."""
        if dt == bool_:
            work, tmp, combine = "%vs", "%vt", "or.b32"
            lines = [f"selp.u32 {work}, 1, 0, {a};"]
        else:
            work, tmp = d, "%wf" if dt.is_float else "%vt"
            combine = (_F32_BIN if dt.is_float else _INT_BIN)["ADD" if kind == "sum" else "MAX"]
            lines = [f"mov.{'f32' if dt.is_float else 's32'} {d}, {a};"]
        for off in (16, 8, 4, 2, 1):
            lines += [f"shfl.sync.bfly.b32 {tmp}, {work}, {off}, 31, -1;", f"{combine} {work}, {work}, {tmp};"]
        if group > 32:
            lines += ["mov.u32 %vi, %tid.x;", "and.b32 %vt, %vi, 31;", "setp.eq.u32 %vq, %vt, 0;",
                      "shr.u32 %vi, %vi, 5;", f"mov.u32 %vt, {shared};", "mad.lo.u32 %vi, %vi, 4, %vt;",
                      f"@%vq st.shared.b32 [%vi], {work};", "bar.sync 0;",
                      f"ld.shared.b32 {work}, [{shared}];"]
            for w in range(1, group // 32):
                lines += [f"ld.shared.b32 {tmp}, [{shared}+{4 * w}];", f"{combine} {work}, {work}, {tmp};"]
        if dt == bool_:
            lines.append(f"setp.ne.u32 {d}, {work}, 0;")
        return lines

    @staticmethod
    def _const(d: str, dt: DType, v, i: int) -> list[str]:
        if dt.is_float:
            return [f"mov.f32 {d}, {f32_hex(v)};"]
        if dt == bool_:
            return [f"mov.u32 %t{i}, {int(bool(v))};", f"setp.ne.u32 {d}, %t{i}, 0;"]
        return [f"mov.s32 {d}, {int(v)};"]

    @staticmethod
    def _round(i: int, d: str, target: DType) -> list[str]:
        """Round an f32 register through a narrow float type, in place."""
        if target in (float16, bfloat16):
            t = target.ptx
            return [f"cvt.rn.{t}.f32 %h{i}, {d};", f"cvt.f32.{t} {d}, %h{i};"]
        return []

    def _cast(self, i: int, d: str, src: DType, s: str, target: DType) -> list[str]:
        if target.is_float:
            if src.is_float:
                first = [f"mov.f32 {d}, {s};"]
            elif src == int32:
                first = [f"cvt.rn.f32.s32 {d}, {s};"]
            else:
                first = [f"selp.f32 {d}, {f32_hex(1.0)}, {f32_hex(0.0)}, {s};"]
            return first + self._round(i, d, target)
        if target == int32:
            if src.is_float:
                return [f"cvt.rzi.s32.f32 {d}, {s};"]
            if src == int32:
                return [f"mov.s32 {d}, {s};"]
            return [f"selp.s32 {d}, 1, 0, {s};"]
        if src.is_float:            # NaN is true, as in numpy: "not equal or unordered"
            return [f"setp.neu.f32 {d}, {s}, {f32_hex(0.0)};"]
        if src == int32:
            return [f"setp.ne.s32 {d}, {s}, 0;"]
        return [f"mov.pred {d}, {s};"]

    def _memory(self, i: int, ins: Inst, srcs: list[Inst]) -> list[str]:
        """A scalar load or store; ``srcs``: the instructions ``ins.src`` names."""
        param = srcs[0]
        store_t: DType = param.arg[1]
        idx = _reg(int32, ins.src[1])
        addr = f"%rd{i}"
        lines = [f"mul.wide.s32 {addr}, {idx}, {store_t.itemsize};",
                 f"add.s64 {addr}, %rd{ins.src[0]}, {addr};"]
        if ins.op == "STORE":
            v = _reg(srcs[2].dtype, ins.src[2])
            gate = f"@{_reg(bool_, ins.src[3])} " if len(ins.src) > 3 else ""
            if store_t == bool_:
                return lines + [f"selp.u32 %t{i}, 1, 0, {v};", f"{gate}st.global.u8 [{addr}], %t{i};"]
            if store_t in (float16, bfloat16):
                return lines + [f"cvt.rn.{store_t.ptx}.f32 %h{i}, {v};",
                                f"{gate}st.global.b16 [{addr}], %h{i};"]
            return lines + [f"{gate}st.global.{store_t.ptx} [{addr}], {v};"]
        d = _reg(ins.dtype, i)
        gate = f"@{_reg(bool_, ins.src[2])} " if len(ins.src) > 2 else ""
        if store_t == bool_:
            return lines + [f"mov.u32 %t{i}, 0;", f"{gate}ld.global.u8 %t{i}, [{addr}];",
                            f"setp.ne.u32 {d}, %t{i}, 0;"]
        zero = [f"mov.{'f32' if store_t.is_float else 's32'} {d}, "
                f"{f32_hex(0.0) if store_t.is_float else 0};"] if gate else []
        if store_t in (float16, bfloat16):
            return lines + zero + [f"{gate}ld.global.b16 %h{i}, [{addr}];",
                                   f"{gate}cvt.f32.{store_t.ptx} {d}, %h{i};"]
        return lines + zero + [f"{gate}ld.global.{store_t.ptx} {d}, [{addr}];"]
