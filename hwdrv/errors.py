"""The error hierarchy. Every failure hwdrv reports is a subclass of :class:`HwdrvError` whose
message says what failed, with which values, and what to do about it."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .hang import HangReport


class HwdrvError(Exception):
    """Base class of every error hwdrv raises."""


class DeviceNotFound(HwdrvError):
    """The device named does not exist or cannot be opened."""


class UnsupportedDevice(HwdrvError):
    """The device's kind or architecture is one this feature does not support (yet)."""


class UnsupportedDriver(HwdrvError):
    """The kernel driver's version or ABI is one hwdrv has no bindings for."""


class IoctlError(HwdrvError):
    """An ioctl failed: carries the ioctl's name, the errno (and its name) and a hint."""

    def __init__(self, name: str, errno: int, hint: str = "", status: int | None = None,
                 status_name: str | None = None):
        import errno as _errno
        import os
        self.name, self.errno, self.hint = name, errno, hint
        self.status, self.status_name = status, status_name
        ename = _errno.errorcode.get(errno, f"errno {errno}") if errno else "no errno"
        msg = f"{name} failed: {ename}"
        if errno:
            msg += f" ({os.strerror(errno)})"
        if status is not None:
            msg += f", driver status {status_name or '?'} (0x{status:x})"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)


class DriverStatusError(IoctlError):
    """The ioctl itself succeeded but the driver's status field reports a failure (NV_STATUS)."""


class OutOfMemory(HwdrvError):
    """A memory or address-space allocation could not be satisfied."""


class InvalidArgument(HwdrvError, ValueError):
    """A caller passed a value that cannot work (wrong type, size, alignment, range)."""


class ProgramError(HwdrvError):
    """A GPU binary or source could not be compiled, parsed or launched as given."""


class BufferFreed(HwdrvError):
    """A buffer was used after it was freed (or after its device closed)."""


class DeviceClosed(HwdrvError):
    """The device was used after close()."""


class QueueBusy(HwdrvError):
    """A bound queue was patched or resubmitted while its previous run had not finished."""


class GPUHang(HwdrvError):
    """A wait did not complete in time, or the GPU reported a fault. ``report`` holds the
    :class:`~hwdrv.hang.HangReport` with the hardware state gathered at that moment."""

    def __init__(self, message: str, report: "HangReport | None" = None):
        self.report = report
        super().__init__(message if report is None else f"{message}\n{report.summary()}")


class MockFault(HwdrvError):
    """Raised inside the mock GPU when emulated hardware hits an error it must report
    (a page fault, an illegal instruction, an unknown method)."""


class SyscallError(IoctlError):
    """A system call other than ioctl failed (open, close, mmap, munmap, mprotect, reading a sysfs
    file). ``name`` says which call on what, e.g. ``open('/dev/nvidiactl')``."""


class EngineError(MockFault):
    """A mock GPU engine's work function raised: the original exception is ``__cause__`` and
    ``engine`` names the engine. Raised from kick()/check()/stop() so it is never lost."""

    def __init__(self, engine: str, error: BaseException, tb_text: str = ""):
        self.engine, self.error, self.tb_text = engine, error, tb_text
        msg = f"mock engine {engine!r} failed: {type(error).__name__}: {error}"
        if tb_text:
            msg += f"\n--- engine traceback ---\n{tb_text.rstrip()}"
        super().__init__(msg)
