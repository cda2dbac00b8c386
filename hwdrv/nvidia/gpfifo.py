"""A GPFIFO channel from the host side: pushbuffer method headers, GP entries, the entry ring,
USERD (GPPut/GPGet), the pushbuffer ring unbound submissions are copied into, and the doorbell.

A method header is one 32-bit word: SEC_OP (how the following data words map to methods),
COUNT, SUBCHANNEL and the method's byte offset >> 2; data words follow (host class C86F / C56F
encodings). A GP entry points the channel's PBDMA at one pushbuffer segment.
"""
from __future__ import annotations

import collections
import struct
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import GPUHang
from ..ioctl.bindings import encode
from .gen import hopper as hw

if TYPE_CHECKING:
    from ..ioctl.kernel import Kernel

#: subchannel numbers by convention (cla06fsubch.h): where SET_OBJECT binds each class
SUBCH_COMPUTE = hw.NVA06F_SUBCHANNEL_COMPUTE
SUBCH_COPY = hw.NVA06F_SUBCHANNEL_COPY_ENGINE
#: host (channel) methods such as semaphores are executed by the PBDMA on any subchannel
SUBCH_HOST = 0

_SEC_OP = hw.NVC56F_DMA_SEC_OP
_COUNT = hw.NVC56F_DMA_METHOD_COUNT
_SUBCH = hw.NVC56F_DMA_METHOD_SUBCHANNEL
_ADDR = hw.NVC56F_DMA_METHOD_ADDRESS


def inc(subch: int, method: int, count: int) -> int:
    """Header for ``count`` data words written to consecutive methods from ``method``."""
    return (_SEC_OP.encode(hw.NVC56F_DMA_SEC_OP_INC_METHOD) | _COUNT.encode(count)
            | _SUBCH.encode(subch) | _ADDR.encode(method >> 2))


# GP entry layout: entry0 holds VA[31:2] in place, entry1 VA[39:32] and the length in dwords.
_GP_E0 = hw.NVC56F_GP_ENTRY0_FETCH.encode(hw.NVC56F_GP_ENTRY0_FETCH_UNCONDITIONAL)
_GP_E1 = hw.NVC56F_GP_ENTRY1_LEVEL.encode(hw.NVC56F_GP_ENTRY1_LEVEL_MAIN)
_GP_GET_MASK = hw.NVC56F_GP_ENTRY0_GET.mask
_GP_LEN_SHIFT = 32 + hw.NVC56F_GP_ENTRY1_LENGTH.lo
_GP_LEN_MAX = (1 << hw.NVC56F_GP_ENTRY1_LENGTH.width) - 1
#: the most words one GP entry (one submission's segment) can fetch
MAX_SEGMENT_WORDS = _GP_LEN_MAX
_GP_HI_SHIFT = 32 + hw.NVC56F_GP_ENTRY1_GET_HI.lo


def gp_entry(va: int, ndwords: int) -> int:
    """A GPFIFO entry (64-bit) that fetches ``ndwords`` words of pushbuffer at ``va``."""
    if va & 3 or va >> 40 or not 0 < ndwords <= _GP_LEN_MAX:
        raise ValueError(f"pushbuffer segment {va:#x} + {ndwords} words: the address must be "
                         f"4-byte aligned below 2**40 and the length 1..{_GP_LEN_MAX} words")
    return ((va & _GP_GET_MASK) | _GP_E0 | (((va >> 32) & 0xFF) << _GP_HI_SHIFT)
            | (ndwords << _GP_LEN_SHIFT) | (_GP_E1 << 32))


# Semaphore execute words (host class): a 64-bit acquire ">=" that yields the TSG while it
# waits, and a 64-bit release after the channel is idle, with or without the ns timestamp.
# The acquire is ACQ_STRICT_GEQ, which succeeds when SV >= PV "an unsigned greater-than-or-equal-to
# comparison", not ACQ_CIRC_GEQ, which succeeds when SV is within [PV, PV + 2**63 - 1] modulo 2**64
# (open-gpu-doc manuals/ampere/ga100/dev_pbdma.ref.txt, SEM_EXECUTE): a circular compare passes at
# once for targets 2**63 or more above the value, and the API promises a plain 64-bit ">=".
SEM_ACQUIRE_GEQ = encode(hw, "NVC56F_SEM_EXECUTE", OPERATION="ACQ_STRICT_GEQ", ACQUIRE_SWITCH_TSG="EN",
                         PAYLOAD_SIZE="64BIT")
SEM_RELEASE = encode(hw, "NVC56F_SEM_EXECUTE", OPERATION="RELEASE", RELEASE_WFI="EN", PAYLOAD_SIZE="64BIT")
SEM_RELEASE_TS = SEM_RELEASE | encode(hw, "NVC56F_SEM_EXECUTE", RELEASE_TIMESTAMP="EN")
# A reduction that adds 0 leaves the value as it is; with the timestamp bit it records the
# time only (the timestamp verb must not change the signal's value).
SEM_TIMESTAMP_ONLY = encode(hw, "NVC56F_SEM_EXECUTE", OPERATION="REDUCTION", REDUCTION="IADD",
                            REDUCTION_FORMAT="UNSIGNED", RELEASE_WFI="EN", PAYLOAD_SIZE="64BIT",
                            RELEASE_TIMESTAMP="EN")
SEM_HEADER = inc(SUBCH_HOST, hw.NVC86F_SEM_ADDR_LO, 5)


#: words of one semaphore operation, and where its 64-bit payload sits among them
SEMAPHORE_WORDS = 6
SEMAPHORE_PAYLOAD = slice(3, 5)


def semaphore(va: int, payload: int, execute: int) -> list[int]:
    """The 6 words of a host semaphore operation on the 64-bit cell at ``va``."""
    return [SEM_HEADER, va & 0xFFFFFFFC, hw.NVC86F_SEM_ADDR_HI_OFFSET.encode(va >> 32),
            payload & 0xFFFFFFFF, payload >> 32, execute]


#: GP entries per channel ring
GPFIFO_ENTRIES = 4096
#: in-flight pushbuffer records added between looks for finished ones to drop (a push reads the
#: timeline only when its segment overlaps the oldest record or the record grew this much)
PB_RECORDS_PER_LOOK = 64
#: a release's 64-bit payload as it sits in the words (low word, then high word)
PAYLOAD = struct.Struct("<Q")
#: bytes of pushbuffer ring per channel that unbound submissions are copied into
PUSHBUFFER_SIZE = 16 << 20


class Channel:
    """Host-side state of one GPFIFO channel."""

    def __init__(self, name: str, kernel: "Kernel", ring: np.ndarray, userd: np.ndarray,
                 gpput_word: int, gpget_word: int, pb_va: int, pb: np.ndarray, token: int,
                 doorbell: int, timeline_done: Callable[[int], bool],
                 wait_timeline: Callable[[int, float], None],
                 stall_timeout: Callable[[], float], on_stall: Callable[[str], GPUHang]):
        """``wait_timeline(v, seconds)`` waits for the engine's timeline (raising GPUHang);
        ``stall_timeout()`` is how long a push may wait for ring space (the device's
        submit_timeout); ``on_stall(message)`` makes the GPUHang (with a report) to raise."""
        self.name, self.kernel = name, kernel
        self.ring, self.userd = ring, userd           # uint64 view of entries, uint32 view of USERD
        # the same as memoryviews: an item store costs half a numpy scalar store
        self._ring_items, self._userd_items = memoryview(ring), memoryview(userd)
        self._gpput, self._gpget = gpput_word, gpget_word
        self.pb_va, self.pb = pb_va, pb               # pushbuffer ring (uint32 view)
        self.token, self.doorbell = token, doorbell
        self._ring_doorbell = kernel.doorbell32(doorbell, token)     # prepared once: rung per push
        self.put = 0                                  # entries written (monotonic)
        self._seen_consumed = 0                       # entries known consumed at the last look
        self._pb_off = 0                              # next free word in the pushbuffer ring
        self._pb_inflight: collections.deque[tuple[int, int, int]] = collections.deque()
        self._pb_look_at = PB_RECORDS_PER_LOOK           # record length at which to drop finished ones
        self._timeline_done, self._wait_timeline = timeline_done, wait_timeline
        self._stall_timeout, self._on_stall = stall_timeout, on_stall
        self.history: collections.deque[tuple[int, int, int]] = collections.deque(maxlen=64)
        self._pb_bytes = memoryview(pb).cast("B")     # byte view: one slice store per push_copy
        self._pb_cap = len(pb)
        self._release_va = -1                          # push_copy's timeline release template:
        self._release_head = self._release_tail = b""  # its bytes before and after the payload

    @property
    def gp_get(self) -> int:
        """GP entries the GPU has consumed (mod ring size), read from USERD."""
        return int(self.userd[self._gpget])

    def push(self, va: int, ndwords: int) -> None:
        """Queue a GP entry for the segment ``(va, ndwords)``, publish GPPut and ring the
        doorbell (whose MMIO write fences every store before it: entry, then GPPut)."""
        if va & 3 or va >> 40 or not 0 < ndwords <= _GP_LEN_MAX:
            gp_entry(va, ndwords)                     # raises, naming the bad segment
        self.publish(va, ndwords)

    def publish(self, va: int, ndwords: int) -> None:
        """``push`` without the segment check, for segments known valid: push_copy's lie in the
        ring, a bound queue's was checked when it was bound."""
        n = GPFIFO_ENTRIES
        put = self.put
        if put - self._seen_consumed >= n - 1:
            self._wait_for_ring_slot(n)
        # gp_entry's fields, inline: this runs once per submission
        self._ring_items[put % n] = ((va & _GP_GET_MASK) | _GP_E0 | (((va >> 32) & 0xFF) << _GP_HI_SHIFT)
                                     | (ndwords << _GP_LEN_SHIFT) | (_GP_E1 << 32))
        self.history.append((put, va, ndwords))
        self.put = put = put + 1
        self._userd_items[self._gpput] = put % n
        self._ring_doorbell()

    def push_copy(self, words: bytes, timeline_va: int, timeline_value: int) -> None:
        """Copy ``words`` (the bytes of whole little-endian 32-bit words) and a release of
        ``timeline_value`` to the 64-bit timeline at ``timeline_va`` into the pushbuffer ring,
        and push that segment."""
        total = (len(words) >> 2) + SEMAPHORE_WORDS
        off = self._pb_off
        inflight = self._pb_inflight
        end = off + total
        # The common case inline: no wrap, and the oldest record in flight starts outside the
        # segment -- behind it (everything in flight lies behind: the ring has not wrapped since)
        # or after it (after a wrap, everything in flight lies after). _reserve does the rest.
        if end <= self._pb_cap and (not inflight or not off <= inflight[0][0] < end) \
                and len(inflight) < self._pb_look_at:
            inflight.append((off, end, timeline_value))
            self._pb_off = end
        else:
            off = self._reserve(total, timeline_value)
        if self._release_va != timeline_va:
            self._cache_release(timeline_va)
        # one store of the words and the release (bytes: cheaper than numpy slices)
        self._pb_bytes[off * 4:(off + total) * 4] = (words + self._release_head
                                                     + PAYLOAD.pack(timeline_value) + self._release_tail)
        self.publish(self.pb_va + off * 4, total)

    def _cache_release(self, timeline_va: int) -> None:
        # push_copy's release of the timeline at ``timeline_va``: its bytes before and after the
        # payload, made once per timeline
        rel = np.array(semaphore(timeline_va, 0, SEM_RELEASE), np.uint32).tobytes()
        self._release_head, self._release_tail = rel[:SEMAPHORE_PAYLOAD.start * 4], rel[SEMAPHORE_PAYLOAD.stop * 4:]
        self._release_va = timeline_va

    def _reserve(self, nwords: int, timeline_value: int) -> int:
        cap = self._pb_cap
        if nwords > cap:
            from ..errors import InvalidArgument
            raise InvalidArgument(f"{self.name}: a submission of {nwords * 4} bytes exceeds the "
                                  f"{cap * 4}-byte pushbuffer ring; bind() large queues instead")
        off = self._pb_off
        skipped = cap                  # where a tail the wrap leaves unused starts (none: cap)
        if off + nwords > cap:
            skipped, off = off, 0
        end = off + nwords
        # Wait until no earlier submission still occupies [off, end). The ring is filled in
        # order, so the records in the way are the oldest ones, oldest first -- counting, after
        # a wrap, those in the skipped tail [skipped, cap): they are older than the records at
        # the ring's start that the new segment may overlap. Finished records are dropped in
        # batches.
        deadline = None
        inflight = self._pb_inflight
        while inflight:
            s, e, v = inflight[0]
            if (s < end and off < e) or e > skipped:
                if not self._timeline_done(v):
                    if deadline is None:
                        deadline = time.perf_counter() + self._stall_timeout()
                    self._wait_timeline(v, max(0.0, deadline - time.perf_counter()))
                    continue
                inflight.popleft()
            else:
                if len(inflight) >= self._pb_look_at:
                    done = self._timeline_done
                    while inflight and done(inflight[0][2]):
                        inflight.popleft()
                    self._pb_look_at = len(inflight) + PB_RECORDS_PER_LOOK
                break
        self._pb_inflight.append((off, end, timeline_value))
        self._pb_off = end
        return off

    def _wait_for_ring_slot(self, n: int) -> None:
        # GPGet lives in device memory behind BAR1 (a slow uncached read): look only when the
        # entries written since the last look could have filled the ring
        if self.put - self._seen_consumed < n - 1:
            return
        self._seen_consumed = self._consumed()
        if self.put - self._seen_consumed < n - 1:
            return
        limit = self._stall_timeout()
        deadline = time.perf_counter() + limit
        while self.put - self._consumed() >= n - 1:
            if time.perf_counter() > deadline:
                raise self._on_stall(f"{self.name}: the GPU has not consumed GPFIFO entries for "
                                     f"{limit:.3g} s (GPGet {self.gp_get}, put {self.put % n}); "
                                     f"the ring is full behind stuck work")
            time.sleep(0)
        self._seen_consumed = self._consumed()

    def _consumed(self) -> int:
        n = len(self.ring)
        get = self.gp_get
        base = self.put - self.put % n
        c = base + get
        return c if c <= self.put else c - n
