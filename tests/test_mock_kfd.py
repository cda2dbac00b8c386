"""The mock KFD (/dev/kfd + render node + sysfs topology) driven through raw MockKernel ioctls with
structs from the generated kfd_ioctl.h bindings. Good calls and the errno the kernel returns for
bad ones (docs/amd-kfd-rules.md names the kernel function of each rule). Nothing from hwdrv/amd's
backend is used; `Rig` is a minimal client written from reference/amd.md section 1.
"""
from __future__ import annotations

import errno
import threading
import time

import pytest

import hwdrv.mock.amd as mock_amd
from hwdrv.amd.gen import kfd as K
from hwdrv.amd.gen import kfd_priv as P
from hwdrv.errors import IoctlError
from hwdrv.ioctl import hostmem
from hwdrv.ioctl.bindings import addressof
from hwdrv.ioctl.kernel import MAP_ANONYMOUS, MAP_FIXED, MAP_NORESERVE, MAP_PRIVATE, MAP_SHARED, O_RDWR, PROT_NONE, \
    PROT_READ, PROT_WRITE
from hwdrv.mock.amd.topology import TOPOLOGY, GpuNode

ffi = K.ffi
F = K
W, X, NOSUB, UNC, COH, PUB = (K.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE, K.KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE,
                              K.KFD_IOC_ALLOC_MEM_FLAGS_NO_SUBSTITUTE, K.KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED,
                              K.KFD_IOC_ALLOC_MEM_FLAGS_COHERENT, K.KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC)
VRAM = W | X | NOSUB | K.KFD_IOC_ALLOC_MEM_FLAGS_VRAM
GTT = W | X | NOSUB | COH | UNC | K.KFD_IOC_ALLOC_MEM_FLAGS_GTT


class Rig:
    """Bring-up per reference/amd.md 1.6: topology -> open kfd + render node -> GET_VERSION -> ACQUIRE_VM."""

    def __init__(self, node: GpuNode | None = None, acquire: bool = True):
        self.k = mock_amd.make_kernel(node)
        nodes = sorted(int(n) for n in self.k.listdir(f"{TOPOLOGY}/nodes"))
        gpus = [n for n in nodes if int(self.k.read_file(f"{TOPOLOGY}/nodes/{n}/gpu_id")) != 0]
        self.props = dict((ln.split()[0], int(ln.split()[1])) for ln in
                          self.k.read_file(f"{TOPOLOGY}/nodes/{gpus[0]}/properties").decode().splitlines())
        self.gpu_id = int(self.k.read_file(f"{TOPOLOGY}/nodes/{gpus[0]}/gpu_id"))
        self.kfd = self.k.open("/dev/kfd", O_RDWR)
        self.drm = self.k.open(f"/dev/dri/renderD{self.props['drm_render_minor']}", O_RDWR)
        self.gpu = self.k.amd.gpu
        if acquire:
            self.call("ACQUIRE_VM", drm_fd=self.drm, gpu_id=self.gpu_id)

    def call(self, name: str, cdata=None, **fields):
        req = getattr(K, "AMDKFD_IOC_" + name)
        if cdata is None:
            cdata = ffi.new(K.LAYOUT and _STRUCT[name] + " *", fields or None)
        self.k.ioctl(self.kfd, req, addressof(cdata), name)
        return cdata

    def fails(self, err: int, name: str, **fields) -> IoctlError:
        with pytest.raises(IoctlError) as ei:
            self.call(name, **fields)
        assert ei.value.errno == err, f"{name}: got {ei.value}"
        return ei.value

    def reserve(self, size: int) -> int:
        return self.k.mmap(0, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)

    def alloc(self, size: int, flags: int, va: int | None = None, mmap_offset: int = 0, map_: bool = True):
        va = self.reserve(size) if va is None else va
        a = self.call("ALLOC_MEMORY_OF_GPU", va_addr=va, size=size, gpu_id=self.gpu_id, flags=flags,
                      mmap_offset=mmap_offset)
        if map_:
            self.map(a.handle)
        return va, a.handle, a.mmap_offset

    def map(self, handle: int, call: str = "MAP_MEMORY_TO_GPU"):
        ids = ffi.new("uint32_t[1]", [self.gpu_id])
        return self.call(call, handle=handle, device_ids_array_ptr=addressof(ids), n_devices=1)

    def cpu_map(self, va: int, size: int, offset: int) -> int:
        return self.k.mmap(va, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, self.drm, offset)

    def queue_buffers(self, ring_size: int = 0x10000, compute: bool = True) -> dict:
        sz = self.k.amd.gpu.node.sizes
        ring, _, ro = self.alloc(ring_size, GTT)
        gart, _, go = self.alloc(0x1000, GTT)
        self.cpu_map(ring, ring_size, ro)
        self.cpu_map(gart, 0x1000, go)
        d = dict(ring_base_address=ring, ring_size=ring_size, write_pointer_address=gart + 56,
                 read_pointer_address=gart + 128, gpu_id=self.gpu_id, queue_percentage=100, queue_priority=7,
                 queue_type=K.KFD_IOC_QUEUE_TYPE_COMPUTE if compute else K.KFD_IOC_QUEUE_TYPE_SDMA)
        if compute:
            eop, _, _ = self.alloc(sz.eop_buffer_size, VRAM)
            total = (sz.cwsr_size + sz.debug_memory_size + 4095) // 4096 * 4096
            cwsr, _, _ = self.alloc(total, VRAM)
            d.update(eop_buffer_address=eop, eop_buffer_size=sz.eop_buffer_size, ctx_save_restore_address=cwsr,
                     ctx_save_restore_size=sz.cwsr_size, ctl_stack_size=sz.ctl_stack_size)
        return d


_STRUCT = {name: s for name, s in [
    ("GET_VERSION", "struct kfd_ioctl_get_version_args"), ("ACQUIRE_VM", "struct kfd_ioctl_acquire_vm_args"),
    ("ALLOC_MEMORY_OF_GPU", "struct kfd_ioctl_alloc_memory_of_gpu_args"),
    ("FREE_MEMORY_OF_GPU", "struct kfd_ioctl_free_memory_of_gpu_args"),
    ("MAP_MEMORY_TO_GPU", "struct kfd_ioctl_map_memory_to_gpu_args"),
    ("UNMAP_MEMORY_FROM_GPU", "struct kfd_ioctl_unmap_memory_from_gpu_args"),
    ("CREATE_QUEUE", "struct kfd_ioctl_create_queue_args"), ("DESTROY_QUEUE", "struct kfd_ioctl_destroy_queue_args"),
    ("UPDATE_QUEUE", "struct kfd_ioctl_update_queue_args"), ("CREATE_EVENT", "struct kfd_ioctl_create_event_args"),
    ("DESTROY_EVENT", "struct kfd_ioctl_destroy_event_args"), ("SET_EVENT", "struct kfd_ioctl_set_event_args"),
    ("RESET_EVENT", "struct kfd_ioctl_reset_event_args"), ("WAIT_EVENTS", "struct kfd_ioctl_wait_events_args"),
    ("GET_PROCESS_APERTURES_NEW", "struct kfd_ioctl_get_process_apertures_new_args"),
    ("GET_PROCESS_APERTURES", "struct kfd_ioctl_get_process_apertures_args"),
    ("GET_CLOCK_COUNTERS", "struct kfd_ioctl_get_clock_counters_args"),
    ("SET_SCRATCH_BACKING_VA", "struct kfd_ioctl_set_scratch_backing_va_args"),
    ("SET_TRAP_HANDLER", "struct kfd_ioctl_set_trap_handler_args"),
    ("SET_MEMORY_POLICY", "struct kfd_ioctl_set_memory_policy_args"),
    ("AVAILABLE_MEMORY", "struct kfd_ioctl_get_available_memory_args"),
    ("RUNTIME_ENABLE", "struct kfd_ioctl_runtime_enable_args")]}


# ---- topology -----------------------------------------------------------------------------------
def test_topology_is_a_7900xtx_gfx1100_node():
    r = Rig(acquire=False)
    assert r.k.read_file(f"{TOPOLOGY}/nodes/0/gpu_id") == b"0\n"               # CPU node
    v = r.props["gfx_target_version"]
    assert "gfx%d%x%x" % (v // 10000, (v // 100) % 100, v % 100) == "gfx1100"
    assert r.props["vendor_id"] == 0x1002 and r.props["device_id"] == 0x744C   # Navi 31 XTX
    assert r.props["simd_count"] // r.props["simd_per_cu"] == 96 and r.props["wave_front_size"] == 32
    keys = [ln.split()[0] for ln in r.k.read_file(f"{TOPOLOGY}/nodes/1/properties").decode().splitlines()]
    assert keys[:3] == ["cpu_cores_count", "simd_count", "mem_banks_count"] and keys[-1] == "max_engine_clk_ccompute"
    assert r.k.exists(f"/dev/dri/renderD{r.props['drm_render_minor']}")
    base = r.k.read_file(f"/sys/class/drm/renderD128/device/ip_discovery/die/0/11/0/base_addr").split()
    assert int(base[0], 16) == 0x1260                                          # GC segment 0 (reference 2.2)


def test_queue_buffer_sizes_follow_kfd_queue_ctx_save_restore_size():
    sz = GpuNode().sizes
    # 96 CUs, wave_num = 96*32; ctl stack = ALIGN(40 + 3072*12 + 8, 4K); wg data = 96*(0x60000+0x4000+0x10000+0x1000)
    assert sz.ctl_stack_size == 0xA000
    assert sz.cwsr_size == 0xA000 + 96 * 0x75000
    assert sz.debug_memory_size == 3072 * 32 and sz.eop_buffer_size == 4096


# ---- version, VM, misc ---------------------------------------------------------------------------
def test_get_version_and_unknown_ioctl():
    r = Rig(acquire=False)
    v = r.call("GET_VERSION")
    assert (v.major_version, v.minor_version) == (K.KFD_IOCTL_MAJOR_VERSION, K.KFD_IOCTL_MINOR_VERSION)
    from hwdrv.ioctl import _IOWR
    with pytest.raises(IoctlError) as ei:
        r.k.ioctl(r.kfd, _IOWR("K", 0x7F, 8), addressof(ffi.new("uint64_t *")))
    assert ei.value.errno == errno.ENOTTY


def test_acquire_vm_rules():
    r = Rig(acquire=False)
    r.fails(errno.EINVAL, "ACQUIRE_VM", drm_fd=r.kfd, gpu_id=r.gpu_id)         # not a render node
    r.fails(errno.EINVAL, "ACQUIRE_VM", drm_fd=r.drm, gpu_id=r.gpu_id + 1)     # no such GPU
    r.call("ACQUIRE_VM", drm_fd=r.drm, gpu_id=r.gpu_id)
    r.call("ACQUIRE_VM", drm_fd=r.drm, gpu_id=r.gpu_id)                        # same fd again: fine
    other = r.k.open("/dev/dri/renderD128", O_RDWR)
    r.fails(errno.EBUSY, "ACQUIRE_VM", drm_fd=other, gpu_id=r.gpu_id)


def test_apertures_clock_and_misc():
    r = Rig()
    a = r.call("GET_PROCESS_APERTURES_NEW", num_of_nodes=0)
    assert a.num_of_nodes == 1
    ap = ffi.new("struct kfd_process_device_apertures[1]")
    r.call("GET_PROCESS_APERTURES_NEW", kfd_process_device_apertures_ptr=addressof(ap), num_of_nodes=1)
    assert ap[0].gpu_id == r.gpu_id and ap[0].lds_base == 1 << 48 and ap[0].scratch_base == 2 << 48
    assert ap[0].gpuvm_limit == (1 << 47) - 1
    r.fails(errno.EINVAL, "GET_PROCESS_APERTURES_NEW", kfd_process_device_apertures_ptr=addressof(ap), num_of_nodes=2)
    old = r.call("GET_PROCESS_APERTURES")                                 # deprecated fixed-array form
    assert old.num_of_nodes == 1 and old.process_apertures[0].gpu_id == r.gpu_id
    assert old.process_apertures[0].scratch_limit == (2 << 48) + 0xFFFFFFFF
    c1 = r.call("GET_CLOCK_COUNTERS", gpu_id=r.gpu_id)
    time.sleep(0.002)
    c2 = r.call("GET_CLOCK_COUNTERS", gpu_id=r.gpu_id)
    assert c2.gpu_clock_counter > c1.gpu_clock_counter and c1.system_clock_freq == 1_000_000_000
    assert r.call("GET_CLOCK_COUNTERS", gpu_id=1234).gpu_clock_counter == 0      # node without GPU: 0, no error
    r.fails(errno.EINVAL, "SET_MEMORY_POLICY", gpu_id=r.gpu_id, default_policy=2)
    r.call("SET_MEMORY_POLICY", gpu_id=r.gpu_id, default_policy=K.KFD_IOC_CACHE_POLICY_NONCOHERENT)
    r.fails(errno.EINVAL, "SET_SCRATCH_BACKING_VA", gpu_id=5, va_addr=0x1000)
    r.call("SET_TRAP_HANDLER", gpu_id=r.gpu_id, tba_addr=0x1000, tma_addr=0x2000)
    before = r.call("AVAILABLE_MEMORY", gpu_id=r.gpu_id).available
    r.alloc(1 << 20, VRAM)
    assert r.call("AVAILABLE_MEMORY", gpu_id=r.gpu_id).available == before - (1 << 20)


# ---- memory --------------------------------------------------------------------------------------
def test_alloc_map_cpu_and_gpu_see_the_same_bytes():
    r = Rig()
    va, h, off = r.alloc(0x4000, VRAM | PUB)
    assert h >> 32 == r.gpu_id
    r.cpu_map(va, 0x4000, off)
    hostmem.write(va + 16, b"hello gpu")
    assert r.gpu.page_table.read(va + 16, 9) == b"hello gpu"          # GPU VA == CPU VA
    r.gpu.page_table.write(va + 100, b"\x07\x08")
    assert hostmem.read(va + 100, 2) == b"\x07\x08"


def test_alloc_rules():
    r = Rig(acquire=False)
    r.fails(errno.ENODEV, "ALLOC_MEMORY_OF_GPU", va_addr=0x10000, size=0x1000, gpu_id=r.gpu_id, flags=VRAM)
    r.call("ACQUIRE_VM", drm_fd=r.drm, gpu_id=r.gpu_id)
    r.fails(errno.EINVAL, "ALLOC_MEMORY_OF_GPU", va_addr=0x10000, size=0, gpu_id=r.gpu_id, flags=VRAM)
    r.fails(errno.EINVAL, "ALLOC_MEMORY_OF_GPU", va_addr=0x10000, size=0x1000, gpu_id=r.gpu_id + 1, flags=VRAM)
    r.fails(errno.EINVAL, "ALLOC_MEMORY_OF_GPU", va_addr=0x10000, size=0x1000, gpu_id=r.gpu_id, flags=W)   # no type
    r.fails(errno.EINVAL, "ALLOC_MEMORY_OF_GPU", va_addr=0x10000, size=0x1000, gpu_id=r.gpu_id,
            flags=K.KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL)                     # doorbell must be the 8 KiB slice
    r.fails(errno.EINVAL, "ALLOC_MEMORY_OF_GPU", va_addr=0x10000, size=0x2000, gpu_id=r.gpu_id,
            flags=K.KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP)                   # MMIO remap must be one page
    r.fails(errno.EINVAL, "ALLOC_MEMORY_OF_GPU", va_addr=0x10000, size=0x1000, gpu_id=r.gpu_id,
            flags=K.KFD_IOC_ALLOC_MEM_FLAGS_USERPTR, mmap_offset=0x12345)  # unaligned user pointer
    va, h, off = r.alloc(0x2000, VRAM)                                   # no PUBLIC: no CPU access
    with pytest.raises(Exception) as ei:
        r.cpu_map(va, 0x2000, off)
    assert getattr(ei.value, "errno", None) == errno.EPERM
    with pytest.raises(Exception) as ei:
        r.k.mmap(0, 0x1000, PROT_READ, MAP_SHARED, r.drm, 0x4242000)     # no object at that offset
    assert getattr(ei.value, "errno", None) == errno.EINVAL


def test_small_bar_refuses_public_vram_and_vram_runs_out():
    r = Rig(GpuNode(large_bar=False, vram_bytes=1 << 20))
    r.fails(errno.EINVAL, "ALLOC_MEMORY_OF_GPU", va_addr=r.reserve(0x1000), size=0x1000, gpu_id=r.gpu_id, flags=VRAM | PUB)
    r.alloc(1 << 19, VRAM)
    r.fails(errno.ENOMEM, "ALLOC_MEMORY_OF_GPU", va_addr=r.reserve(1 << 20), size=1 << 20, gpu_id=r.gpu_id, flags=VRAM)


def test_map_unmap_free_rules():
    r = Rig()
    va, h, _ = r.alloc(0x2000, GTT, map_=False)
    ids = ffi.new("uint32_t[1]", [r.gpu_id])
    r.fails(errno.EINVAL, "MAP_MEMORY_TO_GPU", handle=h, device_ids_array_ptr=addressof(ids), n_devices=0)
    r.fails(errno.EINVAL, "MAP_MEMORY_TO_GPU", handle=h, device_ids_array_ptr=addressof(ids), n_devices=1, n_success=2)
    r.fails(errno.EINVAL, "MAP_MEMORY_TO_GPU", handle=h + 99, device_ids_array_ptr=addressof(ids), n_devices=1)
    bad = ffi.new("uint32_t[1]", [r.gpu_id ^ 1])
    r.fails(errno.EINVAL, "MAP_MEMORY_TO_GPU", handle=h, device_ids_array_ptr=addressof(bad), n_devices=1)
    assert r.map(h).n_success == 1
    r.fails(errno.EINVAL, "UNMAP_MEMORY_FROM_GPU", handle=h, device_ids_array_ptr=addressof(ids), n_devices=1,
            n_success=1 + 1)
    # another buffer at an overlapping VA: mapping it conflicts (amdgpu_vm_bo_map)
    a2 = r.call("ALLOC_MEMORY_OF_GPU", va_addr=va + 0x1000, size=0x1000, gpu_id=r.gpu_id, flags=GTT)
    r.fails(errno.EINVAL, "MAP_MEMORY_TO_GPU", handle=a2.handle, device_ids_array_ptr=addressof(ids), n_devices=1)
    r.fails(errno.EBUSY, "FREE_MEMORY_OF_GPU", handle=h)                  # still mapped
    r.map(h, "UNMAP_MEMORY_FROM_GPU")
    r.fails(errno.EINVAL, "UNMAP_MEMORY_FROM_GPU", handle=h, device_ids_array_ptr=addressof(ids), n_devices=1)
    r.call("FREE_MEMORY_OF_GPU", handle=h)
    r.fails(errno.EINVAL, "FREE_MEMORY_OF_GPU", handle=h)                 # double free
    assert r.map(a2.handle).n_success == 1                                # the VA is free now


def test_userptr_memory_is_the_users_pages():
    r = Rig()
    cpu = r.k.mmap(0, 0x3000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    hostmem.write(cpu, b"from the CPU")
    _, h, off = r.alloc(0x3000, W | K.KFD_IOC_ALLOC_MEM_FLAGS_USERPTR, va=cpu, mmap_offset=cpu)
    assert off == cpu and r.gpu.page_table.read(cpu, 12) == b"from the CPU"


# ---- queues --------------------------------------------------------------------------------------
def test_create_pm4_and_sdma_queues_doorbell_offsets():
    r = Rig()
    q = r.call("CREATE_QUEUE", **r.queue_buffers())
    assert q.queue_id == 0
    assert q.doorbell_offset == P.KFD_MMAP_TYPE_DOORBELL | (r.gpu_id << P.KFD_MMAP_GPU_ID_SHIFT) | 0
    s1 = r.call("CREATE_QUEUE", **r.queue_buffers(compute=False))
    s2 = r.call("CREATE_QUEUE", **r.queue_buffers(compute=False))
    # SDMA engine 0 / engine 1 queue 0 doorbells as seen in a real gfx11 trace (reference/amd.md 1.7)
    assert (s1.doorbell_offset & 0x1FFF, s2.doorbell_offset & 0x1FFF) == (0x800, 0x850)
    # the real trace's example offset for gpu_id 0x697D, slot 0x800
    assert s1.doorbell_offset == 0xDA5F400000000800
    q2 = r.call("CREATE_QUEUE", **r.queue_buffers())
    assert (q2.queue_id, q2.doorbell_offset & 0x1FFF) == (3, 8)


@pytest.mark.parametrize("change,err", [
    (dict(ring_size=0x3000), errno.EINVAL),                 # not a power of two
    (dict(queue_percentage=101), errno.EINVAL),
    (dict(queue_priority=16), errno.EINVAL),
    (dict(queue_type=9), 524),                              # ENOTSUPP (kernel-internal errno)
    (dict(ring_size=0x8000), errno.EINVAL),                 # ring BO is 64 KiB, not 32 KiB
    (dict(ctl_stack_size=0x1000), errno.EINVAL),
    (dict(ctx_save_restore_size=0x1000), errno.EINVAL),
    (dict(eop_buffer_size=0x2000), errno.EINVAL),
    (dict(gpu_id=7), errno.EINVAL),
    (dict(write_pointer_address=0x1000), errno.EINVAL),     # not in a GPU mapping
])
def test_create_queue_rules(change, err):
    r = Rig()
    d = r.queue_buffers()
    d.update(change)
    r.fails(err, "CREATE_QUEUE", **d)


def test_queue_rptr_must_be_a_one_page_mapping_and_ring_its_start():
    r = Rig()
    d = r.queue_buffers()
    big, _, _ = r.alloc(0x2000, GTT)
    r.fails(errno.EINVAL, "CREATE_QUEUE", **{**d, "read_pointer_address": big + 128})
    r.fails(errno.EINVAL, "CREATE_QUEUE", **{**d, "ring_base_address": d["ring_base_address"] + 0x1000})


def test_queue_lifecycle_and_buffer_references():
    r = Rig(acquire=False)
    r.fails(errno.ESRCH, "CREATE_QUEUE", ring_size=0x1000, gpu_id=r.gpu_id)
    r.call("ACQUIRE_VM", drm_fd=r.drm, gpu_id=r.gpu_id)
    d = r.queue_buffers()
    q = r.call("CREATE_QUEUE", **d)
    ring_handle = next(b.handle for b in r.k.amd.processes[0].bos.values() if b.va == d["ring_base_address"])
    ids = ffi.new("uint32_t[1]", [r.gpu_id])
    r.fails(errno.EBUSY, "UNMAP_MEMORY_FROM_GPU", handle=ring_handle, device_ids_array_ptr=addressof(ids), n_devices=1)
    r.fails(errno.EEXIST, "RUNTIME_ENABLE", mode_mask=K.KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK)
    r.call("UPDATE_QUEUE", queue_id=q.queue_id, ring_base_address=d["ring_base_address"], ring_size=0x10000,
           queue_percentage=50, queue_priority=3)
    r.fails(errno.EFAULT, "UPDATE_QUEUE", queue_id=9, ring_size=0x10000)
    r.fails(errno.EINVAL, "DESTROY_QUEUE", queue_id=9)
    r.call("DESTROY_QUEUE", queue_id=q.queue_id)
    r.fails(errno.EINVAL, "DESTROY_QUEUE", queue_id=q.queue_id)
    r.map(ring_handle, "UNMAP_MEMORY_FROM_GPU")


def test_sdma_queue_limit():
    r = Rig()
    n = r.props["num_sdma_engines"] * r.props["num_sdma_queues_per_engine"]
    for _ in range(n):
        r.call("CREATE_QUEUE", **r.queue_buffers(ring_size=0x1000, compute=False))
    r.fails(errno.ENOMEM, "CREATE_QUEUE", **r.queue_buffers(ring_size=0x1000, compute=False))


def test_small_ring_is_clamped_to_the_minimum():
    r = Rig()
    d = r.queue_buffers(ring_size=0x1000, compute=False)
    q = r.call("CREATE_QUEUE", **{**d, "ring_size": 0})  # clamped to 1 KiB; a sub-page ring checks its start only
    assert q.ring_size == P.KFD_MIN_QUEUE_RING_SIZE
    two, _, _ = r.alloc(0x2000, GTT)
    r.fails(errno.EINVAL, "CREATE_QUEUE", **{**d, "ring_size": 0x1000, "ring_base_address": two})   # BO is 2 pages


def test_doorbell_mmap_and_doorbell_hook():
    r = Rig()
    q = r.call("CREATE_QUEUE", **r.queue_buffers())
    s = r.call("CREATE_QUEUE", **r.queue_buffers(compute=False))
    with pytest.raises(Exception) as ei:
        r.k.mmap(0, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED, r.kfd, q.doorbell_offset & ~0x1FFF)
    assert getattr(ei.value, "errno", None) == errno.EINVAL                 # must be the 8 KiB slice
    with pytest.raises(Exception) as ei:
        r.k.mmap(0, 0x2000, PROT_READ | PROT_WRITE, MAP_SHARED, r.kfd, P.KFD_MMAP_TYPE_DOORBELL | (5 << 46))
    assert getattr(ei.value, "errno", None) == errno.ENODEV
    base = r.k.mmap(0, 0x2000, PROT_READ | PROT_WRITE, MAP_SHARED, r.kfd, q.doorbell_offset & ~0x1FFF)
    rung = []
    r.gpu.doorbell_listener = lambda queue, value: rung.append((queue.queue_id, queue.type, value))
    r.k.mmio_write64(base + (q.doorbell_offset & 0x1FFF), 42)
    r.k.mmio_write64(base + (s.doorbell_offset & 0x1FFF), 0x40)
    assert rung == [(q.queue_id, K.KFD_IOC_QUEUE_TYPE_COMPUTE, 42), (s.queue_id, K.KFD_IOC_QUEUE_TYPE_SDMA, 0x40)]
    assert hostmem.read(base + (q.doorbell_offset & 0x1FFF), 8) == (42).to_bytes(8, "little")
    r.k.munmap(base, 0x2000)


def test_mmio_remap_page():
    r = Rig()
    _, h, off = r.alloc(0x1000, K.KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP | W, map_=False)
    assert off == P.KFD_MMAP_TYPE_MMIO | (r.gpu_id << P.KFD_MMAP_GPU_ID_SHIFT)
    with pytest.raises(Exception) as ei:
        r.k.mmap(0, 0x2000, PROT_READ | PROT_WRITE, MAP_SHARED, r.kfd, off)
    assert getattr(ei.value, "errno", None) == errno.EINVAL
    assert r.k.mmap(0, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED, r.kfd, off) > 0


# ---- events --------------------------------------------------------------------------------------
def _event_page(r: Rig):
    va, h, off = r.alloc(0x8000, GTT)
    r.cpu_map(va, 0x8000, off)
    return va, h


def _wait(r: Rig, ids, timeout_ms: int, wait_all: int = 0):
    data = ffi.new("struct kfd_event_data[]", len(ids))
    for i, e in enumerate(ids):
        data[i].event_id = e
    a = r.call("WAIT_EVENTS", events_ptr=addressof(data), num_events=len(ids), wait_for_all=wait_all, timeout=timeout_ms)
    return a.wait_result, data


def test_event_page_signal_events_and_waits():
    r = Rig()
    page, h = _event_page(r)
    e = r.call("CREATE_EVENT", event_page_offset=h, event_type=K.KFD_IOC_EVENT_SIGNAL, auto_reset=1)
    assert e.event_page_offset == P.KFD_MMAP_TYPE_EVENTS and e.event_slot_index == e.event_id
    assert hostmem.read(page, 0x8000) == b"\xff" * 0x8000                 # every slot unsignaled
    r.fails(errno.EINVAL, "CREATE_EVENT", event_page_offset=h, event_type=K.KFD_IOC_EVENT_SIGNAL)   # second page
    res, _ = _wait(r, [e.event_id], 10)
    assert res == K.KFD_IOC_WAIT_RESULT_TIMEOUT
    r.call("SET_EVENT", event_id=e.event_id)
    assert _wait(r, [e.event_id], 10)[0] == K.KFD_IOC_WAIT_RESULT_COMPLETE
    assert _wait(r, [e.event_id], 0)[0] == K.KFD_IOC_WAIT_RESULT_TIMEOUT    # auto-reset: consumed
    # the GPU path: value written to the event's slot, then an interrupt with its id as context
    proc = r.k.amd.processes[0]
    hostmem.write(page + 8 * e.event_id, (5).to_bytes(8, "little"))
    threading.Timer(0.02, proc.events.interrupt, args=(e.event_id,)).start()
    assert _wait(r, [e.event_id], 2000)[0] == K.KFD_IOC_WAIT_RESULT_COMPLETE
    assert hostmem.read(page + 8 * e.event_id, 8) == b"\xff" * 8           # re-armed
    r.fails(errno.EPERM, "FREE_MEMORY_OF_GPU", handle=h)
    r.fails(errno.EINVAL, "WAIT_EVENTS", events_ptr=addressof(ffi.new("struct kfd_event_data[1]", [{"event_id": 77}])),
            num_events=1, timeout=0)


def test_fault_events_carry_the_fault():
    r = Rig()
    _event_page(r)
    _, h2 = None, None
    mem = r.call("CREATE_EVENT", event_type=K.KFD_IOC_EVENT_MEMORY)
    hw = r.call("CREATE_EVENT", event_type=K.KFD_IOC_EVENT_HW_EXCEPTION)
    assert mem.event_id >= P.KFD_FIRST_NONSIGNAL_EVENT_ID and hw.event_id == mem.event_id + 1
    r.fails(errno.EINVAL, "SET_EVENT", event_id=mem.event_id)              # not CPU-signalable
    proc = r.k.amd.processes[0]
    proc.events.memory_fault(0xDEAD000, r.gpu_id, not_present=True)
    res, data = _wait(r, [mem.event_id, hw.event_id], 100)
    assert res == K.KFD_IOC_WAIT_RESULT_COMPLETE
    m = data[0].memory_exception_data
    assert (m.va, m.gpu_id, m.failure.NotPresent, m.failure.ReadOnly) == (0xDEAD000, r.gpu_id, 1, 0)
    proc.events.hw_exception(r.gpu_id, reset_cause=0, memory_lost=1)
    res, data = _wait(r, [hw.event_id], 100)
    assert (data[0].hw_exception_data.gpu_id, data[0].hw_exception_data.memory_lost) == (r.gpu_id, 1)
    r.call("DESTROY_EVENT", event_id=mem.event_id)
    r.fails(errno.EINVAL, "DESTROY_EVENT", event_id=mem.event_id)


def test_signal_slots_run_out_with_a_small_page():
    r = Rig()
    va, h, _ = r.alloc(0x1000, GTT)                                       # 512 slots
    r.call("CREATE_EVENT", event_page_offset=h, event_type=K.KFD_IOC_EVENT_SIGNAL)
    for _ in range(511):
        r.call("CREATE_EVENT", event_type=K.KFD_IOC_EVENT_SIGNAL)
    r.fails(errno.ENOSPC, "CREATE_EVENT", event_type=K.KFD_IOC_EVENT_SIGNAL)


def test_close_releases_everything():
    r = Rig()
    r.call("CREATE_QUEUE", **r.queue_buffers())
    used = r.gpu.vram.used
    assert used > 0 and r.gpu.page_table.mappings()
    r.k.close(r.kfd)
    assert r.gpu.vram.used == 0 and r.gpu.gtt.used == 0 and not r.gpu.page_table.mappings()
