"""KFD events of one process (kfd_events.c): the signal-event page, signal and non-signal events,
the interrupt path that fires them, fault reports, and WAIT_EVENTS."""
from __future__ import annotations

import errno as E
import os
import threading
import time
from dataclasses import dataclass, field

from hwdrv.amd.gen import kfd as K
from hwdrv.amd.gen import kfd_priv as P
from hwdrv.ioctl import hostmem
from hwdrv.mock.kernel import Errno
from hwdrv.mock.physmem import PhysBlock

SIGNAL_TYPES = (K.KFD_IOC_EVENT_SIGNAL, K.KFD_IOC_EVENT_DEBUG_EVENT)
# The mock bounds "infinite" waits so that a lost wake-up fails a test instead of hanging it.
INFINITE_WAIT_CAP_S = float(os.environ.get("HWDRV_MOCK_KFD_WAIT_CAP", "60"))


@dataclass
class Event:
    id: int
    type: int
    auto_reset: bool
    signaled: bool = False
    waiters: list = field(default_factory=list)
    memory_exception: dict | None = None
    hw_exception: dict | None = None


class _Waiter:
    __slots__ = ("event", "activated")

    def __init__(self, event: Event):
        self.event, self.activated = event, False


class EventTable:
    """Events of one KFD process; thread-safe (the mock GPU fires events from its engine threads)."""

    def __init__(self):
        self.cond = threading.Condition(threading.RLock())
        self.events: dict[int, Event] = {}
        self.page_addr = 0              # mock-private address of the signal page
        self.page_size = 0
        self.page_handle = 0            # BO handle of a user-allocated event page (FREE of it: EPERM)
        self.own_page: PhysBlock | None = None
        self._next_other = P.KFD_FIRST_NONSIGNAL_EVENT_ID

    # --- the signal page (kfd_kmap_event_page / kfd_event_page_set) ----------------------------------
    def set_page(self, host_addr: int, size: int, handle: int) -> None:
        with self.cond:
            if self.page_addr:
                raise Errno(E.EINVAL, "CREATE_EVENT: the process already has an event page "
                                      "(kfd_kmap_event_page: only the first call passes event_page_offset)")
            self.page_addr, self.page_size, self.page_handle = host_addr, size, handle
            n = min(size, K.KFD_SIGNAL_EVENT_LIMIT * 8)
            hostmem.write(host_addr, b"\xff" * n)           # every slot UNSIGNALED_EVENT_SLOT

    def _ensure_page(self) -> None:
        # no user page (APU-style): KFD allocates one and userspace maps it with KFD_MMAP_TYPE_EVENTS
        if not self.page_addr:
            self.own_page = PhysBlock(K.KFD_SIGNAL_EVENT_LIMIT * 8, "kfd-events")
            self.set_page(self.own_page.host_addr, self.own_page.size, 0)

    def slot_addr(self, event_id: int) -> int:
        return self.page_addr + 8 * event_id

    # --- create / destroy / set / reset ---------------------------------------------------------------
    def create(self, etype: int, auto_reset: bool) -> tuple[int, int, int, int]:
        """kfd_event_create: (event_id, trigger_data, event_page_offset out, slot index)."""
        with self.cond:
            if etype in SIGNAL_TYPES:
                self._ensure_page()
                slots = min(self.page_size // 8, K.KFD_SIGNAL_EVENT_LIMIT)
                eid = next((i for i in range(slots) if i not in self.events), None)
                if eid is None:
                    raise Errno(E.ENOSPC, f"CREATE_EVENT: all {slots} signal slots of the event page are in use "
                                          "(create_signal_event: signal event limit reached)")
                hostmem.write(self.slot_addr(eid), P.UNSIGNALED_EVENT_SLOT.to_bytes(8, "little"))
                self.events[eid] = Event(eid, etype, auto_reset)
                return eid, eid, P.KFD_MMAP_TYPE_EVENTS, eid
            eid = self._next_other
            if eid > P.KFD_LAST_NONSIGNAL_EVENT_ID:
                raise Errno(E.ENOMEM, "CREATE_EVENT: non-signal event ids exhausted")
            self._next_other += 1
            self.events[eid] = Event(eid, etype, auto_reset)
            return eid, eid, 0, 0

    def _get(self, eid: int, what: str) -> Event:
        ev = self.events.get(eid)
        if ev is None:
            raise Errno(E.EINVAL, f"{what}: no event with id {eid:#x} in this process")
        return ev

    def destroy(self, eid: int) -> None:
        with self.cond:
            ev = self._get(eid, "DESTROY_EVENT")
            del self.events[eid]
            if ev.type in SIGNAL_TYPES:
                hostmem.write(self.slot_addr(eid), P.UNSIGNALED_EVENT_SLOT.to_bytes(8, "little"))

    def set(self, eid: int) -> None:
        with self.cond:
            ev = self._get(eid, "SET_EVENT")
            if ev.type not in SIGNAL_TYPES:
                raise Errno(E.EINVAL, f"SET_EVENT: event {eid:#x} is not a signal event (event_can_be_cpu_signaled)")
            self._fire(ev)

    def reset(self, eid: int) -> None:
        with self.cond:
            ev = self._get(eid, "RESET_EVENT")
            if ev.type not in SIGNAL_TYPES:
                raise Errno(E.EINVAL, f"RESET_EVENT: event {eid:#x} is not a signal event")
            ev.signaled = False

    def _fire(self, ev: Event) -> None:
        # set_event: an auto-reset event is consumed by the waiters it wakes
        if ev.waiters:
            for w in ev.waiters:
                w.activated = True
            ev.signaled = not ev.auto_reset
        else:
            ev.signaled = True
        self.cond.notify_all()

    # --- what the GPU does ----------------------------------------------------------------------------
    def interrupt(self, ctx_id: int) -> None:
        """An end-of-pipe / SDMA trap interrupt with context id ``ctx_id`` (kfd_signal_event_interrupt):
        the event whose slot index it names fires if its slot was written; otherwise every signal slot
        that holds a value other than UNSIGNALED is scanned and its event fired. Slots are re-armed."""
        with self.cond:
            if not self.page_addr:
                return
            unsignaled = P.UNSIGNALED_EVENT_SLOT.to_bytes(8, "little")
            cand = [self.events[ctx_id]] if ctx_id in self.events and self.events[ctx_id].type in SIGNAL_TYPES else []
            if not cand or hostmem.read(self.slot_addr(ctx_id), 8) == unsignaled:
                cand = [e for e in self.events.values() if e.type in SIGNAL_TYPES]
            for ev in cand:
                if hostmem.read(self.slot_addr(ev.id), 8) != unsignaled:
                    hostmem.write(self.slot_addr(ev.id), unsignaled)
                    self._fire(ev)

    def memory_fault(self, va: int, gpu_id: int, *, not_present: bool = True, read_only: bool = False,
                     no_execute: bool = False, imprecise: bool = False, error_type: int = K.KFD_MEM_ERR_NO_RAS) -> None:
        """kfd_signal_vm_fault_event: fill and fire every MEMORY event of the process."""
        data = {"NotPresent": int(not_present), "ReadOnly": int(read_only), "NoExecute": int(no_execute),
                "imprecise": int(imprecise), "va": va, "gpu_id": gpu_id, "ErrorType": error_type}
        with self.cond:
            for ev in self.events.values():
                if ev.type == K.KFD_IOC_EVENT_MEMORY:
                    ev.memory_exception = data
                    self._fire(ev)

    def hw_exception(self, gpu_id: int, *, reset_type: int = 0, reset_cause: int = 0, memory_lost: int = 1) -> None:
        """kfd_signal_reset_event / hw exception: fill and fire every HW_EXCEPTION event."""
        data = {"reset_type": reset_type, "reset_cause": reset_cause, "memory_lost": memory_lost, "gpu_id": gpu_id}
        with self.cond:
            for ev in self.events.values():
                if ev.type == K.KFD_IOC_EVENT_HW_EXCEPTION:
                    ev.hw_exception = data
                    self._fire(ev)

    # --- WAIT_EVENTS (kfd_wait_on_events) -------------------------------------------------------------
    def wait(self, ids: list[int], wait_all: bool, timeout_ms: int, poll=None) -> tuple[int, list[Event | None]]:
        """Returns (wait_result, per entry: the event if it fired, else None). ``poll`` (optional) is
        called while waiting, every millisecond: in synchronous mock mode it re-polls blocked GPU
        engines, as the hardware keeps re-polling while the host sleeps."""
        with self.cond:
            waiters = []
            for eid in ids:
                ev = self._get(eid, "WAIT_EVENTS")
                w = _Waiter(ev)
                w.activated = ev.signaled                     # init_event_waiter
                ev.signaled = ev.signaled and not ev.auto_reset
                ev.waiters.append(w)
                waiters.append(w)
            try:
                if timeout_ms == P.KFD_EVENT_TIMEOUT_INFINITE:
                    deadline = time.monotonic() + INFINITE_WAIT_CAP_S
                else:
                    deadline = time.monotonic() + timeout_ms / 1000.0
                while True:
                    done = all(w.activated for w in waiters) if wait_all else any(w.activated for w in waiters)
                    if done:
                        return K.KFD_IOC_WAIT_RESULT_COMPLETE, [w.event if w.activated else None for w in waiters]
                    left = deadline - time.monotonic()
                    if left <= 0:
                        if timeout_ms == P.KFD_EVENT_TIMEOUT_INFINITE:
                            raise Errno(E.ETIME, f"WAIT_EVENTS with an infinite timeout waited {INFINITE_WAIT_CAP_S} s "
                                                 "(mock cap HWDRV_MOCK_KFD_WAIT_CAP): nothing will signal these events")
                        return K.KFD_IOC_WAIT_RESULT_TIMEOUT, [None] * len(waiters)
                    if poll is not None:
                        poll()
                        self.cond.wait(min(left, 0.001))
                    else:
                        self.cond.wait(left)
            finally:
                for w in waiters:
                    w.event.waiters.remove(w)

    def close(self) -> None:
        if self.own_page is not None:
            self.own_page.close()
