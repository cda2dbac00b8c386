"""The mock GPU's page table: GPU virtual address -> host memory, every access bounds-checked.

A bad access raises MemoryFault carrying the address, the access kind and why, which the mock GPU
turns into the fault report the real driver would give. Vectorised load/store translate whole numpy
lane arrays at once: mappings are kept sorted, np.searchsorted finds each lane's mapping, and data
moves through one numpy view spanning the mapped host memory.
"""
from __future__ import annotations

import threading
from bisect import bisect_right
from typing import NamedTuple

import numpy as np

from ..errors import InvalidArgument, MockFault
from ..ioctl import hostmem
from ..ioctl._libc import ffi

ACCESS_KINDS = ("read", "write", "atomic", "fetch")
_WRITES = ("write", "atomic")


class MemoryFault(MockFault):
    """A GPU access the page table cannot serve. `.address` (GPU VA of the faulting access),
    `.access` ("read" | "write" | "atomic" | "fetch"), `.reason` ("unmapped" | "read-only" |
    "out-of-range": starts in a mapping but runs past its end), `.lane` (index of the faulting
    lane for vector accesses, else None), `.size` (bytes of the access)."""

    def __init__(self, address: int, access: str, reason: str, size: int = 0, lane: int | None = None,
                 detail: str = "", no_table: bool = False):
        self.address, self.access, self.reason, self.size, self.lane = address, access, reason, size, lane
        #: "unmapped" with nothing mapped in the address's whole last-level table region
        #: (TABLE_REGION): no page table below the directory entry either
        self.no_table = no_table
        msg = f"GPU memory fault: {access} of {size} bytes at {address:#x}: {reason}"
        if lane is not None:
            msg += f" (lane {lane})"
        if detail:
            msg += f"; {detail}"
        super().__init__(msg)


#: bytes one last-level page table covers: a GH100 dual PDE0 entry spans 2 MiB (open-gpu-kernel-
#: modules 580, kernel-open/nvidia-uvm/uvm_hopper_mmu.c: a 2 MiB page is a depth-4 entry, 4K and
#: 64K pages sit in a PTE table below one). An H100 reported FAULT_PDE, not FAULT_PTE, for a
#: store to a freed buffer alone in its 2 MiB (2026-12-06).
TABLE_REGION = 2 << 20


class Mapping(NamedTuple):
    va: int
    size: int
    host_addr: int
    writable: bool


def _put(a: np.ndarray, i: int, v: object) -> np.ndarray:
    """A copy of ``a`` with ``v`` inserted before index ``i`` (one C-level copy)."""
    out = np.empty(len(a) + 1, a.dtype)
    out[:i] = a[:i]
    out[i] = v
    out[i + 1:] = a[i:]
    return out


class _State:
    """Immutable snapshot of the mappings (readers on engine threads take one reference).

    A new snapshot is derived from the previous one with one mapping inserted or removed: list
    slicing and np.insert/np.delete move memory in C (a few microseconds for 10k mappings), so
    map/unmap cost no Python-level work per existing mapping."""

    __slots__ = ("maps", "starts_l", "starts", "ends", "writable", "lo", "hi", "span", "delta",
                 "typed")

    @classmethod
    def empty(cls) -> "_State":
        st = cls()
        st.maps, st.starts_l = [], []
        st.starts, st.ends = np.zeros(0, np.uint64), np.zeros(0, np.uint64)
        st.writable, st.delta = np.zeros(0, bool), np.zeros(0, np.int64)
        st.lo = st.hi = 0
        st.span = np.zeros(0, np.uint8)
        st.typed = {}
        return st

    def with_span(self, lo: int, hi: int, delta: np.ndarray) -> None:
        # One byte view over [lo, hi) of host memory covering every mapping's host range; only
        # translated, bounds-checked offsets are ever touched, so gaps in it are never read.
        # (After unmaps it may cover more than needed; that is harmless for the same reason.)
        self.lo, self.hi, self.delta = lo, hi, delta
        self.span = (np.frombuffer(ffi.buffer(ffi.cast("char *", lo), hi - lo), np.uint8)
                     if hi > lo else np.zeros(0, np.uint8))
        self.typed = {}

    def inserted(self, i: int, m: Mapping) -> "_State":
        st = _State()
        st.maps = self.maps[:i] + [m] + self.maps[i:]
        st.starts_l = self.starts_l[:i] + [m.va] + self.starts_l[i:]
        st.starts = _put(self.starts, i, m.va)
        st.ends = _put(self.ends, i, m.va + m.size)
        st.writable = _put(self.writable, i, m.writable)
        lo = m.host_addr & ~4095 if not self.maps else min(self.lo, m.host_addr & ~4095)
        hi = max(self.hi, m.host_addr + m.size)
        delta = self.delta + (self.lo - lo) if self.maps and lo != self.lo else self.delta
        if self.maps and lo == self.lo and hi == self.hi:
            # same span: keep the views (and the typed views made from them)
            st.lo, st.hi, st.span, st.typed = lo, hi, self.span, self.typed
            st.delta = _put(delta, i, m.host_addr - lo - m.va)
        else:
            st.with_span(lo, hi, _put(delta, i, m.host_addr - lo - m.va))
        return st

    def replaced(self, i: int, j: int, new: list[Mapping]) -> "_State":
        """Mappings [i, j) replaced by ``new`` (host ranges inside the old ones)."""
        st = _State()
        st.maps = self.maps[:i] + new + self.maps[j:]
        st.starts_l = self.starts_l[:i] + [m.va for m in new] + self.starts_l[j:]
        def splice(a: np.ndarray, vals: list) -> np.ndarray:
            return np.concatenate((a[:i], np.array(vals, a.dtype), a[j:]))
        st.starts = splice(self.starts, [m.va for m in new])
        st.ends = splice(self.ends, [m.va + m.size for m in new])
        st.writable = splice(self.writable, [m.writable for m in new])
        st.lo, st.hi, st.span, st.typed = self.lo, self.hi, self.span, self.typed
        st.delta = splice(self.delta, [m.host_addr - self.lo - m.va for m in new])
        if not st.maps:
            return _State.empty()
        return st

    def typed_span(self, dt: np.dtype) -> np.ndarray:
        v = self.typed.get(dt)
        if v is None:
            n = len(self.span) - len(self.span) % dt.itemsize
            v = self.typed[dt] = self.span[:n].view(dt)
        return v


class GpuPageTable:
    """One mock GPU address space. Thread-safe: map/unmap swap in a new snapshot atomically."""

    def __init__(self, name: str = "gpu"):
        self.name = name
        self._lock = threading.Lock()
        self._state = _State.empty()
        #: held by every access while it touches host memory, and by unmap: once unmap returns,
        #: no engine still reads or writes through the old mapping (its owner may then free
        #: the host memory without an engine thread touching it afterwards)
        self._access = threading.RLock()

    # --- mapping --------------------------------------------------------------------------------------
    def map(self, va: int, host_addr: int, size: int, writable: bool = True) -> None:
        """Map [va, va+size) to host memory at host_addr. Overlapping an existing mapping is an error."""
        if size <= 0 or va < 0 or host_addr <= 0:
            raise InvalidArgument(f"map(va={va:#x}, host={host_addr:#x}, size={size:#x}): bad arguments")
        with self._lock:
            maps = self._state.maps
            i = bisect_right(self._state.starts_l, va)
            for m in maps[max(i - 1, 0):i + 1]:
                if m.va < va + size and va < m.va + m.size:
                    raise InvalidArgument(f"{self.name}: mapping [{va:#x}, {va + size:#x}) overlaps existing "
                                          f"[{m.va:#x}, {m.va + m.size:#x}); unmap it first")
            self._state = self._state.inserted(i, Mapping(va, size, host_addr, bool(writable)))

    def unmap(self, va: int, size: int) -> None:
        """Unmap [va, va+size); mappings partly inside are split. Unmapping nothing is an error
        (it means the caller's bookkeeping is wrong)."""
        end = va + size
        with self._access, self._lock:
            st = self._state
            i = max(bisect_right(st.starts_l, va) - 1, 0)
            if i < len(st.maps) and st.maps[i].va + st.maps[i].size <= va:
                i += 1
            j = i
            new = []
            while j < len(st.maps) and st.maps[j].va < end:
                m = st.maps[j]
                mend = m.va + m.size
                if m.va < va:
                    new.append(Mapping(m.va, va - m.va, m.host_addr, m.writable))
                if mend > end:
                    new.append(Mapping(end, mend - end, m.host_addr + (end - m.va), m.writable))
                j += 1
            if j == i:
                raise InvalidArgument(f"{self.name}: unmap [{va:#x}, {end:#x}) covers no mapping")
            self._state = st.replaced(i, j, new)

    @staticmethod
    def _no_table(st: "_State", va: int) -> bool:
        """Whether no mapping touches the TABLE_REGION holding ``va``."""
        lo = va & ~(TABLE_REGION - 1)
        j = bisect_right(st.starts_l, lo + TABLE_REGION - 1) - 1
        return not (j >= 0 and st.maps[j].va + st.maps[j].size > lo)

    def mappings(self) -> list[Mapping]:
        """All mappings in VA order (for dumps)."""
        return list(self._state.maps)

    # --- scalar access ----------------------------------------------------------------------------------
    def translate(self, va: int, size: int, access: str = "read") -> int:
        """Host address of [va, va+size); the whole range must be in one mapping, else MemoryFault."""
        st = self._state
        i = bisect_right(st.starts_l, va) - 1
        if i < 0 or va >= st.maps[i].va + st.maps[i].size:
            raise MemoryFault(va, access, "unmapped", size, detail=self._near(st, va),
                              no_table=self._no_table(st, va))
        m = st.maps[i]
        if va + size > m.va + m.size:
            raise MemoryFault(va, access, "out-of-range", size,
                              detail=f"mapping [{m.va:#x}, {m.va + m.size:#x}) ends inside the access")
        if access in _WRITES and not m.writable:
            raise MemoryFault(va, access, "read-only", size)
        return m.host_addr + (va - m.va)

    def read(self, va: int, n: int) -> bytes:
        if not n:
            return b""
        with self._access:
            return hostmem.read(self.translate(va, n, "read"), n)

    def write(self, va: int, data: bytes | bytearray | memoryview) -> None:
        n = len(memoryview(data).cast("B"))
        if n:
            with self._access:
                hostmem.write(self.translate(va, n, "write"), data)

    # --- vector access ----------------------------------------------------------------------------------
    def _offsets(self, st: _State, addrs: np.ndarray, itemsize: int, access: str,
                 mask: np.ndarray | None) -> np.ndarray:
        """Byte offsets into st.span for every active lane; raises MemoryFault for the first bad lane."""
        if addrs.dtype.kind not in "iu":
            raise InvalidArgument(f"GPU addresses must be an integer array, got dtype {addrs.dtype}")
        shape = addrs.shape
        a = addrs.astype(np.uint64, copy=False).reshape(-1)   # lanes are numbered in flat (C) order
        if mask is not None:
            mask = mask.reshape(-1)
        if not len(st.maps):
            bad = np.flatnonzero(mask) if mask is not None else np.arange(a.size)
            if bad.size:
                lane = int(bad[0])
                raise MemoryFault(int(a[lane]), access, "unmapped", itemsize, lane, "no memory is mapped",
                                  no_table=True)
            return np.zeros(shape, np.int64)
        idx = np.searchsorted(st.starts, a, side="right").astype(np.intp) - 1
        safe = np.maximum(idx, 0)
        ok_start = (idx >= 0) & (a < st.ends[safe])
        ok = ok_start & (a + np.uint64(itemsize) <= st.ends[safe])
        if access in _WRITES:
            ok &= st.writable[safe]
        if mask is not None:
            ok |= ~mask
        if not ok.all():
            lane = int(np.flatnonzero(~ok)[0])
            addr = int(a[lane])
            if not ok_start[lane]:
                raise MemoryFault(addr, access, "unmapped", itemsize, lane, self._near(st, addr),
                                  no_table=self._no_table(st, addr))
            if addr + itemsize > int(st.ends[safe[lane]]):
                raise MemoryFault(addr, access, "out-of-range", itemsize, lane)
            raise MemoryFault(addr, access, "read-only", itemsize, lane)
        off = a.astype(np.int64) + st.delta[safe]
        if mask is not None and not mask.all():
            # inactive lanes read where an active lane reads (a mapped byte; the result is
            # discarded). Not span[0]: after unmaps the span may start in freed memory.
            active = np.flatnonzero(mask)
            off = np.where(mask, off, off[active[0]] if active.size else 0)
        return off.reshape(shape)

    def load(self, addrs: np.ndarray, dtype, mask: np.ndarray | None = None,
             access: str = "read") -> np.ndarray:
        """Gather one `dtype` value per lane from GPU addresses `addrs` (any shape). Lanes where
        `mask` is False are not checked and read as 0."""
        with self._access:
            return self._load(np.dtype(dtype), np.asarray(addrs), mask, access)

    def _load(self, dt: np.dtype, addrs: np.ndarray, mask: np.ndarray | None, access: str) -> np.ndarray:
        st = self._state
        if mask is not None:
            mask = np.broadcast_to(np.asarray(mask, bool), addrs.shape)
        off = self._offsets(st, addrs, dt.itemsize, access, mask)
        if mask is not None and not np.any(mask):
            return np.zeros(addrs.shape, dt)
        k = dt.itemsize
        if (st.lo % k == 0) and not (off % k).any():
            out = st.typed_span(dt)[off // k]
        else:  # unaligned lanes: gather bytes
            out = st.span[off[..., None] + np.arange(k)].view(dt)[..., 0]
        if mask is not None:
            out = np.where(mask, out, dt.type(0))
        return out

    def store(self, addrs: np.ndarray, values, mask: np.ndarray | None = None,
              access: str = "write") -> None:
        """Scatter `values` (broadcast to addrs' shape; their dtype is the access size) to `addrs`.
        Lanes where `mask` is False are skipped. With duplicate addresses the last lane wins."""
        addrs = np.asarray(addrs)
        values = np.asarray(values)
        if values.dtype == object or values.dtype.kind not in "biuf":
            raise InvalidArgument(f"store values must be a numeric array, got dtype {values.dtype}")
        values = np.broadcast_to(values, addrs.shape)
        if mask is not None:
            mask = np.broadcast_to(np.asarray(mask, bool), addrs.shape)
        with self._access:
            self._store(addrs, values, mask, access)

    def _store(self, addrs: np.ndarray, values: np.ndarray, mask: np.ndarray | None, access: str) -> None:
        dt = values.dtype
        st = self._state
        off = self._offsets(st, addrs, dt.itemsize, access, mask)
        if mask is not None:
            off, values = off[mask], values[mask]
        k = dt.itemsize
        if (st.lo % k == 0) and not (off % k).any():
            st.typed_span(dt)[off // k] = values
        else:  # unaligned lanes: scatter bytes
            vb = np.ascontiguousarray(values).reshape(-1).view(np.uint8).reshape(off.shape + (k,))
            st.span[off[..., None] + np.arange(k)] = vb

    @staticmethod
    def _near(st: _State, va: int) -> str:
        i = bisect_right(st.starts_l, va) - 1
        parts = []
        if i >= 0:
            m = st.maps[i]
            parts.append(f"{va - (m.va + m.size):#x} bytes past [{m.va:#x}, {m.va + m.size:#x})")
        if i + 1 < len(st.maps):
            m = st.maps[i + 1]
            parts.append(f"{m.va - va:#x} bytes below [{m.va:#x}, {m.va + m.size:#x})")
        return "; ".join(parts) if parts else "no memory is mapped"
