"""What backs an RM memory object on the mock: a PhysBlock (video memory, RM-owned system memory,
the usermode page) or the caller's own pages (an OS-descriptor allocation pins them in place).

The mock GPU reaches an object's bytes through `host_addr` (its private view of the block, or the
caller's address for pinned memory); the CPU reaches them wherever mmap put them. Both are the
same pages, so nothing is ever copied between "CPU" and "GPU" copies.
"""
from __future__ import annotations

from hwdrv.errors import InvalidArgument
from hwdrv.ioctl import hostmem
from hwdrv.mock.physmem import PhysBlock, PhysPool

KINDS = ("vidmem", "sysmem", "os", "usermode")


class MemBacking:
    """The bytes behind one RM memory object. `kind`: vidmem | sysmem | os | usermode."""

    def __init__(self, kind: str, size: int, *, pool: PhysPool | None = None, host_addr: int = 0,
                 name: str = "") -> None:
        if kind not in KINDS:
            raise InvalidArgument(f"unknown mock memory kind {kind!r}")
        self.kind, self.size = kind, size
        self._pool = pool
        self.block: PhysBlock | None = None
        if kind == "os":
            # pinned caller memory: the GPU sees the caller's own pages at their own address
            self.host_addr = host_addr
        else:
            self.block = pool.alloc(size, name or f"hwdrv-mock-nv-{kind}") if pool else PhysBlock(size, name)
            self.host_addr = self.block.host_addr

    @property
    def cpu_mappable(self) -> bool:
        return self.block is not None

    def map_cpu(self, addr: int, size: int, prot: int, fixed: bool, offset: int = 0,
                noreplace: bool = False) -> int:
        """Map [offset, offset+size) of the object at `addr` for the caller (shared pages);
        ``noreplace``: MAP_FIXED_NOREPLACE (fails where something is mapped already)."""
        if self.block is None:
            raise InvalidArgument("pinned OS memory is already the caller's; it is not mmap-able again")
        return self.block.map_at(addr, prot, offset, size, fixed=fixed, noreplace=noreplace)

    def read(self, offset: int, n: int) -> bytes:
        self._bounds(offset, n)
        return hostmem.read(self.host_addr + offset, n)

    def write(self, offset: int, data: bytes) -> None:
        self._bounds(offset, len(data))
        hostmem.write(self.host_addr + offset, data)

    def _bounds(self, offset: int, n: int) -> None:
        if offset < 0 or offset + n > self.size:
            raise InvalidArgument(f"access [{offset:#x}, {offset + n:#x}) outside the {self.size:#x}-byte "
                                  f"{self.kind} object")

    def release(self) -> None:
        """Give the pages back (mappings the caller made stay valid until unmapped, like RM's
        deferred free of mapped memory)."""
        if self.block is not None and not self.block.closed:
            if self._pool is not None:
                self._pool.free(self.block)
            else:
                self.block.close()
