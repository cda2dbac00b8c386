"""hwdrv: drive GPUs from Python through the kernel drivers' own interfaces.

    import hwdrv
    dev = hwdrv.open_device("nvidia:0")      # or "mock:nvidia"
    buf = dev.alloc(1 << 20)
    q = dev.compute_queue().exec(prog, grid=(4,), block=(256,), args=[buf, 1024]).signal(sig, 1)
    q.submit(); sig.wait(1)
"""
from .errors import (BufferFreed, DeviceClosed, DeviceNotFound, DriverStatusError, GPUHang,
                     HwdrvError, InvalidArgument, IoctlError, MockFault, OutOfMemory, ProgramError,
                     QueueBusy, UnsupportedDevice, UnsupportedDriver)
from .hang import HangReport
from .registry import DeviceInfo, devices, open_device
from .var import Var

__all__ = ["open_device", "devices", "DeviceInfo", "Var", "HangReport", "HwdrvError", "IoctlError",
           "DriverStatusError", "GPUHang", "ProgramError", "InvalidArgument", "OutOfMemory",
           "DeviceNotFound", "UnsupportedDevice", "UnsupportedDriver", "BufferFreed", "DeviceClosed", "QueueBusy",
           "MockFault"]
__version__ = "0.1.0"
