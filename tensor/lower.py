"""Lowering: one scheduled node -> one IR kernel.

The kernel has a thread per output element. Its value is built by walking the lazy graph from
the output: realized nodes become loads (through the reading view's index arithmetic, gated by
its pad mask), unrealized elementwise nodes are computed inline at the index the view maps to,
and an unrealized reduce becomes a loop over its (flattened) reduced axes, ``ROW_UNROLL``
independent loads per step and the remainder unrolled.

A reduce over the last axis (the contiguous one of a contiguous source) of at least
``ROW_MIN`` elements is a *row* kernel instead: a group of threads per output element (a warp,
or a whole block for long rows). Lane l of the group reads elements l, l+group, ... so a warp's
loads are coalesced, ``ROW_UNROLL`` of them in flight per step; the lanes' partial results are
then combined across the group (ALLREDUCE) and lane 0 stores the output.

A *fused row kernel* (the scheduler's row fusion: softmax, log-softmax, x - mean, ...) has an
output of the row shape and any number of last-axis reduces read back through a broadcast: a
group per row computes each reduce (ALLREDUCE: every lane gets it) and then the row's outputs,
each lane storing its own elements. Rows of up to ``ROW_REG_PARTS`` elements per lane are fully
unrolled, so the same element's load is one hash-consed node in every phase: the row is read
from memory once and lives in registers."""
from __future__ import annotations

import math

import numpy as np

from .dtype import DType, bf16_bits_to_f32, bfloat16, bool_, f32_to_bf16_bits, float16
from .ir import IrOp, Kernel, Node, alu, const, linearize, loop, node, special
from .lazy import LazyNode, LazyView
from .matmul_epilogue import COL, OUT_DTYPES, ROW, Epilogue, live
from .ops import REDUCE, Op
from .view import unravel

ROW_MIN = 128           # shorter rows keep a thread per output (a group would idle)
ROW_WARP_MAX = 2048     # rows up to this long get a warp; longer ones a block
ROW_BLOCK = 256         # threads per row of a long row (the launch block: render.ptx.BLOCK)
ROW_UNROLL = 8          # independent loads per lane per loop step (latency hiding)
ROW_REG_PARTS = 32      # a fused row kernel keeps rows of up to this many elements per lane in
                        # registers (8192 with a 256-thread block: softmax 8192 f32 reads once)

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
    """Builds the IR value of one kernel's output. ``lane`` (row kernels): this thread's place
    in its row group. ``slots`` (fused row kernels whose row stays in registers): the element
    positions this lane holds, as (clamped position, valid) - every phase of the kernel reads
    the same positions, so its loads are the same (hash-consed) nodes and run once."""

    def __init__(self, out: LazyNode, realized: set[int], lane: Node | None = None,
                 fused: bool = False, slots: list[tuple[Node, Node]] | None = None):
        self.out, self.realized, self.lane, self.fused, self.slots = out, realized, lane, fused, slots
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
        if self.has_reduce and not self.fused:
            raise AssertionError("schedule put two reduces in one kernel")
        self.has_reduce = True
        src = n.srcs[0]
        kind = "sum" if n.op == Op.SUM else "max"
        axes = [ax for ax in n.arg if src.shape[ax] > 1]
        if any(src.shape[ax] == 0 for ax in n.arg):
            return const_value(0 if n.op == Op.SUM else -math.inf, n.dtype)
        inner = [const(0) if ax in n.arg else i for ax, i in enumerate(idxs)]
        if not axes:
            return self.read(src, inner)
        if self.slots is not None:          # the row is in registers: one combine, no loop
            parts = []
            for pos, valid in self.slots:
                inner[axes[0]] = pos
                parts.append(_gated(self.read(src, inner), valid, kind))
            return node(IrOp.ALLREDUCE, parts[0].dtype, (_tree(parts, kind),), (kind, self.lane.arg[1]))
        lane, group = (self.lane, self.lane.arg[1]) if self.lane is not None else (const(0), 1)
        acc = self.strided(src, inner, axes, lane, group, kind)
        return acc if group == 1 else node(IrOp.ALLREDUCE, acc.dtype, (acc,), (kind, group))

    def strided(self, src: LazyView, inner: list[Node], axes: list[int], lane: Node, group: int,
                kind: str) -> Node:
        """This lane's share of the reduce of ``src`` over ``axes`` (flattened into one): a
        loop whose steps read ROW_UNROLL elements ``group`` apart (independent loads in
        flight; lane l of a group reads l, l+group, ...: coalesced), then the elements left
        after the last whole step, unrolled, gated by position (their index clamped into the
        row, so nothing outside it is read)."""
        sizes = tuple(src.shape[ax] for ax in axes)
        total = math.prod(sizes)
        unroll = max(1, min(ROW_UNROLL, total // group))
        step = group * unroll
        steps, rest = divmod(total, step)

        def at(flat: Node) -> Node:
            for ax, i in zip(axes, unravel(flat, sizes)):
                inner[ax] = i
            return self.read(src, inner)

        parts: list[Node] = []
        if steps == 1:
            parts += [at(lane + j * group) for j in range(unroll)]
        elif steps:
            r = loop(self.loops, steps)
            self.loops += 1
            body = _tree([at(r * step + (lane + j * group)) for j in range(unroll)], kind)
            parts.append(node(IrOp.REDUCE, body.dtype, (body, r), kind))
        for j in range(-(-rest // group)):
            flat = lane + (steps * step + j * group)
            if (j + 1) * group <= rest:
                parts.append(at(flat))
            else:                       # only the first rest % group lanes have an element
                valid = alu(IrOp.CMPLT, flat, total)
                parts.append(_gated(at(_wrap(flat, total)), valid, kind))
        return _tree(parts, kind)


def _wrap(pos: Node, size: int) -> Node:
    """A position past the row's end moved back into it (its value is gated off anyway), so
    nothing outside the row is read. ``pos % size``: its bounds (0..size-1) let the index
    arithmetic through it simplify, so the row index stays the row's (a clamp with MAX/SUB
    would not: the simplifier splits only sums with positive coefficients)."""
    return pos % size


def _gated(value: Node, valid: Node, kind: str) -> Node:
    """``value`` where ``valid``, else the reduce's identity."""
    if valid.op == IrOp.CONST and valid.arg:
        return value
    return alu(IrOp.WHERE, valid, value, _identity(kind, value.dtype))


def _tree(parts: list[Node], kind: str) -> Node:
    """Combine ``parts`` pairwise (a tree: the loads stay independent)."""
    op = IrOp.ADD if kind == "sum" else IrOp.MAX
    while len(parts) > 1:
        parts = [alu(op, *parts[k:k + 2]) if k + 1 < len(parts) else parts[k]
                 for k in range(0, len(parts), 2)]
    return parts[0]


def kernel_name(out: LazyNode, reduces: bool) -> str:
    """``e_`` (elementwise) or ``r_`` (with a reduction) and the output shape."""
    return ("r_" if reduces else "e_") + ("_".join(str(s) for s in out.shape) or "scalar")


def kernel_reduces(out: LazyNode, realized: set[int]) -> list[LazyNode]:
    """The reduces computed inside ``out``'s kernel (the scheduler allows one, or several in a
    fused row kernel)."""
    stack, seen, found = [out], {id(out)}, []
    while stack:
        n = stack.pop()
        if n.op in REDUCE:
            found.append(n)
        for s in n.srcs:
            m = s.node
            if not (m.realized or id(m) in realized or id(m) in seen):
                seen.add(id(m))
                stack.append(m)
    return found


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


def is_fused_row(out: LazyNode, reduces: list[LazyNode]) -> bool:
    """Whether ``out``'s kernel is a fused row kernel: an elementwise output of the shape of
    its reduces' sources, which all reduce the last axis (the scheduler's row fusion)."""
    return bool(reduces) and out.op not in REDUCE and len(out.shape) > 0 and out.shape[-1] > 1 and \
        all(r.srcs[0].shape == out.shape and r.arg == (len(out.shape) - 1,) for r in reduces)


def fused_group(length: int) -> int:
    """Threads per row of a fused row kernel: a warp while the row fits its registers, else
    the block."""
    return 32 if length <= 32 * ROW_REG_PARTS else ROW_BLOCK


def _lower_fused_row(out: LazyNode, realized: set[int], out_param: Node) -> tuple[list[Node], _Builder, int]:
    """A group of threads per row; lane l holds row elements l, l+group, ... . Short enough
    rows (ROW_REG_PARTS elements per lane) stay in registers: read once, every reduce one
    combine over the lane's values, the output written from them. Longer rows loop: each
    reduce its own pass over the row, then an output pass."""
    length = out.shape[-1]
    rows = out.numel // length
    group = fused_group(length)
    lane = special("lane", group, group)
    row = special("row", rows, group)
    lead = unravel(row, out.shape[:-1])
    per_lane = -(-length // group)

    def slot(pos: Node) -> tuple[Node, Node]:
        if pos.vmax is not None and pos.vmax < length:
            return pos, const(True, bool_)
        return _wrap(pos, length), alu(IrOp.CMPLT, pos, length)

    def store(pos: Node, valid: Node, b: _Builder) -> Node:
        value = b.compute(out, lead + [pos])
        gate = () if valid.op == IrOp.CONST else (valid,)
        return node(IrOp.STORE, out.dtype.register, (out_param, row * length + pos, value) + gate)

    if per_lane <= ROW_REG_PARTS:
        slots = [slot(lane + j * group) for j in range(per_lane)]
        b = _Builder(out, realized, lane, fused=True, slots=slots)
        return [store(pos, valid, b) for pos, valid in slots], b, rows * group
    b = _Builder(out, realized, lane, fused=True)
    step = group * ROW_UNROLL
    steps, rest = divmod(length, step)      # the output pass: whole steps, then the rest
    r = loop(0, steps)                      # (the reduces' loops number on from 1)
    b.loops = 1
    stores = [store(*slot(r * step + (lane + j * group)), b) for j in range(ROW_UNROLL)] if steps else []
    stores += [store(*slot(lane + (steps * step + j * group)), b) for j in range(-(-rest // group))]
    return stores, b, rows * group


def lower(out: LazyNode, realized: set[int]) -> tuple[Kernel, list[LazyNode]]:
    """The IR kernel computing ``out`` and the realized nodes it reads (its parameters after
    the output, in order). ``realized``: ids of nodes that will have buffers by then."""
    n = out.numel
    reduces = kernel_reduces(out, realized)
    out_param = node(IrOp.PARAM, out.dtype, (), (0, out.dtype))
    if is_fused_row(out, reduces):
        stores, b, threads = _lower_fused_row(out, realized, out_param)
        kernel = linearize(kernel_name(out, True), stores, b.params, threads, out.shape)
        return kernel, b.inputs
    group = row_group(reduces[0]) if reduces else None
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


def fused_matmul(out: LazyNode, realized: set[int]) -> LazyNode | None:
    """The MATMUL computed inside ``out``'s kernel (the scheduler fused ``out`` into it as its
    epilogue), or None."""
    stack, seen = [out], {id(out)}
    while stack:
        n = stack.pop()
        if n.op == Op.MATMUL:
            return n
        for s in n.srcs:
            m = s.node
            if not (m.realized or id(m) in realized or id(m) in seen):
                seen.add(id(m))
                stack.append(m)
    return None


def lower_epilogue(out: LazyNode, mm: LazyNode, realized: set[int]) -> tuple[Epilogue, list[LazyNode]]:
    """The epilogue of matmul ``mm`` fused into ``out``'s kernel, and the realized nodes it
    reads (``Epilogue.inputs`` in order). ``out`` is computed at the element (``mrow``,
    ``mcol``), ``mm`` read there as if it were a buffer: that load is the accumulator slot."""
    if out.dtype not in OUT_DTYPES:
        raise ValueError(f"a fused matmul epilogue stores one of {[d.name for d in OUT_DTYPES]}, "
                         f"not {out.dtype.name}")
    rows, cols = mm.shape
    b = _Builder(out, realized | {id(mm)})
    value = b.compute(out, [special(ROW, rows), special(COL, cols)])
    kernel = linearize(f"epilogue_{rows}_{cols}", [value], b.params, rows * cols, out.shape)
    slot = 1 + b.inputs.index(mm)               # mm's parameter number (0 is the output)
    acc = next(i for i, ins in enumerate(kernel.insts)
               if ins.op == "LOAD" and kernel.insts[ins.src[0]].arg[0] == slot)
    need = live(kernel, acc)
    inputs = tuple(sorted(ins.arg[0] for i, ins in enumerate(kernel.insts) if ins.op == "PARAM" and i in need))
    return Epilogue(kernel, acc, out.dtype, inputs), [b.inputs[k - 1] for k in inputs]


__all__ = ["lower", "const_value", "kernel_name", "kernel_reduces", "row_group", "is_fused_row",
           "fused_group", "fused_matmul", "lower_epilogue"]
