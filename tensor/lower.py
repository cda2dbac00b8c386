"""Lowering: one scheduled node -> one IR kernel.

The kernel has a thread per output element. Its value is built by walking the lazy graph from
the output: realized nodes become loads (through the reading view's index arithmetic, gated by
its pad mask), unrealized elementwise nodes are computed inline at the index the view maps to,
and an unrealized reduce becomes a loop nest accumulating its source.

A reduce over the last axis (the contiguous one of a contiguous source) of at least
``ROW_MIN`` elements is a *row* kernel instead: a group of threads per output element (a warp,
or a whole block for long rows). Lane l of the group reads elements l, l+group, ... so a warp's
loads are coalesced, ``ROW_UNROLL`` of them in flight per step; the lanes' partial results are
then combined across the group (ALLREDUCE) and lane 0 stores the output."""
from __future__ import annotations

import math

import numpy as np

from .dtype import DType, bf16_bits_to_f32, bfloat16, f32_to_bf16_bits, float16
from .ir import IrOp, Kernel, Node, alu, const, linearize, loop, node, special
from .lazy import LazyNode, LazyView
from .ops import REDUCE, Op
from .view import unravel

ROW_MIN = 128           # shorter rows keep a thread per output (a group would idle)
ROW_WARP_MAX = 2048     # rows up to this long get a warp; longer ones a block
ROW_BLOCK = 256         # threads per row of a long row (the launch block: render.ptx.BLOCK)
ROW_UNROLL = 8          # independent loads per lane per loop step (latency hiding)

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


def _identity(kind: str, dtype: DType) -> Node:
    """What a reduce of kind "sum"/"max" starts from, in register type ``dtype``."""
    if kind == "sum":
        return const(0, dtype)
    return const(-math.inf if dtype.is_float else -2**31 if dtype.kind == "int" else False, dtype)


class _Builder:
    def __init__(self, out: LazyNode, realized: set[int], lane: Node | None = None):
        self.out, self.realized, self.lane = out, realized, lane
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
        kind = "sum" if n.op == Op.SUM else "max"
        if self.lane is not None:
            return self.row_reduce(n, idxs, kind)
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
        return node(IrOp.REDUCE, value.dtype, (value, *ranges), kind)

    def row_reduce(self, n: LazyNode, idxs: list[Node], kind: str) -> Node:
        """The reduce of a row kernel: this lane's share in one loop whose steps read
        ROW_UNROLL elements a group apart (all axes of the reduce flattened into one), then
        combined over the group."""
        src, lane = n.srcs[0], self.lane
        group = lane.arg[1]
        axes = [ax for ax in n.arg if src.shape[ax] > 1]
        total = math.prod(src.shape[ax] for ax in axes)
        unroll = max(1, min(ROW_UNROLL, total // group))
        step = group * unroll
        r = loop(self.loops, -(-total // step))
        self.loops += 1
        inner = [const(0) if ax in n.arg else i for ax, i in enumerate(idxs)]
        parts = []
        for j in range(unroll):
            flat = r * step + (lane + j * group)
            for ax, i in zip(axes, unravel(flat, tuple(src.shape[ax] for ax in axes))):
                inner[ax] = i
            value = self.read(src, inner)
            if total % step:        # the last step runs past the row
                value = alu(IrOp.WHERE, alu(IrOp.CMPLT, flat, total), value, _identity(kind, value.dtype))
            parts.append(value)
        op = IrOp.ADD if kind == "sum" else IrOp.MAX
        while len(parts) > 1:       # a tree: the loads stay independent
            parts = [alu(op, *parts[k:k + 2]) if k + 1 < len(parts) else parts[k]
                     for k in range(0, len(parts), 2)]
        acc = node(IrOp.REDUCE, parts[0].dtype, (parts[0], r), kind)
        return node(IrOp.ALLREDUCE, acc.dtype, (acc,), (kind, group))


def kernel_name(out: LazyNode, reduces: bool) -> str:
    """``e_`` (elementwise) or ``r_`` (with a reduction) and the output shape."""
    return ("r_" if reduces else "e_") + ("_".join(str(s) for s in out.shape) or "scalar")


def _kernel_reduce(out: LazyNode, realized: set[int]) -> LazyNode | None:
    """The reduce computed inside ``out``'s kernel, if any (the scheduler allows one)."""
    stack, seen = [out], set()
    while stack:
        n = stack.pop()
        if n.op in REDUCE:
            return n
        for s in n.srcs:
            m = s.node
            if not (m.realized or id(m) in realized or id(m) in seen):
                seen.add(id(m))
                stack.append(m)
    return None


def row_group(red: LazyNode) -> int | None:
    """Threads per output of a row kernel for reduce ``red``, or None for a thread per output:
    rows are reduces over the source's last (non-unit) axis, ROW_MIN elements or more."""
    shape = red.srcs[0].shape
    last = max((ax for ax, s in enumerate(shape) if s > 1), default=None)
    if last is None or last not in red.arg:
        return None
    total = math.prod(shape[ax] for ax in red.arg)
    if total < ROW_MIN:
        return None
    return 32 if total <= ROW_WARP_MAX else ROW_BLOCK


def lower(out: LazyNode, realized: set[int]) -> tuple[Kernel, list[LazyNode]]:
    """The IR kernel computing ``out`` and the realized nodes it reads (its parameters after
    the output, in order). ``realized``: ids of nodes that will have buffers by then."""
    n = out.numel
    red = _kernel_reduce(out, realized)
    group = row_group(red) if red is not None else None
    out_param = node(IrOp.PARAM, out.dtype, (), (0, out.dtype))
    if group is None:
        b = _Builder(out, realized)
        gidx = special("gidx", n)
        value = b.compute(out, unravel(gidx, out.shape))
        store = node(IrOp.STORE, out.dtype.register, (out_param, gidx, value))
    else:
        lane = special("lane", group, group)
        b = _Builder(out, realized, lane)
        row = special("row", n, group)
        value = b.compute(out, unravel(row, out.shape))
        store = node(IrOp.STORE, out.dtype.register, (out_param, row, value, alu(IrOp.CMPEQ, lane, 0)))
    kernel = linearize(kernel_name(out, b.has_reduce), [store], b.params, n * (group or 1), out.shape)
    return kernel, b.inputs


__all__ = ["lower", "const_value", "kernel_name"]
