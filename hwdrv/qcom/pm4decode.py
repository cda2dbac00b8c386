"""PM4 command-stream decoder (a6xx): type-4 register writes and type-7 packets by name, with their
fields, all from the generated tables (``hwdrv.qcom.gen.adreno_pm4`` for headers, opcodes and packet
payload fields; ``hwdrv.qcom.gen.a6xx`` for register names and fields).

``walk(dwords, base)`` splits a stream into :class:`Packet` s the way Mesa's decoders do: a dword is a
header when its top nibble is 4 or 7 and both parity bits match; anything else is reported as an
invalid dword at its address and the walk resynchronises on the next dword (crashdec's method).
``decode_dump(data, what)`` is the ``hwdrv decode --vendor qcom`` entry point: a kgsl snapshot
(magic) becomes a crashdec report, anything else is read as raw little-endian PM4 dwords.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidArgument
from ..ioctl.bindings import Field
from .gen import a6xx as A
from .gen import adreno_pm4 as P

#: CP_INDIRECT_BUFFER payload: [addr lo, addr hi, size in dwords (20 bits)] (reference qcom.md §2.2;
#: kgsl's ringbuffer writes ``size & 0xFFFFF``); Mesa's XML gives the packet no field table.
IB_SIZE = Field(19, 0, "CP_INDIRECT_BUFFER_2_SIZE")

OPCODES: dict[int, str] = P.ENUMS["adreno_pm4_type3_packets"]
_TYPE_NIBBLE = Field(31, 28, "PM4 packet type")
_TYPE7_ZERO = Field(27, 24, "type-7 bits that must be zero")

# packets whose payload layout Mesa describes under another packet's name
_LAYOUT_ALIAS = {"CP_LOAD_STATE6_FRAG": "CP_LOAD_STATE6", "CP_LOAD_STATE6_GEOM": "CP_LOAD_STATE6"}

# field -> the enum Mesa's XML types it with (adreno_pm4.xml ``type=`` attributes)
_FIELD_ENUMS = {
    "CP_EVENT_WRITE_0_EVENT": "vgt_event_type",
    "CP_LOAD_STATE6_0_STATE_TYPE": "a6xx_state_type",
    "CP_LOAD_STATE6_0_STATE_SRC": "a6xx_state_src",
    "CP_LOAD_STATE6_0_STATE_BLOCK": "a6xx_state_block",
    "CP_WAIT_REG_MEM_0_FUNCTION": "cp_cond_function",
    "CP_WAIT_REG_MEM_0_POLL": "poll_memory_type",
    "CP_SET_MARKER_0_MODE": "a6xx_marker",
}


def parity(v: int) -> int:
    """The PM4 odd-parity bit of ``v`` (freedreno_pm4.h ``pm4_odd_parity_bit``): folds v to a nibble
    and looks it up in 0x9669, so the set bits of v plus this bit are odd."""
    v ^= v >> 16
    v ^= v >> 8
    v ^= v >> 4
    return (0x9669 >> (v & 0xF)) & 1


def _fields_by_owner(module, owners: list[str]) -> dict[str, list[tuple[str, Field]]]:
    """Field constants of ``module`` grouped under the longest owner name they start with."""
    out: dict[str, list[tuple[str, Field]]] = {o: [] for o in owners}
    by_len = sorted(owners, key=len, reverse=True)
    for name, val in vars(module).items():
        if not isinstance(val, Field) or name.startswith("PKT_"):
            continue
        owner = next((o for o in by_len if name.startswith(o + "_")), None)
        if owner is not None:
            out[owner].append((name[len(owner) + 1:], val))
    for lst in out.values():
        lst.sort(key=lambda nf: nf[1].lo)
    return out


REG_FIELDS = _fields_by_owner(A, list(A.REGISTERS.values()))
# payload dword i of packet X: Mesa names its fields X_<i>_FIELD
_PKT_DWORDS = [f"{name}_{i}" for name in OPCODES.values() for i in range(8)]
PKT_FIELDS = _fields_by_owner(P, _PKT_DWORDS)


def reg_name(reg: int) -> str:
    """The a6xx register's name from the generated table, else its hex offset."""
    name = A.REGISTERS.get(reg)
    if name is not None:
        return name
    if A.CP_SCRATCH_REG(0) <= reg <= A.CP_SCRATCH_REG(7):
        return f"CP_SCRATCH[{reg - A.CP_SCRATCH_REG(0)}]"
    if A.CP_PROTECT_REG(0) <= reg <= A.CP_PROTECT_REG(A.CP_PROTECT_LENGTH - 1):
        return f"CP_PROTECT[{reg - A.CP_PROTECT_REG(0)}]"
    return f"{reg:#x}"


def reg_fields(reg: int, value: int) -> dict[str, int]:
    """``value`` of register ``reg`` split into the fields the generated table gives it."""
    return {f: fld.decode(value) for f, fld in REG_FIELDS.get(A.REGISTERS.get(reg, ""), [])}


def opcode_name(op: int) -> str:
    return OPCODES.get(op, f"UNKNOWN_OPCODE_{op:#x}")


@dataclass
class Packet:
    """One decoded packet (or one invalid dword) of a stream."""
    index: int                 # dword index in the stream
    addr: int                  # GPU address of the header (base + 4 * index)
    header: int
    kind: int                  # 4, 7, or 0 for a dword that is not a valid header
    what: int = 0              # register (type 4) or opcode (type 7)
    payload: list[int] = field(default_factory=list)
    problem: str = ""          # why it is invalid / truncated

    @property
    def size(self) -> int:
        """Dwords it occupies (header + payload)."""
        return 1 + len(self.payload)

    @property
    def name(self) -> str:
        if self.kind == 7:
            return opcode_name(self.what)
        if self.kind == 4:
            return f"type-4 {reg_name(self.what)}"
        return "INVALID"

    def field_values(self) -> dict[str, int]:
        """Type-7 payload fields by their Mesa names (``<dword>.<FIELD>``), 64-bit ``_LO``/``_HI``
        pairs merged."""
        if self.kind != 7:
            return {}
        name = _LAYOUT_ALIAS.get(self.name, self.name)
        out: dict[str, int] = {}
        for i, w in enumerate(self.payload):
            for f, fld in PKT_FIELDS.get(f"{name}_{i}", []):
                # a field Mesa stores shifted (``shr=``) comes with an X_SHR constant
                out[f] = fld.decode(w) << getattr(P, f"{name}_{i}_{f}_SHR", 0)
        for k in [k for k in out if k.endswith("_HI")]:
            lo = k[:-3] + "_LO" if k[:-3] + "_LO" in out else k[:-3]
            if lo in out:
                out[lo[:-3] if lo.endswith("_LO") else lo] = out.pop(lo) | out.pop(k) << 32
        if self.name == "CP_INDIRECT_BUFFER" and len(self.payload) >= 3:
            out = {"ADDR": self.payload[0] | self.payload[1] << 32, "SIZE": IB_SIZE.decode(self.payload[2])}
        return out

    def text(self) -> str:
        """One line: name and decoded payload."""
        if self.kind == 0:
            return f"INVALID {self.header:#010x}: {self.problem}"
        trunc = f" [TRUNCATED: {self.problem}]" if self.problem else ""
        if self.kind == 4:
            parts = []
            for i, v in enumerate(self.payload):
                fl = reg_fields(self.what + i, v)
                fs = " ".join(f"{k}={x:#x}" for k, x in fl.items())
                parts.append(f"{reg_name(self.what + i)} = {v:#x}" + (f" ({fs})" if fs else ""))
            return "; ".join(parts) + trunc if parts else f"type-4 write of 0 dwords to {reg_name(self.what)}{trunc}"
        fv = self.field_values()
        shown = []
        for k, v in fv.items():
            enum = _FIELD_ENUMS.get(f"{_LAYOUT_ALIAS.get(self.name, self.name)}_0_{k}")
            label = P.ENUMS[enum].get(v) if enum else None
            shown.append(f"{k}={label}" if label else f"{k}={v:#x}")
        if not fv and self.payload:
            shown = [" ".join(f"{w:#010x}" for w in self.payload[:8]) + (" ..." if len(self.payload) > 8 else "")]
        head = self.name if self.what in OPCODES else f"{self.name} (opcode {self.what:#x}, not an a6xx packet)"
        return f"{head} ({len(self.payload)})" + (" " + " ".join(shown) if shown else "") + trunc

    def memory_access(self) -> tuple[int, str] | None:
        """(GPU address, access) this packet makes the CP touch in memory, where the layout says."""
        fv = self.field_values()
        n = self.name
        if n == "CP_MEM_WRITE" and "ADDR" in fv:
            return fv["ADDR"], "write"
        if n == "CP_REG_TO_MEM" and "DEST" in fv:
            return fv["DEST"], "write"
        if n == "CP_EVENT_WRITE" and "ADDR_0" in fv:
            return fv["ADDR_0"], "write"
        if n == "CP_WAIT_REG_MEM" and fv.get("POLL") == P.POLL_MEMORY and "POLL_ADDR" in fv:
            return fv["POLL_ADDR"], "read"
        if n == "CP_WAIT_MEM_GTE" and "POLL_ADDR" in fv:
            return fv["POLL_ADDR"], "read"
        if n == "CP_MEM_TO_REG" and "SRC" in fv:
            return fv["SRC"], "read"
        if n == "CP_EXEC_CS_INDIRECT" and "ADDR" in fv:
            return fv["ADDR"], "read"
        if (n in _LAYOUT_ALIAS or n == "CP_LOAD_STATE6") and fv.get("STATE_SRC") == P.SS6_INDIRECT \
                and "EXT_SRC_ADDR" in fv:
            return fv["EXT_SRC_ADDR"], "read"
        if n == "CP_INDIRECT_BUFFER" and "ADDR" in fv:
            return fv["ADDR"], "fetch"
        return None


def header_problem(w: int) -> str:
    """Why ``w`` is not a valid a6xx PM4 header ("" when it is one)."""
    t = _TYPE_NIBBLE.decode(w)
    if t == 4:
        cnt, reg = P.PKT_TYPE4_PKT_SIZE.decode(w), P.PKT_TYPE4_PKT_OFFSET.decode(w)
        if P.PKT_TYPE4_PKT_SIZE_PARITY.decode(w) != parity(cnt):
            return f"type-4 count {cnt} has the wrong parity bit"
        if P.PKT_TYPE4_PKT_OFFSET_PARITY.decode(w) != parity(reg):
            return f"type-4 register {reg:#x} has the wrong parity bit"
        return ""
    if t == 7:
        cnt, op = P.PKT_TYPE7_PKT_SIZE.decode(w), P.PKT_CP_TYPE7_OPCODE.decode(w)
        if _TYPE7_ZERO.decode(w):
            return "type-7 bits 24..27 are not zero"
        if P.PKT_TYPE7_PKT_SIZE_PARITY.decode(w) != parity(cnt):
            return f"type-7 count {cnt} has the wrong parity bit"
        if P.PKT_CP_TYPE7_OPCODE_PARITY.decode(w) != parity(op):
            return f"type-7 opcode {op:#x} has the wrong parity bit"
        return ""
    return f"packet type nibble {t:#x} (a6xx uses only type 4 and type 7)"


def header_name(w: int) -> str:
    """What the header dword ``w`` starts: "CP_EXEC_CS (4 dwords)", "type-4 write of 3 dwords to
    SP_CS_CTRL_REG0", or why it is no header."""
    why = header_problem(w)
    if why:
        return f"not a PM4 header ({why})"
    if _TYPE_NIBBLE.decode(w) == 4:
        reg = reg_name(P.PKT_TYPE4_PKT_OFFSET.decode(w))
        return f"type-4 write of {P.PKT_TYPE4_PKT_SIZE.decode(w)} dwords to {reg}"
    return f"{opcode_name(P.PKT_CP_TYPE7_OPCODE.decode(w))} ({P.PKT_TYPE7_PKT_SIZE.decode(w)} dwords)"


def walk(dwords, base: int = 0, start: int = 0, stop: int | None = None) -> list[Packet]:
    """Split ``dwords[start:stop]`` into packets; GPU addresses are ``base + 4 * index``. Invalid
    dwords become one ``Packet(kind=0)`` each; a packet whose payload runs past ``stop`` keeps what
    there is and says so in ``problem``."""
    words = np.asarray(dwords, dtype=np.uint32)
    stop = len(words) if stop is None else min(stop, len(words))
    out: list[Packet] = []
    i = start
    while i < stop:
        w = int(words[i])
        why = header_problem(w)
        if why:
            out.append(Packet(i, base + 4 * i, w, 0, problem=why))
            i += 1
            continue
        kind = _TYPE_NIBBLE.decode(w)
        if kind == 4:
            what, cnt = P.PKT_TYPE4_PKT_OFFSET.decode(w), P.PKT_TYPE4_PKT_SIZE.decode(w)
        else:
            what, cnt = P.PKT_CP_TYPE7_OPCODE.decode(w), P.PKT_TYPE7_PKT_SIZE.decode(w)
        avail = stop - i - 1
        payload = [int(x) for x in words[i + 1:i + 1 + min(cnt, avail)]]
        problem = f"{cnt} payload dwords, {avail} remain" if cnt > avail else ""
        out.append(Packet(i, base + 4 * i, w, kind, what, payload, problem))
        i += 1 + cnt
    return out


def resync(dwords, start: int, stop: int) -> int:
    """The first index in ``[start, stop)`` holding a valid header (``stop`` if none)."""
    words = np.asarray(dwords, dtype=np.uint32)
    for i in range(start, min(stop, len(words))):
        if not header_problem(int(words[i])):
            return i
    return stop


def format_packets(packets: list[Packet]) -> list[str]:
    """``+OFFSET  HEADER  text`` lines."""
    return [f"{p.addr:#010x}  {p.header:08x}  {p.text()}" for p in packets]


def decode_dump(data: bytes, what: str = "dump") -> list[str]:
    """``hwdrv decode --vendor qcom``: a kgsl snapshot (by its magic) as a crashdec report, else raw
    little-endian PM4 dwords decoded packet by packet (addresses are byte offsets in the file)."""
    from . import snapshot
    if snapshot.is_snapshot(data):
        from .crashdec import report_from_snapshot
        return report_from_snapshot(data, device=f"qcom ({what})").to_text().splitlines()
    if len(data) % 4:
        raise InvalidArgument(f"{what}: {len(data)} bytes is not a whole number of 32-bit words; a PM4 dump is "
                              "raw little-endian dwords (or a kgsl snapshot, or a HangReport JSON)")
    return format_packets(walk(np.frombuffer(data, "<u4")))
