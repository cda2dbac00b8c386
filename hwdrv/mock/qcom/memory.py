"""kgsl memory entries of one process: allocation, ids, GPU addresses, mmap, user memory, free.

kgsl assigns GPU addresses itself (kgsl_mmu_get_gpuaddr): a plain allocation gets one from the
64-bit non-SVM window at alloc time; a USE_CPU_MAP (SVM) allocation has none until it is mmap'd, and
then its GPU address *is* the CPU address mmap returned (kgsl_get_unmapped_area / _gpu_set_svm_region).
Mapped user memory (MAP_USER_MEM, type ADDR) is seen by the GPU at its host address. All GPU
addresses resolve through one ``GpuPageTable`` per process (kgsl page tables are per process).
"""
from __future__ import annotations

import errno as E
import threading
from dataclasses import dataclass, field

from hwdrv.ioctl.kernel import PROT_READ, PROT_WRITE, page_align_up
from hwdrv.ioctl.linux import LinuxKernel
from hwdrv.mock.gpumem import GpuPageTable
from hwdrv.mock.kernel import Errno
from hwdrv.mock.physmem import PhysBlock
from hwdrv.qcom.gen import kgsl as K

from . import facts as F

PAGE = 4096
# gpumem_alloc_entry: the flags a user allocation keeps (everything else is dropped silently)
ALLOC_KEEP = (K.KGSL_MEMFLAGS_GPUREADONLY | K.KGSL_CACHEMODE_MASK | K.KGSL_MEMTYPE_MASK | K.KGSL_MEMALIGN_MASK
              | K.KGSL_MEMFLAGS_USE_CPU_MAP | K.KGSL_MEMFLAGS_SECURE | K.KGSL_MEMFLAGS_FORCE_32BIT
              | K.KGSL_MEMFLAGS_IOCOHERENT | K.KGSL_MEMFLAGS_GUARD_PAGE)
UINT_MAX = 0xFFFFFFFF
MAX_ALIGN_LOG2 = 25  # cap_alignment: "capped at 32 MiB" (ilog2(SZ_32M))
SVM_TRIES, SVM_STEP = 4096, 1 << 24   # how far the mock walks the SVM window looking for a range the OS grants
_os = LinuxKernel()


@dataclass
class MemEntry:
    id: int
    size: int                  # bytes (page-rounded, as memdesc.size)
    flags: int
    gpuaddr: int = 0
    block: PhysBlock | None = None
    hostptr: int = 0           # user memory (MAP_USER_MEM): the caller's pages
    cpu_maps: list[int] = field(default_factory=list)
    pending_free: bool = False
    metadata: bytes = b""

    @property
    def footprint(self) -> int:
        """kgsl_memdesc_footprint: the size plus the guard page if one was asked for."""
        return self.size + (PAGE if self.flags & K.KGSL_MEMFLAGS_GUARD_PAGE else 0)

    @property
    def use_cpu_map(self) -> bool:
        return bool(self.flags & K.KGSL_MEMFLAGS_USE_CPU_MAP)

    @property
    def is_usermem(self) -> bool:
        return (self.flags & K.KGSL_MEMFLAGS_USERMEM_MASK) != 0


class ProcessMemory:
    """kgsl_process_private's memory: the id table and the page table of one process."""

    def __init__(self, pagetable: GpuPageTable):
        self.pt = pagetable
        self.lock = threading.RLock()
        self.entries: dict[int, MemEntry] = {}
        self._next_id = 1
        self._next_va = F.VA_BASE64
        self._next_svm = F.SVM_BASE64

    # --- allocation (gpumem_alloc_entry) ----------------------------------------------------------------
    def alloc(self, size: int, flags: int) -> MemEntry:
        flags &= ALLOC_KEEP
        if flags & K.KGSL_MEMFLAGS_SECURE:
            raise Errno(E.EOPNOTSUPP, "gpumem_alloc_entry: secure memory is not enabled on this device")
        align = (flags & K.KGSL_MEMALIGN_MASK) >> K.KGSL_MEMALIGN_SHIFT
        if align > MAX_ALIGN_LOG2:  # cap_alignment
            flags = (flags & ~K.KGSL_MEMALIGN_MASK) | (MAX_ALIGN_LOG2 << K.KGSL_MEMALIGN_SHIFT)
        if size == 0 or size > UINT_MAX:
            raise Errno(E.EINVAL, f"gpumem_alloc_entry: size {size:#x} must be in 1..UINT_MAX")
        with self.lock:
            e = MemEntry(self._next_id, page_align_up(size), flags)
            self._next_id += 1
            e.block = PhysBlock(e.size, f"kgsl-{e.id}")
            if not e.use_cpu_map:
                e.gpuaddr = self._reserve_va(e.footprint, self._align(flags))
                self.pt.map(e.gpuaddr, e.block.host_addr, e.size, writable=not flags & K.KGSL_MEMFLAGS_GPUREADONLY)
            self.entries[e.id] = e
            return e

    @staticmethod
    def _align(flags: int) -> int:
        return max(PAGE, 1 << ((flags & K.KGSL_MEMALIGN_MASK) >> K.KGSL_MEMALIGN_SHIFT))

    def _reserve_va(self, size: int, align: int) -> int:
        va = (self._next_va + align - 1) & ~(align - 1)
        if va + size > F.VA_END64:
            raise Errno(E.ENOMEM, "kgsl_mmu_get_gpuaddr: the 64-bit GPU VA window is full")
        self._next_va = va + size
        return va

    def map_user(self, hostptr: int, length: int, memtype: int, flags: int) -> MemEntry:
        """kgsl_ioctl_map_user_mem with KGSL_USER_MEM_TYPE_ADDR: the GPU sees the caller's pages at
        their CPU address (kgsl_setup_useraddr maps them into the SVM region at hostptr)."""
        if memtype != K.KGSL_USER_MEM_TYPE_ADDR:
            raise Errno(E.EOPNOTSUPP, f"kgsl_ioctl_map_user_mem: memtype {memtype} (the mock supports ADDR = "
                                      f"{K.KGSL_USER_MEM_TYPE_ADDR} only)")
        if hostptr == 0 or hostptr % PAGE or length == 0 or length % PAGE:
            raise Errno(E.EINVAL, f"kgsl_setup_useraddr: hostptr {hostptr:#x} and len {length:#x} must be page "
                                  "aligned and non-zero")
        with self.lock:
            for o in self.entries.values():
                if o.gpuaddr and o.gpuaddr < hostptr + length and hostptr < o.gpuaddr + o.footprint:
                    raise Errno(E.EFAULT, f"kgsl_setup_useraddr: [{hostptr:#x}, +{length:#x}) overlaps the GPU "
                                          f"mapping of object {o.id}")
            kept = flags & (K.KGSL_MEMFLAGS_GPUREADONLY | K.KGSL_CACHEMODE_MASK | K.KGSL_MEMTYPE_MASK)
            e = MemEntry(self._next_id, length, kept | (K.KGSL_USER_MEM_TYPE_ADDR + 1) << K.KGSL_MEMFLAGS_USERMEM_SHIFT
                         | K.KGSL_MEMFLAGS_USE_CPU_MAP, gpuaddr=hostptr, hostptr=hostptr)
            self._next_id += 1
            self.pt.map(hostptr, hostptr, length, writable=not kept & K.KGSL_MEMFLAGS_GPUREADONLY)
            self.entries[e.id] = e
            return e

    # --- lookup -----------------------------------------------------------------------------------------
    def find_id(self, id_: int) -> MemEntry | None:
        """kgsl_sharedmem_find_id (entries pending free are not found)."""
        e = self.entries.get(id_)
        return None if e is None or e.pending_free else e

    def find_addr(self, gpuaddr: int) -> MemEntry | None:
        """kgsl_sharedmem_find: the entry whose GPU range holds gpuaddr."""
        for e in self.entries.values():
            if e.gpuaddr and e.gpuaddr <= gpuaddr < e.gpuaddr + e.size and not e.pending_free:
                return e
        return None

    def in_range(self, gpuaddr: int, size: int) -> bool:
        """kgsl_mmu_gpuaddr_in_range: inside the process's user VA windows (SVM or non-SVM 64-bit)."""
        end = gpuaddr + size
        return (F.SVM_BASE64 <= gpuaddr and end <= F.VA_END64) or any(
            e.gpuaddr <= gpuaddr and end <= e.gpuaddr + e.footprint for e in self.entries.values() if e.gpuaddr)

    # --- mmap (kgsl_mmap / get_mmap_entry / kgsl_get_unmapped_area) -------------------------------------
    def mmap(self, addr: int, size: int, prot: int, fixed: bool, pgoff: int) -> int:
        with self.lock:
            e = self.find_id(pgoff) or self.find_addr(pgoff * PAGE)
            if e is None:
                raise Errno(E.EINVAL, f"get_mmap_entry: no object with id {pgoff} or GPU address {pgoff * PAGE:#x}")
            if e.is_usermem:
                raise Errno(E.EBUSY, f"get_mmap_entry: object {e.id} is user memory and cannot be remapped")
            if e.flags & K.KGSL_MEMFLAGS_SECURE:
                raise Errno(E.EPERM, f"kgsl_mmap: object {e.id} is secure")
            if e.use_cpu_map:
                if size != e.footprint:
                    raise Errno(E.ERANGE, f"get_mmap_entry: a USE_CPU_MAP object must be mapped whole: len {size:#x} "
                                          f"!= footprint {e.footprint:#x}")
                if e.gpuaddr:
                    raise Errno(E.EBUSY, f"_gpu_set_svm_region: object {e.id} is already mapped at {e.gpuaddr:#x}")
            elif size not in (e.footprint, e.size):
                raise Errno(E.ERANGE, f"get_mmap_entry: len {size:#x} is neither the footprint {e.footprint:#x} "
                                      f"nor the size {e.size:#x} of object {e.id}")
            prot &= PROT_READ | PROT_WRITE
            if e.use_cpu_map:
                # The kernel picks a range free in both the CPU and the GPU address space; ask the OS for
                # one inside the SVM window first (a hint), else take what it gives.
                got = e.block.map_at(addr, prot, 0, e.size, fixed=True) if fixed else self._map_svm(e, addr, prot)
                self._next_svm = max(self._next_svm, got + e.footprint)
                self.pt.map(got, e.block.host_addr, e.size, writable=not e.flags & K.KGSL_MEMFLAGS_GPUREADONLY)
                e.gpuaddr = got
            else:
                got = e.block.map_at(addr, prot, 0, e.size, fixed=fixed)
            e.cpu_maps.append(got)
            return got

    def _map_svm(self, e: MemEntry, addr: int, prot: int) -> int:
        """kgsl_get_unmapped_area: the first range free in both the CPU and the GPU address space inside
        the SVM window (the caller's hint first). The OS honours a hint only where the range is free."""
        align = self._align(e.flags)
        hint = addr or self._next_svm
        for _ in range(SVM_TRIES):
            hint = (hint + align - 1) & ~(align - 1)
            if hint + e.footprint > F.SVM_END64:
                break
            if not any(m.va < hint + e.footprint and hint < m.va + m.size for m in self.pt.mappings()):
                got = e.block.map_at(hint, prot, 0, e.size, fixed=False)
                if got == hint:
                    return got
                _os.munmap(got, e.size)
            hint += max(e.footprint, SVM_STEP)
        raise Errno(E.ENOMEM, f"kgsl_get_unmapped_area: no free range of {e.footprint:#x} bytes in the SVM window "
                              f"[{F.SVM_BASE64:#x}, {F.SVM_END64:#x})")

    # --- free -------------------------------------------------------------------------------------------
    def free(self, e: MemEntry) -> None:
        """gpumem_free_entry -> kgsl_mem_entry_put: unmap from the GPU and drop the backing."""
        with self.lock:
            if e.pending_free and e.id not in self.entries:
                return
            e.pending_free = True
            self.entries.pop(e.id, None)
            if e.gpuaddr:
                self.pt.unmap(e.gpuaddr, e.size)
            if e.block is not None:
                e.block.close()   # user CPU mappings keep their pages until munmap, as with a real VMA

    def release_all(self) -> None:
        for e in list(self.entries.values()):
            self.free(e)
