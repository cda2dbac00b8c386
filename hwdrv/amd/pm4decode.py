"""PM4 decoder for gfx11 compute rings: type-3 packets by name with their fields.

Opcode names and field positions come from the generated nvd.h bindings (gen/pm4.py), register
names and fields of SET_SH_REG / SET_UCONFIG_REG / DISPATCH_DIRECT from gc_11_0_0 (gen/gc11.py).
Field widths of packet control dwords are the PM4 spec's (reference/amd.md 2.3); the position of
each comes from its nvd.h encoder macro. ``decode_ring`` finds the packets around a queue's read
pointer (the stalled one marked); ``decode_dump`` prints a saved ring (``hwdrv decode --vendor amd``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import InvalidArgument
from .gen import gc11 as G
from .gen import pm4 as PM

#: opcode -> nvd.h name (without PACKET3_); among aliases the shortest name wins
OPCODE_NAMES: dict[int, str] = {}
for _k, _v in sorted(vars(PM).items(), key=lambda kv: len(kv[0])):
    if _k.startswith("PACKET3_") and isinstance(_v, int) and 0 <= _v <= 0xFF \
            and not _k.endswith(("_START", "_END")):
        OPCODE_NAMES.setdefault(_v, _k[len("PACKET3_"):])

_SEG = (G.GC_BASE__INST0_SEG0, G.GC_BASE__INST0_SEG1, G.GC_BASE__INST0_SEG2, G.GC_BASE__INST0_SEG3)
#: absolute gfx11 dword address -> register name (gc_11_0_0_offset.h)
REG_NAMES: dict[int, str] = {}
for _k, _v in vars(G).items():
    if _k.startswith("reg") and not _k.endswith("_BASE_IDX") and isinstance(_v, int) \
            and isinstance(getattr(G, _k + "_BASE_IDX", None), int):
        REG_NAMES.setdefault(_SEG[getattr(G, _k + "_BASE_IDX")] + _v, _k[3:])


def _shift(encoder) -> int:
    """Bit position of a packet field from its nvd.h encoder macro (FIELD(x) = x << shift) or mask."""
    v = encoder(1) if callable(encoder) else encoder
    return (v & -v).bit_length() - 1


# (name, position, width): positions from nvd.h, widths from the PM4 spec
_WRM_CTL = (("FUNCTION", _shift(PM.WAIT_REG_MEM_FUNCTION), 3), ("MEM_SPACE", _shift(PM.WAIT_REG_MEM_MEM_SPACE), 2),
            ("OPERATION", _shift(PM.WAIT_REG_MEM_OPERATION), 2), ("ENGINE", _shift(PM.WAIT_REG_MEM_ENGINE), 2))
_RM_EVENT = (("EVENT_TYPE", _shift(PM.PACKET3_RELEASE_MEM_EVENT_TYPE), 6),
             ("EVENT_INDEX", _shift(PM.PACKET3_RELEASE_MEM_EVENT_INDEX), 4))
_RM_SEL = (("DST_SEL", _shift(PM.PACKET3_RELEASE_MEM_DST_SEL), 2), ("INT_SEL", _shift(PM.PACKET3_RELEASE_MEM_INT_SEL), 3),
           ("DATA_SEL", _shift(PM.PACKET3_RELEASE_MEM_DATA_SEL), 3))
_EW = (("EVENT_TYPE", _shift(PM.EVENT_TYPE), 6), ("EVENT_INDEX", _shift(PM.EVENT_INDEX), 4))
_IB_SIZE_BITS = _shift(PM.INDIRECT_BUFFER_PRE_ENB) - 1          # IB_SIZE: dw3 bits 0..19
_WRM_FUNCTIONS = ("always", "<", "<=", "==", "!=", ">=", ">")
#: RELEASE_MEM / ACQUIRE_MEM GCR bits by their nvd.h names
_GCR_RELEASE = {k[len("PACKET3_RELEASE_MEM_GCR_"):]: v for k, v in vars(PM).items()
                if k.startswith("PACKET3_RELEASE_MEM_GCR_") and isinstance(v, int)}
_GCR_ACQUIRE = {k[len("PACKET3_ACQUIRE_MEM_GCR_CNTL_"):]: _shift(v) for k, v in vars(PM).items()
                if k.startswith("PACKET3_ACQUIRE_MEM_GCR_CNTL_") and callable(v)}


def _fields(word: int, spec) -> str:
    return " ".join(f"{n}={(word >> p) & ((1 << w) - 1)}" for n, p, w in spec)


def _reg_fields(name: str, value: int) -> str:
    """Non-zero fields of register ``name`` (gc11 field tables)."""
    pre = name + "__"
    out = []
    for k, f in vars(G).items():
        if k.startswith(pre) and isinstance(f, G.Field):
            v = f.decode(value)
            if v:
                out.append(f"{k[len(pre):]}={v:#x}" if v > 9 else f"{k[len(pre):]}={v}")
    return " ".join(out)


def _set_regs(start: int, body: list[int]) -> str:
    base = start + body[0]
    parts = []
    for i, v in enumerate(body[1:]):
        name = REG_NAMES.get(base + i, f"reg {base + i:#x}")
        parts.append(f"{name}={v:#x}")
    return ", ".join(parts)


def _set_sh_reg(body):
    return _set_regs(PM.PACKET3_SET_SH_REG_START, body)


def _set_uconfig_reg(body):
    return _set_regs(PM.PACKET3_SET_UCONFIG_REG_START, body)


def _dispatch_direct(body):
    return (f"DIM_X={body[0]} DIM_Y={body[1]} DIM_Z={body[2]} DISPATCH_INITIATOR={body[3]:#x} "
            f"({_reg_fields('COMPUTE_DISPATCH_INITIATOR', body[3])})")


def _wait_reg_mem(body):
    ctl = body[0]
    func = (ctl >> _WRM_CTL[0][1]) & 7
    space = (ctl >> _WRM_CTL[1][1]) & 3
    where = f"address={(body[2] << 32 | body[1]) & ~3:#x}" if space == 1 else f"register={body[1]:#x}"
    op = _WRM_FUNCTIONS[func] if func < len(_WRM_FUNCTIONS) else "reserved"
    return (f"{_fields(ctl, _WRM_CTL)} {where} REFERENCE={body[3]:#x} MASK={body[4]:#x} POLL_INTERVAL={body[5]} "
            f"(wait until value & mask {op} reference)")


def _release_mem(body):
    flush = [n for n, b in _GCR_RELEASE.items() if body[0] & b]
    return (f"{_fields(body[0], _RM_EVENT)} GCR={'|'.join(sorted(flush)) or 0} {_fields(body[1], _RM_SEL)} "
            f"address={body[3] << 32 | body[2]:#x} DATA={body[5] << 32 | body[4]:#x} INT_CTXID={body[6]:#x}")


def _acquire_mem(body):
    gcr = body[6] if len(body) > 6 else 0
    bits = [n for n, s in _GCR_ACQUIRE.items() if gcr >> s & 1]
    return (f"COHER_SIZE={body[2] << 32 | body[1]:#x} COHER_BASE={body[4] << 32 | body[3]:#x} "
            f"POLL_INTERVAL={body[5]} GCR_CNTL={gcr:#x} ({'|'.join(sorted(bits)) or 'none'})")


def _event_write(body):
    return _fields(body[0], _EW)


def _indirect_buffer(body):
    ctl = body[2]
    return (f"address={(body[1] << 32 | body[0]) & ~3:#x} IB_SIZE={ctl & ((1 << (_IB_SIZE_BITS + 1)) - 1)} dwords "
            f"VALID={int(bool(ctl & PM.INDIRECT_BUFFER_VALID))}")


def _nop(body):
    return f"{len(body)} dwords of padding"


_BODY: dict[int, Callable[[list[int]], str]] = {
    PM.PACKET3_SET_SH_REG: _set_sh_reg, PM.PACKET3_SET_UCONFIG_REG: _set_uconfig_reg,
    PM.PACKET3_DISPATCH_DIRECT: _dispatch_direct, PM.PACKET3_WAIT_REG_MEM: _wait_reg_mem,
    PM.PACKET3_RELEASE_MEM: _release_mem, PM.PACKET3_ACQUIRE_MEM: _acquire_mem,
    PM.PACKET3_EVENT_WRITE: _event_write, PM.PACKET3_INDIRECT_BUFFER: _indirect_buffer, PM.PACKET3_NOP: _nop,
}


@dataclass
class Packet:
    """One decoded packet: its dword position, length in dwords, opcode name and decoded text."""
    pos: int
    size: int
    name: str
    text: str
    body: list[int]


def decode_packet(dword: Callable[[int], int], pos: int, limit: int) -> Packet:
    """The packet at dword ``pos`` (``dword(i)`` reads dword i; at most ``limit`` dwords are there).
    Raises InvalidArgument for a type-0/1 header or a packet running past ``limit``."""
    hdr = dword(pos)
    ptype = PM.CP_PACKET_GET_TYPE(hdr)
    if ptype == PM.PACKET_TYPE2:
        return Packet(pos, 1, "TYPE2", "type-2 filler", [])
    if ptype != PM.PACKET_TYPE3:
        raise InvalidArgument(f"PM4 type-{ptype} header {hdr:#010x} at dword {pos:#x}: compute rings hold type-3 "
                              "packets only (not a packet boundary, or a corrupt ring)")
    op, count = PM.CP_PACKET3_GET_OPCODE(hdr), PM.CP_PACKET_GET_COUNT(hdr)
    name = OPCODE_NAMES.get(op, f"opcode {op:#04x}")
    if op == PM.PACKET3_NOP and count == 0x3FFF:
        return Packet(pos, 1, name, "one-dword NOP", [])
    size = count + 2
    if size > limit:
        raise InvalidArgument(f"{name} at dword {pos:#x} (header {hdr:#010x}) needs {size} dwords, only {limit} "
                              "are there")
    body = [dword(pos + 1 + i) for i in range(count + 1)]
    fn = _BODY.get(op)
    try:
        text = fn(body) if fn else "body " + " ".join(f"{w:#010x}" for w in body)
    except IndexError:
        text = f"short body ({len(body)} dwords): " + " ".join(f"{w:#010x}" for w in body)
    return Packet(pos, size, name, f"{name} {text}", body)


def decode_stream(words, start: int = 0, end: int | None = None) -> list[Packet]:
    """Every packet of ``words`` (a sequence of dwords) from ``start`` to ``end``."""
    end = len(words) if end is None else end
    out, pos = [], start
    while pos < end:
        p = decode_packet(lambda i: int(words[i]), pos, end - pos)
        out.append(p)
        pos += p.size
    return out


def decode_ring(words, rptr: int, wptr: int, before: int = 6, after: int = 24) -> tuple[list[Packet], Packet | None]:
    """Packets of a PM4 ring (``words``: its dwords; ``rptr``/``wptr``: the CP's read pointer and the
    host's write pointer in dwords since the ring was created) around the read pointer: up to
    ``before`` already executed packets, then from ``rptr`` on up to ``after`` (positions are ring
    pointers, not indices). Returns (packets, the packet at ``rptr`` or None when the ring is drained).

    The ring holds no packet boundaries, so decoding starts at the oldest dword still in the ring
    and moves forward until a run of packets lands exactly on ``rptr``."""
    ndw = len(words)
    if not 0 <= rptr <= wptr or wptr - rptr > ndw:
        raise InvalidArgument(f"ring pointers rptr={rptr} wptr={wptr} do not fit a {ndw}-dword ring")

    def dword(i: int) -> int:
        return int(words[i % ndw])
    lo = max(0, wptr - ndw)
    for first in range(lo, min(rptr, lo + 64) + 1):     # resynchronise on a wrapped ring
        try:
            done, pos = [], first
            while pos < rptr:
                p = decode_packet(dword, pos, wptr - pos)
                done.append(p)
                pos += p.size
        except InvalidArgument:
            continue
        if pos == rptr:
            break
    else:
        done = []
    pending, pos = [], rptr
    while pos < wptr and len(pending) < after:
        try:
            p = decode_packet(dword, pos, wptr - pos)
        except InvalidArgument as e:
            pending.append(Packet(pos, 1, "?", f"undecodable: {e}", []))
            break
        pending.append(p)
        pos += p.size
    return done[-before:] + pending, (pending[0] if pending else None)


def decode_dump(data: bytes, what: str) -> list[str]:
    """Lines for a raw PM4 ring dump (``data``: little-endian dwords from the ring's start; decoding
    stops at the first zero header, where the unused part of a ring begins)."""
    if len(data) % 4:
        raise InvalidArgument(f"{what}: {len(data)} bytes is not a whole number of dwords; a PM4 ring dump is "
                              "little-endian 32-bit words")
    words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
    out, pos = [], 0
    while pos < len(words) and words[pos] != 0:     # an unused ring is zero: a zero header ends the stream
        p = decode_packet(lambda i: words[i], pos, len(words) - pos)
        out.append(f"{p.pos:#08x}  {p.text}")
        pos += p.size
    return [f"{what}: {len(words)} dwords, packets in the first {pos}"] + out
