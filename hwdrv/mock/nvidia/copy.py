"""HOPPER_DMA_COPY_A (0xC8B5) on the mock GPU: pitch copies, remapped fills, semaphore releases.

LAUNCH_DMA copies LINE_COUNT lines (1 unless MULTI_LINE_ENABLE) of LINE_LENGTH_IN bytes from
OFFSET_IN to OFFSET_OUT with PITCH_IN/PITCH_OUT between lines, through the channel's page table.
Copies of any size move in bounded chunks (so a > 4 GiB copy needs no giant temporary) and may span
adjacent mappings, like the hardware's paged accesses. With REMAP_ENABLE the line length counts
elements of SET_REMAP_COMPONENTS and destination components can come from SET_REMAP_CONST_A/B
(a memset). Physical addressing, block-linear layouts and encryption are not modelled: they are
rejected as CE errors rather than silently misread.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING

import numpy as np

from hwdrv.ioctl import hostmem
from hwdrv.mock.gpumem import GpuPageTable, MemoryFault

from . import faults as X
from . import semaphore as S
from .facts import HW, NV

if TYPE_CHECKING:
    from .fifo import Channel

CHUNK = 64 << 20

_STATE_METHODS = {
    HW.NVC8B5_NOP, HW.NVC8B5_OFFSET_IN_UPPER, HW.NVC8B5_OFFSET_IN_LOWER, HW.NVC8B5_OFFSET_OUT_UPPER,
    HW.NVC8B5_OFFSET_OUT_LOWER, HW.NVC8B5_PITCH_IN, HW.NVC8B5_PITCH_OUT, HW.NVC8B5_LINE_LENGTH_IN,
    HW.NVC8B5_LINE_COUNT, HW.NVC8B5_SET_SEMAPHORE_A, HW.NVC8B5_SET_SEMAPHORE_B, HW.NVC8B5_SET_SEMAPHORE_PAYLOAD,
    HW.NVC8B5_SET_SEMAPHORE_PAYLOAD_UPPER, HW.NVC8B5_SET_REMAP_CONST_A, HW.NVC8B5_SET_REMAP_CONST_B,
    HW.NVC8B5_SET_REMAP_COMPONENTS, HW.NVC8B5_SET_SRC_PHYS_MODE, HW.NVC8B5_SET_DST_PHYS_MODE,
    HW.NVC8B5_SET_MEMORY_SCRUB_PARAMETERS, HW.NVC8B5_PM_TRIGGER, HW.NVC8B5_PM_TRIGGER_END,
}
L = "NVC8B5_LAUNCH_DMA_"


def _f(name: str) -> object:
    return getattr(HW, L + name)


def host_spans(pt: GpuPageTable, va: int, n: int, access: str) -> list[tuple[int, int]]:
    """[(host address, length)] covering GPU [va, va+n), crossing adjacent mappings; raises the
    page table's MemoryFault at the first byte that is not mapped (or not writable)."""
    maps = pt.mappings()
    starts = [m.va for m in maps]
    out, cur, end = [], va, va + n
    while cur < end:
        i = bisect_right(starts, cur) - 1
        if i < 0 or cur >= maps[i].va + maps[i].size:
            raise MemoryFault(cur, access, "unmapped", end - cur)
        m = maps[i]
        if access == "write" and not m.writable:
            raise MemoryFault(cur, access, "read-only", end - cur)
        take = min(end, m.va + m.size) - cur
        out.append((m.host_addr + (cur - m.va), take))
        cur += take
    return out


def _memmove(pt: GpuPageTable, dst: int, src: int, n: int) -> None:
    """Copy n bytes GPU->GPU in chunks of at most CHUNK (memmove per piece: no full temporary)."""
    done = 0
    while done < n:
        k = min(CHUNK, n - done)
        s_spans = host_spans(pt, src + done, k, "read")
        d_spans = host_spans(pt, dst + done, k, "write")
        si = di = 0
        s_off = d_off = 0
        while si < len(s_spans) and di < len(d_spans):
            sa, sl = s_spans[si]
            da, dl = d_spans[di]
            m = min(sl - s_off, dl - d_off)
            hostmem.write(da + d_off, hostmem.view(sa + s_off, m))
            s_off += m
            d_off += m
            if s_off == sl:
                si, s_off = si + 1, 0
            if d_off == dl:
                di, d_off = di + 1, 0
        done += k


class CopyEngine:
    """The HOPPER_DMA_COPY_A object bound to a subchannel of one channel."""

    cls = HW.HOPPER_DMA_COPY_A

    def __init__(self, channel: "Channel"):
        self.ch = channel
        self.state: dict[int, int] = {HW.NVC8B5_LINE_COUNT: 1}
        self.copies = 0
        self.bytes_copied = 0

    def _get(self, m: int) -> int:
        return self.state.get(m, 0)

    def _error(self, where: str, why: str) -> X.ChannelError:
        return X.ChannelError(X.ce_xid(self.ch.engine_type), f"{where}: copy engine error: {why}",
                              self.ch.engine_type)

    def method(self, mthd: int, data: int, where: str) -> None:
        if mthd == HW.NVC8B5_LAUNCH_DMA:
            self._launch(data, where)
        elif mthd in _STATE_METHODS:
            self.state[mthd] = data
        else:
            raise self._error(where, f"method {mthd:#x} (data {data:#x}) is unknown to HOPPER_DMA_COPY_A")

    def _launch(self, d: int, where: str) -> None:
        g = lambda name: _f(name).decode(d)  # type: ignore[attr-defined]  # noqa: E731
        if g("SRC_TYPE") or g("DST_TYPE"):
            raise self._error(where, f"LAUNCH_DMA {d:#x}: physical addressing is not available to user channels "
                                     f"in the mock")
        if g("COPY_TYPE") not in (HW.NVC8B5_LAUNCH_DMA_COPY_TYPE_DEFAULT, HW.NVC8B5_LAUNCH_DMA_COPY_TYPE_NONPROT2NONPROT):
            raise self._error(where, f"LAUNCH_DMA {d:#x}: secure/encrypted copies are not modelled")
        if g("MEMORY_SCRUB_ENABLE"):
            raise self._error(where, f"LAUNCH_DMA {d:#x}: memory scrub is not modelled")
        xfer = g("DATA_TRANSFER_TYPE")
        if xfer != HW.NVC8B5_LAUNCH_DMA_DATA_TRANSFER_TYPE_NONE:
            if (g("SRC_MEMORY_LAYOUT") != HW.NVC8B5_LAUNCH_DMA_SRC_MEMORY_LAYOUT_PITCH
                    or g("DST_MEMORY_LAYOUT") != HW.NVC8B5_LAUNCH_DMA_DST_MEMORY_LAYOUT_PITCH):
                raise self._error(where, f"LAUNCH_DMA {d:#x}: block-linear layouts are not modelled (use PITCH)")
            try:
                self._transfer(bool(g("MULTI_LINE_ENABLE")), bool(g("REMAP_ENABLE")), where)
            except MemoryFault as f:
                raise X.mmu_fault(f, f"HUBCLIENT_CE{self._ce_index()}", self.ch.engine_type,
                                  f"copying ({where})") from None
        sem = g("SEMAPHORE_TYPE")
        if sem != HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_TYPE_NONE:
            try:
                self._semaphore(d, sem, where)
            except MemoryFault as f:
                raise X.mmu_fault(f, f"HUBCLIENT_CE{self._ce_index()}", self.ch.engine_type,
                                  "releasing a copy-engine semaphore") from None

    def _ce_index(self) -> int:
        for i in range(10):
            if self.ch.engine_type == NV.NV2080_ENGINE_TYPE_COPY(i):
                return i
        return 0

    def _transfer(self, multi: bool, remap: bool, where: str) -> None:
        src = (self._get(HW.NVC8B5_OFFSET_IN_UPPER) << 32) | self._get(HW.NVC8B5_OFFSET_IN_LOWER)
        dst = (self._get(HW.NVC8B5_OFFSET_OUT_UPPER) << 32) | self._get(HW.NVC8B5_OFFSET_OUT_LOWER)
        length = self._get(HW.NVC8B5_LINE_LENGTH_IN)
        lines = self._get(HW.NVC8B5_LINE_COUNT) if multi else 1
        pin, pout = self._get(HW.NVC8B5_PITCH_IN), self._get(HW.NVC8B5_PITCH_OUT)
        pt = self.ch.pt
        for line in range(lines):
            s, t = src + line * pin, dst + line * pout
            if remap:
                self._remap_line(s, t, length, where)
            else:
                _memmove(pt, t, s, length)
            self.bytes_copied += length
        self.copies += 1

    def _remap_line(self, src: int, dst: int, elements: int, where: str) -> None:
        comp = self._get(HW.NVC8B5_SET_REMAP_COMPONENTS)
        csize = HW.NVC8B5_SET_REMAP_COMPONENTS_COMPONENT_SIZE.decode(comp) + 1
        nsrc = HW.NVC8B5_SET_REMAP_COMPONENTS_NUM_SRC_COMPONENTS.decode(comp) + 1
        ndst = HW.NVC8B5_SET_REMAP_COMPONENTS_NUM_DST_COMPONENTS.decode(comp) + 1
        sel = [HW.NVC8B5_SET_REMAP_COMPONENTS_DST_X.decode(comp), HW.NVC8B5_SET_REMAP_COMPONENTS_DST_Y.decode(comp),
               HW.NVC8B5_SET_REMAP_COMPONENTS_DST_Z.decode(comp), HW.NVC8B5_SET_REMAP_COMPONENTS_DST_W.decode(comp)]
        consts = [self._get(HW.NVC8B5_SET_REMAP_CONST_A), self._get(HW.NVC8B5_SET_REMAP_CONST_B)]
        pt = self.ch.pt
        need_src = any(s <= HW.NVC8B5_SET_REMAP_COMPONENTS_DST_X_SRC_W for s in sel[:ndst])
        step = max(1, CHUNK // (csize * max(nsrc, ndst)))
        for e0 in range(0, elements, step):
            n = min(step, elements - e0)
            sdata = None
            if need_src:
                raw = _read_spans(pt, src + e0 * nsrc * csize, n * nsrc * csize)
                sdata = np.frombuffer(raw, np.uint8).reshape(n, nsrc, csize)
            dbytes = np.frombuffer(_read_spans(pt, dst + e0 * ndst * csize, n * ndst * csize), np.uint8
                                   ).reshape(n, ndst, csize).copy()
            for k in range(ndst):
                s = sel[k]
                if s == HW.NVC8B5_SET_REMAP_COMPONENTS_DST_X_NO_WRITE:
                    continue
                if s in (HW.NVC8B5_SET_REMAP_COMPONENTS_DST_X_CONST_A, HW.NVC8B5_SET_REMAP_COMPONENTS_DST_X_CONST_B):
                    c = consts[s - HW.NVC8B5_SET_REMAP_COMPONENTS_DST_X_CONST_A]
                    dbytes[:, k, :] = np.frombuffer(c.to_bytes(4, "little")[:csize], np.uint8)
                elif s < nsrc and sdata is not None:
                    dbytes[:, k, :] = sdata[:, s, :]
                else:
                    raise self._error(where, f"remap selects source component {s} of {nsrc}")
            _write_spans(pt, dst + e0 * ndst * csize, dbytes.tobytes())

    def _semaphore(self, d: int, sem: int, where: str) -> None:
        va = ((HW.NVC8B5_SET_SEMAPHORE_A_UPPER.decode(self._get(HW.NVC8B5_SET_SEMAPHORE_A)) << 32)
              | self._get(HW.NVC8B5_SET_SEMAPHORE_B))
        two = (_f("SEMAPHORE_PAYLOAD_SIZE").decode(d)  # type: ignore[attr-defined]
               == HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_PAYLOAD_SIZE_TWO_WORD)
        payload = self._get(HW.NVC8B5_SET_SEMAPHORE_PAYLOAD)
        if two:
            payload |= self._get(HW.NVC8B5_SET_SEMAPHORE_PAYLOAD_UPPER) << 32
        size = 8 if two else 4
        if va % size:
            raise self._error(where, f"semaphore address {va:#x} is not {size}-byte aligned")
        pt = self.ch.pt
        if _f("SEMAPHORE_REDUCTION_ENABLE").decode(d):  # type: ignore[attr-defined]
            red = S.CE_REDUCTIONS.get(_f("SEMAPHORE_REDUCTION").decode(d))  # type: ignore[attr-defined]
            if red is None:
                raise self._error(where, f"semaphore reduction {_f('SEMAPHORE_REDUCTION').decode(d)} is not an "
                                         f"integer reduction")
            signed = (_f("SEMAPHORE_REDUCTION_SIGN").decode(d)  # type: ignore[attr-defined]
                      == HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_REDUCTION_SIGN_SIGNED)
            S.reduce(pt, va, red, payload, size, signed)
        else:
            S.write(pt, va, payload, size)
        if sem == HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_TYPE_RELEASE_FOUR_WORD_SEMAPHORE:
            if size == 4:
                S.write(pt, va + 4, 0, 4)
            S.write_timestamp(pt, va)
        elif sem == HW.NVC8B5_LAUNCH_DMA_SEMAPHORE_TYPE_RELEASE_CONDITIONAL_INTR_SEMAPHORE:
            pass   # the release above; the interrupt is not modelled


def _read_spans(pt: GpuPageTable, va: int, n: int) -> bytes:
    return b"".join(hostmem.read(a, k) for a, k in host_spans(pt, va, n, "read"))


def _write_spans(pt: GpuPageTable, va: int, data: bytes) -> None:
    pos = 0
    for a, k in host_spans(pt, va, len(data), "write"):
        hostmem.write(a, data[pos:pos + k])
        pos += k
