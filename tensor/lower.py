"""Lowering: one scheduled node -> one IR kernel.

The kernel has a thread per output element. Its value is built by walking the lazy graph from
the output: realized nodes become loads (through the reading view's index arithmetic, gated by
its pad mask), unrealized elementwise nodes are computed inline at the index the view maps to,
and an unrealized reduce becomes a loop nest accumulating its source."""
from __future__ import annotations

import math

import numpy as np

from .dtype import DType, bf16_bits_to_f32, bfloat16, f32_to_bf16_bits, float16
from .ir import IrOp, Kernel, Node, alu, const, linearize, loop, node, special
from .lazy import LazyNode, LazyView
from .ops import Op
from .view import unravel

_ALU = {Op.NEG: IrOp.NEG, Op.EXP2: IrOp.EXP2, Op.LOG2: IrOp.LOG2, Op.SQRT: IrOp.SQRT,
        Op.RECIP: IrOp.RECIP, Op.ABS: IrOp.ABS, Op.ADD: IrOp.ADD, Op.SUB: IrOp.SUB,
        Op.MUL: IrOp.MUL, Op.MAX: IrOp.MAX, Op.CMPLT: IrOp.CMPLT, Op.CMPEQ: IrOp.CMPEQ,
        Op.CMPNE: IrOp.CMPNE, Op.WHERE: IrOp.WHERE}


def const_value(value: float | int | bool, dtype: DType) -> Node:
    """A constant as the kernel computes it: narrow floats rounded to their storage type."""
    if dtype == float16:
        value = float(np.float16(value))
    elif dtype == bfloat16:
        value = float(bf16_bits_to_f32(f32_to_bf16_bits(np.array([value], np.float32)))[0])
    return const(value, dtype.register)


class _Builder:
    def __init__(self, out: LazyNode, realized: set[int]):
        self.out, self.realized = out, realized
        self.params: list[DType] = [out.dtype]
        self.inputs: list[LazyNode] = []
        self.param_nodes: dict[int, Node] = {}
        self.memo: dict[tuple, tuple[list[Node], Node]] = {}
        self.loops = 0
        self.has_reduce = False

    def param(self, n: LazyNode) -> Node:
        if id(n) not in self.param_nodes:
            self.inputs.append(n)
            self.params.append(n.dtype)
            self.param_nodes[id(n)] = node(IrOp.PARAM, n.dtype, (), (len(self.params) - 1, n.dtype))
        return self.param_nodes[id(n)]

    def read(self, v: LazyView, idxs: list[Node]) -> Node:
        """The value of view ``v`` at ``idxs``."""
        flat, valid = v.st.index(idxs)
        n = v.node
        masked = not (valid.op == IrOp.CONST and valid.arg)
        if n.realized or id(n) in self.realized:
            src = (self.param(n), flat) + ((valid,) if masked else ())
            return node(IrOp.LOAD, n.dtype.register, src)
        value = self.compute(n, unravel(flat, n.shape))
        return alu(IrOp.WHERE, valid, value, const(0, value.dtype)) if masked else value

    def compute(self, n: LazyNode, idxs: list[Node]) -> Node:
        """The value of node ``n`` at ``idxs`` (computed here, not loaded)."""
        key = (id(n), tuple(id(i) for i in idxs))
        if key not in self.memo:        # idxs kept alive with the value: keys are ids
            self.memo[key] = (idxs, self._compute(n, idxs))
        return self.memo[key][1]

    def _compute(self, n: LazyNode, idxs: list[Node]) -> Node:
        if n.op == Op.CONST:
            return const_value(n.arg, n.dtype)
        if n.op == Op.CONTIGUOUS:
            return self.read(n.srcs[0], idxs)
        if n.op in (Op.SUM, Op.RMAX):
            return self.reduce(n, idxs)
        srcs = [self.read(s, idxs) for s in n.srcs]
        if n.op == Op.CAST:
            return node(IrOp.CAST, n.dtype.register, (srcs[0],), n.arg)
        if n.op == Op.DIV:
            return alu(IrOp.DIV if n.dtype.is_float else IrOp.IDIV, *srcs)
        return alu(_ALU[n.op], *srcs)

    def reduce(self, n: LazyNode, idxs: list[Node]) -> Node:
        if self.has_reduce:
            raise AssertionError("schedule put two reduces in one kernel")
        self.has_reduce = True
        src = n.srcs[0]
        inner, ranges = list(idxs), []
        for ax in n.arg:
            size = src.shape[ax]
            if size == 0:
                return const_value(0 if n.op == Op.SUM else -math.inf, n.dtype)
            if size == 1:
                inner[ax] = const(0)
                continue
            r = loop(self.loops, size)
            self.loops += 1
            inner[ax] = r
            ranges.append(r)
        value = self.read(src, inner)
        if not ranges:
            return value
        return node(IrOp.REDUCE, value.dtype, (value, *ranges), "sum" if n.op == Op.SUM else "max")


def kernel_name(out: LazyNode, reduces: bool) -> str:
    """``e_`` (elementwise) or ``r_`` (with a reduction) and the output shape."""
    return ("r_" if reduces else "e_") + ("_".join(str(s) for s in out.shape) or "scalar")


def lower(out: LazyNode, realized: set[int]) -> tuple[Kernel, list[LazyNode]]:
    """The IR kernel computing ``out`` and the realized nodes it reads (its parameters after
    the output, in order). ``realized``: ids of nodes that will have buffers by then."""
    b = _Builder(out, realized)
    n = out.numel
    gidx = special("gidx", n)
    value = b.compute(out, unravel(gidx, out.shape))
    out_param = node(IrOp.PARAM, out.dtype, (), (0, out.dtype))
    store = node(IrOp.STORE, out.dtype.register, (out_param, gidx, value))
    kernel = linearize(kernel_name(out, b.has_reduce), [store], b.params, n, out.shape)
    return kernel, b.inputs


__all__ = ["lower", "const_value", "kernel_name"]
