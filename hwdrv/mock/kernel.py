"""MockKernel: the `Kernel` seam served by mock drivers instead of the OS.

* Device paths route to registered `MockDriver`s (exact path, or a prefix registered with a
  trailing "*"); each open gets a small-int fd (from 10000 up, never a real fd) mapped to the
  driver's per-open state object.
* ioctl hands the driver the caller's argument address; the driver reads and writes the caller's
  struct in place through hwdrv.ioctl.hostmem, and signals failure by raising `Errno`, which
  becomes the same IoctlError a real driver's errno would give.
* mmap on a mock fd goes to the driver, which must put real memory at the requested address
  (typically `PhysBlock.map_at`); anonymous mmaps and munmap go to the real OS.
* sysfs/debugfs: an in-memory file tree (`add_file`), served by read_file/listdir/exists.
* mmio_write32/64 really store the value, then call the handler of a registered MMIO range
  (doorbells), which typically kicks an Engine.
* The kernel log (`kmsg`, a `KernelLog`): mock drivers print to it, `read_kmsg` serves it in
  /dev/kmsg record format; set `kmsg.errno` to make it unreadable the way a real one can be.
"""
from __future__ import annotations

import collections
import errno as E
import posixpath
import threading
import time
from bisect import bisect_right
from typing import Any, Callable

from ..errors import InvalidArgument
from ..ioctl import hostmem
from ..ioctl.errnos import ioctl_error, syscall_error
from ..ioctl.ioc import decode
from ..ioctl.kernel import MAP_ANONYMOUS, Kernel
from ..ioctl.linux import LinuxKernel

FD_BASE = 10000


class Errno(Exception):
    """Raised by a mock driver to fail a call with `errno`; `detail` (mock-only) is appended to the
    hint, to say which rule was broken."""

    def __init__(self, errno: int, detail: str = ""):
        self.errno, self.detail = errno, detail
        super().__init__(f"{E.errorcode.get(errno, errno)}: {detail}")


class MockDriver:
    """Base class of a mock kernel driver. Override what the driver supports; everything else
    answers like a real driver that lacks the operation (ENOTTY for ioctl, ENODEV for mmap)."""

    name = "mock"

    def open(self, path: str, flags: int) -> Any:
        """Return the per-open state object for a new fd (raise Errno to refuse)."""
        return object()

    def close(self, state: Any) -> None:
        """The fd was closed: release what this open held (like the driver's release hook)."""

    def ioctl(self, state: Any, request: int, arg: int) -> int:
        """Serve an ioctl on an fd of this driver; `arg` is the caller's argument address."""
        raise Errno(E.ENOTTY, f"{self.name} has no ioctl {request:#x}")

    def mmap(self, state: Any, addr: int, size: int, prot: int, flags: int, offset: int) -> int:
        """Map driver memory for the caller at `addr` (honouring MAP_FIXED) and return the address."""
        raise Errno(E.ENODEV, f"{self.name} does not support mmap")

    def munmap(self, addr: int, size: int) -> None:
        """Notification that [addr, addr+size) was unmapped (after the real munmap)."""

    def exists(self, path: str) -> bool:
        """For prefix registrations: whether `path` names a device of this driver."""
        return path in self.device_paths()

    def device_paths(self) -> list[str]:
        """For prefix registrations: the device nodes that exist (listed by listdir)."""
        return []

    # helpers for subclasses
    @staticmethod
    def arg_size(request: int) -> int:
        """The argument size encoded in the request number."""
        return decode(request).size

    @staticmethod
    def read_arg(arg: int, size: int) -> bytes:
        if not arg:
            raise Errno(E.EFAULT, "NULL argument pointer")
        return hostmem.read(arg, size)

    @staticmethod
    def write_arg(arg: int, data: bytes) -> None:
        if not arg:
            raise Errno(E.EFAULT, "NULL argument pointer")
        hostmem.write(arg, data)


class KernelLog:
    """The mock's printk ring: records numbered from 0 like /dev/kmsg's, timestamped in µs of the
    monotonic clock, the oldest dropped past ``capacity`` (as the real ring overwrites)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._records: collections.deque[str] = collections.deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()
        #: an errno to fail reads with (a real log can be unreadable: EPERM under dmesg_restrict)
        self.errno: int | None = None

    def printk(self, text: str, level: int = 3) -> None:
        """Append one record per line of ``text`` at syslog ``level`` (3 = KERN_ERR, as NVRM's
        Xid lines)."""
        with self._lock:
            for line in text.splitlines() or [""]:
                usec = time.monotonic_ns() // 1000
                self._records.append(f"{level},{self._seq},{usec},-;{line}\n")
                self._seq += 1

    def records(self) -> list[str]:
        with self._lock:
            return list(self._records)


class _OpenFile:
    __slots__ = ("fd", "path", "flags", "driver", "state")

    def __init__(self, fd: int, path: str, flags: int, driver: MockDriver, state: Any):
        self.fd, self.path, self.flags, self.driver, self.state = fd, path, flags, driver, state


FileContent = bytes | str | Callable[[], bytes | str]


class MockKernel(Kernel):
    """A Kernel whose devices, sysfs files and doorbells are mock drivers'. See the module doc."""

    is_mock = True

    def __init__(self) -> None:
        self.os = LinuxKernel()                   # real OS, for anonymous memory
        self._lock = threading.RLock()
        self._exact: dict[str, MockDriver] = {}
        self._prefixes: list[tuple[str, MockDriver]] = []
        self._fds: dict[int, _OpenFile] = {}
        self._next_fd = FD_BASE
        self._files: dict[str, FileContent] = {}
        self._dirs: set[str] = {"/"}
        self._mmio_starts: list[int] = []
        self._mmio: dict[int, tuple[int, Callable[[int, int, int], None]]] = {}
        self.kmsg = KernelLog()

    # --- drivers and fds --------------------------------------------------------------------------------
    def register_driver(self, path_or_prefix: str, driver: MockDriver) -> None:
        """Route `path` (or every path starting with `prefix*`) to `driver`."""
        with self._lock:
            if path_or_prefix.endswith("*"):
                self._prefixes.append((path_or_prefix[:-1], driver))
                self._add_dir(posixpath.dirname(path_or_prefix))
                self._prefixes.sort(key=lambda p: -len(p[0]))   # longest prefix wins
            else:
                if path_or_prefix in self._exact:
                    raise InvalidArgument(f"a mock driver is already registered at {path_or_prefix}")
                self._exact[path_or_prefix] = driver
                self._add_dir(posixpath.dirname(path_or_prefix))

    def _route(self, path: str) -> MockDriver | None:
        d = self._exact.get(path)
        if d is not None:
            return d
        for prefix, drv in self._prefixes:
            if path.startswith(prefix) and drv.exists(path):
                return drv
        return None

    def open(self, path: str, flags: int) -> int:
        drv = self._route(path)
        if drv is None:
            raise syscall_error(f"open({path!r})", E.ENOENT, path, "mock kernel: no mock driver serves this path")
        try:
            state = drv.open(path, flags)
        except Errno as e:
            raise syscall_error(f"open({path!r})", e.errno, path, f"mock {drv.name}: {e.detail}" if e.detail else "")
        with self._lock:
            fd = self._next_fd
            self._next_fd += 1
            self._fds[fd] = _OpenFile(fd, path, flags, drv, state)
        return fd

    def close(self, fd: int) -> None:
        with self._lock:
            f = self._fds.pop(fd, None)
        if f is None:
            raise syscall_error(f"close({fd})", E.EBADF)
        f.driver.close(f.state)

    def _file(self, fd: int) -> _OpenFile | None:
        return self._fds.get(fd)

    def state_of(self, fd: int) -> Any:
        """The driver's per-open state of `fd` (tests and mock GPUs use it)."""
        f = self._fds.get(fd)
        if f is None:
            raise syscall_error(f"state_of({fd})", E.EBADF)
        return f.state

    def open_fds(self) -> dict[int, str]:
        """fd -> path of every open mock fd (leak checks)."""
        with self._lock:
            return {fd: f.path for fd, f in self._fds.items()}

    def ioctl(self, fd: int, request: int, arg: int, name: str = "") -> int:
        f = self._fds.get(fd)
        if f is None:
            raise ioctl_error(request, E.EBADF, name, None, f"mock kernel: fd {fd} is not open")
        try:
            ret = f.driver.ioctl(f.state, request, arg)
        except Errno as e:
            raise ioctl_error(request, e.errno, name, f.path,
                              f"mock {f.driver.name}: {e.detail}" if e.detail else "") from None
        return 0 if ret is None else int(ret)

    # --- memory -----------------------------------------------------------------------------------------
    def mmap(self, addr: int, size: int, prot: int, flags: int, fd: int, offset: int) -> int:
        if flags & MAP_ANONYMOUS or fd == -1:
            return self.os.mmap(addr, size, prot, flags, fd, offset)
        f = self._fds.get(fd)
        if f is None:
            raise syscall_error(f"mmap(addr={addr:#x}, size={size:#x}, fd={fd})", E.EBADF,
                                extra="mock kernel: fd is not an open mock fd")
        call = f"mmap(addr={addr:#x}, size={size:#x}, prot={prot:#x}, flags={flags:#x}, fd={fd} {f.path}, " \
               f"offset={offset:#x})"
        if size <= 0:
            raise syscall_error(call, E.EINVAL, f.path)
        try:
            got = f.driver.mmap(f.state, addr, size, prot, flags, offset)
        except Errno as e:
            raise syscall_error(call, e.errno, f.path, f"mock {f.driver.name}: {e.detail}" if e.detail else "") \
                from None
        if not isinstance(got, int) or got <= 0:
            raise InvalidArgument(f"mock driver {f.driver.name} mmap returned {got!r}, not an address")
        return got

    def munmap(self, addr: int, size: int) -> None:
        self.os.munmap(addr, size)
        with self._lock:
            drivers = {id(d): d for d in list(self._exact.values()) + [d for _, d in self._prefixes]}
        for d in drivers.values():
            d.munmap(addr, size)

    # --- MMIO / doorbells -------------------------------------------------------------------------------
    def register_mmio(self, addr: int, size: int, handler: Callable[[int, int, int], None]) -> None:
        """Call handler(addr, value, width_bytes) after every mmio_write32/64 into [addr, addr+size)."""
        with self._lock:
            i = bisect_right(self._mmio_starts, addr)
            for s in self._mmio_starts[max(i - 1, 0):i + 1]:
                if s < addr + size and addr < s + self._mmio[s][0]:
                    raise InvalidArgument(f"MMIO range [{addr:#x}, {addr + size:#x}) overlaps one at {s:#x}")
            self._mmio_starts.insert(i, addr)
            self._mmio[addr] = (size, handler)

    def unregister_mmio(self, addr: int) -> None:
        with self._lock:
            if addr not in self._mmio:
                raise InvalidArgument(f"no MMIO range registered at {addr:#x}")
            del self._mmio[addr]
            self._mmio_starts.remove(addr)

    def _mmio_handler(self, addr: int):
        starts = self._mmio_starts
        i = bisect_right(starts, addr) - 1
        if i >= 0:
            s = starts[i]
            ent = self._mmio.get(s)
            if ent is not None and addr < s + ent[0]:
                return ent[1]
        return None

    def mmio_write32(self, addr: int, value: int) -> None:
        hostmem.mmio_write32(addr, value)
        h = self._mmio_handler(addr)
        if h is not None:
            h(addr, value, 4)

    def mmio_write64(self, addr: int, value: int) -> None:
        hostmem.mmio_write64(addr, value)
        h = self._mmio_handler(addr)
        if h is not None:
            h(addr, value, 8)

    # --- sysfs / debugfs --------------------------------------------------------------------------------
    def _add_dir(self, d: str) -> None:
        while d and d not in self._dirs:
            self._dirs.add(d)
            d = posixpath.dirname(d)

    def add_file(self, path: str, content: FileContent) -> None:
        """Serve `content` at `path` (bytes, str, or a callable producing either on every read)."""
        if not path.startswith("/") or path.endswith("/"):
            raise InvalidArgument(f"mock file path must be absolute and name a file: {path!r}")
        with self._lock:
            if path in self._dirs:
                raise InvalidArgument(f"{path} is already a directory in the mock file tree")
            self._files[path] = content
            self._add_dir(posixpath.dirname(path))

    def remove_file(self, path: str) -> None:
        with self._lock:
            if self._files.pop(path, None) is None:
                raise InvalidArgument(f"no mock file at {path}")

    def read_file(self, path: str) -> bytes:
        path = posixpath.normpath(path)
        c = self._files.get(path)
        if c is None:
            err = E.EISDIR if path in self._dirs else E.ENOENT
            raise syscall_error(f"read({path!r})", err, path, "mock kernel: no such mock file")
        if callable(c):
            c = c()
        return c.encode() if isinstance(c, str) else bytes(c)

    def listdir(self, path: str) -> list[str]:
        path = posixpath.normpath(path)
        with self._lock:
            if path not in self._dirs:
                err = E.ENOTDIR if path in self._files else E.ENOENT
                raise syscall_error(f"listdir({path!r})", err, path, "mock kernel: no such mock directory")
            paths = list(self._files) + list(self._dirs) + list(self._exact)
            for _, d in self._prefixes:
                paths += d.device_paths()
        return sorted({posixpath.basename(p) for p in paths if p != path and posixpath.dirname(p) == path})

    def exists(self, path: str) -> bool:
        path = posixpath.normpath(path)
        return path in self._files or path in self._dirs or self._route(path) is not None

    # --- kernel log -------------------------------------------------------------------------------------
    def read_kmsg(self) -> list[str]:
        if self.kmsg.errno is not None:
            raise syscall_error("open('/dev/kmsg')", self.kmsg.errno, "/dev/kmsg",
                                "mock kernel: the kernel log is set unreadable")
        return self.kmsg.records()

