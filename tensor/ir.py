"""The kernel IR: a hash-consed expression graph, and its linear form.

Kernels are built as expression graphs of :class:`Node` (``node(...)`` builds one, simplified
on the way in by ``simplify.py``); :func:`linearize` orders a kernel's stores into a list of
:class:`Inst` with explicit loops, which a renderer turns into source text. Index arithmetic is
int32; every int node carries bounds (``vmin``/``vmax``) that the simplifier uses."""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any

from .dtype import DType, bool_, int32


class IrOp(Enum):
    """IR operations. ALU ops mirror the graph's; the rest say where values come from."""
    CONST = auto()        # arg: python value
    SPECIAL = auto()      # arg: (name, size[, group]) - "gidx": the global thread index; threads
                          # with gidx >= size exit at the start (the launch is rounded up to
                          # blocks). Row kernels (a group of threads per output): "row" is
                          # gidx // group, "lane" the thread's place in its group (size = group)
    RANGE = auto()        # arg: loop number; src: (end,) - a loop counter 0..end-1
    PARAM = auto()        # arg: (index, DType) - a buffer argument
    LOAD = auto()         # src: (param, index[, gate]) - gated loads read 0 where gate is false
    STORE = auto()        # src: (param, index, value[, gate]) - gated stores write only where true
    REDUCE = auto()       # arg: "sum"|"max"; src: (value, *ranges) - accumulate over ranges
    ALLREDUCE = auto()    # arg: ("sum"|"max", group); src: (value,) - combine the values of the
                          # ``group`` lanes of a row; every lane gets the result
    CAST = auto()         # arg: the logical target DType (rounding narrow floats)
    ADD = auto(); SUB = auto(); MUL = auto(); DIV = auto(); IDIV = auto(); MOD = auto()  # noqa: E702
    MAX = auto(); CMPLT = auto(); CMPEQ = auto(); CMPNE = auto(); AND = auto()  # noqa: E702
    NEG = auto(); EXP2 = auto(); LOG2 = auto(); SQRT = auto(); RECIP = auto(); ABS = auto()  # noqa: E702
    WHERE = auto()


ALU = {IrOp.ADD, IrOp.SUB, IrOp.MUL, IrOp.DIV, IrOp.IDIV, IrOp.MOD, IrOp.MAX, IrOp.CMPLT,
       IrOp.CMPEQ, IrOp.CMPNE, IrOp.AND, IrOp.NEG, IrOp.EXP2, IrOp.LOG2, IrOp.SQRT,
       IrOp.RECIP, IrOp.ABS, IrOp.WHERE, IrOp.CAST}


class Node:
    """One IR value. Built only through :func:`node`, so equal expressions are the same
    object (hash-consing makes CSE free and lets the simplifier compare by identity)."""
    __slots__ = ("op", "dtype", "src", "arg", "vmin", "vmax", "__weakref__")

    def __init__(self, op: IrOp, dtype: DType, src: tuple["Node", ...], arg: Any,
                 vmin: int | None, vmax: int | None):
        self.op, self.dtype, self.src, self.arg, self.vmin, self.vmax = op, dtype, src, arg, vmin, vmax

    def __repr__(self) -> str:
        return render_expr(self)

    # arithmetic sugar for building index expressions
    def __add__(self, o: "Node | int") -> "Node": return alu(IrOp.ADD, self, o)
    def __radd__(self, o: int) -> "Node": return alu(IrOp.ADD, o, self)
    def __mul__(self, o: "Node | int") -> "Node": return alu(IrOp.MUL, self, o)
    def __rmul__(self, o: int) -> "Node": return alu(IrOp.MUL, o, self)
    def __floordiv__(self, o: "Node | int") -> "Node": return alu(IrOp.IDIV, self, o)
    def __mod__(self, o: "Node | int") -> "Node": return alu(IrOp.MOD, self, o)
    def __lt__(self, o: "Node | int") -> "Node": return alu(IrOp.CMPLT, self, o)  # type: ignore[override]


_CACHE: "weakref.WeakValueDictionary[tuple, Node]" = weakref.WeakValueDictionary()


def _make(op: IrOp, dtype: DType, src: tuple[Node, ...], arg: Any) -> Node:
    key = (op, dtype, tuple(id(s) for s in src), arg)
    hit = _CACHE.get(key)
    if hit is not None and hit.src == src:
        return hit
    from .simplify import bounds
    lo, hi = bounds(op, dtype, src, arg)
    n = Node(op, dtype, src, arg, lo, hi)
    _CACHE[key] = n
    return n


def node(op: IrOp, dtype: DType, src: tuple[Node, ...] = (), arg: Any = None) -> Node:
    """Build (or find) a node; ALU nodes go through the simplifier first."""
    if op in ALU:
        from .simplify import simplify
        folded = simplify(op, dtype, src, arg)
        if folded is not None:
            return folded
    return _make(op, dtype, src, arg)


def const(value: Any, dtype: DType = int32) -> Node:
    """A constant of ``dtype`` (python value normalised to the dtype's kind)."""
    v = float(value) if dtype.is_float else bool(value) if dtype == bool_ else int(value)
    return _make(IrOp.CONST, dtype, (), v)


def as_node(x: "Node | int", like: DType = int32) -> Node:
    return x if isinstance(x, Node) else const(x, like)


_RESULT_BOOL = {IrOp.CMPLT, IrOp.CMPEQ, IrOp.CMPNE}


def alu(op: IrOp, *srcs: "Node | int | float") -> Node:
    """An ALU node; python numbers become constants of the first node operand's dtype."""
    like = next((s.dtype for s in srcs if isinstance(s, Node)), int32)
    if op == IrOp.WHERE:
        like = next((s.dtype for s in srcs[1:] if isinstance(s, Node)), like)
    src = tuple(s if isinstance(s, Node) else const(s, bool_ if op == IrOp.WHERE and i == 0
                                                    else like) for i, s in enumerate(srcs))
    dt = bool_ if op in _RESULT_BOOL else src[-1].dtype if op == IrOp.WHERE else src[0].dtype
    return node(op, dt, src)


def special(name: str, size: int, group: int | None = None) -> Node:
    """A hardware index in 0..size-1 (``gidx``: the global thread index of a 1-D launch; ``row``
    and ``lane``: see IrOp.SPECIAL)."""
    return _make(IrOp.SPECIAL, int32, (), (name, size) if group is None else (name, size, group))


def loop(number: int, end: int) -> Node:
    """A loop counter running 0..end-1."""
    return _make(IrOp.RANGE, int32, (const(end),), number)


def toposort(roots: list[Node]) -> list[Node]:
    """Every node reachable from ``roots``, sources before users."""
    seen: set[int] = set()
    order: list[Node] = []
    stack: list[tuple[Node, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            order.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        stack.extend((s, False) for s in reversed(n.src))
    return order


def render_expr(n: Node, depth: int = 6) -> str:
    """A short readable form of an expression (for errors and debugging)."""
    if n.op == IrOp.CONST:
        return repr(n.arg)
    if n.op == IrOp.SPECIAL:
        return n.arg[0]
    if n.op == IrOp.RANGE:
        return f"r{n.arg}"
    if n.op == IrOp.PARAM:
        return f"buf{n.arg[0]}"
    if depth == 0:
        return "..."
    return f"{n.op.name.lower()}({', '.join(render_expr(s, depth - 1) for s in n.src)})"


# ---- the linear form -------------------------------------------------------------------------

@dataclass
class Inst:
    """One instruction of a linear kernel. ``out`` names the value it defines (its index in
    the program); sources are indices of earlier instructions."""
    op: str               # an IrOp name, or "LOOP"/"ENDLOOP"/"ACC"/"ACCUM"
    dtype: DType
    src: tuple[int, ...]
    arg: Any = None

    def text(self, i: int) -> str:
        srcs = ", ".join(f"%{s}" for s in self.src)
        arg = "" if self.arg is None else f" [{self.arg}]"
        return f"%{i:<3} = {self.op.lower():<7} {self.dtype.name:<8} {srcs}{arg}"


@dataclass
class Kernel:
    """A linear kernel: its instructions, its buffer parameters (dtype per buffer, output
    first) and the number of threads to launch (one per output element)."""
    name: str
    insts: list[Inst]
    params: list[DType]
    threads: int
    shape: tuple[int, ...] = ()

    def text(self) -> str:
        """The IR as text: also the compile-cache key (two kernels that print the same are the
        same program)."""
        head = f"kernel {self.name} params={[p.name for p in self.params]} threads={self.threads}"
        return "\n".join([head] + [ins.text(i) for i, ins in enumerate(self.insts)])


def _local_order(roots: list[Node]) -> list[Node]:
    """Nodes reachable from ``roots`` without entering a REDUCE (a REDUCE is a leaf: its loop
    nest is emitted on its own), sources before users."""
    seen: set[int] = set()
    order: list[Node] = []
    stack: list[tuple[Node, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            order.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        if n.op != IrOp.REDUCE:
            stack.extend((s, False) for s in reversed(n.src))
    return order


def linearize(name: str, stores: list[Node], params: list[DType], threads: int,
              shape: tuple[int, ...]) -> Kernel:
    """Order the expression graph of ``stores`` into instructions.

    Loops: every REDUCE owns a nest of RANGE loops (its ``src[1:]``); stores that depend on
    ranges share one nest of their own (a row kernel's output loop). A node goes inside the
    innermost loop among the ranges it depends on (loop-invariant work is hoisted); a node
    that depends on none is emitted once, outside every loop, after whatever it reads - so a
    kernel may run several loop nests in sequence (a fused softmax: max, then sum, then the
    output loop), each reading the results of the ones before. A REDUCE becomes an
    accumulator defined before its loops, updated in the innermost one, read after them."""
    free: dict[int, frozenset[int]] = {}         # node id -> ids of the ranges it depends on
    for n in toposort(stores):
        if n.op == IrOp.RANGE:
            free[id(n)] = frozenset((id(n),))
        elif n.op == IrOp.REDUCE:
            free[id(n)] = frozenset()           # its value exists after its loops close
        else:
            free[id(n)] = frozenset().union(*(free[id(s)] for s in n.src))
    insts: list[Inst] = []
    where: dict[int, int] = {}

    def append(n: Node) -> None:
        insts.append(Inst(n.op.name, n.dtype, tuple(where[id(s)] for s in n.src), n.arg))
        where[id(n)] = len(insts) - 1

    def top(n: Node) -> None:
        """Emit ``n`` (which depends on no open loop) and what it needs, outside loops."""
        if id(n) in where:
            return
        if n.op == IrOp.REDUCE:
            nest([n.src[0]], list(n.src[1:]), n)
            return
        for s in n.src:
            top(s)
        append(n)

    def nest(roots: list[Node], loops: list[Node], red: Node | None) -> None:
        inside = _local_order(roots)
        for n in inside:
            if not free[id(n)]:
                top(n)
        level = {id(r): k for k, r in enumerate(loops, start=1)}
        if red is not None:
            insts.append(Inst("ACC", red.dtype, (), red.arg))
            acc = len(insts) - 1
        for k, r in enumerate(loops, start=1):
            top(r.src[0])
            insts.append(Inst("LOOP", int32, (where[id(r.src[0])],), r.arg))
            where[id(r)] = len(insts) - 1
            for n in inside:
                if n.op != IrOp.RANGE and free[id(n)] and max(level[i] for i in free[id(n)]) == k:
                    append(n)
        if red is not None:
            insts.append(Inst("ACCUM", red.dtype, (acc, where[id(red.src[0])]), red.arg))
        for r in reversed(loops):
            insts.append(Inst("ENDLOOP", int32, (where[id(r)],)))
        if red is not None:
            where[id(red)] = acc

    looped = [st for st in stores if free[id(st)]]
    if looped:
        ids = frozenset().union(*(free[id(st)] for st in looped))
        loops = sorted((n for n in toposort(looped) if id(n) in ids), key=lambda r: r.arg)
        nest(looped, loops, None)
    for st in stores:
        top(st)
    return Kernel(name, insts, params, threads, shape)


__all__ = ["IrOp", "Node", "Inst", "Kernel", "node", "const", "alu", "special", "loop",
           "linearize", "toposort"]
