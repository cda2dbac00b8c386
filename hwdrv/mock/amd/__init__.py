"""The mock AMD KFD kernel driver and mock RDNA3 (gfx1100) GPU.

`make_kernel()` returns a MockKernel serving /dev/kfd, the render node /dev/dri/renderD128 and the
KFD sysfs topology of one Radeon RX 7900 XTX, so the AMD backend runs on a machine without a GPU.
Written from the KFD driver rules (docs/amd-kfd-rules.md) using only generated facts
(hwdrv.amd.gen) - never backend logic.

Modules: topology.py (node properties, sysfs, queue-buffer sizes), kfd.py (/dev/kfd ioctls and
mmap), memory.py (buffer objects), queues.py (CREATE_QUEUE rules, doorbell slots), events.py
(event page, signal/fault events, WAIT_EVENTS), render.py (render node), gpu.py (the GPU: memory
pools, GPU page table, doorbell hook), cp.py (one engine per queue), pm4.py (the compute command
processor), sdma.py (the SDMA engine), rdna3/ (the shader emulator).
"""
from __future__ import annotations

from hwdrv.mock.kernel import MockKernel

from .cp import CommandProcessor
from .gpu import MockAmdGpu
from .kfd import KfdDriver, KfdProcess
from .render import RenderDriver
from .topology import GpuNode, install

#: what `hwdrv info` lists for mock:amd
DESCRIPTION = "mock Radeon RX 7900 XTX (gfx1100): mock KFD + RDNA3 emulator"


def make_kernel(node: GpuNode | None = None, sync: bool | None = None) -> MockKernel:
    """A MockKernel with one mock gfx1100. ``k.amd`` is the KfdDriver (its ``.gpu`` the MockAmdGpu,
    ``.processes`` the open KFD processes) and ``k.amd_cp`` the CommandProcessor running the queues
    (``sync``: run engines inline in the doorbell writer's thread; default HWDRV_MOCK_SYNC)."""
    k = MockKernel()
    gpu = MockAmdGpu(node)
    cp = CommandProcessor(gpu, sync)
    render = RenderDriver(gpu)
    kfd = KfdDriver(k, gpu, render)
    k.register_driver("/dev/kfd", kfd)
    k.register_driver(f"/dev/dri/renderD{gpu.node.render_minor}", render)
    install(k, gpu.node)
    k.amd = kfd
    k.amd_cp = cp
    return k


__all__ = ["DESCRIPTION", "make_kernel", "CommandProcessor", "GpuNode", "KfdDriver", "KfdProcess", "MockAmdGpu"]
