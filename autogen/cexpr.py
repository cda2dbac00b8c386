"""Translate fully macro-expanded C integer expressions into Python expressions.

Used for indexed macros such as ``NVCBC0_QMDV04_00_RELEASE_ENABLE(i)``: the preprocessor expands the
macro with its parameters left as identifiers, this module turns the result into Python, and the
generator then checks the translation against gcc for several parameter values.
"""
from __future__ import annotations

import re

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*)
  | (?P<id>[A-Za-z_]\w*)
  | (?P<op><<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^~!<>()?:,])
""", re.X)

# Words that can make up a cast's type name.
_TYPE_WORDS = {"unsigned", "signed", "int", "long", "short", "char", "const", "volatile", "_Bool"}

_BINARY = {  # C precedence (higher binds tighter) -> python operator
    "*": (10, "*"), "/": (10, "//"), "%": (10, "%"),
    "+": (9, "+"), "-": (9, "-"),
    "<<": (8, "<<"), ">>": (8, ">>"),
    "<": (7, "<"), ">": (7, ">"), "<=": (7, "<="), ">=": (7, ">="),
    "==": (6, "=="), "!=": (6, "!="),
    "&": (5, "&"), "^": (4, "^"), "|": (3, "|"),
    "&&": (2, "and"), "||": (1, "or"),
}


class Untranslatable(ValueError):
    """The expression uses something this translator does not handle."""


def tokenize(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise Untranslatable(f"cannot tokenize {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def _int_literal(tok: str) -> int:
    t = tok.rstrip("uUlL")
    if t.lower().startswith("0x"):
        return int(t, 16)
    if len(t) > 1 and t.startswith("0"):
        return int(t, 8)
    return int(t)


class _Parser:
    def __init__(self, toks: list[tuple[str, str]], params: set[str], type_names: set[str]):
        self.toks, self.i, self.params, self.type_names = toks, 0, params, type_names

    def peek(self, k: int = 0) -> tuple[str, str] | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self, want: str | None = None) -> tuple[str, str]:
        t = self.peek()
        if t is None or (want is not None and t[1] != want):
            raise Untranslatable(f"expected {want!r}, got {t!r}")
        self.i += 1
        return t

    def _is_cast(self) -> int:
        """Length of a ``( type-name )`` cast at the cursor, or 0."""
        if self.peek() != ("op", "("):
            return 0
        j = 1
        while (t := self.peek(j)) and t[0] == "id" and (t[1] in _TYPE_WORDS or t[1] in self.type_names):
            j += 1
        if j > 1 and self.peek(j) == ("op", ")"):
            return j + 1
        return 0

    def expr(self, min_prec: int = 0) -> str:
        left = self.unary()
        while True:
            t = self.peek()
            if t is None:
                return left
            if t[1] == "?" and min_prec <= 0:
                self.take()
                a = self.expr(0)
                self.take(":")
                b = self.expr(0)
                left = f"({a} if {left} else {b})"
                continue
            if t[0] != "op" or t[1] not in _BINARY:
                return left
            prec, py = _BINARY[t[1]]
            if prec < min_prec or prec <= 0:
                return left
            self.take()
            right = self.expr(prec + 1)
            if py in ("<", ">", "<=", ">=", "==", "!="):
                left = f"int({left} {py} {right})"
            elif py in ("and", "or"):
                left = f"int(bool({left}) {py} bool({right}))"
            else:
                left = f"({left} {py} {right})"

    def unary(self) -> str:
        n = self._is_cast()
        if n:
            self.i += n
            return self.unary()
        t = self.take()
        if t[0] == "num":
            return str(_int_literal(t[1]))
        if t[0] == "id":
            if t[1] in self.params:
                return t[1]
            raise Untranslatable(f"unknown identifier {t[1]!r}")
        if t[1] == "(":
            e = self.expr(0)
            self.take(")")
            return e
        if t[1] == "-":
            return f"(-{self.unary()})"
        if t[1] == "+":
            return self.unary()
        if t[1] == "~":
            return f"(~{self.unary()})"
        if t[1] == "!":
            return f"int(not {self.unary()})"
        raise Untranslatable(f"unexpected token {t[1]!r}")


def to_python(text: str, params: list[str], type_names: set[str] = frozenset()) -> str:
    """Python source for the C integer expression ``text`` in terms of ``params``."""
    p = _Parser(tokenize(text), set(params), set(type_names))
    e = p.expr(0)
    if p.peek() is not None:
        raise Untranslatable(f"trailing tokens in {text!r}")
    return e


def split_bitrange(text: str) -> tuple[str, str] | None:
    """If ``text`` is a ``hi:lo`` range (optionally wrapped in ``MW(...)``), return (hi, lo) texts."""
    s = text.strip()
    m = re.match(r"^MW\s*\((.*)\)$", s, re.S)
    if m:
        s = m.group(1)
    depth, colon, question = 0, -1, False
    for k, ch in enumerate(s):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch == "?":
            question = True
        elif depth == 0 and ch == ":" and colon < 0:
            colon = k
    if colon < 0 or question:
        return None
    return s[:colon].strip(), s[colon + 1:].strip()
