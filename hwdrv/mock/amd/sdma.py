"""The mock SDMA v6 engine: executes the packets of a KFD SDMA queue.

rptr/wptr and the doorbell count bytes; zero dwords are NOPs. Supported: NOP, COPY_LINEAR (count =
bytes - 1), FENCE (32-bit write), TRAP (interrupt with its context id), POLL_REGMEM (memory compare
with mask, blocks and re-polls; the HDP-flush form completes at once), TIMESTAMP GET_GLOBAL (GPU
clock), GCR_REQ (accepted). Anything else stops the queue with an error naming the opcode. Packet
layouts (dword offset, mask, shift of every field) come from gen/sdma6.py.
"""
from __future__ import annotations

from hwdrv.amd.gen import sdma6 as S
from hwdrv.mock.gpumem import GpuPageTable

from .pm4 import COMPARE, QueueError, Waiting

OP_NAMES = {v: k for k, v in sorted(vars(S).items(), reverse=True) if k.startswith("SDMA_OP_") and isinstance(v, int)
            and not k.startswith("SDMA_OP_AQL")}


PACKETS = {k[len("SDMA_PKT_"):-len("_HEADER_op_offset")] for k in vars(S)
           if k.startswith("SDMA_PKT_") and k.endswith("_HEADER_op_offset")}


def _length(packet: str) -> int:
    """Dwords of a packet: one past the largest field offset the header describes (fields of longer
    packet names sharing the prefix, e.g. COPY_LINEAR_BC, are not counted)."""
    longer = [f"SDMA_PKT_{q}_" for q in PACKETS if q.startswith(packet + "_")]
    pre = f"SDMA_PKT_{packet}_"
    return 1 + max(v for k, v in vars(S).items()
                   if k.startswith(pre) and k.endswith("_offset") and not k.startswith(tuple(longer) or ("\0",)))


def _field(words: list[int], packet: str, dword: str, name: str) -> int:
    pre = f"SDMA_PKT_{packet}_{dword}_{name}_"
    return (words[getattr(S, pre + "offset")] >> getattr(S, pre + "shift")) & getattr(S, pre + "mask")


LEN = {p: _length(p) for p in ("COPY_LINEAR", "FENCE", "TRAP", "POLL_REGMEM", "TIMESTAMP_GET_GLOBAL", "GCR_REQ")}


class SdmaRunner(Waiting):
    """Executes one SDMA queue. ``step()`` is the engine's work function."""

    def __init__(self, gpu, queue, hang_timeout: float | None = None):
        super().__init__(hang_timeout)
        self.gpu, self.q = gpu, queue
        self.mem: GpuPageTable = gpu.page_table
        self.rptr = int.from_bytes(self.mem.read(queue.rptr_addr, 8), "little")

    def _dw(self, byte: int) -> int:
        return int.from_bytes(self.mem.read(self.q.ring_base + byte % self.q.ring_size, 4), "little")

    def step(self) -> str:
        while True:
            wptr = int.from_bytes(self.mem.read(self.q.wptr_addr, 8), "little")
            if self.rptr >= wptr:
                return "idle"
            n = self._packet(wptr - self.rptr)
            if n == 0:
                return "blocked"
            self.rptr += 4 * n
            self.mem.write(self.q.rptr_addr, self.rptr.to_bytes(8, "little"))

    def _packet(self, avail: int) -> int:
        hdr = self._dw(self.rptr)
        op = (hdr >> S.SDMA_PKT_NOP_HEADER_op_shift) & S.SDMA_PKT_NOP_HEADER_op_mask
        sub = (hdr >> S.SDMA_PKT_NOP_HEADER_sub_op_shift) & S.SDMA_PKT_NOP_HEADER_sub_op_mask
        where = f"ring byte {self.rptr % self.q.ring_size:#x}"
        if op == S.SDMA_OP_NOP:
            return 1 + _field([hdr], "NOP", "HEADER", "count")
        pkt = {(S.SDMA_OP_COPY, S.SDMA_SUBOP_COPY_LINEAR): "COPY_LINEAR", (S.SDMA_OP_FENCE, 0): "FENCE",
               (S.SDMA_OP_TRAP, 0): "TRAP", (S.SDMA_OP_POLL_REGMEM, 0): "POLL_REGMEM",
               (S.SDMA_OP_TIMESTAMP, S.SDMA_SUBOP_TIMESTAMP_GET_GLOBAL): "TIMESTAMP_GET_GLOBAL",
               (S.SDMA_OP_GCR_REQ, 0): "GCR_REQ"}.get((op, sub))
        if pkt is None:
            raise QueueError(f"unsupported SDMA packet {OP_NAMES.get(op, 'op')} ({op}) sub-op {sub} "
                             f"(header {hdr:#010x}) at {where}")
        n = LEN[pkt]
        if 4 * n > avail:
            raise QueueError(f"SDMA {pkt} at {where} needs {4 * n} bytes, only {avail} written")
        w = [self._dw(self.rptr + 4 * i) for i in range(n)]
        done = getattr(self, pkt.lower())(w, where)
        return n if done is not False else 0

    def copy_linear(self, w, where):
        count = _field(w, "COPY_LINEAR", "COUNT", "count") + 1
        src = _field(w, "COPY_LINEAR", "SRC_ADDR_HI", "src_addr_63_32") << 32 | _field(w, "COPY_LINEAR", "SRC_ADDR_LO", "src_addr_31_0")
        dst = _field(w, "COPY_LINEAR", "DST_ADDR_HI", "dst_addr_63_32") << 32 | _field(w, "COPY_LINEAR", "DST_ADDR_LO", "dst_addr_31_0")
        self.mem.write(dst, self.mem.read(src, count))

    def fence(self, w, where):
        addr = _field(w, "FENCE", "ADDR_HI", "addr_63_32") << 32 | _field(w, "FENCE", "ADDR_LO", "addr_31_0")
        self.mem.write(addr, _field(w, "FENCE", "DATA", "data").to_bytes(4, "little"))

    def trap(self, w, where):
        if self.q.owner is not None:
            self.q.owner.events.interrupt(_field(w, "TRAP", "INT_CONTEXT", "int_context"))

    def poll_regmem(self, w, where):
        if _field(w, "POLL_REGMEM", "HEADER", "hdp_flush"):
            return True
        if not _field(w, "POLL_REGMEM", "HEADER", "mem_poll"):
            raise QueueError(f"SDMA POLL_REGMEM at {where}: register polling is not modelled")
        func = _field(w, "POLL_REGMEM", "HEADER", "func")
        addr = _field(w, "POLL_REGMEM", "ADDR_HI", "addr_63_32") << 32 | _field(w, "POLL_REGMEM", "ADDR_LO", "addr_31_0")
        val = int.from_bytes(self.mem.read(addr, 4), "little")
        mask, ref = _field(w, "POLL_REGMEM", "MASK", "mask"), _field(w, "POLL_REGMEM", "VALUE", "value")
        if func not in COMPARE:
            raise QueueError(f"SDMA POLL_REGMEM at {where}: function {func} is reserved")
        if COMPARE[func](val & mask, ref & mask):
            return self.done()
        return self.blocked(f"POLL_REGMEM at {where}: memory {addr:#x} = {val:#x} (& {mask:#x}) function {func} "
                            f"reference {ref:#x}")

    def timestamp_get_global(self, w, where):
        # the low dword holds address bits 31:3 in place (8-byte aligned): keep the field at its shift
        lo = _field(w, "TIMESTAMP_GET_GLOBAL", "WRITE_ADDR_LO", "write_addr_31_3") << S.SDMA_PKT_TIMESTAMP_GET_GLOBAL_WRITE_ADDR_LO_write_addr_31_3_shift
        addr = _field(w, "TIMESTAMP_GET_GLOBAL", "WRITE_ADDR_HI", "write_addr_63_32") << 32 | lo
        self.mem.write(addr, self.gpu.clock_counter().to_bytes(8, "little"))

    def gcr_req(self, w, where):
        """Cache invalidation from the copy engine: caches are coherent in the mock."""
