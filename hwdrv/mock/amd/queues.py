"""User-mode queues of a KFD process: CREATE_QUEUE's validation (kfd_chardev.c
set_queue_properties_from_user, kfd_queue.c kfd_queue_acquire_buffers), queue ids, doorbell slots
(kfd_device_queue_manager.c allocate_doorbell / allocate_sdma_queue) and the queue record the mock
command processor reads."""
from __future__ import annotations

import errno as E
from dataclasses import dataclass, field

from hwdrv.amd.gen import kfd as K
from hwdrv.amd.gen import kfd_priv as P
from hwdrv.mock.kernel import Errno

from .topology import (DOORBELL_BYTES, PAGE, RESERVED_DOORBELL_MASK, RESERVED_DOORBELL_VAL, SDMA_DOORBELL_IDX,
                       GpuNode)

ENOTSUPP = 524                    # the kernel-internal errno set_queue_properties_from_user returns
COMPUTE_TYPES = (K.KFD_IOC_QUEUE_TYPE_COMPUTE, K.KFD_IOC_QUEUE_TYPE_COMPUTE_AQL)
SDMA_TYPES = (K.KFD_IOC_QUEUE_TYPE_SDMA, K.KFD_IOC_QUEUE_TYPE_SDMA_XGMI)
NAMES = {K.KFD_IOC_QUEUE_TYPE_COMPUTE: "compute (PM4)", K.KFD_IOC_QUEUE_TYPE_COMPUTE_AQL: "compute (AQL)",
         K.KFD_IOC_QUEUE_TYPE_SDMA: "SDMA", K.KFD_IOC_QUEUE_TYPE_SDMA_XGMI: "SDMA (XGMI)"}


def _is_pow2(v: int) -> bool:
    return v > 0 and v & (v - 1) == 0


@dataclass
class Queue:
    """A created queue: what the CP needs to run it. Addresses are GPU VAs (== CPU VAs)."""
    queue_id: int
    type: int
    gpu_id: int
    ring_base: int
    ring_size: int
    rptr_addr: int
    wptr_addr: int
    doorbell_index: int             # doorbell slot (8-byte units) within the process doorbell page
    percentage: int
    priority: int
    eop_addr: int = 0
    eop_size: int = 0
    ctx_save_addr: int = 0
    ctx_save_size: int = 0
    ctl_stack_size: int = 0
    sdma_engine: int = 0
    sdma_queue: int = 0
    bos: list = field(default_factory=list)     # BOs whose queue_refs this queue holds
    error: str | None = None                    # set by the mock CP when the queue faults
    owner: object = None                        # the KfdProcess (its events receive interrupts and faults)
    exception_status: int = 0                   # raised KFD_EC_MASK bits (dbg_trap.py reports them)
    stopped_wave: object = None                 # the fault that stopped a wave (dbg_trap.py saves it)
    suspended: bool = False                     # by DBG_TRAP SUSPEND_QUEUES

    @property
    def is_sdma(self) -> bool:
        return self.type in SDMA_TYPES

    @property
    def is_aql(self) -> bool:
        return self.type == K.KFD_IOC_QUEUE_TYPE_COMPUTE_AQL

    @property
    def doorbell_byte_offset(self) -> int:
        return self.doorbell_index * DOORBELL_BYTES


def check_properties(a) -> int:
    """set_queue_properties_from_user (kfd_chardev.c): returns the (possibly clamped) ring size."""
    if a.queue_percentage > K.KFD_MAX_QUEUE_PERCENTAGE:
        raise Errno(E.EINVAL, f"queue_percentage {a.queue_percentage} > KFD_MAX_QUEUE_PERCENTAGE "
                              f"({K.KFD_MAX_QUEUE_PERCENTAGE})")
    if a.queue_priority > K.KFD_MAX_QUEUE_PRIORITY:
        raise Errno(E.EINVAL, f"queue_priority {a.queue_priority} > KFD_MAX_QUEUE_PRIORITY ({K.KFD_MAX_QUEUE_PRIORITY})")
    if a.ring_size and not _is_pow2(a.ring_size):
        raise Errno(E.EINVAL, f"ring_size {a.ring_size:#x} must be a power of 2 (or 0)")
    if a.queue_type not in COMPUTE_TYPES + SDMA_TYPES:
        raise Errno(ENOTSUPP, f"queue_type {a.queue_type} is not COMPUTE, COMPUTE_AQL, SDMA or SDMA_XGMI")
    return max(a.ring_size, P.KFD_MIN_QUEUE_RING_SIZE)


def acquire_buffers(a, ring_size: int, node: GpuNode, bo_at) -> list:
    """kfd_queue_acquire_buffers (kfd_queue.c): every queue buffer must be a GPU mapping of exactly
    the expected size starting at the given address. ``bo_at(va)`` returns the mapped BO containing va."""
    def get(what: str, addr: int, size: int):
        bo = bo_at(addr)
        if bo is None:
            raise Errno(E.EINVAL, f"CREATE_QUEUE: {what} address {addr:#x} is not in a GPU mapping of this process")
        pages = size // PAGE         # the kernel compares in GPU pages: a sub-page size checks the start only
        if addr // PAGE * PAGE != bo.va or (pages and pages * PAGE != bo.size):
            raise Errno(E.EINVAL, f"CREATE_QUEUE: {what} at {addr:#x} must be the start of a mapping of exactly "
                                  f"{size:#x} bytes (kfd_queue_buffer_get); its mapping is [{bo.va:#x}, "
                                  f"{bo.va + bo.size:#x})")
        return bo
    bos = [get("write pointer", a.write_pointer_address, PAGE), get("read pointer", a.read_pointer_address, PAGE),
           get("ring", a.ring_base_address, ring_size)]
    if a.queue_type not in COMPUTE_TYPES:
        return bos
    sz = node.sizes
    if a.eop_buffer_address:
        if a.eop_buffer_size != sz.eop_buffer_size:
            raise Errno(E.EINVAL, f"CREATE_QUEUE: eop_buffer_size {a.eop_buffer_size:#x} != the node's "
                                  f"{sz.eop_buffer_size:#x}")
        bos.append(get("EOP buffer", a.eop_buffer_address, a.eop_buffer_size))
    if a.ctl_stack_size != sz.ctl_stack_size:
        raise Errno(E.EINVAL, f"CREATE_QUEUE: ctl_stack_size {a.ctl_stack_size:#x} != the node's {sz.ctl_stack_size:#x} "
                              "(kfd_queue_ctx_save_restore_size)")
    if a.ctx_save_restore_size < sz.cwsr_size:
        raise Errno(E.EINVAL, f"CREATE_QUEUE: ctx_save_restore_size {a.ctx_save_restore_size:#x} < the node's cwsr "
                              f"size {sz.cwsr_size:#x}")
    total = (a.ctx_save_restore_size + sz.debug_memory_size) * node.num_xcc
    total = (total + PAGE - 1) // PAGE * PAGE
    bos.append(get("context save/restore area (ctx_save_restore_size + debug_memory_size, x num_xcc)",
                   a.ctx_save_restore_address, total))
    return bos


class DoorbellAllocator:
    """Doorbell slots of one process on one SOC15 GPU: compute queues take the lowest free slot
    outside the SDMA-reserved range; SDMA queue (engine e, queue q) uses
    sdma_doorbell_idx[e] + (q & 1) * KFD_QUEUE_DOORBELL_MIRROR_OFFSET + (q >> 1)."""

    def __init__(self, node: GpuNode):
        self.node = node
        n = P.KFD_MAX_NUM_OF_QUEUES_PER_PROCESS
        self.used = [False] * n
        for i in range(n // 2):
            if i & RESERVED_DOORBELL_MASK == RESERVED_DOORBELL_VAL:
                self.used[i] = self.used[i + n // 2] = True
        self.sdma_used: set[tuple[int, int]] = set()

    def compute(self) -> int:
        for i, u in enumerate(self.used):
            if not u:
                self.used[i] = True
                return i
        raise Errno(E.ENOMEM, "CREATE_QUEUE: no free doorbell in the process doorbell page")

    def sdma(self) -> tuple[int, int, int]:
        engines = self.node.properties["num_sdma_engines"]
        per = self.node.properties["num_sdma_queues_per_engine"]
        for idx in range(engines * per):          # allocate_sdma_queue: engine = idx % engines
            e, q = idx % engines, idx // engines
            if (e, q) not in self.sdma_used:
                self.sdma_used.add((e, q))
                return e, q, SDMA_DOORBELL_IDX[e] + (q & 1) * P.KFD_QUEUE_DOORBELL_MIRROR_OFFSET + (q >> 1)
        raise Errno(E.ENOMEM, f"CREATE_QUEUE: all {engines * per} SDMA queues of the device are in use "
                              "(allocate_sdma_queue)")

    def release(self, q: Queue) -> None:
        if q.is_sdma:
            self.sdma_used.discard((q.sdma_engine, q.sdma_queue))
        else:
            self.used[q.doorbell_index] = False
