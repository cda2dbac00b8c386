"""Functions of the CUDA device runtime that a module calls without defining them: ``vprintf``
(printf) and ``__assertfail`` (assert). On the GPU the driver supplies them; here calls to them
run in the interpreter. ``malloc``/``free`` (the device heap) are not provided.

printf: each executing lane formats its line (the format string and arguments are read from
the thread's memory as the GPU's would be) and the lines are appended, in lane order, to
``State.output`` (returned as ``LaunchResult.output``). assert: a failing assert faults the
launch with :class:`DeviceAssert` naming the expression, file, line and function."""
from __future__ import annotations

import re

import numpy as np

from hwdrv.errors import MockFault

from .errors import IllegalInstruction

_MAX_STRING = 4096
_SPEC = re.compile(r"%([-+ #0]*)(\d+)?(?:\.(\d+))?(hh|h|ll|l|z|j|t|L)?([diouxXeEfFgGaAcspn%])")


class DeviceAssert(IllegalInstruction):
    """A device-side assert failed (``__assertfail``): the GPU traps the kernel."""


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
        base = s.local.lane_base[lanes] + s.fp[lanes]
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
        base = int(s.local.lane_base[lane] + s.fp[lane])
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
