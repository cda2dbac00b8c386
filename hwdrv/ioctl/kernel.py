"""The syscall seam: every OS access of a backend goes through one `Kernel` object.

`LinuxKernel` (hwdrv.ioctl.linux) talks to the real OS; `MockKernel` (hwdrv.mock.kernel) emulates
the GPU drivers. Arguments and results are plain integers (addresses, fds, sizes), so a backend
works unchanged on either.
"""
from __future__ import annotations

import mmap as _mmap
import os
from abc import ABC, abstractmethod
from typing import Callable

# --- constants (Linux values; taken from Python's modules where they exist) -----------------------
PROT_NONE = getattr(_mmap, "PROT_NONE", 0)
PROT_READ = _mmap.PROT_READ
PROT_WRITE = _mmap.PROT_WRITE
PROT_EXEC = _mmap.PROT_EXEC

MAP_SHARED = _mmap.MAP_SHARED
MAP_PRIVATE = _mmap.MAP_PRIVATE
MAP_FIXED = getattr(_mmap, "MAP_FIXED", 0x10)
MAP_ANONYMOUS = _mmap.MAP_ANONYMOUS
MAP_NORESERVE = getattr(_mmap, "MAP_NORESERVE", 0x4000)
MAP_POPULATE = getattr(_mmap, "MAP_POPULATE", 0x8000)
# Linux >= 4.17: like MAP_FIXED but fails with EEXIST instead of replacing an existing mapping.
# Older kernels ignore the bit and treat the address as a hint, so callers must check the result.
MAP_FIXED_NOREPLACE = getattr(_mmap, "MAP_FIXED_NOREPLACE", 0x100000)

O_RDONLY = os.O_RDONLY
O_WRONLY = os.O_WRONLY
O_RDWR = os.O_RDWR
O_CLOEXEC = os.O_CLOEXEC
O_NONBLOCK = os.O_NONBLOCK
O_SYNC = os.O_SYNC

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def page_align_up(n: int) -> int:
    """`n` rounded up to a multiple of the host page size."""
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class Kernel(ABC):
    """Abstract OS interface. All errors are `hwdrv.errors.IoctlError` subclasses naming the call."""

    is_mock: bool = False

    @abstractmethod
    def open(self, path: str, flags: int) -> int:
        """Open a device node; returns the fd. Raises SyscallError naming the path."""

    @abstractmethod
    def close(self, fd: int) -> None:
        """Close an fd returned by open()."""

    @abstractmethod
    def ioctl(self, fd: int, request: int, arg: int, name: str = "") -> int:
        """Issue an ioctl. `arg` is the address of the argument struct in this process (or a plain
        integer for value ioctls). Returns the ioctl's return value; on failure raises
        IoctlError(name or the decoded request, errno, hint)."""

    @abstractmethod
    def mmap(self, addr: int, size: int, prot: int, flags: int, fd: int, offset: int) -> int:
        """Map memory; returns the address. `offset` may use all 64 bits (AMD KFD puts a type
        in bits 63:62), it is passed to the kernel as the same bit pattern."""

    @abstractmethod
    def munmap(self, addr: int, size: int) -> None:
        """Unmap [addr, addr+size)."""

    @abstractmethod
    def read_file(self, path: str) -> bytes:
        """Contents of a (sysfs/debugfs/proc) file."""

    @abstractmethod
    def listdir(self, path: str) -> list[str]:
        """Names in a directory, sorted."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Whether a file, directory or device node exists."""

    @abstractmethod
    def mmio_write32(self, addr: int, value: int) -> None:
        """Store fence, then one 32-bit store to `addr` (doorbells, MMIO registers)."""

    def doorbell32(self, addr: int, value: int) -> Callable[[], None]:
        """A call that does ``mmio_write32(addr, value)``, prepared once (a queue's doorbell is
        one fixed store, rung on every submission). This default looks ``mmio_write32`` up at
        each call, so a kernel that intercepts MMIO stores (the mock's) sees every ring."""
        return lambda: self.mmio_write32(addr, value)

    @abstractmethod
    def mmio_write64(self, addr: int, value: int) -> None:
        """Store fence, then one 64-bit store to `addr`."""

    @abstractmethod
    def read_kmsg(self) -> list[str]:
        """Every record now in the kernel log (``/dev/kmsg`` format: ``prio,seq,usec,flags;text``),
        read without blocking. Raises SyscallError (with the errno) where the log is unreadable,
        e.g. EPERM under ``kernel.dmesg_restrict`` for an unprivileged user."""
