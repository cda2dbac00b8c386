"""Linux ioctl request numbers: the generic `_IOC` layout (x86, arm64, riscv; not alpha/mips/ppc/sparc).

    bits 31..30 direction (NONE 0, WRITE 1 = user->kernel, READ 2 = kernel->user)
    bits 29..16 argument size in bytes (14 bits)
    bits 15..8  type ("magic", e.g. ord('F') for NVIDIA RM, ord('K') for KFD, 0x09 for kgsl)
    bits  7..0  number
"""
from __future__ import annotations

from typing import NamedTuple

from ..errors import InvalidArgument

IOC_NRBITS, IOC_TYPEBITS, IOC_SIZEBITS, IOC_DIRBITS = 8, 8, 14, 2
IOC_NRSHIFT = 0
IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS
IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS
IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS

IOC_NONE, IOC_WRITE, IOC_READ = 0, 1, 2
_DIR_NAMES = {IOC_NONE: "_IO", IOC_WRITE: "_IOW", IOC_READ: "_IOR", IOC_READ | IOC_WRITE: "_IOWR"}


class IocRequest(NamedTuple):
    """A decoded request: direction bits, type, number, argument size."""
    dir: int
    type: int
    nr: int
    size: int


def _type(t: int | str) -> int:
    if isinstance(t, str):
        if len(t) != 1:
            raise InvalidArgument(f"ioctl type must be one character or an int, got {t!r}")
        t = ord(t)
    return t


def _IOC(direction: int, type: int | str, nr: int, size: int) -> int:
    """Encode a request; every field is range-checked (a silently truncated size is an ABI bug)."""
    t = _type(type)
    for what, v, bits in (("direction", direction, IOC_DIRBITS), ("type", t, IOC_TYPEBITS),
                          ("nr", nr, IOC_NRBITS), ("size", size, IOC_SIZEBITS)):
        if not 0 <= v < (1 << bits):
            raise InvalidArgument(f"ioctl {what} {v:#x} does not fit in {bits} bits")
    return (direction << IOC_DIRSHIFT) | (t << IOC_TYPESHIFT) | (nr << IOC_NRSHIFT) | (size << IOC_SIZESHIFT)


def _IO(type: int | str, nr: int) -> int:
    """A request with no argument struct."""
    return _IOC(IOC_NONE, type, nr, 0)


def _IOR(type: int | str, nr: int, size: int) -> int:
    """The kernel writes `size` bytes to the argument (READ from the user's point of view)."""
    return _IOC(IOC_READ, type, nr, size)


def _IOW(type: int | str, nr: int, size: int) -> int:
    """The kernel reads `size` bytes from the argument."""
    return _IOC(IOC_WRITE, type, nr, size)


def _IOWR(type: int | str, nr: int, size: int) -> int:
    """The kernel reads and writes `size` bytes of the argument."""
    return _IOC(IOC_READ | IOC_WRITE, type, nr, size)


def decode(request: int) -> IocRequest:
    """Split a request into (dir, type, nr, size)."""
    if not 0 <= request < (1 << 32):
        raise InvalidArgument(f"ioctl request {request:#x} is not a 32-bit value")
    return IocRequest((request >> IOC_DIRSHIFT) & ((1 << IOC_DIRBITS) - 1),
                      (request >> IOC_TYPESHIFT) & ((1 << IOC_TYPEBITS) - 1),
                      (request >> IOC_NRSHIFT) & ((1 << IOC_NRBITS) - 1),
                      (request >> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1))


def describe(request: int) -> str:
    """Human-readable form for error messages, e.g. "0xc0104602 (_IOWR 'F' nr 0x02 size 16)"."""
    try:
        d = decode(request)
    except InvalidArgument:
        return f"{request:#x}"
    t = chr(d.type) if 0x20 < d.type < 0x7f else f"{d.type:#x}"
    t = f"'{t}'" if len(t) == 1 else t
    return f"{request:#x} ({_DIR_NAMES[d.dir]} {t} nr {d.nr:#04x} size {d.size})"
