"""The DRM render node /dev/dri/renderD<minor>: the fd ACQUIRE_VM binds, and the mmap target of
VRAM/GTT buffer objects (drm_gem_mmap: the offset must name an object, the length fit in it)."""
from __future__ import annotations

import errno as E

from hwdrv.amd.gen import kfd as K
from hwdrv.ioctl.kernel import MAP_FIXED
from hwdrv.mock.kernel import Errno, MockDriver

from .gpu import MockAmdGpu

DRM_FILE_PAGE_OFFSET_START = 1 << 32     # DRM fake offsets start past 4 GiB ((0xFFFFFFFF >> PAGE_SHIFT) + 1 pages)


class RenderFile:
    """Per-open state of the render node."""

    def __init__(self, gpu: MockAmdGpu):
        self.gpu = gpu
        self.closed = False


class RenderDriver(MockDriver):
    name = "amdgpu-render"

    def __init__(self, gpu: MockAmdGpu):
        self.gpu = gpu
        self.objects: dict[int, object] = {}        # drm mmap offset -> Bo
        self._next_offset = DRM_FILE_PAGE_OFFSET_START

    def open(self, path: str, flags: int) -> RenderFile:
        return RenderFile(self.gpu)

    def close(self, state: RenderFile) -> None:
        state.closed = True

    def new_offset(self, bo, size: int) -> int:
        off = self._next_offset
        self._next_offset += (size + 4095) // 4096 * 4096
        self.objects[off] = bo
        return off

    def drop(self, offset: int) -> None:
        self.objects.pop(offset, None)

    def mmap(self, state: RenderFile, addr: int, size: int, prot: int, flags: int, offset: int) -> int:
        bo = self.objects.get(offset)
        if bo is None:
            raise Errno(E.EINVAL, f"no buffer object at DRM mmap offset {offset:#x} (use the mmap_offset "
                                  "ALLOC_MEMORY_OF_GPU returned)")
        if size > bo.size:
            raise Errno(E.EINVAL, f"mmap length {size:#x} exceeds the {bo.size:#x}-byte buffer object")
        if bo.domain == "VRAM" and not bo.flags & K.KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC:
            # KFD creates VRAM without PUBLIC as AMDGPU_GEM_CREATE_NO_CPU_ACCESS; amdgpu_gem_object_mmap refuses it
            raise Errno(E.EPERM, "CPU mmap of VRAM allocated without KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC")
        return bo.block.map_at(addr, prot, 0, (size + 4095) // 4096 * 4096, fixed=bool(flags & MAP_FIXED))
