"""Reader of kgsl GPU snapshots (``/sys/class/kgsl/kgsl-3d0/snapshot/dump``), written from the format
kgsl itself writes (``kgsl_snapshot.h`` and the writers in ``kgsl_snapshot.c``, ``adreno_snapshot.c``,
``adreno_a6xx_snapshot.c`` of qualcomm-linux/kgsl; ids and magics from ``hwdrv.qcom.gen.kgsl_snapshot``).

File: ``kgsl_snapshot_header {u32 magic, gpuid, chipid}``, then sections, each behind a
``kgsl_snapshot_section_header {u16 magic 0xABCD, u16 id, u32 size incl. this header}``, up to END.
The section bodies are ``__packed`` little-endian structs (the cffi generator cannot express
``__packed``, so their field order is spelled here as ``struct`` formats named after the C structs).

Every section kind a6xx kgsl writes is decoded: OS (linux v1/v2/v4 + context records), REGS
(offset/value pairs), REGS_V2 (``adreno_snapshot_registers_v2``'s runs), INDEXED_REGS, MVC/MVC_V2
(cluster register runs), RB/RB_V2, IB/IB_V2, GPU_OBJECT/_V2, MEMLIST_V2, SHADER/_V2, DEBUG,
DEBUGBUS/SIDE_DEBUGBUS (kept raw). Others are listed in ``Snapshot.unknown``, not fatal. A truncated
or garbled file raises :class:`InvalidArgument` naming the byte offset.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidArgument
from .gen import kgsl_snapshot as S

HEADER = struct.Struct("<III")                          # kgsl_snapshot_header
SECTION = struct.Struct("<HHI")                         # kgsl_snapshot_section_header
OS_V1 = struct.Struct("<iiIIIIIIIIII32s32s16s")         # kgsl_snapshot_linux
OS_V2 = struct.Struct("<iIIIIIIQIII32s32s16s")          # kgsl_snapshot_linux_v2 (OS_LINUX_V3)
OS_V4 = struct.Struct("<iIIIIIIQQIIIII32s32s16s16s")    # kgsl_snapshot_linux_v4
CTX_V1 = struct.Struct("<III")                          # kgsl_snapshot_linux_context
CTX_V2 = struct.Struct("<IIII")                         # kgsl_snapshot_linux_context_v2
REGS = struct.Struct("<I")                              # kgsl_snapshot_regs
INDEXED = struct.Struct("<IIii")                        # kgsl_snapshot_indexed_regs
MVC_V1 = struct.Struct("<ii")                           # kgsl_snapshot_mvc_regs
MVC_V2 = struct.Struct("<iiii")                         # kgsl_snapshot_mvc_regs_v2
RB_V1 = struct.Struct("<iiiiiiII")                      # kgsl_snapshot_rb
RB_V2 = struct.Struct("<iiiiiiIIQI")                    # kgsl_snapshot_rb_v2
IB_V1 = struct.Struct("<IIi")                           # kgsl_snapshot_ib
IB_V2 = struct.Struct("<QQQ")                           # kgsl_snapshot_ib_v2
OBJ_V1 = struct.Struct("<iIIi")                         # kgsl_snapshot_gpu_object
OBJ_V2 = struct.Struct("<iQQQ")                         # kgsl_snapshot_gpu_object_v2
MEMLIST_V2 = struct.Struct("<iQ")                       # kgsl_snapshot_mem_list_v2
MEM_ENTRY_V2 = struct.Struct("<QQI")                    # struct mem_entry (adreno_snapshot.c)
SHADER_V1 = struct.Struct("<iii")                       # kgsl_snapshot_shader
SHADER_V2 = struct.Struct("<iiiiiI")                    # kgsl_snapshot_shader_v2
DEBUG = struct.Struct("<ii")                            # kgsl_snapshot_debug
DEBUGBUS = struct.Struct("<ii")                         # kgsl_snapshot_debugbus
SIDE_DEBUGBUS = struct.Struct("<iii")                   # kgsl_snapshot_side_debugbus

#: REGS_V2 / MVC run header: bit 31 set marks a single register (REGS_V2) or a run start (MVC)
RUN_FLAG = 1 << 31

SECTION_NAMES = {v: k[len("KGSL_SNAPSHOT_SECTION_"):] for k, v in vars(S).items()
                 if k.startswith("KGSL_SNAPSHOT_SECTION_") and isinstance(v, int)}
OBJECT_TYPES = {v: k[len("SNAPSHOT_GPU_OBJECT_"):] for k, v in vars(S).items()
                if k.startswith("SNAPSHOT_GPU_OBJECT_") and isinstance(v, int)}
DEBUG_TYPES = {v: k[len("SNAPSHOT_DEBUG_"):] for k, v in vars(S).items()
               if k.startswith("SNAPSHOT_DEBUG_") and isinstance(v, int)}


@dataclass
class Section:
    """One section as it lies in the file."""
    id: int
    offset: int          # byte offset of its header
    size: int            # bytes, header included

    @property
    def name(self) -> str:
        return SECTION_NAMES.get(self.id, f"{self.id:#06x}")


@dataclass
class ContextRecord:
    id: int
    queued: int
    consumed: int | None
    retired: int


@dataclass
class OsInfo:
    osid: int
    seconds: int
    ptbase: int
    pid: int
    current_context: int
    release: str
    version: str
    comm: str
    contexts: list[ContextRecord] = field(default_factory=list)


@dataclass
class Ring:
    """An RB/RB_V2 section: ``dwords[i]`` is ring dword ``start + i``; rptr/wptr are ring indices."""
    start: int
    end: int
    rbsize: int
    wptr: int
    rptr: int
    ts_queued: int
    ts_retired: int
    gpuaddr: int
    id: int
    dwords: np.ndarray


@dataclass
class Buffer:
    """GPU memory the snapshot holds: an IB (IB/IB_V2) or a GPU object (GPU_OBJECT/_V2)."""
    kind: str            # "IB" or the object type (SHADER, IB, GENERIC, DRAW, GLOBAL)
    gpuaddr: int
    ptbase: int
    data: bytes

    @property
    def dwords(self) -> np.ndarray:
        return np.frombuffer(self.data[:len(self.data) // 4 * 4], "<u4")

    def contains(self, addr: int, nbytes: int = 1) -> bool:
        return self.gpuaddr <= addr and addr + nbytes <= self.gpuaddr + len(self.data)


@dataclass
class IndexedRegs:
    index_reg: int
    data_reg: int
    start: int
    values: list[int]


@dataclass
class ClusterRegs:
    """MVC/MVC_V2: a register cluster's values for one context (ctxt_id 0/1)."""
    ctxt_id: int
    cluster_id: int
    pipe_id: int | None
    location_id: int | None
    regs: dict[int, int]


@dataclass
class MemEntry:
    gpuaddr: int
    size: int
    memtype: int


@dataclass
class ShaderBlock:
    type: int
    index: int
    usptp: int | None
    pipe_id: int | None
    location: int | None
    dwords: list[int]


@dataclass
class DebugBlock:
    section: str         # DEBUG, DEBUGBUS, SIDE_DEBUGBUS
    type: int            # DEBUG type or debug-bus id
    dwords: list[int]

    @property
    def name(self) -> str:
        return DEBUG_TYPES.get(self.type, str(self.type)) if self.section == "DEBUG" else f"bus {self.type}"


@dataclass
class Snapshot:
    """A parsed kgsl snapshot."""
    gpuid: int
    chipid: int
    sections: list[Section] = field(default_factory=list)
    os: OsInfo | None = None
    regs: dict[int, int] = field(default_factory=dict)          # REGS and REGS_V2, first value wins
    indexed: list[IndexedRegs] = field(default_factory=list)
    clusters: list[ClusterRegs] = field(default_factory=list)
    rings: list[Ring] = field(default_factory=list)
    ibs: list[Buffer] = field(default_factory=list)
    objects: list[Buffer] = field(default_factory=list)
    memlist: list[MemEntry] = field(default_factory=list)
    shaders: list[ShaderBlock] = field(default_factory=list)
    debug: list[DebugBlock] = field(default_factory=list)
    unknown: list[Section] = field(default_factory=list)

    def indexed_block(self, index_reg: int) -> IndexedRegs | None:
        """The INDEXED_REGS section read through ``index_reg`` (e.g. CP_SQE_STAT_ADDR)."""
        return next((b for b in self.indexed if b.index_reg == index_reg), None)

    def buffers(self) -> list[Buffer]:
        """Every piece of GPU memory the snapshot holds (IBs first)."""
        return [*self.ibs, *self.objects]

    def read(self, addr: int, nbytes: int) -> bytes | None:
        """``nbytes`` at GPU address ``addr`` if one buffer of the snapshot holds them all."""
        for b in self.buffers():
            if b.contains(addr, nbytes):
                return b.data[addr - b.gpuaddr:addr - b.gpuaddr + nbytes]
        return None


def is_snapshot(data: bytes) -> bool:
    """Does ``data`` start with the kgsl snapshot magic?"""
    return len(data) >= 4 and struct.unpack_from("<I", data, 0)[0] == S.SNAPSHOT_MAGIC


class _Body:
    """Bounds-checked reads inside one section body; errors name the file offset."""

    def __init__(self, data: bytes, sec: Section):
        self.data, self.sec = data, sec
        self.base = sec.offset + SECTION.size
        self.end = sec.offset + sec.size

    def fail(self, what: str, at: int) -> InvalidArgument:
        return InvalidArgument(f"kgsl snapshot: {self.sec.name} section at offset {self.sec.offset:#x}: {what} "
                               f"(at offset {at:#x}); the file is truncated or not a kgsl snapshot")

    def unpack(self, st: struct.Struct, pos: int) -> tuple:
        at = self.base + pos
        if at + st.size > self.end:
            raise self.fail(f"needs {st.size} bytes for its header, {self.end - at} remain", at)
        return st.unpack_from(self.data, at)

    def dwords(self, pos: int, count: int, what: str) -> list[int]:
        at = self.base + pos
        if count < 0 or at + 4 * count > self.end:
            raise self.fail(f"{what}: {count} dwords do not fit the {self.end - at} bytes left", at)
        return list(struct.unpack_from(f"<{count}I", self.data, at))

    def raw(self, pos: int, nbytes: int, what: str) -> bytes:
        at = self.base + pos
        if nbytes < 0 or at + nbytes > self.end:
            raise self.fail(f"{what}: {nbytes} bytes do not fit the {self.end - at} bytes left", at)
        return bytes(self.data[at:at + nbytes])

    @property
    def size(self) -> int:
        return self.end - self.base


def _text(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("latin-1")


def parse(data: bytes) -> Snapshot:
    """Parse a kgsl snapshot. Raises :class:`InvalidArgument` (naming the offset) when it is not one
    or is cut short; sections this reader does not decode are kept in ``Snapshot.unknown``."""
    data = bytes(data)
    if len(data) < HEADER.size:
        raise InvalidArgument(f"kgsl snapshot: {len(data)} bytes is shorter than the {HEADER.size}-byte file "
                              "header (kgsl_snapshot_header)")
    magic, gpuid, chipid = HEADER.unpack_from(data, 0)
    if magic != S.SNAPSHOT_MAGIC:
        raise InvalidArgument(f"kgsl snapshot: magic {magic:#010x} at offset 0, expected {S.SNAPSHOT_MAGIC:#010x}; "
                              "read /sys/class/kgsl/kgsl-3d0/snapshot/dump from offset 0")
    snap = Snapshot(gpuid, chipid)
    off = HEADER.size
    while True:
        if off + SECTION.size > len(data):
            raise InvalidArgument(f"kgsl snapshot: truncated at offset {off:#x}: no section header and no END "
                                  f"section ({len(data)} bytes in all)")
        smagic, sid, size = SECTION.unpack_from(data, off)
        if smagic != S.SNAPSHOT_SECTION_MAGIC:
            raise InvalidArgument(f"kgsl snapshot: section header at offset {off:#x} has magic {smagic:#06x}, "
                                  f"expected {S.SNAPSHOT_SECTION_MAGIC:#06x}")
        if size < SECTION.size or off + size > len(data):
            raise InvalidArgument(f"kgsl snapshot: section {SECTION_NAMES.get(sid, hex(sid))} at offset {off:#x} "
                                  f"claims {size} bytes; {len(data) - off} remain (minimum {SECTION.size})")
        sec = Section(sid, off, size)
        snap.sections.append(sec)
        off += size
        if sid == S.KGSL_SNAPSHOT_SECTION_END:
            return snap
        handler = _HANDLERS.get(sid)
        if handler is None:
            snap.unknown.append(sec)
        else:
            handler(snap, _Body(data, sec))


def _os(snap: Snapshot, b: _Body) -> None:
    (osid,) = b.unpack(struct.Struct("<i"), 0)
    if osid == S.KGSL_SNAPSHOT_OS_LINUX_V4:
        f = b.unpack(OS_V4, 0)
        info = OsInfo(osid, f[1], f[7], f[9], f[11], _text(f[14]), _text(f[15]), _text(f[16]))
        n, pos, ctx = f[13], OS_V4.size, CTX_V2
    elif osid == S.KGSL_SNAPSHOT_OS_LINUX_V3:
        f = b.unpack(OS_V2, 0)
        info = OsInfo(osid, f[1], f[7], f[8], f[9], _text(f[11]), _text(f[12]), _text(f[13]))
        n, pos, ctx = f[10], OS_V2.size, CTX_V2
    elif osid == S.KGSL_SNAPSHOT_OS_LINUX:
        f = b.unpack(OS_V1, 0)
        info = OsInfo(osid, f[2], f[8], f[9], f[10], _text(f[12]), _text(f[13]), _text(f[14]))
        n, pos, ctx = f[11], OS_V1.size, CTX_V1
    else:
        raise b.fail(f"unknown OS id {osid:#x} (known: linux {S.KGSL_SNAPSHOT_OS_LINUX:#x}, v3 "
                     f"{S.KGSL_SNAPSHOT_OS_LINUX_V3:#x}, v4 {S.KGSL_SNAPSHOT_OS_LINUX_V4:#x})", b.base)
    if n < 0 or pos + n * ctx.size > b.size:
        raise b.fail(f"{n} context records do not fit", b.base + pos)
    for i in range(n):
        r = b.unpack(ctx, pos + i * ctx.size)
        info.contexts.append(ContextRecord(r[0], r[1], r[2], r[3]) if ctx is CTX_V2
                             else ContextRecord(r[0], r[1], None, r[2]))
    snap.os = info


def _regs(snap: Snapshot, b: _Body) -> None:
    (n,) = b.unpack(REGS, 0)
    words = b.dwords(REGS.size, 2 * n, "register pairs")
    for i in range(0, len(words), 2):
        snap.regs.setdefault(words[i], words[i + 1])


def _regs_v2(snap: Snapshot, b: _Body) -> None:
    """adreno_snapshot_registers_v2: ``RUN_FLAG | reg, value`` for one register, else ``reg, count, values``."""
    words = b.dwords(0, b.size // 4, "REGS_V2 runs")
    i = 0
    while i < len(words):
        w = words[i]
        if w & RUN_FLAG:
            if i + 1 >= len(words):
                raise b.fail(f"register {w & ~RUN_FLAG:#x} has no value", b.base + 4 * i)
            snap.regs.setdefault(w & ~RUN_FLAG, words[i + 1])
            i += 2
            continue
        if i + 1 >= len(words) or i + 2 + words[i + 1] > len(words):
            raise b.fail(f"run of registers from {w:#x} is cut short", b.base + 4 * i)
        cnt = words[i + 1]
        for k in range(cnt):
            snap.regs.setdefault(w + k, words[i + 2 + k])
        i += 2 + cnt


def _indexed(snap: Snapshot, b: _Body) -> None:
    idx, dat, start, count = b.unpack(INDEXED, 0)
    snap.indexed.append(IndexedRegs(idx, dat, start, b.dwords(INDEXED.size, count, "indexed register data")))


def _mvc(snap: Snapshot, b: _Body, v2: bool) -> None:
    """a6xx_snapshot_mvc: runs of ``RUN_FLAG | start, end, values[end - start + 1]``."""
    hdr = b.unpack(MVC_V2 if v2 else MVC_V1, 0)
    pos = (MVC_V2 if v2 else MVC_V1).size
    words = b.dwords(pos, (b.size - pos) // 4, "cluster register runs")
    regs: dict[int, int] = {}
    i = 0
    while i < len(words):
        start = words[i]
        if not start & RUN_FLAG or i + 1 >= len(words):
            raise b.fail(f"cluster register run header {start:#x} lacks bit 31 or its end", b.base + pos + 4 * i)
        start &= ~RUN_FLAG
        end = words[i + 1]
        n = end - start + 1
        if n < 1 or i + 2 + n > len(words):
            raise b.fail(f"cluster register run {start:#x}..{end:#x} is cut short", b.base + pos + 4 * i)
        for k in range(n):
            regs[start + k] = words[i + 2 + k]
        i += 2 + n
    snap.clusters.append(ClusterRegs(hdr[0], hdr[1], hdr[2] if v2 else None, hdr[3] if v2 else None, regs))


def _rb(snap: Snapshot, b: _Body, v2: bool) -> None:
    f = b.unpack(RB_V2 if v2 else RB_V1, 0)
    start, end, rbsize, wptr, rptr, count = f[:6]
    words = b.dwords((RB_V2 if v2 else RB_V1).size, count, "ring dwords")
    if rbsize <= 0 or not (0 <= rptr < rbsize and 0 <= wptr < rbsize):
        raise b.fail(f"ring size {rbsize} with rptr {rptr}, wptr {wptr} is not a ring", b.base)
    snap.rings.append(Ring(start, end, rbsize, wptr, rptr, f[6], f[7], f[8] if v2 else 0, f[9] if v2 else 0,
                           np.array(words, dtype=np.uint32)))


def _ib(snap: Snapshot, b: _Body, v2: bool) -> None:
    st = IB_V2 if v2 else IB_V1
    addr, ptbase, n = b.unpack(st, 0)
    snap.ibs.append(Buffer("IB", addr, ptbase, b.raw(st.size, 4 * n, "IB contents")))


def _obj(snap: Snapshot, b: _Body, v2: bool) -> None:
    st = OBJ_V2 if v2 else OBJ_V1
    typ, addr, ptbase, n = b.unpack(st, 0)
    snap.objects.append(Buffer(OBJECT_TYPES.get(typ, str(typ)), addr, ptbase, b.raw(st.size, 4 * n, "object data")))


def _memlist(snap: Snapshot, b: _Body) -> None:
    """MEMLIST_V2: the faulting process's buffers as (gpuaddr, size in bytes, memtype)."""
    st, ent = MEMLIST_V2, MEM_ENTRY_V2
    n, _ = b.unpack(st, 0)
    if n < 0 or st.size + n * ent.size > b.size:
        raise b.fail(f"{n} memory-list entries do not fit", b.base)
    for i in range(n):
        snap.memlist.append(MemEntry(*b.unpack(ent, st.size + i * ent.size)))


def _shader(snap: Snapshot, b: _Body, v2: bool) -> None:
    if v2:
        t, idx, usptp, pipe, loc, n = b.unpack(SHADER_V2, 0)
        snap.shaders.append(ShaderBlock(t, idx, usptp, pipe, loc, b.dwords(SHADER_V2.size, n, "shader block")))
    else:
        t, idx, n = b.unpack(SHADER_V1, 0)
        snap.shaders.append(ShaderBlock(t, idx, None, None, None, b.dwords(SHADER_V1.size, n, "shader block")))


def _debug(snap: Snapshot, b: _Body) -> None:
    t, n = b.unpack(DEBUG, 0)
    snap.debug.append(DebugBlock("DEBUG", t, b.dwords(DEBUG.size, n, "debug data")))


def _debugbus(snap: Snapshot, b: _Body, side: bool) -> None:
    st = SIDE_DEBUGBUS if side else DEBUGBUS
    f = b.unpack(st, 0)
    # the a6xx writers store two dwords per bus index; keep whatever the section holds
    snap.debug.append(DebugBlock("SIDE_DEBUGBUS" if side else "DEBUGBUS", f[0],
                                 b.dwords(st.size, (b.size - st.size) // 4, "debug bus data")))


_HANDLERS = {
    S.KGSL_SNAPSHOT_SECTION_OS: _os,
    S.KGSL_SNAPSHOT_SECTION_REGS: _regs,
    S.KGSL_SNAPSHOT_SECTION_REGS_V2: _regs_v2,
    S.KGSL_SNAPSHOT_SECTION_INDEXED_REGS: _indexed,
    S.KGSL_SNAPSHOT_SECTION_MVC: lambda s, b: _mvc(s, b, False),
    S.KGSL_SNAPSHOT_SECTION_MVC_V2: lambda s, b: _mvc(s, b, True),
    S.KGSL_SNAPSHOT_SECTION_RB: lambda s, b: _rb(s, b, False),
    S.KGSL_SNAPSHOT_SECTION_RB_V2: lambda s, b: _rb(s, b, True),
    S.KGSL_SNAPSHOT_SECTION_IB: lambda s, b: _ib(s, b, False),
    S.KGSL_SNAPSHOT_SECTION_IB_V2: lambda s, b: _ib(s, b, True),
    S.KGSL_SNAPSHOT_SECTION_GPU_OBJECT: lambda s, b: _obj(s, b, False),
    S.KGSL_SNAPSHOT_SECTION_GPU_OBJECT_V2: lambda s, b: _obj(s, b, True),
    S.KGSL_SNAPSHOT_SECTION_MEMLIST_V2: _memlist,
    S.KGSL_SNAPSHOT_SECTION_SHADER: lambda s, b: _shader(s, b, False),
    S.KGSL_SNAPSHOT_SECTION_SHADER_V2: lambda s, b: _shader(s, b, True),
    S.KGSL_SNAPSHOT_SECTION_DEBUG: _debug,
    S.KGSL_SNAPSHOT_SECTION_DEBUGBUS: lambda s, b: _debugbus(s, b, False),
    S.KGSL_SNAPSHOT_SECTION_SIDE_DEBUGBUS: lambda s, b: _debugbus(s, b, True),
}
