"""What a failing errno usually means for a GPU driver call, and the IoctlError built from it."""
from __future__ import annotations

import errno as E

from ..errors import IoctlError, SyscallError
from .ioc import describe

# {path} is replaced by the device path when it is known. Hints say what to check, briefly.
_HINTS: dict[int, str] = {
    E.EACCES: "permission denied on {path}: check its mode/group (ls -l {path}); add your user to that "
              "group (often 'video' or 'render') or fix the udev rule",
    E.EPERM: "operation not permitted: it needs a capability or root, or the driver forbids it for this "
             "object (e.g. a secure or imported buffer)",
    E.ENOENT: "{path} does not exist: is the kernel driver loaded (lsmod) and the device node created?",
    E.ENXIO: "no such device behind {path}: the GPU is absent, off or not bound to this driver",
    E.ENODEV: "the device is gone or does not support this operation (for mmap: wrong fd or offset)",
    E.ENOTTY: "the driver does not know this request: wrong device node for it, or a driver version "
              "without this ioctl",
    E.EINVAL: "the driver rejected the argument: usually a struct size/ABI mismatch between hwdrv's "
              "bindings and the running driver version, or a field value it does not accept",
    E.EFAULT: "the driver could not access the argument: the arg address, or a pointer inside the "
              "struct, is not valid memory of this process",
    E.ENOMEM: "out of memory (device or host): free buffers, use smaller allocations, or check "
              "ulimit -l / locked-memory limits",
    E.ENOSPC: "the driver ran out of a fixed resource (queues, doorbells, handles, address space)",
    E.EBUSY: "busy: another process holds the device or the object is still in use (mapped, "
             "referenced by a queue); release it first",
    E.EEXIST: "already exists: for mmap with MAP_FIXED_NOREPLACE the address range is already mapped",
    E.EBADF: "bad file descriptor: the fd was closed already or was not opened through this Kernel",
    E.EAGAIN: "temporarily unavailable: retry, or the resource limit was reached",
    E.EINTR: "interrupted by a signal",
    E.EIO: "the device reported an I/O error: check dmesg for driver messages (Xid, GPU reset)",
    E.ETIMEDOUT: "the driver timed out waiting for the device: it may be hung, check dmesg",
    E.EOPNOTSUPP: "the driver does not support this operation on this device or version",
    E.E2BIG: "an argument is too large (count or size above the driver's limit)",
    E.ERANGE: "a size or offset is out of the accepted range (e.g. an mmap length that must equal "
              "the object's size exactly)",
    E.EOVERFLOW: "a value overflows the driver's field (size or offset too large)",
}


def hint_for(errno: int, path: str | None = None) -> str:
    """A short hint for `errno`, naming `path` where that helps; "" if none is known."""
    h = _HINTS.get(errno, "")
    return h.replace("{path}", path or "the device node")


def ioctl_error(request: int, errno: int, name: str = "", path: str | None = None,
                extra: str = "") -> IoctlError:
    """The IoctlError for a failed ioctl: named by `name` (else the decoded request) and the fd's path."""
    what = name or f"ioctl {describe(request)}"
    if path:
        what += f" on {path}"
    hint = hint_for(errno, path)
    if extra:
        hint = f"{hint}. {extra}" if hint else extra
    return IoctlError(what, errno, hint)


def syscall_error(call: str, errno: int, path: str | None = None, extra: str = "") -> SyscallError:
    """The SyscallError for a failed non-ioctl call, e.g. call="mmap(addr=0x..., size=...)"."""
    hint = hint_for(errno, path)
    if extra:
        hint = f"{hint}. {extra}" if hint else extra
    return SyscallError(call, errno, hint)
