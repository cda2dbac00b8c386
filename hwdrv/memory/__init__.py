"""GPU virtual address ranges, the reserved host VA pool, and Buffer lifetime."""
from .allocator import Range, VARangeAllocator
from .buffer import Buffer, BufferOwner
from .vapool import VAPool

__all__ = ["Buffer", "BufferOwner", "Range", "VAPool", "VARangeAllocator"]
