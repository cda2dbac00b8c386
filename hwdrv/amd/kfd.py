"""The /dev/kfd ioctl wrapper: argument structs and request numbers from the generated
``kfd_ioctl.h`` bindings (hwdrv/amd/gen/kfd.py), errors as IoctlError naming the ioctl."""
from __future__ import annotations

from typing import Any

from ..errors import HwdrvError, IoctlError
from ..ioctl.bindings import addressof
from ..ioctl.kernel import Kernel
from .gen import kfd as K

ffi = K.ffi
#: ioctl name (AMDKFD_IOC_<name>) -> its argument struct
STRUCTS = {
    "GET_VERSION": "struct kfd_ioctl_get_version_args",
    "ACQUIRE_VM": "struct kfd_ioctl_acquire_vm_args",
    "RUNTIME_ENABLE": "struct kfd_ioctl_runtime_enable_args",
    "GET_PROCESS_APERTURES_NEW": "struct kfd_ioctl_get_process_apertures_new_args",
    "GET_CLOCK_COUNTERS": "struct kfd_ioctl_get_clock_counters_args",
    "ALLOC_MEMORY_OF_GPU": "struct kfd_ioctl_alloc_memory_of_gpu_args",
    "FREE_MEMORY_OF_GPU": "struct kfd_ioctl_free_memory_of_gpu_args",
    "MAP_MEMORY_TO_GPU": "struct kfd_ioctl_map_memory_to_gpu_args",
    "UNMAP_MEMORY_FROM_GPU": "struct kfd_ioctl_unmap_memory_from_gpu_args",
    "CREATE_QUEUE": "struct kfd_ioctl_create_queue_args",
    "DESTROY_QUEUE": "struct kfd_ioctl_destroy_queue_args",
    "CREATE_EVENT": "struct kfd_ioctl_create_event_args",
    "DESTROY_EVENT": "struct kfd_ioctl_destroy_event_args",
    "RESET_EVENT": "struct kfd_ioctl_reset_event_args",
    "WAIT_EVENTS": "struct kfd_ioctl_wait_events_args",
}
_HINTS = {
    "ACQUIRE_VM": "the render node must belong to the same GPU (drm_render_minor of its topology node)",
    "ALLOC_MEMORY_OF_GPU": "ENOMEM: out of GPU memory (free buffers); EINVAL on host-visible VRAM: enable "
                           "resizable BAR",
    "CREATE_QUEUE": "KFD checks the ring/rptr/wptr/EOP/CWSR buffers (kfd_queue_acquire_buffers)",
}


class KFD:
    """One open /dev/kfd: ``call(name, **fields)`` issues AMDKFD_IOC_<name> and returns the struct."""

    def __init__(self, kernel: Kernel, fd: int):
        self.kernel, self.fd = kernel, fd

    def call(self, name: str, cdata: Any = None, **fields: Any) -> Any:
        """Issue AMDKFD_IOC_``name`` with a struct built from ``fields`` (or ``cdata``)."""
        if cdata is None:
            cdata = ffi.new(STRUCTS[name] + " *", fields or None)
        try:
            self.kernel.ioctl(self.fd, getattr(K, "AMDKFD_IOC_" + name), addressof(cdata), "AMDKFD_IOC_" + name)
        except IoctlError as e:
            if name in _HINTS and not e.hint:
                raise IoctlError(e.name, e.errno, _HINTS[name]) from e
            raise
        return cdata

    def map_to_gpu(self, handle: int, gpu_id: int) -> None:
        ids = ffi.new("uint32_t[1]", [gpu_id])
        a = self.call("MAP_MEMORY_TO_GPU", handle=handle, device_ids_array_ptr=addressof(ids), n_devices=1)
        if a.n_success != 1:
            raise HwdrvError(f"AMDKFD_IOC_MAP_MEMORY_TO_GPU mapped buffer {handle:#x} on {a.n_success} of 1 GPUs")

    def unmap_from_gpu(self, handle: int, gpu_id: int) -> None:
        ids = ffi.new("uint32_t[1]", [gpu_id])
        self.call("UNMAP_MEMORY_FROM_GPU", handle=handle, device_ids_array_ptr=addressof(ids), n_devices=1)

    def wait_events(self, event_ids: list[int], timeout_ms: int) -> tuple[int, Any]:
        """WAIT_EVENTS on ``event_ids`` (any of them); returns (wait_result, kfd_event_data array)."""
        data = ffi.new(f"struct kfd_event_data[{len(event_ids)}]", [{"event_id": e} for e in event_ids])
        a = self.call("WAIT_EVENTS", events_ptr=addressof(data), num_events=len(event_ids), wait_for_all=0,
                      timeout=timeout_ms)
        return a.wait_result, data
