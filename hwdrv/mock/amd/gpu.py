"""The mock AMD GPU as the KFD side sees it: its node, memory pools, GPU address space, clock,
and the hook through which a queue's doorbell write reaches the GPU's command processor."""
from __future__ import annotations

import threading
import time
from typing import Callable

from hwdrv.mock.gpumem import GpuPageTable
from hwdrv.mock.physmem import PhysPool

from .topology import GTT_BYTES, GpuNode

GPU_CLOCK_HZ = 100_000_000       # gfx11 "GPU clock counter" (RELEASE_MEM timestamps) runs at 100 MHz


class MockAmdGpu:
    """One gfx1100 GPU. ``page_table`` is the GPU virtual address space of the (single) process VM
    that ACQUIRE_VM binds; mapped buffer objects enter it. ``doorbell_listener`` is called with
    (queue, value) after a doorbell write: the mock command processor installs itself there."""

    def __init__(self, node: GpuNode | None = None):
        self.node = node or GpuNode()
        self.vram = PhysPool(self.node.vram_bytes, "amd-vram")
        self.gtt = PhysPool(GTT_BYTES, "amd-gtt")
        self.page_table = GpuPageTable("gfx1100")
        self.lock = threading.RLock()
        self.doorbell_listener: Callable[[object, int], None] | None = None
        self.release_listener: Callable[[object], None] | None = None
        self.poll_listener: Callable[[], None] | None = None     # re-poll blocked engines (sync mode)
        self._t0 = time.perf_counter_ns()

    @property
    def gpu_id(self) -> int:
        return self.node.gpu_id

    def clock_counter(self) -> int:
        """The GPU clock counter (100 MHz ticks since the mock GPU was made)."""
        return (time.perf_counter_ns() - self._t0) * GPU_CLOCK_HZ // 1_000_000_000

    def ring_doorbell(self, queue, value: int) -> None:
        if self.doorbell_listener is not None:
            self.doorbell_listener(queue, value)

    def release_queue(self, queue) -> None:
        """The queue was destroyed (or its process closed): its engine stops."""
        if self.release_listener is not None:
            self.release_listener(queue)
