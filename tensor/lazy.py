"""The lazy graph: :class:`LazyNode` is one computed value (an op over sources) in contiguous
layout; :class:`LazyView` is how a tensor sees a node (a ShapeTracker over it). Elementwise
ops and reductions make new nodes; movement ops make new views of the same node."""
from __future__ import annotations

import math
from typing import Any

from .dtype import DType, bool_
from .ops import COMPARE, ELEMENTWISE, REDUCE, Op
from .view import ShapeTracker


class LazyNode:
    """A value to compute: ``op`` over ``srcs`` (views of other nodes), with ``arg``.
    ``buffer`` is set once it is realized (its values are in device memory)."""

    def __init__(self, device: Any, op: Op, dtype: DType, shape: tuple[int, ...],
                 srcs: tuple["LazyView", ...] = (), arg: Any = None):
        self.device, self.op, self.dtype, self.shape = device, op, dtype, tuple(shape)
        self.srcs, self.arg = srcs, arg
        self.buffer: Any = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def realized(self) -> bool:
        return self.buffer is not None

    def realize_as(self, buffer: Any) -> None:
        """Keep ``buffer`` as this node's value and drop the graph that computed it."""
        self.buffer, self.srcs = buffer, ()

    def __repr__(self) -> str:
        return f"<LazyNode {self.op.name} {self.dtype.name}{list(self.shape)}>"


class LazyView:
    """A tensor's value: node ``node`` seen through ``st``."""

    def __init__(self, node: LazyNode, st: ShapeTracker | None = None):
        self.node = node
        self.st = st if st is not None else ShapeTracker.contiguous_of(node.shape)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.st.shape

    @property
    def dtype(self) -> DType:
        return self.node.dtype

    @property
    def device(self) -> Any:
        return self.node.device

    # ---- building new nodes ------------------------------------------------------------
    def alu(self, op: Op, *others: "LazyView", arg: Any = None) -> "LazyView":
        """An elementwise op over views of the same shape."""
        assert op in ELEMENTWISE, op
        srcs = (self, *others)
        if any(s.shape != self.shape for s in srcs):
            raise ValueError(f"{op.name}: shapes {[s.shape for s in srcs]} differ")
        if op in COMPARE:
            dt = bool_
        elif op == Op.CAST:
            dt = arg
        else:
            dt = srcs[-1].dtype
        return LazyView(LazyNode(self.device, op, dt, self.shape, srcs, arg))

    def reduce(self, op: Op, axes: tuple[int, ...]) -> "LazyView":
        """Reduce ``axes`` (kept with size 1)."""
        assert op in REDUCE, op
        shape = tuple(1 if i in axes else s for i, s in enumerate(self.shape))
        return LazyView(LazyNode(self.device, op, self.dtype, shape, (self,), tuple(sorted(axes))))

    # ---- movement: new views of the same node ------------------------------------------
    def reshape(self, shape: tuple[int, ...]) -> "LazyView":
        return self if tuple(shape) == self.shape else LazyView(self.node, self.st.reshape(tuple(shape)))

    def permute(self, order: tuple[int, ...]) -> "LazyView":
        return LazyView(self.node, self.st.permute(tuple(order)))

    def expand(self, shape: tuple[int, ...]) -> "LazyView":
        return self if tuple(shape) == self.shape else LazyView(self.node, self.st.expand(tuple(shape)))

    def pad(self, widths: tuple[tuple[int, int], ...]) -> "LazyView":
        return LazyView(self.node, self.st.pad(tuple(widths)))

    def flip(self, axes: tuple[int, ...]) -> "LazyView":
        return LazyView(self.node, self.st.flip(tuple(axes)))

    def shrink(self, box: tuple[tuple[int, int], ...]) -> "LazyView":
        return LazyView(self.node, self.st.shrink(tuple(box)))


def const_view(device: Any, value: Any, dtype: DType, shape: tuple[int, ...]) -> LazyView:
    """A scalar constant broadcast to ``shape`` (costs no memory: stride-0 view)."""
    node = LazyNode(device, Op.CONST, dtype, (), arg=value)
    return LazyView(node).reshape((1,) * len(shape)).expand(tuple(shape))
