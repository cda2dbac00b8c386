"""The NT_AMDGPU_METADATA note of a code object: a small MessagePack decoder and the kernel model.

Code object v3+ stores its metadata as one MessagePack map (``amdhsa.version``, ``amdhsa.target``,
``amdhsa.kernels``: per kernel ``.name``, ``.symbol``, ``.kernarg_segment_size``, ``.args`` ...;
see LLVM's AMDGPUUsage "Code Object V3+ Metadata"). hwdrv may not depend on the msgpack package,
so :func:`unpack` implements the subset of the MessagePack spec a metadata note can hold (every
type except extension types), strictly: truncated data, trailing bytes, non-UTF-8 strings,
unhashable map keys and nesting deeper than :data:`MAX_DEPTH` are :class:`ProgramError`.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProgramError

MAX_DEPTH = 64
# format byte -> (struct format, size) for fixed-width scalars
_SCALARS = {0xCA: (">f", 4), 0xCB: (">d", 8), 0xCC: (">B", 1), 0xCD: (">H", 2), 0xCE: (">I", 4), 0xCF: (">Q", 8),
            0xD0: (">b", 1), 0xD1: (">h", 2), 0xD2: (">i", 4), 0xD3: (">q", 8)}
_STR = {0xD9: 1, 0xDA: 2, 0xDB: 4}
_BIN = {0xC4: 1, 0xC5: 2, 0xC6: 4}
_ARRAY = {0xDC: 2, 0xDD: 4}
_MAP = {0xDE: 2, 0xDF: 4}


class _Reader:
    def __init__(self, data: bytes, what: str):
        self.data, self.pos, self.what = memoryview(data), 0, what

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ProgramError(f"{self.what}: MessagePack data truncated at byte {self.pos} "
                               f"(needs {n} more bytes, {len(self.data) - self.pos} left)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ProgramError(f"{self.what}: MessagePack nesting deeper than {MAX_DEPTH} at byte {self.pos}")
        at = self.pos
        b = self.uint(1)
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0x80 <= b <= 0x8F:
            return self.map(b & 0x0F, depth, at)
        if 0x90 <= b <= 0x9F:
            return [self.value(depth + 1) for _ in range(b & 0x0F)]
        if 0xA0 <= b <= 0xBF:
            return self.string(b & 0x1F, at)
        if b == 0xC0:
            return None
        if b in (0xC2, 0xC3):
            return b == 0xC3
        if b in _SCALARS:
            fmt, n = _SCALARS[b]
            return struct.unpack(fmt, self.take(n))[0]
        if b in _STR:
            return self.string(self.uint(_STR[b]), at)
        if b in _BIN:
            return bytes(self.take(self.uint(_BIN[b])))
        if b in _ARRAY:
            n = self.uint(_ARRAY[b])
            self.check_count(n, at)
            return [self.value(depth + 1) for _ in range(n)]
        if b in _MAP:
            return self.map(self.uint(_MAP[b]), depth, at)
        raise ProgramError(f"{self.what}: MessagePack type byte 0x{b:02x} at byte {at} is not supported "
                           "(extension types and 0xc1 never occur in AMDGPU metadata)")

    def check_count(self, n: int, at: int) -> None:
        # every element takes at least one byte: refuse absurd counts before looping
        if n > len(self.data) - self.pos:
            raise ProgramError(f"{self.what}: MessagePack container at byte {at} claims {n} elements "
                               f"but only {len(self.data) - self.pos} bytes follow")

    def string(self, n: int, at: int) -> str:
        raw = self.take(n)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError as e:
            raise ProgramError(f"{self.what}: MessagePack string at byte {at} is not UTF-8 ({e.reason})") from None

    def map(self, n: int, depth: int, at: int) -> dict:
        self.check_count(n, at)
        out: dict = {}
        for _ in range(n):
            k = self.value(depth + 1)
            if isinstance(k, (list, dict)):
                raise ProgramError(f"{self.what}: MessagePack map at byte {at} has a {type(k).__name__} key")
            out[k] = self.value(depth + 1)
        return out


def unpack(data: bytes, what: str = "metadata") -> Any:
    """Decode one MessagePack value that fills ``data`` exactly (``what`` names it in errors)."""
    r = _Reader(bytes(data), what)
    v = r.value()
    if r.pos != len(r.data):
        raise ProgramError(f"{what}: {len(r.data) - r.pos} bytes after the MessagePack value (ends at byte {r.pos})")
    return v


@dataclass(frozen=True)
class KernelArg:
    """One kernarg entry: explicit (``global_buffer``, ``by_value``, ...) or ``hidden_*``."""
    offset: int
    size: int
    value_kind: str
    name: str = ""
    address_space: str = ""
    type_name: str = ""

    @property
    def hidden(self) -> bool:
        return self.value_kind.startswith("hidden_")


@dataclass(frozen=True)
class KernelMetadata:
    """The metadata of one kernel (``amdhsa.kernels`` entry)."""
    name: str
    symbol: str
    kernarg_segment_size: int
    kernarg_segment_align: int
    group_segment_fixed_size: int
    private_segment_fixed_size: int
    wavefront_size: int
    sgpr_count: int
    vgpr_count: int
    max_flat_workgroup_size: int
    args: tuple[KernelArg, ...]
    uses_dynamic_stack: bool = False
    sgpr_spill_count: int = 0
    vgpr_spill_count: int = 0
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def explicit_args(self) -> tuple[KernelArg, ...]:
        return tuple(a for a in self.args if not a.hidden)


@dataclass(frozen=True)
class CodeObjectMetadata:
    version: tuple[int, ...]
    target: str
    kernels: dict[str, KernelMetadata]


def _get(d: dict, key: str, typ: type | tuple, where: str, default: Any = ...) -> Any:
    if key not in d:
        if default is ...:
            raise ProgramError(f"{where}: metadata key {key!r} is missing")
        return default
    v = d[key]
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise ProgramError(f"{where}: metadata key {key!r} is {type(v).__name__} {v!r}, expected {typ}")
    if isinstance(v, int) and not isinstance(v, bool) and v < 0:
        raise ProgramError(f"{where}: metadata key {key!r} is negative ({v})")
    return v


def _arg(a: Any, where: str) -> KernelArg:
    if not isinstance(a, dict):
        raise ProgramError(f"{where}: .args entry is {type(a).__name__}, expected a map")
    return KernelArg(offset=_get(a, ".offset", int, where), size=_get(a, ".size", int, where),
                     value_kind=_get(a, ".value_kind", str, where), name=_get(a, ".name", str, where, ""),
                     address_space=_get(a, ".address_space", str, where, ""),
                     type_name=_get(a, ".type_name", str, where, ""))


def parse(note_desc: bytes) -> CodeObjectMetadata:
    """Decode the NT_AMDGPU_METADATA note payload into per-kernel metadata."""
    doc = unpack(note_desc, "NT_AMDGPU_METADATA note")
    where = "NT_AMDGPU_METADATA"
    if not isinstance(doc, dict):
        raise ProgramError(f"{where}: top level is {type(doc).__name__}, expected a map")
    version = _get(doc, "amdhsa.version", list, where)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in version):
        raise ProgramError(f"{where}: amdhsa.version {version!r} is not a list of integers")
    kernels = {}
    for i, k in enumerate(_get(doc, "amdhsa.kernels", list, where)):
        kw = f"{where} amdhsa.kernels[{i}]"
        if not isinstance(k, dict):
            raise ProgramError(f"{kw}: entry is {type(k).__name__}, expected a map")
        name = _get(k, ".name", str, kw)
        kw = f"{where} kernel {name!r}"
        args = tuple(_arg(a, f"{kw} .args[{j}]") for j, a in enumerate(_get(k, ".args", list, kw, [])))
        km = KernelMetadata(
            name=name, symbol=_get(k, ".symbol", str, kw),
            kernarg_segment_size=_get(k, ".kernarg_segment_size", int, kw),
            kernarg_segment_align=_get(k, ".kernarg_segment_align", int, kw),
            group_segment_fixed_size=_get(k, ".group_segment_fixed_size", int, kw),
            private_segment_fixed_size=_get(k, ".private_segment_fixed_size", int, kw),
            wavefront_size=_get(k, ".wavefront_size", int, kw), sgpr_count=_get(k, ".sgpr_count", int, kw),
            vgpr_count=_get(k, ".vgpr_count", int, kw),
            max_flat_workgroup_size=_get(k, ".max_flat_workgroup_size", int, kw),
            uses_dynamic_stack=_get(k, ".uses_dynamic_stack", bool, kw, False),
            sgpr_spill_count=_get(k, ".sgpr_spill_count", int, kw, 0),
            vgpr_spill_count=_get(k, ".vgpr_spill_count", int, kw, 0), args=args, raw=k)
        for a in args:
            if a.offset + a.size > km.kernarg_segment_size:
                raise ProgramError(f"{kw}: argument {a.value_kind} {a.name!r} at {a.offset}+{a.size} lies outside "
                                   f"the {km.kernarg_segment_size}-byte kernarg segment")
        if name in kernels:
            raise ProgramError(f"{where}: kernel {name!r} listed twice")
        kernels[name] = km
    return CodeObjectMetadata(version=tuple(version), target=_get(doc, "amdhsa.target", str, where, ""),
                              kernels=kernels)
