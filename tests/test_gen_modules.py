"""The committed generated modules: cffi layouts equal the gcc-measured LAYOUT, and spot checks of
sizes, ioctl numbers, bit ranges and tables against nvidia.md and an independent _IOC encoder."""
from __future__ import annotations

import importlib

import pytest

from hwdrv.ioctl.bindings import Field

MODULES = ["hwdrv.nvidia.gen.nv580", "hwdrv.nvidia.gen.hopper", "hwdrv.amd.gen.kfd"]


def _ioc(direction: int, typ: int, nr: int, size: int) -> int:
    """Linux asm-generic _IOC, written out here independently of hwdrv.ioctl.ioc."""
    assert size < (1 << 14)
    return (direction << 30) | (size << 16) | (typ << 8) | nr


def _iowr(typ, nr, size):
    return _ioc(3, ord(typ) if isinstance(typ, str) else typ, nr, size)


def _iow(typ, nr, size):
    return _ioc(1, ord(typ), nr, size)


def _ior(typ, nr, size):
    return _ioc(2, ord(typ), nr, size)


@pytest.fixture(params=MODULES)
def mod(request):
    return importlib.import_module(request.param)


def test_every_struct_layout_matches_gcc(mod):
    assert mod.LAYOUT, "a generated module without structs"
    for name, (size, offsets) in mod.LAYOUT.items():
        assert mod.ffi.sizeof(name) == size, name
        for path, off in offsets.items():
            assert mod.ffi.offsetof(name, *path.split(".")) == off, (name, path)


def test_bitfield_positions_match_gcc(mod):
    for name, fields in mod.BITFIELDS.items():
        for path, (bit, width) in fields.items():
            p = mod.ffi.new(name + " *")
            obj = p
            *outer, last = path.split(".")
            for part in outer:
                obj = getattr(obj, part)
            setattr(obj, last, (1 << width) - 1)
            raw = int.from_bytes(mod.ffi.buffer(p)[:], "little")
            assert raw == ((1 << width) - 1) << bit, (name, path)


def test_module_metadata(mod):
    assert mod.SOURCES and all({"repo", "commit", "path"} <= set(s) for s in mod.SOURCES)
    assert all(len(s["commit"]) == 40 for s in mod.SOURCES)
    assert isinstance(mod.CDEF, str) and "#" not in mod.CDEF  # cffi sees no preprocessor text


# ---- nv580 -----------------------------------------------------------------------------------

NV580_SIZES = {  # nvidia.md, 580 column / section 1-2 tables
    "NVOS00_PARAMETERS": 16, "NVOS02_PARAMETERS": 48, "NVOS21_PARAMETERS": 32, "NVOS33_PARAMETERS": 48,
    "NVOS34_PARAMETERS": 32, "NVOS46_PARAMETERS": 64, "NVOS47_PARAMETERS": 48, "NVOS54_PARAMETERS": 32,
    "NVOS64_PARAMETERS": 48, "nv_ioctl_nvos02_parameters_with_fd": 56, "nv_ioctl_nvos33_parameters_with_fd": 56,
    "nv_ioctl_card_info_t": 72, "nv_ioctl_register_fd_t": 4, "nv_ioctl_rm_api_version_t": 72,
    "nv_ioctl_xfer_t": 16, "nv_ioctl_wait_open_complete_t": 8,
    "NV_MEMORY_ALLOCATION_PARAMS": 128, "NV_VASPACE_ALLOCATION_PARAMETERS": 56, "NV_CHANNEL_ALLOC_PARAMS": 368,
    "NV_CHANNELGPFIFO_ALLOCATION_PARAMETERS": 368, "NV_MEMORY_DESC_PARAMS": 24,
    "NV0000_ALLOC_PARAMETERS": 120, "NV0080_ALLOC_PARAMETERS": 56, "NV2080_ALLOC_PARAMETERS": 4,
    "NV_HOPPER_USERMODE_A_PARAMS": 2, "NV_CHANNEL_GROUP_ALLOCATION_PARAMETERS": 20,
    "NV_CTXSHARE_ALLOCATION_PARAMETERS": 12, "NV_GR_ALLOCATION_PARAMETERS": 16,
    "NVB0B5_ALLOCATION_PARAMETERS": 8, "NV83DE_ALLOC_PARAMETERS": 12, "NV_MEMORY_VIRTUAL_ALLOCATION_PARAMS": 24,
    "NVA06C_CTRL_GPFIFO_SCHEDULE_PARAMS": 3, "NVA06F_CTRL_GPFIFO_SCHEDULE_PARAMS": 3,
    "NV0000_CTRL_SYSTEM_GET_BUILD_VERSION_V2_PARAMS": 1032, "NV0000_CTRL_GPU_GET_ID_INFO_V2_PARAMS": 32,
    "NV0080_CTRL_GPU_GET_CLASSLIST_PARAMS": 16, "NV2080_CTRL_GPU_GET_GID_INFO_PARAMS": 268,
    "NV2080_CTRL_GR_GET_INFO_PARAMS": 32, "NV2080_CTRL_PERF_BOOST_PARAMS": 8,
    "NV2080_CTRL_FB_FLUSH_GPU_CACHE_PARAMS": 4024, "NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS": 4,
    "NV906F_CTRL_GET_MMU_FAULT_INFO_PARAMS": 104, "NV2080_CTRL_RC_READ_VIRTUAL_MEM_PARAMS": 32,
    "NV83DE_CTRL_DEBUG_READ_ALL_SM_ERROR_STATES_PARAMS": 4824, "NV83DE_SM_ERROR_STATE_REGISTERS": 48,
    "NV83DE_CTRL_DEBUG_READ_SINGLE_SM_ERROR_STATE_PARAMS": 56, "NV83DE_CTRL_DEBUG_READ_MMU_FAULT_INFO_PARAMS": 72,
    "UVM_INITIALIZE_PARAMS": 16, "UVM_MM_INITIALIZE_PARAMS": 8, "UVM_REGISTER_GPU_PARAMS": 40,
    "UVM_UNREGISTER_GPU_PARAMS": 20, "UVM_REGISTER_GPU_VASPACE_PARAMS": 32, "UVM_REGISTER_CHANNEL_PARAMS": 56,
    "UVM_UNREGISTER_CHANNEL_PARAMS": 28, "UVM_CREATE_EXTERNAL_RANGE_PARAMS": 24,
    "UVM_MAP_EXTERNAL_ALLOCATION_PARAMS": 9264, "UVM_FREE_PARAMS": 24, "UvmGpuMappingAttributes": 36,
    "NvNotification": 16,
}


def test_nv580_sizes_match_reference():
    from hwdrv.nvidia.gen import nv580
    got = {k: nv580.LAYOUT[k][0] for k in NV580_SIZES}
    assert got == NV580_SIZES


def test_nv580_offsets_spot_checks():
    from hwdrv.nvidia.gen import nv580 as m
    L = lambda s: m.LAYOUT[s][1]  # noqa: E731
    assert L("NVOS46_PARAMETERS")["dmaOffset"] == 48 and L("NVOS46_PARAMETERS")["status"] == 56
    assert L("NV_VASPACE_ALLOCATION_PARAMETERS")["vaBase"] == 40
    assert L("NV_CHANNEL_ALLOC_PARAMS")["userdOffset"] == 64 and L("NV_CHANNEL_ALLOC_PARAMS")["tpcConfigID"] == 360
    assert L("NV83DE_CTRL_DEBUG_READ_ALL_SM_ERROR_STATES_PARAMS")["startingSM"] == 4820
    assert L("UVM_MAP_EXTERNAL_ALLOCATION_PARAMS")["rmStatus"] == 9260
    assert L("nv_ioctl_card_info_t")["minor_number"] == 56 and L("nv_ioctl_card_info_t")["pci_info"] == 4
    assert L("nv_pci_info_t")["device_id"] == 10
    assert L("NV_MEMORY_ALLOCATION_PARAMS")["numaNode"] == 120


def test_nv580_escape_request_numbers():
    from hwdrv.nvidia.gen import nv580 as m
    sz = lambda s: m.LAYOUT[s][0]  # noqa: E731
    assert _iowr("F", m.NV_ESC_RM_ALLOC, sz("NVOS21_PARAMETERS")) == 0xC020462B
    assert _iowr("F", m.NV_ESC_RM_ALLOC, sz("NVOS64_PARAMETERS")) == 0xC030462B
    assert _iowr("F", m.NV_ESC_RM_FREE, sz("NVOS00_PARAMETERS")) == 0xC0104629
    assert _iowr("F", m.NV_ESC_RM_CONTROL, sz("NVOS54_PARAMETERS")) == 0xC020462A
    assert _iowr("F", m.NV_ESC_RM_ALLOC_MEMORY, sz("nv_ioctl_nvos02_parameters_with_fd")) == 0xC0384627
    assert _iowr("F", m.NV_ESC_RM_MAP_MEMORY, sz("nv_ioctl_nvos33_parameters_with_fd")) == 0xC038464E
    assert _iowr("F", m.NV_ESC_RM_UNMAP_MEMORY, sz("NVOS34_PARAMETERS")) == 0xC020464F
    assert _iowr("F", m.NV_ESC_RM_MAP_MEMORY_DMA, sz("NVOS46_PARAMETERS")) == 0xC0404657
    assert _iowr("F", m.NV_ESC_REGISTER_FD, sz("nv_ioctl_register_fd_t")) == 0xC00446C9
    assert _iowr("F", m.NV_ESC_CHECK_VERSION_STR, sz("nv_ioctl_rm_api_version_t")) == 0xC04846D2
    assert _iowr("F", m.NV_ESC_IOCTL_XFER_CMD, sz("nv_ioctl_xfer_t")) == 0xC01046D3
    assert _iowr("F", m.NV_ESC_WAIT_OPEN_COMPLETE, sz("nv_ioctl_wait_open_complete_t")) == 0xC00846DA
    assert (m.NV_ESC_CARD_INFO, m.NV_IOCTL_MAGIC) == (200, ord("F"))


def test_nv580_uvm_and_control_numbers():
    from hwdrv.nvidia.gen import nv580 as m
    assert (m.UVM_INITIALIZE, m.UVM_DEINITIALIZE) == (0x30000001, 0x30000002)
    assert (m.UVM_MM_INITIALIZE, m.UVM_REGISTER_GPU, m.UVM_UNREGISTER_GPU, m.UVM_REGISTER_GPU_VASPACE,
            m.UVM_REGISTER_CHANNEL, m.UVM_UNREGISTER_CHANNEL, m.UVM_CREATE_EXTERNAL_RANGE,
            m.UVM_MAP_EXTERNAL_ALLOCATION, m.UVM_FREE) == (75, 37, 38, 25, 27, 28, 73, 33, 34)
    assert m.NV0000_CTRL_CMD_SYSTEM_GET_BUILD_VERSION_V2 == 0x13E
    assert m.NV0000_CTRL_CMD_GPU_GET_ID_INFO_V2 == 0x205
    assert m.NV0080_CTRL_CMD_GPU_GET_CLASSLIST == 0x800201
    assert m.NV2080_CTRL_CMD_GPU_GET_GID_INFO == 0x2080014A
    assert m.NV2080_CTRL_CMD_GR_GET_INFO == 0x20801201
    assert m.NV2080_CTRL_CMD_GR_GET_CTX_BUFFER_SIZE == 0x20801218
    assert m.NV2080_CTRL_CMD_PERF_BOOST == 0x2080200A
    assert m.NV2080_CTRL_CMD_FB_FLUSH_GPU_CACHE == 0x2080130E
    assert m.NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN == 0xC36F0108
    assert m.NVA06C_CTRL_CMD_GPFIFO_SCHEDULE == 0xA06C0101
    assert m.NV906F_CTRL_CMD_GET_MMU_FAULT_INFO == 0x906F0106
    assert m.NV83DE_CTRL_CMD_DEBUG_READ_ALL_SM_ERROR_STATES == 0x83DE030C
    assert m.NV83DE_CTRL_CMD_DEBUG_READ_SINGLE_SM_ERROR_STATE == 0x83DE030B
    assert m.NV83DE_CTRL_CMD_DEBUG_CLEAR_ALL_SM_ERROR_STATES == 0x83DE0310
    assert m.NV83DE_CTRL_CMD_DEBUG_READ_MMU_FAULT_INFO == 0x83DE0328
    assert m.NV83DE_CTRL_CMD_DEBUG_EXEC_REG_OPS == 0x83DE031D
    assert m.NV2080_CTRL_CMD_RC_READ_VIRTUAL_MEM == 0x20802204
    assert m.NV2080_CTRL_CMD_RC_GET_ERROR_V2 == 0x20802213
    assert m.NV2080_CTRL_CMD_GPU_EXEC_REG_OPS == 0x20800122
    assert (m.NV2080_CTRL_GR_INFO_INDEX_SM_VERSION, m.NV2080_CTRL_GR_INFO_INDEX_MAX_WARPS_PER_SM,
            m.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_GPCS, m.NV2080_CTRL_GR_INFO_INDEX_MAX_SUBCONTEXT_COUNT) == \
        (0xC, 0xD, 0x14, 0x2C)


def test_nv580_classes_flags_and_fields():
    from hwdrv.nvidia.gen import nv580 as m
    assert (m.NV01_ROOT_CLIENT, m.NV01_DEVICE_0, m.NV20_SUBDEVICE_0, m.NV01_MEMORY_SYSTEM,
            m.NV01_MEMORY_LOCAL_USER, m.NV01_MEMORY_VIRTUAL, m.NV01_MEMORY_SYSTEM_OS_DESCRIPTOR,
            m.NV01_EVENT_OS_EVENT) == (0x41, 0x80, 0x2080, 0x3E, 0x40, 0x70, 0x71, 0x79)
    assert (m.FERMI_VASPACE_A, m.FERMI_CONTEXT_SHARE_A, m.KEPLER_CHANNEL_GROUP_A, m.HOPPER_USERMODE_A,
            m.HOPPER_CHANNEL_GPFIFO_A, m.AMPERE_CHANNEL_GPFIFO_A, m.HOPPER_COMPUTE_A, m.HOPPER_DMA_COPY_A,
            m.GT200_DEBUGGER) == (0x90F1, 0x9067, 0xA06C, 0xC661, 0xC86F, 0xC56F, 0xCBC0, 0xC8B5, 0x83DE)
    assert m.NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED == 1 << 3
    assert m.NV_VASPACE_ALLOCATION_FLAGS_ENABLE_PAGE_FAULTING == 1 << 6
    assert m.NV_CTXSHARE_ALLOCATION_FLAGS_SUBCONTEXT == Field(1, 0)
    assert m.NV_CTXSHARE_ALLOCATION_FLAGS_SUBCONTEXT_ASYNC == 1
    assert m.NVOS32_ATTR_PHYSICALITY == Field(28, 27) and m.NVOS32_ATTR_PAGE_SIZE == Field(24, 23)
    assert m.NVOS32_ATTR_LOCATION == Field(26, 25) and m.NVOS32_ATTR2_PAGE_SIZE_HUGE == Field(21, 20)
    assert m.NVOS32_ATTR2_GPU_CACHEABLE == Field(3, 2) and m.NVOS32_ATTR2_ZBC == Field(1, 0)
    assert (m.NVOS32_ALLOC_FLAGS_MAP_NOT_REQUIRED, m.NVOS32_ALLOC_FLAGS_ALIGNMENT_FORCE,
            m.NVOS32_ALLOC_FLAGS_IGNORE_BANK_PLACEMENT, m.NVOS32_ALLOC_FLAGS_PERSISTENT_VIDMEM) == \
        (0x8000, 0x100, 0x1, 0x10000)
    assert (m.NVOS32_TYPE_IMAGE, m.NVOS32_TYPE_NOTIFIER) == (0, 13)
    assert m.NVOS02_FLAGS_PHYSICALITY == Field(7, 4) and m.NVOS02_FLAGS_MAPPING == Field(31, 30)
    assert m.NV_CHANNELGPFIFO_NOTIFICATION_TYPE_ERROR == 0
    assert m.NV_CHANNELGPFIFO_NOTIFICATION_TYPE_WORK_SUBMIT_TOKEN == 1
    assert (m.NV2080_ENGINE_TYPE_GRAPHICS, m.NV2080_ENGINE_TYPE_COPY0, m.NV2080_ENGINE_TYPE_COPY1) == (1, 9, 10)
    assert [m.NV2080_ENGINE_TYPE_COPY(i) for i in (0, 1, 9, 10)] == [9, 10, 18, m.NV2080_ENGINE_TYPE_COPY10]
    assert m.NV_PFAULT_FAULT_TYPE == Field(4, 0) and m.NV_PFAULT_ACCESS_TYPE == Field(19, 16)
    assert (m.NV_PFAULT_FAULT_TYPE_PDE, m.NV_PFAULT_FAULT_TYPE_PTE, m.NV_PFAULT_FAULT_TYPE_RO_VIOLATION,
            m.NV_PFAULT_FAULT_TYPE_ATOMIC_VIOLATION) == (0, 2, 6, 0xF)
    assert (m.NV_PFAULT_ACCESS_TYPE_VIRT_READ, m.NV_PFAULT_ACCESS_TYPE_VIRT_WRITE,
            m.NV_PFAULT_ACCESS_TYPE_VIRT_PREFETCH) == (0, 1, 3)
    assert m.UvmGpuMappingTypeReadWriteAtomic == 1 and m.UvmGpuCachingTypeForceUncached == 1
    assert m.DRIVER_VERSIONS == ("580.",)


def test_nv580_status_and_xid_tables():
    from hwdrv.nvidia.gen import nv580 as m
    assert m.NV_STATUS[0] == ("NV_OK", "Success")
    assert m.NV_STATUS[0x3A][0] == "NV_ERR_INVALID_PARAM_STRUCT"
    assert m.NV_STATUS[0x1F] == ("NV_ERR_INVALID_ARGUMENT", "Invalid argument to call")
    assert m.NV_STATUS[0x29][0] == "NV_ERR_INVALID_FLAGS"
    assert len(m.NV_STATUS) > 100
    assert m.XID[13] == "ROBUST_CHANNEL_GR_EXCEPTION"
    assert m.XID[31] == "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT"
    assert m.XID[32] == "ROBUST_CHANNEL_PBDMA_ERROR" and m.XID[45] == "ROBUST_CHANNEL_PREEMPTIVE_REMOVAL"
    assert m.XID[69] == "ROBUST_CHANNEL_GR_CLASS_ERROR" and m.XID[79] == "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS"
    assert 109 not in m.XID  # not defined in nverror.h (nvidia.md 5.1)


# ---- hopper ----------------------------------------------------------------------------------

def test_hopper_host_and_usermode():
    from hwdrv.nvidia.gen import hopper as h
    assert h.LAYOUT["HopperAControlGPFifo"][1]["GPGet"] == 0x88 and h.LAYOUT["HopperAControlGPFifo"][1]["GPPut"] == 0x8C
    assert h.LAYOUT["NvNotification"][1] == {"timeStamp": 0, "timeStamp.nanoseconds": 0, "info32": 8,
                                             "info16": 12, "status": 14}
    assert (h.NVC86F_SEM_ADDR_LO, h.NVC86F_SEM_ADDR_HI, h.NVC86F_SEM_PAYLOAD_LO, h.NVC86F_SEM_PAYLOAD_HI,
            h.NVC86F_SEM_EXECUTE, h.NVC86F_WFI) == (0x5C, 0x60, 0x64, 0x68, 0x6C, 0x78)
    assert h.NVC86F_SEM_EXECUTE_OPERATION == Field(2, 0) and h.NVC86F_SEM_EXECUTE_PAYLOAD_SIZE == Field(24, 24)
    assert h.NVC86F_SEM_ADDR_HI_OFFSET == Field(24, 0) and h.NVC56F_SEM_ADDR_HI_OFFSET == Field(7, 0)
    assert h.NVC86F_SEM_EXECUTE_OPERATION_ACQ_CIRC_GEQ == 3 and h.NVC86F_SEM_EXECUTE_RELEASE_TIMESTAMP == Field(25, 25)
    assert h.NVC86F_GP_ENTRY1_LENGTH == Field(30, 10) and h.NVC86F_GP_ENTRY1_LEVEL == Field(9, 9)
    assert h.NVC56F_DMA_METHOD_ADDRESS == Field(11, 0) and h.NVC56F_DMA_METHOD_SUBCHANNEL == Field(15, 13)
    assert h.NVC56F_DMA_SEC_OP == Field(31, 29) and h.NVC56F_DMA_SEC_OP_INC_METHOD == 1
    assert h.NVC56F_DMA_SEC_OP_NON_INC_METHOD == 3 and h.NVC56F_DMA_SEC_OP_IMMD_DATA_METHOD == 4
    assert h.NVC361_NOTIFY_CHANNEL_PENDING == 0x90
    assert (h.NVA06F_SUBCHANNEL_COMPUTE, h.NVA06F_SUBCHANNEL_COPY_ENGINE) == (1, 4)


def test_hopper_compute_copy_and_qmd():
    from hwdrv.nvidia.gen import hopper as h
    assert (h.NVCBC0_SEND_PCAS_A, h.NVCBC0_SEND_SIGNALING_PCAS2_B, h.NVCBC0_SET_SHADER_SHARED_MEMORY_WINDOW_A,
            h.NVCBC0_SET_SHADER_LOCAL_MEMORY_A, h.NVCBC0_INVALIDATE_SHADER_CACHES_NO_WFI) == \
        (0x2B4, 0x2C0, 0x2A0, 0x790, 0x1698)
    assert h.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION == Field(3, 0)
    assert h.NVC8B5_LAUNCH_DMA == 0x300 and h.NVC8B5_SET_SEMAPHORE_PAYLOAD_UPPER == 0x24C
    assert h.NVC8B5_LAUNCH_DMA_SEMAPHORE_PAYLOAD_SIZE == Field(27, 27)
    q = "NVCBC0_QMDV04_00_"
    g = lambda n: getattr(h, q + n)  # noqa: E731
    assert g("QMD_MAJOR_VERSION") == Field(583, 580) and g("QMD_MINOR_VERSION") == Field(579, 576)
    assert g("GRID_WIDTH") == Field(1055, 1024) and g("CTA_THREAD_DIMENSION0") == Field(1167, 1152)
    assert g("REGISTER_COUNT") == Field(1208, 1200) and g("PROGRAM_ADDRESS_LOWER") == Field(1247, 1216)
    assert g("SHARED_MEMORY_SIZE") == Field(601, 584) and g("SHADER_LOCAL_MEMORY_HIGH_SIZE") == Field(567, 544)
    for i in range(3):
        assert g("RELEASE_ENABLE")(i) == Field(320 + 16 * i, 320 + 16 * i)
        assert g("RELEASE_PAYLOAD64B")(i) == Field(332 + 16 * i, 332 + 16 * i)
    for i in range(8):
        assert g("CONSTANT_BUFFER_VALID")(i) == Field(416 + 4 * i, 416 + 4 * i)
        assert g("CONSTANT_BUFFER_ADDR_LOWER_SHIFTED6")(i) == Field(1567 + 64 * i, 1536 + 64 * i)
        assert g("CONSTANT_BUFFER_SIZE_SHIFTED4")(i) == Field(1599 + 64 * i, 1587 + 64 * i)
    assert not any(n.startswith("NVCBC0_QMDV03") for n in dir(h))  # V04_00 only
    # a QMD built through the fields reads back (byte 0x48 = 0x40 for version 4.0)
    words = [0] * 96
    g("QMD_MAJOR_VERSION").set(words, 4)
    g("PROGRAM_ADDRESS_UPPER").set(words, 0x1)
    assert words[0x48 // 4] & 0xFF == 0x40 and words[0x9C // 4] == 1


# ---- kfd -------------------------------------------------------------------------------------

def test_kfd_ioctl_numbers_match_ioc():
    from hwdrv.amd.gen import kfd as k
    s = lambda n: k.LAYOUT["struct " + n][0]  # noqa: E731
    assert k.AMDKFD_IOC_GET_VERSION == _ior("K", 0x01, s("kfd_ioctl_get_version_args"))
    assert k.AMDKFD_IOC_CREATE_QUEUE == _iowr("K", 0x02, s("kfd_ioctl_create_queue_args")) == 0xC0584B02
    assert k.AMDKFD_IOC_SET_MEMORY_POLICY == _iow("K", 0x04, s("kfd_ioctl_set_memory_policy_args"))
    assert k.AMDKFD_IOC_ALLOC_MEMORY_OF_GPU == _iowr("K", 0x16, s("kfd_ioctl_alloc_memory_of_gpu_args"))
    assert k.AMDKFD_IOC_FREE_MEMORY_OF_GPU == _iow("K", 0x17, s("kfd_ioctl_free_memory_of_gpu_args"))
    assert k.AMDKFD_IOC_MAP_MEMORY_TO_GPU == _iowr("K", 0x18, s("kfd_ioctl_map_memory_to_gpu_args"))
    assert k.AMDKFD_IOC_SVM == _iowr("K", 0x20, s("kfd_ioctl_svm_args"))
    assert k.AMDKFD_IOC_AVAILABLE_MEMORY == _iowr("K", 0x23, s("kfd_ioctl_get_available_memory_args"))
    assert k.AMDKFD_IOC_RUNTIME_ENABLE == _iowr("K", 0x25, s("kfd_ioctl_runtime_enable_args"))
    assert k.AMDKFD_IOC_DBG_TRAP == _iowr("K", 0x26, s("kfd_ioctl_dbg_trap_args"))
    ioc_names = [n for n in dir(k) if n.startswith("AMDKFD_IOC_")]
    assert len(ioc_names) == k.AMDKFD_COMMAND_END - k.AMDKFD_COMMAND_START
    assert all((getattr(k, n) >> 8) & 0xFF == ord("K") for n in ioc_names)


def test_kfd_layouts_and_enums():
    from hwdrv.amd.gen import kfd as k
    assert k.LAYOUT["struct kfd_ioctl_create_queue_args"][0] == 88
    assert k.LAYOUT["struct kfd_ioctl_dbg_trap_args"][1]["enable"] == 8
    assert k.LAYOUT["struct kfd_event_data"][1]["memory_exception_data"] == 0
    assert k.LAYOUT["struct kfd_context_save_area_header"][1]["wave_state.wave_state_size"] == 12
    assert k.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE == 1 << 31 and k.KFD_IOC_ALLOC_MEM_FLAGS_VRAM == 1
    assert k.KFD_IOC_QUEUE_TYPE_COMPUTE_AQL == 2 and k.EC_QUEUE_WAVE_MEMORY_VIOLATION == 5
    assert k.KFD_EC_MASK(k.EC_DEVICE_MEMORY_VIOLATION) == 1 << 32
    assert k.KFD_IOCTL_SVM_LOCATION_UNDEFINED == 0xFFFFFFFF
