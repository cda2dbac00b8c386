"""PM4 packet headers (type 4 register writes, type 7 opcode packets): parity, encode and decode.

The bit positions are the accessors of Mesa's common/freedreno_pm4.h (generated into
hwdrv.qcom.gen.adreno_pm4 as PKT_*); the parity is that header's pm4_calc_odd_parity_bit (the
kernel's equivalent). Used by the mock kernel to write its ringbuffer wrappers and by the mock CP to
decode.
"""
from __future__ import annotations

from typing import NamedTuple

from hwdrv.qcom.gen import adreno_pm4 as P

_TYPE_MASK = 0xF0000000


def odd_parity(v: int) -> int:
    """pm4_calc_odd_parity_bit: 1 when the number of set bits of ``v`` is even (so the total is odd)."""
    x = v ^ (v >> 4) ^ (v >> 8) ^ (v >> 12) ^ (v >> 16) ^ (v >> 20) ^ (v >> 24) ^ (v >> 28)
    return (0x9669 >> (x & 0xF)) & 1


def pkt4(reg: int, count: int) -> int:
    """Type-4 header writing ``count`` dwords to ``reg``, ``reg + 1``, ..."""
    return (P.CP_TYPE4_PKT | P.PKT_TYPE4_PKT_SIZE.encode(count) | P.PKT_TYPE4_PKT_SIZE_PARITY.encode(odd_parity(count))
            | P.PKT_TYPE4_PKT_OFFSET.encode(reg) | P.PKT_TYPE4_PKT_OFFSET_PARITY.encode(odd_parity(reg)))


def pkt7(opcode: int, count: int) -> int:
    """Type-7 header of ``opcode`` with ``count`` payload dwords."""
    return (P.CP_TYPE7_PKT | P.PKT_TYPE7_PKT_SIZE.encode(count) | P.PKT_TYPE7_PKT_SIZE_PARITY.encode(odd_parity(count))
            | P.PKT_CP_TYPE7_OPCODE.encode(opcode) | P.PKT_CP_TYPE7_OPCODE_PARITY.encode(odd_parity(opcode)))


class Header(NamedTuple):
    kind: int      # 4 or 7; 0 = not a valid a6xx header
    count: int     # payload dwords
    what: int      # register (type 4) or opcode (type 7)
    why: str       # for kind 0: what is wrong


def decode(word: int) -> Header:
    """Decode a header the way Mesa's pkt_is_type4/pkt_is_type7 test it (type nibble, parities, zero bits)."""
    t = word & _TYPE_MASK
    if t == P.CP_TYPE4_PKT:
        cnt, reg = P.PKT_TYPE4_PKT_SIZE.decode(word), P.PKT_TYPE4_PKT_OFFSET.decode(word)
        if P.PKT_TYPE4_PKT_SIZE_PARITY.decode(word) != odd_parity(cnt):
            return Header(0, 0, 0, f"type-4 header {word:#010x}: count parity bit wrong")
        if P.PKT_TYPE4_PKT_OFFSET_PARITY.decode(word) != odd_parity(reg):
            return Header(0, 0, 0, f"type-4 header {word:#010x}: register parity bit wrong")
        return Header(4, cnt, reg, "")
    if t == P.CP_TYPE7_PKT:
        cnt, op = P.PKT_TYPE7_PKT_SIZE.decode(word), P.PKT_CP_TYPE7_OPCODE.decode(word)
        if word & 0x0F000000:  # pkt_is_type7: bits 24-27 must be zero
            return Header(0, 0, 0, f"type-7 header {word:#010x}: bits 24-27 set")
        if P.PKT_TYPE7_PKT_SIZE_PARITY.decode(word) != odd_parity(cnt):
            return Header(0, 0, 0, f"type-7 header {word:#010x}: count parity bit wrong")
        if P.PKT_CP_TYPE7_OPCODE_PARITY.decode(word) != odd_parity(op):
            return Header(0, 0, 0, f"type-7 header {word:#010x}: opcode parity bit wrong")
        return Header(7, cnt, op, "")
    return Header(0, 0, 0, f"{word:#010x} is neither a type-4 nor a type-7 PM4 header")


def opcode_name(op: int) -> str:
    """Mesa's name of a type-7 opcode on a6xx, or its number."""
    return P.ENUMS["adreno_pm4_type3_packets"].get(op, f"opcode {op:#x}")
