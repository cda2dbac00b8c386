"""A light reading of PTX text for the mock compiler (:mod:`hwdrv.nvidia.mockcubin`): module
directives, ``.entry`` declarations and their parameters, launch bounds, state-space variables,
each entry's body, and an estimate of the registers an entry keeps live.

Parameters sit at their natural alignment (or their ``.align``) from offset 0 of the parameter
block, as ptxas lays them out in constant bank 0 (checked against ptxas in tests/test_cubin.py).
This is not a PTX parser: the mock GPU parses the text it finds in GPU memory itself.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from ..errors import ProgramError
from .kernelinfo import ParamInfo

# Sizes of the PTX fundamental types a kernel parameter may have (PTX ISA, "Fundamental Types").
PTX_TYPE_SIZES: dict[str, int] = {
    **{f".{k}8": 1 for k in "bus"}, **{f".{k}16": 2 for k in "busf"}, ".bf16": 2,
    **{f".{k}32": 4 for k in "busf"}, ".f16x2": 4, ".bf16x2": 4,
    **{f".{k}64": 8 for k in "busf"}, ".pred": 1, ".b128": 16,
}
STATE_SPACES = (".const", ".global", ".local", ".shared")

_ENTRY_RE = re.compile(rb"(?:(?:\.visible|\.weak)\s+)?\.entry\s+([A-Za-z_$%][\w$]*)")
_DIRECTIVE_RE = re.compile(rb"\.(version|target|address_size)\s+([^\n;]*)")
_DIM_RE = re.compile(rb"\.(maxntid|reqntid)\s+(\d+)(?:\s*,\s*(\d+))?(?:\s*,\s*(\d+))?")
_PARAM_NAME_RE = re.compile(r"([A-Za-z_$%][\w$]*)\s*(?:\[\s*(\d+)\s*\])?$")


def blank_comments(raw: bytes) -> bytes:
    """``raw`` with every comment (``//`` to end of line, ``/* */``) replaced by spaces of the
    same length, newlines kept, so byte offsets into the result are offsets into ``raw``.
    Quoted strings (``.file 1 "a//b.cu"``) are left alone."""
    out = bytearray(raw)
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == 0x22:  # '"'
            end = raw.find(b'"', i + 1)
            i = n if end < 0 else end + 1
        elif raw.startswith(b"//", i):
            end = raw.find(b"\n", i)
            end = n if end < 0 else end
            out[i:end] = b" " * (end - i)
            i = end
        elif raw.startswith(b"/*", i):
            end = raw.find(b"*/", i + 2)
            if end < 0:
                raise ProgramError(f"PTX: comment opened at byte {i} is never closed")
            end += 2
            out[i:end] = bytes(b if b == 0x0A else 0x20 for b in raw[i:end])
            i = end
        else:
            i += 1
    return bytes(out)


@dataclass(frozen=True)
class PtxEntry:
    """Where one ``.entry`` is in PTX text (offsets relative to the text)."""
    name: str
    offset: int            # start of the declaration (linkage directive included)
    params_text: str       # between the parentheses, comments blanked
    header_end: int        # offset of the body's '{'


def scan_entries(raw: bytes) -> tuple[dict[str, str], list[PtxEntry]]:
    """Module directives (``version``, ``target``, ``address_size``) and entry declarations
    of PTX text; ProgramError on an entry whose declaration is malformed."""
    text = blank_comments(raw)
    directives: dict[str, str] = {}
    for m in _DIRECTIVE_RE.finditer(text):
        directives.setdefault(m.group(1).decode(), m.group(2).decode("utf-8", "replace").strip())
    entries: list[PtxEntry] = []
    for m in _ENTRY_RE.finditer(text):
        name = m.group(1).decode()
        body = text.find(b"{", m.end())
        if body < 0:
            raise ProgramError(f"PTX: .entry {name} at byte {m.start()} has no body '{{'")
        params = ""
        head = text[m.end():body]
        stripped = head.lstrip()
        if stripped.startswith(b"("):
            open_at = m.end() + len(head) - len(stripped)
            close_at = text.find(b")", open_at)
            if close_at < 0 or close_at > body:
                raise ProgramError(f"PTX: parameter list of .entry {name} (byte {open_at}) is "
                                   f"not closed before its body")
            params = text[open_at + 1:close_at].decode("utf-8", "replace")
        entries.append(PtxEntry(name, m.start(), params, body))
    return directives, entries


def parse_params(entry: str, text: str) -> tuple[tuple[ParamInfo, ...], int]:
    """Parameters of one entry from the text between its parentheses: each at its natural
    alignment (``.align N`` before the type overrides it), offsets from 0. Returns the
    parameters and the block size (end of the last one)."""
    params: list[ParamInfo] = []
    offset = 0
    for ordinal, decl in enumerate(d.strip() for d in text.split(",")):
        if not decl:
            if text.strip():
                raise ProgramError(f"PTX .entry {entry}: empty parameter declaration in "
                                   f"({text.strip()})")
            break
        p = _parse_param(entry, ordinal, decl)
        offset = (offset + p.align - 1) // p.align * p.align
        params.append(ParamInfo(**{**p.__dict__, "offset": offset}))
        offset += p.size
    return tuple(params), offset


def _parse_param(entry: str, ordinal: int, decl: str) -> ParamInfo:
    tokens = decl.split()
    where = f"PTX .entry {entry} parameter {ordinal} ({decl!r})"
    if not tokens or tokens[0] != ".param":
        raise ProgramError(f"{where}: expected '.param'")
    align: int | None = None
    ptype = ""
    pointer, space, pointee_align = False, "", None
    i = 1
    while i < len(tokens) - 1:
        t = tokens[i]
        if t == ".align":
            if i + 1 >= len(tokens) - 1 or not tokens[i + 1].isdigit():
                raise ProgramError(f"{where}: .align needs a number")
            n = int(tokens[i + 1])
            if n <= 0 or n & (n - 1):
                raise ProgramError(f"{where}: alignment {n} is not a power of two")
            # `.align` after `.ptr` is the pointee's alignment, before the type the parameter's.
            if pointer:
                pointee_align = n
            else:
                align = n
            i += 2
            continue
        if t == ".ptr":
            pointer = True
        elif t in STATE_SPACES and pointer:
            space = t[1:]
        elif t in PTX_TYPE_SIZES and not ptype:
            ptype = t
        else:
            raise ProgramError(f"{where}: unsupported token {t!r}")
        i += 1
    if not ptype:
        raise ProgramError(f"{where}: no parameter type (one of {', '.join(PTX_TYPE_SIZES)})")
    m = _PARAM_NAME_RE.match(tokens[-1]) if len(tokens) > 1 else None
    if m is None:
        raise ProgramError(f"{where}: cannot read the parameter name")
    count = int(m.group(2)) if m.group(2) is not None else None
    if count == 0:
        raise ProgramError(f"{where}: array of 0 elements")
    elem = PTX_TYPE_SIZES[ptype]
    align = max(align or elem, 1)
    return ParamInfo(offset=0, size=elem * (count or 1), name=m.group(1), ordinal=ordinal,
                     type=ptype, align=align, count=count, pointer=pointer, pointee_space=space,
                     pointee_align=pointee_align)


def _dims(header: bytes) -> tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]:
    found: dict[str, tuple[int, int, int]] = {}
    for m in _DIM_RE.finditer(header):
        found[m.group(1).decode()] = (int(m.group(2)), int(m.group(3) or 1), int(m.group(4) or 1))
    return found.get("maxntid"), found.get("reqntid")


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProgramError(f"PTX text is not UTF-8 (byte {e.start}: {e.reason})") from None
