"""The process's own libc, opened once through cffi in ABI mode (no compiler needed at install).

Private to hwdrv.ioctl: LinuxKernel and hostmem share this one handle. Variadic functions
(ioctl, open) must get their variadic arguments as typed cdata, so callers cast them.
"""
from __future__ import annotations

import cffi

ffi = cffi.FFI()
ffi.cdef("""
int ioctl(int fd, unsigned long request, ...);
int open(const char *pathname, int flags, ...);
int close(int fd);
void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset);
int munmap(void *addr, size_t length);
int mprotect(void *addr, size_t len, int prot);
""")
# dlopen(None) = the symbols already linked into this process (glibc / musl); no path guessing.
lib = ffi.dlopen(None)

MAP_FAILED = (1 << 64) - 1  # (void *)-1 as an unsigned address


def ptr(addr: int):
    """`addr` as a `void *` cdata (no ownership)."""
    return ffi.cast("void *", addr)


def addr_of(p) -> int:
    """A cdata pointer as an unsigned integer address."""
    return int(ffi.cast("uintptr_t", p))
