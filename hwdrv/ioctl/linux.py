"""LinuxKernel: the real OS through libc, called with cffi in ABI mode.

Not `fcntl.ioctl`: it copies the argument through a 1024-byte buffer, and NVIDIA RM structs are
larger; here the struct's own address goes to the kernel, so the driver reads and writes it in place.
"""
from __future__ import annotations

import errno as E
import os
import threading
from typing import Callable

from ..errors import InvalidArgument
from . import hostmem
from ._libc import MAP_FAILED, addr_of, ffi, lib, ptr
from .errnos import ioctl_error, syscall_error
from .kernel import Kernel


def _off_t(offset: int) -> int:
    # Offsets with bit 63 set (AMD KFD mmap types) travel as the same bits in a signed off_t.
    if not 0 <= offset < 1 << 64:
        raise InvalidArgument(f"mmap offset {offset:#x} is not a 64-bit value")
    return offset - (1 << 64) if offset >= 1 << 63 else offset


class LinuxKernel(Kernel):
    """The real kernel. Remembers which path each fd it opened belongs to, for error messages."""

    is_mock = False

    def __init__(self) -> None:
        self._paths: dict[int, str] = {}
        self._lock = threading.Lock()

    def path_of(self, fd: int) -> str | None:
        """The path this Kernel opened `fd` from, if it did."""
        return self._paths.get(fd)

    def open(self, path: str, flags: int) -> int:
        fd = lib.open(path.encode(), ffi.cast("int", flags), ffi.cast("unsigned int", 0))
        if fd < 0:
            raise syscall_error(f"open({path!r})", ffi.errno, path)
        with self._lock:
            self._paths[fd] = path
        return fd

    def close(self, fd: int) -> None:
        with self._lock:
            path = self._paths.pop(fd, None)
        if lib.close(fd) != 0:
            raise syscall_error(f"close({fd})", ffi.errno, path)

    def ioctl(self, fd: int, request: int, arg: int, name: str = "") -> int:
        if not 0 <= arg < 1 << 64:
            raise InvalidArgument(f"ioctl arg {arg!r} is not an address or unsigned 64-bit value")
        a = ptr(arg)
        while True:
            ret = lib.ioctl(fd, request, a)
            if ret != -1:
                return ret
            err = ffi.errno
            if err != E.EINTR:  # restart on a signal, as Python does for its own syscalls (PEP 475)
                raise ioctl_error(request, err, name, self._paths.get(fd))

    def mmap(self, addr: int, size: int, prot: int, flags: int, fd: int, offset: int) -> int:
        if size <= 0:
            raise InvalidArgument(f"mmap size must be positive, got {size}")
        p = lib.mmap(ptr(addr or 0), size, prot, flags, fd, _off_t(offset))
        res = addr_of(p)
        if res == MAP_FAILED:
            path = self._paths.get(fd)
            raise syscall_error(f"mmap(addr={addr:#x}, size={size:#x}, prot={prot:#x}, flags={flags:#x}, "
                                f"fd={fd}{' ' + path if path else ''}, offset={offset:#x})", ffi.errno, path)
        return res

    def munmap(self, addr: int, size: int) -> None:
        if lib.munmap(ptr(addr), size) != 0:
            raise syscall_error(f"munmap(addr={addr:#x}, size={size:#x})", ffi.errno)

    def mprotect(self, addr: int, size: int, prot: int) -> None:
        """Change protection of [addr, addr+size) (not part of the Kernel seam; host-only helper)."""
        if lib.mprotect(ptr(addr), size, prot) != 0:
            raise syscall_error(f"mprotect(addr={addr:#x}, size={size:#x}, prot={prot:#x})", ffi.errno)

    def read_file(self, path: str) -> bytes:
        try:
            with open(path, "rb", buffering=0) as f:
                return f.read()
        except OSError as e:
            raise syscall_error(f"read({path!r})", e.errno or E.EIO, path) from e

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError as e:
            raise syscall_error(f"listdir({path!r})", e.errno or E.EIO, path) from e

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def mmio_write32(self, addr: int, value: int) -> None:
        hostmem.mmio_write32(addr, value)

    def doorbell32(self, addr: int, value: int) -> Callable[[], None]:
        return hostmem.fenced_store32(addr, value)

    def mmio_write64(self, addr: int, value: int) -> None:
        hostmem.mmio_write64(addr, value)

    def read_kmsg(self) -> list[str]:
        path = "/dev/kmsg"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise syscall_error(f"open({path!r})", e.errno or E.EIO, path) from e
        out: list[str] = []
        try:
            while True:
                try:
                    rec = os.read(fd, 8192)        # one record per read (printk's limit is < 8 KiB)
                except BlockingIOError:
                    break                          # EAGAIN: no more records
                except BrokenPipeError:
                    continue                       # EPIPE: older records were overwritten; go on
                except OSError as e:
                    raise syscall_error(f"read({path!r})", e.errno or E.EIO, path) from e
                if not rec:
                    break
                out.append(rec.decode(errors="replace"))
        finally:
            os.close(fd)
        return out

