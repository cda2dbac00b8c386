"""The mock kgsl driver: ``/dev/kgsl-3d0`` ioctls, mmap, the ringbuffer, timestamps and fault handling.

Written from qualcomm-linux/kgsl (kgsl.c, kgsl_drawobj.c, adreno.c, adreno_drawctxt.c,
adreno_dispatch.c, adreno_a6xx_ringbuffer.c); docs/qcom-kgsl-rules.md maps each rule to its function.
Structs and numbers come from hwdrv.qcom.gen.kgsl; the GPU behind it is the mock CP (cp.py).

One ``KgslDevice`` is the GPU and the (single) calling process: memory entries and the GPU page table
are per process in kgsl, contexts are owned by the fd (dev_priv) that created them. GPU_COMMAND writes
the kernel's ring wrapper (identifier NOPs, the soptimestamp CP_MEM_WRITE, one CP_INDIRECT_BUFFER per
IB, the eoptimestamp CP_EVENT_WRITE CACHE_FLUSH_TS with IRQ) into the ringbuffer and moves the CP's
write pointer; a context's retired timestamp is what the CP wrote into its memstore record.
"""
from __future__ import annotations

import collections
import errno as E
import os
import struct
import threading
import time
from typing import Any, Callable

from hwdrv.ioctl.bindings import sizeof
from hwdrv.ioctl.kernel import MAP_FIXED, MAP_FIXED_NOREPLACE, PROT_READ
from hwdrv.mock.engine import Engine
from hwdrv.mock.gpumem import GpuPageTable, MemoryFault
from hwdrv.mock.kernel import Errno, MockDriver, MockKernel
from hwdrv.mock.physmem import PhysBlock
from hwdrv.qcom.gen import a6xx as A
from hwdrv.qcom.gen import adreno_pm4 as P
from hwdrv.qcom.gen import kgsl as K
from hwdrv.qcom.gen import kgsl_snapshot as S

from . import facts as F
from . import pm4
from . import snapshot as snap
from .context import DrawContext, Submission, create_flags, timestamp_cmp
from .cp import CommandProcessor, CpFault
from .cs_state import CsState
from .memory import PAGE, ProcessMemory

DEVICE_PATH = "/dev/kgsl-3d0"
SNAPSHOT_DUMP = "/sys/class/kgsl/kgsl-3d0/snapshot/dump"
MEMSTORE_REC = sizeof(K.ffi, "struct kgsl_devmemstore")
_SOP = K.ffi.offsetof("struct kgsl_devmemstore", "soptimestamp")
_EOP = K.ffi.offsetof("struct kgsl_devmemstore", "eoptimestamp")
#: how kgsl's log lines begin (dev_crit/dev_err on the kgsl-3d0 device of the kgsl driver)
DEV_PREFIX = "kgsl kgsl-3d0: "
#: the process name the mock's log lines and snapshots give (kgsl uses the task's comm)
COMM = "hwdrv"
#: the process page table's base address the mock reports (TTBR0 in the fault lines, ptbase in the snapshot):
#: the mock has no physical page table, so it names one fixed, page-aligned value
PTBASE = 0x1_0000_0000
RB_GPUADDR = F.MEMSTORE_TOKEN_ADDRESS - 16 * PAGE   # a kernel global below the memstore (kgsl globals sit there)
WAIT_FOREVER_CAP = 60.0
_IOC_IN, _IOC_OUT = 1 << 30, 2 << 30   # asm-generic ioctl.h direction bits (_IOC_WRITE / _IOC_READ)   # the mock's bound on "wait forever" (timeout 0): every mock wait ends


def pkt7_nop(count: int) -> int:
    return pm4.pkt7(P.CP_NOP, count)


def _mask(x: int) -> int:
    return x & 0xFFFFFFFF


class FdState:
    """kgsl_device_private: one open of the device node."""

    def __init__(self, dev: "KgslDevice"):
        self.dev = dev
        self.closed = False


class KgslDevice:
    """The mock A630 behind /dev/kgsl-3d0 (see the module doc)."""

    def __init__(self, kernel: MockKernel, *, run_cs: Callable[[CsState], None] | None = None,
                 hang_timeout: float | None = None, sync: bool | None = None):
        self.kernel = kernel
        self.lock = threading.RLock()
        self.cv = threading.Condition(self.lock)
        self.pt = GpuPageTable("kgsl")
        self.mem = ProcessMemory(self.pt)
        self.contexts: dict[int, DrawContext] = {}
        self.submissions: list[Submission] = []
        self.fds: set[FdState] = set()
        self.faults: list[CpFault] = []
        self.pending_snapshot: bytes | None = None
        if hang_timeout is None:
            hang_timeout = float(os.environ.get("HWDRV_MOCK_QCOM_HANG_TIMEOUT", "2.0"))
        self._run_cs, self._hang_timeout, self._sync = run_cs, hang_timeout, sync
        self._power_up()
        kernel.add_file(SNAPSHOT_DUMP, self._read_snapshot)

    def _power_up(self) -> None:
        """The GPU's memstore, ringbuffer, CP and its engine (at creation, and again when an fd opens
        after the last one closed: the mock releases them with the last fd, as the process exits)."""
        # memstore: one kgsl_devmemstore record per context id, mapped for the GPU at the token address
        self.memstore = PhysBlock(F.MEMSTORE_SIZE, "kgsl-memstore")
        self.pt.map(F.MEMSTORE_TOKEN_ADDRESS, self.memstore.host_addr, F.MEMSTORE_SIZE)
        self.ring = PhysBlock(F.RB_SIZE, "kgsl-ringbuffer")
        self.pt.map(RB_GPUADDR, self.ring.host_addr, F.RB_SIZE)
        self.rb_dwords = F.RB_SIZE // 4
        self.wptr = 0
        self.cp = CommandProcessor(self.pt, rb_base=RB_GPUADDR, rb_dwords=self.rb_dwords, chip="A6XX",
                                   run_cs=self._run_cs, on_irq=self._irq, on_fault=self._fault,
                                   hang_timeout=self._hang_timeout)
        self._protect_init()
        self.engine = Engine("qcom-cp", self.cp.work, sync=self._sync)
        self.powered = True

    def _power_down(self) -> None:
        """Stop the CP's engine and free the memstore and ring (after the last fd closed)."""
        self.engine.stop()
        self.pt.unmap(F.MEMSTORE_TOKEN_ADDRESS, F.MEMSTORE_SIZE)
        self.pt.unmap(RB_GPUADDR, F.RB_SIZE)
        self.memstore.close()
        self.ring.close()
        self.submissions.clear()
        self.powered = False

    def _protect_init(self) -> None:
        """a6xx_protect_init: program CP_PROTECT_CNTL and one CP_PROTECT_REG per a630_protected_regs span."""
        self.cp.kernel_write(A.CP_PROTECT_CNTL, A.CP_PROTECT_CNTL_ACCESS_PROT_EN.encode(1)
                             | A.CP_PROTECT_CNTL_ACCESS_FAULT_ON_VIOL_EN.encode(1)
                             | A.CP_PROTECT_CNTL_LAST_SPAN_INF_RANGE.encode(1))
        for i, (start, end, noaccess) in enumerate(F.A630_PROTECTED_REGS):
            self.cp.kernel_write(A.CP_PROTECT_REG(i), A.CP_PROTECT_REG_BASE_ADDR.encode(start)
                                 | A.CP_PROTECT_REG_MASK_LEN.encode(end - start) | A.CP_PROTECT_REG_READ.encode(noaccess))

    # --- memstore ---------------------------------------------------------------------------------------
    def _ms(self, ctx_id: int, off: int) -> int:
        return struct.unpack_from("<I", self.memstore.view(), ctx_id * MEMSTORE_REC + off)[0]

    def _ms_write(self, ctx_id: int, off: int, value: int) -> None:
        self.memstore.view()[ctx_id * MEMSTORE_REC + off:ctx_id * MEMSTORE_REC + off + 4] = \
            memoryview(struct.pack("<I", _mask(value)))

    def retired(self, ctx: DrawContext) -> int:
        return self._ms(ctx.id, _EOP)

    def consumed(self, ctx: DrawContext) -> int:
        return self._ms(ctx.id, _SOP)

    # --- contexts ---------------------------------------------------------------------------------------
    def get_owner(self, st: FdState, ctx_id: int) -> DrawContext | None:
        """kgsl_context_get_owner: the context if it exists, is not detached and belongs to this fd."""
        c = self.contexts.get(ctx_id)
        if c is None or c.detached or c.owner is not st:
            return None
        return c

    def create_context(self, st: FdState, flags: int) -> DrawContext:
        local = create_flags(flags, preemption=True)
        with self.lock:
            ids = [i for i in range(1, F.MEMSTORE_SIZE // MEMSTORE_REC) if i not in self.contexts]
            mine = sum(1 for c in self.contexts.values() if c.owner is st and not c.detached)
            if not ids or mine >= F.MAX_CONTEXTS_PER_PROC:
                raise Errno(E.ENOSPC, "kgsl_context_init: no free context id")
            c = DrawContext(ids[0], st, local)
            self.contexts[c.id] = c
            self._ms_write(c.id, _SOP, 0)
            self._ms_write(c.id, _EOP, 0)
            return c

    def detach(self, c: DrawContext) -> None:
        """kgsl_context_detach: waits for the context's queued commands (bounded), then frees its id."""
        deadline = time.monotonic() + WAIT_FOREVER_CAP
        with self.lock:
            c.detached = True
            self.cv.notify_all()
        while timestamp_cmp(self.retired(c), c.timestamp) < 0 and not c.invalid and time.monotonic() < deadline:
            self._drive(0.005)
        with self.lock:
            self.contexts.pop(c.id, None)

    # --- submission -------------------------------------------------------------------------------------
    def _emit(self, words: list[int]) -> int:
        """Write ``words`` to the ring at wptr (a wrapper never straddles the end: a NOP pads to it)."""
        n = len(words)
        if n >= self.rb_dwords - 1:
            raise Errno(E.EINVAL, f"a command needs {n} ring dwords; the ring has {self.rb_dwords}")
        if self.wptr + n > self.rb_dwords:
            pad = self.rb_dwords - self.wptr
            self._wait_space(pad)
            self._write_ring(self.wptr, [pm4.pkt7(P.CP_NOP, pad - 1)] + [0] * (pad - 1))
            self.wptr = 0
            self.cp.set_wptr(0)
        self._wait_space(n)
        start = self.wptr
        self._write_ring(start, words)
        self.wptr = (start + n) % self.rb_dwords
        return start

    def _write_ring(self, at: int, words: list[int]) -> None:
        v = self.ring.view(dtype="<u4")
        v[at:at + len(words)] = [_mask(w) for w in words]

    def _wait_space(self, n: int) -> None:
        deadline = time.monotonic() + WAIT_FOREVER_CAP
        while (self.cp.rptr - self.wptr - 1) % self.rb_dwords < n:
            if time.monotonic() > deadline:
                raise Errno(E.ETIMEDOUT, "adreno_ringbuffer_allocspace: the CP made no room in the ring")
            self.lock.release()
            try:
                self._drive(0.002)
            finally:
                self.lock.acquire()

    def wrapper(self, c: DrawContext, ts: int, ibs: list[tuple[int, int]]) -> list[int]:
        """a6xx_ringbuffer_submitcmd's packets around a command object (adreno_a6xx_ringbuffer.c)."""
        rec = F.MEMSTORE_TOKEN_ADDRESS + c.id * MEMSTORE_REC
        ifpc = P.CP_SET_MARKER_0_MARKER_MODE.encode(P.SET_IFPC_MODE)
        w = [pm4.pkt7(P.CP_NOP, 1), F.CMD_IDENTIFIER,
             pm4.pkt7(P.CP_SET_MARKER, 1), ifpc | P.CP_SET_MARKER_0_IFPC_MODE.encode(P.IFPC_DISABLE),
             pm4.pkt7(P.CP_MEM_WRITE, 3), _mask(rec + _SOP), (rec + _SOP) >> 32, ts,
             pm4.pkt7(P.CP_NOP, 1), F.START_IB_IDENTIFIER,
             pm4.pkt7(P.CP_SET_MARKER, 1), P.CP_SET_MARKER_0_MODE.encode(P.RM6_IB1LIST_START)]
        for addr, dwords in ibs:
            w += [pm4.pkt7(P.CP_INDIRECT_BUFFER, 3), _mask(addr), addr >> 32, dwords & F.IB_MAX_DWORDS]
        w += [pm4.pkt7(P.CP_SET_MARKER, 1), P.CP_SET_MARKER_0_MODE.encode(P.RM6_IB1LIST_END),
              pm4.pkt7(P.CP_EVENT_WRITE, 1), P.CP_EVENT_WRITE_0_EVENT.encode(P.PC_CCU_INVALIDATE_DEPTH),
              pm4.pkt7(P.CP_EVENT_WRITE, 1), P.CP_EVENT_WRITE_0_EVENT.encode(P.PC_CCU_INVALIDATE_COLOR),
              pm4.pkt7(P.CP_EVENT_WRITE, 4),
              P.CP_EVENT_WRITE_0_EVENT.encode(P.CACHE_FLUSH_TS) | P.CP_EVENT_WRITE_0_IRQ.encode(1),
              _mask(rec + _EOP), (rec + _EOP) >> 32, ts,
              pm4.pkt7(P.CP_NOP, 1), F.END_IB_IDENTIFIER,
              pm4.pkt7(P.CP_SET_MARKER, 1), ifpc | P.CP_SET_MARKER_0_IFPC_MODE.encode(P.IFPC_ENABLE)]
        return w

    def queue(self, c: DrawContext, ibs: list[tuple[int, int]], user_ts: int) -> int:
        """adreno_dispatcher_queue_cmds for one command (or marker: ibs == [])."""
        with self.lock:
            if c.invalid:
                raise Errno(E.EDEADLK, f"kgsl_check_context_state: context {c.id} was invalidated by a GPU fault")
            if c.detached:
                raise Errno(E.ENOENT, f"kgsl_check_context_state: context {c.id} is detached")
            self._wait_queue(c)
            if c.flags & K.KGSL_CONTEXT_USER_GENERATED_TS:
                if timestamp_cmp(c.timestamp, user_ts) >= 0:
                    raise Errno(E.ERANGE, f"adreno_dispatcher_queue_cmds: user timestamp {user_ts} is not newer "
                                          f"than the last issued {c.timestamp}")
                ts = user_ts
            else:
                ts = _mask(c.timestamp + 1)
            c.timestamp = ts
            if c.flags & K.KGSL_CONTEXT_IFH_NOP:   # "skips every command" (benchmark mode)
                ibs = []
            words = self.wrapper(c, ts, ibs)
            start = self._emit(words)
            self.submissions.append(Submission(c.id, ts, start, (start + len(words)) % self.rb_dwords))
            self.cp.set_wptr(self.wptr)
            faulted = c.fault_pending
            c.fault_pending = False
        self.engine.kick()
        if faulted:
            raise Errno(E.EPROTO, f"context {c.id} faulted earlier; the command was queued (EPROTO = success)")
        return ts

    def _wait_queue(self, c: DrawContext) -> None:
        # adreno_dispatcher_queue_cmds: at most _context_drawqueue_size - 1 commands in flight per context
        deadline = time.monotonic() + WAIT_FOREVER_CAP
        while sum(1 for s in self.submissions if s.ctx == c.id) >= F.CONTEXT_DRAWQUEUE_SIZE - 1:
            if time.monotonic() > deadline:
                raise Errno(E.ETIMEDOUT, f"context {c.id}: its drawqueue stayed full")
            self.lock.release()
            try:
                self._drive(0.002)
            finally:
                self.lock.acquire()

    # --- waiting ----------------------------------------------------------------------------------------
    def _drive(self, dt: float) -> None:
        """Let the CP run (sync engines run inline here) and sleep up to ``dt`` for an interrupt."""
        self.engine.poll() if self.engine.sync else self.engine.check()
        with self.cv:
            self.cv.wait(dt)

    def wait_timestamp(self, c: DrawContext, ts: int, timeout_ms: int) -> None:
        """adreno_waittimestamp / adreno_drawctxt_wait (0 = forever, bounded by the mock's cap)."""
        if c.detached:
            raise Errno(E.ENOENT, f"adreno_waittimestamp: context {c.id} is detached")
        if c.invalid:
            raise Errno(E.EDEADLK, f"adreno_drawctxt_wait: context {c.id} was invalidated by a GPU fault")
        if timestamp_cmp(ts, c.timestamp) > 0:
            raise Errno(E.EINVAL, f"kgsl_add_event: timestamp {ts} was never queued on context {c.id} "
                                  f"(last queued {c.timestamp})")
        limit = WAIT_FOREVER_CAP if timeout_ms == 0 else timeout_ms / 1000.0
        deadline = time.monotonic() + limit
        self.engine.kick()
        while timestamp_cmp(self.retired(c), ts) < 0 and not c.invalid and not c.detached:
            if time.monotonic() >= deadline:
                raise Errno(E.ETIMEDOUT, f"context {c.id}: timestamp {ts} not retired within {timeout_ms} ms "
                                         f"(retired {self.retired(c)})")
            self._drive(min(0.005, max(deadline - time.monotonic(), 0.0)))
        if c.invalid:
            raise Errno(E.EDEADLK, f"adreno_drawctxt_wait: context {c.id} was invalidated while waiting")
        if c.detached:
            raise Errno(E.EINVAL, f"adreno_drawctxt_wait: context {c.id} was detached while waiting")
        if c.fault_pending:
            c.fault_pending = False
            raise Errno(E.EPROTO, f"context {c.id}: the device faulted since the last check (EPROTO = success)")

    def _irq(self) -> None:
        """The CP's CACHE_FLUSH_TS interrupt: retire submissions whose eop timestamp landed, wake waiters."""
        with self.lock:
            keep = []
            for s in self.submissions:
                c = self.contexts.get(s.ctx)
                if c is not None and timestamp_cmp(self.retired(c), s.timestamp) < 0:
                    keep.append(s)
            self.submissions = keep
            self.cv.notify_all()

    # --- faults -----------------------------------------------------------------------------------------
    def _guilty(self) -> Submission | None:
        """The submission whose ring range holds the CP's read pointer (the oldest unretired one)."""
        r = self.cp.rptr
        for s in self.submissions:
            inside = s.ring_start <= r < s.ring_end if s.ring_start < s.ring_end else (r >= s.ring_start or r < s.ring_end)
            if inside:
                return s
        return self.submissions[0] if self.submissions else None

    def _fault(self, f: CpFault) -> None:
        """adreno_dispatcher fault handling (process_cmdobj_fault): snapshot, then
        * FT disabled (NO_FAULT_TOLERANCE, or INVALIDATE_ON_FAULT): the guilty context is invalidated at once
          (reset status GUILTY, memstore timestamps = last queued so waiters wake, its queued commands
          dropped from the ring) and every later submit/wait gets EDEADLK;
        * default fault tolerance: a replay of a deterministic fault faults again, so the policy ends by
          skipping the command (its timestamp still retires); the context stays valid, is marked
          ADRENO_CONTEXT_FAULT (the next wait or submit returns EPROTO once) and its reset status is GUILTY.
        The CP restarts after the faulting command."""
        with self.lock:
            self.faults.append(f)
            s = self._guilty()
            c = self.contexts.get(s.ctx) if s else None
            if f.kind == "pagefault":
                self._page_fault(c, f)
            if c is not None:
                self._fault_header(c, s)
            if c is not None and not c.flags & K.KGSL_CONTEXT_NO_SNAPSHOT and self.pending_snapshot is None:
                self.pending_snapshot = self._snapshot(c, f)
            if c is None:
                self.cp.resume_at(self.wptr)
                self.cv.notify_all()
                return
            # the fault record before the status that announces it: a reader that sees the status
            # (the property ioctls do not take this lock) must see which timestamp faulted
            c.total_fault_count += 1
            c.last_faulted_ts = s.timestamp
            c.reset_status = K.KGSL_CTX_STAT_GUILTY_CONTEXT_RESET_EXT
            if c.flags & (K.KGSL_CONTEXT_NO_FAULT_TOLERANCE | K.KGSL_CONTEXT_INVALIDATE_ON_FAULT):
                c.invalid = True
                for other in self.submissions:
                    if other.ctx == c.id and other is not s:   # drop: one NOP over the whole wrapper
                        n = (other.ring_end - other.ring_start) % self.rb_dwords
                        if other.ring_start + n <= self.rb_dwords:
                            self._write_ring(other.ring_start, [pkt7_nop(n - 1)] + [0] * (n - 1))
                self._ms_write(c.id, _SOP, c.timestamp)
                self._ms_write(c.id, _EOP, c.timestamp)
                self.submissions = [x for x in self.submissions if x.ctx != c.id]
            else:
                c.fault_pending = True
                self._ms_write(c.id, _SOP, s.timestamp)
                self._ms_write(c.id, _EOP, s.timestamp)
                self.submissions = [x for x in self.submissions if x is not s]
            self.cp.resume_at(s.ring_end)
            self.cv.notify_all()

    def _printk(self, text: str) -> None:
        """dev_crit/dev_err(device->dev, ...): the device's prefix, then the text."""
        self.kernel.kmsg.printk(f"{DEV_PREFIX}{text}", level=2)

    def _page_fault(self, c: DrawContext | None, f: CpFault) -> None:
        """kgsl_iommu_fault_handler for a translation (nothing mapped) or permission (read-only page)
        fault: kgsl_iommu_add_fault_info (FAULT_INFO contexts) and kgsl_iommu_print_fault's lines."""
        kind = "permission" if f.reason == "read-only" else "translation"
        write = f.access in ("write", "atomic")
        if c is not None and c.flags & K.KGSL_CONTEXT_FAULT_INFO:
            ftype = (K.KGSL_PAGEFAULT_TYPE_PERMISSION if kind == "permission" else K.KGSL_PAGEFAULT_TYPE_TRANSLATION) \
                | (K.KGSL_PAGEFAULT_TYPE_WRITE if write else K.KGSL_PAGEFAULT_TYPE_READ)
            rec = K.ffi.new("struct kgsl_pagefault_report *", {"fault_addr": f.address, "fault_type": ftype})
            c.faults.append((K.KGSL_FAULT_TYPE_PAGEFAULT, bytes(K.ffi.buffer(rec))))
        self._printk(f"GPU PAGE FAULT: addr = {f.address:X} pid= {os.getpid()} name={COMM} "
                     f"drawctxt={c.id if c else 0} context pid = {os.getpid() if c else 0}")
        self._printk(f"context=gfx3d_user TTBR0=0x{PTBASE:x} ({'write' if write else 'read'} {kind} fault)")

    def _fault_header(self, c: DrawContext, s: Submission) -> None:
        """adreno_fault_header: pr_fault (``comm[pid]: ``) with the CP's position."""
        r = self.cp.reg
        ib1, ib2 = r(A.CP_IB1_BASE) | r(A.CP_IB1_BASE + 1) << 32, r(A.CP_IB2_BASE) | r(A.CP_IB2_BASE + 1) << 32
        ctype = "CL" if (c.flags & K.KGSL_CONTEXT_TYPE_MASK) >> K.KGSL_CONTEXT_TYPE_SHIFT == K.KGSL_CONTEXT_TYPE_CL \
            else "ANY"
        who = f"{COMM}[{os.getpid()}]: "
        self._printk(f"{who}gpu fault ctx {c.id} ctx_type {ctype} ts {s.timestamp} status {r(A.RBBM_STATUS):08X} "
                     f"rb {self.cp.rptr:04x}/{self.wptr:04x} ib1 {ib1:016X}/{r(A.CP_IB1_REM_SIZE):04x} "
                     f"ib2 {ib2:016X}/{r(A.CP_IB2_REM_SIZE):04x}")
        self._printk(f"{who}cmdline: {COMM}")

    def fault_report(self, st: FdState, p: Any) -> None:
        """kgsl_ioctl_get_fault_report: only for an invalidated FAULT_INFO context of this fd. No list:
        the number of fault types. A list of all-zero ``kgsl_fault``: their type and count. A list
        with pointers: the records copied there (at most ``size`` bytes each)."""
        c = self.get_owner(st, int(p.context_id))
        if c is None or not c.flags & K.KGSL_CONTEXT_FAULT_INFO or not c.invalid:
            raise Errno(E.EINVAL, f"kgsl_ioctl_get_fault_report: context {int(p.context_id)} is not an invalidated "
                                  "FAULT_INFO context of this fd")
        if not p.faultlist:
            p.faultnents = K.KGSL_FAULT_TYPE_MAX
            return
        ksize = sizeof(K.ffi, "struct kgsl_fault")
        size, n, ptr = min(ksize, int(p.faultsize)), int(p.faultnents), int(p.faultlist)
        entries = []
        for i in range(n):
            e = K.ffi.new("struct kgsl_fault *")
            K.ffi.memmove(e, MockDriver.read_arg(ptr + i * int(p.faultsize), size), size)
            entries.append(e)
        if all(not e.fault for e in entries):         # kgsl_update_fault_count
            counts = collections.Counter(t for t, _ in c.faults)
            at = ptr
            for t in range(1, K.KGSL_FAULT_TYPE_MAX):
                if counts[t] and (at - ptr) // int(p.faultsize) < n:
                    e = K.ffi.new("struct kgsl_fault *", {"type": t, "count": counts[t]})
                    MockDriver.write_arg(at, bytes(K.ffi.buffer(e))[:size])
                    at += int(p.faultsize)
            return
        by_type = {}                                      # kgsl_update_fault_details
        for e in entries:
            if e.type >= K.KGSL_FAULT_TYPE_MAX:
                raise Errno(E.EINVAL, f"kgsl_update_fault_details: fault type {e.type}")
            by_type[int(e.type)] = e
        done = collections.Counter()
        for t, rec in c.faults:
            e = by_type.get(t)
            if e is None or done[t] >= e.count:
                continue
            MockDriver.write_arg(int(e.fault) + done[t] * int(e.size), rec[:min(len(rec), int(e.size))])
            done[t] += 1

    def _snapshot(self, c: DrawContext, f: CpFault) -> bytes:
        """kgsl_device_snapshot: header, OS (contexts), REGS, RB_V2, the IBs (IB_V2), the memstore."""
        ring = [int(x) for x in self.ring.view(dtype="<u4")]
        rb = {"start": 0, "end": self.rb_dwords, "rbsize": self.rb_dwords, "wptr": self.wptr, "rptr": self.cp.rptr,
              "ts_queued": c.timestamp, "ts_retired": self.retired(c), "gpuaddr": RB_GPUADDR, "id": 0, "data": ring}
        ibs = []
        for lvl in (1, 2):
            if f.ib[0] >= lvl:
                fr = self.cp.stack[lvl - 1] if len(self.cp.stack) >= lvl else None
                if fr is not None:
                    try:
                        ibs.append((fr.base, list(struct.unpack(f"<{fr.size}I", self.pt.read(fr.base, 4 * fr.size)))))
                    except MemoryFault:
                        pass    # the IB's memory is gone (freed while running): kgsl skips objects it cannot find
        ctxs = [snap.ContextRecord(x.id, x.timestamp, self.consumed(x), self.retired(x))
                for x in sorted(self.contexts.values(), key=lambda x: x.id)]
        s = snap.Snapshot(gpuid=0xFFFFFFFF, chipid=F.A630["chip_id"], seconds=int(time.time()), current_context=c.id,
                          pid=os.getpid(), comm=COMM, contexts=ctxs, regs=dict(self.cp.regs), rb=rb, ibs=ibs,
                          objects=[(S.SNAPSHOT_GPU_OBJECT_GLOBAL, F.MEMSTORE_TOKEN_ADDRESS,
                                    bytes(self.memstore.view()))],
                          memlist=[(e.gpuaddr, e.size, (e.flags & K.KGSL_MEMTYPE_MASK) >> K.KGSL_MEMTYPE_SHIFT)
                                   for e in sorted(self.mem.entries.values(), key=lambda e: e.gpuaddr)
                                   if not e.pending_free])
        return snap.build(s, ptbase=PTBASE)

    def _read_snapshot(self) -> bytes:
        """/sys/class/kgsl/kgsl-3d0/snapshot/dump: reading it whole releases it (empty when none)."""
        with self.lock:
            data, self.pending_snapshot = self.pending_snapshot, None
        return data or b""

    # --- teardown ---------------------------------------------------------------------------------------
    def release_fd(self, st: FdState) -> None:
        """kgsl_release: detach the fd's contexts; the process memory goes with the last fd."""
        for c in [c for c in self.contexts.values() if c.owner is st]:
            self.detach(c)
        with self.lock:
            self.fds.discard(st)
            last = not self.fds
        if last:
            self.mem.release_all()
            self._power_down()


class KgslDriver(MockDriver):
    """/dev/kgsl-3d0: dispatch on the ioctl number (kgsl_ioctl_funcs), arguments read and written in place."""

    name = "kgsl"

    def __init__(self, dev: KgslDevice):
        self.dev = dev
        self._ioctls: dict[int, tuple[str, Callable[[FdState, Any], None]]] = {
            K.IOCTL_KGSL_DEVICE_GETPROPERTY: ("struct kgsl_device_getproperty", self.getproperty),
            K.IOCTL_KGSL_SETPROPERTY: ("struct kgsl_device_getproperty", self.setproperty),
            K.IOCTL_KGSL_DRAWCTXT_CREATE: ("struct kgsl_drawctxt_create", self.drawctxt_create),
            K.IOCTL_KGSL_DRAWCTXT_DESTROY: ("struct kgsl_drawctxt_destroy", self.drawctxt_destroy),
            K.IOCTL_KGSL_GPUMEM_ALLOC_ID: ("struct kgsl_gpumem_alloc_id", self.gpumem_alloc_id),
            K.IOCTL_KGSL_GPUMEM_FREE_ID: ("struct kgsl_gpumem_free_id", self.gpumem_free_id),
            K.IOCTL_KGSL_GPUMEM_GET_INFO: ("struct kgsl_gpumem_get_info", self.gpumem_get_info),
            K.IOCTL_KGSL_GPUOBJ_ALLOC: ("struct kgsl_gpuobj_alloc", self.gpuobj_alloc),
            K.IOCTL_KGSL_GPUOBJ_FREE: ("struct kgsl_gpuobj_free", self.gpuobj_free),
            K.IOCTL_KGSL_GPUOBJ_INFO: ("struct kgsl_gpuobj_info", self.gpuobj_info),
            K.IOCTL_KGSL_MAP_USER_MEM: ("struct kgsl_map_user_mem", self.map_user_mem),
            K.IOCTL_KGSL_SHAREDMEM_FREE: ("struct kgsl_sharedmem_free", self.sharedmem_free),
            K.IOCTL_KGSL_GPU_COMMAND: ("struct kgsl_gpu_command", self.gpu_command),
            K.IOCTL_KGSL_DEVICE_WAITTIMESTAMP_CTXTID: ("struct kgsl_device_waittimestamp_ctxtid", self.waittimestamp),
            K.IOCTL_KGSL_CMDSTREAM_READTIMESTAMP_CTXTID: ("struct kgsl_cmdstream_readtimestamp_ctxtid",
                                                          self.readtimestamp),
            K.IOCTL_KGSL_GET_FAULT_REPORT: ("struct kgsl_fault_report", lambda st, p: dev.fault_report(st, p)),
        }
        self._by_nr = {cmd & 0xFF: (cmd, typ, fn) for cmd, (typ, fn) in self._ioctls.items()}

    # --- file operations --------------------------------------------------------------------------------
    def open(self, path: str, flags: int) -> FdState:
        st = FdState(self.dev)
        with self.dev.lock:
            if not self.dev.powered:
                self.dev._power_up()
            self.dev.fds.add(st)
        return st

    def close(self, st: FdState) -> None:
        st.closed = True
        self.dev.release_fd(st)

    def ioctl(self, st: FdState, request: int, arg: int) -> int:
        """kgsl_ioctl_helper: the handler is chosen by the ioctl *number*; min(kernel, user) argument bytes
        are copied in (when both directions have IOC_IN, the rest zero) and out (both IOC_OUT, only on
        success: an error such as EPROTO leaves the caller's struct untouched)."""
        if (request >> 8) & 0xFF != K.KGSL_IOC_TYPE:
            raise Errno(E.ENOTTY, f"kgsl_ioctl: {request:#x} is not a kgsl ioctl (type byte {K.KGSL_IOC_TYPE:#x})")
        nr = request & 0xFF
        ent = self._by_nr.get(nr)
        if ent is None:
            known = {v & 0xFF: k for k, v in vars(K).items() if k.startswith("IOCTL_KGSL_") and isinstance(v, int)}
            raise Errno(E.ENOTTY, f"kgsl_ioctl: {known.get(nr, f'nr {nr:#x}')} (request {request:#x}) is not "
                                  "served by the mock")
        kcmd, typ, fn = ent
        ksize, usize = (kcmd >> 16) & 0x3FFF, (request >> 16) & 0x3FFF
        copy = min(ksize, usize)
        buf = K.ffi.new(typ + " *")
        if kcmd & _IOC_IN and request & _IOC_IN and copy:
            K.ffi.memmove(buf, self.read_arg(arg, copy), copy)
        fn(st, buf)
        if kcmd & _IOC_OUT and request & _IOC_OUT and copy:
            self.write_arg(arg, bytes(K.ffi.buffer(buf, copy)))
        return 0

    def mmap(self, st: FdState, addr: int, size: int, prot: int, flags: int, offset: int) -> int:
        if offset % PAGE:
            raise Errno(E.EINVAL, "kgsl_mmap: offset must be page aligned")
        fixed = bool(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))
        if offset == F.MEMSTORE_TOKEN_ADDRESS:   # kgsl_mmap_memstore: read-only view of the memstore
            if size > F.MEMSTORE_SIZE:
                raise Errno(E.EINVAL, f"kgsl_mmap_memstore: len {size:#x} exceeds the memstore ({F.MEMSTORE_SIZE:#x})")
            return self.dev.memstore.map_at(addr, PROT_READ, 0, size, fixed=fixed)
        return self.dev.mem.mmap(addr, size, prot, fixed, offset // PAGE)

    # --- properties -------------------------------------------------------------------------------------
    @staticmethod
    def _copy_prop(p: Any, data: bytes) -> None:
        """copy_prop: min(sizebytes, sizeof result) bytes to *value."""
        n = min(int(p.sizebytes), len(data))
        if n:
            MockDriver.write_arg(int(K.ffi.cast("uintptr_t", p.value)), data[:n])

    def getproperty(self, st: FdState, p: Any) -> None:
        dev, t = self.dev, int(p.type)
        value = int(K.ffi.cast("uintptr_t", p.value))
        if t == K.KGSL_PROP_DEVICE_INFO:
            d = K.ffi.new("struct kgsl_devinfo *", {"device_id": F.A630["device_id"], "chip_id": F.A630["chip_id"],
                                                    "mmu_enabled": 1, "gmem_gpubaseaddr": 0,
                                                    "gmem_sizebytes": F.A630["gmem_size"]})
            self._copy_prop(p, bytes(K.ffi.buffer(d)))
        elif t == K.KGSL_PROP_DEVICE_SHADOW:
            d = K.ffi.new("struct kgsl_shadowprop *", {"gpuaddr": F.MEMSTORE_TOKEN_ADDRESS, "size": F.MEMSTORE_SIZE,
                                                       "flags": K.KGSL_FLAGS_INITIALIZED | K.KGSL_FLAGS_PER_CONTEXT_TIMESTAMPS})
            self._copy_prop(p, bytes(K.ffi.buffer(d)))
        elif t == K.KGSL_PROP_VERSION:
            if p.sizebytes != sizeof(K.ffi, "struct kgsl_version"):
                raise Errno(E.EINVAL, f"kgsl_prop_version: sizebytes {p.sizebytes} != sizeof(struct kgsl_version)")
            d = K.ffi.new("struct kgsl_version *", {"drv_major": K.KGSL_VERSION_MAJOR, "drv_minor": K.KGSL_VERSION_MINOR,
                                                    "dev_major": F.DEV_VERSION[0], "dev_minor": F.DEV_VERSION[1]})
            self.write_arg(value, bytes(K.ffi.buffer(d)))
        elif t == K.KGSL_PROP_GPU_RESET_STAT:
            if p.sizebytes != 4:
                raise Errno(E.EINVAL, f"kgsl_prop_gpu_reset_stat: sizebytes {p.sizebytes} != 4")
            (cid,) = struct.unpack("<I", self.read_arg(value, 4))
            c = dev.get_owner(st, cid)
            if c is None:
                raise Errno(E.EINVAL, f"kgsl_prop_gpu_reset_stat: context {cid} is not this fd's")
            status, c.reset_status = c.reset_status, K.KGSL_CTX_STAT_NO_ERROR   # reading clears it
            self.write_arg(value, struct.pack("<I", status))
        elif t == K.KGSL_PROP_CONTEXT_PROPERTY:
            self._context_property(st, p)
        elif t in (K.KGSL_PROP_MMU_ENABLE, K.KGSL_PROP_INTERRUPT_WAITS):
            self._copy_prop(p, struct.pack("<i", 1))
        elif t == K.KGSL_PROP_HIGHEST_BANK_BIT:
            self._copy_prop(p, struct.pack("<I", F.A630["highest_bank_bit"]))
        elif t == K.KGSL_PROP_DEVICE_BITNESS:
            self._copy_prop(p, struct.pack("<I", F.A630["bitness"]))
        elif t == K.KGSL_PROP_UCHE_GMEM_VADDR:   # uche_gmem_base = ALIGN(gmem_size, uche_gmem_alignment)
            a = F.A630["uche_gmem_alignment"]
            self._copy_prop(p, struct.pack("<Q", (F.A630["gmem_size"] + a - 1) // a * a))
        else:
            raise Errno(E.ENODEV, f"adreno_getproperty: property {t:#x} is not answered by the mock A630")

    def _context_property(self, st: FdState, p: Any) -> None:
        """kgsl_get_ctxt_properties / kgsl_get_ctxt_fault_stats."""
        typ = "struct kgsl_context_property"
        if p.sizebytes == 0:
            p.sizebytes = sizeof(K.ffi, typ)
            return
        n = min(int(p.sizebytes), sizeof(K.ffi, typ))
        cp_ = K.ffi.new(typ + " *")
        value = int(K.ffi.cast("uintptr_t", p.value))
        K.ffi.memmove(cp_, self.read_arg(value, n), n)
        if cp_.type == 0:
            raise Errno(E.EINVAL, "kgsl_get_ctxt_properties: type 0 is not valid")
        c = self.dev.get_owner(st, cp_.contextid)
        if c is None:
            raise Errno(E.EINVAL, f"kgsl_get_ctxt_properties: context {cp_.contextid} is not this fd's")
        if cp_.type != K.KGSL_CONTEXT_PROP_FAULTS:
            raise Errno(E.EOPNOTSUPP, f"kgsl_get_ctxt_properties: type {cp_.type}")
        ft = "struct kgsl_context_property_fault"
        if cp_.size == 0:
            cp_.size = sizeof(K.ffi, ft)
            self.write_arg(value, bytes(K.ffi.buffer(cp_))[:n])
            return
        d = K.ffi.new(ft + " *", {"faults": c.total_fault_count, "timestamp": c.last_faulted_ts})
        self.write_arg(int(cp_.data), bytes(K.ffi.buffer(d))[:min(int(cp_.size), sizeof(K.ffi, ft))])

    def setproperty(self, st: FdState, p: Any) -> None:
        """adreno_setproperty: only the (L3) power constraint is served."""
        if p.type not in (K.KGSL_PROP_PWR_CONSTRAINT, K.KGSL_PROP_L3_PWR_CONSTRAINT):
            raise Errno(E.EINVAL, f"adreno_setproperty: property {p.type:#x} is not settable on the mock")
        typ = "struct kgsl_device_constraint"
        if p.sizebytes != sizeof(K.ffi, typ):
            raise Errno(E.EINVAL, f"adreno_setproperty: sizebytes {p.sizebytes} != sizeof({typ})")
        c_ = K.ffi.new(typ + " *")
        K.ffi.memmove(c_, self.read_arg(int(K.ffi.cast("uintptr_t", p.value)), sizeof(K.ffi, typ)), sizeof(K.ffi, typ))
        if self.dev.get_owner(st, c_.context_id) is None:
            raise Errno(E.EINVAL, f"adreno_setproperty: context {c_.context_id} is not this fd's")
        if c_.type == K.KGSL_CONSTRAINT_PWRLEVEL:
            if c_.size != 4:
                raise Errno(E.EINVAL, "adreno_set_constraint: a PWRLEVEL constraint carries a u32 level (size 4)")
            (level,) = struct.unpack("<I", self.read_arg(int(K.ffi.cast("uintptr_t", c_.data)), 4))
            if level not in (K.KGSL_CONSTRAINT_PWR_MIN, K.KGSL_CONSTRAINT_PWR_MAX):
                raise Errno(E.EINVAL, f"adreno_set_constraint: level {level} is neither MIN nor MAX")
        elif c_.type != K.KGSL_CONSTRAINT_NONE:
            raise Errno(E.EINVAL, f"adreno_set_constraint: constraint type {c_.type}")

    # --- contexts ---------------------------------------------------------------------------------------
    def drawctxt_create(self, st: FdState, p: Any) -> None:
        c = self.dev.create_context(st, int(p.flags))
        p.drawctxt_id = c.id

    def drawctxt_destroy(self, st: FdState, p: Any) -> None:
        c = self.dev.get_owner(st, p.drawctxt_id)
        if c is None:
            raise Errno(E.EINVAL, f"kgsl_ioctl_drawctxt_destroy: context {p.drawctxt_id} does not exist, is "
                                  "detached, or belongs to another fd")
        self.dev.detach(c)

    # --- memory -----------------------------------------------------------------------------------------
    def gpuobj_alloc(self, st: FdState, p: Any) -> None:
        e = self.dev.mem.alloc(int(p.size), int(p.flags))
        if p.metadata_len:
            n = min(int(p.metadata_len), 63)   # copy_metadata: at most sizeof(metadata) - 1
            e.metadata = self.read_arg(int(p.metadata), n)
        p.size, p.flags, p.mmapsize, p.id = e.size, e.flags, e.footprint, e.id

    def gpumem_alloc_id(self, st: FdState, p: Any) -> None:
        e = self.dev.mem.alloc(int(p.size), int(p.flags))
        p.id, p.flags, p.size, p.mmapsize, p.gpuaddr = e.id, _mask(e.flags), e.size, e.footprint, e.gpuaddr

    def _free(self, e) -> None:
        if e.pending_free:
            raise Errno(E.EBUSY, f"kgsl_mem_entry_set_pend: object {e.id} is already being freed")
        self.dev.mem.free(e)

    def gpumem_free_id(self, st: FdState, p: Any) -> None:
        e = self.dev.mem.find_id(p.id)
        if e is None:
            raise Errno(E.EINVAL, f"kgsl_ioctl_gpumem_free_id: no object with id {p.id}")
        self._free(e)

    def gpuobj_free(self, st: FdState, p: Any) -> None:
        e = self.dev.mem.find_id(p.id)
        if e is None:
            raise Errno(E.EINVAL, f"kgsl_ioctl_gpuobj_free: no object with id {p.id}")
        if not p.flags & K.KGSL_GPUOBJ_FREE_ON_EVENT:
            self._free(e)
            return
        if p.type != K.KGSL_GPU_EVENT_TIMESTAMP:
            raise Errno(E.EINVAL, f"kgsl_ioctl_gpuobj_free: event type {p.type} (the mock serves TIMESTAMP only)")
        t = "struct kgsl_gpu_event_timestamp"
        if p.len != sizeof(K.ffi, t):
            raise Errno(E.EINVAL, f"gpuobj_free_on_timestamp: len {p.len} != sizeof({t})")
        ev = K.ffi.new(t + " *")
        K.ffi.memmove(ev, self.read_arg(int(p.priv), sizeof(K.ffi, t)), sizeof(K.ffi, t))
        c = self.dev.contexts.get(ev.context_id)
        if c is None or c.detached:
            raise Errno(E.EINVAL, f"gpuobj_free_on_timestamp: context {ev.context_id} does not exist")
        e.pending_free = True
        self._free_after(c, int(ev.timestamp), e)

    def _free_after(self, c: DrawContext, ts: int, e) -> None:
        dev = self.dev

        def waiter() -> None:
            try:
                dev.wait_timestamp(c, ts, 0) if timestamp_cmp(ts, c.timestamp) <= 0 else None
            except Errno:
                pass   # an invalidated/detached context still frees (kgsl runs the event with KGSL_EVENT_CANCELLED)
            e.pending_free = False
            dev.mem.free(e)
        if timestamp_cmp(dev.retired(c), ts) >= 0 or dev.engine.sync:
            waiter()
        else:
            threading.Thread(target=waiter, name="kgsl-free-on-ts", daemon=True).start()

    def gpuobj_info(self, st: FdState, p: Any) -> None:
        if p.id == 0:
            raise Errno(E.EINVAL, "kgsl_ioctl_gpuobj_info: id 0")
        e = self.dev.mem.find_id(p.id)
        if e is None:
            raise Errno(E.EINVAL, f"kgsl_ioctl_gpuobj_info: no object with id {p.id}")
        p.gpuaddr, p.flags, p.size, p.va_len, p.va_addr = e.gpuaddr, e.flags, e.size, e.footprint, 0

    def gpumem_get_info(self, st: FdState, p: Any) -> None:
        mem = self.dev.mem
        e = mem.find_id(p.id) if p.id else (mem.find_addr(int(p.gpuaddr)) if p.gpuaddr else None)
        if e is None:
            raise Errno(E.EINVAL, f"kgsl_ioctl_gpumem_get_info: no object with id {p.id} / gpuaddr {p.gpuaddr:#x}")
        p.gpuaddr, p.id, p.flags, p.size, p.mmapsize, p.useraddr = e.gpuaddr, e.id, _mask(e.flags), e.size, e.footprint, 0

    def map_user_mem(self, st: FdState, p: Any) -> None:
        e = self.dev.mem.map_user(int(p.hostptr), int(p.len), int(p.memtype), int(p.flags))
        p.gpuaddr = e.gpuaddr
        p.flags = _mask(e.flags)

    def sharedmem_free(self, st: FdState, p: Any) -> None:
        e = self.dev.mem.find_addr(int(p.gpuaddr))
        if e is None:
            raise Errno(E.EINVAL, f"kgsl_ioctl_sharedmem_free: no object at GPU address {p.gpuaddr:#x}")
        self._free(e)

    # --- commands ---------------------------------------------------------------------------------------
    def gpu_command(self, st: FdState, p: Any) -> None:
        dev = self.dev
        flags, ncmds, nobjs, nsyncs = int(p.flags), int(p.numcmds), int(p.numobjs), int(p.numsyncs)
        # _process_command_input
        if ncmds > F.MAX_NUMIBS or nobjs > F.MAX_NUMIBS or nsyncs > F.MAX_SYNCPOINTS:
            raise Errno(E.EINVAL, f"_process_command_input: numcmds {ncmds} / numobjs {nobjs} over {F.MAX_NUMIBS} "
                                  f"or numsyncs {nsyncs} over {F.MAX_SYNCPOINTS}")
        marker = bool(flags & K.KGSL_CMDBATCH_MARKER) or (not flags & K.KGSL_CMDBATCH_SYNC and not ncmds and not nsyncs)
        sync_only = bool(flags & K.KGSL_CMDBATCH_SYNC) and not flags & K.KGSL_CMDBATCH_MARKER or \
            (not flags & (K.KGSL_CMDBATCH_MARKER | K.KGSL_CMDBATCH_SYNC) and nsyncs and not ncmds)
        c = dev.get_owner(st, p.context_id)
        if c is None:
            raise Errno(E.EINVAL, f"kgsl_ioctl_gpu_command: context {p.context_id} does not exist, is detached, "
                                  "or belongs to another fd")
        if nsyncs or sync_only:
            self._check_syncs(st, p, nsyncs)
        ibs: list[tuple[int, int]] = []
        if not marker and not sync_only:
            ibs = self._cmdlist(c, int(p.cmdlist), int(p.cmdsize), ncmds)
            self._check_list(int(p.objlist), int(p.objsize), nobjs, "objlist")
        if sync_only:
            # a sync object only: adreno queues it without a timestamp of its own (drawctxt_queue_syncobj)
            p.timestamp = c.timestamp
            return
        p.timestamp = dev.queue(c, ibs, int(p.timestamp))

    @staticmethod
    def _check_list(ptr: int, size: int, count: int, what: str) -> bool:
        """_verify_input_list: all zero = nothing; any one zero = EINVAL."""
        if count == 0 and ptr == 0 and size == 0:
            return False
        if count == 0 or ptr == 0 or size == 0:
            raise Errno(E.EINVAL, f"_verify_input_list: {what} pointer {ptr:#x}, size {size}, count {count}: all three "
                                  "must be set, or none")
        return True

    def _cmdlist(self, c: DrawContext, ptr: int, size: int, count: int) -> list[tuple[int, int]]:
        """kgsl_drawobj_cmd_add_cmdlist + adreno_verify_cmdobj/_verify_ib."""
        if not self._check_list(ptr, size, count, "cmdlist"):
            return []
        t = "struct kgsl_command_object"
        n = sizeof(K.ffi, t)
        mem = self.dev.mem
        flags_ok = K.KGSL_CMDLIST_IB | K.KGSL_CMDLIST_CTXTSWITCH_PREAMBLE | K.KGSL_CMDLIST_IB_PREAMBLE
        ibs = []
        for i in range(count):
            obj = K.ffi.new(t + " *")
            raw = self.read_arg(ptr + i * size, min(size, n))   # copy_struct_from_user: zero-extends short ones
            K.ffi.memmove(obj, raw, len(raw))
            if size > n and any(self.read_arg(ptr + i * size + n, size - n)):
                raise Errno(E.E2BIG, f"copy_struct_from_user: cmdlist entry {i} has non-zero bytes past {t}")
            if not obj.flags & flags_ok:
                raise Errno(E.EINVAL, f"kgsl_drawobj_cmd_add_cmdlist: entry {i} flags {obj.flags:#x} have none of "
                                      "IB / CTXTSWITCH_PREAMBLE / IB_PREAMBLE")
            addr, nbytes = int(obj.gpuaddr), int(obj.size)
            if nbytes == 0 or nbytes // 4 > F.IB_MAX_DWORDS:
                raise Errno(E.EINVAL, f"_verify_ib: ctxt {c.id} invalid ib size {nbytes}")
            if addr % 4 or not mem.in_range(addr, nbytes):
                raise Errno(E.EINVAL, f"_verify_ib: ctxt {c.id} invalid ib gpuaddr {addr:#x}")
            ibs.append((addr, nbytes // 4))
        return ibs

    def _check_syncs(self, st: FdState, p: Any, count: int) -> None:
        """kgsl_drawobj_sync_add_synclist: timestamp syncpoints must name a live context and a queued ts."""
        if not self._check_list(int(p.synclist), int(p.syncsize), count, "synclist"):
            return
        t, ts_t = "struct kgsl_command_syncpoint", "struct kgsl_cmd_syncpoint_timestamp"
        for i in range(count):
            sp = K.ffi.new(t + " *")
            K.ffi.memmove(sp, self.read_arg(int(p.synclist) + i * int(p.syncsize), sizeof(K.ffi, t)), sizeof(K.ffi, t))
            if sp.type != 0:   # KGSL_CMD_SYNCPOINT_TYPE_TIMESTAMP
                raise Errno(E.EINVAL, f"syncpoint {i}: type {sp.type} (the mock serves TIMESTAMP syncpoints only)")
            n = sizeof(K.ffi, ts_t)
            v = K.ffi.new(ts_t + " *")   # copy_struct_from_user: shorter is zero-filled, longer must be zero past it
            K.ffi.memmove(v, self.read_arg(int(sp.priv), min(int(sp.size), n)), min(int(sp.size), n))
            if sp.size > n and any(self.read_arg(int(sp.priv) + n, int(sp.size) - n)):
                raise Errno(E.E2BIG, f"drawobj_add_sync_timestamp_from_user: syncpoint {i} has non-zero bytes past {ts_t}")
            c = self.dev.contexts.get(v.context_id)
            if c is None or c.detached:
                raise Errno(E.EINVAL, f"drawobj_add_sync_timestamp: context {v.context_id} does not exist")
            if timestamp_cmp(v.timestamp, c.timestamp) > 0:
                raise Errno(E.EINVAL, f"drawobj_add_sync_timestamp: timestamp {v.timestamp} was never queued on "
                                      f"context {c.id}")
            # The mock CP runs in ring order, so a queued timestamp on this device retires first.

    def waittimestamp(self, st: FdState, p: Any) -> None:
        c = self.dev.get_owner(st, p.context_id)
        if c is None:
            raise Errno(E.EINVAL, f"kgsl_ioctl_device_waittimestamp_ctxtid: context {p.context_id} is not this fd's")
        self.dev.wait_timestamp(c, int(p.timestamp), int(p.timeout))

    def readtimestamp(self, st: FdState, p: Any) -> None:
        c = self.dev.get_owner(st, p.context_id)
        if c is None:
            raise Errno(E.EINVAL, f"kgsl_ioctl_cmdstream_readtimestamp_ctxtid: context {p.context_id} is not this fd's")
        if p.type == K.KGSL_TIMESTAMP_QUEUED:
            p.timestamp = c.timestamp
        elif p.type == K.KGSL_TIMESTAMP_CONSUMED:
            p.timestamp = self.dev.consumed(c)
        elif p.type == K.KGSL_TIMESTAMP_RETIRED:
            p.timestamp = self.dev.retired(c)
        else:
            raise Errno(E.EINVAL, f"adreno_readtimestamp: type {p.type}")
