"""What each generated module is made from: pinned upstream sources and the symbols kept.

A symbol entry is an exact name (it must exist and evaluate, or generation fails) or a regular
expression (full match; anything matching that is an integer constant / bit range / type is kept).
Source trees live outside the repository, one directory per repo under ``--src`` (see README.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Repo:
    dir: str          # directory name under --src
    repo: str         # GitHub owner/name
    tag: str | None
    commit: str
    # A release tarball instead of a git checkout: its sha256 (commit is then "" and tag names the release).
    archive_sha256: str | None = None


REPOS = {
    "ogkm": Repo("ogkm-580.142", "NVIDIA/open-gpu-kernel-modules", "580.142",
                 "1a5075f82128be3603d4a4657c7b689234306778"),
    "ogd": Repo("open-gpu-doc", "NVIDIA/open-gpu-doc", None, "c8607fe576b53ff821ffcf97e7548d2de11c4eaf"),
    # kfd_ioctl.h 1.15 (GEM_VA); the commit is the version the source index holds (no tag recorded).
    "linux": Repo("linux", "torvalds/linux", None, "100c85421b52e41269ada88f7d71a6b8a06c7a11"),
    # gfx11 opcode numbers (src/amd/compiler/aco_opcodes.py); last commit touching that file on main
    # as of 2024-07-18.
    "mesa_aco": Repo("mesa", "mesa/mesa", None, "4399c7bac3138624db33b133c8562ea00cb63995"),
    # AMDHSAKernelDescriptor.h (also shipped verbatim by Debian llvm-19-dev 1:19.1.7-3~deb12u1).
    "llvm19": Repo("llvm-19", "llvm/llvm-project", "llvmorg-19.1.7", "cd708029e0b2869e80abe31ddb175f7c35361f90"),
    # ROCm's debugger library: how a gfx10/gfx11 control stack and wave save record are read
    # (src/architecture.cpp); newest commit of the stored snapshot (2024-10-15).
    "rocdbgapi": Repo("rocdbgapi", "ROCm/ROCdbgapi", None, "61dfa5620c988e633feeb45e4f4d25aefcd8655d"),
    # Linux 6.12.118 as Debian ships it in linux-source-6.12 6.12.118-1~deb12u1 (bookworm-security): the KFD
    # of the debugger ioctl era (kfd_queue.c size rules, v11 get_wave_state, gfx11 trap handler); the
    # "commit" is the sha256 of that package's linux-source-6.12.tar.xz.
    "linux612": Repo("linux-6.12.118", "debian/linux-source-6.12", "6.12.118-1~deb12u1",
                     "sha256:c93391b6a4884e6428ffbfbb8ce6340229ad28dc421e9f19bc081740b1ab34b2"),
    # amdgpu headers (gfx11 registers, PM4 nvd.h, SDMA v6 packets): Linux 6.1.192 as Debian ships it in
    # linux-source-6.1 6.1.192-3 (the source index holds these files only at scattered commits); the
    # "commit" is the sha256 of that package's linux-source-6.1.tar.xz. See README.md for the extraction.
    "linux61": Repo("linux-6.1.192", "debian/linux-source-6.1", "6.1.192-3",
                    "sha256:cacdc3830989309d042083be3307969e55600ed7f908cf00df544c5ff50759a1"),
    # Qualcomm's kgsl driver (msm_kgsl.h UAPI 3.14); newest commit of the stored snapshot (2025-06-03).
    # Mesa 25.0.7 release (Debian trixie source package mesa_25.0.7.orig.tar.xz): freedreno registers + isa XML.
    "mesa": Repo("mesa-25.0.7", "mesa/mesa", "mesa-25.0.7", "",
                 archive_sha256="592272df3cf01e85e7db300c449df5061092574d099da275d19e97ef0510f8a6"),
    "kgsl": Repo("kgsl", "qualcomm-linux/kgsl", None, "27cf0e4f402d9d569ef8f060d46cd5b0a97dc924"),
}


@dataclass
class Target:
    name: str
    group: str
    output: str
    doc: str
    repos: list[str]
    headers: list[tuple[str, str]]
    include_dirs: list[tuple[str, str]] = field(default_factory=list)
    forced_includes: list[tuple[str, str]] = field(default_factory=list)
    defines: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    macros: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    tables: dict[str, Callable] = field(default_factory=dict)
    table_files: list[tuple[str, str]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    # Stand-in headers written to a temporary include dir (only for includes that add nothing we keep).
    stubs: dict[str, str] = field(default_factory=dict)


SDK = "src/common/sdk/nvidia/inc"
UNIX = "src/nvidia/arch/nvalloc/unix/include"
UVM = "kernel-open/nvidia-uvm"

# nvidia.md section 6: sdk/inc must come before kernel-open/common/inc (both have rs_access.h).
NV_INCLUDES = [("ogkm", "src/common/inc"), ("ogkm", SDK), ("ogkm", UVM), ("ogkm", "kernel-open/common/inc"),
               ("ogkm", UNIX), ("ogkm", SDK + "/ctrl")]
NV_FORCED = [("ogkm", SDK + "/nvtypes.h")]


def _nv_tables():
    from . import tables
    return {"NV_STATUS": tables.nv_status, "XID": tables.xid}


NV580 = Target(
    name="nv580", group="nvidia", output="hwdrv/nvidia/gen/nv580.py",
    doc="NVIDIA RM + UVM driver ABI, branch 580 (escapes, NVOS*, alloc params, controls, UVM, "
        "status codes, Xids, Hopper fault types).",
    repos=["ogkm"],
    include_dirs=NV_INCLUDES, forced_includes=NV_FORCED,
    headers=[("ogkm", p) for p in [
        SDK + "/nvtypes.h", SDK + "/nvstatus.h", SDK + "/nverror.h", SDK + "/nvgputypes.h", SDK + "/nvos.h",
        UNIX + "/nv_escape.h", UNIX + "/nv-ioctl-numbers.h", UNIX + "/nv-ioctl.h",
        UNIX + "/nv-unix-nvos-params-wrappers.h", SDK + "/alloc/alloc_channel.h",
        SDK + "/class/cl0000.h", SDK + "/class/cl0005.h", SDK + "/class/cl0070.h", SDK + "/class/cl0080.h",
        SDK + "/class/cl2080.h", SDK + "/class/cl2080_notification.h", SDK + "/class/cl003e.h",
        SDK + "/class/cl0040.h", SDK + "/class/cl0071.h", SDK + "/class/cl83de.h", SDK + "/class/cl9067.h",
        SDK + "/class/cl90f1.h", SDK + "/class/cla06c.h", SDK + "/class/clc36f.h", SDK + "/class/clc56f.h",
        SDK + "/class/clc86f.h", SDK + "/class/clc661.h", SDK + "/class/clc8b5.h", SDK + "/class/clcbc0.h",
        SDK + "/class/clb0b5sw.h",
        SDK + "/ctrl/ctrl0000/ctrl0000system.h", SDK + "/ctrl/ctrl0000/ctrl0000gpu.h",
        SDK + "/ctrl/ctrl0080/ctrl0080gpu.h", SDK + "/ctrl/ctrl0080/ctrl0080gr.h",
        SDK + "/ctrl/ctrl2080/ctrl2080gpu.h", SDK + "/ctrl/ctrl2080/ctrl2080gr.h", SDK + "/ctrl/ctrl2080/ctrl2080fb.h",
        SDK + "/ctrl/ctrl2080/ctrl2080perf.h", SDK + "/ctrl/ctrl2080/ctrl2080rc.h",
        SDK + "/ctrl/ctrl2080/ctrl2080event.h",
        SDK + "/ctrl/ctrlc36f.h", SDK + "/ctrl/ctrla06c.h", SDK + "/ctrl/ctrla06f/ctrla06fgpfifo.h",
        SDK + "/ctrl/ctrl906f.h", SDK + "/ctrl/ctrl83de/ctrl83dedebug.h",
        UVM + "/uvm_types.h", UVM + "/uvm_ioctl.h", UVM + "/uvm_linux_ioctl.h",
        UVM + "/hwref/hopper/gh100/dev_fault.h", UVM + "/hwref/hopper/gh100/dev_mmu.h",
    ]],
    types=[
        # escapes and their argument structs
        "NVOS00_PARAMETERS", "NVOS02_PARAMETERS", "NVOS21_PARAMETERS", "NVOS33_PARAMETERS",
        "NVOS34_PARAMETERS", "NVOS46_PARAMETERS", "NVOS47_PARAMETERS", "NVOS54_PARAMETERS",
        "NVOS55_PARAMETERS", "NVOS64_PARAMETERS",
        "nv_ioctl_nvos02_parameters_with_fd", "nv_ioctl_nvos33_parameters_with_fd",
        "nv_ioctl_card_info_t", "nv_ioctl_register_fd_t", "nv_ioctl_rm_api_version_t", "nv_ioctl_xfer_t",
        "nv_ioctl_alloc_os_event_t", "nv_ioctl_free_os_event_t", "nv_ioctl_wait_open_complete_t",
        "nv_ioctl_status_code_t",
        # alloc params
        "NV0000_ALLOC_PARAMETERS", "NV0005_ALLOC_PARAMETERS", "NV0080_ALLOC_PARAMETERS",
        "NV2080_ALLOC_PARAMETERS", "NV_HOPPER_USERMODE_A_PARAMS", "NV_VASPACE_ALLOCATION_PARAMETERS",
        "NV_CHANNEL_GROUP_ALLOCATION_PARAMETERS", "NV_CTXSHARE_ALLOCATION_PARAMETERS",
        "NV_CHANNEL_ALLOC_PARAMS", "NV_CHANNELGPFIFO_ALLOCATION_PARAMETERS", "NV_MEMORY_DESC_PARAMS",
        "NV_GR_ALLOCATION_PARAMETERS", "NVB0B5_ALLOCATION_PARAMETERS", "NV83DE_ALLOC_PARAMETERS",
        "NV_MEMORY_ALLOCATION_PARAMS", "NV_MEMORY_VIRTUAL_ALLOCATION_PARAMS",
        # controls
        "NV0000_CTRL_SYSTEM_GET_BUILD_VERSION_V2_PARAMS", "NV0000_CTRL_GPU_GET_ID_INFO_V2_PARAMS",
        "NV0080_CTRL_GPU_GET_CLASSLIST_PARAMS", "NV2080_CTRL_GPU_GET_GID_INFO_PARAMS",
        "NV2080_CTRL_GR_GET_INFO_PARAMS", "NV2080_CTRL_GR_INFO", "NV2080_CTRL_GR_GET_CTX_BUFFER_SIZE_PARAMS",
        "NV2080_CTRL_PERF_BOOST_PARAMS", "NV2080_CTRL_FB_FLUSH_GPU_CACHE_PARAMS",
        "NV2080_CTRL_GPU_GET_NAME_STRING_PARAMS", "NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS",
        "NVA06C_CTRL_GPFIFO_SCHEDULE_PARAMS", "NVA06F_CTRL_GPFIFO_SCHEDULE_PARAMS",
        "NV906F_CTRL_GET_MMU_FAULT_INFO_PARAMS",
        "NV83DE_CTRL_DEBUG_READ_ALL_SM_ERROR_STATES_PARAMS", "NV83DE_CTRL_DEBUG_READ_SINGLE_SM_ERROR_STATE_PARAMS",
        "NV83DE_CTRL_DEBUG_CLEAR_ALL_SM_ERROR_STATES_PARAMS", "NV83DE_CTRL_DEBUG_READ_MMU_FAULT_INFO_PARAMS",
        "NV83DE_CTRL_DEBUG_EXEC_REG_OPS_PARAMS", "NV83DE_SM_ERROR_STATE_REGISTERS",
        "NV2080_CTRL_GPU_EXEC_REG_OPS_PARAMS", "NV2080_CTRL_GPU_REG_OP",
        "NV2080_CTRL_RC_READ_VIRTUAL_MEM_PARAMS", "NV2080_CTRL_RC_GET_ERROR_COUNT_PARAMS",
        "NV2080_CTRL_RC_GET_ERROR_V2_PARAMS", "NV2080_CTRL_RC_GET_WATCHDOG_INFO_PARAMS",
        # UVM
        "UVM_INITIALIZE_PARAMS", "UVM_MM_INITIALIZE_PARAMS", "UVM_REGISTER_GPU_PARAMS", "UVM_UNREGISTER_GPU_PARAMS",
        "UVM_REGISTER_GPU_VASPACE_PARAMS", "UVM_UNREGISTER_GPU_VASPACE_PARAMS", "UVM_REGISTER_CHANNEL_PARAMS",
        "UVM_UNREGISTER_CHANNEL_PARAMS", "UVM_CREATE_EXTERNAL_RANGE_PARAMS", "UVM_MAP_EXTERNAL_ALLOCATION_PARAMS",
        "UVM_FREE_PARAMS", "UvmGpuMappingAttributes", "NvProcessorUuid",
        # peers (multi-GPU, docs/multi-gpu.md)
        "NV0000_CTRL_SYSTEM_GET_P2P_CAPS_V2_PARAMS", "UVM_ENABLE_PEER_ACCESS_PARAMS",
        "UVM_DISABLE_PEER_ACCESS_PARAMS", "UVM_UNMAP_EXTERNAL_PARAMS",
        # notifier
        "NvNotification",
    ],
    macros=[
        r"NV_ESC_\w+", "NV_IOCTL_MAGIC", "NV_IOCTL_BASE", r"NV_MAX_DEVICES", r"NV_RM_API_VERSION_\w+",
        # PTE kinds (dev_mmu.h): the kind of plain video memory
        "NV_MMU_PTE_KIND_GENERIC_MEMORY", "NV_MMU_PTE_KIND_PITCH",
        # class ids
        "NV01_ROOT", "NV01_ROOT_CLIENT", "NV01_DEVICE_0", "NV20_SUBDEVICE_0", "NV01_MEMORY_SYSTEM",
        "NV01_MEMORY_LOCAL_USER", "NV01_MEMORY_SYSTEM_OS_DESCRIPTOR", "NV01_MEMORY_VIRTUAL", "NV01_EVENT_OS_EVENT",
        "NV01_EVENT", "FERMI_VASPACE_A", "FERMI_CONTEXT_SHARE_A", "KEPLER_CHANNEL_GROUP_A", "HOPPER_USERMODE_A",
        "HOPPER_CHANNEL_GPFIFO_A", "AMPERE_CHANNEL_GPFIFO_A", "VOLTA_CHANNEL_GPFIFO_A", "HOPPER_COMPUTE_A",
        "HOPPER_DMA_COPY_A", "GT200_DEBUGGER", "NV01_MEMORY_USER", "NV1_MEMORY_USER",
        # alloc param flags
        r"NV_DEVICE_ALLOCATION_\w+", r"NV_VASPACE_ALLOCATION_\w+", r"NV_CTXSHARE_ALLOCATION_\w+",
        r"NV_CHANNELGPFIFO_NOTIFICATION_\w+", r"NVOS04_FLAGS_\w+", r"NVOS02_FLAGS_\w+",
        r"NVOS32_ATTR_\w+", r"NVOS32_ATTR2_\w+", r"NVOS32_ALLOC_FLAGS_\w+", r"NVOS32_TYPE_\w+",
        r"NVOS33_FLAGS_\w+", r"NVOS46_FLAGS_\w+", r"NVOS54_FLAGS_\w+", r"NVOS64_FLAGS_\w+",
        r"NV_GR_ALLOCATION_PARAMETERS_VERSION_\w+", r"NVB0B5_ALLOCATION_PARAMETERS_VERSION_\w+",
        r"NV2080_ENGINE_TYPE_\w+", r"NV2080_NOTIFIERS_\w+",
        # controls
        "NV0000_CTRL_CMD_SYSTEM_GET_BUILD_VERSION_V2", r"NV0000_CTRL_SYSTEM_GET_BUILD_VERSION_V2_\w+",
        "NV0000_CTRL_CMD_GPU_GET_ID_INFO_V2", r"NV0000_CTRL_GPU_ID_INFO_\w+",
        "NV0000_CTRL_CMD_GPU_GET_ATTACHED_IDS", "NV0000_CTRL_CMD_GPU_GET_PROBED_IDS", "NV0000_CTRL_CMD_GPU_ATTACH_IDS",
        "NV0080_CTRL_CMD_GPU_GET_CLASSLIST",
        "NV0000_CTRL_CMD_SYSTEM_GET_P2P_CAPS_V2", r"NV0000_CTRL_SYSTEM_GET_P2P_CAPS_\w+",
        r"NV0000_CTRL_P2P_CAPS_INDEX_\w+", r"NV0000_P2P_CAPS_STATUS_\w+",
        "NV0000_CTRL_SYSTEM_MAX_ATTACHED_GPUS", "NV0000_CTRL_SYSTEM_MAX_ATTACHED_GPUS_SQUARED",
        "NV2080_CTRL_CMD_GPU_GET_GID_INFO", r"NV2080_GPU_CMD_GPU_GET_GID_\w+",
        "NV2080_CTRL_CMD_GR_GET_INFO", r"NV2080_CTRL_GR_INFO_INDEX_\w+", r"NV2080_CTRL_GR_INFO_MAX_SIZE",
        "NV2080_CTRL_CMD_GR_GET_CTX_BUFFER_SIZE", "NV2080_CTRL_CMD_GR_GET_TPC_MASK",
        "NV2080_CTRL_CMD_GR_GET_GPC_MASK", "NV2080_CTRL_CMD_GR_GET_SM_TO_GPC_TPC_MAPPINGS",
        "NV2080_CTRL_CMD_PERF_BOOST", r"NV2080_CTRL_PERF_BOOST_\w+",
        "NV2080_CTRL_CMD_FB_FLUSH_GPU_CACHE", r"NV2080_CTRL_FB_FLUSH_GPU_CACHE_FLAGS_\w+",
        "NV2080_CTRL_CMD_GPU_GET_NAME_STRING", r"NV2080_CTRL_GPU_GET_NAME_STRING_\w+",
        "NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN", "NVC36F_CTRL_CMD_GPFIFO_SET_WORK_SUBMIT_TOKEN_NOTIF_INDEX",
        "NVA06C_CTRL_CMD_GPFIFO_SCHEDULE", "NVA06C_CTRL_CMD_SET_TIMESLICE", "NVA06C_CTRL_CMD_PREEMPT",
        "NVA06F_CTRL_CMD_GPFIFO_SCHEDULE", "NVA06F_CTRL_CMD_BIND",
        "NV906F_CTRL_CMD_GET_MMU_FAULT_INFO", r"NV906F_CTRL_MMU_FAULT_\w+", "NV906F_CTRL_CMD_RESET_CHANNEL",
        "NV906F_CTRL_CMD_GET_DEFER_RC_STATE",
        r"NV83DE_CTRL_CMD_DEBUG_\w+", r"NV83DE_CTRL_DEBUG_\w+", r"NV83DE_SM_ERROR_STATE_\w+",
        r"NV83DE_MMU_FAULT_\w+",
        r"NV2080_CTRL_CMD_RC_\w+", r"NV2080_CTRL_RC_\w+",
        "NV2080_CTRL_CMD_GPU_EXEC_REG_OPS", r"NV2080_CTRL_GPU_REG_OP_\w+",
        "NV2080_CTRL_CMD_EVENT_SET_NOTIFICATION", r"NV2080_CTRL_EVENT_SET_NOTIFICATION_ACTION_\w+",
        # UVM
        "UVM_INITIALIZE", "UVM_DEINITIALIZE", "UVM_MM_INITIALIZE", "UVM_REGISTER_GPU", "UVM_UNREGISTER_GPU",
        "UVM_REGISTER_GPU_VASPACE", "UVM_UNREGISTER_GPU_VASPACE", "UVM_REGISTER_CHANNEL",
        "UVM_UNREGISTER_CHANNEL", "UVM_CREATE_EXTERNAL_RANGE", "UVM_MAP_EXTERNAL_ALLOCATION", "UVM_FREE",
        "UVM_ENABLE_PEER_ACCESS", "UVM_DISABLE_PEER_ACCESS", "UVM_UNMAP_EXTERNAL",
        "UVM_TOOLS_INIT_EVENT_TRACKER", "UVM_TOOLS_INIT_EVENT_TRACKER_V2",
        r"UVM_INIT_FLAGS_\w+", "UVM_MAX_GPUS", r"UvmGpuMappingType\w+", r"UvmGpuCachingType\w+",
        r"UvmGpuFormatType\w+", r"UvmGpuFormatElementBits\w+", r"UvmGpuCompressionType\w+",
        # Hopper fault decode (dev_fault.h)
        r"NV_PFAULT_FAULT_TYPE\w*", r"NV_PFAULT_ACCESS_TYPE\w*", r"NV_PFAULT_CLIENT_GPC_\w+",
        r"NV_PFAULT_CLIENT_HUB_\w+", "NV_PFAULT_MMU_ENG_ID_GRAPHICS", r"NV_PFAULT_MMU_CLIENT_TYPE\w*",
    ],
    exclude=[r"\w+_MESSAGE_ID", r"\w+_PARAMS_DEFINED", r"\w+_HAS_RESIDENT_CHANNEL"],
    tables={},  # filled below (avoids an import cycle)
    table_files=[("ogkm", "kernel-open/common/inc/nvstatuscodes.h"), ("ogkm", SDK + "/nverror.h")],
    extra=['# Driver version prefixes whose layouts this module is known to match (nvidia.md section 6:',
           '# 580.65.06 == 580.142 for every struct here; 580.159.04 is the test GPU\'s driver).',
           'DRIVER_VERSIONS = ("580.",)'],
)

HOPPER = Target(
    name="hopper", group="nvidia", output="hwdrv/nvidia/gen/hopper.py",
    doc="NVIDIA Hopper hardware classes: host (C86F/C56F methods, GP entry, DMA method headers, USERD), "
        "HOPPER_COMPUTE_A (CBC0) methods, QMD V04_00, HOPPER_DMA_COPY_A (C8B5), usermode doorbell, "
        "subchannels, NvNotification.",
    repos=["ogkm", "ogd"],
    include_dirs=NV_INCLUDES, forced_includes=NV_FORCED,
    headers=[("ogkm", SDK + "/nvgputypes.h"), ("ogkm", SDK + "/class/cla06fsubch.h"),
             ("ogkm", SDK + "/class/clc56f.h"), ("ogkm", SDK + "/class/clc86f.h"), ("ogkm", SDK + "/class/clc361.h"),
             ("ogkm", SDK + "/class/clc661.h"),
             ("ogd", "classes/compute/clcbc0.h"), ("ogd", "classes/compute/clcbc0qmd.h"),
             ("ogd", "classes/dma-copy/clc8b5.h")],
    types=["HopperAControlGPFifo", "NvNotification"],
    macros=[r"NVA06F_SUBCHANNEL_\w+", r"NVC86F_\w+", r"NVC56F_(DMA|GP_ENTRY|SEM|MEM_OP|WFI|SET_OBJECT|NON_STALL|"
            r"FB_FLUSH|SET_REFERENCE|NOP)\w*", r"NVC361_\w+", r"NVCBC0_(?!QMDV03)\w+", r"NVC661_\w+", "HOPPER_COMPUTE_A",
            "HOPPER_DMA_COPY_A", "HOPPER_CHANNEL_GPFIFO_A", "HOPPER_USERMODE_A", r"NVC8B5_\w+"],
    exclude=[r"\w+_TYPEDEF", r"\w+_H_?"],
)

KFD = Target(
    name="kfd", group="kfd", output="hwdrv/amd/gen/kfd.py",
    doc="AMD KFD ioctl ABI (linux include/uapi/linux/kfd_ioctl.h): structs and request numbers.",
    repos=["linux"],
    include_dirs=[("linux", "include/uapi")],
    headers=[("linux", "include/uapi/linux/kfd_ioctl.h")],
    types=[r"struct kfd_\w+", r"union kfd_\w+", r"kfd_\w+"],
    macros=[r"AMDKFD_\w+", r"KFD_\w+", r"kfd_\w+", r"EC_\w+", r"DEBUG_RUNTIME_STATE_\w+", "NUM_OF_SUPPORTED_GPUS",
            r"MAX_ALLOWED_\w+"],
    exclude=[r"KFD_IOCTL_H_INCLUDED", r"\w+_H"],
    # kfd_ioctl.h includes <drm/drm.h> but uses nothing from it beyond the linux/types.h integers.
    stubs={"drm/drm.h": "#include <linux/types.h>\n"},
)

AMDGPU = "drivers/gpu/drm/amd"
GC11_REGS = (r"COMPUTE_(PGM_LO|PGM_HI|PGM_RSRC[123]|USER_DATA_\d+|NUM_THREAD_[XYZ]|DISPATCH_INITIATOR|RESOURCE_LIMITS|"
             r"TMPRING_SIZE|START_[XYZ]|DIM_[XYZ]|RESTART_[XYZ]|DISPATCH_SCRATCH_BASE_(LO|HI)|PIPELINESTAT_ENABLE|"
             r"PERFCOUNT_ENABLE|STATIC_THREAD_MGMT_SE[0-3]|DISPATCH_ID|DISPATCH_PKT_ADDR_(LO|HI)|THREAD_TRACE_ENABLE)|"
             r"GRBM_STATUS|GRBM_STATUS2|GRBM_STATUS_SE[0-3]|GRBM_GFX_INDEX|CP_STAT|CP_CPC_(STATUS|BUSY_STAT|STALLED_STAT1)|"
             r"CP_CPF_(STATUS|BUSY_STAT|STALLED_STAT1)|CP_MEC1_INSTR_PNTR|CP_INT_STATUS|CP_ME1_PIPE0_INT_STATUS|"
             r"CP_HQD_(ACTIVE|VMID|PQ_BASE|PQ_BASE_HI|PQ_RPTR|PQ_WPTR_LO|PQ_WPTR_HI|PQ_CONTROL|PQ_DOORBELL_CONTROL|"
             r"IB_BASE_ADDR|IB_BASE_ADDR_HI|IB_RPTR|DEQUEUE_REQUEST|ERROR)|"
             r"GCVM_L2_PROTECTION_FAULT_(STATUS|ADDR_LO32|ADDR_HI32|CNTL)|SQ_IND_INDEX|SQ_IND_DATA|SQ_CMD|"
             r"SPI_GDBG_WAVE_CNTL|RLC_STAT|SDMA0_STATUS_REG|SDMA0_STATUS1_REG|SDMA0_STATUS2_REG|"
             r"SDMA0_QUEUE0_RB_(CNTL|BASE|RPTR|WPTR)")
SQ_WAVE = r"SQ_WAVE_(MODE|STATUS|TRAPSTS|GPR_ALLOC|LDS_ALLOC|IB_STS|PC_LO|PC_HI|IB_DBG1|HW_ID1|HW_ID2|IB_STS2|M0|EXEC_LO|EXEC_HI)"

GC11 = Target(
    name="gc11", group="amd", output="hwdrv/amd/gen/gc11.py",
    doc="gfx11 (GC 11.0.0) registers a compute dispatcher and hang diagnosis use: dword offsets + BASE_IDX "
        "(gc_11_0_0_offset.h), bit fields (gc_11_0_0_sh_mask.h), GC segment bases.",
    repos=["linux61"],
    headers=[("linux61", AMDGPU + "/include/asic_reg/gc/gc_11_0_0_offset.h"),
             ("linux61", AMDGPU + "/include/asic_reg/gc/gc_11_0_0_sh_mask.h"),
             # GC segment bases: Navi31's IP discovery table reports the same GC bases as Navi21
             # (sienna_cichlid); gfx11 has no *_ip_offset.h in the tree (bases come from discovery).
             ("linux61", AMDGPU + "/include/sienna_cichlid_ip_offset.h")],
    macros=[rf"reg({GC11_REGS})(_BASE_IDX)?", rf"({GC11_REGS})__\w+", rf"ix{SQ_WAVE}", rf"{SQ_WAVE}__\w+",
            r"GC_BASE__INST0_SEG[0-3]"],
    stubs={},
)

# nvd.h macros whose value fills a whole dword (sign bit set in C's int): autogen/pm4.py adds them
PM4_DWORD_MACROS = ["PACKET3", "PACKET3_COMPUTE", "PACKET3_RELEASE_MEM_DATA_SEL", "PACKET3_DMA_DATA_SRC_SEL",
                    "PACKET3_MAP_QUEUES_NUM_QUEUES", "PACKET3_UNMAP_QUEUES_NUM_QUEUES",
                    "PACKET3_SET_RESOURCES_QUEUE_TYPE", "PACKET3_QUERY_STATUS_COMMAND", "INDIRECT_BUFFER_PRE_RESUME",
                    "WRITE_DATA_ENGINE_SEL"]
# the C-header part of the pm4 target (run by autogen/pm4.py)
PM4_C = Target(
    name="pm4", group="amd", output="hwdrv/amd/gen/pm4.py",
    doc="PM4 type-3 packets for gfx10/gfx11 compute queues (amdgpu nvd.h): opcodes, header builders, "
        "packet field macros (RELEASE_MEM, ACQUIRE_MEM, WAIT_REG_MEM, WRITE_DATA, INDIRECT_BUFFER, ...).",
    repos=["linux61"],
    headers=[("linux61", AMDGPU + "/amdgpu/nvd.h")],
    macros=[r"PACKET3\w*", r"PACKET_TYPE\d", "PACKET0", r"PACKET2\w*", "CP_PACKET2", r"CP_PACKET\w+",
            r"WRITE_DATA_\w+", "WR_ONE_ADDR", "WR_CONFIRM", r"WAIT_REG_MEM_\w+", r"INDIRECT_BUFFER_\w+",
            "EVENT_TYPE", "EVENT_INDEX"],
    exclude=[r"NVD_H"] + PM4_DWORD_MACROS,
)

SDMA6 = Target(
    name="sdma6", group="amd", output="hwdrv/amd/gen/sdma6.py",
    doc="SDMA v6.0 packets (amdgpu sdma_v6_0_0_pkt_open.h): opcodes/sub-opcodes and the dword offset/"
        "mask/shift of every field of the packets hwdrv and the mock use.",
    repos=["linux61"],
    headers=[("linux61", AMDGPU + "/amdgpu/sdma_v6_0_0_pkt_open.h")],
    macros=[r"SDMA_OP_\w+", r"SDMA_SUBOP_\w+",
            r"SDMA_PKT_(COPY_LINEAR|FENCE|POLL_REGMEM|TIMESTAMP|ATOMIC|TRAP|WRITE_UNTILED|INDIRECT|NOP|GCR_REQ|"
            r"CONSTANT_FILL)_\w+_(offset|mask|shift)", r"SDMA_ATOMIC_\w+"],
)


@dataclass
class PyTarget:
    """A target produced by a Python generator (``module.generate(src) -> text``) instead of the C
    header pipeline; ``module.source_paths(src)`` lists the files it reads."""
    name: str
    group: str
    output: str
    doc: str
    repos: list[str]
    module: str


RDNA3 = PyTarget(
    name="rdna3", group="amd", output="hwdrv/amd/gen/rdna3_isa.py",
    doc="RDNA3 (gfx11) ISA: opcodes per encoding (Mesa aco_opcodes.py gfx11 column), word layouts, "
        "kernel descriptor / COMPUTE_PGM_RSRC fields (LLVM AMDHSAKernelDescriptor.h).",
    repos=["mesa_aco", "llvm19"], module="autogen.rdna3",
)

AMDHSA = PyTarget(
    name="amdhsa", group="amd", output="hwdrv/amd/gen/amdhsa.py",
    doc="AMDGPU code objects: kernel_descriptor_t layout (AMDHSAKernelDescriptor.h), R_AMDGPU_* relocations "
        "(ELFRelocs/AMDGPU.def), EM/OSABI/e_flags/NT_AMDGPU_METADATA (BinaryFormat/ELF.h), LLVM 19.1.7.",
    repos=["llvm19"], module="autogen.amdhsa",
)

PM4 = PyTarget(
    name="pm4", group="amd", output="hwdrv/amd/gen/pm4.py", doc=PM4_C.doc, repos=["linux61"], module="autogen.pm4",
)

KFD_PRIV = PyTarget(
    name="kfd_priv", group="kfd", output="hwdrv/amd/gen/kfd_priv.py",
    doc="KFD-internal ABI constants (kfd_priv.h, kfd_events.h, kfd_flat_memory.c, 6.1 kfd_ioctl.h): mmap offset "
        "types, gpu_id field, queue/doorbell/event limits, gfx9+ apertures.",
    repos=["linux61"], module="autogen.kfd_priv",
)

CWSR = PyTarget(
    name="cwsr", group="amd", output="hwdrv/amd/gen/cwsr.py",
    doc="gfx11 context-save area: the per-wave record of the KFD CWSR trap handler (cwsr_trap_handler_gfx10.asm "
        "built for gfx11), COMPUTE_RELAUNCH control-stack words (gc_11_0_0_sh_mask.h) and their payload fields "
        "(ROCdbgapi architecture.cpp).",
    repos=["linux61", "rocdbgapi", "linux612"], module="autogen.cwsr",
)

KGSL = Target(
    name="kgsl", group="qcom", output="hwdrv/qcom/gen/kgsl.py",
    doc="Qualcomm kgsl ioctl ABI (include/uapi/linux/msm_kgsl.h): structs, request numbers, flags, properties.",
    repos=["kgsl"],
    include_dirs=[("kgsl", "include/uapi")],
    headers=[("kgsl", "include/uapi/linux/msm_kgsl.h")],
    defines=["-D__user="],  # the kernel annotation has no meaning to userspace
    types=[r"struct kgsl_\w+", r"kgsl_\w+"],
    macros=[r"IOCTL_KGSL_\w+", r"KGSL_\w+"],
    exclude=[r"_UAPI_MSM_KGSL_H", r"KGSL_IOC_TYPE_\w+"],
)

KGSL_SNAPSHOT = Target(
    name="kgsl_snapshot", group="qcom", output="hwdrv/qcom/gen/kgsl_snapshot.py",
    doc="kgsl GPU snapshot format constants (kgsl_snapshot.h): magic, section ids, OS ids, object types. "
        "The section structs are __packed, which the cffi pipeline cannot express; hwdrv/mock/qcom/snapshot.py "
        "packs them with struct formats named after kgsl_snapshot.h's structs.",
    repos=["kgsl"],
    headers=[("kgsl", "kgsl_snapshot.h")],
    # kernel-internal header: map the kernel integer types to the UAPI ones
    defines=["-D__packed=", "-Du8=__u8", "-Du16=__u16", "-Du32=__u32", "-Du64=__u64", "-Ds32=__s32", "-Ds64=__s64",
             "-Duint64_t=__u64", "-Duint32_t=__u32", "-Duint16_t=__u16", "-Duint8_t=__u8"],
    macros=["SNAPSHOT_MAGIC", r"KGSL_SNAPSHOT_\w+", r"SNAPSHOT_\w+"],
    exclude=[r"_KGSL_SNAPSHOT_H_?"],
)

from .rnn import RnnTarget  # noqa: E402  (rnn imports manifest lazily)

_REGS = "src/freedreno/registers/adreno/"

A6XX = RnnTarget(
    name="a6xx", group="qcom", output="hwdrv/qcom/gen/a6xx.py",
    doc="Adreno a6xx registers for compute dispatch and hang diagnosis (Mesa registers/adreno/a6xx.xml, "
        "old register names of Mesa 25.0), descriptor layouts (A6XX_TEX_CONST, A6XX_UBO), their enums; "
        "A7XX_ names where a7xx moved or added something.",
    repo="mesa", files=[_REGS + "a6xx.xml"],
    domains={"A6XX": "", "A6XX_TEX_CONST": "A6XX_TEX_CONST_", "A6XX_UBO": "A6XX_UBO_"},
    variant="A6XX", extra_variants=["A7XX"],
    regs=[r"SP_CS_\w+", r"HLSQ_CS_\w+", "HLSQ_INVALIDATE_CMD", r"HLSQ_CONTROL_[2-5]_REG", "HLSQ_FS_CNTL_0",
          "SP_MODE_CONTROL", "SP_PERFCTR_ENABLE", "SP_FLOAT_CNTL", "SP_TP_MODE_CNTL", "TPL1_DBG_ECO_CNTL",
          "SP_CHICKEN_BITS", "UCHE_CLIENT_PF", "HLSQ_DBG_ECO_CNTL", "SP_PS_TP_BORDER_COLOR_BASE_ADDR",
          r"CP_RB_\w+", r"CP_IB[12]_\w+", "CP_HW_FAULT", "CP_INTERRUPT_STATUS", "CP_PROTECT_STATUS",
          "CP_STATUS_1", "CP_SQE_INSTR_BASE", r"CP_SCRATCH(_REG)?", r"CP_SQE_STAT_\w+", r"CP_ROQ_AVAIL_\w+",
          "CP_ALWAYS_ON_COUNTER", r"CP_PROTECT(_REG)?", "CP_PROTECT_CNTL", r"RBBM_STATUS\d?", "RBBM_INT_0_STATUS",
          r"CP_DRAW_STATE_\w+", r"A6XX_TEX_CONST_\d+", r"A6XX_UBO_\d+"],
    enums=["a6xx_threadsize", "a3xx_threadmode", "a6xx_const_ram_mode", "a6xx_isam_mode", "a6xx_tex_type",
           "a6xx_tile_mode", "a6xx_format", "a6xx_tex_swiz", "a6xx_tex_filter", "a6xx_tex_clamp"],
)

ADRENO_PM4 = RnnTarget(
    name="adreno_pm4", group="qcom", output="hwdrv/qcom/gen/adreno_pm4.py",
    doc="Adreno PM4 command stream (Mesa registers/adreno/adreno_pm4.xml + common/freedreno_pm4.h): packet "
        "types and header accessors, type-7 opcodes, payload layouts of the packets compute uses, event types.",
    repo="mesa", files=[_REGS + "adreno_pm4.xml"], header_file="src/freedreno/common/freedreno_pm4.h",
    domains={d: d + "_" for d in ("CP_LOAD_STATE6", "CP_EXEC_CS", "CP_EXEC_CS_INDIRECT", "CP_EVENT_WRITE",
                                  "CP_EVENT_WRITE7", "CP_MEM_WRITE", "CP_WAIT_REG_MEM", "CP_WAIT_MEM_GTE",
                                  "CP_SET_MARKER", "CP_REG_TO_MEM", "CP_MEM_TO_REG", "CP_MEM_TO_MEM",
                                  "CP_REG_RMW", "CP_WAIT_TIMESTAMP")},
    variant="A6XX", extra_variants=["A7XX"],
    regs=[r"CP_(LOAD_STATE6|EXEC_CS|EXEC_CS_INDIRECT|EVENT_WRITE|EVENT_WRITE7|MEM_WRITE|WAIT_REG_MEM|WAIT_MEM_GTE|"
          r"SET_MARKER|REG_TO_MEM|MEM_TO_REG|MEM_TO_MEM|REG_RMW|WAIT_TIMESTAMP)_\w+"],
    enums=["adreno_pm4_type3_packets", "vgt_event_type", "adreno_pm4_packet_type", "a6xx_state_block",
           "a6xx_state_type", "a6xx_state_src", "cp_cond_function", "poll_memory_type", "event_write_src",
           "event_write_dst", "a6xx_marker", "set_marker_mode", "a6xx_ifpc_mode"],
)

TARGETS = {t.name: t for t in (NV580, HOPPER, KFD, RDNA3, AMDHSA, GC11, PM4, SDMA6, KFD_PRIV, CWSR,
                               KGSL, KGSL_SNAPSHOT, A6XX, ADRENO_PM4)}
GROUPS = {"nvidia": ["nv580", "hopper"], "kfd": ["kfd", "kfd_priv"],
          "amd": ["rdna3", "amdhsa", "gc11", "pm4", "sdma6", "kfd_priv", "cwsr"],
          "qcom": ["kgsl", "kgsl_snapshot", "a6xx", "adreno_pm4"],
          "all": ["nv580", "hopper", "kfd", "rdna3", "amdhsa", "gc11", "pm4", "sdma6", "kfd_priv", "cwsr",
                  "kgsl", "kgsl_snapshot", "a6xx", "adreno_pm4"]}


def _late() -> None:
    NV580.tables.update(_nv_tables())


_late()

from .isaspec import IsaTarget  # noqa: E402

IR3_ISA = IsaTarget(
    name="ir3_isa", group="qcom", output="hwdrv/qcom/gen/ir3_isa.py", repo="mesa",
    root_xml="src/freedreno/isa/ir3.xml", gens=(600, 799),
    sha256={
        "src/freedreno/isa/ir3.xml": "6c10da025271d08b1eeee0339d4cc32b9a9e6d9e004c1380eefd5950544b61eb",
        "src/freedreno/isa/ir3-common.xml": "9d3883119c6128d759711d65aa59f564363d5a0fa47001de51fa09db4f201969",
        "src/freedreno/isa/ir3-cat0.xml": "6156382bef2610e3014b0d8636b22bab63f694846a5fe5aba4baa642a4c66574",
        "src/freedreno/isa/ir3-cat1.xml": "91cd197c0a6992b8602531c39823ac3796d3f66a4dba96b19bed57432ced86d6",
        "src/freedreno/isa/ir3-cat2.xml": "7702207d3142c2f2bac5a9a5d484f0d803a4d3ab068b2c15fb7f02b46b0e63ce",
        "src/freedreno/isa/ir3-cat3.xml": "32f3d16738474e37347c7e9a5c5d5cd445675fc8ea61dad60ac25e0dc728b5a8",
        "src/freedreno/isa/ir3-cat4.xml": "0da65138acf41f17a7c0c433278b44723f11e222864eca96e4eb73212383a958",
        "src/freedreno/isa/ir3-cat5.xml": "9388ecb306dd54f2fc0a3af1ab762bb5142da372af357aa731fcc790f84de955",
        "src/freedreno/isa/ir3-cat6.xml": "107769f3fca95886eb38a231afca7bac76ac428b5b7b5040cc10452d7e59493f",
        "src/freedreno/isa/ir3-cat7.xml": "3d4971e120d1eff87281e974b2ee56710b64647b89b7c58b8391c14d45d9fd49",
    },
)
# Not read by a generator: Mesa's disassembler test vectors (tests/data/qcom/ir3/extract_vectors.py).
IR3_DISASM_TEST = ("src/freedreno/ir3/tests/disasm.c",
                   "fc32b74e7146546be68b58d49b2ce23f22ba5e1478add9bbf44174f3c8b671a5")
TARGETS[IR3_ISA.name] = IR3_ISA
GROUPS["qcom"].append(IR3_ISA.name)
GROUPS["all"].append(IR3_ISA.name)

# ---- gh100_regs: Hopper registers a hang report reads through EXEC_REG_OPS ------------------------
# The gh100 directory of swref/published carries few registers with offsets; where it is silent the
# register comes from the header RM itself compiles for GH100: nv_ref.h (chip-generic PMC boot
# registers) and ampere/ga100 headers whose HAL RM shares with GH100 (kernel_fifo_ga100.c's runlist
# code, dev_vm.h's usermode timer in the NV_VIRTUAL_FUNCTION range gh100 dev_vm.h
# declares). The runlist register block is located with NV2080_CTRL_CMD_GPU_GET_ENGINE_RUNLIST_PRI_BASE.
PUBLISHED = "src/common/inc/swref/published"
GH100_REGS = Target(
    name="gh100_regs", group="nvidia", output="hwdrv/nvidia/gen/gh100_regs.py",
    doc="NVIDIA GH100 registers read for hang reports (offsets and hi:lo fields from the published "
        "swref headers) and the RM control that locates a runlist's register block.",
    repos=["ogkm"],
    include_dirs=NV_INCLUDES + [("ogkm", PUBLISHED)], forced_includes=NV_FORCED,
    headers=[("ogkm", p) for p in [
        PUBLISHED + "/nv_ref.h", PUBLISHED + "/hopper/gh100/dev_pmc.h",
        PUBLISHED + "/ampere/ga100/dev_vm.h", PUBLISHED + "/ampere/ga100/dev_runlist.h",
        SDK + "/ctrl/ctrl2080/ctrl2080gpu.h",
    ]],
    types=["NV2080_CTRL_GPU_GET_ENGINE_RUNLIST_PRI_BASE_PARAMS"],
    macros=[
        "NV_PMC_BOOT_0", r"NV_PMC_BOOT_0_(MINOR_REVISION|MAJOR_REVISION|IMPLEMENTATION|ARCHITECTURE_0|"
                         r"ARCHITECTURE_1|ARCHITECTURE_GH100)",
        "NV_PMC_BOOT_42", r"NV_PMC_BOOT_42_(MINOR_REVISION|MAJOR_REVISION|IMPLEMENTATION|ARCHITECTURE|"
                          r"CHIP_ID|ARCHITECTURE_GH100)",
        r"NV_VIRTUAL_FUNCTION_TIME_[01]", r"NV_VIRTUAL_FUNCTION_TIME_[01]_NSEC",
        r"NV_RUNLIST_PREEMPT\w*",
        "NV2080_CTRL_CMD_GPU_GET_ENGINE_RUNLIST_PRI_BASE", r"NV2080_CTRL_GPU_GET_ENGINE_RUNLIST_\w+",
        "NV2080_GPU_MAX_ENGINES_LIST_SIZE",
    ],
    exclude=[r"\w+_MESSAGE_ID", r"__\w+"],
)
TARGETS[GH100_REGS.name] = GH100_REGS
GROUPS["nvidia"].append(GH100_REGS.name)
GROUPS["all"].append(GH100_REGS.name)
