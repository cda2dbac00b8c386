"""NVIDIA UVM (/dev/nvidia-uvm): the process's GPU address space.

UVM owns the page tables of our RM VA space (created EXTERNALLY_OWNED), so every GPU mapping
is made here: an external range at the chosen VA, then the RM memory object mapped into it.
UVM ioctl numbers are raw integers (not _IOC-encoded); every parameter struct ends with
``rmStatus``.

One UVM VA space per process holds every GPU hwdrv opens there (as libcuda and tinygrad do):
peers exist only inside one VA space (UVM enables NVLink pairs when the second GPU registers;
PCIe pairs through UVM_ENABLE_PEER_ACCESS), and one external range then carries each GPU's
mapping of an allocation at the same address. ``UVM.open`` joins the process's shared space
(``UvmSpace``) unless the GPU is registered there already (the same GPU opened twice needs a VA
space of its own: UVM keeps one GPU VA space per GPU per VA space).
"""
from __future__ import annotations

from typing import Any

import threading
import weakref

from ..errors import DriverStatusError, HwdrvError
from ..ioctl.bindings import addressof
from ..ioctl.kernel import O_CLOEXEC, O_RDWR, Kernel
from .abi import status_code


#: the shared UVM VA space of each Kernel (one per process; mocks: one per mock machine)
_SPACES: "weakref.WeakKeyDictionary[Kernel, UvmSpace]" = weakref.WeakKeyDictionary()
_SPACES_LOCK = threading.Lock()


class UvmSpace:
    """One UVM VA space (the UVM fd and its mm fd), shared by the devices that joined it."""

    def __init__(self, kernel: Kernel, nv: Any, path: str, shared: bool):
        self.kernel, self.nv, self.shared = kernel, nv, shared
        self.fd = kernel.open(path, O_RDWR | O_CLOEXEC)
        self.mm_fd = -1
        self.users = 0
        self.gpus: set[bytes] = set()               # GPUs registered in this VA space
        self.peers: set[frozenset[bytes]] = set()   # PCIe pairs enabled through this space

    def close(self) -> None:
        """Close the space's fds (UVM drops every range and registration made on them)."""
        for fd in (self.mm_fd, self.fd):
            if fd >= 0:
                self.kernel.close(fd)
        self.fd = self.mm_fd = -1


class UVM:
    """One device's use of a UVM VA space: its GPU's registrations and its external ranges."""

    def __init__(self, kernel: Kernel, nv: Any, path: str = "/dev/nvidia-uvm",
                 uuid: bytes | None = None):
        self.kernel, self.nv, self.ffi = kernel, nv, nv.ffi
        self.ok = status_code(nv, "NV_OK")
        self.ranges: dict[int, int] = {}    # base -> length of this device's external ranges
        self.uuid: bytes | None = None      # the GPU this device registered (register_gpu)
        self._left = self._last = False
        with _SPACES_LOCK:
            space = _SPACES.get(kernel)
            if space is not None and space.fd >= 0 and (uuid is None or uuid not in space.gpus):
                space.users += 1
                self.space = space
                return
            self.space = space = UvmSpace(kernel, nv, path, shared=uuid is not None)
            try:
                self._call("UVM_INITIALIZE", nv.UVM_INITIALIZE, "UVM_INITIALIZE_PARAMS")
                space.mm_fd = kernel.open(path, O_RDWR | O_CLOEXEC)
                # The second fd keeps the mm alive until UVM has torn down cleanly; platforms
                # that do not need it answer NV_WARN_NOTHING_TO_DO, which is fine.
                self._call("UVM_MM_INITIALIZE", nv.UVM_MM_INITIALIZE, "UVM_MM_INITIALIZE_PARAMS",
                           ok=(self.ok, status_code(nv, "NV_WARN_NOTHING_TO_DO")), fd=space.mm_fd,
                           uvmFd=space.fd)
            except Exception:
                space.close()
                raise
            space.users = 1
            if space.shared and (_SPACES.get(kernel) is None or _SPACES[kernel].fd < 0):
                _SPACES[kernel] = space

    @property
    def fd(self) -> int:
        return self.space.fd

    def _call(self, name: str, request: int, struct: str, ok: tuple = (), fd: int | None = None,
              **fields: Any) -> Any:
        p = self.ffi.new(struct + " *")
        for k, v in fields.items():
            if k in ("gpuUuid", "gpu_uuid", "gpuUuidA", "gpuUuidB"):
                getattr(p, k).uuid = list(v)
            else:
                setattr(p, k, v)
        self.kernel.ioctl(self.space.fd if fd is None else fd, request, addressof(p), name)
        if p.rmStatus not in (ok or (self.ok,)):
            sname, msg = self.nv.NV_STATUS.get(p.rmStatus, (f"NV_STATUS_{p.rmStatus:#x}", ""))
            raise DriverStatusError(name, 0, msg, p.rmStatus, sname)
        return p

    def register_gpu(self, uuid: bytes, client: int) -> None:
        self._call("UVM_REGISTER_GPU", self.nv.UVM_REGISTER_GPU, "UVM_REGISTER_GPU_PARAMS",
                   gpu_uuid=uuid, rmCtrlFd=-1, hClient=client)
        self.uuid = uuid
        self.space.gpus.add(uuid)

    def enable_peer_access(self, other: bytes, nvlink: bool) -> None:
        """UVM_ENABLE_PEER_ACCESS between this device's GPU and ``other``, once per pair and
        space. It is meant for PCIe peers: UVM enables NVLink peers of one VA space itself when
        the second GPU registers, and answers this call for them with NV_ERR_INVALID_DEVICE
        (uvm_gpu_retain_pcie_peer_access), which for an NVLink pair means "already enabled"."""
        pair = frozenset((self.uuid, other))
        if pair in self.space.peers:
            return
        ok = (self.ok, status_code(self.nv, "NV_ERR_INVALID_DEVICE")) if nvlink else ()
        self._call("UVM_ENABLE_PEER_ACCESS", self.nv.UVM_ENABLE_PEER_ACCESS,
                   "UVM_ENABLE_PEER_ACCESS_PARAMS", ok=ok, gpuUuidA=self.uuid, gpuUuidB=other)
        self.space.peers.add(pair)

    def map_on_this_gpu(self, ctl_fd: int, client: int, memory: int, va: int, size: int) -> None:
        """Map RM memory ``memory`` (another device's, in its client) on this device's GPU, in
        the external range its owner made at ``va``: a peer mapping (UVM_MAP_EXTERNAL_ALLOCATION
        of one GPU on an existing range; the owner's own mapping stays)."""
        status = self._map_allocation(self.uuid, ctl_fd, client, memory, va, size)
        if status is not None:
            raise DriverStatusError("UVM_MAP_EXTERNAL_ALLOCATION (peer)", 0, *status)

    def register_vaspace(self, uuid: bytes, ctl_fd: int, client: int, vaspace: int) -> None:
        self._call("UVM_REGISTER_GPU_VASPACE", self.nv.UVM_REGISTER_GPU_VASPACE,
                   "UVM_REGISTER_GPU_VASPACE_PARAMS", gpuUuid=uuid, rmCtrlFd=ctl_fd,
                   hClient=client, hVaSpace=vaspace)

    def register_channel(self, uuid: bytes, ctl_fd: int, client: int, channel: int, base: int,
                         length: int) -> None:
        self._call("UVM_REGISTER_CHANNEL", self.nv.UVM_REGISTER_CHANNEL,
                   "UVM_REGISTER_CHANNEL_PARAMS", gpuUuid=uuid, rmCtrlFd=ctl_fd, hClient=client,
                   hChannel=channel, base=base, length=length)

    def map_external(self, uuid: bytes, ctl_fd: int, client: int, memory: int, va: int,
                     size: int) -> None:
        """Map RM memory object ``memory`` at GPU VA ``va`` (an external range is made first)."""
        nv = self.nv
        self._call("UVM_CREATE_EXTERNAL_RANGE", nv.UVM_CREATE_EXTERNAL_RANGE,
                   "UVM_CREATE_EXTERNAL_RANGE_PARAMS", base=va, length=size)
        self.ranges[va] = size
        status = self._map_allocation(uuid, ctl_fd, client, memory, va, size)
        if status is not None:
            self.free(va)
            raise DriverStatusError("UVM_MAP_EXTERNAL_ALLOCATION", 0, *status)

    def _map_allocation(self, uuid: bytes, ctl_fd: int, client: int, memory: int, va: int,
                        size: int) -> tuple[str, int, str] | None:
        """UVM_MAP_EXTERNAL_ALLOCATION of ``memory`` on GPU ``uuid`` at ``va`` (read/write/atomic);
        None, or (message, status, status name) when RM refused."""
        nv = self.nv
        p = self.ffi.new("UVM_MAP_EXTERNAL_ALLOCATION_PARAMS *")
        p.base, p.length, p.offset = va, size, 0
        p.perGpuAttributes[0].gpuUuid.uuid = list(uuid)
        p.perGpuAttributes[0].gpuMappingType = nv.UvmGpuMappingTypeReadWriteAtomic
        p.gpuAttributesCount = 1
        p.rmCtrlFd, p.hClient, p.hMemory = ctl_fd, client, memory
        self.kernel.ioctl(self.fd, nv.UVM_MAP_EXTERNAL_ALLOCATION, addressof(p),
                          "UVM_MAP_EXTERNAL_ALLOCATION")
        if p.rmStatus == self.ok:
            return None
        sname, msg = nv.NV_STATUS.get(p.rmStatus, (f"NV_STATUS_{p.rmStatus:#x}", ""))
        return msg, p.rmStatus, sname

    def free(self, va: int) -> None:
        """Drop the external range at ``va`` and its mappings."""
        size = self.ranges.pop(va)
        self._call("UVM_FREE", self.nv.UVM_FREE, "UVM_FREE_PARAMS", base=va, length=size)

    def leave(self) -> None:
        """Leave the VA space while this device's RM objects still exist (close() calls it if
        nobody did). A device that leaves others behind frees its ranges and unregisters its
        GPU (UVM then drops its GPU VA space, channels and peer pairs) so the others go on; the
        last one leaves everything to close(), whose fd close makes UVM drop it all."""
        if self._left:
            return
        self._left = True
        space = self.space
        with _SPACES_LOCK:
            space.users -= 1
            self._last = space.users <= 0
        if self._last or space.fd < 0:
            return
        errors = []
        for va in list(self.ranges):
            try:
                self.free(va)
            except HwdrvError as e:
                errors.append(e)
                self.ranges.pop(va, None)
        if self.uuid is not None:
            space.peers = {pair for pair in space.peers if self.uuid not in pair}
            space.gpus.discard(self.uuid)
            try:
                self._call("UVM_UNREGISTER_GPU", self.nv.UVM_UNREGISTER_GPU,
                           "UVM_UNREGISTER_GPU_PARAMS", gpu_uuid=self.uuid)
            except HwdrvError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Leave the VA space (see leave); the last device closes its fds."""
        try:
            self.leave()
        finally:
            if self._last:
                self.space.close()
            self.ranges = {}
