"""The syscall seam (Kernel), its Linux implementation, ioctl encoding and host-memory access."""
from .ioc import _IO, _IOC, _IOR, _IOW, _IOWR, decode, describe
from .kernel import Kernel
from .linux import LinuxKernel

__all__ = ["Kernel", "LinuxKernel", "_IO", "_IOC", "_IOR", "_IOW", "_IOWR", "decode", "describe"]
