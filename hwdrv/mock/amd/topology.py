"""The mock's one GPU: a Radeon RX 7900 XTX (Navi 31, gfx1100), as KFD's sysfs topology shows it.

Node properties are those of a real 7900 XTX (the list captured in tinygrad's mock KFD driver,
test/mockgpu/amd/amddriver.py, in kfd_topology.c node_show order; see reference/amd.md section
1.1). Queue-buffer sizes (control stack, CWSR, debugger memory, EOP) are derived from them exactly
as kfd_queue.c ``kfd_queue_ctx_save_restore_size`` does, because KFD validates CREATE_QUEUE against
them but does not print them in sysfs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

PAGE = 4096
TOPOLOGY = "/sys/devices/virtual/kfd/kfd/topology"

# GPU node properties in node_show order (values of a real RX 7900 XTX; drm_render_minor filled in)
GPU_PROPERTIES = [
    ("cpu_cores_count", 0), ("simd_count", 192), ("mem_banks_count", 1), ("caches_count", 206),
    ("io_links_count", 1), ("p2p_links_count", 0), ("cpu_core_id_base", 0), ("simd_id_base", 2147488032),
    ("max_waves_per_simd", 16), ("lds_size_in_kb", 64), ("gds_size_in_kb", 0), ("num_gws", 64),
    ("wave_front_size", 32), ("array_count", 12), ("simd_arrays_per_engine", 2), ("cu_per_simd_array", 8),
    ("simd_per_cu", 2), ("max_slots_scratch_cu", 32), ("gfx_target_version", 110000), ("vendor_id", 4098),
    ("device_id", 29772), ("location_id", 34304), ("domain", 0), ("drm_render_minor", 128), ("hive_id", 0),
    ("num_sdma_engines", 2), ("num_sdma_xgmi_engines", 0), ("num_sdma_queues_per_engine", 6),
    ("num_cp_queues", 8), ("max_engine_clk_fcompute", 2482), ("local_mem_size", 0), ("fw_version", 2140),
    ("capability", 671588992), ("debug_prop", 1495), ("sdma_fw_version", 20),
    ("unique_id", 11673270660693242239), ("num_xcc", 1), ("max_engine_clk_ccompute", 2400),
]
CPU_PROPERTIES = [("cpu_cores_count", 16), ("simd_count", 0), ("mem_banks_count", 1), ("caches_count", 0),
                  ("io_links_count", 1), ("p2p_links_count", 0), ("cpu_core_id_base", 0), ("simd_id_base", 0),
                  ("max_waves_per_simd", 0), ("lds_size_in_kb", 0), ("gds_size_in_kb", 0), ("num_gws", 0),
                  ("wave_front_size", 0), ("array_count", 0), ("simd_arrays_per_engine", 0),
                  ("cu_per_simd_array", 0), ("simd_per_cu", 0), ("max_slots_scratch_cu", 0),
                  ("gfx_target_version", 0), ("vendor_id", 0), ("device_id", 0), ("location_id", 0), ("domain", 0),
                  ("drm_render_minor", 0), ("hive_id", 0), ("num_sdma_engines", 0), ("num_sdma_xgmi_engines", 0),
                  ("num_sdma_queues_per_engine", 0), ("num_cp_queues", 0), ("max_engine_clk_ccompute", 2400)]
VRAM_BYTES = 25753026560          # 7900 XTX mem_banks/0 size_in_bytes (24 GiB less the driver's reservation)
GTT_BYTES = 16 << 30              # mock system-memory (GTT) capacity
GPU_ID = 0x697D                   # a gpu_id seen in a real KFD trace (reference/amd.md section 1.5)
# SOC15/Navi doorbell layout: SDMA engine doorbell indices (amdgpu_doorbell.h AMDGPU_NAVI10_DOORBELL_sDMA_ENGINE0/1)
# and the compute-doorbell range KFD reserves for them (reserved_doorbell_mask/val, kfd_process_device_init_vm path)
SDMA_DOORBELL_IDX = (0x100, 0x10A)
RESERVED_DOORBELL_MASK, RESERVED_DOORBELL_VAL = 0x1E0, 0x100
DOORBELL_BYTES = 8                # 64-bit doorbells on SOC15
# GC segment bases reported by IP discovery (sysfs ip_discovery/die/0/GC/0/base_addr) on Navi 31
IP_VERSIONS = {"GC": (11, (11, 0, 0)), "SDMA0": (42, (6, 0, 0)), "NBIF": (108, (4, 3, 0))}


@dataclass(frozen=True)
class QueueSizes:
    """Per-node queue buffer sizes KFD checks in kfd_queue_acquire_buffers."""
    ctl_stack_size: int
    cwsr_size: int
    debug_memory_size: int
    eop_buffer_size: int


def _align(v: int, a: int) -> int:
    return (v + a - 1) // a * a


def queue_sizes(props: dict[str, int]) -> QueueSizes:
    """kfd_queue.c kfd_queue_ctx_save_restore_size for this node (gfx10.1+ branch)."""
    gfxv = props["gfx_target_version"]
    cu = props["simd_count"] // props["simd_per_cu"] // props["num_xcc"]
    wave_num = cu * 32 if gfxv >= 100100 else min(cu * 40, props["array_count"] // props["simd_arrays_per_engine"] * 512)
    # gfx1151 (110501) joined the 0x60000 class in 6.12.y (checked against gen/cwsr.py KFD_QUEUE_SIZES)
    vgpr = 0x80000 if gfxv in (90402, 90010, 90008, 90500) else \
        0x60000 if gfxv in (110000, 110001, 110501, 120000, 120001) else 0x40000
    lds = props["lds_size_in_kb"] << 10 if gfxv == 90500 else 0x10000
    wg_data = _align(cu * (vgpr + 0x4000 + lds + 0x1000), PAGE)
    ctl = _align(40 + wave_num * (12 if gfxv >= 100100 else 8) + 8, PAGE)
    if gfxv // 10000 * 10000 == 100000:
        ctl = min(ctl, 0x7000)
    return QueueSizes(ctl_stack_size=ctl, cwsr_size=ctl + wg_data, debug_memory_size=_align(wave_num * 32, 64),
                      eop_buffer_size=0x8000 if gfxv == 80002 else 4096)


@dataclass
class GpuNode:
    """The GPU node: properties, gpu_id, render minor, derived queue sizes."""
    gpu_id: int = GPU_ID
    properties: dict[str, int] = field(default_factory=lambda: dict(GPU_PROPERTIES))
    vram_bytes: int = VRAM_BYTES
    large_bar: bool = True

    @property
    def render_minor(self) -> int:
        return self.properties["drm_render_minor"]

    @property
    def sizes(self) -> QueueSizes:
        return queue_sizes(self.properties)

    @property
    def num_xcc(self) -> int:
        return self.properties["num_xcc"]


def _props_text(props) -> str:
    return "".join(f"{k} {v}\n" for k, v in props)


def install(kernel, node: GpuNode) -> None:
    """Write the sysfs topology tree (node 0 CPU, node 1 the GPU) and the GPU's ip_discovery files."""
    kernel.add_file(f"{TOPOLOGY}/generation_id", "1\n")
    kernel.add_file(f"{TOPOLOGY}/system_properties", "platform_oem 0\nplatform_id 0\nplatform_rev 0\n")
    kernel.add_file(f"{TOPOLOGY}/nodes/0/gpu_id", "0\n")
    kernel.add_file(f"{TOPOLOGY}/nodes/0/name", "\n")
    kernel.add_file(f"{TOPOLOGY}/nodes/0/properties", _props_text(CPU_PROPERTIES))
    g = f"{TOPOLOGY}/nodes/1"
    kernel.add_file(f"{g}/gpu_id", f"{node.gpu_id}\n")
    kernel.add_file(f"{g}/name", "ip discovery\n")
    kernel.add_file(f"{g}/properties", _props_text(node.properties.items()))
    heap = 1 if node.large_bar else 2          # HSA_MEM_HEAP_TYPE_FB_PUBLIC / FB_PRIVATE
    kernel.add_file(f"{g}/mem_banks/0/properties",
                    f"heap_type {heap}\nsize_in_bytes {node.vram_bytes}\nflags 0\nwidth 384\nmem_clk_max 1250\n")
    dev = f"/sys/class/drm/renderD{node.render_minor}/device/ip_discovery/die/0"
    from hwdrv.amd.gen import gc11
    bases = [gc11.GC_BASE__INST0_SEG0, gc11.GC_BASE__INST0_SEG1, gc11.GC_BASE__INST0_SEG2, gc11.GC_BASE__INST0_SEG3]
    for name, (hwid, (major, minor, rev)) in IP_VERSIONS.items():
        for f, v in (("major", major), ("minor", minor), ("revision", rev)):
            kernel.add_file(f"{dev}/{hwid}/0/{f}", f"{v}\n")
        if name == "GC":
            kernel.add_file(f"{dev}/{hwid}/0/base_addr", "".join(f"0x{b:08X}\n" for b in bases))
