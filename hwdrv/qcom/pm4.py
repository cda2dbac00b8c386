"""PM4 packets for the a6xx command processor, built from the generated Mesa fields.

Type-4 packets write consecutive registers; type-7 packets carry an opcode and a payload. Header
bit positions are Mesa's ``PKT_*`` accessors (hwdrv.qcom.gen.adreno_pm4); the parity bit makes the
number of set bits of the field plus the bit odd (freedreno_pm4.h ``pm4_calc_odd_parity_bit``).
"""
from __future__ import annotations

from ..ioctl.bindings import encode
from .gen import adreno_pm4 as P

_U32 = 0xFFFFFFFF


def odd_parity(v: int) -> int:
    """1 when ``v`` has an even number of set bits, so that bits plus parity are odd."""
    return 1 - bin(v).count("1") % 2


def pkt4(reg: int, values: list[int]) -> list[int]:
    """Write ``values`` to ``reg``, ``reg + 1``, ... (at most 127 dwords per packet)."""
    n = len(values)
    if not 0 < n <= P.PKT_TYPE4_PKT_SIZE.mask >> P.PKT_TYPE4_PKT_SIZE.shift:
        raise ValueError(f"a type-4 packet writes 1..127 registers, got {n}")
    return [P.CP_TYPE4_PKT | P.PKT_TYPE4_PKT_SIZE.encode(n) | P.PKT_TYPE4_PKT_SIZE_PARITY.encode(odd_parity(n))
            | P.PKT_TYPE4_PKT_OFFSET.encode(reg) | P.PKT_TYPE4_PKT_OFFSET_PARITY.encode(odd_parity(reg)),
            *(v & _U32 for v in values)]


def pkt7(opcode: int, payload: list[int]) -> list[int]:
    """Opcode packet ``opcode`` with ``payload`` dwords."""
    n = len(payload)
    return [P.CP_TYPE7_PKT | P.PKT_TYPE7_PKT_SIZE.encode(n) | P.PKT_TYPE7_PKT_SIZE_PARITY.encode(odd_parity(n))
            | P.PKT_CP_TYPE7_OPCODE.encode(opcode) | P.PKT_CP_TYPE7_OPCODE_PARITY.encode(odd_parity(opcode)),
            *(v & _U32 for v in payload)]


def lohi(addr: int) -> list[int]:
    return [addr & _U32, addr >> 32]


def wait_for_idle() -> list[int]:
    """CP_WAIT_FOR_IDLE: the CP waits until earlier work has drained."""
    return pkt7(P.CP_WAIT_FOR_IDLE, [])


def event(ev: int, addr: int | None = None, value: int = 0, timestamp: bool = False,
          irq: bool = False) -> list[int]:
    """CP_EVENT_WRITE of ``ev``; with ``addr`` the CP writes ``value`` (or, with ``timestamp``, the
    64-bit always-on counter) there once the event has completed (a release)."""
    d0 = encode(P, "CP_EVENT_WRITE_0", EVENT=ev, TIMESTAMP=int(timestamp), IRQ=int(irq))
    if addr is None:
        return pkt7(P.CP_EVENT_WRITE, [d0])
    return pkt7(P.CP_EVENT_WRITE, [d0, *lohi(addr), value])


def wait_mem_ge(addr: int, ref: int) -> list[int]:
    """CP_WAIT_REG_MEM: poll the dword at ``addr`` until it is >= ``ref`` (unsigned)."""
    d0 = encode(P, "CP_WAIT_REG_MEM_0", FUNCTION=P.WRITE_GE, POLL=P.POLL_MEMORY)
    return pkt7(P.CP_WAIT_REG_MEM, [d0, *lohi(addr), ref, _U32, WAIT_POLL_DELAY])


#: CP_WAIT_REG_MEM_5 DELAY_LOOP_CYCLES between polls (tinygrad and Mesa use 16-32)
WAIT_POLL_DELAY = 32


def load_state(state_type: int, block: int, num_unit: int, addr: int, dst_off: int = 0) -> list[int]:
    """CP_LOAD_STATE6_FRAG of ``num_unit`` units from GPU memory at ``addr`` (INDIRECT)."""
    d0 = encode(P, "CP_LOAD_STATE6_0", DST_OFF=dst_off, STATE_TYPE=state_type, STATE_SRC=P.SS6_INDIRECT,
                STATE_BLOCK=block, NUM_UNIT=num_unit)
    return pkt7(P.CP_LOAD_STATE6_FRAG, [d0, *lohi(addr)])


def load_state_direct(state_type: int, block: int, num_unit: int, data: list[int], dst_off: int = 0) -> list[int]:
    """CP_LOAD_STATE6_FRAG with the state inline (DIRECT; dwords 1-2 unused)."""
    d0 = encode(P, "CP_LOAD_STATE6_0", DST_OFF=dst_off, STATE_TYPE=state_type, STATE_SRC=P.SS6_DIRECT,
                STATE_BLOCK=block, NUM_UNIT=num_unit)
    return pkt7(P.CP_LOAD_STATE6_FRAG, [d0, 0, 0, *data])


def set_marker(mode: int) -> list[int]:
    return pkt7(P.CP_SET_MARKER, [encode(P, "CP_SET_MARKER_0", MODE=mode)])


def exec_cs(gx: int, gy: int, gz: int) -> list[int]:
    """CP_EXEC_CS: run the programmed compute shader over gx * gy * gz workgroups."""
    return pkt7(P.CP_EXEC_CS, [0, P.CP_EXEC_CS_1_NGROUPS_X.encode(gx), P.CP_EXEC_CS_2_NGROUPS_Y.encode(gy),
                               P.CP_EXEC_CS_3_NGROUPS_Z.encode(gz)])


def indirect_buffer(addr: int, ndwords: int) -> list[int]:
    return pkt7(P.CP_INDIRECT_BUFFER, [*lohi(addr), ndwords])
