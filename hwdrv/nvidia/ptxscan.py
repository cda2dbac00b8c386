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
from dataclasses import dataclass

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


def launch_dims(header: bytes) -> tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]:
    """``.maxntid`` and ``.reqntid`` of an entry declaration (None where absent)."""
    found: dict[str, tuple[int, int, int]] = {}
    for m in _DIM_RE.finditer(header):
        found[m.group(1).decode()] = (int(m.group(2)), int(m.group(3) or 1), int(m.group(4) or 1))
    return found.get("maxntid"), found.get("reqntid")


def decode_utf8(raw: bytes) -> str:
    """``raw`` as text; ProgramError naming the first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProgramError(f"PTX text is not UTF-8 (byte {e.start}: {e.reason})") from None


# ---- state-space variables, bodies, registers ---------------------------------------------------

_PARAM_DECL_RE = re.compile(rb"\.param\s+([^;()]*);")
_DECL_RE = re.compile(rb"((?:\.(?:visible|extern|weak)\s+)*)\.(global|const|shared|local)\s+([^;]*);")
_FUNC_RE = re.compile(rb"(?:(?:\.visible|\.weak|\.extern)\s+)*\.(?:func|entry)\b")
_REG_DECL_RE = re.compile(rb"\.reg\s+((?:\.v\d\s+)?\.\w+)\s+([^;]*);")
_REG_USE_RE = re.compile(rb"%[A-Za-z_$][\w$]*")
_LABEL_RE = re.compile(rb"^\s*([A-Za-z_$][\w$]*)\s*:")
_BRANCH_RE = re.compile(rb"\bbra(?:\.uni)?\s+([A-Za-z_$][\w$]*)")
_SYMBOL_RE = re.compile(r"[A-Za-z_$%][\w$]*$")
_VAR_NAME_RE = re.compile(r"([A-Za-z_$%][\w$]*)((?:\s*\[\s*\d*\s*\])*)$")
_NUMBER_RE = re.compile(r"-?(?:0[fF][0-9a-fA-F]{8}|0[dD][0-9a-fA-F]{16}|0[xX][0-9a-fA-F]+|\d+\.\d*(?:[eE][-+]?\d+)?"
                        r"|\d+[eE][-+]?\d+|\d+)$")


@dataclass(frozen=True)
class PtxVariable:
    """A state-space variable declaration (``.global``/``.const``/``.shared``/``.local``).
    ``size`` is 0 for an unsized ``.extern`` array; ``init`` holds the initial bytes (zero padded to
    ``size``) of an initialised variable; ``symbol_inits`` the (byte offset, name) of each element
    initialised with a symbol's address (``{_Z4addfii, ...}``), zero in ``init`` until a writer
    resolves it."""
    name: str
    space: str
    size: int
    align: int
    init: bytes | None = None
    extern: bool = False
    symbol_inits: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class PtxFunction:
    """Where a ``.func``/``.entry`` definition is: ``start`` (its first directive) to ``end``
    (just past its closing brace), ``body`` (just inside the braces)."""
    name: str
    is_entry: bool
    start: int
    body: int
    end: int


def matching_brace(text: bytes, open_at: int) -> int:
    """Offset of the ``}`` closing the ``{`` at ``open_at`` (comments already blanked)."""
    depth = 0
    for i in range(open_at, len(text)):
        c = text[i]
        if c == 0x7B:
            depth += 1
        elif c == 0x7D:
            depth -= 1
            if depth == 0:
                return i
    raise ProgramError(f"PTX: '{{' at byte {open_at} is never closed")


def functions(text: bytes) -> list[PtxFunction]:
    """Every ``.func``/``.entry`` that has a body, in text order (``text`` comment-blanked)."""
    out: list[PtxFunction] = []
    pos = 0
    while True:
        m = _FUNC_RE.search(text, pos)
        if m is None:
            return out
        semi, brace = text.find(b";", m.end()), text.find(b"{", m.end())
        if brace < 0 or 0 <= semi < brace:          # a prototype: no body
            pos = m.end() if semi < 0 else semi + 1
            continue
        close = matching_brace(text, brace)
        head = text[m.end():brace]
        is_entry = text[m.start():m.end()].endswith(b"entry")
        name = _function_name(head)
        out.append(PtxFunction(name, is_entry, m.start(), brace + 1, close + 1))
        pos = close + 1


def _function_name(head: bytes) -> str:
    # `.func (.param .b32 r) name (...)`: the name is the first identifier outside parentheses
    depth, word = 0, bytearray()
    for c in head:
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
        elif depth == 0 and c < 0x80 and (chr(c).isalnum() or c in b"_$%"):
            word.append(c)          # PTX identifiers are ASCII (a stray byte ends the name)
        elif word:
            break
    return word.decode("ascii")


def module_variables(text: bytes) -> list[PtxVariable]:
    """State-space variables declared outside every function body (``text`` comment-blanked)."""
    spans = [(f.start, f.end) for f in functions(text)]
    return [v for at, v in _declarations(text) if not any(a <= at < b for a, b in spans)]


def body_variables(text: bytes, fn: PtxFunction) -> list[PtxVariable]:
    """State-space variables declared inside ``fn``'s body."""
    return [v for _, v in _declarations(text[fn.body:fn.end - 1])]


def body_call_slots(text: bytes, fn: PtxFunction) -> list[PtxVariable]:
    """``.param`` variables declared inside ``fn``'s body (the argument and return slots of its
    call sequences; ``.callprototype`` lines declare none)."""
    body = text[fn.body:fn.end - 1]
    out = []
    for m in _PARAM_DECL_RE.finditer(body):
        line = body[body.rfind(b"\n", 0, m.start()) + 1:m.start()].rstrip()
        if line and line[-1:] not in (b";", b"{", b"}"):
            continue
        out.append(_variable("param", b"", m.group(1).decode()))
    return out


def _declarations(text: bytes):
    for m in _DECL_RE.finditer(text):
        line = text[text.rfind(b"\n", 0, m.start()) + 1:m.start()].rstrip()
        if line and line[-1:] not in (b";", b"{", b"}"):
            continue               # `.global` inside a statement (`ld.global`, `.ptr .global`)
        yield m.start(), _variable(m.group(2).decode(), m.group(1), m.group(3).decode())


def _variable(space: str, linkage: bytes, decl: str) -> PtxVariable:
    where = f"PTX .{space} declaration {decl.strip()!r}"
    head, _, init_text = decl.partition("=")
    tokens = head.split()
    align, vec, ptype = None, 1, ""
    i = 0
    while i < len(tokens) and (tokens[i] in PTX_TYPE_SIZES or tokens[i] in (".align", ".v2", ".v4", ".v8")):
        t = tokens[i]
        if t == ".align":
            if i + 1 >= len(tokens) or not tokens[i + 1].isdigit():
                raise ProgramError(f"{where}: .align needs a number")
            align = int(tokens[i + 1])
            i += 2
            continue
        if t in (".v2", ".v4", ".v8"):
            vec = int(t[2:])
        else:
            ptype = t
        i += 1
    if not ptype:
        raise ProgramError(f"{where}: no type (one of {', '.join(PTX_TYPE_SIZES)})")
    m = _VAR_NAME_RE.match(" ".join(tokens[i:]).strip())
    if m is None:
        raise ProgramError(f"{where}: cannot read the variable name")
    elem = PTX_TYPE_SIZES[ptype] * vec
    dims = re.findall(r"\[\s*(\d*)\s*\]", m.group(2))
    count, unsized = 1, False
    for d in dims:
        if d == "":
            unsized = True
        else:
            count *= int(d)
    values = _initializer(where, init_text) if init_text.strip() else None
    size = 0 if unsized else elem * count
    if values is not None and unsized:
        size = PTX_TYPE_SIZES[ptype] * len(values)
    symbols = tuple((k * PTX_TYPE_SIZES[ptype], v) for k, v in enumerate(values or ()) if _SYMBOL_RE.match(v))
    if symbols and PTX_TYPE_SIZES[ptype] != 8:
        raise ProgramError(f"{where}: address initializers need a 64-bit element type")
    numbers = [("0" if _SYMBOL_RE.match(v) else v) for v in values] if values is not None else None
    init = _init_bytes(where, ptype, numbers, size) if numbers is not None else None
    return PtxVariable(m.group(1), space, size, align or elem, init, extern=b".extern" in linkage,
                       symbol_inits=symbols)


def _initializer(where: str, text: str) -> list[str]:
    items = [t.strip() for t in text.replace("{", ",").replace("}", ",").split(",")]
    values = [t for t in items if t]
    for v in values:
        if not _NUMBER_RE.match(v) and not _SYMBOL_RE.match(v):
            raise ProgramError(f"{where}: initializer {v!r} is neither a number nor a symbol (generic() "
                               f"and symbol+offset initializers are not supported by the mock compiler)")
    return values


def _init_bytes(where: str, ptype: str, values: list[str], size: int) -> bytes:
    n = PTX_TYPE_SIZES[ptype]
    out = bytearray()
    for v in values:
        neg = v.startswith("-")
        body = v[1:] if neg else v
        if body[:2] in ("0f", "0F", "0d", "0D"):
            raw = int(body[2:], 16)
            fmt = "<f" if body[1] in "fF" else "<d"
            value: float | int = struct.unpack(fmt, raw.to_bytes(4 if fmt == "<f" else 8, "little"))[0]
            value = -value if neg else value
        elif body[:2] in ("0x", "0X"):
            value = -int(body, 16) if neg else int(body, 16)
        elif any(c in body for c in ".eE"):
            value = float(v)
        else:
            value = int(v)
        if ptype.startswith(".f"):
            fmt = {2: "<e", 4: "<f", 8: "<d"}[n]
            out += struct.pack(fmt, float(value))
        elif isinstance(value, float):
            raise ProgramError(f"{where}: float initializer {v} for an integer variable")
        else:
            out += (value & ((1 << (8 * n)) - 1)).to_bytes(n, "little")
    if len(out) > size:
        raise ProgramError(f"{where}: initializer has {len(out)} bytes for a {size}-byte variable")
    return bytes(out) + bytes(size - len(out))


def layout(variables: list[PtxVariable]) -> tuple[dict[str, int], int]:
    """Offsets of ``variables`` placed in declaration order at their alignment, and the end."""
    out, off = {}, 0
    for v in variables:
        off = (off + v.align - 1) // v.align * v.align
        out[v.name] = off
        off += v.size
    return out, off


def estimate_registers(body: bytes) -> int:
    """32-bit registers ``body`` keeps live at once: each declared register lives from its first
    to its last mention (stretched over a loop it is live across), 64-bit ones count twice,
    predicates not at all. Within a factor of three of what ptxas allocates
    on the committed test kernels (tests/test_cubin_mock.py)."""
    words: dict[bytes, int] = {}
    arrays: dict[bytes, int] = {}
    for m in _REG_DECL_RE.finditer(body):
        w = _reg_words(m.group(1).split())
        for name in (n.strip() for n in m.group(2).split(b",")):
            arr = re.match(rb"(%?[A-Za-z_$][\w$]*)<(\d+)>$", name)
            if arr:
                arrays[arr.group(1)] = w
            elif name:
                words[name] = w
    stmts = [s for s in body.split(b";")]
    first: dict[bytes, int] = {}
    last: dict[bytes, int] = {}
    labels: dict[bytes, int] = {}
    branches: list[tuple[int, bytes]] = []
    for i, s in enumerate(stmts):
        if s.lstrip().startswith(b".reg"):
            continue
        for lm in _LABEL_RE.finditer(s):
            labels[lm.group(1)] = i
        for bm in _BRANCH_RE.finditer(s):
            branches.append((i, bm.group(1)))
        for um in _REG_USE_RE.finditer(s):
            r = um.group(0)
            if r not in words:
                pm = re.match(rb"(%?[A-Za-z_$][\w$]*?)(\d+)$", r)
                if pm is None or pm.group(1) not in arrays:
                    continue
                words.setdefault(r, arrays[pm.group(1)])
            first.setdefault(r, i)
            last[r] = i
    loops = [(labels[t], i) for i, t in branches if t in labels and labels[t] <= i]
    # A register live into a loop (mentioned before its top and inside it) survives the back
    # edge: it stays live to the loop's bottom. Twice, for loops nested in loops.
    for _ in range(2):
        for top, bottom in loops:
            for r in first:
                if first[r] < top <= last[r]:
                    last[r] = max(last[r], bottom)
    delta = [0] * (len(stmts) + 1)
    for r, a in first.items():
        delta[a] += words[r]
        delta[last[r] + 1] -= words[r]
    live = peak = 0
    for d in delta:
        live += d
        peak = max(peak, live)
    return peak


def _reg_words(type_tokens: list[bytes]) -> int:
    vec = 1
    size = 0
    for t in type_tokens:
        t = t.decode()
        if t in (".v2", ".v4", ".v8"):
            vec = int(t[2:])
        elif t == ".pred":
            return 0
        elif t in PTX_TYPE_SIZES:
            size = PTX_TYPE_SIZES[t]
    return max(1, size // 4) * vec if size else 1


def without_other_entries(raw: bytes, text: bytes, keep: str) -> bytes:
    """``raw`` PTX with every ``.entry`` definition but ``keep``'s removed (``text`` is ``raw``
    comment-blanked): the text a mock ``.text.<keep>`` section holds."""
    out, pos = bytearray(), 0
    for f in functions(text):
        if f.is_entry and f.name != keep:
            out += raw[pos:f.start]
            pos = f.end
    out += raw[pos:]
    return bytes(out)
