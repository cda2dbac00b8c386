"""The mock /dev/nvidia-uvm: raw-number ioctls, each params struct ending in rmStatus.

UVM copies sizeof(params) for the command whatever the caller meant (no size check) and reports
through rmStatus while the ioctl succeeds. Until UVM_INITIALIZE succeeds on an fd every other
command answers NV_ERR_ILLEGAL_ACTION (UVM_MM_INITIALIZE is the one meant for a second,
uninitialized fd; on an initialized fd it is NV_ERR_IN_USE). Registered GPU VA spaces are the RM
FERMI_VASPACE_A page tables; MAP_EXTERNAL_ALLOCATION maps RM memory into them.

Peers (uvm_va_space.c / uvm_map_external.c of 580.142): a VA space holding several GPUs of one
mock machine enables NVLink pairs by itself when the second GPU registers (register_gpu_peers);
PCIe pairs need UVM_ENABLE_PEER_ACCESS, which answers NV_ERR_INVALID_DEVICE for an unregistered
GPU, a GPU paired with itself, an NVLink pair or a pair already enabled, and NV_ERR_NOT_SUPPORTED
where the bus has no P2P link (parent_peers_init). Mapping another GPU's video memory needs the
pair enabled (NV_ERR_INVALID_DEVICE otherwise); system memory maps on any registered GPU.
"""
from __future__ import annotations

import errno as E
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from hwdrv.errors import OutOfMemory
from hwdrv.ioctl import hostmem
from hwdrv.mock.gpumem import GpuPageTable
from hwdrv.mock.kernel import Errno, MockDriver

from . import facts as F
from .backing import MemBacking
from .objects import Channel, Memory, RmObject, RmStatus, VaSpace

NV = F.NV
ffi = NV.ffi


@dataclass
class Range:
    """A UVM VA range: "external" (CREATE_EXTERNAL_RANGE) or "channel" (REGISTER_CHANNEL)."""
    base: int
    length: int
    kind: str
    maps: list[tuple[int, int, Any, Any]] = field(default_factory=list)   # (va, size, owner, page table)
    backing: MemBacking | None = None
    channel: Channel | None = None
    gpu: bytes = b""          # channel ranges: the GPU whose channel it is


class UvmFd:
    """Per-open UVM state: "new" | "va_space" (after INITIALIZE) | "mm" (after MM_INITIALIZE)."""

    def __init__(self) -> None:
        self.kind = "new"
        self.flags = 0
        self.gpus: set[bytes] = set()
        self.vaspace: dict[bytes, VaSpace] = {}
        #: GPU pairs with peer access in this VA space (NVLink: automatic; PCIe: ENABLE_PEER_ACCESS)
        self.peers: set[frozenset[bytes]] = set()
        #: UVM ranges sorted by base (they never overlap), with their bases for bisection:
        #: lookups stay O(log n) with thousands of live allocations
        self.ranges: list[Range] = []
        self._bases: list[int] = []
        #: id(Memory) -> the ranges it was mapped into (so freeing it touches only those)
        self.by_mem: dict[int, list[Range]] = {}

    def add_range(self, r: Range) -> None:
        i = bisect_right(self._bases, r.base)
        self._bases.insert(i, r.base)
        self.ranges.insert(i, r)

    def remove_range(self, r: Range) -> None:
        i = bisect_right(self._bases, r.base) - 1
        while self.ranges[i] is not r:
            i -= 1
        del self._bases[i], self.ranges[i]

    def at(self, base: int) -> Range | None:
        """The range starting at ``base``."""
        i = bisect_right(self._bases, base) - 1
        return self.ranges[i] if i >= 0 and self._bases[i] == base else None

    def containing(self, base: int, length: int) -> Range | None:
        """The range holding all of [base, base + length)."""
        i = bisect_right(self._bases, base) - 1
        if i >= 0:
            r = self.ranges[i]
            if base + length <= r.base + r.length:
                return r
        return None

    def pt(self, uuid: bytes) -> GpuPageTable:
        if uuid not in self.gpus:
            raise RmStatus("NV_ERR_INVALID_DEVICE", f"GPU {uuid.hex()} is not registered (UVM_REGISTER_GPU)")
        vas = self.vaspace.get(uuid)
        if vas is None:
            raise RmStatus("NV_ERR_INVALID_DEVICE", f"GPU {uuid.hex()} has no registered VA space "
                                                    f"(UVM_REGISTER_GPU_VASPACE)")
        return vas.pt

    def overlapping(self, base: int, length: int) -> Range | None:
        i = max(bisect_right(self._bases, base) - 1, 0)
        for r in self.ranges[i:i + 2]:
            if r.base < base + length and base < r.base + r.length:
                return r
        i = bisect_right(self._bases, base + length - 1) - 1     # a range starting inside
        if i >= 0:
            r = self.ranges[i]
            if r.base < base + length and base < r.base + r.length:
                return r
        return None


class UvmDriver(MockDriver):
    """/dev/nvidia-uvm of the mock."""

    name = "nvidia-uvm"

    def __init__(self, rm: Any):
        self.rm = rm
        rm.uvm = self
        self.fds: list[UvmFd] = []
        self._dispatch = {
            NV.UVM_INITIALIZE: ("UVM_INITIALIZE_PARAMS", self._initialize),
            NV.UVM_MM_INITIALIZE: ("UVM_MM_INITIALIZE_PARAMS", self._mm_initialize),
            NV.UVM_REGISTER_GPU: ("UVM_REGISTER_GPU_PARAMS", self._register_gpu),
            NV.UVM_UNREGISTER_GPU: ("UVM_UNREGISTER_GPU_PARAMS", self._unregister_gpu),
            NV.UVM_REGISTER_GPU_VASPACE: ("UVM_REGISTER_GPU_VASPACE_PARAMS", self._register_vaspace),
            NV.UVM_UNREGISTER_GPU_VASPACE: ("UVM_UNREGISTER_GPU_VASPACE_PARAMS", self._unregister_vaspace),
            NV.UVM_REGISTER_CHANNEL: ("UVM_REGISTER_CHANNEL_PARAMS", self._register_channel),
            NV.UVM_UNREGISTER_CHANNEL: ("UVM_UNREGISTER_CHANNEL_PARAMS", self._unregister_channel),
            NV.UVM_CREATE_EXTERNAL_RANGE: ("UVM_CREATE_EXTERNAL_RANGE_PARAMS", self._create_range),
            NV.UVM_MAP_EXTERNAL_ALLOCATION: ("UVM_MAP_EXTERNAL_ALLOCATION_PARAMS", self._map_external),
            NV.UVM_FREE: ("UVM_FREE_PARAMS", self._free),
            NV.UVM_ENABLE_PEER_ACCESS: ("UVM_ENABLE_PEER_ACCESS_PARAMS", self._enable_peer),
            NV.UVM_DISABLE_PEER_ACCESS: ("UVM_DISABLE_PEER_ACCESS_PARAMS", self._disable_peer),
            NV.UVM_UNMAP_EXTERNAL: ("UVM_UNMAP_EXTERNAL_PARAMS", self._unmap_external),
        }

    def open(self, path: str, flags: int) -> UvmFd:
        st = UvmFd()
        self.fds.append(st)
        return st

    def close(self, state: UvmFd) -> None:
        with self.rm.lock:
            for r in list(state.ranges):
                self._drop_range(state, r)
            if state in self.fds:
                self.fds.remove(state)

    def mmap(self, state: UvmFd, addr: int, size: int, prot: int, flags: int, offset: int) -> int:
        if state.kind != "va_space":
            raise Errno(E.EBADFD, "mmap on a UVM fd before UVM_INITIALIZE")
        raise Errno(E.EINVAL, "the mock UVM has no managed (cudaMallocManaged) memory to map")

    def ioctl(self, state: UvmFd, request: int, arg: int) -> int:
        spec = self._dispatch.get(request)
        if spec is None:
            raise Errno(E.EINVAL, f"UVM ioctl {request:#x} is not implemented by the mock")
        struct, fn = spec
        if not arg:
            raise Errno(E.EFAULT, "NULL UVM params")
        p = ffi.cast(struct + " *", arg)
        with self.rm.lock:
            try:
                if state.kind != "va_space" and request not in (NV.UVM_INITIALIZE, NV.UVM_MM_INITIALIZE):
                    raise RmStatus("NV_ERR_ILLEGAL_ACTION", "UVM_INITIALIZE must be the first ioctl on a UVM fd")
                fn(state, p)
                st = F.NV_OK
            except RmStatus as e:
                st, self.last_error = e.code, e.detail
            except OutOfMemory as e:
                st, self.last_error = F.status("NV_ERR_NO_MEMORY"), str(e)
        hostmem.write(arg + F.off(struct, "rmStatus"), st.to_bytes(4, "little"))
        return 0

    # ---- commands --------------------------------------------------------------------------------
    def _initialize(self, st: UvmFd, p: Any) -> None:
        if p.flags & ~NV.UVM_INIT_FLAGS_MASK:
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"UVM_INITIALIZE flags {p.flags:#x} outside the mask")
        if st.kind == "va_space":
            if p.flags != st.flags:
                raise RmStatus("NV_ERR_INVALID_ARGUMENT", "UVM_INITIALIZE again with different flags")
            return
        if st.kind == "mm":
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", "this fd holds an mm (UVM_MM_INITIALIZE); it is not a VA space")
        st.kind, st.flags = "va_space", int(p.flags)

    def _mm_initialize(self, st: UvmFd, p: Any) -> None:
        if st.kind != "new":
            raise RmStatus("NV_ERR_IN_USE", "UVM_MM_INITIALIZE goes on a second, uninitialized UVM fd")
        try:
            other = self.rm.kernel.state_of(p.uvmFd)
        except Exception:  # noqa: BLE001
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"uvmFd {p.uvmFd} is not open") from None
        if not isinstance(other, UvmFd) or other.kind != "va_space":
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"uvmFd {p.uvmFd} is not an initialized UVM fd")
        st.kind = "mm"

    def _register_gpu(self, st: UvmFd, p: Any) -> None:
        uuid = bytes(ffi.buffer(p.gpu_uuid.uuid))
        if self.rm.gpu_by_uuid(uuid) is None:
            raise RmStatus("NV_ERR_GPU_UUID_NOT_FOUND", f"no GPU with UUID {uuid.hex()}")
        if uuid in st.gpus:
            raise RmStatus("NV_ERR_INVALID_DEVICE", "GPU already registered with this VA space")
        if p.rmCtrlFd != -1:
            self.rm.fd_state(p.rmCtrlFd)
        # register_gpu_peers: NVLink peers of the new GPU are enabled at once
        for other in st.gpus:
            if self._link(uuid, other) == "nvlink":
                st.peers.add(frozenset((uuid, other)))
        st.gpus.add(uuid)
        p.numaEnabled, p.numaNodeId = 0, -1

    def _unregister_gpu(self, st: UvmFd, p: Any) -> None:
        uuid = bytes(ffi.buffer(p.gpu_uuid.uuid))
        if uuid not in st.gpus:
            raise RmStatus("NV_ERR_INVALID_DEVICE", "GPU is not registered")
        vas = st.vaspace.pop(uuid, None)
        if vas is not None:
            self._drop_gpu_maps(st, vas.pt)
            vas.uvm_owner = None
        st.peers = {pair for pair in st.peers if uuid not in pair}
        # uvm_va_space_unregister_gpu: the GPU's channels are unregistered with it
        for r in [r for r in st.ranges if r.kind == "channel" and r.gpu == uuid]:
            self._drop_range(st, r)
        st.gpus.discard(uuid)

    def _link(self, a: bytes, b: bytes) -> str:
        ga, gb = self.rm.gpu_by_uuid(a), self.rm.gpu_by_uuid(b)
        return self.rm.link(ga.ident.index, gb.ident.index)

    def _peer_pair(self, st: UvmFd, p: Any) -> tuple[bytes, bytes]:
        a, b = bytes(ffi.buffer(p.gpuUuidA.uuid)), bytes(ffi.buffer(p.gpuUuidB.uuid))
        if a not in st.gpus or b not in st.gpus:
            raise RmStatus("NV_ERR_INVALID_DEVICE", "both GPUs must be registered in this VA space")
        if a == b:
            raise RmStatus("NV_ERR_INVALID_DEVICE", "a GPU cannot be its own peer")
        return a, b

    def _enable_peer(self, st: UvmFd, p: Any) -> None:
        """uvm_api_enable_peer_access: PCIe peers only (NVLink peers are enabled at
        registration), each pair once."""
        a, b = self._peer_pair(st, p)
        link = self._link(a, b)
        if link == "none":
            raise RmStatus("NV_ERR_NOT_SUPPORTED", "the GPUs have no P2P link (nvUvmInterfaceGetP2PCaps: "
                                                   "no PCIe or NVLink peer connectivity)")
        if link != "pcie":
            raise RmStatus("NV_ERR_INVALID_DEVICE", f"the GPUs are {link} peers (enabled when registered); "
                                                    f"UVM_ENABLE_PEER_ACCESS is for PCIe peers")
        pair = frozenset((a, b))
        if pair in st.peers:
            raise RmStatus("NV_ERR_INVALID_DEVICE", "peer access between these GPUs is already enabled")
        st.peers.add(pair)

    def _disable_peer(self, st: UvmFd, p: Any) -> None:
        """uvm_api_disable_peer_access: PCIe pairs enabled before; peer mappings go away."""
        a, b = self._peer_pair(st, p)
        pair = frozenset((a, b))
        if self._link(a, b) != "pcie" or pair not in st.peers:
            raise RmStatus("NV_ERR_INVALID_DEVICE", "no PCIe peer access enabled between these GPUs")
        st.peers.discard(pair)
        for uuid, other in ((a, b), (b, a)):
            vas = st.vaspace.get(uuid)
            if vas is None:
                continue
            owner_gpu = self.rm.gpu_by_uuid(other)
            for r in st.ranges:
                for va, n, owner, pt in list(r.maps):
                    if pt is vas.pt and isinstance(owner, Memory) and owner.mem.kind == "vidmem" \
                            and owner.gpu is owner_gpu:
                        self._unmap(pt, r, va, n)

    def _unmap_external(self, st: UvmFd, p: Any) -> None:
        """uvm_api_unmap_external: drop one GPU's mappings in [base, base + length)."""
        base, length = int(p.base), int(p.length)
        self._check_range(base, length)
        r = st.containing(base, length)
        if r is None or r.kind != "external":
            raise RmStatus("NV_ERR_INVALID_ADDRESS", f"[{base:#x}, +{length:#x}) is not inside one external range")
        pt = st.pt(bytes(ffi.buffer(p.gpuUuid.uuid)))
        self._unmap(pt, r, base, length)

    def _rm_object(self, fd: int, h_client: int, h: int, kind: type, what: str) -> Any:
        ctl = self.rm.fd_state(fd)
        if ctl.kind != "ctl":
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"rmCtrlFd {fd} is not a /dev/nvidiactl fd")
        return self.rm.obj(self.rm.client(h_client), h, kind, what)

    def _register_vaspace(self, st: UvmFd, p: Any) -> None:
        uuid = bytes(ffi.buffer(p.gpuUuid.uuid))
        if uuid not in st.gpus:
            raise RmStatus("NV_ERR_INVALID_DEVICE", "UVM_REGISTER_GPU first")
        if uuid in st.vaspace:
            raise RmStatus("NV_ERR_INVALID_DEVICE", "a VA space is already registered for this GPU")
        vas = self._rm_object(p.rmCtrlFd, p.hClient, p.hVaSpace, VaSpace, "hVaSpace")
        if not vas.externally_owned:
            raise RmStatus("NV_ERR_INVALID_FLAGS", "the VA space was allocated without "
                                                   "NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED")
        if vas.uvm_owner is not None:
            raise RmStatus("NV_ERR_IN_USE", "that VA space is already owned by a UVM VA space")
        vas.uvm_owner = st
        st.vaspace[uuid] = vas

    def _unregister_vaspace(self, st: UvmFd, p: Any) -> None:
        uuid = bytes(ffi.buffer(p.gpuUuid.uuid))
        vas = st.vaspace.pop(uuid, None)
        if vas is None:
            raise RmStatus("NV_ERR_INVALID_DEVICE", "no VA space registered for this GPU")
        self._drop_gpu_maps(st, vas.pt)
        vas.uvm_owner = None

    @staticmethod
    def _check_range(base: int, length: int) -> None:
        if length == 0 or base % 4096 or length % 4096 or base + length > 1 << 57:
            raise RmStatus("NV_ERR_INVALID_ADDRESS", f"range [{base:#x}, +{length:#x}) must be 4 KiB aligned, "
                                                     f"nonempty and below 2^57")

    def _register_channel(self, st: UvmFd, p: Any) -> None:
        uuid = bytes(ffi.buffer(p.gpuUuid.uuid))
        pt = st.pt(uuid)
        ch = self._rm_object(p.rmCtrlFd, p.hClient, p.hChannel, Channel, "hChannel")
        if ch.gpu.pt is not pt:
            raise RmStatus("NV_ERR_INVALID_CHANNEL", "the channel does not use the registered GPU VA space")
        if any(r.channel is ch for r in st.ranges):
            raise RmStatus("NV_ERR_INVALID_CHANNEL", "channel already registered")
        base, length = int(p.base), int(p.length)
        self._check_range(base, length)
        if st.overlapping(base, length):
            raise RmStatus("NV_ERR_UVM_ADDRESS_IN_USE", f"[{base:#x}, +{length:#x}) overlaps a UVM range")
        # the channel's GR context buffers really live there: back the range with video memory
        mem = MemBacking("vidmem", length, pool=self.rm.gpu_by_uuid(uuid).vram, name=f"hwdrv-mock-nv-ctxbuf-{p.hChannel:#x}")
        pt.map(base, mem.host_addr, length)
        st.add_range(Range(base, length, "channel", [(base, length, None, pt)], mem, ch, uuid))

    def _unregister_channel(self, st: UvmFd, p: Any) -> None:
        ch = self.rm.obj(self.rm.client(p.hClient), p.hChannel, Channel, "hChannel")
        for r in st.ranges:
            if r.channel is ch:
                self._drop_range(st, r)
                return
        raise RmStatus("NV_ERR_INVALID_CHANNEL", "channel is not registered")

    def _create_range(self, st: UvmFd, p: Any) -> None:
        base, length = int(p.base), int(p.length)
        self._check_range(base, length)
        hit = st.overlapping(base, length)
        if hit is not None:
            raise RmStatus("NV_ERR_UVM_ADDRESS_IN_USE", f"[{base:#x}, +{length:#x}) overlaps the {hit.kind} range "
                                                        f"[{hit.base:#x}, +{hit.length:#x})")
        st.add_range(Range(base, length, "external"))

    def _map_external(self, st: UvmFd, p: Any) -> None:
        base, length, offset = int(p.base), int(p.length), int(p.offset)
        self._check_range(base, length)
        r = st.containing(base, length)
        if r is None or r.kind != "external":
            raise RmStatus("NV_ERR_INVALID_ADDRESS", f"[{base:#x}, +{length:#x}) is not inside one external range "
                                                     f"(UVM_CREATE_EXTERNAL_RANGE first)")
        n = int(p.gpuAttributesCount)
        if n == 0 or n > NV.UVM_MAX_GPUS:
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"gpuAttributesCount {n}")
        mem = self._rm_object(p.rmCtrlFd, p.hClient, p.hMemory, Memory, "hMemory")
        if offset % 4096 or offset + length > mem.size:
            raise RmStatus("NV_ERR_INVALID_LIMIT", f"offset {offset:#x} + length {length:#x} exceeds the "
                                                   f"{mem.size:#x}-byte allocation")
        # set_ext_gpu_map_location: the owning GPU must be registered here, and another GPU
        # maps the owner's video memory only as an enabled peer
        owner = next((u for u in st.gpus if self.rm.gpu_by_uuid(u) is mem.gpu), None)
        if owner is None:
            raise RmStatus("NV_ERR_INVALID_DEVICE", f"the GPU owning memory {p.hMemory:#x} is not registered "
                                                    f"in this VA space")
        for i in range(n):
            a = p.perGpuAttributes[i]
            uuid = bytes(ffi.buffer(a.gpuUuid.uuid))
            pt = st.pt(uuid)
            if uuid != owner and mem.mem.kind == "vidmem" and frozenset((uuid, owner)) not in st.peers:
                raise RmStatus("NV_ERR_INVALID_DEVICE", f"GPU {uuid.hex()} maps video memory of GPU {owner.hex()} "
                                                        f"without peer access (UVM_ENABLE_PEER_ACCESS, or an "
                                                        f"NVLink pair)")
        for i in range(n):
            a = p.perGpuAttributes[i]
            uuid = bytes(ffi.buffer(a.gpuUuid.uuid))
            pt = st.pt(uuid)
            writable = a.gpuMappingType != NV.UvmGpuMappingTypeReadOnly
            self._unmap(pt, r, base, length)          # a new mapping replaces what was there
            pt.map(base, mem.mem.host_addr + offset, length, writable)
            r.maps.append((base, length, mem, pt))
            mem.gpu_maps.append((pt, base, length))
            st.by_mem.setdefault(id(mem), []).append(r)

    def _free(self, st: UvmFd, p: Any) -> None:
        base = int(p.base)
        r = st.at(base)
        if r is None:
            raise RmStatus("NV_ERR_INVALID_ADDRESS", f"{base:#x} is not the base of a UVM range")
        self._drop_range(st, r)

    # ---- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _unmap(pt: GpuPageTable, r: Range, base: int, length: int) -> None:
        """Drop ``pt``'s mappings in ``r`` that overlap [base, base + length)."""
        keep = []
        for va, n, owner, mpt in r.maps:
            if mpt is pt and va < base + length and base < va + n:
                try:
                    pt.unmap(va, n)
                except Exception:  # noqa: BLE001 - freed with its RM object already
                    pass
                if isinstance(owner, Memory):
                    owner.gpu_maps[:] = [m for m in owner.gpu_maps if not (m[0] is pt and m[1] == va)]
            else:
                keep.append((va, n, owner, mpt))
        r.maps = keep

    def _drop_gpu_maps(self, st: UvmFd, pt: GpuPageTable) -> None:
        """A GPU VA space leaves: every mapping in it goes (ranges stay for the other GPUs)."""
        for r in st.ranges:
            if r.kind == "external":
                self._unmap(pt, r, r.base, r.length)

    def _drop_range(self, st: UvmFd, r: Range) -> None:
        for pt in {id(m[3]): m[3] for m in r.maps}.values():
            self._unmap(pt, r, r.base, r.length)
        if r.channel is not None:
            try:
                r.channel.gpu.pt.unmap(r.base, r.length)
            except Exception:  # noqa: BLE001
                pass
        if r.backing is not None:
            r.backing.release()
        st.remove_range(r)

    def object_freed(self, obj: RmObject) -> None:
        """RM freed `obj`: forget UVM state that referred to it."""
        for st in self.fds:
            for uuid, vas in list(st.vaspace.items()):
                if vas is obj:
                    st.vaspace.pop(uuid)
            if isinstance(obj, Channel):
                candidates = [r for r in st.ranges if r.channel is obj]
            else:
                candidates = st.by_mem.pop(id(obj), [])
            for r in candidates:
                if r.channel is obj:
                    # the context buffers go with the channel: unmap before the pages are freed
                    for va, n, _, _ in r.maps:
                        try:
                            obj.gpu.pt.unmap(va, n)
                        except Exception:  # noqa: BLE001 - unmapped already
                            pass
                    r.maps, r.channel = [], None
                    if r.backing is not None:
                        r.backing.release()
                        r.backing = None
                r.maps = [m for m in r.maps if m[2] is not obj]

