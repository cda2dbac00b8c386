"""Address spaces as the interpreter sees them.

``GlobalMemory`` is the protocol the mock GPU's page table (``hwdrv.mock.gpumem.GpuPageTable``)
satisfies. Shared, local, param and const memory belong to the interpreter itself. Generic
addresses (sm_90 style) map two 4 GiB windows onto shared and local memory and one onto the
kernel parameters; everything else is global.

Where the windows are is an :class:`AddressConfig`: the mock GPU builds it from what the driver
programmed (the SET_SHADER_*_MEMORY_WINDOW methods route generic addresses; ``cvta`` adds the
bases the driver wrote to constant bank 0; the stack pointer there places the kernel's ``.local``
frame in the local window; the QMD's local-memory size bounds it), so a driver that programs them
inconsistently sees the kernel fault. Interpreter-only launches use :data:`DEFAULT_CONFIG`, where
``cvta.to.shared(cvta.shared(x)) == x`` by construction."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from hwdrv.errors import MockFault

from .errors import AddressSpaceFault

# Generic-address windows: above the 47-bit user half of x86-64 (so never a host VA that a
# GPU-VA == CPU-VA pool could hand out) and inside Hopper's 57-bit GPU VA space.
SHARED_WINDOW = 0x0001_0000_0000_0000
LOCAL_WINDOW = 0x0001_0001_0000_0000
PARAM_WINDOW = 0x0001_0002_0000_0000
WINDOW_SIZE = 1 << 32
WINDOWS = {"shared": SHARED_WINDOW, "local": LOCAL_WINDOW, "param": PARAM_WINDOW}
#: Hopper's local window: per-thread local memory sits at its top (SHADER_LOCAL_MEMORY_HIGH_SIZE
#: bytes below this offset) and the stack grows down from the stack pointer in constant bank 0
LOCAL_WINDOW_BYTES = 16 << 20


@dataclass(frozen=True)
class AddressConfig:
    """Where generic addresses go and where a thread's ``.local`` frame is, for one launch.

    ``shared_window``/``local_window``: generic-address routing (the hardware's window methods);
    the shared window is 4 GiB, the local one ``local_window_size`` (Hopper: 16 MiB).
    ``shared_cvta``/``local_cvta``: what ``cvta`` adds (the constant-bank-0 words the compiled
    code reads); None means "the window". ``stack_pointer``: the initial stack pointer (a local
    window offset); the kernel's frame is the ``frame`` bytes below it. ``local_high``: the
    per-thread local memory, the top ``local_high`` bytes of the local window; None (with
    ``stack_pointer`` None) gives each thread exactly its frame at offset 0."""
    shared_window: int = SHARED_WINDOW
    local_window: int = LOCAL_WINDOW
    local_window_size: int = WINDOW_SIZE
    shared_cvta: int | None = None
    local_cvta: int | None = None
    stack_pointer: int | None = None
    local_high: int | None = None

    def frame_base(self, frame: int) -> int:
        """Local window offset of the frame's first byte (16-byte aligned, as ptxas aligns it)."""
        if self.stack_pointer is None:
            return 0
        return (self.stack_pointer - frame) & ~15

    def local_bounds(self, frame: int) -> tuple[int, int]:
        """[lo, hi) of the local window offsets a thread may touch."""
        if self.local_high is None:
            return 0, frame
        return LOCAL_WINDOW_BYTES - self.local_high, LOCAL_WINDOW_BYTES


DEFAULT_CONFIG = AddressConfig()


@runtime_checkable
class GlobalMemory(Protocol):
    """What the interpreter needs from GPU global memory (the mock GPU's page table).

    Accesses outside mapped memory raise a MockFault subclass with ``address``/``access``/
    ``reason`` attributes (``hwdrv.mock.gpumem.MemoryFault``)."""

    def load(self, addrs: np.ndarray, dtype, mask=None, access: str = "read") -> np.ndarray: ...
    def store(self, addrs: np.ndarray, values: np.ndarray, mask=None, access: str = "write") -> None: ...
    def read(self, va: int, n: int) -> bytes: ...
    def write(self, va: int, data: bytes) -> None: ...


def _first_lane(addrs: np.ndarray, lanes: np.ndarray | None, address: int | None, size: int,
                vec_lane: int | None = None) -> int | None:
    """Chunk lane of a fault: the element the page table named (``vec_lane``), else the first
    whose access [a, a+size) covers ``address``, else the first lane."""
    if addrs.size == 0:
        return None
    pos = 0
    if vec_lane is not None and 0 <= vec_lane < addrs.size:
        pos = int(vec_lane)
    elif address is not None:
        hit = np.flatnonzero((addrs <= np.uint64(address)) & (np.uint64(address) < addrs + np.uint64(size)))
        if hit.size:
            pos = int(hit[0])
    if lanes is None:
        return pos
    return int(lanes[pos]) if pos < lanes.size else None


def check_aligned(addrs: np.ndarray, size: int, lanes, space: str, access: str) -> None:
    """Misaligned accesses fault on the hardware ("misaligned address"); so here."""
    if size > 1 and addrs.size:
        bad = (addrs & np.uint64(size - 1)) != 0
        if bad.any():
            k = int(np.argmax(bad))
            exc = AddressSpaceFault(int(addrs[k]), access, "misaligned", space)
            exc.chunk_lane = int(lanes[k]) if lanes is not None else k
            raise exc


class GlobalSpace:
    """Global memory through the page table, with alignment checks and faulting-lane capture."""
    name = "global"

    def __init__(self, memory: GlobalMemory):
        self.memory = memory

    def key(self, addrs: np.ndarray, lanes) -> np.ndarray:
        return addrs

    def load(self, addrs: np.ndarray, lanes, dtype: np.dtype, access: str = "read") -> np.ndarray:
        dtype = np.dtype(dtype)
        check_aligned(addrs, dtype.itemsize, lanes, "global", access)
        try:
            return np.asarray(self.memory.load(addrs, dtype, access=access)).view(dtype)
        except MockFault as exc:
            exc.chunk_lane = _first_lane(addrs, lanes, getattr(exc, "address", None), dtype.itemsize,
                                         getattr(exc, "lane", None))
            raise

    def store(self, addrs: np.ndarray, lanes, values: np.ndarray, access: str = "write") -> None:
        check_aligned(addrs, values.dtype.itemsize, lanes, "global", access)
        try:
            self.memory.store(addrs, values, access=access)
        except MockFault as exc:
            exc.chunk_lane = _first_lane(addrs, lanes, getattr(exc, "address", None), values.dtype.itemsize,
                                         getattr(exc, "lane", None))
            raise


class ArraySpace:
    """Memory the interpreter owns: one byte array with a per-lane base (per CTA for shared,
    per thread for local, one for all lanes for param/const). An address ``a`` is byte
    ``a + bias`` of a lane's block; ``limit`` bounds the valid ones."""

    def __init__(self, name: str, data: np.ndarray, limit: int, lane_base: np.ndarray | None,
                 writable: bool = True, bias: int = 0):
        self.name, self.data, self.limit, self.lane_base, self.writable = name, data, limit, lane_base, writable
        self.bias = bias

    def key(self, addrs: np.ndarray, lanes) -> np.ndarray:
        if self.lane_base is None:
            return addrs
        base = self.lane_base if lanes is None else self.lane_base[lanes]
        return base.astype(np.uint64) * np.uint64(WINDOW_SIZE) + addrs

    def _flat(self, addrs: np.ndarray, lanes, size: int, access: str) -> np.ndarray:
        addrs = np.asarray(addrs, np.uint64)
        check_aligned(addrs, size, lanes, self.name, access)
        if self.bias:
            addrs = addrs + np.uint64(self.bias % (1 << 64))     # wraps: a below the block is huge
        if addrs.size:
            # valid offsets: [0, limit - size]; a space smaller than one element has none
            bad = addrs > np.uint64(self.limit - size) if self.limit >= size else np.ones(addrs.shape, bool)
            if bad.any():
                k = int(np.argmax(bad))
                exc = AddressSpaceFault((int(addrs[k]) - self.bias) % (1 << 64), access, "out-of-range",
                                        self.name)
                exc.chunk_lane = int(lanes[k]) if lanes is not None else k
                raise exc
        if self.lane_base is None:
            return addrs.astype(np.int64)
        base = self.lane_base if lanes is None else self.lane_base[lanes]
        return base + addrs.astype(np.int64)

    def load(self, addrs: np.ndarray, lanes, dtype: np.dtype, access: str = "read") -> np.ndarray:
        dtype = np.dtype(dtype)
        flat = self._flat(addrs, lanes, dtype.itemsize, access)
        # Aligned accesses in a 16-byte-aligned array: index the typed view directly.
        return self.data.view(dtype)[flat // dtype.itemsize]

    def store(self, addrs: np.ndarray, lanes, values: np.ndarray, access: str = "write") -> None:
        if not self.writable:
            exc = AddressSpaceFault(int(np.asarray(addrs).flat[0]) if np.size(addrs) else 0, access, "read-only", self.name)
            exc.chunk_lane = int(lanes[0]) if lanes is not None and len(lanes) else 0
            raise exc
        flat = self._flat(addrs, lanes, values.dtype.itemsize, access)
        view = self.data.view(values.dtype)
        view[flat // values.dtype.itemsize] = values


CLUSTER_RANK_SHIFT = 24       # shared::cluster address of CTA r's memory: offset | (r + 1) << 24


class ClusterSharedSpace(ArraySpace):
    """Shared memory of a cluster launch (distributed shared memory). An address with a rank
    field (bits 24 and up = rank + 1, as ``mapa`` makes them) reaches that CTA of the lane's
    cluster; an address without one is the lane's own CTA's shared memory, as on sm_90 where
    the CTA's shared window lies inside the cluster's."""

    def __init__(self, data: np.ndarray, limit: int, lane_base: np.ndarray, stride: int, own_rank: np.ndarray,
                 cluster_size: int):
        super().__init__("shared", data, limit, lane_base)
        self.stride, self.own_rank, self.cluster_size = stride, own_rank, cluster_size

    def _resolve(self, addrs: np.ndarray, lanes, access: str) -> tuple[np.ndarray, np.ndarray]:
        addrs = np.asarray(addrs, np.uint64)
        field = (addrs >> np.uint64(CLUSTER_RANK_SHIFT)).astype(np.int64)
        base = self.lane_base if lanes is None else self.lane_base[lanes]
        if not field.any():
            return addrs, base
        bad = field > self.cluster_size
        if bad.any():
            k = int(np.argmax(bad))
            exc = AddressSpaceFault(int(addrs[k]), access, f"no CTA of rank {int(field[k]) - 1} in a cluster of "
                                                           f"{self.cluster_size}", "shared")
            exc.chunk_lane = int(lanes[k]) if lanes is not None else k
            raise exc
        rank = self.own_rank if lanes is None else self.own_rank[lanes]
        base = np.where(field > 0, base + (field - 1 - rank) * self.stride, base)
        return addrs & np.uint64((1 << CLUSTER_RANK_SHIFT) - 1), base

    def key(self, addrs: np.ndarray, lanes) -> np.ndarray:
        off, base = self._resolve(addrs, lanes, "read")
        return base.astype(np.uint64) * np.uint64(WINDOW_SIZE) + off

    def _flat(self, addrs: np.ndarray, lanes, size: int, access: str) -> np.ndarray:
        addrs = np.asarray(addrs, np.uint64)
        check_aligned(addrs, size, lanes, self.name, access)
        off, base = self._resolve(addrs, lanes, access)
        if off.size:
            bad = off > np.uint64(self.limit - size) if self.limit >= size else np.ones(off.shape, bool)
            if bad.any():
                k = int(np.argmax(bad))
                exc = AddressSpaceFault(int(addrs[k]), access, "out-of-range", self.name)
                exc.chunk_lane = int(lanes[k]) if lanes is not None else k
                raise exc
        return base + off.astype(np.int64)


def classify_generic(addrs: np.ndarray, windows: tuple = (
        (1, SHARED_WINDOW, WINDOW_SIZE, 0), (2, LOCAL_WINDOW, WINDOW_SIZE, 0),
        (3, PARAM_WINDOW, WINDOW_SIZE, 0))) -> tuple[np.ndarray, np.ndarray]:
    """Per lane: window index (0 global, 1 shared, 2 local, 3 param) and the space address:
    ``addr - base - adjust`` for the (index, base, size, adjust) window ``[base, base + size)`` it
    is in."""
    win = np.zeros(addrs.shape, np.int8)
    off = addrs.copy()
    for k, base, size, adjust in windows:
        inside = (addrs >= np.uint64(base)) & (addrs < np.uint64(base + size))
        if inside.any():
            win[inside] = k
            off[inside] = addrs[inside] - np.uint64((base + adjust) % (1 << 64))
    return win, off


class GenericSpace:
    """Generic addressing: each lane's address is routed to the window it falls in. A local
    window address is a window offset; the local space's addresses are frame-relative, so the
    frame base is taken off too."""
    name = "generic"

    def __init__(self, global_space: GlobalSpace, shared: ArraySpace, local: ArraySpace, param: ArraySpace,
                 config: AddressConfig = DEFAULT_CONFIG, frame_base: int = 0):
        self.spaces = (global_space, shared, local, param)
        self.windows = ((1, config.shared_window, WINDOW_SIZE, 0),
                        (2, config.local_window, config.local_window_size, frame_base),
                        (3, PARAM_WINDOW, WINDOW_SIZE, 0))

    def _split(self, addrs: np.ndarray, lanes):
        addrs = np.asarray(addrs, np.uint64)
        win, off = classify_generic(addrs, self.windows)
        if not win.any():
            yield 0, None, addrs, lanes
            return
        for k in range(4):
            sel = np.flatnonzero(win == k)
            if sel.size:
                yield k, sel, off[sel], (sel if lanes is None else lanes[sel])

    def key(self, addrs: np.ndarray, lanes) -> np.ndarray:
        out = np.empty(np.shape(addrs), np.uint64)
        for k, sel, a, ln in self._split(addrs, lanes):
            # Tag keys with the window so equal offsets in different spaces never collide.
            kk = self.spaces[k].key(a, ln) + np.uint64(k << 60)
            if sel is None:
                return kk
            out[sel] = kk
        return out

    def load(self, addrs: np.ndarray, lanes, dtype: np.dtype, access: str = "read") -> np.ndarray:
        out = None
        for k, sel, a, ln in self._split(addrs, lanes):
            v = self.spaces[k].load(a, ln, dtype, access)
            if sel is None:
                return v
            if out is None:
                out = np.empty(np.shape(addrs), np.dtype(dtype))
            out[sel] = v
        return out if out is not None else np.empty(0, np.dtype(dtype))

    def store(self, addrs: np.ndarray, lanes, values: np.ndarray, access: str = "write") -> None:
        values = np.asarray(values)
        for k, sel, a, ln in self._split(addrs, lanes):
            self.spaces[k].store(a, ln, values if sel is None else values[sel], access)
