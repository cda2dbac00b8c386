"""The mock NVIDIA kernel driver: /dev/nvidiactl and /dev/nvidia0, i.e. nvidia.ko's escapes and RM.

Escapes are dispatched by `_IOC_NR`; `_IOC_SIZE` must equal the escape's struct size exactly (the
driver ignores the direction bits), else the ioctl fails with EINVAL like RmIoctl. RM calls report
their NV_STATUS in the struct's status field while the ioctl itself succeeds, as the real driver
does. The object tree (objects.py), allocation rules (alloc.py) and controls (controls.py) live in
their own modules; this one is the escape layer and the per-fd state (mmap contexts, REGISTER_FD).
"""
from __future__ import annotations

import errno as E
import threading
from typing import Any

from hwdrv.errors import InvalidArgument, OutOfMemory, SyscallError
from hwdrv.ioctl import hostmem
from hwdrv.ioctl.ioc import decode
from hwdrv.ioctl.kernel import MAP_FIXED, MAP_FIXED_NOREPLACE
from hwdrv.mock.kernel import Errno, MockDriver, MockKernel
from hwdrv.mock.physmem import PhysPool

from . import alloc as A
from . import controls as C
from . import facts as F
from .regs import BAR0_SIZE
from .gpu import MockGpu
from .objects import Channel, Client, Memory, RmObject, RmStatus, Usermode

NV = F.NV
ffi = NV.ffi


class FdState:
    """Per-open state of /dev/nvidiactl (kind "ctl") or /dev/nvidiaN (kind "dev", GPU ``gpu``)."""

    def __init__(self, kind: str, gpu: int = -1):
        self.kind, self.gpu = kind, gpu
        self.registered_ctl: FdState | None = None     # REGISTER_FD link (device fds)
        self.mmap_ctx: tuple[RmObject, int, int, int] | None = None  # (object, offset, length, cookie)
        self.closed = False


class RmServer:
    """All RM state of the mock driver: clients, memory pools, the GPUs on its bus.

    ``gpus[i]`` is GPU i (/dev/nvidia<i>); ``gpu`` is GPU 0. ``links`` holds the link between
    each pair of GPUs ("nvlink", "pcie" or "none"; facts.LINKS): what RM's P2P caps report and
    what UVM's peer rules follow."""

    def __init__(self, kernel: MockKernel, gpus: "MockGpu | list[MockGpu]", link: str = "nvlink"):
        self.gpus: list[MockGpu] = list(gpus) if isinstance(gpus, (list, tuple)) else [gpus]
        self.kernel, self.gpu = kernel, self.gpus[0]
        self.links: dict[frozenset[int], str] = {}
        for i in range(len(self.gpus)):
            for j in range(i + 1, len(self.gpus)):
                self.set_link(i, j, link)
        self.dev_fds_by_gpu = [0] * len(self.gpus)
        self.lock = threading.RLock()
        self.clients: dict[int, Client] = {}
        self.vram = self.gpu.vram                # GPU 0's (each GPU has its own: gpus[i].vram)
        self.sysmem = PhysPool(F.SYSMEM_POOL_SIZE, "sysmem")
        self.next_client = 0xC1D00001
        self.next_phys = 0x1_0000_0000          # fake physical addresses reported for vidmem
        self.next_cookie = 0x7F00_0000_0000
        self.dev_fds_open = 0
        self.mmio: dict[int, Usermode] = {}    # CPU address of a usermode mapping -> object
        self.uvm: Any = None                    # the UVM driver (uvm.py), for reverse lookups

    # ---- the bus ---------------------------------------------------------------------------------
    def set_link(self, a: int, b: int, kind: str) -> None:
        """Mock-only: the link between GPUs ``a`` and ``b`` (how the machine is built; set it
        before the GPUs are registered with UVM, as a board's wiring is fixed before boot)."""
        if kind not in F.LINKS:
            raise InvalidArgument(f"link kind {kind!r}: one of {', '.join(F.LINKS)}")
        if a == b or not (0 <= a < len(self.gpus) and 0 <= b < len(self.gpus)):
            raise InvalidArgument(f"no GPU pair ({a}, {b}) on a {len(self.gpus)}-GPU mock machine")
        self.links[frozenset((a, b))] = kind

    def link(self, a: int, b: int) -> str:
        """The link between GPUs ``a`` and ``b`` ("nvlink", "pcie", "none")."""
        return self.links[frozenset((a, b))]

    def gpu_by_id(self, gpu_id: int) -> MockGpu | None:
        return next((g for g in self.gpus if g.ident.gpu_id == gpu_id), None)

    def gpu_by_uuid(self, uuid: bytes) -> MockGpu | None:
        return next((g for g in self.gpus if g.ident.uuid == uuid), None)

    # ---- lookups -------------------------------------------------------------------------------
    def client(self, h: int) -> Client:
        c = self.clients.get(h)
        if c is None:
            raise RmStatus("NV_ERR_INVALID_OBJECT_HANDLE", f"no client {h:#x}")
        return c

    def obj(self, client: Client, h: int, kind: type | tuple = RmObject, what: str = "object") -> Any:
        o = client.objects.get(h)
        if o is None:
            raise RmStatus("NV_ERR_OBJECT_NOT_FOUND",
                           f"{what} handle {h:#x} {'was freed' if h in client.freed_handles else 'does not exist'} "
                           f"in client {client.handle:#x}")
        if not isinstance(o, kind):
            raise RmStatus("NV_ERR_INVALID_OBJECT_HANDLE", f"{what} handle {h:#x} is a {type(o).__name__} "
                                                           f"(class {o.cls:#x})")
        return o

    def fd_state(self, fd: int) -> FdState:
        try:
            st = self.kernel.state_of(fd)
        except Exception:  # noqa: BLE001 - any bad fd is an argument error to RM
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"fd {fd} is not an open NVIDIA device fd") from None
        if not isinstance(st, FdState):
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"fd {fd} is not an NVIDIA device fd")
        return st

    # ---- object lifetime -------------------------------------------------------------------------
    def insert(self, obj: RmObject) -> None:
        obj.client.objects[obj.handle] = obj
        obj.client.freed_handles.discard(obj.handle)
        if obj.parent is not None:
            obj.parent.children[obj.handle] = obj

    def free(self, obj: RmObject) -> None:
        """Free `obj` and its subtree (children first, newest first), as RM does. Channels in the
        subtree stop first: they read memory objects (USERD, ring, notifier) that may be freed
        earlier in that order, and RM's dependency tracking never lets a channel outlive them."""
        for ch in [o for o in _subtree(obj) if isinstance(o, Channel) and not o.freed]:
            self._free_one(ch)
        self._free_one(obj)

    def _free_one(self, obj: RmObject) -> None:
        for child in reversed(list(obj.children.values())):
            self._free_one(child)
        if obj.freed:
            return
        obj.freed = True
        try:
            obj.on_free()
        finally:
            if isinstance(obj, Usermode):
                for addr in obj.cpu_maps:
                    self._drop_mmio(addr)
                obj.gpu.remove_usermode(obj.mem)
            obj.client.objects.pop(obj.handle, None)
            obj.client.freed_handles.add(obj.handle)
            if obj.parent is not None:
                obj.parent.children.pop(obj.handle, None)
            if isinstance(obj, Client):
                self.clients.pop(obj.handle, None)
            if self.uvm is not None:
                self.uvm.object_freed(obj)

    def _drop_mmio(self, addr: int) -> None:
        if self.mmio.pop(addr, None) is not None:
            try:
                self.kernel.unregister_mmio(addr)
            except Exception:  # noqa: BLE001 - already replaced
                pass

    def new_handle(self, client: Client, requested: int) -> int:
        if requested == 0:
            return client.new_handle()
        if requested in client.objects or any(requested in c.objects for c in self.clients.values()
                                              if requested == c.handle):
            raise RmStatus("NV_ERR_INSERT_DUPLICATE_NAME", f"handle {requested:#x} is already in use")
        return requested

    def phys_address(self, size: int, align: int) -> int:
        align = max(align, 4096)
        a = -(-self.next_phys // align) * align
        self.next_phys = a + size
        return a

    def close(self) -> None:
        for c in list(self.clients.values()):
            self.free(c)
        for g in self.gpus:
            g.close()


class NvidiaDriver(MockDriver):
    """/dev/nvidiactl and /dev/nvidia<minor> of every GPU: one driver, the path says which kind
    of fd (and which GPU)."""

    name = "nvidia"

    def __init__(self, server: RmServer, ctl_path: str = "/dev/nvidiactl"):
        self.rm = server
        self.ctl_path = ctl_path
        self.dev_paths = {f"/dev/nvidia{g.ident.minor}": i for i, g in enumerate(server.gpus)}

    def open(self, path: str, flags: int) -> FdState:
        if path == self.ctl_path:
            return FdState("ctl")
        st = FdState("dev", self.dev_paths[path])
        with self.rm.lock:
            self.rm.dev_fds_open += 1
            self.rm.dev_fds_by_gpu[st.gpu] += 1
        return st

    def close(self, state: FdState) -> None:
        with self.rm.lock:
            state.closed = True
            if state.kind == "dev":
                self.rm.dev_fds_open -= 1
                self.rm.dev_fds_by_gpu[state.gpu] -= 1
            else:
                # closing the control fd frees every client it allocated (RM's fd-close cleanup)
                for c in [c for c in self.rm.clients.values() if c.fd is state]:
                    self.rm.free(c)

    # ---- escapes -------------------------------------------------------------------------------
    def ioctl(self, state: FdState, request: int, arg: int) -> int:
        req = decode(request)
        nr, size = req.nr, req.size
        handler = _ESCAPES.get(nr)
        if handler is None:
            raise Errno(E.EINVAL, f"unknown NVIDIA escape nr {nr:#x} (RmIoctl: unknown NVRM ioctl command)")
        name, sizes, fn = handler
        if sizes is not None and size not in sizes:
            raise Errno(E.EINVAL, f"{name}: argument size {size} != sizeof the escape's struct "
                                  f"({' or '.join(map(str, sizes))}) - RmIoctl rejects it")
        if not arg:
            raise Errno(E.EFAULT, f"{name}: NULL argument")
        with self.rm.lock:
            return fn(self, state, arg, size) or 0

    def _ctl_only(self, state: FdState, name: str) -> None:
        if state.kind != "ctl":
            raise Errno(E.EINVAL, f"{name} must be issued on /dev/nvidiactl (NV_CTL_DEVICE_ONLY)")

    def _status(self, arg: int, struct: str, field: str, fn) -> None:
        """Run an RM call; write its NV_STATUS into the caller's struct (the ioctl succeeds)."""
        try:
            fn()
            st = F.NV_OK
        except RmStatus as e:
            st = e.code
            self.last_error = e.detail
        except OutOfMemory as e:
            st = F.status("NV_ERR_NO_MEMORY")
            self.last_error = str(e)
        hostmem.write(arg + F.off(struct, field), st.to_bytes(4, "little"))

    def esc_check_version(self, state: FdState, arg: int, size: int) -> None:
        p = ffi.cast("nv_ioctl_rm_api_version_t *", arg)
        ours = F.DRIVER_VERSION.encode()
        theirs = ffi.string(p.versionString)
        if p.cmd == NV.NV_RM_API_VERSION_CMD_QUERY:
            ok = True
            ffi.memmove(p.versionString, ours + b"\0", len(ours) + 1)
        elif p.cmd == NV.NV_RM_API_VERSION_CMD_RELAXED:
            ok = theirs.split(b".")[0] == ours.split(b".")[0]
        else:
            ok = theirs == ours
        if not ok:
            ffi.memmove(p.versionString, ours + b"\0", len(ours) + 1)
        p.reply = NV.NV_RM_API_VERSION_REPLY_RECOGNIZED if ok else NV.NV_RM_API_VERSION_REPLY_UNRECOGNIZED

    def esc_card_info(self, state: FdState, arg: int, size: int) -> None:
        self._ctl_only(state, "NV_ESC_CARD_INFO")
        one = F.size("nv_ioctl_card_info_t")
        if size == 0 or size % one:
            raise Errno(E.EINVAL, f"NV_ESC_CARD_INFO: size {size} is not a whole number of {one}-byte card infos")
        hostmem.write(arg, b"\0" * size)
        if size // one < len(self.rm.gpus):
            # nvidia_read_card_info: fewer entries than GPUs is -EINVAL
            raise Errno(E.EINVAL, f"NV_ESC_CARD_INFO: room for {size // one} cards, "
                                  f"{len(self.rm.gpus)} GPUs")
        cards = ffi.cast("nv_ioctl_card_info_t *", arg)
        for i, gpu in enumerate(self.rm.gpus):
            c, ident = cards[i], gpu.ident
            c.valid = 1
            c.pci_info.domain, c.pci_info.bus, c.pci_info.slot = ident.pci_domain, ident.pci_bus, ident.pci_slot
            c.pci_info.vendor_id, c.pci_info.device_id = F.PCI_VENDOR, F.PCI_DEVICE
            c.gpu_id = ident.gpu_id
            c.minor_number = ident.minor
            c.fb_size = F.VRAM_SIZE
            c.reg_size = BAR0_SIZE
            name = f"nvidia{ident.minor}".encode()
            ffi.memmove(c.dev_name, name, len(name))

    def esc_register_fd(self, state: FdState, arg: int, size: int) -> None:
        if state.kind != "dev":
            raise Errno(E.EINVAL, "NV_ESC_REGISTER_FD is issued on a /dev/nvidiaN fd, not on /dev/nvidiactl")
        if state.registered_ctl is not None:
            raise Errno(E.EINVAL, "NV_ESC_REGISTER_FD: this device fd is already linked to a control fd "
                                  "(an fd can be registered once)")
        ctl_fd = ffi.cast("nv_ioctl_register_fd_t *", arg).ctl_fd
        try:
            ctl = self.rm.kernel.state_of(ctl_fd)
        except Exception:  # noqa: BLE001
            raise Errno(E.EINVAL, f"NV_ESC_REGISTER_FD: ctl_fd {ctl_fd} is not open") from None
        if not isinstance(ctl, FdState) or ctl.kind != "ctl":
            raise Errno(E.EINVAL, f"NV_ESC_REGISTER_FD: fd {ctl_fd} is not a /dev/nvidiactl fd")
        state.registered_ctl = ctl

    def esc_wait_open_complete(self, state: FdState, arg: int, size: int) -> None:
        p = ffi.cast("nv_ioctl_wait_open_complete_t *", arg)
        p.rc, p.adapterStatus = 0, F.NV_OK

    def esc_alloc(self, state: FdState, arg: int, size: int) -> None:
        self._ctl_only(state, "NV_ESC_RM_ALLOC")
        struct = "NVOS21_PARAMETERS" if size == F.size("NVOS21_PARAMETERS") else "NVOS64_PARAMETERS"
        p = ffi.cast(struct + " *", arg)
        self._status(arg, struct, "status",
                     lambda: A.rm_alloc(self.rm, state, p, int(ffi.cast("uintptr_t", p.pAllocParms))))

    def esc_free(self, state: FdState, arg: int, size: int) -> None:
        self._ctl_only(state, "NV_ESC_RM_FREE")
        p = ffi.cast("NVOS00_PARAMETERS *", arg)

        def run() -> None:
            client = self.rm.client(p.hRoot)
            if p.hObjectOld == p.hRoot:
                self.rm.free(client)
            else:
                self.rm.free(self.rm.obj(client, p.hObjectOld))
        self._status(arg, "NVOS00_PARAMETERS", "status", run)

    def esc_control(self, state: FdState, arg: int, size: int) -> None:
        self._ctl_only(state, "NV_ESC_RM_CONTROL")
        p = ffi.cast("NVOS54_PARAMETERS *", arg)
        self._status(arg, "NVOS54_PARAMETERS", "status",
                     lambda: C.rm_control(self.rm, p.hClient, p.hObject, p.cmd,
                                          int(ffi.cast("uintptr_t", p.params)), p.paramsSize))

    def esc_alloc_memory(self, state: FdState, arg: int, size: int) -> None:
        if state.kind != "dev":
            raise Errno(E.EINVAL, "NV_ESC_RM_ALLOC_MEMORY must be issued on /dev/nvidiaN (NV_ACTUAL_DEVICE_ONLY)")
        p = ffi.cast("nv_ioctl_nvos02_parameters_with_fd *", arg)
        self._status(arg, "NVOS02_PARAMETERS", "status", lambda: A.alloc_os_memory(self.rm, p.params))

    def esc_map_memory(self, state: FdState, arg: int, size: int) -> None:
        self._ctl_only(state, "NV_ESC_RM_MAP_MEMORY")
        p = ffi.cast("nv_ioctl_nvos33_parameters_with_fd *", arg)
        self._status(arg, "NVOS33_PARAMETERS", "status", lambda: self._map_memory(p.params, p.fd))

    def _map_memory(self, p: Any, fd: int) -> None:
        rm = self.rm
        client = rm.client(p.hClient)
        rm.obj(client, p.hDevice, A.DEVICE_LIKE, "device")
        o = rm.obj(client, p.hMemory, (Memory, Usermode), "memory")
        mem = o.mem
        if p.length == 0 or p.offset % 4096 or p.offset + p.length > mem.size:
            raise RmStatus("NV_ERR_INVALID_LIMIT", f"map [{p.offset:#x}, +{p.length:#x}) of a {mem.size:#x}-byte "
                                                   f"object")
        if not mem.cpu_mappable:
            raise RmStatus("NV_ERR_NOT_SUPPORTED", "OS-descriptor memory is the caller's own memory; the mock "
                                                   "does not map it a second time")
        target = rm.fd_state(fd)
        if mem.kind in ("vidmem", "usermode"):
            if target.kind != "dev" or target.registered_ctl is None:
                raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"BAR mappings ({mem.kind}) need a /dev/nvidiaN fd linked "
                                                          f"with NV_ESC_REGISTER_FD; fd {fd} is "
                                                          f"{'an unregistered device fd' if target.kind == 'dev' else 'a control fd'}")
        elif target.kind != "ctl":
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"system memory is mapped through a /dev/nvidiactl fd; "
                                                      f"fd {fd} is a device fd")
        if target.mmap_ctx is not None:
            raise RmStatus("NV_ERR_STATE_IN_USE", f"fd {fd} already carries an mmap context (one per fd: "
                                                  f"open a fresh fd per mapping)")
        cookie = rm.next_cookie
        rm.next_cookie += 1 << 24
        target.mmap_ctx = (o, int(p.offset), int(p.length), cookie)
        p.pLinearAddress = ffi.cast("void *", cookie)

    def esc_unmap_memory(self, state: FdState, arg: int, size: int) -> None:
        self._ctl_only(state, "NV_ESC_RM_UNMAP_MEMORY")
        p = ffi.cast("NVOS34_PARAMETERS *", arg)

        def run() -> None:
            client = self.rm.client(p.hClient)
            self.rm.obj(client, p.hDevice, A.DEVICE_LIKE, "device")
            self.rm.obj(client, p.hMemory, (Memory, Usermode), "memory")
        self._status(arg, "NVOS34_PARAMETERS", "status", run)

    # ---- mmap ----------------------------------------------------------------------------------
    def mmap(self, state: FdState, addr: int, size: int, prot: int, flags: int, offset: int) -> int:
        with self.rm.lock:
            if state.mmap_ctx is None:
                raise Errno(E.EINVAL, "mmap of an NVIDIA fd without NV_ESC_RM_MAP_MEMORY on it first")
            o, off, length, _ = state.mmap_ctx
            if o.freed:
                raise Errno(E.EINVAL, f"mmap: memory object {o.handle:#x} was freed")
            if offset != 0 or size != length:
                raise Errno(E.EINVAL, f"mmap(size={size:#x}, offset={offset:#x}) must match the RM mapping "
                                      f"(offset 0, size {length:#x})")
            # MAP_FIXED_NOREPLACE is not MAP_FIXED: the kernel refuses it (EEXIST) where anything
            # is mapped already, where MAP_FIXED would silently replace those pages
            noreplace = bool(flags & MAP_FIXED_NOREPLACE) and not (flags & MAP_FIXED)
            try:
                got = o.mem.map_cpu(addr, size, prot, bool(flags & MAP_FIXED), off, noreplace=noreplace)
            except SyscallError as e:
                if e.errno == E.EEXIST:
                    raise Errno(E.EEXIST, f"MAP_FIXED_NOREPLACE: [{addr:#x}, {addr + size:#x}) is "
                                          "already (partly) mapped") from None
                raise
            if isinstance(o, Usermode):
                self.rm._drop_mmio(got)
                self.rm.kernel.register_mmio(got, size, lambda a, v, w, base=got, gpu=o.gpu: gpu.doorbell(base, a, v, w))
                self.rm.mmio[got] = o
                o.cpu_maps.append(got)
            return got

    def munmap(self, addr: int, size: int) -> None:
        with self.rm.lock:
            for a in [a for a in self.rm.mmio if addr <= a < addr + size]:
                self.rm._drop_mmio(a)


_SZ = F.size
_ESCAPES = {
    NV.NV_ESC_CHECK_VERSION_STR: ("NV_ESC_CHECK_VERSION_STR", (_SZ("nv_ioctl_rm_api_version_t"),),
                                  NvidiaDriver.esc_check_version),
    NV.NV_ESC_CARD_INFO: ("NV_ESC_CARD_INFO", None, NvidiaDriver.esc_card_info),
    NV.NV_ESC_REGISTER_FD: ("NV_ESC_REGISTER_FD", (_SZ("nv_ioctl_register_fd_t"),), NvidiaDriver.esc_register_fd),
    NV.NV_ESC_WAIT_OPEN_COMPLETE: ("NV_ESC_WAIT_OPEN_COMPLETE", (_SZ("nv_ioctl_wait_open_complete_t"),),
                                   NvidiaDriver.esc_wait_open_complete),
    NV.NV_ESC_RM_ALLOC: ("NV_ESC_RM_ALLOC", (_SZ("NVOS21_PARAMETERS"), _SZ("NVOS64_PARAMETERS")),
                         NvidiaDriver.esc_alloc),
    NV.NV_ESC_RM_FREE: ("NV_ESC_RM_FREE", (_SZ("NVOS00_PARAMETERS"),), NvidiaDriver.esc_free),
    NV.NV_ESC_RM_CONTROL: ("NV_ESC_RM_CONTROL", (_SZ("NVOS54_PARAMETERS"),), NvidiaDriver.esc_control),
    NV.NV_ESC_RM_ALLOC_MEMORY: ("NV_ESC_RM_ALLOC_MEMORY", (_SZ("nv_ioctl_nvos02_parameters_with_fd"),),
                                NvidiaDriver.esc_alloc_memory),
    NV.NV_ESC_RM_MAP_MEMORY: ("NV_ESC_RM_MAP_MEMORY", (_SZ("nv_ioctl_nvos33_parameters_with_fd"),),
                              NvidiaDriver.esc_map_memory),
    NV.NV_ESC_RM_UNMAP_MEMORY: ("NV_ESC_RM_UNMAP_MEMORY", (_SZ("NVOS34_PARAMETERS"),), NvidiaDriver.esc_unmap_memory),
}


def _subtree(obj: RmObject) -> list[RmObject]:
    out, todo = [], [obj]
    while todo:
        o = todo.pop()
        out.append(o)
        todo.extend(o.children.values())
    return out
