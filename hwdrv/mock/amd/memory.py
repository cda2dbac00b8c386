"""Buffer objects of a KFD process (kfd_ioctl_alloc_memory_of_gpu and friends)."""
from __future__ import annotations

from dataclasses import dataclass, field

from hwdrv.amd.gen import kfd as K
from hwdrv.mock.physmem import PhysBlock

DOMAINS = (("VRAM", K.KFD_IOC_ALLOC_MEM_FLAGS_VRAM), ("GTT", K.KFD_IOC_ALLOC_MEM_FLAGS_GTT),
           ("USERPTR", K.KFD_IOC_ALLOC_MEM_FLAGS_USERPTR), ("DOORBELL", K.KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL),
           ("MMIO_REMAP", K.KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP))


def domain_of(flags: int) -> str | None:
    """The memory type a flags word selects, in amdgpu_amdkfd_gpuvm_alloc_memory_of_gpu's order."""
    for name, bit in DOMAINS:
        if flags & bit:
            return name
    return None


@dataclass
class Bo:
    """One allocation: its handle, GPU VA range, backing (a PhysBlock, or user memory for USERPTR,
    or the process doorbell / MMIO page), DRM mmap offset, and where it is mapped."""
    handle: int
    va: int
    size: int
    flags: int
    domain: str
    host_addr: int                      # mock-private CPU address of the backing
    block: PhysBlock | None = None      # owned backing (VRAM/GTT); None for USERPTR/DOORBELL/MMIO
    mmap_offset: int = 0
    mapped_on: set[int] = field(default_factory=set)   # gpu_ids it is mapped on
    queue_refs: int = 0                 # live queues using it (kfd_queue_buffer_get's queue_refcount)

    @property
    def writable(self) -> bool:
        return bool(self.flags & K.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE)

    def contains(self, va: int) -> bool:
        return self.va <= va < self.va + self.size
