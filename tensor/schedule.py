"""Scheduling: which nodes of a lazy graph get their own buffer (and so their own kernel).

Rules, in order:
* targets (what the user asked for), CONTIGUOUS, MATMUL and the inputs of MATMUL are realized;
* elementwise nodes are never realized otherwise: their consumers recompute them inline, so an
  elementwise chain is one kernel and a reduce's elementwise prologue runs inside its loop;
* a reduce fuses into the kernel of its consumer (its elementwise epilogue) when every element
  it produces is used once on the way there: one consumer at each step, reached through
  contiguous views, elementwise ops only;
* row fusion: a reduce over the last axis read back through a broadcast over that axis
  (softmax's max and sum, log-softmax, x - mean) fuses into the one elementwise output of the
  row shape that all its uses lead to: that kernel is a *fused row kernel* (``lower.py``), a
  group of threads per row computing every such reduce of the row and then the row's outputs,
  so softmax is one launch. Other reduces read through a broadcast are realized, since
  inlining would recompute them per element;
* a kernel holds at most one reduce (a fused row kernel: any number of row reduces): extra
  ones are realized, farthest from the output first;
* matmul epilogues (when the caller says the device's matmul kernel takes them): a MATMUL whose
  value is used only per element - all its uses, and theirs, elementwise nodes of its shape
  reading contiguously, up to one realized node with no reduce in its kernel - is not
  realized: that node's kernel is the matmul with the chain applied to its accumulators
  (``matmul_epilogue.py``). Bias, residual and other inputs of the chain may be read through
  any view. A MATMUL asked for itself, or an input of another MATMUL, stays realized.
"""
from __future__ import annotations

from typing import Callable

from .lazy import LazyNode, LazyView
from .ops import ELEMENTWISE, REDUCE, Op
from .view import strides_for


def _graph(targets: list[LazyNode]) -> tuple[list[LazyNode], dict[int, list[tuple[LazyNode, bool]]]]:
    """Unrealized nodes reachable from ``targets`` (sources first) and, per node, its consumers
    with whether each reads it through a contiguous view."""
    order: list[LazyNode] = []
    users: dict[int, list[tuple[LazyNode, bool]]] = {}
    seen: set[int] = set()
    stack: list[tuple[LazyNode, bool]] = [(t, False) for t in targets]
    while stack:
        n, done = stack.pop()
        if done:
            order.append(n)
            continue
        if id(n) in seen or n.realized:
            continue
        seen.add(id(n))
        stack.append((n, True))
        for src in n.srcs:
            users.setdefault(id(src.node), []).append((n, src.st.contiguous))
            stack.append((src.node, False))
    return order, users


def _inlined_reduces(root: LazyNode, keep: set[int]) -> list[LazyNode]:
    """Reduces computed inside ``root``'s kernel, nearest to the output first."""
    found, frontier, seen = [], [root], set()
    while frontier:
        nxt = []
        for n in frontier:
            for src in n.srcs:
                m = src.node
                if m.realized or id(m) in keep or id(m) in seen:
                    continue
                seen.add(id(m))
                if m.op in REDUCE:
                    found.append(m)
                nxt.append(m)
        frontier = nxt
    return ([root] if root.op in REDUCE else []) + found


def _row_broadcast(v: LazyView, shape: tuple[int, ...]) -> bool:
    """``v`` reads a node of ``shape[:-1] + (1,)`` (contiguous) broadcast over the last axis
    to ``shape``: element (..., c) is the row's one value."""
    st, n = v.st, v.node
    if len(st.views) != 1 or n.shape != shape[:-1] + (1,):
        return False
    view = st.views[0]
    return view.shape == shape and view.offset == 0 and view.mask is None and \
        view.strides == strides_for(n.shape)


def _row_target(red: LazyNode, keep: set[int],
                users: dict[int, list[tuple[LazyNode, bool]]]) -> LazyNode | None:
    """The kept node whose fused row kernel can compute reduce ``red``, or None.

    ``red`` must reduce the last axis of a source of shape S. Walking its uses: elementwise
    nodes of its own shape (S with last axis 1) read contiguously stay per-row values; an
    elementwise node of shape S reading a per-row value through a row broadcast starts the
    per-element part, which continues through contiguous elementwise uses (and feeds other row
    reduces, which get the same check) up to exactly one kept elementwise node of shape S."""
    shape = red.srcs[0].shape
    if len(shape) == 0 or shape[-1] < 2 or red.arg != (len(shape) - 1,):
        return None
    targets: set[int] = set()
    found: LazyNode | None = None
    per_row, per_elem, seen = [red], [], {id(red)}
    while per_row or per_elem:
        if per_row:
            m = per_row.pop()
            for u, contiguous in users.get(id(m), []):
                if u.op not in ELEMENTWISE or id(u) in keep and u.shape != shape:
                    return None
                if u.shape == m.shape and contiguous:
                    nxt = per_row
                elif u.shape == shape and any(s.node is m and _row_broadcast(s, shape) for s in u.srcs):
                    nxt = per_elem
                else:
                    return None
                if id(u) not in seen:
                    seen.add(id(u))
                    nxt.append(u)
            continue
        m = per_elem.pop()
        if id(m) in keep:
            targets.add(id(m))
            found = m
            continue
        for u, contiguous in users.get(id(m), []):
            if not contiguous or u.op not in ELEMENTWISE | REDUCE:
                return None
            if u.op in REDUCE:
                if u.arg != red.arg or u.srcs[0].shape != shape:
                    return None
                continue                # its own check decides; it is per-row, like red
            if u.shape != shape:
                return None
            if id(u) not in seen:
                seen.add(id(u))
                per_elem.append(u)
    return found if len(targets) == 1 else None


def _epilogue_output(mm: LazyNode, keep: set[int],
                     users: dict[int, list[tuple[LazyNode, bool]]]) -> LazyNode | None:
    """The one kept node that every use of ``mm`` leads to through elementwise nodes of its
    shape, each reading the one before contiguously (so that node's kernel computes each of them
    once per element, at the accumulator's own position: ``x * sigmoid(x)`` qualifies); or None."""
    found: LazyNode | None = None
    frontier, seen = [mm], {id(mm)}
    while frontier:
        for u, contiguous in users.get(id(frontier.pop()), []):
            if not contiguous or u.op not in ELEMENTWISE or u.shape != mm.shape:
                return None
            if id(u) in keep:
                if found is not None and found is not u:
                    return None
                found = u
            elif id(u) not in seen:
                seen.add(id(u))
                frontier.append(u)
    return found


FuseMatmul = Callable[[LazyNode, LazyNode], bool]
"""Whether the device's kernel for a MATMUL (first argument) can apply an epilogue storing the
second argument's values (its dtype)."""


def schedule(targets: list[LazyNode], fuse_matmul: FuseMatmul | None = None) -> list[LazyNode]:
    """The nodes to realize for ``targets``, in an order where each one's inputs come first.
    Each becomes one kernel (see ``lower.py``); the others are computed inside them.
    ``fuse_matmul``: fuse matmul epilogues where it allows (None: never)."""
    order, users = _graph(targets)
    keep: set[int] = {id(t) for t in targets if not t.realized}
    pinned = set(keep)                  # realized whatever their consumers: targets, matmul inputs
    for n in order:
        if n.op in (Op.CONTIGUOUS, Op.MATMUL):
            keep.add(id(n))
        if n.op == Op.MATMUL:
            inputs = {id(s.node) for s in n.srcs if not s.node.realized}
            keep.update(inputs)
            pinned.update(inputs)

    def fuses_upward(n: LazyNode) -> bool:
        """Every element of n is used once, elementwise, on the way to a realized node."""
        while id(n) not in keep:
            us = users.get(id(n), [])
            if len(us) != 1 or not us[0][1] or us[0][0].op not in ELEMENTWISE:
                return False
            n = us[0][0]
        return True

    row_fused: dict[int, int] = {}        # reduce id -> id of its fused row kernel's output
    for n in order:
        if n.op in REDUCE and id(n) not in keep:
            us = users.get(id(n), [])
            if len(us) == 1 and us[0][1] and us[0][0].op in ELEMENTWISE and fuses_upward(us[0][0]):
                continue
            target = _row_target(n, keep, users)
            if target is not None:
                row_fused[id(n)] = id(target)
            else:
                keep.add(id(n))
    changed = True
    while changed:          # at most one reduce per kernel, any number in a fused row kernel
        changed = False
        for n in order:
            if id(n) in keep:
                reds = _inlined_reduces(n, keep)
                if reds and n.op not in REDUCE and all(row_fused.get(id(r)) == id(n) for r in reds):
                    continue
                extra = reds[1:]
                if extra:
                    keep.add(id(extra[-1]))
                    changed = True
    if fuse_matmul is not None:
        fused: set[int] = set()         # kernels that took a matmul (one each)
        for n in order:
            if n.op != Op.MATMUL or id(n) in pinned:
                continue
            out = _epilogue_output(n, keep, users)
            if out is None or id(out) in fused or _inlined_reduces(out, keep) or not fuse_matmul(n, out):
                continue
            keep.discard(id(n))
            fused.add(id(out))
    return [n for n in order if id(n) in keep]
