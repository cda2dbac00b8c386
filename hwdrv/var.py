"""Symbolic integers for patchable queues.

A queue verb argument may be a :class:`Var` or an expression built from one (``n + 1``,
``addr >> 8``, ``(n + 1) & 0xffffffff``). The queue records where the value landed and
``Queue.submit(n=...)`` rewrites only those words whose value changed.
"""
from __future__ import annotations

from typing import Callable, Mapping, Union

from .errors import InvalidArgument


class VarExpr:
    """An integer expression of exactly one :class:`Var`, evaluated at submit time."""

    __slots__ = ("var", "_fn", "_text")

    def __init__(self, var: "Var", fn: Callable[[int], int], text: str):
        self.var, self._fn, self._text = var, fn, text

    def eval(self, vals: Mapping[str, int]) -> int:
        """The expression's value given ``{var name: value}``."""
        try:
            v = vals[self.var.name]
        except KeyError:
            raise InvalidArgument(f"no value given for Var {self.var.name!r}: pass "
                                  f"submit({self.var.name}=...)") from None
        if not isinstance(v, int):
            raise InvalidArgument(f"Var {self.var.name!r} must be an int, got {type(v).__name__}")
        return self._fn(v)

    def _wrap(self, fn: Callable[[int], int], text: str) -> "VarExpr":
        inner = self._fn
        return VarExpr(self.var, lambda v: fn(inner(v)), text)

    def __add__(self, c: int) -> "VarExpr":
        _check_const(c, "+")
        return self._wrap(lambda x: x + c, f"({self._text} + {c})")

    __radd__ = __add__

    def __sub__(self, c: int) -> "VarExpr":
        _check_const(c, "-")
        return self._wrap(lambda x: x - c, f"({self._text} - {c})")

    def __rshift__(self, c: int) -> "VarExpr":
        _check_const(c, ">>")
        return self._wrap(lambda x: x >> c, f"({self._text} >> {c})")

    def __lshift__(self, c: int) -> "VarExpr":
        _check_const(c, "<<")
        return self._wrap(lambda x: x << c, f"({self._text} << {c})")

    def __and__(self, c: int) -> "VarExpr":
        _check_const(c, "&")
        return self._wrap(lambda x: x & c, f"({self._text} & {c:#x})")

    def __mul__(self, c: int) -> "VarExpr":
        _check_const(c, "*")
        return self._wrap(lambda x: x * c, f"({self._text} * {c})")

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return self._text


class Var(VarExpr):
    """A named integer supplied at ``submit(name=value)`` time."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidArgument(f"Var name must be a Python identifier (it is passed as a "
                                  f"keyword to submit()), got {name!r}")
        self.name = name
        super().__init__(self, lambda v: v, name)

    def __hash__(self) -> int:
        return hash(("Var", self.name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Var) and other.name == self.name


IntArg = Union[int, VarExpr]


def _check_const(c: object, op: str) -> None:
    if not isinstance(c, int) or isinstance(c, bool):
        raise InvalidArgument(f"Var expressions take integer constants; got {c!r} for {op!r}")
