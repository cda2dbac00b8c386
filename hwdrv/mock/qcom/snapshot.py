"""kgsl-format GPU snapshots: the writer the mock kernel uses after a fault, and a reader.

Layout (kgsl_snapshot.h; ids and magics from hwdrv.qcom.gen.kgsl_snapshot): a 12-byte file header
``kgsl_snapshot_header {u32 magic, gpuid, chipid}``, then sections, each with the 8-byte
``kgsl_snapshot_section_header {u16 magic 0xABCD, u16 id, u32 size incl. header}``, ending with an END
section. The section bodies are kgsl_snapshot.h's ``__packed`` structs, written here with little-endian
``struct`` formats in field order (the cffi generator cannot express ``__packed``):

* OS (``kgsl_snapshot_linux_v4`` + ``ctxtcount`` x ``kgsl_snapshot_linux_context_v2``)
* REGS (``kgsl_snapshot_regs {count}`` + count x (u32 offset in dwords, u32 value))
* RB_V2 (``kgsl_snapshot_rb_v2`` + the ring dwords)
* IB_V2 (``kgsl_snapshot_ib_v2 {gpuaddr, ptbase, size in dwords}`` + the IB dwords)
* GPU_OBJECT_V2 (``kgsl_snapshot_gpu_object_v2 {type, gpuaddr, ptbase, size dwords}`` + data)
* MEMLIST_V2 (``kgsl_snapshot_mem_list_v2 {num_entries, ptbase}`` + adreno_snapshot.c's packed
  ``mem_entry {u64 gpuaddr, u64 size, u32 type}`` per buffer of the faulting process)
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from hwdrv.errors import InvalidArgument
from hwdrv.qcom.gen import kgsl_snapshot as S

HEADER = struct.Struct("<III")                       # kgsl_snapshot_header
SECTION = struct.Struct("<HHI")                      # kgsl_snapshot_section_header
OS_V4 = struct.Struct("<iIIIIIIQQIIIII32s32s16s16s")  # kgsl_snapshot_linux_v4
OS_CTX_V2 = struct.Struct("<IIII")                   # kgsl_snapshot_linux_context_v2
REGS = struct.Struct("<I")                           # kgsl_snapshot_regs
RB_V2 = struct.Struct("<iiiiiiIIQI")                 # kgsl_snapshot_rb_v2
IB_V2 = struct.Struct("<QQQ")                        # kgsl_snapshot_ib_v2
GPU_OBJECT_V2 = struct.Struct("<iQQQ")               # kgsl_snapshot_gpu_object_v2
MEMLIST_V2 = struct.Struct("<iQ")                    # kgsl_snapshot_mem_list_v2
MEM_ENTRY = struct.Struct("<QQI")                    # adreno_snapshot.c struct mem_entry


@dataclass
class ContextRecord:
    id: int
    queued: int
    consumed: int
    retired: int


@dataclass
class Snapshot:
    """A parsed snapshot (what ``parse`` returns and ``build`` writes)."""

    gpuid: int
    chipid: int
    seconds: int = 0
    current_context: int = 0
    pid: int = 0
    comm: str = ""
    contexts: list[ContextRecord] = field(default_factory=list)
    regs: dict[int, int] = field(default_factory=dict)
    rb: dict | None = None                  # {start, end, rbsize, wptr, rptr, count, ts_queued, ts_retired, gpuaddr, id, data}
    ibs: list[tuple[int, list[int]]] = field(default_factory=list)          # (gpuaddr, dwords)
    objects: list[tuple[int, int, bytes]] = field(default_factory=list)     # (type, gpuaddr, data)
    memlist: list[tuple[int, int, int]] = field(default_factory=list)       # (gpuaddr, size bytes, memtype)
    unknown_sections: list[int] = field(default_factory=list)


def _section(sid: int, body: bytes) -> bytes:
    return SECTION.pack(S.SNAPSHOT_SECTION_MAGIC, sid, SECTION.size + len(body)) + body


def _dwords(words) -> bytes:
    return struct.pack(f"<{len(words)}I", *[int(w) & 0xFFFFFFFF for w in words])


def build(s: Snapshot, ptbase: int = 0) -> bytes:
    """Serialize ``s`` in kgsl's format."""
    out = [HEADER.pack(S.SNAPSHOT_MAGIC, s.gpuid, s.chipid)]
    os_body = OS_V4.pack(S.KGSL_SNAPSHOT_OS_LINUX_V4, s.seconds, 0, 0, 0, 0, 0, ptbase, 0, s.pid, 0,
                         s.current_context, 0, len(s.contexts), b"hwdrv-mock", b"", s.comm.encode()[:15], b"")
    os_body += b"".join(OS_CTX_V2.pack(c.id, c.queued, c.consumed, c.retired) for c in s.contexts)
    out.append(_section(S.KGSL_SNAPSHOT_SECTION_OS, os_body))
    regs = sorted(s.regs.items())
    out.append(_section(S.KGSL_SNAPSHOT_SECTION_REGS, REGS.pack(len(regs)) + b"".join(
        struct.pack("<II", r, v & 0xFFFFFFFF) for r, v in regs)))
    if s.rb is not None:
        rb = s.rb
        out.append(_section(S.KGSL_SNAPSHOT_SECTION_RB_V2, RB_V2.pack(
            rb["start"], rb["end"], rb["rbsize"], rb["wptr"], rb["rptr"], len(rb["data"]), rb["ts_queued"],
            rb["ts_retired"], rb["gpuaddr"], rb["id"]) + _dwords(rb["data"])))
    for addr, words in s.ibs:
        out.append(_section(S.KGSL_SNAPSHOT_SECTION_IB_V2, IB_V2.pack(addr, ptbase, len(words)) + _dwords(words)))
    for typ, addr, data in s.objects:
        pad = data + b"\0" * (-len(data) % 4)
        out.append(_section(S.KGSL_SNAPSHOT_SECTION_GPU_OBJECT_V2,
                            GPU_OBJECT_V2.pack(typ, addr, ptbase, len(pad) // 4) + pad))
    if s.memlist:
        out.append(_section(S.KGSL_SNAPSHOT_SECTION_MEMLIST_V2, MEMLIST_V2.pack(len(s.memlist), ptbase) + b"".join(
            MEM_ENTRY.pack(a, n, t) for a, n, t in s.memlist)))
    out.append(SECTION.pack(S.SNAPSHOT_SECTION_MAGIC, S.KGSL_SNAPSHOT_SECTION_END, SECTION.size))
    return b"".join(out)


def parse(data: bytes) -> Snapshot:
    """Read a kgsl snapshot (sections this reader does not decode are listed in ``unknown_sections``)."""
    if len(data) < HEADER.size:
        raise InvalidArgument(f"snapshot: {len(data)} bytes is shorter than the {HEADER.size}-byte header")
    magic, gpuid, chipid = HEADER.unpack_from(data, 0)
    if magic != S.SNAPSHOT_MAGIC:
        raise InvalidArgument(f"snapshot: magic {magic:#x}, expected {S.SNAPSHOT_MAGIC:#x}")
    s = Snapshot(gpuid, chipid)
    off = HEADER.size
    while True:
        if off + SECTION.size > len(data):
            raise InvalidArgument(f"snapshot: truncated at offset {off:#x} (no END section)")
        smagic, sid, size = SECTION.unpack_from(data, off)
        if smagic != S.SNAPSHOT_SECTION_MAGIC or size < SECTION.size or off + size > len(data):
            raise InvalidArgument(f"snapshot: bad section header at {off:#x} (magic {smagic:#x}, size {size})")
        body = data[off + SECTION.size:off + size]
        off += size
        if sid == S.KGSL_SNAPSHOT_SECTION_END:
            return s
        if sid == S.KGSL_SNAPSHOT_SECTION_OS:
            f = OS_V4.unpack_from(body, 0)
            s.seconds, s.pid, s.current_context, n = f[1], f[9], f[11], f[13]
            s.comm = f[16].rstrip(b"\0").decode(errors="replace")
            s.contexts = [ContextRecord(*OS_CTX_V2.unpack_from(body, OS_V4.size + i * OS_CTX_V2.size)) for i in range(n)]
        elif sid == S.KGSL_SNAPSHOT_SECTION_REGS:
            (n,) = REGS.unpack_from(body, 0)
            for i in range(n):
                r, v = struct.unpack_from("<II", body, REGS.size + 8 * i)
                s.regs[r] = v
        elif sid == S.KGSL_SNAPSHOT_SECTION_RB_V2:
            f = RB_V2.unpack_from(body, 0)
            keys = ("start", "end", "rbsize", "wptr", "rptr", "count", "ts_queued", "ts_retired", "gpuaddr", "id")
            s.rb = dict(zip(keys, f))
            s.rb["data"] = list(struct.unpack_from(f"<{f[5]}I", body, RB_V2.size))
        elif sid == S.KGSL_SNAPSHOT_SECTION_IB_V2:
            addr, _, n = IB_V2.unpack_from(body, 0)
            s.ibs.append((addr, list(struct.unpack_from(f"<{n}I", body, IB_V2.size))))
        elif sid == S.KGSL_SNAPSHOT_SECTION_GPU_OBJECT_V2:
            typ, addr, _, n = GPU_OBJECT_V2.unpack_from(body, 0)
            s.objects.append((typ, addr, bytes(body[GPU_OBJECT_V2.size:GPU_OBJECT_V2.size + 4 * n])))
        elif sid == S.KGSL_SNAPSHOT_SECTION_MEMLIST_V2:
            n, _ = MEMLIST_V2.unpack_from(body, 0)
            s.memlist = [MEM_ENTRY.unpack_from(body, MEMLIST_V2.size + i * MEM_ENTRY.size) for i in range(n)]
        else:
            s.unknown_sections.append(sid)
