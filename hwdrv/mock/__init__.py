"""Mock kernel + mock GPUs: a `Kernel` that emulates the GPU kernel drivers, for CI without a GPU.

Top-level modules are the vendor-neutral framework (kernel, physmem, gpumem, engine); vendor
drivers and GPUs live in subpackages.
"""
from .engine import Engine, Work
from .gpumem import GpuPageTable, Mapping, MemoryFault
from .kernel import Errno, MockDriver, MockKernel
from .physmem import PhysBlock, PhysPool

__all__ = ["Engine", "Errno", "GpuPageTable", "Mapping", "MemoryFault", "MockDriver", "MockKernel",
           "PhysBlock", "PhysPool", "Work"]
