"""The mock compute command processor: executes the PM4 stream of a KFD compute queue.

On a doorbell it reads the ring between the read pointer (its own, written back to the queue's
rptr address in dwords) and the write pointer the host stored (dwords), and executes type-3
packets: SET_SH_REG / SET_UCONFIG_REG (register file), DISPATCH_DIRECT (runs the RDNA3 emulator
with the COMPUTE_* register state), ACQUIRE_MEM and EVENT_WRITE (caches are coherent in the mock:
accepted), WAIT_REG_MEM (32-bit compare on memory; blocks and re-polls), RELEASE_MEM (writes
32/64-bit data or the GPU clock, then raises the event interrupt), INDIRECT_BUFFER (nested
stream), NOP and type-2 filler. Anything else stops the queue with an error naming the packet.
Opcodes, register offsets and field positions come from gen/pm4.py and gen/gc11.py.
"""
from __future__ import annotations

import os
import threading
import time

from hwdrv.amd.gen import gc11 as G
from hwdrv.amd.gen import pm4 as PM
from hwdrv.mock.gpumem import GpuPageTable

from .rdna3.dispatch import dispatch

LDS_GRANULE = 512        # COMPUTE_PGM_RSRC2.LDS_SIZE unit on gfx7+ compute (Mesa ac_shader_get_lds_alloc_granularity)
SCRATCH_WAVESIZE_SHIFT = 8  # COMPUTE_TMPRING_SIZE.WAVESIZE unit on gfx11: 256 bytes (Mesa ac_gpu_info)
KERNEL_TIMEOUT_S = float(os.environ.get("HWDRV_MOCK_AMD_KERNEL_TIMEOUT", "30"))
# A queue stuck on one wait this long is declared hung (as the scheduler's hang detection would,
# followed by a reset that KFD reports as an HW_EXCEPTION event).
HANG_TIMEOUT_S = float(os.environ.get("HWDRV_MOCK_AMD_HANG_TIMEOUT", "30"))
_SEG = (G.GC_BASE__INST0_SEG0, G.GC_BASE__INST0_SEG1, G.GC_BASE__INST0_SEG2, G.GC_BASE__INST0_SEG3)
OPCODE_NAMES = {}
for _k, _v in sorted(vars(PM).items()):
    if _k.startswith("PACKET3_") and isinstance(_v, int) and 0 <= _v <= 0xFF and not _k.endswith(("_START", "_END")):
        OPCODE_NAMES.setdefault(_v, _k)


def reg(name: str) -> int:
    """Absolute dword address of a gfx11 register: GC segment base + offset (gc_11_0_0_offset.h)."""
    return _SEG[getattr(G, f"reg{name}_BASE_IDX")] + getattr(G, f"reg{name}")


def _shift(encoder) -> int:
    """Bit position of a packet field, from its nvd.h encoder macro (FIELD(x) = x << shift)."""
    return encoder(1).bit_length() - 1


# field widths of packet dwords are the PM4 spec's (reference/amd.md 2.3); positions come from nvd.h
WRM_FUNCTION = (_shift(PM.WAIT_REG_MEM_FUNCTION), 3)
WRM_MEM_SPACE = (_shift(PM.WAIT_REG_MEM_MEM_SPACE), 2)
WRM_OPERATION = (_shift(PM.WAIT_REG_MEM_OPERATION), 2)
RM_DST_SEL = (_shift(PM.PACKET3_RELEASE_MEM_DST_SEL), 2)
RM_INT_SEL = (_shift(PM.PACKET3_RELEASE_MEM_INT_SEL), 3)
RM_DATA_SEL = (_shift(PM.PACKET3_RELEASE_MEM_DATA_SEL), 3)
IB_SIZE_BITS = _shift(PM.INDIRECT_BUFFER_PRE_ENB) - 1       # IB_SIZE is dw3 bits 0..19 (below CHAIN at 20)


def _get(word: int, f: tuple[int, int]) -> int:
    return (word >> f[0]) & ((1 << f[1]) - 1)


COMPARE = {0: lambda v, r: True, 1: lambda v, r: v < r, 2: lambda v, r: v <= r, 3: lambda v, r: v == r,
           4: lambda v, r: v != r, 5: lambda v, r: v >= r, 6: lambda v, r: v > r}


class QueueError(Exception):
    """The queue cannot go on (unknown packet, bad field): stops the queue; KFD reports it as a
    hardware exception."""


class _Stream:
    """Dwords of the ring (circular, from rptr) or of an indirect buffer."""

    def __init__(self, mem: GpuPageTable, base: int, ndw: int, pos: int, end: int, ring: bool):
        self.mem, self.base, self.ndw, self.pos, self.end, self.ring = mem, base, ndw, pos, end, ring

    def dword(self, i: int) -> int:
        idx = (self.pos + i) % self.ndw if self.ring else self.pos + i
        return int.from_bytes(self.mem.read(self.base + 4 * idx, 4), "little")

    def left(self) -> int:
        return self.end - self.pos


class Waiting:
    """Tracks how long a queue has been blocked on the same wait; past ``hang_timeout`` it is a hang."""

    def __init__(self, hang_timeout: float | None):
        self.hang_timeout = HANG_TIMEOUT_S if hang_timeout is None else hang_timeout
        self.blocked_on: str | None = None
        self.since = 0.0

    def blocked(self, what: str) -> bool:
        if what != self.blocked_on:
            self.blocked_on, self.since = what, time.monotonic()
        elif time.monotonic() - self.since > self.hang_timeout:
            raise QueueError(f"queue hang: {what} unsatisfied for {self.hang_timeout:g} s")
        return False

    def done(self) -> bool:
        self.blocked_on = None
        return True


class Pm4Runner(Waiting):
    """Executes one PM4 compute queue. ``step()`` is the engine's work function."""

    def __init__(self, gpu, queue, hang_timeout: float | None = None):
        super().__init__(hang_timeout)
        self.gpu, self.q = gpu, queue
        self.mem: GpuPageTable = gpu.page_table
        self.regs: dict[int, int] = {}
        self.rptr = self._read64(queue.rptr_addr)       # the CP resumes where the write-back says
        self.ibs: list[_Stream] = []
        self.dispatches = 0
        #: set when the queue is destroyed: a running dispatch stops (KFD preempts the queue)
        self.cancel = threading.Event()

    def _read64(self, va: int) -> int:
        return int.from_bytes(self.mem.read(va, 8), "little")

    def _write64(self, va: int, v: int) -> None:
        self.mem.write(va, (v & (1 << 64) - 1).to_bytes(8, "little"))

    def step(self) -> str:
        """Run packets until the ring is empty ("idle") or a wait is unsatisfied ("blocked")."""
        ndw = self.q.ring_size // 4
        while True:
            if self.ibs:
                s = self.ibs[-1]
                if s.left() <= 0:
                    self.ibs.pop()
                    continue
            else:
                wptr = self._read64(self.q.wptr_addr)
                if self.rptr >= wptr:
                    return "idle"
                s = _Stream(self.mem, self.q.ring_base, ndw, self.rptr, wptr, True)
            n = self._packet(s)
            if n == 0:
                return "blocked"
            s.pos += n
            if s.ring:
                self.rptr += n
                self._write64(self.q.rptr_addr, self.rptr)

    # --- one packet -----------------------------------------------------------------------------------
    def _packet(self, s: _Stream) -> int:
        """Execute the packet at s.pos; returns its length in dwords (0: blocked, retry later)."""
        hdr = s.dword(0)
        ptype = PM.CP_PACKET_GET_TYPE(hdr)
        where = f"{'IB' if s is not None and not s.ring else 'ring'} dword {s.pos:#x}"
        if ptype == PM.PACKET_TYPE2:
            return 1
        if ptype != PM.PACKET_TYPE3:
            raise QueueError(f"PM4 type-{ptype} packet (header {hdr:#010x}) at {where}: compute queues take type-3 only")
        op, count = PM.CP_PACKET3_GET_OPCODE(hdr), PM.CP_PACKET_GET_COUNT(hdr)
        if op == PM.PACKET3_NOP and count == 0x3FFF:
            return 1                                   # one-dword NOP
        size = count + 2
        if s.left() < size:
            raise QueueError(f"{OPCODE_NAMES.get(op, hex(op))} at {where} needs {size} dwords, only {s.left()} written")
        body = [s.dword(1 + i) for i in range(count + 1)]
        fn = _HANDLERS.get(op)
        if fn is None:
            raise QueueError(f"unsupported PM4 packet {OPCODE_NAMES.get(op, 'opcode')} ({op:#04x}, header {hdr:#010x}) "
                             f"at {where}")
        done = fn(self, body, where)
        return size if done is not False else 0

    def _set_regs(self, body, start: int, lo: int, hi: int, name: str, where: str) -> None:
        base = start + body[0]
        if not (lo <= base and base + len(body) - 1 <= hi):
            raise QueueError(f"{name} at {where}: registers {base:#x}.. outside [{lo:#x}, {hi:#x})")
        for i, v in enumerate(body[1:]):
            self.regs[base + i] = v

    def set_sh_reg(self, body, where):
        self._set_regs(body, PM.PACKET3_SET_SH_REG_START, PM.PACKET3_SET_SH_REG_START, PM.PACKET3_SET_SH_REG_END,
                       "SET_SH_REG", where)

    def set_uconfig_reg(self, body, where):
        self._set_regs(body, PM.PACKET3_SET_UCONFIG_REG_START, PM.PACKET3_SET_UCONFIG_REG_START,
                       PM.PACKET3_SET_UCONFIG_REG_END, "SET_UCONFIG_REG", where)

    def accept(self, body, where):
        """ACQUIRE_MEM / EVENT_WRITE / NOP: caches are coherent in the mock; nothing to do."""

    def wait_reg_mem(self, body, where):
        ctl, lo, hi, ref, mask = body[0], body[1], body[2], body[3], body[4]
        func = _get(ctl, WRM_FUNCTION)
        if func not in COMPARE:
            raise QueueError(f"WAIT_REG_MEM at {where}: function {func} is reserved")
        if _get(ctl, WRM_MEM_SPACE) == 1:
            addr = (hi << 32 | lo) & ~3
            val = int.from_bytes(self.mem.read(addr, 4), "little")
            what = f"memory {addr:#x}"
        elif _get(ctl, WRM_OPERATION) == 1:
            return True               # write-wait-write on registers (HDP flush request/done): completes at once
        else:
            val = self.regs.get(lo, 0)
            what = f"register {lo:#x}"
        if COMPARE[func](val & mask, ref & mask):
            return self.done()
        return self.blocked(f"WAIT_REG_MEM at {where}: {what} = {val:#x} (& {mask:#x}) function {func} "
                            f"reference {ref:#x}")

    def release_mem(self, body, where):
        sel, lo, hi, dlo, dhi, ctx = body[1], body[2], body[3], body[4], body[5], body[6]
        data_sel, int_sel = _get(sel, RM_DATA_SEL), _get(sel, RM_INT_SEL)
        addr = hi << 32 | lo
        if data_sel == 1:
            self.mem.write(addr, dlo.to_bytes(4, "little"))
        elif data_sel == 2:
            self.mem.write(addr, (dhi << 32 | dlo).to_bytes(8, "little"))
        elif data_sel == 3:
            self.mem.write(addr, self.gpu.clock_counter().to_bytes(8, "little"))
        elif data_sel != 0:
            raise QueueError(f"RELEASE_MEM at {where}: DATA_SEL {data_sel} (perf counter / GDS) is not modelled")
        if int_sel and self.q.owner is not None:
            self.q.owner.events.interrupt(ctx)

    def indirect_buffer(self, body, where):
        lo, hi, ctl = body[0], body[1], body[2]
        if not ctl & PM.INDIRECT_BUFFER_VALID:
            raise QueueError(f"INDIRECT_BUFFER at {where}: VALID bit not set")
        if len(self.ibs) >= 2:
            raise QueueError(f"INDIRECT_BUFFER at {where}: IBs nest at most two levels")
        size = ctl & ((1 << (IB_SIZE_BITS + 1)) - 1)
        self.ibs.append(_Stream(self.mem, (hi << 32 | lo) & ~3, size, 0, size, False))

    def dispatch_direct(self, body, where):
        dims, init = body[0:3], body[3]
        r = self.regs
        if not G.COMPUTE_DISPATCH_INITIATOR__CS_W32_EN.decode(init):
            raise QueueError(f"DISPATCH_DIRECT at {where}: wave64 (CS_W32_EN clear) is not modelled; gfx11 code objects "
                             "from LLVM are wave32")
        block = tuple(getattr(G, f"COMPUTE_NUM_THREAD_{a}__NUM_THREAD_FULL").decode(r.get(reg(f"COMPUTE_NUM_THREAD_{a}"), 1))
                      for a in "XYZ")
        if not all(block):
            raise QueueError(f"DISPATCH_DIRECT at {where}: COMPUTE_NUM_THREAD_X/Y/Z = {block} (0 work-items)")
        grid_items = None
        if G.COMPUTE_DISPATCH_INITIATOR__USE_THREAD_DIMENSIONS.decode(init):
            grid = tuple(-(-d // b) for d, b in zip(dims, block))
            if G.COMPUTE_DISPATCH_INITIATOR__PARTIAL_TG_EN.decode(init):
                grid_items = tuple(dims)
        else:
            grid = tuple(dims)
        if 0 in grid:
            return True                 # an empty dispatch does nothing
        rsrc1, rsrc2 = r.get(reg("COMPUTE_PGM_RSRC1"), 0), r.get(reg("COMPUTE_PGM_RSRC2"), 0)
        pgm = (r.get(reg("COMPUTE_PGM_HI"), 0) << 32 | r.get(reg("COMPUTE_PGM_LO"), 0)) << 8
        user = [r.get(reg("COMPUTE_USER_DATA_0") + i, 0) for i in range(16)]
        tmpring = r.get(reg("COMPUTE_TMPRING_SIZE"), 0)
        scratch = (r.get(reg("COMPUTE_DISPATCH_SCRATCH_BASE_HI"), 0) << 32 |
                   r.get(reg("COMPUTE_DISPATCH_SCRATCH_BASE_LO"), 0)) << 8
        dispatch(self.mem, pgm_addr=pgm, rsrc1=rsrc1, rsrc2=rsrc2, rsrc3=r.get(reg("COMPUTE_PGM_RSRC3"), 0),
                 user_sgprs=user, grid=grid, block=block,
                 lds_bytes=G.COMPUTE_PGM_RSRC2__LDS_SIZE.decode(rsrc2) * LDS_GRANULE,
                 scratch_base=scratch,
                 scratch_per_wave=G.COMPUTE_TMPRING_SIZE__WAVESIZE.decode(tmpring) << SCRATCH_WAVESIZE_SHIFT,
                 deadline=time.monotonic() + KERNEL_TIMEOUT_S, cancel=self.cancel, grid_items=grid_items)
        self.dispatches += 1


_HANDLERS = {PM.PACKET3_SET_SH_REG: Pm4Runner.set_sh_reg, PM.PACKET3_SET_UCONFIG_REG: Pm4Runner.set_uconfig_reg,
             PM.PACKET3_ACQUIRE_MEM: Pm4Runner.accept, PM.PACKET3_EVENT_WRITE: Pm4Runner.accept,
             PM.PACKET3_NOP: Pm4Runner.accept, PM.PACKET3_WAIT_REG_MEM: Pm4Runner.wait_reg_mem,
             PM.PACKET3_RELEASE_MEM: Pm4Runner.release_mem, PM.PACKET3_INDIRECT_BUFFER: Pm4Runner.indirect_buffer,
             PM.PACKET3_DISPATCH_DIRECT: Pm4Runner.dispatch_direct}
