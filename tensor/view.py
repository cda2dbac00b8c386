"""Views: how a tensor's elements map onto its base's contiguous memory.

A :class:`View` is shape + strides + offset + an optional mask (the in-bounds box left by
``pad``: outside it, elements read as zero). A :class:`ShapeTracker` is a stack of views, used
when a reshape cannot be expressed on the last view. Movement ops only build new trackers;
``index`` turns a tracker into IR index arithmetic for the kernel that reads it."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .dtype import bool_
from .ir import IrOp, Node, alu, const


def strides_for(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major strides of ``shape`` (0 for size-1 dimensions, which never move the index)."""
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc if s != 1 else 0)
        acc *= s
    return tuple(reversed(out))


@dataclass(frozen=True)
class View:
    """One affine map from an index in ``shape`` to an element offset."""
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int = 0
    mask: tuple[tuple[int, int], ...] | None = None

    @staticmethod
    def contiguous_of(shape: tuple[int, ...]) -> "View":
        return View(tuple(shape), strides_for(tuple(shape)))

    @property
    def contiguous(self) -> bool:
        return self.offset == 0 and self.mask is None and self.strides == strides_for(self.shape)

    def permute(self, order: tuple[int, ...]) -> "View":
        return View(tuple(self.shape[i] for i in order), tuple(self.strides[i] for i in order),
                    self.offset, None if self.mask is None else tuple(self.mask[i] for i in order))

    def expand(self, shape: tuple[int, ...]) -> "View":
        mask = None if self.mask is None else tuple(
            m if s == n else ((0, n) if m != (0, 0) else (0, 0))
            for m, s, n in zip(self.mask, self.shape, shape))
        return View(tuple(shape), tuple(st if s == n else 0 for st, s, n in
                                        zip(self.strides, self.shape, shape)), self.offset, mask)

    def flip(self, axes: tuple[int, ...]) -> "View":
        offset = self.offset + sum((self.shape[a] - 1) * self.strides[a] for a in axes)
        strides = tuple(-st if i in axes else st for i, st in enumerate(self.strides))
        mask = None if self.mask is None else tuple(
            (s - hi, s - lo) if i in axes else (lo, hi)
            for i, ((lo, hi), s) in enumerate(zip(self.mask, self.shape)))
        return View(self.shape, strides, offset, mask)

    def shrink(self, box: tuple[tuple[int, int], ...]) -> "View":
        offset = self.offset + sum(lo * st for (lo, _), st in zip(box, self.strides))
        mask = None
        if self.mask is not None:
            mask = tuple((max(0, mlo - lo), max(0, min(mhi, hi) - lo))
                         for (mlo, mhi), (lo, hi) in zip(self.mask, box))
        return View(tuple(hi - lo for lo, hi in box), self.strides, offset, mask)

    def pad(self, widths: tuple[tuple[int, int], ...]) -> "View":
        old = self.mask or tuple((0, s) for s in self.shape)
        mask = tuple((mlo + b, mhi + b) for (mlo, mhi), (b, _) in zip(old, widths))
        offset = self.offset - sum(b * st for (b, _), st in zip(widths, self.strides))
        shape = tuple(s + b + a for s, (b, a) in zip(self.shape, widths))
        return View(shape, self.strides, offset, mask)

    def reshape(self, shape: tuple[int, ...]) -> "View | None":
        """The same elements in ``shape`` as one view, or None if that needs a second view."""
        if self.contiguous:
            return View.contiguous_of(shape)
        if tuple(s for s in self.shape if s != 1) == tuple(s for s in shape if s != 1):
            # only size-1 dimensions appear or vanish: carry strides/mask of the others
            kept = [i for i, s in enumerate(self.shape) if s != 1]
            strides, mask, k = [], [], 0
            dropped_mask_empty = self.mask is not None and any(
                self.mask[i] == (0, 0) for i, s in enumerate(self.shape) if s == 1)
            if dropped_mask_empty:
                return None
            for s in shape:
                if s == 1:
                    strides.append(0)
                    mask.append((0, 1))
                else:
                    i = kept[k]
                    k += 1
                    strides.append(self.strides[i])
                    mask.append(self.mask[i] if self.mask is not None else (0, s))
            return View(tuple(shape), tuple(strides), self.offset,
                        tuple(mask) if self.mask is not None else None)
        return None

    def index(self, idxs: list[Node]) -> tuple[Node, Node]:
        """(element offset, in-bounds bool) of the element at ``idxs``."""
        flat: Node = const(self.offset)
        valid: Node = const(True, bool_)
        for i, st, s in zip(idxs, self.strides, self.shape):
            if st != 0 and s != 1:
                flat = flat + i * st
        if self.mask is not None:
            for i, (lo, hi), s in zip(idxs, self.mask, self.shape):
                if lo > 0:
                    valid = alu(IrOp.AND, valid, alu(IrOp.CMPLT, const(lo - 1), i))
                if hi < s:
                    valid = alu(IrOp.AND, valid, alu(IrOp.CMPLT, i, const(hi)))
        return flat, valid


def unravel(flat: Node, shape: tuple[int, ...]) -> list[Node]:
    """Per-dimension indices of a row-major flat index."""
    out, acc = [], 1
    for s in reversed(shape):
        out.append(const(0) if s == 1 else (flat // acc) % s)
        acc *= s
    return list(reversed(out))


@dataclass(frozen=True)
class ShapeTracker:
    """A stack of views, outermost (the tensor's own shape) last."""
    views: tuple[View, ...]

    @staticmethod
    def contiguous_of(shape: tuple[int, ...]) -> "ShapeTracker":
        return ShapeTracker((View.contiguous_of(tuple(shape)),))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.views[-1].shape

    @property
    def contiguous(self) -> bool:
        """True when element i of this view is element i of the base."""
        return len(self.views) == 1 and self.views[0].contiguous

    def _with(self, v: View) -> "ShapeTracker":
        return ShapeTracker(self.views[:-1] + (v,))

    def permute(self, order: tuple[int, ...]) -> "ShapeTracker":
        return self._with(self.views[-1].permute(order))

    def expand(self, shape: tuple[int, ...]) -> "ShapeTracker":
        return self._with(self.views[-1].expand(shape))

    def flip(self, axes: tuple[int, ...]) -> "ShapeTracker":
        return self._with(self.views[-1].flip(axes))

    def shrink(self, box: tuple[tuple[int, int], ...]) -> "ShapeTracker":
        return self._with(self.views[-1].shrink(box))

    def pad(self, widths: tuple[tuple[int, int], ...]) -> "ShapeTracker":
        return self._with(self.views[-1].pad(widths))

    def reshape(self, shape: tuple[int, ...]) -> "ShapeTracker":
        if math.prod(shape) != math.prod(self.shape):
            raise ValueError(f"cannot reshape {self.shape} to {shape}")
        v = self.views[-1].reshape(tuple(shape))
        return self._with(v) if v is not None else \
            ShapeTracker(self.views + (View.contiguous_of(tuple(shape)),))

    def index(self, idxs: list[Node]) -> tuple[Node, Node]:
        """(offset into the base, in-bounds bool) of the element at ``idxs``."""
        flat, valid = self.views[-1].index(idxs)
        for v in reversed(self.views[:-1]):
            inner, ok = v.index(unravel(flat, v.shape))
            flat, valid = inner, alu(IrOp.AND, valid, ok)
        return flat, valid
