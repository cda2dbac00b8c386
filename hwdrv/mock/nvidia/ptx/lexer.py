"""Tokenizer: PTX text -> a list of tokens with 1-based line numbers.

Comments (// and /* */) are dropped. Identifiers keep their dots (``ld.global.u32``,
``%tid.x``, ``.reg``) and ``::`` sub-qualifiers (``.shared::cta``); ``$`` and ``%`` may start
one. Directives written together (``.reg.b16``) become one token each. Numbers are classified here so the parser never re-scans text."""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .errors import PTXError


@dataclass(frozen=True)
class Token:
    kind: str        # 'id' | 'int' | 'float' | 'str' | 'op' | 'eof'
    text: str
    line: int
    value: object = None   # int for 'int'; ('f32'|'f64'|'dec', float) for 'float'


_TOKEN_RE = re.compile(r"""
    (?P<ws>[ \t\r\f\v]+)
  | (?P<nl>\n)
  | (?P<lc>//[^\n]*)
  | (?P<bc>/\*.*?\*/)
  | (?P<f32>0[fF][0-9a-fA-F]{8}(?![0-9a-zA-Z_]))
  | (?P<f64>0[dD][0-9a-fA-F]{16}(?![0-9a-zA-Z_]))
  | (?P<hex>0[xX][0-9a-fA-F]+[uU]?(?![0-9a-zA-Z_]))
  | (?P<bin>0[bB][01]+[uU]?(?![0-9a-zA-Z_]))
  | (?P<dec_f>(?:[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)(?![0-9a-zA-Z_]))
  | (?P<dec>[0-9]+[uU]?(?![0-9a-zA-Z_]))
  | (?P<id>[A-Za-z_$%.](?:[A-Za-z0-9_$.]|::)*)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<op><<|>>|&&|\|\||==|!=|<=|>=|[-+*/%&|^~!<>=(){}\[\];:,@?])
""", re.VERBOSE | re.DOTALL)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; raise PTXError on a character no PTX token can start with."""
    toks: list[Token] = []
    pos, line, n = 0, 1, len(text)
    match = _TOKEN_RE.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            raise PTXError(line, f"unexpected character {text[pos]!r}")
        kind, s = m.lastgroup, m.group()
        pos = m.end()
        if kind == "nl":
            line += 1
        elif kind in ("ws", "lc"):
            pass
        elif kind == "bc":
            line += s.count("\n")
        elif kind == "f32":
            toks.append(Token("float", s, line, ("f32", struct.unpack("<f", int(s[2:], 16).to_bytes(4, "little"))[0], int(s[2:], 16))))
        elif kind == "f64":
            toks.append(Token("float", s, line, ("f64", struct.unpack("<d", int(s[2:], 16).to_bytes(8, "little"))[0], int(s[2:], 16))))
        elif kind == "hex":
            toks.append(Token("int", s, line, int(s.rstrip("uU")[2:], 16)))
        elif kind == "bin":
            toks.append(Token("int", s, line, int(s.rstrip("uU")[2:], 2)))
        elif kind == "dec_f":
            toks.append(Token("float", s, line, ("dec", float(s), None)))
        elif kind == "dec":
            digits = s.rstrip("uU")
            # PTX follows C: a leading 0 means octal.
            base = 8 if len(digits) > 1 and digits[0] == "0" else 10
            try:
                toks.append(Token("int", s, line, int(digits, base)))
            except ValueError:
                raise PTXError(line, f"bad integer literal {s!r}") from None
        elif kind == "id" and s[0] == "." and "." in s[1:]:
            # `.reg.b16` (inline asm is written so): directives glued together are separate
            toks += [Token("id", "." + part, line) for part in s[1:].split(".")]
        else:
            toks.append(Token(kind, s, line))
    toks.append(Token("eof", "", line))
    return toks
