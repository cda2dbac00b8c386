"""The IR simplifier: constant folding, identities, and the integer rules that make view index
arithmetic collapse (sums of scaled terms under ``//`` and ``%``), using each node's bounds."""
from __future__ import annotations

from typing import Any

from .dtype import DType, int32
from .ir import IrOp, Node, _make, const


def bounds(op: IrOp, dtype: DType, src: tuple[Node, ...], arg: Any) -> tuple[int | None, int | None]:
    """Inclusive value range of an int32 node, or (None, None) when unknown / not an int."""
    if dtype != int32:
        return None, None
    if op == IrOp.CONST:
        return arg, arg
    if op == IrOp.SPECIAL:
        return 0, arg[1] - 1
    if op == IrOp.RANGE:
        return 0, src[0].arg - 1
    if any(s.vmin is None for s in src if s.dtype == int32) or op == IrOp.WHERE:
        return None, None
    if op in (IrOp.ADD, IrOp.SUB, IrOp.MUL, IrOp.MAX):
        (a0, a1), (b0, b1) = (src[0].vmin, src[0].vmax), (src[1].vmin, src[1].vmax)
        if op == IrOp.ADD:
            return a0 + b0, a1 + b1
        if op == IrOp.SUB:
            return a0 - b1, a1 - b0
        if op == IrOp.MAX:
            return max(a0, b0), max(a1, b1)
        prods = (a0 * b0, a0 * b1, a1 * b0, a1 * b1)
        return min(prods), max(prods)
    if op in (IrOp.IDIV, IrOp.MOD) and src[1].op == IrOp.CONST and src[1].arg > 0 and src[0].vmin >= 0:
        c = src[1].arg
        if op == IrOp.IDIV:
            return src[0].vmin // c, src[0].vmax // c
        return (src[0].vmin, src[0].vmax) if src[0].vmax < c else (0, c - 1)
    return None, None


def _terms(x: Node) -> tuple[dict[Node, int], int]:
    """x as a linear form: {term: coefficient} plus a constant."""
    if x.op == IrOp.CONST:
        return {}, x.arg
    if x.op == IrOp.ADD:
        (ta, ca), (tb, cb) = _terms(x.src[0]), _terms(x.src[1])
        out = dict(ta)
        for t, k in tb.items():
            out[t] = out.get(t, 0) + k
        return {t: k for t, k in out.items() if k}, ca + cb
    if x.op == IrOp.MUL and x.src[1].op == IrOp.CONST:
        t, c = _terms(x.src[0])
        k = x.src[1].arg
        return ({s: v * k for s, v in t.items()} if k else {}), c * k
    return {x: 1}, 0


def _recombine(terms: dict[Node, int]) -> dict[Node, int]:
    """Undo unravelling: (x//c)*c*k + (x%c)*k -> x*k and ((x//a)%b)*a*k + (x%a)*k -> (x%(a*b))*k,
    repeated until nothing matches (a reshape's index chain folds back to one term)."""
    changed = True
    while changed:
        changed = False
        for m, k in list(terms.items()):
            if m.op != IrOp.MOD or m.src[1].op != IrOp.CONST or m not in terms:
                continue
            x, a = m.src[0], m.src[1].arg
            for t, kt in list(terms.items()):
                if kt != k * a:
                    continue
                if t.op == IrOp.IDIV and t.src[0] is x and t.src[1].arg == a:
                    merged = x
                elif (t.op == IrOp.IDIV and x.op == IrOp.IDIV and x.src[1].op == IrOp.CONST
                      and t.src[0] is x.src[0] and t.src[1].arg == x.src[1].arg * a):
                    merged = x          # (y//(d*a))*a + (y//d)%a == y//d
                elif (t.op == IrOp.MOD and t.src[1].op == IrOp.CONST and t.src[0].op == IrOp.IDIV
                      and t.src[0].src[0] is x and t.src[0].src[1].arg == a):
                    merged = _make(IrOp.MOD, int32, (x, const(a * t.src[1].arg)), None)
                else:
                    continue
                del terms[m], terms[t]
                terms[merged] = terms.get(merged, 0) + k
                changed = True
                break
    return {t: k for t, k in terms.items() if k}


def _from_terms(terms: dict[Node, int], c: int) -> Node:
    terms = _recombine(dict(terms))
    out: Node | None = None
    for t, k in sorted(terms.items(), key=lambda tk: -abs(tk[1])):
        term = t if k == 1 else _make(IrOp.MUL, int32, (t, const(k)), None)
        out = term if out is None else _make(IrOp.ADD, int32, (out, term), None)
    if out is None:
        return const(c)
    return out if c == 0 else _make(IrOp.ADD, int32, (out, const(c)), None)


def _sum(terms: dict[Node, int], c: int) -> Node:
    """Rebuild a linear form through the simplifier (so its bounds are known)."""
    from .ir import node
    out = const(c)
    for t, k in sorted(terms.items(), key=lambda tk: -abs(tk[1])):
        out = node(IrOp.ADD, int32, (out, node(IrOp.MUL, int32, (t, const(k)))))
    return out


_FOLD = {
    IrOp.ADD: lambda a, b: a + b, IrOp.SUB: lambda a, b: a - b, IrOp.MUL: lambda a, b: a * b,
    IrOp.MAX: max, IrOp.CMPLT: lambda a, b: a < b, IrOp.CMPEQ: lambda a, b: a == b,
    IrOp.CMPNE: lambda a, b: a != b, IrOp.AND: lambda a, b: a and b,
}


def simplify(op: IrOp, dtype: DType, src: tuple[Node, ...], arg: Any) -> Node | None:
    """A simpler node equal to ``op(src)``, or None to build it as is."""
    consts = all(s.op == IrOp.CONST for s in src)
    if consts and op in _FOLD:
        v = _FOLD[op](*(s.arg for s in src))
        if dtype.is_float and op not in (IrOp.CMPLT, IrOp.CMPEQ, IrOp.CMPNE):
            return None         # float folding would skip the device's rounding: keep it
        return const(v, dtype)
    if op == IrOp.WHERE and src[0].op == IrOp.CONST:
        return src[1] if src[0].arg else src[2]
    if op == IrOp.WHERE and src[1] is src[2]:
        return src[1]
    if op == IrOp.AND:
        for a, b in (src, src[::-1]):
            if a.op == IrOp.CONST:
                return b if a.arg else a
    if dtype != int32 or any(s.dtype != int32 for s in src):
        return None
    a = src[0]
    b = src[1] if len(src) > 1 else None
    if op in (IrOp.ADD, IrOp.SUB, IrOp.MUL) and b is not None:
        if op == IrOp.MUL and a.op == IrOp.CONST:
            a, b = b, a
        if op == IrOp.MUL and b.op != IrOp.CONST:
            return None
        ta, ca = _terms(a)
        if op == IrOp.MUL:
            k = b.arg
            return _from_terms({t: v * k for t, v in ta.items()} if k else {}, ca * k)
        tb, cb = _terms(b)
        sign = 1 if op == IrOp.ADD else -1
        out = dict(ta)
        for t, k in tb.items():
            out[t] = out.get(t, 0) + sign * k
        return _from_terms({t: k for t, k in out.items() if k}, ca + sign * cb)
    if op in (IrOp.IDIV, IrOp.MOD) and b is not None and b.op == IrOp.CONST and b.arg > 0:
        c = b.arg
        if c == 1:
            return a if op == IrOp.IDIV else const(0)
        if a.vmin is None or a.vmin < 0:
            return None
        if a.vmax < c:
            return const(0) if op == IrOp.IDIV else a
        if op == IrOp.IDIV and a.op == IrOp.IDIV and a.src[1].op == IrOp.CONST:
            return _make(IrOp.IDIV, int32, (a.src[0], const(a.src[1].arg * c)), None) \
                if a.src[0].vmin is not None and a.src[0].vmin >= 0 else None
        if op == IrOp.MOD and a.op == IrOp.MOD and a.src[1].op == IrOp.CONST and a.src[1].arg % c == 0:
            return simplify(IrOp.MOD, int32, (a.src[0], b), None) or \
                _make(IrOp.MOD, int32, (a.src[0], b), None)
        terms, k0 = _terms(a)
        if any(t.vmin is None or t.vmin < 0 for t in terms) or any(k < 0 for k in terms.values()):
            return None
        whole = {t: k // c for t, k in terms.items() if k % c == 0}
        rest = {t: k for t, k in terms.items() if k % c != 0}
        whole_c, rest_c = k0 // c, k0 % c
        if not whole and whole_c == 0:
            # e.g. (x*4 + y) // 8 with y < 4 and x < 2: nothing to split; bounds may still fold
            return None
        r = _sum(rest, rest_c)
        if op == IrOp.MOD:
            return _mod(r, c)
        from .ir import node
        q = _sum(whole, whole_c)
        return node(IrOp.ADD, int32, (q, node(IrOp.IDIV, int32, (r, const(c)))))
    return None


def _mod(r: Node, c: int) -> Node:
    from .ir import node
    return node(IrOp.MOD, int32, (r, const(c)))
