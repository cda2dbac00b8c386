"""One GPFIFO channel of the mock Hopper GPU: the host front end (PBDMA) of nvidia.md section 3.

A worker `Engine` per channel wakes on the doorbell, reads GPPut from USERD, fetches GP entries
from the ring through the channel's page table, decodes the pushbuffer segment's method headers
and dispatches methods: host methods (< 0x100) here, the rest to the class bound to the
subchannel (compute.py / copy.py). A semaphore acquire that is not yet satisfied reports
Work.BLOCKED and is re-polled, like hardware. GPGet is written back to USERD per entry.

Anything malformed becomes a ChannelError: the error notifier gets the Xid, the records are kept
for RM's fault controls, and the channel stops (later doorbells do nothing; a new channel works).
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterator

import numpy as np

from hwdrv.mock.engine import Engine, Work
from hwdrv.mock.gpumem import GpuPageTable, MemoryFault

from . import faults as X
from . import semaphore as S
from .facts import HW, NV
from .backing import MemBacking

if TYPE_CHECKING:
    from .gpu import MockGpu

_USERD_GPGET = HW.LAYOUT["HopperAControlGPFifo"][1]["GPGet"]
_USERD_GPPUT = HW.LAYOUT["HopperAControlGPFifo"][1]["GPPut"]
_USERD_GET = HW.LAYOUT["HopperAControlGPFifo"][1]["Get"]
_USERD_GETHI = HW.LAYOUT["HopperAControlGPFifo"][1]["GetHi"]
USERD_SIZE = HW.LAYOUT["HopperAControlGPFifo"][0]
_NOTIFY_SIZE = HW.LAYOUT["NvNotification"][0]
_NOTIFY = HW.LAYOUT["NvNotification"][1]

_HOST_METHOD_LIMIT = 0x100            # methods below this are the PBDMA's own, on any subchannel
_SEC = HW.NVC56F_DMA_SEC_OP


class Channel:
    """The mock GPU side of one HOPPER_CHANNEL_GPFIFO_A (see module doc)."""

    def __init__(self, gpu: "MockGpu", chid: int, *, pt: GpuPageTable, ring_va: int, entries: int,
                 userd: MemBacking, userd_offset: int, notifier: MemBacking, engine_type: int, tsg: object,
                 sem_addr_hi: object = HW.NVC86F_SEM_ADDR_HI_OFFSET, name: str = ""):
        self.gpu, self.chid, self.pt = gpu, chid, pt
        self.ring_va, self.entries = ring_va, entries
        self.userd, self.userd_offset = userd, userd_offset
        self.notifier, self.engine_type, self.tsg = notifier, engine_type, tsg
        self.sem_addr_hi_field = sem_addr_hi
        self.name = name or f"channel {chid}"
        self.token = chid                      # the work-submit token is the channel id
        self.classes: dict[int, int] = {}      # engine object class -> how many allocated
        self.subch: dict[int, object] = {}     # subchannel -> bound class engine
        self.gp_get = 0
        self.scheduled = False                 # NVA06C GPFIFO_SCHEDULE on the TSG enables the channel
        self.ext_base = 0                      # SET_PB_SEGMENT_EXTENDED_BASE (VA[56:40])
        self.error: X.ChannelError | None = None
        self.errors: list[X.ChannelError] = []
        self.sm_errors: dict[int, X.SmError] = {}
        self.mmu_faults: list[X.MmuFault] = []
        self.last_mmu_fault: X.MmuFault | None = None    # NV906F GET_MMU_FAULT_INFO (clears it)
        self.cancel = threading.Event()        # set on close: stops a running kernel
        self._sem_va = 0
        self._sem_payload = 0
        self._lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self._steps = self._run()
        self.engine = Engine(f"nv-{self.name}", self._step)

    # ---- lifecycle ---------------------------------------------------------------------------------
    def kick(self) -> None:
        self.engine.kick()
        if self.engine.sync and self.engine.blocked:
            self._start_poller()

    def _start_poller(self) -> None:
        """HWDRV_MOCK_SYNC=1: work runs inside the doorbell write, but a semaphore the CPU sets
        later with a plain store rings no doorbell. Like the PBDMA re-polling memory, a small
        thread retries the blocked acquire (engine.poll) until it passes or the channel closes."""
        with self._lock:
            if self._poller is not None and self._poller.is_alive():
                return
            self._poller = threading.Thread(target=self._poll_loop, name=f"hwdrv-mock-nv-{self.name}-poll",
                                            daemon=True)
            self._poller.start()

    def _poll_loop(self) -> None:
        while self.engine.blocked and not self.cancel.is_set() and self.engine.error is None:
            self.cancel.wait(self.engine.poll_interval)
            try:
                self.engine.poll()
            except Exception:  # noqa: BLE001 - recorded by the engine; the next kick/stop raises it
                return

    def close(self) -> None:
        """Stop the worker (a running kernel is cancelled first): never leaves a thread behind."""
        self.cancel.set()
        self.gpu.forget_channel(self)
        if self._poller is not None:
            self._poller.join(timeout=10.0)
        self.engine.stop(timeout=10.0)

    @property
    def dead(self) -> bool:
        return self.error is not None

    # ---- work loop ---------------------------------------------------------------------------------
    def _step(self) -> Work:
        with self._lock:
            return next(self._steps)

    def _run(self) -> Iterator[Work]:
        """The PBDMA: one GP entry per PROGRESS step; BLOCKED while an acquire is unsatisfied."""
        while True:
            if self.error is not None or self.cancel.is_set() or not self.scheduled:
                # an RC'd channel does nothing; an unscheduled one waits for GPFIFO_SCHEDULE
                yield Work.IDLE
                continue
            try:
                put = self._userd_read(_USERD_GPPUT)
                if put == self.gp_get:
                    yield Work.IDLE
                    continue
                if put >= self.entries:
                    raise X.ChannelError(X.XID_PBDMA, f"GPPut {put} is outside the {self.entries}-entry GPFIFO",
                                         self.engine_type)
                yield from self._gp_entry(self.gp_get)
                self.gp_get = (self.gp_get + 1) % self.entries
                self._userd_write(_USERD_GPGET, self.gp_get)
                self.gpu.refresh_timer()
                yield Work.PROGRESS
            except X.ChannelError as e:
                self.fail(e)
                yield Work.IDLE
            except MemoryError as e:
                # Emulating this work needs more host memory than there is (e.g. a kernel's huge
                # .local array times every lane): a resource fault of this channel, not a mock
                # bug; the engine lives on so recovery works.
                self.fail(X.ChannelError(X.XID_GR_EXCEPTION, f"the mock GPU cannot allocate the host "
                                                             f"memory this work needs: {e}",
                                         self.engine_type))
                yield Work.IDLE
            except Exception as e:  # noqa: BLE001 - a mock bug: report on the channel AND loudly
                self.fail(X.ChannelError(X.XID_PBDMA, f"mock GPU internal error: {type(e).__name__}: {e}",
                                         self.engine_type, cause=e))
                raise

    def _userd_read(self, off: int) -> int:
        return int.from_bytes(self.userd.read(self.userd_offset + off, 4), "little")

    def _userd_write(self, off: int, v: int) -> None:
        self.userd.write(self.userd_offset + off, (v & 0xFFFFFFFF).to_bytes(4, "little"))

    def _gp_entry(self, index: int) -> Iterator[Work]:
        va = self.ring_va + 8 * index
        try:
            raw = int.from_bytes(self.pt.read(va, 8), "little")
        except MemoryFault as f:
            raise X.mmu_fault(f, "HUBCLIENT_HOST", self.engine_type, f"fetching GP entry {index}") from None
        e0, e1 = raw & 0xFFFFFFFF, raw >> 32
        length = HW.NVC86F_GP_ENTRY1_LENGTH.decode(e1)
        if length == 0:                       # a control entry
            op = HW.NVC86F_GP_ENTRY1_OPCODE.decode(e1)
            if op == HW.NVC86F_GP_ENTRY1_OPCODE_SET_PB_SEGMENT_EXTENDED_BASE:
                self.ext_base = HW.NVC86F_GP_ENTRY0_PB_EXTENDED_BASE_OPERAND.decode(e0)
            elif op in (HW.NVC86F_GP_ENTRY1_OPCODE_NOP, HW.NVC86F_GP_ENTRY1_OPCODE_GP_CRC,
                        HW.NVC86F_GP_ENTRY1_OPCODE_PB_CRC):
                pass                          # CRC checking is not modelled (documented gap)
            else:
                raise X.ChannelError(X.XID_PBDMA, f"GP entry {index} ({raw:#018x}): control opcode {op} "
                                                  f"is illegal", self.engine_type)
            return
        pb_va = ((HW.NVC86F_GP_ENTRY0_GET.decode(e0) << 2) | (HW.NVC86F_GP_ENTRY1_GET_HI.decode(e1) << 32)
                 | (self.ext_base << 40))
        try:
            words = np.frombuffer(self.pt.read(pb_va, 4 * length), np.uint32)
        except MemoryFault as f:
            raise X.mmu_fault(f, "HUBCLIENT_ESC", self.engine_type,
                              f"fetching the {length}-dword pushbuffer segment of GP entry {index} "
                              f"({raw:#018x})") from None
        yield from self._segment(words, pb_va, index)
        end = pb_va + 4 * length
        self._userd_write(_USERD_GET, end)
        self._userd_write(_USERD_GETHI, end >> 32)

    def _segment(self, words: np.ndarray, pb_va: int, gp_index: int) -> Iterator[Work]:
        """Decode one pushbuffer segment's method headers and run the methods."""
        i, n = 0, len(words)
        while i < n:
            hdr = int(words[i])
            where = f"pushbuffer {pb_va + 4 * i:#x} (GP entry {gp_index}, dword {i}, header {hdr:#010x})"
            sec = _SEC.decode(hdr)
            subch = HW.NVC56F_DMA_METHOD_SUBCHANNEL.decode(hdr)
            mthd = HW.NVC56F_DMA_METHOD_ADDRESS.decode(hdr) << 2
            count = HW.NVC56F_DMA_METHOD_COUNT.decode(hdr)
            i += 1
            if hdr == HW.NVC56F_DMA_NOP:
                continue
            if sec == HW.NVC56F_DMA_SEC_OP_END_PB_SEGMENT:
                return
            if sec == HW.NVC56F_DMA_SEC_OP_IMMD_DATA_METHOD:
                yield from self._method(subch, mthd, HW.NVC56F_DMA_IMMD_DATA.decode(hdr), where)
                continue
            if sec not in (HW.NVC56F_DMA_SEC_OP_INC_METHOD, HW.NVC56F_DMA_SEC_OP_NON_INC_METHOD,
                           HW.NVC56F_DMA_SEC_OP_ONE_INC):
                raise X.ChannelError(X.XID_PBDMA, f"{where}: SEC_OP {sec} is not a method header this "
                                                  f"PBDMA accepts", self.engine_type)
            if i + count > n:
                raise X.ChannelError(X.XID_PBDMA, f"{where}: {count} data words run past the end of the "
                                                  f"{n}-dword segment", self.engine_type)
            for k in range(count):
                if sec == HW.NVC56F_DMA_SEC_OP_INC_METHOD:
                    m = mthd + 4 * k
                elif sec == HW.NVC56F_DMA_SEC_OP_NON_INC_METHOD:
                    m = mthd
                else:
                    m = mthd if k == 0 else mthd + 4
                yield from self._method(subch, m, int(words[i + k]), where)
            i += count

    def _method(self, subch: int, mthd: int, data: int, where: str) -> Iterator[Work]:
        if mthd == HW.NVC86F_SET_OBJECT:
            self._set_object(subch, data, where)
        elif mthd < _HOST_METHOD_LIMIT:
            yield from self._host_method(mthd, data, where)
        else:
            eng = self.subch.get(subch)
            if eng is None:
                raise X.ChannelError(X.XID_GR_CLASS, f"{where}: method {mthd:#x} (data {data:#x}) on "
                                                     f"subchannel {subch}, which has no object bound "
                                                     f"(SET_OBJECT first)", self.engine_type)
            eng.method(mthd, data, where)       # type: ignore[attr-defined]

    def _set_object(self, subch: int, data: int, where: str) -> None:
        cls = HW.NVC56F_SET_OBJECT_NVCLASS.decode(data)
        if not self.classes.get(cls):
            have = ", ".join(f"{c:#x}" for c, n in self.classes.items() if n) or "none"
            raise X.ChannelError(X.XID_GR_CLASS, f"{where}: SET_OBJECT class {cls:#x} on subchannel {subch}, "
                                                 f"but no object of that class was allocated on this channel "
                                                 f"(allocated: {have})", self.engine_type)
        self.subch[subch] = self.gpu.class_engine(cls, self)

    # ---- host methods ------------------------------------------------------------------------------
    def _host_method(self, mthd: int, data: int, where: str) -> Iterator[Work]:
        if mthd == HW.NVC86F_SEM_ADDR_LO:
            self._sem_va = (self._sem_va & ~0xFFFFFFFF) | (HW.NVC86F_SEM_ADDR_LO_OFFSET.decode(data) << 2)
        elif mthd == HW.NVC86F_SEM_ADDR_HI:
            self._sem_va = (self._sem_va & 0xFFFFFFFF) | (self.sem_addr_hi_field.decode(data) << 32)  # type: ignore[attr-defined]
        elif mthd == HW.NVC86F_SEM_PAYLOAD_LO:
            self._sem_payload = (self._sem_payload & ~0xFFFFFFFF) | data
        elif mthd == HW.NVC86F_SEM_PAYLOAD_HI:
            self._sem_payload = (self._sem_payload & 0xFFFFFFFF) | (data << 32)
        elif mthd == HW.NVC86F_SEM_EXECUTE:
            yield from self._sem_execute(data, where)
        elif mthd in (HW.NVC56F_NOP, HW.NVC56F_NON_STALL_INTERRUPT, HW.NVC56F_FB_FLUSH, HW.NVC86F_MEM_OP_A,
                      HW.NVC86F_MEM_OP_B, HW.NVC86F_MEM_OP_C, HW.NVC86F_MEM_OP_D, HW.NVC56F_SET_REFERENCE,
                      HW.NVC86F_WFI):
            # Barriers, flushes and TLB ops: the mock executes each channel in order and all
            # memory is coherent host memory, so they are complete by the time they are read.
            pass
        else:
            raise X.ChannelError(X.XID_PBDMA, f"{where}: host method {mthd:#x} (data {data:#x}) is not a "
                                              f"Hopper host method", self.engine_type)

    def _sem_execute(self, data: int, where: str) -> Iterator[Work]:
        op = HW.NVC56F_SEM_EXECUTE_OPERATION.decode(data)
        size = 8 if HW.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE.decode(data) == HW.NVC56F_SEM_EXECUTE_PAYLOAD_SIZE_64BIT else 4
        va, payload = self._sem_va, self._sem_payload & ((1 << (8 * size)) - 1)
        if va % size:
            raise X.ChannelError(X.XID_PBDMA, f"{where}: {8 * size}-bit semaphore at {va:#x} is not "
                                              f"{size}-byte aligned", self.engine_type)
        what = f"semaphore op {op} at {va:#x}"
        try:
            if op == HW.NVC56F_SEM_EXECUTE_OPERATION_RELEASE:
                # RELEASE_WFI: every earlier method of this channel has already completed here
                S.write(self.pt, va, payload, size)
            elif op == HW.NVC56F_SEM_EXECUTE_OPERATION_REDUCTION:
                red = S.HOST_REDUCTIONS.get(HW.NVC56F_SEM_EXECUTE_REDUCTION.decode(data))
                if red is None:
                    raise X.ChannelError(X.XID_PBDMA, f"{where}: unknown semaphore reduction "
                                                      f"{HW.NVC56F_SEM_EXECUTE_REDUCTION.decode(data)}",
                                         self.engine_type)
                signed = (HW.NVC56F_SEM_EXECUTE_REDUCTION_FORMAT.decode(data)
                          == HW.NVC56F_SEM_EXECUTE_REDUCTION_FORMAT_SIGNED)
                S.reduce(self.pt, va, red, payload, size, signed)
            elif op in (HW.NVC56F_SEM_EXECUTE_OPERATION_ACQUIRE, HW.NVC56F_SEM_EXECUTE_OPERATION_ACQ_STRICT_GEQ,
                        HW.NVC56F_SEM_EXECUTE_OPERATION_ACQ_CIRC_GEQ, HW.NVC56F_SEM_EXECUTE_OPERATION_ACQ_AND,
                        HW.NVC56F_SEM_EXECUTE_OPERATION_ACQ_NOR):
                # re-poll memory until satisfied, as the PBDMA does (the engine polls while BLOCKED)
                while not S.acquire_satisfied(op, S.read(self.pt, va, size), payload, size):
                    if self.cancel.is_set() or self.error is not None:
                        return
                    yield Work.BLOCKED
                return
            else:
                raise X.ChannelError(X.XID_PBDMA, f"{where}: SEM_EXECUTE operation {op} is reserved",
                                     self.engine_type)
            if (op in (HW.NVC56F_SEM_EXECUTE_OPERATION_RELEASE, HW.NVC56F_SEM_EXECUTE_OPERATION_REDUCTION)
                    and HW.NVC56F_SEM_EXECUTE_RELEASE_TIMESTAMP.decode(data)):
                S.write_timestamp(self.pt, va)
        except MemoryFault as f:
            raise X.mmu_fault(f, "HUBCLIENT_HOST", self.engine_type, what) from None

    # ---- errors ------------------------------------------------------------------------------------
    def fail(self, err: X.ChannelError, notify_tsg: bool = True) -> None:
        """Robust-channel recovery for this channel: latch the records, write the error notifier,
        stop; the other channels of the TSG are removed too (Xid 45), as RC tears down the TSG."""
        if self.error is not None:
            return
        self.error = err
        self.errors.append(err)
        if err.mmu is not None:
            self.mmu_faults.append(err.mmu)
            self.last_mmu_fault = err.mmu
        if err.sm is not None:
            self.sm_errors[err.sm.sm_id] = err.sm
        self.write_notifier(err.xid)
        self.gpu.record_rc(self, err)
        if notify_tsg:
            for other in self.gpu.channels_of(self.tsg):
                if other is not self and not other.dead:
                    shared = other.notifier is self.notifier
                    other.error_from_tsg(X.ChannelError(X.XID_PREEMPTIVE_REMOVAL,
                                                        f"removed with its TSG after {self.name}: {err}",
                                                        other.engine_type), write=not shared)

    def error_from_tsg(self, err: X.ChannelError, write: bool) -> None:
        """Stopped because another channel of the TSG faulted. A notifier shared with that channel
        keeps the root cause, so it is only written when it is this channel's own memory."""
        if self.error is not None:
            return
        self.error = err
        self.errors.append(err)
        if write:
            self.write_notifier(err.xid)

    def write_notifier(self, xid: int) -> None:
        """NvNotification index 0 (TYPE_ERROR) of the hObjectError memory."""
        base = NV.NV_CHANNELGPFIFO_NOTIFICATION_TYPE_ERROR * _NOTIFY_SIZE
        ns = S.now_ns()
        rec = bytearray(_NOTIFY_SIZE)
        # RM stores the high word of the ns time first (nanoseconds[0]), as seen on an H100
        ts = _NOTIFY["timeStamp"]
        rec[ts:ts + 4] = (ns >> 32).to_bytes(4, "little")
        rec[ts + 4:ts + 8] = (ns & 0xFFFFFFFF).to_bytes(4, "little")
        rec[_NOTIFY["info32"]:_NOTIFY["info32"] + 4] = xid.to_bytes(4, "little")
        rec[_NOTIFY["info16"]:_NOTIFY["info16"] + 2] = (self.engine_type & 0xFFFF).to_bytes(2, "little")
        rec[_NOTIFY["status"]:_NOTIFY["status"] + 2] = (0xFFFF).to_bytes(2, "little")
        self.notifier.write(base, bytes(rec))

    def describe(self) -> str:
        st = f"error {self.error}" if self.error else "ok"
        return f"<mock {self.name} chid {self.chid} GPGet {self.gp_get} {st}>"

