"""The mock Adreno a6xx command processor (CP): walks the ringbuffer and the IBs it calls, decodes
type-4 and type-7 PM4 packets, keeps the register file, and launches compute dispatches.

Every layout comes from the generated modules (hwdrv.qcom.gen.adreno_pm4 for packets, .a6xx for
registers). The CP runs as a ``hwdrv.mock.engine.Engine`` work function: it executes packets from
CP_RB_RPTR up to the write pointer the kernel publishes with ``set_wptr`` and reports

* a compute dispatch to ``run_cs(CsState)`` (the ir3 emulator, hwdrv.mock.qcom.ir3emu.run_cs);
* ``on_irq()`` when a CP_EVENT_WRITE with the IRQ bit has written its value (the kernel's timestamp
  interrupt);
* ``on_fault(CpFault)`` for anything the hardware would stop on: an invalid or unknown packet (named,
  with its IB address), a GPU page fault, a register-protection fault, a wait that never completes
  (hang detect after ``hang_timeout`` seconds). The fault's register file state is already set
  (CP_INTERRUPT_STATUS, RBBM_INT_0_STATUS, CP_IB1/IB2_BASE and REM_SIZE, CP_SQE_STAT's packet header);
  the kernel decides what to skip and calls ``resume_at``.
"""
from __future__ import annotations

import importlib
import struct
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hwdrv.errors import MockFault
from hwdrv.mock.engine import Work
from hwdrv.mock.gpumem import GpuPageTable, MemoryFault
from hwdrv.qcom.gen import a6xx as A
from hwdrv.qcom.gen import adreno_pm4 as P

from . import facts as F
from . import pm4
from .cs_state import CONST_VEC4, CsState
from .regmap import RegMap

MAX_IB_DEPTH = 2       # the ring calls IB1, IB1 may call IB2 (kgsl: user code runs as IB1)
PACKETS_PER_STEP = 256


class CpFault(MockFault):
    """A GPU fault the CP raised. ``kind``: "opcode" (invalid/unknown packet), "pagefault", "protect",
    "hang", "shader" (the emulator failed); ``address``: the faulting GPU address for page faults;
    ``ib``: (level, base, size_dwords) of the innermost IB, level 0 = ring; ``packet_addr``: GPU
    address of the packet header; ``header``: the packet's header dword; ``reason``: for page faults,
    the page table's ("unmapped", "read-only", "out-of-range")."""

    def __init__(self, kind: str, msg: str, *, packet_addr: int = 0, header: int = 0, address: int = 0,
                 access: str = "", ib: tuple[int, int, int] = (0, 0, 0), reason: str = ""):
        self.kind, self.packet_addr, self.header, self.address, self.access, self.ib, self.reason = (
            kind, packet_addr, header, address, access, ib, reason)
        super().__init__(msg)


@dataclass
class _Frame:
    level: int      # 0 ring, 1 IB1, 2 IB2
    base: int       # GPU address of dword 0
    size: int       # dwords
    pos: int        # next dword index


@dataclass
class _Wait:
    what: str
    deadline: float
    check: Callable[[], bool]


def _u64(lo: int, hi: int) -> int:
    return (hi << 32) | lo


def _s32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


class CommandProcessor:
    """One mock CP. ``chip`` is "A6XX" (the A630) or "A7XX" (moved HLSQ registers, CP_EVENT_WRITE7)."""

    def __init__(self, memory: GpuPageTable, *, rb_base: int, rb_dwords: int, chip: str = "A6XX",
                 run_cs: Callable[[CsState], None] | None = None, on_irq: Callable[[], None] | None = None,
                 on_fault: Callable[[CpFault], None] | None = None, hang_timeout: float = 2.0):
        self.mem = memory
        self.chip = chip
        self.R = RegMap(chip)
        self.regs: dict[int, int] = {}
        self.rb_dwords = rb_dwords
        self._run_cs = run_cs
        self.on_irq = on_irq or (lambda: None)
        self.on_fault = on_fault
        self.hang_timeout = hang_timeout
        self.wptr = 0
        self.stack: list[_Frame] = []
        self.wait: _Wait | None = None
        self.faulted: CpFault | None = None     # set until the kernel resumes the CP
        self.dispatches = 0
        self._t0 = time.monotonic()
        self._reset_state()
        self.regs[A.CP_RB_BASE], self.regs[A.CP_RB_BASE + 1] = rb_base & 0xFFFFFFFF, rb_base >> 32
        self.regs[A.CP_RB_RPTR] = 0
        self._handlers = {
            P.CP_NOP: self._nop, P.CP_WAIT_FOR_IDLE: self._nop, P.CP_WAIT_MEM_WRITES: self._nop,
            P.CP_WAIT_FOR_ME: self._nop, P.CP_SET_MARKER: self._nop,
            P.CP_MEM_WRITE: self._mem_write, P.CP_WAIT_REG_MEM: self._wait_reg_mem, P.CP_REG_TO_MEM: self._reg_to_mem,
            P.CP_INDIRECT_BUFFER: self._indirect_buffer,
            P.CP_LOAD_STATE6: self._load_state6, P.CP_LOAD_STATE6_FRAG: self._load_state6,
            P.CP_LOAD_STATE6_GEOM: self._load_state6,
            P.CP_EXEC_CS: self._exec_cs, P.CP_EXEC_CS_INDIRECT: self._exec_cs_indirect,
            P.CP_RUN_OPENCL: self._run_opencl,
        }
        if chip == "A6XX":
            self._handlers[P.CP_EVENT_WRITE] = self._event_write
            self._handlers[P.CP_WAIT_MEM_GTE] = self._wait_mem_gte   # a7xx reuses 0x14 for CP_WAIT_TIMESTAMP
        else:
            self._handlers[P.A7XX_CP_EVENT_WRITE7] = self._event_write7

    # --- kernel-facing ----------------------------------------------------------------------------------
    @property
    def rptr(self) -> int:
        return self.regs[A.CP_RB_RPTR]

    def set_wptr(self, wptr: int) -> None:
        """The kernel's CP_RB_WPTR write: dwords up to ``wptr`` (exclusive, wrapping) are ready."""
        self.wptr = wptr
        self.regs[A.CP_RB_WPTR] = wptr

    def resume_at(self, rptr: int) -> None:
        """After a fault (the kernel's recovery): drop the IB stack and any wait, continue at ``rptr``."""
        self.stack.clear()
        self.wait = None
        self.faulted = None
        self.regs[A.CP_RB_RPTR] = rptr
        for r in (A.CP_IB1_BASE, A.CP_IB1_BASE + 1, A.CP_IB1_REM_SIZE, A.CP_IB2_BASE, A.CP_IB2_BASE + 1,
                  A.CP_IB2_REM_SIZE, A.CP_INTERRUPT_STATUS, A.RBBM_INT_0_STATUS, A.CP_HW_FAULT,
                  A.CP_PROTECT_STATUS):
            self.regs[r] = 0
        self._reset_state()

    def reg(self, off: int) -> int:
        return self.regs.get(off, 0)

    def work(self) -> Work:
        """Engine work function: run up to PACKETS_PER_STEP packets."""
        if self.faulted is not None:
            return Work.IDLE
        try:
            for _ in range(PACKETS_PER_STEP):
                if self.wait is not None:
                    if self.wait.check():
                        self.wait = None
                    elif time.monotonic() > self.wait.deadline:
                        w, self.wait = self.wait, None
                        self.regs[A.RBBM_INT_0_STATUS] = self.reg(A.RBBM_INT_0_STATUS) | \
                            A.RBBM_INT_0_STATUS_RBBM_HANG_DETECT.encode(1)
                        raise self._fault("hang", f"GPU hang: {w.what} did not complete within "
                                                  f"{self.hang_timeout}s (RBBM hang detect)")
                    else:
                        return Work.BLOCKED
                if not self._step():
                    return Work.IDLE
            return Work.PROGRESS
        except CpFault as f:
            self.faulted = f
            if self.on_fault is None:
                raise
            self.on_fault(f)
            return Work.PROGRESS if self.faulted is None else Work.IDLE

    # --- fetch ------------------------------------------------------------------------------------------
    def _frame(self) -> _Frame | None:
        while self.stack and self.stack[-1].pos >= self.stack[-1].size:
            self.stack.pop()
            self._publish_ibs()
        if self.stack:
            return self.stack[-1]
        if self.rptr == self.wptr:
            return None
        return _Frame(0, _u64(self.reg(A.CP_RB_BASE), self.reg(A.CP_RB_BASE + 1)), self.rb_dwords, self.rptr)

    def _read_dwords(self, addr: int, n: int, what: str) -> np.ndarray:
        try:
            return np.frombuffer(self.mem.read(addr, 4 * n), dtype=np.uint32)
        except MemoryFault as e:
            raise self._fault("pagefault", f"{what}: {e}", address=e.address,
                              access=e.access, reason=e.reason) from None

    def _step(self) -> bool:
        fr = self._frame()
        if fr is None:
            return False
        self._cur = fr
        addr = fr.base + 4 * fr.pos
        hdr = int(self._read_dwords(addr, 1, "CP fetch of a packet header")[0])
        self._hdr, self._hdr_addr = hdr, addr
        self.regs[A.CP_SQE_STAT_DATA] = hdr            # SQE_STAT $01: header of the packet being run
        h = pm4.decode(hdr)
        if h.kind == 0:
            raise self._opcode_error(f"invalid PM4 header: {h.why}")
        avail = fr.size - fr.pos - 1 if fr.level else self._ring_avail(fr.pos + 1)
        if h.count > avail:
            raise self._opcode_error(f"{self._pkt_name(h)} has {h.count} payload dwords but only {avail} remain "
                                     f"in the {'ring' if fr.level == 0 else f'IB{fr.level}'}")
        payload = self._payload(fr, h.count)
        self._advance(fr, 1 + h.count)
        if h.kind == 4:
            self._write_regs(h.what, payload)
        else:
            fn = self._handlers.get(h.what)
            if fn is None:
                raise self._opcode_error(f"unknown packet {self._pkt_name(h)}: the mock {self.chip} CP does not "
                                         "implement it")
            fn(payload)
        return True

    def _ring_avail(self, pos: int) -> int:
        return (self.wptr - pos) % self.rb_dwords

    def _payload(self, fr: _Frame, n: int) -> list[int]:
        if n == 0:
            return []
        if fr.level:
            return [int(x) for x in self._read_dwords(fr.base + 4 * (fr.pos + 1), n, "CP fetch of a payload")]
        out = []
        pos = (fr.pos + 1) % self.rb_dwords
        while len(out) < n:
            k = min(n - len(out), self.rb_dwords - pos)
            out += [int(x) for x in self._read_dwords(fr.base + 4 * pos, k, "CP fetch of a ring payload")]
            pos = (pos + k) % self.rb_dwords
        return out

    def _advance(self, fr: _Frame, n: int) -> None:
        if fr.level == 0:
            self.regs[A.CP_RB_RPTR] = (fr.pos + n) % self.rb_dwords
        else:
            fr.pos += n
            self._publish_ibs()

    def _publish_ibs(self) -> None:
        """CP_IB1/IB2_BASE and REM_SIZE as the hardware shows them (REM = dwords not yet fetched)."""
        for level, base_reg, rem_reg in ((1, A.CP_IB1_BASE, A.CP_IB1_REM_SIZE), (2, A.CP_IB2_BASE, A.CP_IB2_REM_SIZE)):
            fr = self.stack[level - 1] if len(self.stack) >= level else None
            self.regs[base_reg] = fr.base & 0xFFFFFFFF if fr else 0
            self.regs[base_reg + 1] = fr.base >> 32 if fr else 0
            self.regs[rem_reg] = fr.size - fr.pos if fr else 0

    # --- faults -----------------------------------------------------------------------------------------
    def _pkt_name(self, h: pm4.Header) -> str:
        return f"type-4 write of {h.count} dwords to {h.what:#x}" if h.kind == 4 else \
            f"{pm4.opcode_name(h.what)} (opcode {h.what:#x}, {h.count} dwords)"

    def _where(self) -> str:
        fr = self._cur
        lvl = "ringbuffer" if fr.level == 0 else f"IB{fr.level} {fr.base:#x} (size {fr.size} dwords)"
        return f"packet {self._hdr:#010x} at GPU address {self._hdr_addr:#x} in {lvl}"

    def _fault(self, kind: str, msg: str, **kw) -> CpFault:
        fr = getattr(self, "_cur", None)
        ib = (fr.level, fr.base, fr.size) if fr else (0, 0, 0)
        return CpFault(kind, f"{msg}; {self._where()}" if fr else msg, packet_addr=getattr(self, "_hdr_addr", 0),
                       header=getattr(self, "_hdr", 0), ib=ib, **kw)

    def _opcode_error(self, msg: str) -> CpFault:
        self.regs[A.CP_INTERRUPT_STATUS] = self.reg(A.CP_INTERRUPT_STATUS) | A.CP_INTERRUPT_STATUS_CP_OPCODE_ERROR.encode(1)
        self.regs[A.RBBM_INT_0_STATUS] = self.reg(A.RBBM_INT_0_STATUS) | A.RBBM_INT_0_STATUS_CP_HW_ERROR.encode(1)
        return self._fault("opcode", msg)

    # --- registers --------------------------------------------------------------------------------------
    def kernel_write(self, reg: int, value: int) -> None:
        """A register write by the kernel over the bus (not through the command stream: never protected)."""
        self.regs[reg] = value & 0xFFFFFFFF

    def _protected(self, reg: int, write: bool) -> bool:
        """CP_PROTECT: is this access to ``reg`` from the command stream blocked?"""
        cntl = self.reg(A.CP_PROTECT_CNTL)
        if not A.CP_PROTECT_CNTL_ACCESS_PROT_EN.decode(cntl):
            return False
        last = A.CP_PROTECT_LENGTH - 1
        for i in range(A.CP_PROTECT_LENGTH):
            v = self.reg(A.CP_PROTECT_REG(i))
            if not v:
                continue
            base, span = A.CP_PROTECT_REG_BASE_ADDR.decode(v), A.CP_PROTECT_REG_MASK_LEN.decode(v)
            end = (1 << 32) if i == last and A.CP_PROTECT_CNTL_LAST_SPAN_INF_RANGE.decode(cntl) else base + span
            if base <= reg <= end and (write or A.CP_PROTECT_REG_READ.decode(v)):
                return True
        return False

    def _check_access(self, reg: int, write: bool) -> None:
        if not self._protected(reg, write):
            return
        self.regs[A.CP_PROTECT_STATUS] = (reg & 0x3FFFF) | (0 if write else F.PROTECT_STATUS_READ)
        self.regs[A.CP_INTERRUPT_STATUS] = self.reg(A.CP_INTERRUPT_STATUS) | \
            A.CP_INTERRUPT_STATUS_CP_REGISTER_PROTECTION_ERROR.encode(1)
        self.regs[A.RBBM_INT_0_STATUS] = self.reg(A.RBBM_INT_0_STATUS) | A.RBBM_INT_0_STATUS_CP_HW_ERROR.encode(1)
        name = A.REGISTERS.get(reg, f"{reg:#x}")
        raise self._fault("protect", f"CP register protection fault: {'write to' if write else 'read of'} {name} "
                                     f"({reg:#x}), which CP_PROTECT blocks for command streams")

    def _write_regs(self, reg: int, values: list[int]) -> None:
        for i, v in enumerate(values):
            self._check_access(reg + i, True)
            self.regs[reg + i] = v
            if reg + i == self.R.HLSQ_INVALIDATE_CMD:
                self._invalidate(v)

    def _invalidate(self, v: int) -> None:
        # HLSQ_INVALIDATE_CMD drops state CP_LOAD_STATE6 loaded for the selected stages / IBOs
        if self.R.field("HLSQ_INVALIDATE_CMD_CS_STATE").decode(v):
            self._reset_cs_state()
        if self.R.field("HLSQ_INVALIDATE_CMD_CS_IBO").decode(v):
            self.ibos.clear()

    def _reset_state(self) -> None:
        self._reset_cs_state()
        self.ibos: dict[int, np.ndarray] = {}

    def _reset_cs_state(self) -> None:
        self.consts = np.zeros((CONST_VEC4, 4), dtype=np.uint32)
        self.consts_loaded = np.zeros(CONST_VEC4, dtype=bool)
        self.preload = b""
        self.ubos: dict[int, np.ndarray] = {}
        self.textures: dict[int, np.ndarray] = {}
        self.samplers: dict[int, np.ndarray] = {}

    def _always_on(self) -> int:
        return int((time.monotonic() - self._t0) * F.ALWAYS_ON_HZ)

    def _read_reg(self, off: int) -> int:
        self._check_access(off, False)
        if off in (A.CP_ALWAYS_ON_COUNTER, A.CP_ALWAYS_ON_COUNTER + 1):
            t = self._always_on()
            self.regs[A.CP_ALWAYS_ON_COUNTER], self.regs[A.CP_ALWAYS_ON_COUNTER + 1] = t & 0xFFFFFFFF, t >> 32
        return self.reg(off)

    # --- memory helpers ---------------------------------------------------------------------------------
    def _write_mem(self, addr: int, data: bytes, what: str) -> None:
        try:
            self.mem.write(addr, data)
        except MemoryFault as e:
            raise self._fault("pagefault", f"{what}: {e}", address=e.address,
                              access=e.access, reason=e.reason) from None

    def _read_u32(self, addr: int, what: str) -> int:
        return int(self._read_dwords(addr, 1, what)[0])

    # --- packets ----------------------------------------------------------------------------------------
    def _nop(self, p: list[int]) -> None:
        """CP_NOP / WAIT_FOR_IDLE / WAIT_MEM_WRITES / WAIT_FOR_ME / SET_MARKER: the mock runs every packet to
        completion in order, so the waits are already satisfied and markers change nothing it models."""

    def _need(self, p: list[int], n: int, name: str) -> None:
        if len(p) < n:
            raise self._opcode_error(f"{name} needs at least {n} payload dwords, got {len(p)}")

    def _mem_write(self, p: list[int]) -> None:
        self._need(p, 3, "CP_MEM_WRITE")
        addr = _u64(P.CP_MEM_WRITE_0_ADDR_LO.decode(p[0]), P.CP_MEM_WRITE_1_ADDR_HI.decode(p[1]))
        self._write_mem(addr, struct.pack(f"<{len(p) - 2}I", *p[2:]), "CP_MEM_WRITE")

    def _event_write(self, p: list[int]) -> None:
        self._need(p, 1, "CP_EVENT_WRITE")
        ev = P.CP_EVENT_WRITE_0_EVENT.decode(p[0])
        if ev not in P.ENUMS["vgt_event_type"]:
            raise self._opcode_error(f"CP_EVENT_WRITE of event {ev}, which a6xx's vgt_event_type does not define")
        if len(p) >= 4:
            addr = _u64(P.CP_EVENT_WRITE_1_ADDR_0_LO.decode(p[1]), P.CP_EVENT_WRITE_2_ADDR_0_HI.decode(p[2]))
            if P.CP_EVENT_WRITE_0_TIMESTAMP.decode(p[0]):
                self._write_mem(addr, struct.pack("<Q", self._always_on()), "CP_EVENT_WRITE timestamp")
            else:
                self._write_mem(addr, struct.pack("<I", p[3]), f"CP_EVENT_WRITE {P.ENUMS['vgt_event_type'][ev]}")
        elif len(p) != 1:
            raise self._opcode_error(f"CP_EVENT_WRITE with {len(p)} payload dwords (1 = event only, 4 = with a write)")
        if P.CP_EVENT_WRITE_0_IRQ.decode(p[0]):
            self.on_irq()

    def _event_write7(self, p: list[int]) -> None:
        self._need(p, 1, "CP_EVENT_WRITE7")
        d0 = p[0]
        ev = P.CP_EVENT_WRITE7_0_EVENT.decode(d0)
        if P.CP_EVENT_WRITE7_0_WRITE_ENABLED.decode(d0):
            src, dst = P.CP_EVENT_WRITE7_0_WRITE_SRC.decode(d0), P.CP_EVENT_WRITE7_0_WRITE_DST.decode(d0)
            if dst != P.EV_DST_RAM:
                raise self._opcode_error("CP_EVENT_WRITE7 to on-chip memory (WRITE_DST = EV_DST_ONCHIP) is not modelled")
            self._need(p, 3, "CP_EVENT_WRITE7 with WRITE_ENABLED")
            addr = _u64(p[1], p[2])
            if src == P.EV_WRITE_USER_32B:
                self._need(p, 4, "CP_EVENT_WRITE7 USER_32B")
                data = struct.pack("<I", p[3])
            elif src == P.EV_WRITE_USER_64B:
                self._need(p, 5, "CP_EVENT_WRITE7 USER_64B")
                data = struct.pack("<II", p[3], p[4])
            elif src == P.EV_WRITE_ALWAYSON:
                data = struct.pack("<Q", self._always_on())
            else:
                raise self._opcode_error(f"CP_EVENT_WRITE7 WRITE_SRC {P.ENUMS['event_write_src'].get(src, src)} "
                                         "is not modelled")
            self._write_mem(addr, data, f"CP_EVENT_WRITE7 event {ev}")
        if P.CP_EVENT_WRITE7_0_IRQ.decode(d0):
            self.on_irq()

    def _compare(self, fn: int, value: int, ref: int, signed: bool) -> bool:
        if signed:
            value, ref = _s32(value), _s32(ref)
        ops = {P.WRITE_ALWAYS: lambda: True, P.WRITE_LT: lambda: value < ref, P.WRITE_LE: lambda: value <= ref,
               P.WRITE_EQ: lambda: value == ref, P.WRITE_NE: lambda: value != ref, P.WRITE_GE: lambda: value >= ref,
               P.WRITE_GT: lambda: value > ref}
        if fn not in ops:
            raise self._opcode_error(f"compare function {fn} is not a cp_cond_function")
        return ops[fn]()

    def _block(self, what: str, check: Callable[[], bool]) -> None:
        if not check():
            self.wait = _Wait(f"{what} ({self._where()})", time.monotonic() + self.hang_timeout, check)

    def _wait_reg_mem(self, p: list[int]) -> None:
        self._need(p, 6, "CP_WAIT_REG_MEM")
        fn = P.CP_WAIT_REG_MEM_0_FUNCTION.decode(p[0])
        signed = bool(P.CP_WAIT_REG_MEM_0_SIGNED_COMPARE.decode(p[0]))
        poll = P.CP_WAIT_REG_MEM_0_POLL.decode(p[0])
        addr = _u64(P.CP_WAIT_REG_MEM_1_POLL_ADDR_LO.decode(p[1]), P.CP_WAIT_REG_MEM_2_POLL_ADDR_HI.decode(p[2]))
        ref, mask = P.CP_WAIT_REG_MEM_3_REF.decode(p[3]), P.CP_WAIT_REG_MEM_4_MASK.decode(p[4])
        if poll == P.POLL_MEMORY:
            def read() -> int:
                return self._read_u32(addr, "CP_WAIT_REG_MEM poll")
            what = f"CP_WAIT_REG_MEM on memory {addr:#x}"
        elif poll == P.POLL_REGISTER:
            def read() -> int:
                return self._read_reg(p[1] & 0x3FFFF)
            what = f"CP_WAIT_REG_MEM on register {p[1] & 0x3FFFF:#x}"
        else:
            raise self._opcode_error(f"CP_WAIT_REG_MEM poll type {P.ENUMS['poll_memory_type'].get(poll, poll)} is "
                                     "not modelled")
        name = P.ENUMS["cp_cond_function"].get(fn, fn)
        self._block(f"{what} {name} {ref:#x} (mask {mask:#x})", lambda: self._compare(fn, read() & mask, ref, signed))

    def _wait_mem_gte(self, p: list[int]) -> None:
        self._need(p, 4, "CP_WAIT_MEM_GTE")
        addr = _u64(P.CP_WAIT_MEM_GTE_1_POLL_ADDR_LO.decode(p[1]), P.CP_WAIT_MEM_GTE_2_POLL_ADDR_HI.decode(p[2]))
        ref = P.CP_WAIT_MEM_GTE_3_REF.decode(p[3])
        self._block(f"CP_WAIT_MEM_GTE on {addr:#x} >= {ref:#x} (signed)",
                    lambda: _s32(self._read_u32(addr, "CP_WAIT_MEM_GTE poll")) >= _s32(ref))

    def _reg_to_mem(self, p: list[int]) -> None:
        self._need(p, 3, "CP_REG_TO_MEM")
        reg, cnt = P.CP_REG_TO_MEM_0_REG.decode(p[0]), max(P.CP_REG_TO_MEM_0_CNT.decode(p[0]), 1)
        if P.CP_REG_TO_MEM_0_ACCUMULATE.decode(p[0]):
            raise self._opcode_error("CP_REG_TO_MEM with ACCUMULATE is not modelled")
        dest = _u64(P.CP_REG_TO_MEM_1_DEST.decode(p[1]), P.CP_REG_TO_MEM_2_DEST_HI.decode(p[2]))
        vals = [self._read_reg(reg + i) for i in range(cnt)]
        self._write_mem(dest, struct.pack(f"<{cnt}I", *vals), "CP_REG_TO_MEM")

    def _indirect_buffer(self, p: list[int]) -> None:
        self._need(p, 3, "CP_INDIRECT_BUFFER")
        level = self._cur.level + 1
        if level > MAX_IB_DEPTH:
            raise self._opcode_error("CP_INDIRECT_BUFFER inside an IB2: the CP has two IB levels only")
        base, size = _u64(p[0], p[1]), p[2] & F.IB_MAX_DWORDS
        if base % 4:
            raise self._opcode_error(f"CP_INDIRECT_BUFFER address {base:#x} is not dword aligned")
        if size:
            try:
                self.mem.translate(base, 4 * size, "read")
            except MemoryFault as e:
                raise self._fault("pagefault", f"IB{level} fetch: {e}", address=e.address,
                                  access=e.access, reason=e.reason) from None
            self.stack.append(_Frame(level, base, size, 0))
            self._publish_ibs()

    def _load_state6(self, p: list[int]) -> None:
        self._need(p, 3, "CP_LOAD_STATE6")
        d0 = p[0]
        off, typ = P.CP_LOAD_STATE6_0_DST_OFF.decode(d0), P.CP_LOAD_STATE6_0_STATE_TYPE.decode(d0)
        src, block, n = (P.CP_LOAD_STATE6_0_STATE_SRC.decode(d0), P.CP_LOAD_STATE6_0_STATE_BLOCK.decode(d0),
                         P.CP_LOAD_STATE6_0_NUM_UNIT.decode(d0))
        cs_shader, cs_tex = block == P.SB6_CS_SHADER, block == P.SB6_CS_TEX
        if cs_shader and typ == P.ST6_SHADER:
            unit = 32                      # 128 bytes = 16 instructions
        elif cs_shader and typ == P.ST6_CONSTANTS:
            unit = 4                       # vec4
        elif cs_shader and typ == P.ST6_UBO:
            unit = 2                       # A6XX_UBO descriptor
        elif (cs_shader and typ == P.ST6_IBO) or block in (P.SB6_CS_IBO, P.SB6_IBO):
            unit = 16                      # IBO descriptor (A6XX_TEX_CONST layout)
        elif cs_tex and typ == P.ST6_CONSTANTS:
            unit = 16                      # texture descriptor
        elif cs_tex and typ == P.ST6_SHADER:
            unit = 4                       # sampler
        else:
            # Graphics stages' state: accepted by the hardware, nothing in a compute mock reads it.
            return
        if src == P.SS6_DIRECT:
            data = p[3:3 + unit * n]
            if len(data) < unit * n:
                raise self._opcode_error(f"CP_LOAD_STATE6 DIRECT: {n} units need {unit * n} dwords, the packet has "
                                         f"{len(data)}")
            words = np.array(data, dtype=np.uint32)
        elif src == P.SS6_INDIRECT:
            addr = _u64(p[1], p[2])
            if addr % 4:
                raise self._opcode_error(f"CP_LOAD_STATE6 INDIRECT source {addr:#x} is not dword aligned")
            words = self._read_dwords(addr, unit * n, "CP_LOAD_STATE6 INDIRECT") if n else np.zeros(0, np.uint32)
        else:
            raise self._opcode_error(f"CP_LOAD_STATE6 source {P.ENUMS['a6xx_state_src'].get(src, src)} is not "
                                     "modelled")
        if cs_shader and typ == P.ST6_SHADER:
            self.preload = words.tobytes()
        elif cs_shader and typ == P.ST6_CONSTANTS:
            if off + n > CONST_VEC4:
                raise self._opcode_error(f"CP_LOAD_STATE6 constants c[{off}..{off + n - 1}] past the const file "
                                         f"({CONST_VEC4} vec4)")
            self.consts[off:off + n] = words.reshape(n, 4)
            self.consts_loaded[off:off + n] = True
        else:
            table = {2: self.ubos, 16: self.ibos if not cs_tex else self.textures, 4: self.samplers}[unit]
            for i in range(n):
                table[off + i] = words[i * unit:(i + 1) * unit].copy()

    # --- dispatch ---------------------------------------------------------------------------------------
    def _exec_cs(self, p: list[int]) -> None:
        self._need(p, 4, "CP_EXEC_CS")
        self._dispatch((P.CP_EXEC_CS_1_NGROUPS_X.decode(p[1]), P.CP_EXEC_CS_2_NGROUPS_Y.decode(p[2]),
                        P.CP_EXEC_CS_3_NGROUPS_Z.decode(p[3])))

    def _exec_cs_indirect(self, p: list[int]) -> None:
        self._need(p, 4, "CP_EXEC_CS_INDIRECT")
        addr = _u64(P.CP_EXEC_CS_INDIRECT_1_ADDR_LO.decode(p[1]), P.CP_EXEC_CS_INDIRECT_2_ADDR_HI.decode(p[2]))
        g = self._read_dwords(addr, 3, "CP_EXEC_CS_INDIRECT group counts")
        local = (P.CP_EXEC_CS_INDIRECT_3_LOCALSIZEX.decode(p[3]) + 1, P.CP_EXEC_CS_INDIRECT_3_LOCALSIZEY.decode(p[3]) + 1,
                 P.CP_EXEC_CS_INDIRECT_3_LOCALSIZEZ.decode(p[3]) + 1)
        self._dispatch((int(g[0]), int(g[1]), int(g[2])), local)

    def _run_opencl(self, p: list[int]) -> None:
        # The vendor CL launch: group counts from HLSQ_CS_KERNEL_GROUP_X/Y/Z (tinygrad's CL path)
        base = self.R.HLSQ_CS_KERNEL_GROUP_X
        self._dispatch((self.reg(base), self.reg(base + 1), self.reg(base + 2)))

    def cs_state(self, groups: tuple[int, int, int], local: tuple[int, int, int] | None = None) -> CsState:
        """The CsState the current register file and loaded state describe (see cs_state.py)."""
        R, f = self.R, self.R.field
        c0, c1 = self.reg(R.SP_CS_CTRL_REG0), self.reg(R.SP_CS_CTRL_REG1)
        ts = f("SP_CS_CTRL_REG0_THREADSIZE").decode(c0)
        ts_hlsq = f("HLSQ_CS_CNTL_1_THREADSIZE").decode(self.reg(R.HLSQ_CS_CNTL_1))
        if ts != ts_hlsq:
            raise self._opcode_error(f"SP_CS_CTRL_REG0.THREADSIZE ({ts}) and HLSQ_CS_CNTL_1.THREADSIZE ({ts_hlsq}) "
                                     "differ; the XML says they must match")
        n0 = self.reg(R.HLSQ_CS_NDRANGE_0)
        if local is None:
            local = tuple(f(f"HLSQ_CS_NDRANGE_0_LOCALSIZE{a}").decode(n0) + 1 for a in "XYZ")
        nd = [self.reg(R.HLSQ_CS_NDRANGE_0 + i) for i in range(7)]
        hc, cn0 = self.reg(R.HLSQ_CS_CNTL), self.reg(R.HLSQ_CS_CNTL_0)
        shared = f("SP_CS_CTRL_REG1_SHARED_SIZE").decode(c1)
        pp, ps = self.reg(R.SP_CS_PVT_MEM_PARAM), self.reg(R.SP_CS_PVT_MEM_SIZE)
        mode = self.reg(R.SP_MODE_CONTROL)
        return CsState(
            memory=self.mem,
            shader_iova=_u64(self.reg(R.SP_CS_OBJ_START), self.reg(R.SP_CS_OBJ_START + 1)),
            instrlen=self.reg(R.SP_CS_INSTRLEN),
            first_exec_offset=self.reg(R.SP_CS_OBJ_FIRST_EXEC_OFFSET),
            preloaded=self.preload,
            threadsize=128 if ts == A.THREAD128 else 64,
            full_regs=f("SP_CS_CTRL_REG0_FULLREGFOOTPRINT").decode(c0),
            half_regs=f("SP_CS_CTRL_REG0_HALFREGFOOTPRINT").decode(c0),
            mergedregs=bool(f("SP_CS_CTRL_REG0_MERGEDREGS").decode(c0)),
            branchstack=f("SP_CS_CTRL_REG0_BRANCHSTACK").decode(c0),
            consts=self.consts.copy(), consts_loaded=self.consts_loaded.copy(),
            constlen_vec4=f("HLSQ_CS_CNTL_CONSTLEN").decode(hc) << A.HLSQ_CS_CNTL_CONSTLEN_SHR,
            const_enabled=bool(f("HLSQ_CS_CNTL_ENABLED").decode(hc)),
            constant_demotion=bool(A.SP_MODE_CONTROL_CONSTANT_DEMOTION_ENABLE.decode(mode)),
            isammode=A.SP_MODE_CONTROL_ISAMMODE.decode(mode),
            ibos=dict(self.ibos), ubos=dict(self.ubos), textures=dict(self.textures), samplers=dict(self.samplers),
            ibo_table_iova=_u64(self.reg(R.SP_CS_IBO), self.reg(R.SP_CS_IBO + 1)),
            ibo_count=self.reg(R.SP_CS_IBO_COUNT),
            tex_const_iova=_u64(self.reg(R.SP_CS_TEX_CONST), self.reg(R.SP_CS_TEX_CONST + 1)),
            tex_samp_iova=_u64(self.reg(R.SP_CS_TEX_SAMP), self.reg(R.SP_CS_TEX_SAMP + 1)),
            tex_count=self.reg(R.SP_CS_TEX_COUNT),
            kernel_dim=f("HLSQ_CS_NDRANGE_0_KERNELDIM").decode(n0),
            local_size=local, global_size=(nd[1], nd[3], nd[5]), global_offset=(nd[2], nd[4], nd[6]),
            groups=groups,
            wgid_regid=f("HLSQ_CS_CNTL_0_WGIDCONSTID").decode(cn0),
            wgsize_regid=f("HLSQ_CS_CNTL_0_WGSIZECONSTID").decode(cn0),
            wgoffset_regid=f("HLSQ_CS_CNTL_0_WGOFFSETCONSTID").decode(cn0),
            localid_regid=f("HLSQ_CS_CNTL_0_LOCALIDREGID").decode(cn0),
            linearlocalid_regid=f("HLSQ_CS_CNTL_1_LINEARLOCALIDREGID").decode(self.reg(R.HLSQ_CS_CNTL_1)),
            shared_size=32 * 1024 if shared == 0 else (shared + 1) * 1024,
            pvt_iova=_u64(self.reg(R.SP_CS_PVT_MEM_ADDR), self.reg(R.SP_CS_PVT_MEM_ADDR + 1)),
            pvt_per_fiber=A.SP_CS_PVT_MEM_PARAM_MEMSIZEPERITEM.decode(pp) << A.SP_CS_PVT_MEM_PARAM_MEMSIZEPERITEM_SHR,
            pvt_total=A.SP_CS_PVT_MEM_SIZE_TOTALPVTMEMSIZE.decode(ps) << A.SP_CS_PVT_MEM_SIZE_TOTALPVTMEMSIZE_SHR,
            pvt_per_wave_layout=bool(A.SP_CS_PVT_MEM_SIZE_PERWAVEMEMLAYOUT.decode(ps)),
            hw_stack_offset=A.SP_CS_PVT_MEM_HW_STACK_OFFSET_OFFSET.decode(self.reg(R.SP_CS_PVT_MEM_HW_STACK_OFFSET))
            << A.SP_CS_PVT_MEM_HW_STACK_OFFSET_OFFSET_SHR,
            regs=dict(self.regs),
        )

    def _dispatch(self, groups: tuple[int, int, int], local: tuple[int, int, int] | None = None) -> None:
        st = self.cs_state(groups, local)
        if st.instrlen == 0:
            raise self._opcode_error("compute dispatch with SP_CS_INSTRLEN = 0 (no program)")
        try:   # the SP fetches the whole program from SP_CS_OBJ_START: INSTRLEN past the buffer faults
            self.mem.translate(st.shader_iova, st.instrlen * 128, "fetch")
        except MemoryFault as e:
            raise self._fault("pagefault", f"SP instruction fetch (SP_CS_INSTRLEN = {st.instrlen} x 128 bytes from "
                                           f"SP_CS_OBJ_START {st.shader_iova:#x}): {e}", address=e.address,
                              access=e.access, reason=e.reason) from None
        run = self._run_cs or _default_run_cs()
        self.dispatches += 1
        try:
            run(st)
        except MemoryFault as e:
            raise self._fault("pagefault", f"shader memory access: {e}", address=e.address,
                              access=e.access, reason=e.reason) from None
        except CpFault:
            raise
        except MockFault as e:
            raise self._fault("shader", f"compute dispatch failed: {e}") from e


def _default_run_cs() -> Callable[[CsState], None]:
    try:    # by module name, so sys.modules decides (not a package attribute left by an earlier import)
        ir3emu = importlib.import_module("hwdrv.mock.qcom.ir3emu")
    except ImportError:
        raise MockFault("CP_EXEC_CS: ir3 emulator not available (hwdrv.mock.qcom.ir3emu is not installed); "
                        "the mock CP cannot run compute dispatches without it") from None
    return ir3emu.run_cs
