"""Raw access to this process's memory by address: bytes, zero-copy numpy views, CPU fences, MMIO stores.

Used by backends to fill ioctl argument structs in place and to ring doorbells, and by the mock to
read the caller's structs. Addresses are plain ints; nothing here checks that memory is mapped, so a
wrong address crashes the process exactly like C would.

Fences: cffi ABI mode has no inline assembly, so the first fence maps one tiny executable page
holding `sfence; ret` / `mfence; ret` (x86-64) or `dmb ishst; ret` / `dmb ish; ret` (aarch64) and
calls it through a function pointer.
"""
from __future__ import annotations

import platform
import threading
from typing import Callable

import numpy as np

from ..errors import HwdrvError, InvalidArgument
from ._libc import MAP_FAILED, addr_of as _addr_of, ffi, lib, ptr
from .errnos import syscall_error
from .kernel import MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE


def _check(addr: int, n: int) -> None:
    if not isinstance(addr, int) or addr <= 0 or addr >= 1 << 64:
        raise InvalidArgument(f"host address {addr!r} is not a valid non-null 64-bit address")
    if n < 0:
        raise InvalidArgument(f"negative length {n}")


def read(addr: int, n: int) -> bytes:
    """Copy `n` bytes at `addr` into a bytes object."""
    _check(addr, n)
    return ffi.buffer(ffi.cast("char *", addr), n)[:]


def write(addr: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
    """Copy `data` to `addr`."""
    mv = memoryview(data).cast("B") if not isinstance(data, np.ndarray) else \
        memoryview(np.ascontiguousarray(data)).cast("B")
    _check(addr, len(mv))
    ffi.memmove(ptr(addr), mv, len(mv))


def view(addr: int, n: int, dtype=np.uint8) -> np.ndarray:
    """A writable zero-copy numpy array over `n` bytes at `addr` (n must be a multiple of the item size)."""
    _check(addr, n)
    dt = np.dtype(dtype)
    if n % dt.itemsize:
        raise InvalidArgument(f"view of {n} bytes is not a whole number of {dt} items ({dt.itemsize} bytes)")
    if n == 0:
        return np.zeros(0, dt)
    return np.frombuffer(ffi.buffer(ffi.cast("char *", addr), n), dtype=dt)


def addr_of(obj) -> int:
    """Address of the first byte of a cffi pointer/array, numpy array, bytearray or other writable buffer."""
    if isinstance(obj, ffi.CData):
        return _addr_of(obj)
    if isinstance(obj, np.ndarray):
        return int(obj.__array_interface__["data"][0])
    return _addr_of(ffi.from_buffer(obj, require_writable=True))


# --- fences -------------------------------------------------------------------------------------------
_CODE = {
    # sfence; ret            mfence; ret
    "x86_64": (bytes.fromhex("0faef8c3"), bytes.fromhex("0faef0c3")),
    # dmb ishst; ret          dmb ish; ret   (little-endian A64 words)
    "aarch64": ((0xD5033ABF).to_bytes(4, "little") + (0xD65F03C0).to_bytes(4, "little"),
                (0xD5033BBF).to_bytes(4, "little") + (0xD65F03C0).to_bytes(4, "little")),
}
_ARCH_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
_fence_lock = threading.Lock()
_store_fence_fn = None
_full_fence_fn = None


def _init_fences() -> None:
    global _store_fence_fn, _full_fence_fn
    with _fence_lock:
        if _full_fence_fn is not None:
            return
        arch = _ARCH_ALIASES.get(platform.machine().lower())
        if arch is None:
            raise HwdrvError(f"no CPU fence code for architecture {platform.machine()!r}: hwdrv supports "
                             "x86-64 and aarch64 hosts")
        p = lib.mmap(ffi.NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        base = _addr_of(p)
        if base == MAP_FAILED:
            raise syscall_error("mmap(fence code page)", ffi.errno)
        sfence, mfence = _CODE[arch]
        ffi.memmove(p, sfence, len(sfence))
        ffi.memmove(ptr(base + 64), mfence, len(mfence))
        # W^X: never writable and executable at once. On arm64 Linux, installing the executable
        # PTE synchronises the I-cache with the freshly written D-cache lines.
        if lib.mprotect(p, PAGE_SIZE, PROT_READ | PROT_EXEC) != 0:
            err = ffi.errno
            raise syscall_error("mprotect(fence code page, PROT_READ|PROT_EXEC)", err,
                                extra="the system forbids executable anonymous memory (SELinux execmem, "
                                      "PaX/W^X policy); hwdrv needs one executable page for CPU fences")
        _store_fence_fn = ffi.cast("void (*)(void)", base)
        _full_fence_fn = ffi.cast("void (*)(void)", base + 64)


def store_fence() -> None:
    """Order all earlier stores (including write-combined ones) before later stores."""
    if _store_fence_fn is None:
        _init_fences()
    _store_fence_fn()


def full_fence() -> None:
    """Order all earlier loads and stores before later ones."""
    if _full_fence_fn is None:
        _init_fences()
    _full_fence_fn()


# Stores go through fixed typed base pointers: `_U32[i]` is one aligned 4-byte store at 8 + 4*i.
# (A fresh ffi.cast per store costs 3x more; cffi refuses to index a NULL base, hence 8.)
_U32 = ffi.cast("uint32_t *", 8)
_U64 = ffi.cast("uint64_t *", 8)


def mmio_write32(addr: int, value: int) -> None:
    """Store fence, then a single aligned 32-bit store of `value` to `addr` (a doorbell or register)."""
    if addr & 3 or addr < 8:
        raise InvalidArgument(f"MMIO address {addr:#x} is not a 4-byte aligned address")
    if _store_fence_fn is None:
        _init_fences()
    _store_fence_fn()
    try:
        _U32[(addr - 8) >> 2] = value  # one 4-byte store, never split or elided
    except OverflowError:
        raise InvalidArgument(f"value {value:#x} does not fit in 32 bits") from None


def fenced_store32(addr: int, value: int) -> Callable[[], None]:
    """``mmio_write32(addr, value)`` prepared once: the checks done now, each call only fences
    and stores (a doorbell rung on every submission)."""
    if addr & 3 or addr < 8:
        raise InvalidArgument(f"MMIO address {addr:#x} is not a 4-byte aligned address")
    if not 0 <= value <= 0xFFFFFFFF:
        raise InvalidArgument(f"value {value:#x} does not fit in 32 bits")
    if _store_fence_fn is None:
        _init_fences()
    fence, index, word = _store_fence_fn, (addr - 8) >> 2, _U32

    def ring() -> None:
        fence()
        word[index] = value          # one 4-byte store, never split or elided
    return ring


def mmio_write64(addr: int, value: int) -> None:
    """Store fence, then a single aligned 64-bit store of `value` to `addr`."""
    if addr & 7 or addr < 8:
        raise InvalidArgument(f"MMIO address {addr:#x} is not an 8-byte aligned address")
    if _store_fence_fn is None:
        _init_fences()
    _store_fence_fn()
    try:
        _U64[(addr - 8) >> 3] = value
    except OverflowError:
        raise InvalidArgument(f"value {value:#x} does not fit in 64 bits") from None


def mmio_read32(addr: int) -> int:
    """One aligned 32-bit load from `addr` (MMIO registers; no fence)."""
    if addr & 3 or addr < 8:
        raise InvalidArgument(f"MMIO address {addr:#x} is not a 4-byte aligned address")
    return int(_U32[(addr - 8) >> 2])


def mmio_read64(addr: int) -> int:
    """One aligned 64-bit load from `addr` (no fence)."""
    if addr & 7 or addr < 8:
        raise InvalidArgument(f"MMIO address {addr:#x} is not an 8-byte aligned address")
    return int(_U64[(addr - 8) >> 3])
