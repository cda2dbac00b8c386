"""Scheduling: which nodes of a lazy graph get their own buffer (and so their own kernel).

Rules, in order:
* targets (what the user asked for), CONTIGUOUS, MATMUL and the inputs of MATMUL are realized;
* elementwise nodes are never realized otherwise: their consumers recompute them inline, so an
  elementwise chain is one kernel and a reduce's elementwise prologue runs inside its loop;
* a reduce fuses into the kernel of its consumer (its elementwise epilogue) when every element
  it produces is used once on the way there: one consumer at each step, reached through
  contiguous views, elementwise ops only. A reduce read through a broadcast (softmax's max
  and sum) is realized, since inlining would recompute it per element;
* a kernel holds at most one reduce: extra ones are realized, farthest from the output first.
"""
from __future__ import annotations

from .lazy import LazyNode
from .ops import ELEMENTWISE, REDUCE, Op


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


def schedule(targets: list[LazyNode]) -> list[LazyNode]:
    """The nodes to realize for ``targets``, in an order where each one's inputs come first.
    Each becomes one kernel (see ``lower.py``); the others are computed inside them."""
    order, users = _graph(targets)
    keep: set[int] = {id(t) for t in targets if not t.realized}
    for n in order:
        if n.op in (Op.CONTIGUOUS, Op.MATMUL):
            keep.add(id(n))
        if n.op == Op.MATMUL:
            keep.update(id(s.node) for s in n.srcs if not s.node.realized)

    def fuses_upward(n: LazyNode) -> bool:
        """Every element of n is used once, elementwise, on the way to a realized node."""
        while id(n) not in keep:
            us = users.get(id(n), [])
            if len(us) != 1 or not us[0][1] or us[0][0].op not in ELEMENTWISE:
                return False
            n = us[0][0]
        return True

    for n in order:
        if n.op in REDUCE and id(n) not in keep:
            us = users.get(id(n), [])
            if not (len(us) == 1 and us[0][1] and us[0][0].op in ELEMENTWISE and fuses_upward(us[0][0])):
                keep.add(id(n))
    changed = True
    while changed:          # at most one reduce per kernel
        changed = False
        for n in order:
            if id(n) in keep:
                extra = _inlined_reduces(n, keep)[1:]
                if extra:
                    keep.add(id(extra[-1]))
                    changed = True
    return [n for n in order if id(n) in keep]
