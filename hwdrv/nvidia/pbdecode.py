"""Decode NVIDIA pushbuffers, GP entries and QMDs into names, from the generated facts only.

Every name and bit range comes from ``hwdrv.nvidia.gen.hopper`` (the class headers' method
offsets and ``Field`` bit ranges); nothing here reuses the encoders of ``pushbuffer.py``, so a
wrong encoder cannot hide behind a decoder that agrees with it.

A decoded method reads ``SUBCH.CLASS.METHOD_NAME = value (FIELD=VALUE ...)``, e.g.
``0.HOST.SEM_EXECUTE = 0x1001003 (OPERATION=ACQ_CIRC_GEQ ACQUIRE_SWITCH_TSG=EN PAYLOAD_SIZE=64BIT)``.
"""
from __future__ import annotations

import numpy as np

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

from ..ioctl.bindings import Field
from .gen import hopper as hw

#: (short name shown in decoded text, class id, header prefixes searched in order: later ones
#: override earlier ones). Host methods (below 0x100) run in the PBDMA on any subchannel;
#: C86F (Hopper) and C56F (Ampere) share their offsets, C86F names win.
HOST = ("HOST", hw.HOPPER_CHANNEL_GPFIFO_A, ("NVC56F_", "NVC86F_"))
COMPUTE = ("COMPUTE", hw.HOPPER_COMPUTE_A, ("NVCBC0_",))
COPY = ("COPY", hw.HOPPER_DMA_COPY_A, ("NVC8B5_",))
ENGINE_CLASSES = {c[1]: c for c in (COMPUTE, COPY)}
#: method offsets below this are host (channel) methods, whatever the subchannel
HOST_METHOD_LIMIT = 0x100
#: where hwdrv binds each engine class (SET_OBJECT in the stream overrides this)
DEFAULT_BINDING = {hw.NVA06F_SUBCHANNEL_COMPUTE: hw.HOPPER_COMPUTE_A,
                   hw.NVA06F_SUBCHANNEL_COPY_ENGINE: hw.HOPPER_DMA_COPY_A}
_QMD_PREFIX = "NVCBC0_QMDV04_00_"
QMD_BITS = 384 * 8


@dataclass
class MethodInfo:
    """One method of a class: its offset, name and data-word fields."""
    offset: int
    name: str
    fields: list[tuple[str, Field, dict[int, str]]] = field(default_factory=list)

    def describe(self, value: int) -> str:
        """The fields of data word ``value``, named (enumerated values by their name)."""
        parts = []
        for fname, f, values in self.fields:
            if f.hi > 31:
                continue
            v = f.decode(value)
            named = values.get(v)
            # zero fields are left out, except a named selector in the low bits, which says
            # what the method does (SEM_EXECUTE OPERATION=ACQUIRE)
            if v == 0 and not (named and f.width > 1 and f.lo == 0):
                continue
            parts.append(f"{fname}={named if named else hex(v) if v > 9 else v}")
        return " ".join(parts)


@dataclass
class Method:
    """One decoded (method, data) pair, or a header that carries no data (NOP, END_SEGMENT)."""
    index: int              # word index of the data word (of the header, for data-less headers)
    header: int             # word index of the header this data belongs to
    subch: int
    cls: str                # HOST / COMPUTE / COPY / class id in hex if unknown
    method: int             # method byte offset
    name: str
    value: int | None
    detail: str = ""

    @property
    def text(self) -> str:
        if self.value is None:
            return f"{self.subch}.{self.cls}.{self.name}" + (f" ({self.detail})" if self.detail else "")
        d = f" ({self.detail})" if self.detail else ""
        return f"{self.subch}.{self.cls}.{self.name} = {self.value:#x}{d}"


def _gen_items() -> Iterable[tuple[str, object]]:
    return vars(hw).items()


@lru_cache(maxsize=None)
def method_table(prefixes: tuple[str, ...]) -> dict[int, MethodInfo]:
    """Method offset -> MethodInfo for the class whose header names start with ``prefixes``
    (names are merged by what follows the prefix; later prefixes win).

    A method is an integer constant that is not a named value of a Field (``FIELD_VALUE``);
    its fields are the Fields named ``METHOD_FIELD`` (each Field goes to the longest method
    name it extends), their values the integers named ``FIELD_VALUE`` (each to the longest
    Field it extends)."""
    ints: dict[str, int] = {}
    fields: dict[str, Field] = {}
    for prefix in prefixes:
        for n, v in _gen_items():
            if not n.startswith(prefix) or n.startswith(_QMD_PREFIX) or "__" in n:
                continue
            if n[len(prefix):].startswith(("DMA_", "GP_ENTRY")):
                continue      # method-header and GP-entry encodings, not methods
            if isinstance(v, Field):
                fields[n[len(prefix):]] = v
            elif isinstance(v, int) and not isinstance(v, bool):
                ints[n[len(prefix):]] = v
    values_of = {n for n in ints if any(n.startswith(f + "_") for f in fields)}
    methods = {n: v for n, v in ints.items()
               if n not in values_of and 0 <= v < 0x4000 and v % 4 == 0}
    by_name = {n: MethodInfo(v, n) for n, v in methods.items()}
    for fname, f in sorted(fields.items()):
        owner = max((m for m in methods if fname.startswith(m + "_")), key=len, default=None)
        if owner is None:
            continue
        vals: dict[int, str] = {}
        for vn in values_of:
            if vn.startswith(fname + "_") and not any(
                    vn.startswith(g + "_") and len(g) > len(fname) for g in fields):
                vals.setdefault(ints[vn], vn[len(fname) + 1:])
        by_name[owner].fields.append((fname[len(owner) + 1:], f, vals))
    table: dict[int, MethodInfo] = {}
    for mi in sorted(by_name.values(), key=lambda m: len(m.name)):
        mi.fields.sort(key=lambda t: t[1].lo)
        # two names for one offset (an alias): keep the shorter, more general name
        table.setdefault(mi.offset, mi)
    return table


def host_methods() -> dict[int, MethodInfo]:
    return method_table(HOST[2])


def class_methods(cls: int) -> dict[int, MethodInfo] | None:
    """The method table of engine class ``cls`` (None if hwdrv has no facts for it)."""
    c = ENGINE_CLASSES.get(cls)
    return method_table(c[2]) if c else None


def class_name(cls: int | None) -> str:
    if cls is None:
        return "UNBOUND"
    c = ENGINE_CLASSES.get(cls)
    return c[0] if c else f"CLASS_{cls:04X}"


_SEC_OP = hw.NVC56F_DMA_SEC_OP
_SEC_NAMES = {v: n[len("NVC56F_DMA_SEC_OP_"):] for n, v in _gen_items()
              if n.startswith("NVC56F_DMA_SEC_OP_") and isinstance(v, int)}
_TERT_OP = hw.NVC56F_DMA_TERT_OP


def decode(words: Sequence[int], binding: dict[int, int] | None = None,
           base: int = 0) -> list[Method]:
    """Decode a pushbuffer segment (32-bit words). ``binding`` maps subchannel -> class id
    (default: hwdrv's convention; SET_OBJECT in the stream rebinds). ``base`` is added to every
    word index (to number words within a larger buffer)."""
    bind = dict(DEFAULT_BINDING if binding is None else binding)
    out: list[Method] = []
    i, n = 0, len(words)
    host = host_methods()
    while i < n:
        h = int(words[i]) & 0xFFFFFFFF
        hi = base + i
        if h == hw.NVC56F_DMA_NOP:
            out.append(Method(hi, hi, 0, "HOST", 0, "NOP", None))
            i += 1
            continue
        op = _SEC_OP.decode(h)
        subch = hw.NVC56F_DMA_METHOD_SUBCHANNEL.decode(h)
        if op == hw.NVC56F_DMA_SEC_OP_IMMD_DATA_METHOD:
            m = hw.NVC56F_DMA_IMMD_ADDRESS.decode(h) << 2
            v = hw.NVC56F_DMA_IMMD_DATA.decode(h)
            out.append(_method(hi, hi, subch, m, v, bind, host, "immediate"))
            i += 1
            continue
        if op == hw.NVC56F_DMA_SEC_OP_END_PB_SEGMENT:
            out.append(Method(hi, hi, subch, "HOST", 0, "END_PB_SEGMENT", None))
            break
        if op in (hw.NVC56F_DMA_SEC_OP_INC_METHOD, hw.NVC56F_DMA_SEC_OP_NON_INC_METHOD,
                  hw.NVC56F_DMA_SEC_OP_ONE_INC):
            m0 = hw.NVC56F_DMA_METHOD_ADDRESS.decode(h) << 2
            count = hw.NVC56F_DMA_METHOD_COUNT.decode(h)
        elif op == hw.NVC56F_DMA_SEC_OP_GRP0_USE_TERT and _TERT_OP.decode(h) == hw.NVC56F_DMA_TERT_OP_GRP0_INC_METHOD:
            op = hw.NVC56F_DMA_SEC_OP_INC_METHOD           # the pre-Fermi incrementing form
            m0 = hw.NVC56F_DMA_METHOD_ADDRESS_OLD.decode(h) << 2
            count = hw.NVC56F_DMA_METHOD_COUNT_OLD.decode(h)
        elif op == hw.NVC56F_DMA_SEC_OP_GRP2_USE_TERT and _TERT_OP.decode(h) == hw.NVC56F_DMA_TERT_OP_GRP2_NON_INC_METHOD:
            op = hw.NVC56F_DMA_SEC_OP_NON_INC_METHOD
            m0 = hw.NVC56F_DMA_METHOD_ADDRESS_OLD.decode(h) << 2
            count = hw.NVC56F_DMA_METHOD_COUNT_OLD.decode(h)
        elif op == hw.NVC56F_DMA_SEC_OP_GRP0_USE_TERT:
            tert = _TERT_OP.decode(h)
            names = {hw.NVC56F_DMA_TERT_OP_GRP0_SET_SUB_DEV_MASK: "SET_SUBDEVICE_MASK",
                     hw.NVC56F_DMA_TERT_OP_GRP0_STORE_SUB_DEV_MASK: "STORE_SUBDEVICE_MASK",
                     hw.NVC56F_DMA_TERT_OP_GRP0_USE_SUB_DEV_MASK: "USE_SUBDEVICE_MASK"}
            out.append(Method(hi, hi, 0, "HOST", 0, names.get(tert, f"TERT_OP_{tert}"), None,
                              f"mask={hw.NVC56F_DMA_SUBDEVICE_MASK.decode(h):#x}"))
            i += 1
            continue
        else:
            out.append(Method(hi, hi, subch, "HOST", 0, "INVALID_HEADER", None,
                              f"word {h:#010x}: SEC_OP {_SEC_NAMES.get(op, op)}"))
            i += 1
            continue
        avail = max(0, min(count, n - i - 1))
        for k in range(avail):
            if op == hw.NVC56F_DMA_SEC_OP_INC_METHOD:
                m = m0 + 4 * k
            elif op == hw.NVC56F_DMA_SEC_OP_NON_INC_METHOD:
                m = m0
            else:
                m = m0 if k == 0 else m0 + 4
            v = int(words[i + 1 + k]) & 0xFFFFFFFF
            meth = _method(base + i + 1 + k, hi, subch, m, v, bind, host)
            if m == getattr(hw, "NVC86F_SET_OBJECT", 0) and m < HOST_METHOD_LIMIT:
                bind[subch] = v & 0xFFFF
                meth.detail = f"binds {class_name(v & 0xFFFF)} to subchannel {subch}"
            out.append(meth)
        if avail < count:
            out.append(Method(base + n, hi, subch, "HOST", m0, "TRUNCATED", None,
                              f"header promises {count} data words, {avail} present"))
        i += 1 + count
    return out


def _method(idx: int, header: int, subch: int, m: int, v: int, bind: dict[int, int],
            host: dict[int, MethodInfo], how: str = "") -> Method:
    if m < HOST_METHOD_LIMIT:
        cname, table = "HOST", host
    else:
        cls = bind.get(subch)
        cname, table = class_name(cls), class_methods(cls) if cls is not None else None
    info = table.get(m) if table else None
    if info is None:
        return Method(idx, header, subch, cname, m, f"METHOD_{m:#06x}", v, how)
    detail = info.describe(v)
    if how:
        detail = f"{how}{', ' + detail if detail else ''}"
    return Method(idx, header, subch, cname, m, info.name, v, detail)


def format_methods(methods: Sequence[Method], stalled: set[int] | None = None,
                   word_bytes_base: int | None = None) -> list[str]:
    """One line per method; ``stalled`` word indices get a ``>>`` marker."""
    lines = []
    for me in methods:
        mark = ">>" if stalled and me.index in stalled else "  "
        where = f"{word_bytes_base + me.index * 4:#012x}" if word_bytes_base is not None else f"[{me.index:5d}]"
        lines.append(f"{mark} {where}  {me.text}")
    return lines


# ---- GP entries ------------------------------------------------------------------------------
@dataclass
class GpEntry:
    """A decoded 64-bit GPFIFO entry."""
    va: int
    length: int           # dwords
    level: str
    sync: bool
    fetch: str
    opcode: str = ""      # control entries (length 0) carry an opcode instead

    @property
    def text(self) -> str:
        if self.length == 0:
            return f"control entry {self.opcode}"
        return (f"pushbuffer {self.va:#012x} + {self.length} dwords ({self.level}"
                f"{', SYNC_WAIT' if self.sync else ''}{', ' + self.fetch if self.fetch != 'UNCONDITIONAL' else ''})")


def decode_gp_entry(entry: int) -> GpEntry:
    """Decode one GP entry (entry0 | entry1 << 32) with the NVC56F_GP_ENTRY* fields."""
    e0, e1 = entry & 0xFFFFFFFF, (entry >> 32) & 0xFFFFFFFF
    va = (hw.NVC56F_GP_ENTRY0_GET.decode(e0) << hw.NVC56F_GP_ENTRY0_GET.lo) | \
        (hw.NVC56F_GP_ENTRY1_GET_HI.decode(e1) << 32)
    length = hw.NVC56F_GP_ENTRY1_LENGTH.decode(e1)
    level = ("SUBROUTINE" if hw.NVC56F_GP_ENTRY1_LEVEL.decode(e1) == hw.NVC56F_GP_ENTRY1_LEVEL_SUBROUTINE
             else "MAIN")
    sync = hw.NVC56F_GP_ENTRY1_SYNC.decode(e1) == hw.NVC56F_GP_ENTRY1_SYNC_WAIT
    fetch = ("CONDITIONAL" if hw.NVC56F_GP_ENTRY0_FETCH.decode(e0) == hw.NVC56F_GP_ENTRY0_FETCH_CONDITIONAL
             else "UNCONDITIONAL")
    opcode = ""
    if length == 0:
        ops = {v: n[len("NVC56F_GP_ENTRY1_OPCODE_"):] for n, v in _gen_items()
               if n.startswith("NVC56F_GP_ENTRY1_OPCODE_") and isinstance(v, int)}
        code = hw.NVC56F_GP_ENTRY1_OPCODE.decode(e1)
        opcode = ops.get(code, f"OPCODE_{code}")
    return GpEntry(va, length, level, sync, fetch, opcode)


# ---- QMD -------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def qmd_fields() -> tuple[tuple[str, Field], ...]:
    """Every QMD V04_00 field: the plain ones and each instance of the indexed ones, whose count
    is the number of instances that fit the QMD without overlapping a plain field."""
    plain = [(n[len(_QMD_PREFIX):], v) for n, v in _gen_items()
             if n.startswith(_QMD_PREFIX) and isinstance(v, Field)]
    occupied = [(f.lo, f.hi) for _, f in plain]
    out = list(plain)
    for n, fn in _gen_items():
        if not (n.startswith(_QMD_PREFIX) and callable(fn) and not isinstance(fn, Field)
                and not isinstance(fn, type)):
            continue
        for i in range(64):
            try:
                f = fn(i)
            except Exception:   # noqa: BLE001 - not an indexed field maker
                break
            if not isinstance(f, Field) or f.hi >= QMD_BITS:
                break
            if any(f.lo <= hi and lo <= f.hi for lo, hi in occupied):
                break
            out.append((f"{n[len(_QMD_PREFIX):]}({i})", f))
    out.sort(key=lambda t: t[1].lo)
    return tuple(out)


def _qmd_value_names() -> dict[str, dict[int, str]]:
    names = {fn: {} for fn, _ in qmd_fields()}
    plain = sorted((fn for fn in names if "(" not in fn), key=len, reverse=True)
    for n, v in _gen_items():
        if not (n.startswith(_QMD_PREFIX) and isinstance(v, int) and not isinstance(v, bool)):
            continue
        rest = n[len(_QMD_PREFIX):]
        owner = next((fn for fn in plain if rest.startswith(fn + "_")), None)
        if owner is not None:
            names[owner].setdefault(v, rest[len(owner) + 1:])
    return names


_QMD_VALUE_NAMES: dict[str, dict[int, str]] | None = None


def decode_qmd(words: Sequence[int], nonzero_only: bool = True) -> dict[str, int | str]:
    """QMD V04_00 fields of ``words`` (96 32-bit words) by name; enumerated values by name.
    Also adds the derived ``program_address`` and ``grid``/``block`` for convenience."""
    global _QMD_VALUE_NAMES
    if _QMD_VALUE_NAMES is None:
        _QMD_VALUE_NAMES = _qmd_value_names()
    out: dict[str, int | str] = {}
    for name, f in qmd_fields():
        if f.hi >= len(words) * 32:
            continue
        v = f.get(words)
        if nonzero_only and v == 0:
            continue
        named = _QMD_VALUE_NAMES.get(name, {}).get(v)
        out[name] = f"{named} ({v})" if named else v
    return out


def qmd_summary(words: Sequence[int]) -> dict[str, object]:
    """The facts of a QMD a person looks for first: program address, grid, block, QMD type."""
    g = lambda n: getattr(hw, _QMD_PREFIX + n).get(words)  # noqa: E731
    return {"program_address": g("PROGRAM_ADDRESS_LOWER") | (g("PROGRAM_ADDRESS_UPPER") << 32),
            "grid": (g("GRID_WIDTH"), g("GRID_HEIGHT"), g("GRID_DEPTH")),
            "block": (g("CTA_THREAD_DIMENSION0"), g("CTA_THREAD_DIMENSION1"), g("CTA_THREAD_DIMENSION2")),
            "cb0": ((hw.NVCBC0_QMDV04_00_CONSTANT_BUFFER_ADDR_LOWER_SHIFTED6(0).get(words)
                     | hw.NVCBC0_QMDV04_00_CONSTANT_BUFFER_ADDR_UPPER_SHIFTED6(0).get(words) << 32) << 6),
            "dependent_qmd": (g("DEPENDENT_QMD0_POINTER") << 8
                              if hw.NVCBC0_QMDV04_00_DEPENDENT_QMD_ENABLE(0).get(words) else None)}


def decode_dump(data: bytes, what: str = "dump") -> list[str]:
    """Lines for a raw pushbuffer dump (little-endian 32-bit words), for ``hwdrv decode``."""
    from ..errors import InvalidArgument
    if len(data) % 4:
        raise InvalidArgument(f"{what}: {len(data)} bytes is not a whole number of 32-bit words; a "
                              f"pushbuffer dump is raw little-endian words (or a HangReport JSON)")
    return format_methods(decode(np.frombuffer(data, "<u4")))
