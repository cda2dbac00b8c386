"""The mock NVIDIA binary format ("PTX image") and the loader's choice between it and a cubin.

A PTX image (docs/internals.md, "Mock NVIDIA binary format") is ``b"HWDRV-PTX\\0"``, the UTF-8
PTX module text, and one NUL. For kernel ``k`` the program address is ``image_va +
text_offset`` where ``text_offset`` is the byte offset, inside the image, of the declaration
``.entry k`` -- or of its linkage directive when it has one (``.visible .entry k`` starts at
``.visible``). The mock GPU finds the image header by scanning back from that address.

:class:`PtxImage` reads the ``.entry`` declarations and their parameters so that the same
argument packing works from PTX metadata as from cubin metadata: every parameter sits at its
natural alignment (or its ``.align``) starting at offset 0 of the parameter block, which begins at
0x210 of constant bank 0 (the sm_90 layout).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ProgramError
from .cubin import PARAM_BASE_BY_SM, CubinImage, KernelInfo, ParamInfo, lookup_kernel

PTX_IMAGE_MAGIC = b"HWDRV-PTX\0"
ELF_MAGIC = b"\x7fELF"
MOCK_SM = 90   # the mock NVIDIA GPU models an sm_90 (H100): its constant-bank layout is sm_90's

# Sizes of the PTX fundamental types a kernel parameter may have (PTX ISA, "Fundamental Types").
PTX_TYPE_SIZES: dict[str, int] = {
    **{f".{k}8": 1 for k in "bus"}, **{f".{k}16": 2 for k in "busf"}, ".bf16": 2,
    **{f".{k}32": 4 for k in "busf"}, ".f16x2": 4, ".bf16x2": 4,
    **{f".{k}64": 8 for k in "busf"}, ".pred": 1,
}
STATE_SPACES = (".const", ".global", ".local", ".shared")

_ENTRY_RE = re.compile(rb"(?:(?:\.visible|\.weak)\s+)?\.entry\s+([A-Za-z_$%][\w$]*)")
_DIRECTIVE_RE = re.compile(rb"\.(version|target|address_size)\s+([^\n;]*)")
_DIM_RE = re.compile(rb"\.(maxntid|reqntid)\s+(\d+)(?:\s*,\s*(\d+))?(?:\s*,\s*(\d+))?")
_PARAM_NAME_RE = re.compile(r"([A-Za-z_$%][\w$]*)\s*(?:\[\s*(\d+)\s*\])?$")


def make_ptx_image(ptx_text: str | bytes) -> bytes:
    """Wrap PTX module text as a PTX image: magic, UTF-8 text, NUL."""
    raw = ptx_text.encode("utf-8") if isinstance(ptx_text, str) else bytes(ptx_text)
    nul = raw.find(b"\0")
    if nul >= 0:
        raise ProgramError(f"PTX text contains a NUL byte (at {nul}); a PTX image ends at the "
                           f"first NUL")
    _decode(raw)
    return PTX_IMAGE_MAGIC + raw + b"\0"


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


class PtxImage:
    """A parsed PTX image. ``kernels`` maps each ``.entry`` name to a :class:`KernelInfo` whose
    ``text_offset`` is the entry's byte offset inside the image (header included) and whose
    parameters come from the PTX declaration. ``version``/``target``/``address_size`` are the
    module directives (empty when absent)."""

    def __init__(self, binary: bytes | bytearray | memoryview):
        data = bytes(binary)
        if not data.startswith(PTX_IMAGE_MAGIC):
            raise ProgramError(f"not a PTX image: it does not start with {PTX_IMAGE_MAGIC!r}")
        if not data.endswith(b"\0") or len(data) == len(PTX_IMAGE_MAGIC):
            raise ProgramError("truncated PTX image: it must end with a NUL after the PTX text")
        raw = data[len(PTX_IMAGE_MAGIC):-1]
        nul = raw.find(b"\0")
        if nul >= 0:
            raise ProgramError(f"malformed PTX image: NUL inside the PTX text at image byte "
                               f"{len(PTX_IMAGE_MAGIC) + nul}")
        self.text = _decode(raw)
        self.image_size = len(data)
        directives, entries = scan_entries(raw)
        self.version = directives.get("version", "")
        self.target = directives.get("target", "")
        self.address_size = directives.get("address_size", "")
        self.sm = MOCK_SM
        self.kernels: dict[str, KernelInfo] = {}
        header = len(PTX_IMAGE_MAGIC)
        text_b = blank_comments(raw)
        for n, e in enumerate(entries):
            if e.name in self.kernels:
                raise ProgramError(f"PTX image declares .entry {e.name} twice")
            params, size = parse_params(e.name, e.params_text)
            end = entries[n + 1].offset if n + 1 < len(entries) else len(raw)
            maxntid, reqntid = _dims(text_b[e.offset:e.header_end])
            limits = [d[0] * d[1] * d[2] for d in (maxntid, reqntid) if d is not None]
            self.kernels[e.name] = KernelInfo(
                name=e.name, text_offset=header + e.offset, text_size=end - e.offset,
                params=params, param_base=PARAM_BASE_BY_SM[MOCK_SM], param_size=size,
                max_threads=min(limits) if limits else None, maxntid=maxntid, reqntid=reqntid)

    def kernel(self, name: str) -> KernelInfo:
        """The entry called ``name``; ProgramError listing the image's entries if absent."""
        return lookup_kernel(self.kernels, name, "PTX image")

    def __repr__(self) -> str:
        return f"<PtxImage {self.target or '?'}: {', '.join(self.kernels)}>"


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


def load_image(binary: bytes | bytearray | memoryview) -> CubinImage | PtxImage:
    """Parse a kernel binary by its magic: ELF -> :class:`CubinImage`, ``HWDRV-PTX\\0`` ->
    :class:`PtxImage`; anything else is a ProgramError."""
    data = bytes(binary)
    if data.startswith(ELF_MAGIC):
        return CubinImage(data)
    if data.startswith(PTX_IMAGE_MAGIC):
        return PtxImage(data)
    raise ProgramError(f"unknown kernel binary format: starts with {data[:10]!r}; expected a "
                       f"cubin ({ELF_MAGIC!r}) or a PTX image ({PTX_IMAGE_MAGIC!r})")
