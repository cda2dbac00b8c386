"""Runtime support for the generated binding modules (``hwdrv/*/gen/*.py``).

Generated modules import :class:`Field` and :func:`build_ffi` from here; backends and the mock use
:func:`new`, :func:`addressof` and :func:`sizeof` to fill ioctl argument structs in place.
"""
from __future__ import annotations

import operator
from typing import Any, MutableSequence, Sequence

import cffi

from hwdrv.errors import InvalidArgument

__all__ = ["Field", "build_ffi", "new", "addressof", "sizeof", "encode"]

# One backend-only FFI for casts and addressof: cdata objects of every FFI share one backend.
_FFI = cffi.FFI()


class Field:
    """A bit range ``hi:lo`` (inclusive) of a word, or of a multi-word structure numbered from bit 0
    of word 0 upwards in 32-bit words (NVIDIA ``MW(hi:lo)``), as the headers write it.

    ``shift`` is ``lo`` and ``mask`` is ``((1 << width) - 1) << lo``, both relative to bit 0.
    """

    __slots__ = ("hi", "lo", "width", "mask", "shift", "name", "_max")

    def __init__(self, hi: int, lo: int, name: str = "") -> None:
        if not (isinstance(hi, int) and isinstance(lo, int)) or lo < 0 or hi < lo:
            raise InvalidArgument(f"Field {name or '?'}: bad bit range {hi}:{lo} (need hi >= lo >= 0)")
        self.hi, self.lo, self.name = hi, lo, name
        self.width = hi - lo + 1
        self.shift = lo
        self._max = (1 << self.width) - 1
        self.mask = self._max << lo

    def __repr__(self) -> str:
        return f"Field({self.hi}, {self.lo}{', ' + repr(self.name) if self.name else ''})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and (self.hi, self.lo) == (other.hi, other.lo)

    def __hash__(self) -> int:
        return hash((self.hi, self.lo))

    def _check(self, v: int) -> int:
        try:
            v = operator.index(v)  # accepts numpy integers too
        except TypeError:
            raise InvalidArgument(f"field {self.name or repr(self)}: value {v!r} is not an integer") from None
        if v < 0 or v > self._max:
            raise InvalidArgument(
                f"field {self.name or repr(self)} (bits {self.hi}:{self.lo}, {self.width} bits): value "
                f"{v:#x} out of range 0..{self._max:#x}")
        return v

    def encode(self, v: int) -> int:
        """``v`` shifted into place; raises InvalidArgument if it does not fit in ``width`` bits."""
        return self._check(v) << self.lo

    def decode(self, word: int) -> int:
        """The field's value taken out of ``word`` (an integer of any width)."""
        return (word >> self.lo) & self._max

    def get(self, words: Sequence[int]) -> int:
        """The field's value read from a sequence of 32-bit words (may span word boundaries)."""
        first, last = self.lo >> 5, self.hi >> 5
        if last >= len(words):
            raise InvalidArgument(f"field {self.name or repr(self)}: needs word {last}, structure has {len(words)}")
        acc = 0
        for i in range(last, first - 1, -1):
            acc = (acc << 32) | (int(words[i]) & 0xFFFFFFFF)
        return (acc >> (self.lo & 31)) & self._max

    def set(self, words: MutableSequence[int], v: int) -> None:
        """Write ``v`` into a mutable sequence of 32-bit words (a list or a uint32 numpy array),
        leaving the other bits untouched; raises InvalidArgument if ``v`` does not fit."""
        v = self._check(v)
        first, last = self.lo >> 5, self.hi >> 5
        if last >= len(words):
            raise InvalidArgument(f"field {self.name or repr(self)}: needs word {last}, structure has {len(words)}")
        off = self.lo & 31
        m, val = self._max << off, v << off
        for i in range(first, last + 1):
            wm = m & 0xFFFFFFFF
            if wm:
                words[i] = (int(words[i]) & ~wm & 0xFFFFFFFF) | (val & wm)
            m >>= 32
            val >>= 32


def encode(module: Any, register: str, **fields: int | str) -> int:
    """One word built from a register's (or method's) fields, by their header names:
    ``encode(hw, "NVC56F_SEM_EXECUTE", OPERATION="ACQ_CIRC_GEQ", PAYLOAD_SIZE="64BIT")`` ORs
    ``NVC56F_SEM_EXECUTE_OPERATION.encode(NVC56F_SEM_EXECUTE_OPERATION_ACQ_CIRC_GEQ)`` and the
    rest. A str value names the field's constant (``<register>_<FIELD>_<value>``); an int is
    the value itself. Unknown names raise :class:`InvalidArgument`."""
    word = 0
    for name, value in fields.items():
        fname = f"{register}_{name}"
        f = getattr(module, fname, None)
        if not isinstance(f, Field):
            raise InvalidArgument(f"{module.__name__} has no field {fname}")
        if isinstance(value, str):
            cname = f"{fname}_{value}"
            v = getattr(module, cname, None)
            if not isinstance(v, int):
                raise InvalidArgument(f"{module.__name__} has no value {cname}")
            value = v
        word |= f.encode(value)
    return word


def build_ffi(cdef: str) -> cffi.FFI:
    """A cffi FFI (ABI mode, nothing compiled) holding the declarations of ``cdef``."""
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    return ffi


def new(ffi: cffi.FFI, typename: str, **fields: Any) -> Any:
    """A zeroed ``typename`` allocated by ``ffi`` (returned as a pointer cdata that owns the memory),
    with ``fields`` assigned; nested structs and arrays take dicts and lists."""
    try:
        return ffi.new(typename + " *", fields or None)
    except (KeyError, TypeError, OverflowError, ValueError, cffi.FFIError) as e:
        raise InvalidArgument(f"cannot build {typename} from {fields!r}: {e}") from None


def addressof(cdata: Any) -> int:
    """The address, as an int, of the memory behind a cdata pointer, array or struct."""
    t = _FFI.typeof(cdata)
    if t.kind == "struct" or t.kind == "union":
        cdata = _FFI.addressof(cdata)
    elif t.kind not in ("pointer", "array"):
        raise InvalidArgument(f"addressof: {t.cname} is not a pointer, array or struct")
    return int(_FFI.cast("uintptr_t", cdata))


def sizeof(ffi: cffi.FFI, what: Any) -> int:
    """Size in bytes of a type name, or of the object a cdata points to (or is)."""
    if isinstance(what, str):
        return ffi.sizeof(what)
    t = ffi.typeof(what)
    if t.kind == "pointer":
        return ffi.sizeof(t.item)
    return ffi.sizeof(what)
