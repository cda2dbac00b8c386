"""Functions of the CUDA device runtime that a module calls without defining them: ``vprintf``
(printf), ``__assertfail`` (assert), ``malloc`` and ``free`` (the device heap). On the GPU the
driver supplies them; here calls to them run in the interpreter.

malloc/free: allocations come from a :class:`DeviceHeap` — a range of GPU memory the launcher
owns and passes to every launch (``launch(..., heap=)``), so that memory malloc'd by one kernel
can be freed by another, as on the GPU. Without a heap, malloc returns NULL, as CUDA's does
when the heap is exhausted.

printf: each executing lane formats its line (the format string and arguments are read from
the thread's memory as the GPU's would be) and the lines are appended, in lane order, to
``State.output`` (returned as ``LaunchResult.output``). assert: a failing assert faults the
launch with :class:`DeviceAssert` naming the expression, file, line and function."""
from __future__ import annotations

import re

import numpy as np

from hwdrv.errors import MockFault

from .calls import frame_index
from .errors import IllegalInstruction

_MAX_STRING = 4096
_SPEC = re.compile(r"%([-+ #0]*)(\d+)?(?:\.(\d+))?(hh|h|ll|l|z|j|t|L)?([diouxXeEfFgGaAcspn%])")


class DeviceAssert(IllegalInstruction):
    """A device-side assert failed (``__assertfail``): the GPU traps the kernel."""


class DeviceHeap:
    """The device heap: first-fit allocation of 16-byte aligned blocks from [va, va + size)."""

    ALIGN = 16

    def __init__(self, va: int, size: int):
        if va % self.ALIGN or size < 0:
            raise ValueError(f"heap at {va:#x} of {size} bytes: needs a 16-byte aligned start")
        self.va, self.size = va, size
        self.free_blocks: list[tuple[int, int]] = [(va, size)] if size else []   # (start, length), sorted
        self.used: dict[int, int] = {}                                          # start -> length

    def malloc(self, n: int) -> int:
        """An address of ``n`` free bytes, or 0 when no block is large enough."""
        n = max(self.ALIGN, (n + self.ALIGN - 1) // self.ALIGN * self.ALIGN)
        for k, (start, length) in enumerate(self.free_blocks):
            if length >= n:
                if length == n:
                    del self.free_blocks[k]
                else:
                    self.free_blocks[k] = (start + n, length - n)
                self.used[start] = n
                return start
        return 0

    def free(self, address: int) -> None:
        """Return a block malloc gave (0 is ignored); neighbouring free blocks merge."""
        if address == 0:
            return
        n = self.used.pop(address, None)
        if n is None:
            raise IllegalInstruction(f"free({address:#x}): not a pointer malloc returned (or freed twice)")
        blocks = sorted(self.free_blocks + [(address, n)])
        merged: list[tuple[int, int]] = []
        for start, length in blocks:
            if merged and merged[-1][0] + merged[-1][1] == start:
                merged[-1] = (merged[-1][0], merged[-1][1] + length)
            else:
                merged.append((start, length))
        self.free_blocks = merged


def _read_string(s, address: int, lane: int) -> str:
    """A NUL-terminated string at a generic address of lane ``lane``'s memory."""
    out = bytearray()
    addr = np.uint64(address)
    while len(out) < _MAX_STRING:
        chunk = s.generic.load(addr + np.arange(16, dtype=np.uint64), np.full(16, lane), np.uint8)
        for b in chunk.tolist():
            if b == 0:
                return out.decode("utf-8", "replace")
            out.append(b)
        addr += np.uint64(16)
    return out.decode("utf-8", "replace")


def _arg_slots(fmt: str) -> list[tuple[str, int, str]]:
    """(conversion, byte size, python format) of each argument the format consumes."""
    out = []
    for m in _SPEC.finditer(fmt):
        flags, width, prec, length, conv = m.groups()
        if conv == "%":
            continue
        if conv in "eEfFgGaA":
            size = 8                                   # float arguments are promoted to double
        elif conv in "sp":
            size = 8
        elif conv == "n":
            raise IllegalInstruction("printf %n is not supported")
        else:
            size = 8 if length in ("ll", "l", "z", "j", "t") else 4
        pyfmt = "%" + flags + (width or "") + (("." + prec) if prec is not None else "") + conv
        out.append((conv, size, pyfmt))
    return out


def _format_line(s, lane: int, fmt_addr: int, args_addr: int) -> tuple[str, int]:
    fmt = _read_string(s, fmt_addr, lane)
    slots = _arg_slots(fmt)
    values, off = [], 0
    lanes = np.array([lane])
    for conv, size, _ in slots:
        off = (off + size - 1) // size * size
        raw = s.generic.load(np.array([args_addr + off], np.uint64), lanes, np.uint64 if size == 8 else np.uint32)[0]
        off += size
        if conv in "eEfFgGaA":
            values.append(float(np.array(raw, np.uint64).view(np.float64)))
        elif conv == "s":
            values.append(_read_string(s, int(raw), lane) if raw else "(null)")
        elif conv == "p":
            values.append(int(raw))
        elif conv in "di":
            values.append(int(np.array(raw).astype(np.uint64).view(np.int64)) if size == 8
                          else int(np.array(raw, np.uint32).view(np.int32)))
        elif conv == "c":
            values.append(chr(int(raw) & 0xFF))
        else:
            values.append(int(raw))
    pieces, k, pos = [], 0, 0
    for m in _SPEC.finditer(fmt):
        pieces.append(fmt[pos:m.start()])
        pos = m.end()
        if m.group(5) == "%":
            pieces.append("%")
            continue
        conv, _, pyfmt = slots[k]
        v = values[k]
        k += 1
        if conv == "p":
            pieces.append("0x%x" % v)
        elif conv in "aA":
            pieces.append(float.hex(v))
        else:
            pieces.append(pyfmt % v)
    pieces.append(fmt[pos:])
    return "".join(pieces), len(slots)


def build_vprintf(arg_offsets: list[int], ret_offset: int | None):
    """run(s, lanes) for ``call (ret), vprintf, (fmt, args)``: the two argument slots and the
    return slot are offsets in the caller's frame (local memory)."""
    def run(s, lanes):
        base = frame_index(s, lanes) + s.fp[lanes]
        words = s.local.data.view(np.uint64)
        fmts = words[(base + arg_offsets[0]) // 8]
        argp = words[(base + arg_offsets[1]) // 8]
        counts = np.zeros(len(lanes), np.int64)
        for k, lane in enumerate(lanes.tolist()):
            try:
                line, counts[k] = _format_line(s, lane, int(fmts[k]), int(argp[k]))
            except MockFault as exc:
                exc.chunk_lane = lane
                raise
            s.output.append(line)
        if ret_offset is not None:
            s.local.data.view(np.uint32)[(base + ret_offset) // 4] = counts.astype(np.uint32)
    return run


def build_assertfail(arg_offsets: list[int]):
    """run(s, lanes) for ``call __assertfail, (message, file, line, function, charSize)``."""
    def run(s, lanes):
        lane = int(lanes[0])
        base = int(s.local.lane_base[lane] + s.local.bias + s.fp[lane])
        q = s.local.data.view(np.uint64)
        msg, file, func = (int(q[(base + arg_offsets[k]) // 8]) for k in (0, 1, 3))
        line = int(s.local.data.view(np.uint32)[(base + arg_offsets[2]) // 4])
        text = []
        for what, addr in (("expression", msg), ("file", file), ("function", func)):
            try:
                text.append(_read_string(s, addr, lane))
            except MockFault:
                text.append(f"<{what} at {addr:#x} not readable>")
        exc = DeviceAssert(f"{text[1]}:{line}: {text[2]}: Assertion `{text[0]}` failed.")
        exc.chunk_lane = lane
        raise exc
    return run


def build_malloc(arg_offsets: list[int], ret_offset: int | None):
    """run(s, lanes) for ``call (ret), malloc, (size)``: lanes allocate in lane order."""
    def run(s, lanes):
        base = frame_index(s, lanes) + s.fp[lanes]
        q = s.local.data.view(np.uint64)
        sizes = q[(base + arg_offsets[0]) // 8]
        got = np.array([s.heap.malloc(int(n)) if s.heap is not None else 0 for n in sizes.tolist()], np.uint64)
        if ret_offset is not None:
            q[(base + ret_offset) // 8] = got
    return run


def build_free(arg_offsets: list[int]):
    """run(s, lanes) for ``call free, (ptr)``."""
    def run(s, lanes):
        base = frame_index(s, lanes) + s.fp[lanes]
        ptrs = s.local.data.view(np.uint64)[(base + arg_offsets[0]) // 8]
        for lane, p in zip(lanes.tolist(), ptrs.tolist()):
            if p and s.heap is None:
                raise IllegalInstruction(f"free({p:#x}) with no device heap")
            try:
                if s.heap is not None:
                    s.heap.free(int(p))
            except MockFault as exc:
                exc.chunk_lane = lane
                raise
    return run
