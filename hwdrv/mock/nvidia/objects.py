"""The RM object tree of the mock: one class per RM class the mock can allocate.

Each object knows its handle, class, parent and children; freeing an object frees its children
first (RM frees a whole subtree). `RmStatus` is how any RM path fails: it carries the NV_STATUS
code that goes into the caller's struct, plus a mock-only detail for people.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hwdrv.mock.gpumem import GpuPageTable

from . import facts as F
from .backing import MemBacking

if TYPE_CHECKING:
    from .fifo import Channel as GpuChannel


class RmStatus(Exception):
    """An RM call fails with NV_STATUS `code` (written into the caller's status field)."""

    def __init__(self, code: int | str, detail: str = ""):
        self.code = F.status(code) if isinstance(code, str) else code
        self.detail = detail
        super().__init__(f"{F.status_name(self.code)}: {detail}")


class RmObject:
    """A node of a client's object tree."""

    def __init__(self, handle: int, cls: int, parent: "RmObject | None", client: "Client | None"):
        self.handle, self.cls, self.parent = handle, cls, parent
        self.client: Client = client if client is not None else self  # type: ignore[assignment]
        self.children: dict[int, RmObject] = {}
        self.freed = False

    def ancestor(self, kind: type) -> Any:
        """The nearest ancestor (or self) of type `kind`, or None."""
        o: RmObject | None = self
        while o is not None and not isinstance(o, kind):
            o = o.parent
        return o

    def on_free(self) -> None:
        """Release what this object holds (children are already freed)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.handle:#x} class {self.cls:#x}>"


class Client(RmObject):
    """NV01_ROOT_CLIENT: owns a handle namespace."""

    def __init__(self, handle: int, fd: int):
        super().__init__(handle, F.NV.NV01_ROOT_CLIENT, None, None)
        self.fd = fd                                 # the ctl fd that allocated it (freed on close)
        self.objects: dict[int, RmObject] = {handle: self}
        self.freed_handles: set[int] = set()        # stale handles answer OBJECT_NOT_FOUND
        self._next = 0xCAF00000

    def new_handle(self) -> int:
        while self._next in self.objects:
            self._next += 1
        h = self._next
        self._next += 1
        return h


class Device(RmObject):
    """NV01_DEVICE_0 (one GPU, ``gpu``). Owns the device's default VA space (RM makes one on
    demand)."""

    def __init__(self, *a, device_id: int = 0, gpu: Any = None):
        super().__init__(*a)
        self.device_id, self.gpu = device_id, gpu
        self.default_vaspace: GpuPageTable | None = None

    def vaspace(self) -> GpuPageTable:
        if self.default_vaspace is None:
            self.default_vaspace = GpuPageTable(f"mock-nv client {self.client.handle:#x} default VA space")
        return self.default_vaspace


class Subdevice(RmObject):
    """NV20_SUBDEVICE_0."""


class Usermode(RmObject):
    """HOPPER_USERMODE_A: the 64 KiB doorbell/timer page (`mem` is its backing)."""

    def __init__(self, *a, mem: MemBacking, bar1: bool = False, gpu: Any = None):
        super().__init__(*a)
        self.mem, self.bar1, self.gpu = mem, bar1, gpu
        self.cpu_maps: list[int] = []               # addresses where the caller mapped it

    def on_free(self) -> None:
        self.mem.release()


class Memory(RmObject):
    """NV01_MEMORY_LOCAL_USER / NV01_MEMORY_SYSTEM / NV01_MEMORY_SYSTEM_OS_DESCRIPTOR."""

    def __init__(self, *a, mem: MemBacking, attr: int = 0, attr2: int = 0, flags: int = 0):
        super().__init__(*a)
        self.mem, self.attr, self.attr2, self.flags = mem, attr, attr2, flags
        #: the GPU whose device the object was allocated under (UVM's "owning GPU")
        self.gpu = self.ancestor(Device).gpu
        self.gpu_maps: list[tuple[GpuPageTable, int, int]] = []    # (page table, va, size) via UVM

    @property
    def size(self) -> int:
        return self.mem.size

    def on_free(self) -> None:
        # RM unmaps a freed allocation from every VA space it is mapped in
        for pt, va, n in self.gpu_maps:
            try:
                pt.unmap(va, n)
            except Exception:   # noqa: BLE001 - already unmapped through UVM_FREE
                pass
        self.gpu_maps.clear()
        self.mem.release()


class VaSpace(RmObject):
    """FERMI_VASPACE_A: one GPU address space (the mock's GpuPageTable)."""

    def __init__(self, *a, flags: int = 0, va_base: int = 0, va_size: int = 0):
        super().__init__(*a)
        self.flags, self.va_base, self.va_size = flags, va_base, va_size
        self.pt = GpuPageTable(f"mock-nv VA space {self.handle:#x}")
        self.uvm_owner: Any = None                  # the UVM va space that took it over

    @property
    def externally_owned(self) -> bool:
        return bool(self.flags & F.NV.NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED)


class ChannelGroup(RmObject):
    """KEPLER_CHANNEL_GROUP_A (TSG): channels that share a runlist slot and an error scope."""

    def __init__(self, *a, engine_type: int, vaspace: VaSpace | None):
        super().__init__(*a)
        self.engine_type, self.vaspace_obj = engine_type, vaspace
        self.scheduled = False

    def channels(self) -> list["Channel"]:
        return [c for c in self.children.values() if isinstance(c, Channel)]


class ContextShare(RmObject):
    """FERMI_CONTEXT_SHARE_A (subcontext / VEID) inside a TSG."""

    def __init__(self, *a, vaspace: GpuPageTable, flags: int = 0, subctx_id: int = 0):
        super().__init__(*a)
        self.pt, self.flags, self.subctx_id = vaspace, flags, subctx_id


class Channel(RmObject):
    """HOPPER_CHANNEL_GPFIFO_A: the RM side of a GPFIFO channel; `gpu` is the mock GPU's channel."""

    def __init__(self, *a, gpu: "GpuChannel"):
        super().__init__(*a)
        self.gpu = gpu

    def engine_objects(self) -> list["EngineObject"]:
        return [c for c in self.children.values() if isinstance(c, EngineObject)]

    def on_free(self) -> None:
        self.gpu.close()


class EngineObject(RmObject):
    """HOPPER_COMPUTE_A / HOPPER_DMA_COPY_A on a channel (what SET_OBJECT binds to a subchannel)."""


class Debugger(RmObject):
    """GT200_DEBUGGER bound to a compute object of the same client."""

    def __init__(self, *a, target: EngineObject):
        super().__init__(*a)
        self.target = target

    def channel(self) -> Channel:
        return self.target.parent  # type: ignore[return-value]
