"""NVIDIA memory: video memory, pinned system memory, and their CPU and GPU mappings.

Every allocation gets one virtual address inside hwdrv's reserved pool, used by both the CPU
(where it has a mapping) and the GPU (through UVM): GPU VA == CPU VA. Device-only memory keeps
its CPU side PROT_NONE, so a stray CPU access faults instead of touching something else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..ioctl.kernel import O_CLOEXEC, O_RDWR, Kernel
from ..memory.vapool import VAPool
from .rm import RM
from .uvm import UVM

PAGE_4K = 4 << 10
PAGE_2M = 2 << 20
# Above this size video memory uses 2 MiB GPU pages (fewer TLB misses, faster bulk copies).
HUGE_PAGE_THRESHOLD = 8 << 20


@dataclass
class Allocation:
    """Backend bookkeeping of one mapping (Buffer.meta)."""
    handle: int
    va: int
    size: int
    kind: str            # "vidmem" | "sysmem" | "rm-sysmem"
    cpu_mapped: bool


class NVMemory:
    """Allocates and maps memory for one open GPU."""

    def __init__(self, kernel: Kernel, nv: Any, rm: RM, uvm: UVM, pool: VAPool, dev_path: str,
                 device: int, uuid: bytes, dev_fd: int):
        self.kernel, self.nv, self.rm, self.uvm, self.pool = kernel, nv, rm, uvm, pool
        self.dev_path, self.device, self.uuid, self.dev_fd = dev_path, device, uuid, dev_fd
        self.live: dict[int, Allocation] = {}

    def _open_registered_dev_fd(self) -> int:
        """A fresh /dev/nvidiaN fd linked to our control fd: an fd carries exactly one mmap
        context, so every CPU mapping of device memory needs its own."""
        fd = self.kernel.open(self.dev_path, O_RDWR | O_CLOEXEC)
        try:
            p = self.nv.ffi.new("nv_ioctl_register_fd_t *")
            p.ctl_fd = self.rm.fd
            self.rm.escape(fd, self.nv.NV_ESC_REGISTER_FD, p, "NV_ESC_REGISTER_FD")
        except BaseException:
            self.kernel.close(fd)
            raise
        return fd

    def vidmem(self, size: int, cpu_map: bool = False, contiguous: bool = False) -> Allocation:
        """Video memory mapped to the GPU at a pool VA; ``cpu_map`` maps it to the CPU too (BAR1)."""
        nv = self.nv
        huge = size >= HUGE_PAGE_THRESHOLD
        page = PAGE_2M if huge else PAGE_4K
        size = -(-size // page) * page
        p = nv.ffi.new("NV_MEMORY_ALLOCATION_PARAMS *")
        p.owner = self.rm.client
        p.type = nv.NVOS32_TYPE_IMAGE
        p.flags = (nv.NVOS32_ALLOC_FLAGS_MAP_NOT_REQUIRED | nv.NVOS32_ALLOC_FLAGS_ALIGNMENT_FORCE
                   | nv.NVOS32_ALLOC_FLAGS_IGNORE_BANK_PLACEMENT | nv.NVOS32_ALLOC_FLAGS_PERSISTENT_VIDMEM)
        p.attr = (nv.NVOS32_ATTR_PHYSICALITY.encode(nv.NVOS32_ATTR_PHYSICALITY_CONTIGUOUS if contiguous
                                                     else nv.NVOS32_ATTR_PHYSICALITY_ALLOW_NONCONTIGUOUS)
                  | nv.NVOS32_ATTR_LOCATION.encode(nv.NVOS32_ATTR_LOCATION_VIDMEM)
                  | nv.NVOS32_ATTR_PAGE_SIZE.encode(nv.NVOS32_ATTR_PAGE_SIZE_HUGE if huge
                                                    else nv.NVOS32_ATTR_PAGE_SIZE_4KB))
        p.attr2 = (nv.NVOS32_ATTR2_ZBC.encode(nv.NVOS32_ATTR2_ZBC_PREFER_NO_ZBC)
                   | nv.NVOS32_ATTR2_GPU_CACHEABLE.encode(nv.NVOS32_ATTR2_GPU_CACHEABLE_YES)
                   | (nv.NVOS32_ATTR2_PAGE_SIZE_HUGE.encode(nv.NVOS32_ATTR2_PAGE_SIZE_HUGE_2MB)
                      if huge else 0))
        p.format = nv.NV_MMU_PTE_KIND_GENERIC_MEMORY
        p.size = size
        p.alignment = page
        p.limit = size - 1
        handle = self.rm.alloc(self.device, nv.NV01_MEMORY_LOCAL_USER, p)

        def place() -> int:
            if cpu_map:
                return self._cpu_map(handle, size, page, self._open_registered_dev_fd())
            return self.pool.reserve_gpu_only(size, page)
        return self._map(handle, size, place, "vidmem", cpu_map)

    def sysmem(self, size: int) -> Allocation:
        """Pinned host memory at a pool VA, mapped to the GPU at the same VA."""
        page = PAGE_2M if size >= HUGE_PAGE_THRESHOLD else PAGE_4K
        size = -(-size // PAGE_4K) * PAGE_4K
        va = self.pool.place_anonymous(size, page)
        try:
            # RM describes the pages that are already at `va` (an OS-descriptor object)
            handle = self.rm.alloc_os_memory(self.dev_fd, self.device, va, size)
        except BaseException:
            self.pool.release(va)
            raise
        # the RM object describes the pool's pages: on failure it goes before they do
        return self._map(handle, size, lambda: va, "sysmem", True, free_first=True)

    def rm_sysmem(self, size: int, map_gpu: bool = True) -> Allocation:
        """System memory owned by RM (NV01_MEMORY_SYSTEM), CPU-mapped: what RM wants for objects
        such as the channel error notifier."""
        nv = self.nv
        size = -(-size // PAGE_4K) * PAGE_4K
        p = nv.ffi.new("NV_MEMORY_ALLOCATION_PARAMS *")
        p.owner = self.rm.client
        p.type = nv.NVOS32_TYPE_NOTIFIER
        p.flags = nv.NVOS32_ALLOC_FLAGS_MAP_NOT_REQUIRED | nv.NVOS32_ALLOC_FLAGS_IGNORE_BANK_PLACEMENT
        p.attr = (nv.NVOS32_ATTR_LOCATION.encode(nv.NVOS32_ATTR_LOCATION_PCI)
                  | nv.NVOS32_ATTR_PAGE_SIZE.encode(nv.NVOS32_ATTR_PAGE_SIZE_4KB))
        p.attr2 = (nv.NVOS32_ATTR2_ZBC.encode(nv.NVOS32_ATTR2_ZBC_PREFER_NO_ZBC)
                   | nv.NVOS32_ATTR2_GPU_CACHEABLE.encode(nv.NVOS32_ATTR2_GPU_CACHEABLE_NO))
        p.size = size
        p.limit = size - 1
        handle = self.rm.alloc(self.device, nv.NV01_MEMORY_SYSTEM, p)

        def place() -> int:
            # system memory is mapped through a fresh control fd (one mmap context per fd)
            return self._cpu_map(handle, size, PAGE_4K, self.kernel.open("/dev/nvidiactl", O_RDWR | O_CLOEXEC))
        return self._map(handle, size, place, "rm-sysmem" if map_gpu else "rm-sysmem-cpu", True,
                         map_gpu=map_gpu)

    def _map(self, handle: int, size: int, place: Callable[[], int], kind: str, cpu_mapped: bool,
             map_gpu: bool = True, free_first: bool = False) -> Allocation:
        """Give RM object ``handle`` its pool address (``place()``: a CPU mapping, a GPU-only
        reservation, or pages already placed), map it to the GPU there through UVM, and record
        it. On any failure undo what was done -- the address back to the pool and the RM object
        freed (in that order, or the other with ``free_first``) -- and re-raise."""
        va = 0
        try:
            va = place()
            if map_gpu:
                self.uvm.map_external(self.uuid, self.rm.fd, self.rm.client, handle, va, size)
        except BaseException:
            if free_first:
                self.rm.free(handle)
            if va:
                self.pool.release(va)
            if not free_first:
                self.rm.free(handle)
            raise
        a = Allocation(handle, va, size, kind, cpu_mapped)
        self.live[va] = a
        return a

    def free(self, a: Allocation) -> None:
        """Unmap from the GPU, release the VA (back to PROT_NONE) and free the RM object."""
        self.live.pop(a.va, None)
        try:
            if a.va in self.uvm.ranges:
                self.uvm.free(a.va)
        finally:
            try:
                self.pool.release(a.va)
            finally:
                self.rm.free(a.handle)

    def map_usermode(self, usermode: int, size: int) -> int:
        """CPU-map the usermode (doorbell) page of HOPPER_USERMODE_A; returns its address."""
        return self._cpu_map(usermode, size, PAGE_4K, self._open_registered_dev_fd())

    def _cpu_map(self, handle: int, size: int, align: int, fd: int) -> int:
        """Map RM object ``handle`` at a pool address through ``fd`` (consumed: the mapping
        keeps the file alive, so the fd is closed either way)."""
        try:
            self.rm.map_memory(self.device, handle, size, fd)
            return self.pool.place(size, align, fd, 0)
        finally:
            self.kernel.close(fd)

