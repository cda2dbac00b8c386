"""NVIDIA Resource Manager (RM) escapes: alloc, free, control, map, through /dev/nvidiactl.

Every call checks both the ioctl's return and the NV_STATUS RM writes into the struct, and
raises with the escape's name, the status name and a hint. Objects are tracked so that close
can prove nothing leaked.
"""
from __future__ import annotations

from typing import Any

from ..errors import DriverStatusError
from ..ioctl import ioc
from ..ioctl.bindings import addressof
from ..ioctl.kernel import Kernel
from .abi import status_code

# The escape group character of every RM ioctl: _IOWR('F', nr, size).
NV_IOCTL_MAGIC = ord("F")

_STATUS_HINTS = {
    "NV_ERR_INVALID_PARAM_STRUCT": "the parameter struct size does not match this driver's ABI "
                                   "(wrong bindings for the driver version?)",
    "NV_ERR_INSUFFICIENT_PERMISSIONS": "check permissions of /dev/nvidia* for this user",
    "NV_ERR_NO_MEMORY": "the GPU or host is out of memory for this request",
    "NV_ERR_INVALID_CLASS": "this GPU does not support the requested class",
    "NV_ERR_INVALID_OBJECT_HANDLE": "a handle passed does not name a live object",
    "NV_ERR_NOT_SUPPORTED": "the driver does not support this control on this GPU",
}


class RM:
    """One RM client on one control fd."""

    def __init__(self, kernel: Kernel, nv: Any, ctl_fd: int):
        self.kernel, self.nv, self.ffi, self.fd = kernel, nv, nv.ffi, ctl_fd
        self.ok = status_code(nv, "NV_OK")
        self.objects: dict[int, tuple[int, int]] = {}      # handle -> (parent, class)
        self._children: dict[int, set[int]] = {}            # parent -> handles (frees stay O(1))
        self.client = 0
        self._next_handle = 0xD0000001   # caller-chosen handles (OS-descriptor memory)
        self.client = self.alloc(0, nv.NV01_ROOT_CLIENT, root=True)

    # ---- escapes -----------------------------------------------------------------
    def escape(self, fd: int, nr: int, cdata: Any, name: str) -> None:
        """Issue RM escape ``nr`` with ``cdata`` (a cffi pointer to the parameter struct)."""
        t = self.ffi.typeof(cdata)
        size = self.ffi.sizeof(cdata) if t.kind == "array" else self.ffi.sizeof(cdata[0])
        req = ioc._IOWR(NV_IOCTL_MAGIC, nr, size)
        self.kernel.ioctl(fd, req, addressof(cdata), name)

    def check(self, status: int, name: str, detail: str = "") -> None:
        if status != self.ok:
            sname, msg = self.nv.NV_STATUS.get(status, (f"NV_STATUS_{status:#x}", ""))
            hint = _STATUS_HINTS.get(sname, msg)
            raise DriverStatusError(f"{name}{(' ' + detail) if detail else ''}", 0, hint,
                                    status, sname)

    def alloc(self, parent: int, cls: int, params: Any = None, root: bool = False,
              handle: int = 0) -> int:
        """RM_ALLOC an object of class ``cls`` under ``parent``; returns its handle."""
        p = self.ffi.new("NVOS21_PARAMETERS *")
        p.hRoot = 0 if root else self.client
        p.hObjectParent = parent
        p.hObjectNew = handle
        p.hClass = cls
        if params is not None:
            p.pAllocParms = params
            p.paramsSize = self.ffi.sizeof(params[0])
        self.escape(self.fd, self.nv.NV_ESC_RM_ALLOC, p, "NV_ESC_RM_ALLOC")
        self.check(p.status, "NV_ESC_RM_ALLOC", f"class {cls:#x} under {parent:#x}")
        h = p.hObjectNew
        self._remember(h, parent, cls)
        return h

    def free(self, handle: int) -> None:
        """RM_FREE ``handle`` (and, in RM, all its children)."""
        p = self.ffi.new("NVOS00_PARAMETERS *")
        p.hRoot = self.client
        parent = self.objects.get(handle, (0, 0))[0]
        p.hObjectParent = parent
        p.hObjectOld = handle
        self.escape(self.fd, self.nv.NV_ESC_RM_FREE, p, "NV_ESC_RM_FREE")
        self.check(p.status, "NV_ESC_RM_FREE", f"handle {handle:#x}")
        self._forget(handle)

    def _remember(self, handle: int, parent: int, cls: int) -> None:
        self.objects[handle] = (parent, cls)
        self._children.setdefault(parent, set()).add(handle)

    def _forget(self, handle: int) -> None:
        entry = self.objects.pop(handle, None)
        if entry is not None:
            sib = self._children.get(entry[0])
            if sib is not None:
                sib.discard(handle)
        stack = list(self._children.pop(handle, ()))
        while stack:                  # RM frees the whole subtree
            h = stack.pop()
            self.objects.pop(h, None)
            stack.extend(self._children.pop(h, ()))

    def control(self, handle: int, cmd: int, params: Any, name: str = "") -> Any:
        """RM_CONTROL ``cmd`` on ``handle`` with ``params``; returns params (filled in)."""
        p = self.ffi.new("NVOS54_PARAMETERS *")
        p.hClient = self.client
        p.hObject = handle
        p.cmd = cmd
        if params is not None:
            p.params = params
            p.paramsSize = self.ffi.sizeof(params[0])
        self.escape(self.fd, self.nv.NV_ESC_RM_CONTROL, p, "NV_ESC_RM_CONTROL")
        self.check(p.status, "NV_ESC_RM_CONTROL", name or f"cmd {cmd:#x}")
        return params

    def alloc_os_memory(self, dev_fd: int, device: int, host_addr: int, size: int) -> int:
        """Pin ``size`` bytes of process memory at ``host_addr`` as an RM system-memory
        object (NV01_MEMORY_SYSTEM_OS_DESCRIPTOR); issued on the GPU's device fd."""
        nv = self.nv
        handle = self._next_handle
        self._next_handle += 1
        p = self.ffi.new("nv_ioctl_nvos02_parameters_with_fd *")
        p.params.hRoot = self.client
        p.params.hObjectParent = device
        p.params.hObjectNew = handle
        p.params.hClass = nv.NV01_MEMORY_SYSTEM_OS_DESCRIPTOR
        p.params.flags = (nv.NVOS02_FLAGS_PHYSICALITY.encode(nv.NVOS02_FLAGS_PHYSICALITY_NONCONTIGUOUS)
                          | nv.NVOS02_FLAGS_COHERENCY.encode(nv.NVOS02_FLAGS_COHERENCY_CACHED)
                          | nv.NVOS02_FLAGS_MAPPING.encode(nv.NVOS02_FLAGS_MAPPING_NO_MAP))
        p.params.pMemory = self.ffi.cast("void *", host_addr)
        p.params.limit = size - 1
        p.fd = -1
        self.escape(dev_fd, nv.NV_ESC_RM_ALLOC_MEMORY, p, "NV_ESC_RM_ALLOC_MEMORY")
        self.check(p.params.status, "NV_ESC_RM_ALLOC_MEMORY", f"{size} bytes at {host_addr:#x}")
        self._remember(handle, device, nv.NV01_MEMORY_SYSTEM_OS_DESCRIPTOR)
        return handle

    def map_memory(self, device: int, memory: int, length: int, map_fd: int) -> None:
        """RM_MAP_MEMORY: prepare ``map_fd`` so that an mmap of it maps ``memory``."""
        p = self.ffi.new("nv_ioctl_nvos33_parameters_with_fd *")
        p.params.hClient = self.client
        p.params.hDevice = device
        p.params.hMemory = memory
        p.params.length = length
        p.fd = map_fd
        self.escape(self.fd, self.nv.NV_ESC_RM_MAP_MEMORY, p, "NV_ESC_RM_MAP_MEMORY")
        self.check(p.params.status, "NV_ESC_RM_MAP_MEMORY", f"memory {memory:#x}")

    def close(self) -> None:
        """Free the client (RM frees every object under it)."""
        if self.client:
            try:
                self.free(self.client)
            finally:
                self.objects.clear()
                self._children.clear()
                self.client = 0
