"""Decode ir3 machine code with the generated isaspec tables (hwdrv.qcom.gen.ir3_isa).

This is the mock's own decoder: it reads the same generated facts as the backend's disassembler
but shares no code with it (mock independence). It follows Mesa's isaspec decoder
(src/compiler/isaspec/decode.c) where that matters for meaning: a word is matched against the leaf
bitsets of a root (exactly one may match), a field is looked up leaf-to-root through every case whose
<override> expression holds (the default case last), then through the parameters the parent passed
down, and bitset-typed fields decode recursively.
"""
from __future__ import annotations

from functools import lru_cache

from hwdrv.errors import MockFault
from hwdrv.qcom.gen import ir3_isa as ISA

GPU_ID = 630       # the mock is an A630 (Mesa's gpu_id); selects the a6xx encodings (e.g. ldg.a@600)
_SIGNED = ("int", "offset", "branch")


class DecodeError(MockFault):
    """An instruction word that no (or more than one) a6xx encoding matches."""


def _in_gen(b: dict) -> bool:
    lo, hi = b["gen"]
    return lo <= GPU_ID <= hi


@lru_cache(maxsize=None)
def _leaves(root: str) -> tuple[tuple[str, int, int, int], ...]:
    out = []
    for bid in ISA.ROOTS[root]:
        b = ISA.BITSETS[bid]
        if _in_gen(b):
            match, dontcare, mask = b["pattern"]
            out.append((bid, match, mask & ~dontcare, dontcare))
    return tuple(out)


@lru_cache(maxsize=None)
def _chain(bid: str) -> tuple[dict, ...]:
    out = []
    while bid is not None:
        b = ISA.BITSETS[bid]
        out.append(b)
        bid = b["extends"]
    return tuple(out)


@lru_cache(maxsize=None)
def _code(expr: str):
    return compile(ISA.EXPRS[expr][0], expr, "eval")


def _find(root: str, val: int) -> str:
    hits = [bid for bid, match, mask, _ in _leaves(root) if (val & mask) == match]
    if len(hits) != 1:
        what = "no encoding" if not hits else "several encodings (" + ", ".join(hits) + ")"
        raise DecodeError(f"{what} of {root} match {val:#x} on gpu_id {GPU_ID}")
    return hits[0]


class Scope:
    """One decoded bitset: the instruction, or a bitset-typed operand inside it.
    ``name`` is the bitset's name (the mnemonic for instructions, e.g. "add.f", "#multisrc-gpr" for
    operands); ``get(field)`` is the field's value: an int (signed for int/offset/branch fields) or a
    nested Scope for bitset-typed fields; ``has(field)`` says whether the field exists here."""

    def __init__(self, root: str, val: int, parent: "Scope | None" = None,
                 params: tuple[tuple[str, str], ...] = ()):
        self.val = val
        self.id = _find(root, val)
        self.name = ISA.BITSETS[self.id]["name"]
        self.parent, self.params = parent, params
        self._cache: dict[str, object] = {}
        self._stack: list[str] = []

    def _eval(self, expr: str) -> int:
        if expr in self._stack:          # Mesa's recursion guard: a self-reference reads as 0
            return 0
        self._stack.append(expr)
        try:
            return int(eval(_code(expr), {"v": self.raw, "gpu_id": GPU_ID}))
        finally:
            self._stack.pop()

    def _field(self, name: str) -> dict | None:
        for b in _chain(self.id):
            for case in b["cases"]:
                # while a case's own condition is being evaluated its fields are visible (Mesa's
                # find_field skips the evaluation of the expression on top of the stack)
                e = case["expr"]
                if e is not None and not (self._stack and self._stack[-1] == e) and not self._eval(e):
                    continue
                for f in case["fields"]:
                    if f["name"] == name:
                        return f
        return None

    def has(self, name: str) -> bool:
        if self._field(name) is not None:
            return True
        return any(child == name and self.parent is not None and self.parent.has(p) for p, child in self.params)

    def raw(self, name: str) -> int:
        """The field's unsigned bits (or derived value); a parameter from the parent if not here."""
        f = self._field(name)
        if f is None:
            for p, child in self.params:
                if child == name and self.parent is not None:
                    return self.parent.raw(p)
            raise DecodeError(f"{self.name}: no field {name!r} in {self.val:#x}")
        if f.get("expr"):
            return self._eval(f["expr"])
        width = f["high"] - f["low"] + 1
        return (self.val >> f["low"]) & ((1 << width) - 1)

    def get(self, name: str):
        if name in self._cache:
            return self._cache[name]
        f = self._field(name)
        if f is None:
            out = self.raw(name)
        elif f["type"] in ISA.ROOTS and not f.get("expr"):
            width = f["high"] - f["low"] + 1
            out = Scope(f["type"], (self.val >> f["low"]) & ((1 << width) - 1), self, tuple(f.get("params") or ()))
        else:
            out = self.raw(name)
            if f["type"] in _SIGNED:
                width = f["high"] - f["low"] + 1
                if out >> (width - 1):
                    out -= 1 << width
        self._cache[name] = out
        return out


def decode_word(word: int) -> Scope:
    """Decode one 64-bit instruction word."""
    return Scope("#instruction", word)
