"""Program: a loaded GPU kernel and its parameter layout; packs launch arguments."""
from __future__ import annotations

import struct
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .errors import InvalidArgument, ProgramError
from .memory.buffer import Buffer
from .var import VarExpr

if TYPE_CHECKING:
    from .device import Device


@dataclass(frozen=True)
class Param:
    """One kernel parameter: byte offset within the parameter block and size in bytes."""
    offset: int
    size: int
    name: str = ""


#: launch shapes a program remembers as checked (an eager runtime repeats a few)
MAX_CHECKED_SHAPES = 1024
_INT_FMT = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
_SINT_FMT = {1: "<b", 2: "<h", 4: "<i", 8: "<q"}
_FLOAT_FMT = {4: "<f", 8: "<d"}


class Program:
    """A kernel loaded on a device. Backends fill the launch attributes; the core packs
    arguments from ``params`` (so a wrong count or size fails before reaching the GPU)."""

    def __init__(self, device: "Device", name: str, params: Sequence[Param], param_size: int,
                 max_threads: int | None = None, shared_static: int = 0,
                 max_shared: int | None = None):
        """``max_threads`` / ``max_shared``: this kernel's limits where they are tighter than
        the device's (``device.limits``), which are the default."""
        self.device, self.name = device, name
        self.params = list(params)
        self.param_size = param_size
        lim = device.limits
        self.max_threads = lim.max_threads_per_block if max_threads is None else max_threads
        self.shared_static = shared_static
        self.max_shared = lim.max_shared_per_block if max_shared is None else max_shared
        self._launch_ok: set[tuple[tuple, tuple, int]] = set()     # (grid, block, shared) that passed
        #: (grid, block, shared) as a caller spelt them -> (grid, block) as 3 ints each, for
        #: shapes that passed the checks (Queue.exec's eager path looks here first)
        self._shapes: dict[tuple, tuple[tuple, tuple]] = {}
        self._freed = False

    def free(self) -> None:
        """Release the program's memory (code, globals) once the work submitted so far has
        finished; launching it afterwards raises ProgramError. Dropping the last reference does
        the same."""
        self._freed = True
        self._shapes.clear()                 # exec's eager path must not skip the check
        for b in self._memory():
            if not b.freed:
                b.free()

    def _memory(self) -> list[Buffer]:
        """The buffers this program owns (backend hook)."""
        return []

    def _release_at_gc(self) -> None:
        """Hand the program's buffers to its device when the Program is collected. The
        finalizer only queues them: it may run in any thread, inside any lock."""
        bufs = self._memory()
        if bufs:
            weakref.finalize(self, self.device._orphans.extend, bufs)

    def check_launch(self, grid: tuple, block: tuple, shared: int) -> None:
        """Reject launch shapes the hardware would refuse, naming the limit. A launch shape
        (concrete grid, block, shared) that passed once is not checked again (the submit path
        runs this per launch)."""
        if self._freed:
            raise ProgramError(f"{self.name} was freed (Program.free()); load it again with "
                               f"dev.program() to launch it")
        if type(shared) is not int or shared < 0:     # before the cache: 0.0 == 0 would find it
            raise InvalidArgument(f"{self.name}: dynamic shared memory must be an int >= 0")
        if (grid, block, shared) in self._launch_ok:
            return
        lim = self.device.limits
        for what, dims, top in (("block", block, lim.max_block_dims), ("grid", grid, lim.max_grid_dims)):
            for axis, d, m in zip("xyz", dims, top):
                if isinstance(d, int) and d > m:
                    raise InvalidArgument(f"{self.name}: {what} {axis} = {d} exceeds the device's "
                                          f"limit of {m} ({self.device.name})")
        threads = block[0] * block[1] * block[2]
        if threads > self.max_threads:
            raise InvalidArgument(f"{self.name}: block {block} has {threads} threads; this kernel "
                                  f"allows at most {self.max_threads}")
        if self.shared_static + shared > self.max_shared:
            raise InvalidArgument(f"{self.name}: {self.shared_static} static + {shared} dynamic "
                                  f"bytes of shared memory exceed the {self.max_shared}-byte limit")
        if all(type(g) is int for g in grid):           # symbolic grids are checked each time
            if len(self._launch_ok) >= MAX_CHECKED_SHAPES:
                self._launch_ok.clear()
            self._launch_ok.add((grid, block, shared))

    def remember_shape(self, grid: Any, block: Any, shared: Any, g: tuple, b: tuple) -> None:
        """Remember that ``(grid, block, shared)``, spelt as the caller did, passed the launch
        checks as grid ``g`` and block ``b``: plain-int tuples only (a Var grid is checked anew)."""
        if type(grid) is tuple and type(block) is tuple and plain_shape(grid, block, shared):
            if len(self._shapes) >= MAX_CHECKED_SHAPES:
                self._shapes.clear()
            self._shapes[grid, block, shared] = (g, b)

    def pack_args(self, args: Sequence[Any], out: bytearray | memoryview | np.ndarray,
                  base: int = 0) -> list[tuple[int, int, VarExpr]]:
        """Write ``args`` into ``out`` at ``base`` + each parameter's offset. Returns the
        symbolic arguments as ``(byte offset, size, expr)`` for the caller to patch."""
        params = self.params
        if len(args) != len(params):
            raise InvalidArgument(f"{self.name} takes {len(params)} arguments "
                                  f"({', '.join(f'{p.size} bytes' for p in params) or 'none'}), "
                                  f"got {len(args)}")
        buf = out if not isinstance(out, np.ndarray) else out.view(np.uint8).data
        symbolic: list[tuple[int, int, VarExpr]] = []
        for i, (a, p) in enumerate(zip(args, params)):
            off = base + p.offset
            if isinstance(a, Buffer):
                if p.size != 8:
                    raise InvalidArgument(f"{self.name} argument {i}: a buffer is an 8-byte "
                                          f"pointer but the parameter is {p.size} bytes")
                self.device._check_buffer(a, f"{self.name} argument {i}")
                struct.pack_into("<Q", buf, off, a.va)
            elif isinstance(a, VarExpr):
                if p.size not in (4, 8):
                    raise InvalidArgument(f"{self.name} argument {i}: a Var fills a 4- or 8-byte "
                                          f"parameter, this one is {p.size} bytes")
                symbolic.append((off, p.size, a))
            elif isinstance(a, (bool, np.bool_)):
                _pack_int(buf, off, p, int(a), self.name, i)
            elif isinstance(a, (int, np.integer)) and not isinstance(a, np.floating):
                _pack_int(buf, off, p, int(a), self.name, i)
            elif isinstance(a, (float, np.floating)):
                if isinstance(a, np.floating) and a.itemsize != p.size:
                    raise InvalidArgument(f"{self.name} argument {i}: {a.dtype} is {a.itemsize} "
                                          f"bytes, the parameter is {p.size}")
                fmt = _FLOAT_FMT.get(p.size)
                if fmt is None:
                    raise InvalidArgument(f"{self.name} argument {i}: a float cannot fill a "
                                          f"{p.size}-byte parameter; pass bytes or a numpy scalar")
                struct.pack_into(fmt, buf, off, float(a))
            elif isinstance(a, (bytes, bytearray, memoryview, np.ndarray)):
                raw = bytes(a) if not isinstance(a, np.ndarray) else a.tobytes()
                if len(raw) != p.size:
                    raise InvalidArgument(f"{self.name} argument {i}: {len(raw)} bytes given for a "
                                          f"{p.size}-byte parameter")
                buf[off:off + p.size] = raw
            else:
                raise InvalidArgument(f"{self.name} argument {i}: cannot pass {type(a).__name__}; "
                                      f"use a Buffer, int, float, Var, numpy scalar or bytes")
        return symbolic

    def __repr__(self) -> str:
        return f"<Program {self.name} on {self.device.name}: {len(self.params)} params>"


def remembered_dims(program: Any, grid: Any, block: Any, shared: Any) -> "tuple[tuple, tuple] | None":
    """The normalized (grid, block) of a launch shape ``program`` (a Program or anything a caller
    passed) passed the checks with, spelt the same way; None for anything else -- a new shape,
    something unhashable, not a Program, or a float or bool equal to a remembered int (it finds
    the entry but must go through the checks)."""
    try:
        dims = program._shapes[grid, block, shared]
    except (AttributeError, KeyError, TypeError):
        return None
    return dims if plain_shape(grid, block, shared) else None


def plain_shape(grid: tuple, block: tuple, shared: object) -> bool:
    """Whether every dimension and ``shared`` are plain ints (not floats or bools that compare
    equal to them, and so find a remembered shape's entry)."""
    if type(shared) is not int:
        return False
    for x in grid:
        if type(x) is not int:
            return False
    for x in block:
        if type(x) is not int:
            return False
    return True


def _pack_int(buf: Any, off: int, p: Param, v: int, name: str, i: int) -> None:
    fmt = _INT_FMT.get(p.size)
    if fmt is None:
        raise InvalidArgument(f"{name} argument {i}: an int cannot fill a {p.size}-byte "
                              f"parameter; pass bytes or a numpy array of that size")
    if v < 0:
        if v < -(1 << (8 * p.size - 1)):
            raise InvalidArgument(f"{name} argument {i}: {v} does not fit in {p.size} bytes")
        struct.pack_into(_SINT_FMT[p.size], buf, off, v)
        return
    if v >= 1 << (8 * p.size):
        raise InvalidArgument(f"{name} argument {i}: {v} does not fit in {p.size} bytes")
    struct.pack_into(fmt, buf, off, v)
