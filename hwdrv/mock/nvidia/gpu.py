"""The mock Hopper GPU: channels, the usermode (doorbell/timer) page, and the class engines.

RM (rm.py) creates channels here when HOPPER_CHANNEL_GPFIFO_A objects are allocated. A doorbell
write (usermode +0x90, NVC361_NOTIFY_CHANNEL_PENDING) of a channel's work-submit token wakes that
channel's engine. The usermode page's PTIMER words (+0x80 TIME_0, +0x84 TIME_1) are refreshed
with the GPU nanosecond clock on every doorbell and on every unit of GPU work (host memory cannot
change by itself when read, so the clock reads as of the GPU's last activity; documented).

Every robust-channel event is printed to the kernel log (`kmsg`, the MockKernel's `KernelLog`
once `make_kernel` connects it) the way NVRM prints it, ``NVRM: Xid (PCI:dddd:bb:ss): <xid>, ...``,
followed by the mock's own explanation on a line with the same prefix. `regs` is the register
file EXEC_REG_OPS reads (regs.py).
"""
from __future__ import annotations

import os
import threading
from typing import Callable

from hwdrv.ioctl import hostmem
from hwdrv.mock.kernel import KernelLog

from . import faults as X
from . import semaphore as S
from .compute import DEFAULT_KERNEL_TIMEOUT, ComputeEngine
from .copy import CopyEngine
from hwdrv.mock.physmem import PhysPool

from .facts import HW, VRAM_SIZE, GpuIdentity
from .fifo import Channel
from .image import ImageCache
from .backing import MemBacking
from .regs import RegisterFile

#: how NVRM names GPU 0 in its log lines (each GPU's is ``gpu.ident.pci_tag``)
PCI_TAG = GpuIdentity(0).pci_tag


class MockGpu:
    """One mock H100 (GPU ``ident.index`` of its machine, minor ``ident.minor``)."""

    def __init__(self, kernel_timeout: float | None = None, ident: GpuIdentity | None = None):
        self.ident = ident if ident is not None else GpuIdentity(0)
        #: this GPU's video memory (each GPU of a machine has its own)
        self.vram = PhysPool(VRAM_SIZE, f"vram of GPU {self.ident.index}")
        self.images = ImageCache()
        self.kernel_timeout = DEFAULT_KERNEL_TIMEOUT if kernel_timeout is None else kernel_timeout
        self._lock = threading.RLock()
        self._channels: dict[int, Channel] = {}
        self._next_chid = 1
        self.usermode_pages: list[MemBacking] = []
        self.rc_log: list[tuple[int, int, str]] = []        # (chid, xid, message), newest last
        self.stray_doorbells: list[int] = []
        self.perf_boost: list[tuple[int, int]] = []          # (flags, duration) requests
        self.kmsg = KernelLog()                             # replaced by the MockKernel's log
        self.regs = RegisterFile()

    # ---- channels ------------------------------------------------------------------------------
    def new_channel(self, **kw) -> Channel:
        with self._lock:
            chid = self._next_chid
            self._next_chid += 1
        ch = Channel(self, chid, **kw)
        with self._lock:
            self._channels[chid] = ch
        return ch

    def forget_channel(self, ch: Channel) -> None:
        with self._lock:
            self._channels.pop(ch.chid, None)

    def channels(self) -> list[Channel]:
        with self._lock:
            return list(self._channels.values())

    def channels_of(self, tsg: object) -> list[Channel]:
        return [c for c in self.channels() if c.tsg is tsg]

    def tsg_id(self, ch: Channel) -> int:
        """The id the mock gives ``ch``'s channel group: its lowest channel id."""
        return min((c.chid for c in self.channels_of(ch.tsg)), default=ch.chid)

    def record_rc(self, ch: Channel, err: X.ChannelError) -> None:
        """An RC event: keep it for RC_GET_ERROR_COUNT, preempt the TSG off its runlist (register
        model) and print it to the kernel log."""
        with self._lock:
            self.rc_log.append((ch.chid, err.xid, str(err)))
        self.regs.note_tsg_preempt(self.tsg_id(ch))
        with open("/proc/self/comm") as f:      # the task name NVRM prints (the kernel's comm)
            name = f.read().strip()
        # one printk call: the event's lines reach the log together
        self.kmsg.printk("\n".join(f"NVRM: Xid ({self.ident.pci_tag}): {err.xid}, {line}"
                                   for line in X.kernel_log_lines(err, ch.chid, os.getpid(), name)))

    def class_engine(self, cls: int, ch: Channel) -> object:
        factories: dict[int, Callable[[Channel], object]] = {
            HW.HOPPER_COMPUTE_A: ComputeEngine, HW.HOPPER_DMA_COPY_A: CopyEngine}
        return factories[cls](ch)

    # ---- usermode page ----------------------------------------------------------------------------
    def add_usermode(self, mem: MemBacking) -> None:
        with self._lock:
            self.usermode_pages.append(mem)
        self.refresh_timer()

    def remove_usermode(self, mem: MemBacking) -> None:
        with self._lock:
            if mem in self.usermode_pages:
                self.usermode_pages.remove(mem)

    def refresh_timer(self) -> None:
        ns = S.now_ns()
        for mem in list(self.usermode_pages):
            if mem.block is not None and not mem.block.closed:
                hostmem.write(mem.host_addr + HW.NVC361_TIME_0, (ns & 0xFFFFFFFF).to_bytes(4, "little"))
                hostmem.write(mem.host_addr + HW.NVC361_TIME_1, (ns >> 32).to_bytes(4, "little"))

    def doorbell(self, page_addr: int, addr: int, value: int, width: int) -> None:
        """MMIO handler for a CPU mapping of the usermode page at `page_addr`."""
        self.refresh_timer()
        if addr - page_addr != HW.NVC361_NOTIFY_CHANNEL_PENDING:
            return                           # other usermode registers: stores are ignored
        hostmem.write(addr, b"\0" * width)  # the doorbell reads back as 0 on Hopper
        with self._lock:
            ch = self._channels.get(value & 0xFFFFFFFF)
        if ch is None:
            self.stray_doorbells.append(value)
            return
        ch.kick()

    def close(self) -> None:
        for ch in self.channels():
            ch.close()
