"""The generated isaspec data (``hwdrv.qcom.gen.ir3_isa``) as linked objects with compiled expressions.

Everything here is derived from the generated module; nothing about individual instructions is
written by hand.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from ..gen import ir3_isa as G

MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Expr:
    """One isaspec <expr>: ``fields`` are read (all of them, in sorted order, as Mesa's generated C
    does) before the expression is evaluated."""
    name: str
    source: str
    fields: tuple[str, ...]
    fn: Callable[[dict, int], int]

    def __call__(self, values: dict[str, int], gpu_id: int) -> int:
        return self.fn(values, gpu_id)


@dataclass
class Field:
    name: str
    low: int
    high: int
    type: str
    display: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    expr: Expr | None = None          # derived field
    assert_val: int | None = None      # <assert> bits
    call: bool = False

    @property
    def width(self) -> int:
        return self.high - self.low + 1

    @property
    def is_bitset(self) -> bool:
        return self.type in G.ROOTS

    @property
    def is_enum(self) -> bool:
        return self.type in G.ENUMS


@dataclass
class Case:
    expr: Expr | None
    display: str | None
    fields: dict[str, Field]


@dataclass
class Bitset:
    id: str
    name: str
    parent: "Bitset | None"
    root: str
    size: int
    gen: tuple[int, int]
    leaf: bool
    match: int
    dontcare: int
    mask: int
    cases: list[Case] = field(default_factory=list)
    force: dict[str, int] = field(default_factory=dict)

    def matches(self, val: int, gpu_id: int) -> bool:
        return (self.gen[0] <= gpu_id <= self.gen[1]
                and (val & self.mask & ~self.dontcare) == self.match)

    def chain(self) -> tuple["Bitset", ...]:
        """This bitset and its ancestors, innermost first."""
        return self._chain

    def link(self, parent: "Bitset | None") -> None:
        self.parent = parent
        self._chain = (self,) + (parent.chain() if parent else ())


def _compile(name: str) -> Expr:
    source, fields = G.EXPRS[name]
    code = compile(source, f"<ir3 expr {name}>", "eval")

    def fn(values: dict, gpu_id: int, _code=code) -> int:
        return int(eval(_code, {"__builtins__": {}}, {"v": values.__getitem__, "gpu_id": gpu_id})) & MASK64

    return Expr(name, source, tuple(sorted(fields)), fn)


@lru_cache(maxsize=None)
def expr(name: str) -> Expr:
    return _compile(name)


def _field(f: dict) -> Field:
    return Field(f["name"], f["low"], f["high"], f["type"], f.get("display"),
                 tuple(tuple(p) for p in f.get("params", ())),
                 expr(f["expr"]) if "expr" in f else None, f.get("assert"), f.get("call", False))


@lru_cache(maxsize=None)
def bitsets() -> dict[str, Bitset]:
    """All bitsets by id, linked to their parents."""
    out: dict[str, Bitset] = {}
    for bid, b in G.BITSETS.items():
        m, d, k = b["pattern"]
        bs = Bitset(bid, b["name"], None, b["root"], G.BITSETS[b["root"]]["size"], tuple(b["gen"]), b["leaf"],
                    m, d, k, force=dict(b.get("force", {})))
        bs.cases = [Case(expr(c["expr"]) if c["expr"] else None, c["display"],
                         {f["name"]: _field(f) for f in c["fields"]}) for c in b["cases"]]
        out[bid] = bs
    def link(bid: str) -> None:        # parents are extended by name, which is unique for them
        b = out[bid]
        if not hasattr(b, "_chain"):
            parent_id = G.BITSETS[bid]["extends"]
            if parent_id:
                link(parent_id)
            b.link(out[parent_id] if parent_id else None)

    for bid in out:
        link(bid)
    return out


@lru_cache(maxsize=None)
def leaves(root: str) -> tuple[Bitset, ...]:
    """The leaf bitsets a value of type ``root`` decodes to (Mesa's root table, in its order)."""
    all_ = bitsets()
    return tuple(all_[i] for i in G.ROOTS[root])


def enum(name: str) -> dict[int, str]:
    return G.ENUMS[name]


def sign_extend(val: int, width: int) -> int:
    val &= (1 << width) - 1
    return val - (1 << width) if val >> (width - 1) else val
