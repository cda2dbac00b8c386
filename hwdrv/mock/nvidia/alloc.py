"""RM_ALLOC / RM_ALLOC_MEMORY on the mock: per-class parent rules and allocation parameters.

Like RM, the mock reads `sizeof(class params)` from pAllocParms whatever paramsSize says (alloc
params are not size-checked; nvidia.md 1.3). Each class names the parent classes it accepts
(NV_ERR_INVALID_OBJECT_PARENT otherwise); a parent handle naming nothing is NV_ERR_OBJECT_NOT_FOUND
(as the H100's 580.159.04 driver answers); unknown classes are NV_ERR_INVALID_CLASS.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from hwdrv.ioctl.kernel import PAGE_SIZE

from . import facts as F
from .fifo import USERD_SIZE
from .backing import MemBacking
from .objects import (Channel, ChannelGroup, Client, ContextShare, Debugger, Device, EngineObject, Memory,
                      RmObject, RmStatus, Subdevice, Usermode, VaSpace)

if TYPE_CHECKING:
    from .rm import FdState, RmServer

NV = F.NV
ffi = NV.ffi
DEVICE_LIKE = (Device, Subdevice)
_ROOT_CLASSES = {NV.NV01_ROOT, NV.NV01_ROOT_CLIENT}
_HUGE = 2 << 20


def _params(addr: int, struct: str, required: bool, cls: int) -> Any:
    if addr:
        return ffi.cast(struct + " *", addr)
    if required:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"class {cls:#x} needs {struct} (pAllocParms is NULL)")
    return ffi.new(struct + " *")


def rm_alloc(rm: "RmServer", state: "FdState", p: Any, params: int) -> None:
    """NV_ESC_RM_ALLOC (NVOS21 or NVOS64 `p`)."""
    cls = p.hClass
    if cls in _ROOT_CLASSES:
        h = p.hObjectNew
        if h == 0:
            while rm.next_client in rm.clients:
                rm.next_client += 1
            h = rm.next_client
            rm.next_client += 1
        elif h in rm.clients:
            raise RmStatus("NV_ERR_INSERT_DUPLICATE_NAME", f"client handle {h:#x} is in use")
        c = Client(h, state)
        rm.clients[h] = c
        p.hObjectNew = h
        return
    client = rm.client(p.hRoot)
    spec = _CLASSES.get(cls)
    if spec is None:
        raise RmStatus("NV_ERR_INVALID_CLASS", f"class {cls:#x} is not a class of this (mock GH100) GPU")
    parents, make = spec
    parent = client.objects.get(p.hObjectParent)
    if parent is None:
        raise RmStatus("NV_ERR_OBJECT_NOT_FOUND", f"parent {p.hObjectParent:#x} does not exist in client "
                                                       f"{client.handle:#x}")
    if not isinstance(parent, parents):
        raise RmStatus("NV_ERR_INVALID_OBJECT_PARENT",
                       f"class {cls:#x} cannot be allocated under a {type(parent).__name__} (class {parent.cls:#x}); "
                       f"parent must be {' or '.join(t.__name__ for t in parents)}")
    h = rm.new_handle(client, p.hObjectNew)
    obj = make(rm, h, cls, parent, client, params)
    rm.insert(obj)
    p.hObjectNew = h


def _device(rm, h, cls, parent, client, params) -> Device:
    p = _params(params, "NV0080_ALLOC_PARAMETERS", False, cls)
    if not 0 <= p.deviceId < len(rm.gpus):
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"deviceId {p.deviceId}: this system has {len(rm.gpus)} "
                                                  f"GPU(s), devices 0..{len(rm.gpus) - 1}")
    gpu = rm.gpus[p.deviceId]
    if rm.dev_fds_by_gpu[p.deviceId] == 0:
        raise RmStatus("NV_ERR_INVALID_STATE", f"open /dev/nvidia{gpu.ident.minor} (and register it) before "
                                               f"allocating the device")
    return Device(h, cls, parent, client, device_id=p.deviceId, gpu=gpu)


def _subdevice(rm, h, cls, parent, client, params) -> Subdevice:
    p = _params(params, "NV2080_ALLOC_PARAMETERS", False, cls)
    if p.subDeviceId != F.SUBDEVICE_INSTANCE:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"subDeviceId {p.subDeviceId}: the device has subdevice 0 only")
    return Subdevice(h, cls, parent, client)


def _usermode(rm, h, cls, parent, client, params) -> Usermode:
    bar1 = False
    if params:
        bar1 = bool(ffi.cast("NV_HOPPER_USERMODE_A_PARAMS *", params).bBar1Mapping)
    mem = MemBacking("usermode", F.HW.NVC361_NV_USERMODE__SIZE, name="hwdrv-mock-nv-usermode")
    gpu = parent.ancestor(Device).gpu
    gpu.add_usermode(mem)
    return Usermode(h, cls, parent, client, mem=mem, bar1=bar1, gpu=gpu)


def _memory(rm, h, cls, parent, client, params) -> Memory:
    p = _params(params, "NV_MEMORY_ALLOCATION_PARAMS", True, cls)
    loc = NV.NVOS32_ATTR_LOCATION.decode(p.attr)
    vid = cls == NV.NV01_MEMORY_LOCAL_USER
    if vid and loc not in (NV.NVOS32_ATTR_LOCATION_VIDMEM, NV.NVOS32_ATTR_LOCATION_ANY):
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"NV01_MEMORY_LOCAL_USER with attr LOCATION {loc} (not VIDMEM)")
    if not vid and loc == NV.NVOS32_ATTR_LOCATION_VIDMEM:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", "NV01_MEMORY_SYSTEM with attr LOCATION_VIDMEM")
    if p.size == 0:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", "memory allocation of size 0")
    align = p.alignment or PAGE_SIZE
    if align & (align - 1):
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"alignment {align:#x} is not a power of two")
    page = _HUGE if NV.NVOS32_ATTR_PAGE_SIZE.decode(p.attr) == NV.NVOS32_ATTR_PAGE_SIZE_HUGE else PAGE_SIZE
    gran = max(page, align if p.flags & NV.NVOS32_ALLOC_FLAGS_ALIGNMENT_FORCE else PAGE_SIZE)
    size = -(-int(p.size) // gran) * gran
    mem = MemBacking("vidmem" if vid else "sysmem", size, pool=parent.ancestor(Device).gpu.vram if vid else rm.sysmem,
                     name=f"hwdrv-mock-nv-{'vid' if vid else 'sys'}mem-{h:#x}")
    p.size, p.limit = size, size - 1
    phys = rm.phys_address(size, max(align, page))
    p.address = ffi.cast("void *", phys)
    p.offset = phys
    return Memory(h, cls, parent, client, mem=mem, attr=p.attr, attr2=p.attr2, flags=p.flags)


def alloc_os_memory(rm: "RmServer", p: Any) -> None:
    """NV_ESC_RM_ALLOC_MEMORY (NVOS02): pin the caller's pages at pMemory as a memory object."""
    client = rm.client(p.hRoot)
    if p.hClass != NV.NV01_MEMORY_SYSTEM_OS_DESCRIPTOR:
        raise RmStatus("NV_ERR_INVALID_CLASS", f"NV_ESC_RM_ALLOC_MEMORY class {p.hClass:#x}: the mock supports "
                                               f"NV01_MEMORY_SYSTEM_OS_DESCRIPTOR")
    parent = client.objects.get(p.hObjectParent)
    if not isinstance(parent, DEVICE_LIKE):
        raise RmStatus("NV_ERR_INVALID_OBJECT_PARENT", f"parent {p.hObjectParent:#x} is not a device")
    addr = int(ffi.cast("uintptr_t", p.pMemory))
    size = int(p.limit) + 1
    if addr == 0 or addr % PAGE_SIZE:
        raise RmStatus("NV_ERR_INVALID_ADDRESS", f"pMemory {addr:#x} is not a page-aligned address")
    if size % PAGE_SIZE:
        raise RmStatus("NV_ERR_INVALID_LIMIT", f"limit {p.limit:#x}: size {size:#x} is not whole pages")
    h = rm.new_handle(client, p.hObjectNew)
    obj = Memory(h, p.hClass, parent, client, mem=MemBacking("os", size, host_addr=addr), flags=p.flags)
    rm.insert(obj)
    p.hObjectNew = h


def _vaspace(rm, h, cls, parent, client, params) -> VaSpace:
    p = _params(params, "NV_VASPACE_ALLOCATION_PARAMETERS", False, cls)
    return VaSpace(h, cls, parent, client, flags=p.flags, va_base=p.vaBase, va_size=p.vaSize)


def _vaspace_of(client: Client, h: int, what: str) -> VaSpace | None:
    if h == 0:
        return None
    o = client.objects.get(h)
    if not isinstance(o, VaSpace):
        raise RmStatus("NV_ERR_OBJECT_NOT_FOUND", f"{what} {h:#x} is not a FERMI_VASPACE_A of this client")
    return o


def _tsg(rm, h, cls, parent, client, params) -> ChannelGroup:
    p = _params(params, "NV_CHANNEL_GROUP_ALLOCATION_PARAMETERS", True, cls)
    et = p.engineType or NV.NV2080_ENGINE_TYPE_GRAPHICS
    if not (et == NV.NV2080_ENGINE_TYPE_GRAPHICS or NV.NV2080_ENGINE_TYPE_IS_COPY(et)):
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"engineType {et}: the mock has GRAPHICS and COPY engines")
    return ChannelGroup(h, cls, parent, client, engine_type=et, vaspace=_vaspace_of(client, p.hVASpace, "hVASpace"))


def _ctxshare(rm, h, cls, parent, client, params) -> ContextShare:
    p = _params(params, "NV_CTXSHARE_ALLOCATION_PARAMETERS", True, cls)
    vas = _vaspace_of(client, p.hVASpace, "hVASpace") or parent.vaspace_obj
    pt = vas.pt if vas is not None else parent.ancestor(Device).vaspace()
    return ContextShare(h, cls, parent, client, vaspace=pt, flags=p.flags, subctx_id=p.subctxId)


def _memory_of(client: Client, h: int, what: str) -> Memory:
    o = client.objects.get(h)
    if not isinstance(o, Memory):
        raise RmStatus("NV_ERR_OBJECT_NOT_FOUND", f"{what} {h:#x} is not a memory object of this client")
    return o


def _channel(rm, h, cls, parent, client, params) -> Channel:
    p = _params(params, "NV_CHANNEL_ALLOC_PARAMS", True, cls)
    notifier = _memory_of(client, p.hObjectError, "hObjectError")
    if notifier.size < F.HW.LAYOUT["NvNotification"][0] * NV.NV_CHANNELGPFIFO_NOTIFICATION_TYPE__SIZE_1:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"error notifier memory of {notifier.size} bytes is too small")
    if p.hObjectBuffer:
        _memory_of(client, p.hObjectBuffer, "hObjectBuffer")
    n = p.gpFifoEntries
    if n < 2 or n & (n - 1):
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"gpFifoEntries {n} is not a power of two >= 2")
    if p.gpFifoOffset % 8:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"gpFifoOffset {p.gpFifoOffset:#x} is not 8-byte aligned")
    userd = _memory_of(client, p.hUserdMemory[0], "hUserdMemory[0]")
    uoff = int(p.userdOffset[0])
    if uoff % 512 or uoff + USERD_SIZE > userd.size:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"userdOffset[0] {uoff:#x}: USERD must be 512-byte aligned and "
                                                  f"inside the {userd.size:#x}-byte memory")
    if p.hContextShare:
        cs = client.objects.get(p.hContextShare)
        if not isinstance(cs, ContextShare) or cs.parent is not parent:
            raise RmStatus("NV_ERR_INVALID_OBJECT_HANDLE", f"hContextShare {p.hContextShare:#x} is not a context "
                                                           f"share of this channel group")
        pt = cs.pt
    elif parent.vaspace_obj is not None:
        pt = parent.vaspace_obj.pt
    else:
        vas = _vaspace_of(client, p.hVASpace, "hVASpace")
        pt = vas.pt if vas is not None else parent.ancestor(Device).vaspace()
    et = p.engineType or parent.engine_type
    ch = parent.ancestor(Device).gpu.new_channel(pt=pt, ring_va=int(p.gpFifoOffset), entries=n, userd=userd.mem, userd_offset=uoff,
                            notifier=notifier.mem, engine_type=et, tsg=parent,
                            sem_addr_hi=(F.HW.NVC86F_SEM_ADDR_HI_OFFSET if cls == NV.HOPPER_CHANNEL_GPFIFO_A
                                         else F.HW.NVC56F_SEM_ADDR_HI_OFFSET),
                            name=f"channel {h:#x}")
    ch.scheduled = parent.scheduled
    return Channel(h, cls, parent, client, gpu=ch)


def _engine(rm, h, cls, parent, client, params) -> EngineObject:
    et = parent.gpu.engine_type
    if cls == NV.HOPPER_COMPUTE_A and et != NV.NV2080_ENGINE_TYPE_GRAPHICS:
        raise RmStatus("NV_ERR_INVALID_CLASS", f"HOPPER_COMPUTE_A on a channel of engine type {et} (not GRAPHICS)")
    if any(o.cls == cls for o in parent.engine_objects()):
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"class {cls:#x} is already allocated on this channel")
    obj = EngineObject(h, cls, parent, client)
    gch = parent.gpu
    gch.classes[cls] = gch.classes.get(cls, 0) + 1
    orig = obj.on_free

    def on_free() -> None:
        gch.classes[cls] -= 1
        orig()
    obj.on_free = on_free  # type: ignore[method-assign]
    return obj


def _debugger(rm, h, cls, parent, client, params) -> Debugger:
    p = _params(params, "NV83DE_ALLOC_PARAMETERS", True, cls)
    if p.hAppClient != client.handle:
        raise RmStatus("NV_ERR_INSUFFICIENT_PERMISSIONS", f"hAppClient {p.hAppClient:#x}: the mock debugger attaches "
                                                          f"to objects of its own client only")
    target = client.objects.get(p.hClass3dObject)
    if not isinstance(target, EngineObject) or target.cls != NV.HOPPER_COMPUTE_A:
        raise RmStatus("NV_ERR_INVALID_OBJECT_HANDLE", f"hClass3dObject {p.hClass3dObject:#x} is not a "
                                                       f"HOPPER_COMPUTE_A object")
    return Debugger(h, cls, parent, client, target=target)


_Make = Callable[..., RmObject]
_CLASSES: dict[int, tuple[tuple[type, ...], _Make]] = {
    NV.NV01_DEVICE_0: ((Client,), _device),
    NV.NV20_SUBDEVICE_0: ((Device,), _subdevice),
    NV.HOPPER_USERMODE_A: ((Subdevice,), _usermode),
    NV.NV01_MEMORY_LOCAL_USER: (DEVICE_LIKE, _memory),
    NV.NV01_MEMORY_SYSTEM: (DEVICE_LIKE, _memory),
    NV.FERMI_VASPACE_A: (DEVICE_LIKE, _vaspace),
    NV.KEPLER_CHANNEL_GROUP_A: ((Device,), _tsg),
    NV.FERMI_CONTEXT_SHARE_A: ((ChannelGroup,), _ctxshare),
    NV.HOPPER_CHANNEL_GPFIFO_A: ((ChannelGroup,), _channel),
    NV.AMPERE_CHANNEL_GPFIFO_A: ((ChannelGroup,), _channel),
    NV.HOPPER_COMPUTE_A: ((Channel,), _engine),
    NV.HOPPER_DMA_COPY_A: ((Channel,), _engine),
    NV.GT200_DEBUGGER: ((Device,), _debugger),
}
