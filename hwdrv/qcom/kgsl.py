"""The kgsl ioctls hwdrv uses, on one open /dev/kgsl-3d0 fd (structs and numbers from the generated
hwdrv.qcom.gen.kgsl, i.e. msm_kgsl.h). Each method is one ioctl; errors come back as
``hwdrv.errors.IoctlError`` carrying the errno (EDEADLK / EPROTO matter: see device.py)."""
from __future__ import annotations

from typing import Any

from ..ioctl.bindings import addressof, new
from ..ioctl.kernel import Kernel
from .gen import kgsl as K

PAGE = 4096


class Kgsl:
    """ioctl wrappers over ``fd`` (owned by the caller)."""

    def __init__(self, kernel: Kernel, fd: int):
        self.k, self.fd = kernel, fd

    def _io(self, req: int, typ: str, name: str, **fields: Any) -> Any:
        a = new(K.ffi, typ, **fields)
        self.k.ioctl(self.fd, req, addressof(a), name)
        return a

    def getprop(self, prop: int, out_type: str, name: str, **fields: Any) -> Any:
        """GETPROPERTY ``prop`` into a new ``out_type`` (fields pre-set as given)."""
        buf = new(K.ffi, out_type, **fields)
        self._io(K.IOCTL_KGSL_DEVICE_GETPROPERTY, "struct kgsl_device_getproperty", f"GETPROPERTY({name})",
                 type=prop, value=buf, sizebytes=K.ffi.sizeof(out_type))
        return buf

    def device_info(self) -> Any:
        return self.getprop(K.KGSL_PROP_DEVICE_INFO, "struct kgsl_devinfo", "DEVICE_INFO")

    def reset_status(self, ctx: int) -> int:
        """GPU_RESET_STAT of ``ctx`` (in: the context id; out: the status; kgsl clears it on read)."""
        buf = K.ffi.new("unsigned int *", ctx)
        self._io(K.IOCTL_KGSL_DEVICE_GETPROPERTY, "struct kgsl_device_getproperty", "GETPROPERTY(GPU_RESET_STAT)",
                 type=K.KGSL_PROP_GPU_RESET_STAT, value=buf, sizebytes=4)
        return int(buf[0])

    def fault_stats(self, ctx: int) -> tuple[int, int]:
        """CONTEXT_PROPERTY(FAULTS): (total faults, timestamp of the last faulted command)."""
        faults = new(K.ffi, "struct kgsl_context_property_fault")
        prop = new(K.ffi, "struct kgsl_context_property", data=addressof(faults),
                   size=K.ffi.sizeof("struct kgsl_context_property_fault"), type=K.KGSL_CONTEXT_PROP_FAULTS, contextid=ctx)
        self._io(K.IOCTL_KGSL_DEVICE_GETPROPERTY, "struct kgsl_device_getproperty", "GETPROPERTY(CONTEXT_PROPERTY)",
                 type=K.KGSL_PROP_CONTEXT_PROPERTY, value=prop,
                 sizebytes=K.ffi.sizeof("struct kgsl_context_property"))
        return int(faults.faults), int(faults.timestamp)

    def context_create(self, flags: int) -> int:
        return int(self._io(K.IOCTL_KGSL_DRAWCTXT_CREATE, "struct kgsl_drawctxt_create", "DRAWCTXT_CREATE",
                            flags=flags).drawctxt_id)

    def context_destroy(self, ctx: int) -> None:
        self._io(K.IOCTL_KGSL_DRAWCTXT_DESTROY, "struct kgsl_drawctxt_destroy", "DRAWCTXT_DESTROY", drawctxt_id=ctx)

    def gpuobj_alloc(self, size: int, flags: int) -> Any:
        """GPUOBJ_ALLOC: id, final size, flags and mmapsize (no GPU address: see gpuobj_info)."""
        return self._io(K.IOCTL_KGSL_GPUOBJ_ALLOC, "struct kgsl_gpuobj_alloc", "GPUOBJ_ALLOC", size=size, flags=flags)

    def gpuobj_info(self, obj_id: int) -> Any:
        return self._io(K.IOCTL_KGSL_GPUOBJ_INFO, "struct kgsl_gpuobj_info", "GPUOBJ_INFO", id=obj_id)

    def gpuobj_free(self, obj_id: int) -> None:
        self._io(K.IOCTL_KGSL_GPUOBJ_FREE, "struct kgsl_gpuobj_free", "GPUOBJ_FREE", id=obj_id)

    def map_user_mem(self, hostptr: int, size: int) -> int:
        """MAP_USER_MEM (type ADDR): make page-aligned host memory GPU-visible; returns its GPU address."""
        return int(self._io(K.IOCTL_KGSL_MAP_USER_MEM, "struct kgsl_map_user_mem", "MAP_USER_MEM", hostptr=hostptr,
                            len=size, memtype=K.KGSL_USER_MEM_TYPE_ADDR).gpuaddr)

    def sharedmem_free(self, gpuaddr: int) -> None:
        self._io(K.IOCTL_KGSL_SHAREDMEM_FREE, "struct kgsl_sharedmem_free", "SHAREDMEM_FREE", gpuaddr=gpuaddr)

    def gpu_command(self, ctx: int, ib_addr: int, ib_bytes: int) -> int:
        """GPU_COMMAND with one IB; returns the context timestamp kgsl gave the command."""
        obj = new(K.ffi, "struct kgsl_command_object", gpuaddr=ib_addr, size=ib_bytes, flags=K.KGSL_CMDLIST_IB)
        cmd = self._io(K.IOCTL_KGSL_GPU_COMMAND, "struct kgsl_gpu_command", "GPU_COMMAND", cmdlist=addressof(obj),
                       cmdsize=K.ffi.sizeof("struct kgsl_command_object"), numcmds=1, context_id=ctx)
        return int(cmd.timestamp)

    def wait_timestamp(self, ctx: int, ts: int, timeout_ms: int) -> None:
        """WAITTIMESTAMP_CTXTID: sleep until ``ctx`` retired ``ts`` (ETIMEDOUT after ``timeout_ms``)."""
        self._io(K.IOCTL_KGSL_DEVICE_WAITTIMESTAMP_CTXTID, "struct kgsl_device_waittimestamp_ctxtid",
                 "WAITTIMESTAMP_CTXTID", context_id=ctx, timestamp=ts, timeout=timeout_ms)

    def read_timestamp(self, ctx: int, which: int = K.KGSL_TIMESTAMP_RETIRED) -> int:
        return int(self._io(K.IOCTL_KGSL_CMDSTREAM_READTIMESTAMP_CTXTID, "struct kgsl_cmdstream_readtimestamp_ctxtid",
                            "CMDSTREAM_READTIMESTAMP_CTXTID", context_id=ctx, type=which).timestamp)

    def fault_report(self, ctx: int) -> bytes:
        """GET_FAULT_REPORT (newer kgsl; ``ctx`` made with KGSL_CONTEXT_FAULT_INFO and invalidated by its
        fault): the ``struct kgsl_pagefault_report`` records of its page faults, back to back. Three
        calls, as kgsl wants: the number of fault types, then each type's count, then the records."""
        name = "GET_FAULT_REPORT"
        n = int(self._io(K.IOCTL_KGSL_GET_FAULT_REPORT, "struct kgsl_fault_report", name, context_id=ctx).faultnents)
        if n <= 0:
            return b""
        fsize = K.ffi.sizeof("struct kgsl_fault")
        kinds = K.ffi.new("struct kgsl_fault[]", n)
        self._io(K.IOCTL_KGSL_GET_FAULT_REPORT, "struct kgsl_fault_report", name, faultlist=addressof(kinds),
                 faultnents=n, faultsize=fsize, context_id=ctx)
        pf = next((k for k in kinds if k.type == K.KGSL_FAULT_TYPE_PAGEFAULT and k.count), None)
        if pf is None:
            return b""
        rsize = K.ffi.sizeof("struct kgsl_pagefault_report")
        recs = K.ffi.new("struct kgsl_pagefault_report[]", int(pf.count))
        ask = K.ffi.new("struct kgsl_fault[]", 1)
        ask[0].fault, ask[0].type, ask[0].count, ask[0].size = addressof(recs), pf.type, pf.count, rsize
        self._io(K.IOCTL_KGSL_GET_FAULT_REPORT, "struct kgsl_fault_report", name, faultlist=addressof(ask),
                 faultnents=1, faultsize=fsize, context_id=ctx)
        return bytes(K.ffi.buffer(recs))
