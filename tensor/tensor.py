"""The user-facing ``Tensor``: numpy-like, lazy. Operations build a graph; ``numpy()`` (or
``realize()``) schedules it into kernels and runs them on the tensor's device."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from . import device as devices
from .dtype import DType, bool_, float32, int32, promote, to_dtype
from .lazy import LazyNode, LazyView, const_view
from .ops import Op
from .runtime import Runtime
from .split import split_plan

LOG2_E = math.log2(math.e)
LN_2 = math.log(2.0)
Scalar = int | float | bool


def _scalar_dtype(x: Scalar) -> DType:
    return bool_ if isinstance(x, (bool, np.bool_)) else int32 if isinstance(x, (int, np.integer)) else float32


class Tensor:
    """A lazily evaluated n-d array on a device.

    ``Tensor(data, dtype=None, device=None)``: ``data`` is a numpy array, nested lists or a
    scalar. ``device`` is an hwdrv device name (``"nvidia:0"``, ``"mock:nvidia"``); by default
    ``HWDRV_DEVICE``, else a real GPU when present, else the mock."""

    __array_priority__ = 1000      # numpy scalars/arrays on the left defer to our operators

    def __init__(self, data: Any, dtype: DType | str | None = None, device: str | None = None):
        if isinstance(data, LazyView):
            self.lazy = data
            return
        rt = devices.runtime(device)
        if isinstance(data, Tensor):
            data = data.numpy()
        arr = np.asarray(data)
        dt = to_dtype(dtype) if dtype is not None else to_dtype(arr.dtype)
        node = LazyNode(rt, Op.BUFFER, dt, arr.shape)
        rt.upload(node, arr)
        self.lazy = LazyView(node)

    # ---- constructors ------------------------------------------------------------------
    @staticmethod
    def full(shape: Sequence[int] | int, value: Scalar, dtype: DType | str | None = None,
             device: str | None = None) -> "Tensor":
        """A tensor of ``shape`` filled with ``value`` (a broadcast constant: no memory until
        something realizes it)."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        dt = to_dtype(dtype) if dtype is not None else _scalar_dtype(value)
        return Tensor(const_view(devices.runtime(device), value, dt, shape))

    @staticmethod
    def zeros(*shape: Any, dtype: DType | str = float32, device: str | None = None) -> "Tensor":
        """A tensor of zeros."""
        return Tensor.full(_shape_args(shape), 0, dtype, device)

    @staticmethod
    def ones(*shape: Any, dtype: DType | str = float32, device: str | None = None) -> "Tensor":
        """A tensor of ones."""
        return Tensor.full(_shape_args(shape), 1, dtype, device)

    @staticmethod
    def arange(start: Scalar, stop: Scalar | None = None, step: Scalar = 1,
               dtype: DType | str | None = None, device: str | None = None) -> "Tensor":
        """Evenly spaced values in [start, stop), like ``np.arange``."""
        return Tensor(np.arange(start, stop, step) if stop is not None else np.arange(start),
                      dtype, device)

    @staticmethod
    def rand(*shape: Any, seed: int | None = None, dtype: DType | str = float32,
             device: str | None = None) -> "Tensor":
        """Uniform random values in [0, 1), generated on the host."""
        data = np.random.default_rng(seed).random(_shape_args(shape), dtype=np.float32)
        return Tensor(data, dtype, device)

    # ---- properties ----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.lazy.shape

    @property
    def dtype(self) -> DType:
        return self.lazy.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def runtime(self) -> Runtime:
        return self.lazy.device

    @property
    def device(self) -> str:
        """The name of the device this tensor lives on."""
        return self.runtime.name

    def __repr__(self) -> str:
        return f"<Tensor {list(self.shape)} {self.dtype.name} on {self.device}>"

    def __len__(self) -> int:
        return self.shape[0]

    # ---- realizing -----------------------------------------------------------------------
    def realize(self) -> "Tensor":
        """Compute this tensor's node now (kernels run on its device)."""
        if not self.lazy.node.realized:
            self.runtime.realize([self.lazy.node])
        return self

    def contiguous(self) -> "Tensor":
        """This tensor in its own row-major buffer (a copy kernel if it is a strided view)."""
        if self.lazy.st.contiguous:
            return self
        node = LazyNode(self.runtime, Op.CONTIGUOUS, self.dtype, self.shape, (self.lazy,))
        return Tensor(LazyView(node))

    def numpy(self) -> np.ndarray:
        """The values, as a numpy array (bfloat16 comes back as float32)."""
        t = self.contiguous().realize()
        # a contiguous view is a prefix of its node (e.g. x[:1] of a realized x)
        return t.runtime.download(t.lazy.node).reshape(-1)[:self.numel].reshape(self.shape)

    def item(self) -> Scalar:
        return self.numpy().item()

    def to(self, device: str) -> "Tensor":
        """This tensor on another device: device to device where both are on one machine
        (tensor/multi.py), through host memory otherwise."""
        from .multi import to_device
        return to_device(self, device)

    # ---- elementwise -------------------------------------------------------------------
    def _const(self, x: "Tensor | Scalar", dtype: DType | None = None) -> "Tensor":
        if isinstance(x, Tensor):
            return x
        return Tensor.full((), x, dtype or _scalar_dtype(x), self.device)

    def _operands(self, other: "Tensor | Scalar", reverse: bool = False) -> tuple["Tensor", "Tensor"]:
        """Both operands cast to their common dtype and broadcast to one shape. A python
        scalar takes the tensor's dtype unless its kind is higher (int tensor + 0.5 -> f32)."""
        if isinstance(other, Tensor):
            dt = promote(self.dtype, other.dtype)
            o = other
        else:
            sdt = _scalar_dtype(other)
            dt = self.dtype if {"bool": 0, "int": 1, "float": 2}[sdt.kind] <= \
                {"bool": 0, "int": 1, "float": 2}[self.dtype.kind] else sdt
            o = self._const(other, dt)
        a, b = self.cast(dt), o.cast(dt)
        a, b = _broadcast(a, b)
        return (b, a) if reverse else (a, b)

    def _alu(self, op: Op, *srcs: "Tensor") -> "Tensor":
        return Tensor(self.lazy.alu(op, *(s.lazy for s in srcs)))

    def cast(self, dtype: DType | str) -> "Tensor":
        """Values converted to ``dtype`` (floats to ints truncate, as numpy's astype)."""
        dt = to_dtype(dtype)
        return self if dt == self.dtype else Tensor(self.lazy.alu(Op.CAST, arg=dt))

    astype = cast

    def _float(self) -> "Tensor":
        return self if self.dtype.is_float else self.cast(float32)

    def __add__(self, o): a, b = self._operands(o); return a._alu(Op.ADD, b)  # noqa: E702
    def __radd__(self, o): a, b = self._operands(o, True); return a._alu(Op.ADD, b)  # noqa: E702
    def __sub__(self, o): a, b = self._operands(o); return a._alu(Op.SUB, b)  # noqa: E702
    def __rsub__(self, o): a, b = self._operands(o, True); return a._alu(Op.SUB, b)  # noqa: E702
    def __mul__(self, o): a, b = self._operands(o); return a._alu(Op.MUL, b)  # noqa: E702
    def __rmul__(self, o): a, b = self._operands(o, True); return a._alu(Op.MUL, b)  # noqa: E702

    def __truediv__(self, o: "Tensor | Scalar") -> "Tensor":
        a, b = self._operands(o)
        return a._float()._alu(Op.DIV, b._float())

    def __rtruediv__(self, o: "Tensor | Scalar") -> "Tensor":
        a, b = self._operands(o, True)
        return a._float()._alu(Op.DIV, b._float())

    def __neg__(self) -> "Tensor":
        if self.dtype == bool_:
            raise TypeError("negation of a bool tensor is not supported (numpy neither); use ~")
        return self._alu(Op.NEG)

    def __invert__(self) -> "Tensor":
        if self.dtype != bool_:
            raise TypeError("~ is supported on bool tensors only")
        return self == False  # noqa: E712

    def __lt__(self, o): a, b = self._operands(o); return a._alu(Op.CMPLT, b)  # noqa: E702
    def __gt__(self, o): a, b = self._operands(o); return b._alu(Op.CMPLT, a)  # noqa: E702
    def __le__(self, o): a, b = self._operands(o); return a._alu(Op.CMPLT, b)._alu(Op.ADD, a._alu(Op.CMPEQ, b))  # noqa: E501,E702
    def __ge__(self, o): a, b = self._operands(o); return b._alu(Op.CMPLT, a)._alu(Op.ADD, a._alu(Op.CMPEQ, b))  # noqa: E501,E702
    def __eq__(self, o): a, b = self._operands(o); return a._alu(Op.CMPEQ, b)  # type: ignore[override] # noqa: E702
    def __ne__(self, o): a, b = self._operands(o); return a._alu(Op.CMPNE, b)  # type: ignore[override] # noqa: E702
    __hash__ = object.__hash__

    def __matmul__(self, o: "Tensor") -> "Tensor":
        return self.matmul(o)

    def maximum(self, o: "Tensor | Scalar") -> "Tensor":
        """Elementwise maximum."""
        a, b = self._operands(o)
        return a._alu(Op.MAX, b)

    def minimum(self, o: "Tensor | Scalar") -> "Tensor":
        """Elementwise minimum."""
        a, b = self._operands(o)
        if a.dtype == bool_:
            return a._alu(Op.MUL, b)
        return -((-a).maximum(-b))

    def where(self, a: "Tensor | Scalar", b: "Tensor | Scalar") -> "Tensor":
        """``a`` where this tensor is true (nonzero), else ``b``."""
        if isinstance(a, Tensor):
            x, y = a._operands(b)
        elif isinstance(b, Tensor):
            y, x = b._operands(a)
        else:
            dt = promote(_scalar_dtype(a), _scalar_dtype(b))
            x, y = Tensor.full((), a, dt, self.device), Tensor.full((), b, dt, self.device)
        cond = self.cast(bool_)
        shape = _broadcast_shape(cond.shape, x.shape, y.shape)
        return cond.expand(shape)._alu(Op.WHERE, x.expand(shape), y.expand(shape))

    def abs(self) -> "Tensor":
        return self if self.dtype == bool_ else self._alu(Op.ABS)

    def exp(self) -> "Tensor":
        return (self._float() * LOG2_E)._alu(Op.EXP2)

    def exp2(self) -> "Tensor":
        return self._float()._alu(Op.EXP2)

    def log(self) -> "Tensor":
        return self._float()._alu(Op.LOG2) * LN_2

    def log2(self) -> "Tensor":
        return self._float()._alu(Op.LOG2)

    def sqrt(self) -> "Tensor":
        return self._float()._alu(Op.SQRT)

    def reciprocal(self) -> "Tensor":
        return self._float()._alu(Op.RECIP)

    def relu(self) -> "Tensor":
        return self.maximum(0)

    def sigmoid(self) -> "Tensor":
        return (1 + (-self._float()).exp()).reciprocal()

    def tanh(self) -> "Tensor":
        return 2 * (2 * self._float()).sigmoid() - 1

    # ---- reductions ----------------------------------------------------------------------
    def _axes(self, axis: int | Sequence[int] | None) -> tuple[int, ...]:
        if axis is None:
            return tuple(range(self.ndim))
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        return tuple(sorted({_norm_axis(a, self.ndim) for a in axes}))

    def _reduce(self, op: Op, axis: int | Sequence[int] | None, keepdim: bool,
                split: bool = True) -> "Tensor":
        """The reduce node; ``split=False`` keeps it one pass (a softmax's reduces, which its
        fused row kernel computes from registers)."""
        axes = self._axes(axis)
        plan = split_plan(self.shape, axes) if split else None
        out = Tensor(self.lazy.reduce(op, axes)) if plan is None else self._split_reduce(op, axes, *plan)
        if keepdim:
            return out
        return out.reshape(tuple(s for i, s in enumerate(self.shape) if i not in axes))

    def _split_reduce(self, op: Op, axes: tuple[int, ...], axis: int, parts: int) -> "Tensor":
        """The reduce of ``axes`` in two passes (see ``split.py``): ``axis`` cut into ``parts``
        slices (padded with the reduce's identity to a whole number of slices), each reduced,
        then the partial results. Kept dims, as ``LazyView.reduce`` gives them."""
        x, size = self, self.shape[axis]
        inner = -(-size // parts)
        if inner * parts != size:
            widths = [(0, 0)] * self.ndim
            widths[axis] = (0, inner * parts - size)
            identity = 0 if op == Op.SUM else -math.inf if self.dtype.is_float else -2**31
            x = x.pad(widths, identity)
        x = x.reshape(x.shape[:axis] + (parts, inner) + x.shape[axis + 1:])
        first = Tensor(x.lazy.reduce(op, tuple(a + 1 if a >= axis else a for a in axes)))
        second = Tensor(first.lazy.reduce(op, (axis,)))
        return second.reshape(tuple(1 if i in axes else s for i, s in enumerate(self.shape)))

    def sum(self, axis: int | Sequence[int] | None = None, keepdim: bool = False) -> "Tensor":
        """Sum over ``axis`` (all axes by default); bools and ints sum as int32."""
        x = self.cast(int32) if self.dtype == bool_ else self
        return x._reduce(Op.SUM, axis, keepdim)

    def max(self, axis: int | Sequence[int] | None = None, keepdim: bool = False) -> "Tensor":
        """Maximum over ``axis``."""
        if self.dtype == bool_:
            return self.cast(int32).max(axis, keepdim).cast(bool_)
        return self._reduce(Op.RMAX, axis, keepdim)

    def min(self, axis: int | Sequence[int] | None = None, keepdim: bool = False) -> "Tensor":
        """Minimum over ``axis``."""
        if self.dtype == bool_:
            return ~((~self).max(axis, keepdim))
        return -((-self).max(axis, keepdim))

    def mean(self, axis: int | Sequence[int] | None = None, keepdim: bool = False) -> "Tensor":
        """Mean over ``axis`` (ints and bools give float32)."""
        n = math.prod(self.shape[a] for a in self._axes(axis))
        return self._float().sum(axis, keepdim) * (1.0 / n if n else math.nan)

    def softmax(self, axis: int = -1) -> "Tensor":
        """exp(x - max) / sum(exp(x - max)) along ``axis``."""
        x = self._float()
        e = (x - x._reduce(Op.RMAX, axis, True, split=False)).exp()
        return e / e._reduce(Op.SUM, axis, True, split=False)

    def log_softmax(self, axis: int = -1) -> "Tensor":
        """x - max - log(sum(exp(x - max))) along ``axis`` (one fused row kernel over the last
        axis)."""
        x = self._float()
        shifted = x - x._reduce(Op.RMAX, axis, True, split=False)
        return shifted - shifted.exp()._reduce(Op.SUM, axis, True, split=False).log()

    # ---- movement ----------------------------------------------------------------------
    def reshape(self, *shape: Any) -> "Tensor":
        """The same elements in a new shape (one dimension may be -1)."""
        shape = list(_shape_args(shape))
        if shape.count(-1) > 1:
            raise ValueError("only one dimension can be -1")
        if -1 in shape:
            rest = math.prod(s for s in shape if s != -1)
            shape[shape.index(-1)] = self.numel // rest if rest else 0
        if math.prod(shape) != self.numel:
            raise ValueError(f"cannot reshape {self.shape} ({self.numel} elements) to {tuple(shape)}")
        return Tensor(self.lazy.reshape(tuple(shape)))

    def permute(self, *order: Any) -> "Tensor":
        """Dimensions reordered: result dim i is input dim ``order[i]``."""
        order = tuple(_norm_axis(a, self.ndim) for a in _shape_args(order))
        if sorted(order) != list(range(self.ndim)):
            raise ValueError(f"permute order {order} is not a permutation of {self.ndim} dims")
        return Tensor(self.lazy.permute(order))

    def transpose(self, a: int = -2, b: int = -1) -> "Tensor":
        order = list(range(self.ndim))
        a, b = _norm_axis(a, self.ndim), _norm_axis(b, self.ndim)
        order[a], order[b] = order[b], order[a]
        return self.permute(order)

    @property
    def T(self) -> "Tensor":
        """All dimensions reversed (numpy's ``.T``)."""
        return self.permute(tuple(reversed(range(self.ndim))))

    def expand(self, *shape: Any) -> "Tensor":
        """Size-1 dimensions broadcast to ``shape`` (-1 keeps a size); new leading dims allowed."""
        shape = _shape_args(shape)
        x = self.reshape((1,) * (len(shape) - self.ndim) + self.shape) if len(shape) > self.ndim else self
        new = tuple(s if n == -1 else n for s, n in zip(x.shape, shape))
        for s, n in zip(x.shape, new):
            if s != n and s != 1:
                raise ValueError(f"cannot expand {self.shape} to {shape}")
        return Tensor(x.lazy.expand(new))

    def pad(self, widths: Sequence[tuple[int, int]], value: Scalar = 0) -> "Tensor":
        """Padded with ``value``: ``widths[i] = (before, after)`` for dim i (numpy's np.pad)."""
        widths = tuple((int(b), int(a)) for b, a in widths)
        if len(widths) != self.ndim or any(b < 0 or a < 0 for b, a in widths):
            raise ValueError(f"pad widths {widths} must give (before, after) >= 0 for each of "
                             f"{self.ndim} dims")
        out = Tensor(self.lazy.pad(widths))
        if value == 0:
            return out
        inside = Tensor(Tensor.full(self.shape, True, bool_, self.device).lazy.pad(widths))
        return inside.where(out, value)

    def shrink(self, box: Sequence[tuple[int, int]]) -> "Tensor":
        """The sub-box ``box[i] = (start, stop)`` of each dim."""
        return Tensor(self.lazy.shrink(tuple((int(a), int(b)) for a, b in box)))

    def flip(self, axis: int | Sequence[int]) -> "Tensor":
        """Elements in reverse order along ``axis``."""
        axes = self._axes(axis)
        return Tensor(self.lazy.flip(axes))

    def __getitem__(self, idx: Any) -> "Tensor":
        """numpy basic indexing: ints, slices (any step), None and Ellipsis."""
        idx = idx if isinstance(idx, tuple) else (idx,)
        if sum(i is Ellipsis for i in idx) > 1:
            raise IndexError("an index can only have a single ellipsis")
        used = sum(1 for i in idx if i is not None and i is not Ellipsis)
        if used > self.ndim:
            raise IndexError(f"too many indices for a {self.ndim}-d tensor")
        if Ellipsis in idx:
            k = idx.index(Ellipsis)
            idx = idx[:k] + (slice(None),) * (self.ndim - used) + idx[k + 1:]
        else:
            idx = idx + (slice(None),) * (self.ndim - used)
        x, dim, out_shape = self, 0, []
        for i in idx:
            if i is None:
                out_shape.append(1)
                continue
            size = x.shape[dim]
            if isinstance(i, (int, np.integer)):
                j = int(i) + size if i < 0 else int(i)
                if not 0 <= j < size:
                    raise IndexError(f"index {i} is out of bounds for axis {dim} with size {size}")
                x = x._slice_dim(dim, j, j + 1, 1)
            elif isinstance(i, slice):
                start, stop, step = i.indices(size)
                x = x._slice_dim(dim, start, stop, step)
                out_shape.append(x.shape[dim])
            else:
                raise TypeError(f"unsupported index {i!r}: ints, slices, None and ... only")
            dim += 1
        return x.reshape(tuple(out_shape) + x.shape[dim:])

    def _slice_dim(self, dim: int, start: int, stop: int, step: int) -> "Tensor":
        x = self
        if step < 0:
            x = x.flip(dim)
            size = x.shape[dim]
            start, stop, step = size - 1 - start, size - 1 - stop, -step
        n = max(0, -(-(stop - start) // step))
        box = [(0, s) for s in x.shape]
        box[dim] = (start, start + n * step if n else start)
        x = x.shrink(box)
        if step == 1 or n == 0:
            return x
        # stride `step`: view as (n, step) and keep column 0
        if x.shape[dim] < n * step:
            w = [(0, 0)] * x.ndim
            w[dim] = (0, n * step - x.shape[dim])
            x = x.pad(w)
        x = x.reshape(x.shape[:dim] + (n, step) + x.shape[dim + 1:])
        box = [(0, s) for s in x.shape]
        box[dim + 1] = (0, 1)
        return x.shrink(box).reshape(x.shape[:dim] + (n,) + x.shape[dim + 2:])

    # ---- matmul ------------------------------------------------------------------------
    def matmul(self, o: "Tensor") -> "Tensor":
        """numpy's matmul. 2-D float matmuls run the tiled kernels of ``matmul.py`` (tensor
        cores for f16/bf16); other cases are a broadcast multiply and a sum."""
        a, b = self, o
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs tensors of at least 1 dimension")
        if a.ndim == 1:
            return (a.reshape(1, -1) @ b).reshape(b.shape[:-2] + b.shape[-1:])
        if b.ndim == 1:
            return (a @ b.reshape(-1, 1)).reshape(a.shape[:-1])
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul shapes {a.shape} and {b.shape} do not align")
        dt = promote(a.dtype, b.dtype)
        a, b = a.cast(dt), b.cast(dt)
        m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
        if a.ndim == 2 and b.ndim == 2 and dt.is_float and k > 0 and m * n > 0:
            node = LazyNode(self.runtime, Op.MATMUL, dt, (m, n),
                            (a.contiguous().lazy, b.contiguous().lazy))
            return Tensor(LazyView(node))
        batch = _broadcast_shape(a.shape[:-2], b.shape[:-2])
        a = a.reshape(a.shape[:-1] + (1, k)).expand(batch + (m, n, k))
        b = b.transpose(-2, -1).reshape(b.shape[:-2] + (1, n, k)).expand(batch + (m, n, k))
        return (a * b).sum(-1)


def _shape_args(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _norm_axis(a: int, ndim: int) -> int:
    if not -max(ndim, 1) <= a < max(ndim, 1):
        raise IndexError(f"axis {a} is out of range for {ndim} dims")
    return a % max(ndim, 1)


def _broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    n = max(len(s) for s in shapes)
    padded = [(1,) * (n - len(s)) + s for s in shapes]
    out = []
    for dims in zip(*padded):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {shapes} cannot be broadcast together")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _broadcast(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    shape = _broadcast_shape(a.shape, b.shape)
    return a.expand(shape), b.expand(shape)


def where(cond: Tensor, a: "Tensor | Scalar", b: "Tensor | Scalar") -> Tensor:
    """``a`` where ``cond`` is true, else ``b`` (numpy's np.where with three arguments)."""
    return cond.where(a, b)
