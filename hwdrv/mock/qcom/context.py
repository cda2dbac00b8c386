"""kgsl draw contexts: flags as adreno_drawctxt_create keeps them, per-context timestamps, fault state."""
from __future__ import annotations

import errno as E
from dataclasses import dataclass, field

from hwdrv.mock.kernel import Errno
from hwdrv.qcom.gen import kgsl as K

# adreno_drawctxt_create: the flags a context keeps ("local"); everything else is dropped silently
KEEP = (K.KGSL_CONTEXT_PREAMBLE | K.KGSL_CONTEXT_NO_GMEM_ALLOC | K.KGSL_CONTEXT_PER_CONTEXT_TS
        | K.KGSL_CONTEXT_USER_GENERATED_TS | K.KGSL_CONTEXT_NO_FAULT_TOLERANCE | K.KGSL_CONTEXT_INVALIDATE_ON_FAULT
        | K.KGSL_CONTEXT_CTX_SWITCH | K.KGSL_CONTEXT_PRIORITY_MASK | K.KGSL_CONTEXT_TYPE_MASK
        | K.KGSL_CONTEXT_PWR_CONSTRAINT | K.KGSL_CONTEXT_IFH_NOP | K.KGSL_CONTEXT_SECURE
        | K.KGSL_CONTEXT_PREEMPT_STYLE_MASK | K.KGSL_CONTEXT_LPAC | K.KGSL_CONTEXT_NO_SNAPSHOT
        | K.KGSL_CONTEXT_FAULT_INFO)
TIMESTAMP_WINDOW = 0x80000000   # kgsl.h KGSL_TIMESTAMP_WINDOW
PRIORITY_MED = 8   # adreno_drawctxt.h KGSL_CONTEXT_PRIORITY_MED: the priority an unset (0) priority becomes


def timestamp_cmp(a: int, b: int) -> int:
    """kgsl.h timestamp_cmp: 1 if a is newer than b, 0 if equal, -1 if older (32-bit, with rollover)."""
    a, b = a & 0xFFFFFFFF, b & 0xFFFFFFFF
    if a == b:
        return 0
    if a > b and a - b < TIMESTAMP_WINDOW:
        return 1
    a, b = (a + TIMESTAMP_WINDOW) & 0xFFFFFFFF, (b + TIMESTAMP_WINDOW) & 0xFFFFFFFF
    return 1 if a > b and a - b <= TIMESTAMP_WINDOW else -1


def create_flags(flags: int, *, preemption: bool) -> int:
    """The flags adreno_drawctxt_create stores for a DRAWCTXT_CREATE request, or Errno as it would fail."""
    local = flags & KEEP
    if not preemption:
        local &= ~K.KGSL_CONTEXT_PREEMPT_STYLE_MASK
    if not local & K.KGSL_CONTEXT_PREAMBLE or not local & K.KGSL_CONTEXT_NO_GMEM_ALLOC:
        raise Errno(E.EINVAL, f"adreno_drawctxt_create: flags {flags:#x} lack PREAMBLE or NO_GMEM_ALLOC "
                              "(\"legacy context switch not supported\")")
    if local & K.KGSL_CONTEXT_SECURE:
        raise Errno(E.EOPNOTSUPP, "adreno_drawctxt_create: secure contexts are not supported (no secure MMU)")
    if local & K.KGSL_CONTEXT_LPAC:
        raise Errno(E.EOPNOTSUPP, "adreno_drawctxt_create: LPAC context not supported (A630 has no LPAC)")
    local |= K.KGSL_CONTEXT_PER_CONTEXT_TS
    if local & K.KGSL_CONTEXT_PRIORITY_MASK == K.KGSL_CONTEXT_PRIORITY_UNDEF:
        local |= PRIORITY_MED << K.KGSL_CONTEXT_PRIORITY_SHIFT
    return local


@dataclass
class Submission:
    """One command object in the ring: where its wrapper sits, for fault attribution and dropping."""
    ctx: int
    timestamp: int
    ring_start: int          # dword index of the wrapper's first packet
    ring_end: int            # dword index just past it


@dataclass
class DrawContext:
    id: int
    owner: object            # the fd state (kgsl dev_priv) that created it
    flags: int
    timestamp: int = 0       # last queued (drawctxt->timestamp)
    detached: bool = False
    invalid: bool = False
    fault_pending: bool = False         # ADRENO_CONTEXT_FAULT: reported once as EPROTO
    reset_status: int = K.KGSL_CTX_STAT_NO_ERROR
    total_fault_count: int = 0
    last_faulted_ts: int = 0
    #: kgsl_add_fault's list (FAULT_INFO contexts): (KGSL_FAULT_TYPE_*, struct kgsl_pagefault_report bytes)
    faults: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def priority(self) -> int:
        return (self.flags & K.KGSL_CONTEXT_PRIORITY_MASK) >> K.KGSL_CONTEXT_PRIORITY_SHIFT
