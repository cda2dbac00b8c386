"""How the real driver answers a control whose paramsSize is 4 bytes short, for each control the
backend uses (not a pytest module): the mock must answer the same way.

    python tests/hardware/ctrl_size_probe.py
"""
import hwdrv

d = hwdrv.open_device("nvidia:0")
nv, rm = d.nv, d.rm
cases = [("NV0000 GPU_GET_ID_INFO_V2", rm.client, "NV0000_CTRL_CMD_GPU_GET_ID_INFO_V2", "NV0000_CTRL_GPU_GET_ID_INFO_V2_PARAMS"),
         ("NV0000 SYSTEM_GET_BUILD_VERSION_V2", rm.client, "NV0000_CTRL_CMD_SYSTEM_GET_BUILD_VERSION_V2", "NV0000_CTRL_SYSTEM_GET_BUILD_VERSION_V2_PARAMS"),
         ("NV0080 GPU_GET_CLASSLIST", d.h_device, "NV0080_CTRL_CMD_GPU_GET_CLASSLIST", "NV0080_CTRL_GPU_GET_CLASSLIST_PARAMS"),
         ("NV2080 GPU_GET_GID_INFO", d.h_subdevice, "NV2080_CTRL_CMD_GPU_GET_GID_INFO", "NV2080_CTRL_GPU_GET_GID_INFO_PARAMS"),
         ("NV2080 GR_GET_INFO", d.h_subdevice, "NV2080_CTRL_CMD_GR_GET_INFO", "NV2080_CTRL_GR_GET_INFO_PARAMS"),
         ("NV2080 PERF_BOOST", d.h_subdevice, "NV2080_CTRL_CMD_PERF_BOOST", "NV2080_CTRL_PERF_BOOST_PARAMS"),
         ("NV2080 GPU_GET_NAME_STRING", d.h_subdevice, "NV2080_CTRL_CMD_GPU_GET_NAME_STRING", "NV2080_CTRL_GPU_GET_NAME_STRING_PARAMS"),
         ("NVC36F GET_WORK_SUBMIT_TOKEN", d.h_compute_ch, "NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN", "NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS"),
         ("NV906F GET_MMU_FAULT_INFO", d.h_compute_ch, "NV906F_CTRL_CMD_GET_MMU_FAULT_INFO", "NV906F_CTRL_GET_MMU_FAULT_INFO_PARAMS"),
         ("NVA06C GPFIFO_SCHEDULE", d.h_tsg, "NVA06C_CTRL_CMD_GPFIFO_SCHEDULE", "NVA06C_CTRL_GPFIFO_SCHEDULE_PARAMS"),
         ("NV83DE READ_MMU_FAULT_INFO", d.debugger(), "NV83DE_CTRL_CMD_DEBUG_READ_MMU_FAULT_INFO", "NV83DE_CTRL_DEBUG_READ_MMU_FAULT_INFO_PARAMS"),
         ("NV83DE READ_ALL_SM_ERROR_STATES", d.debugger(), "NV83DE_CTRL_CMD_DEBUG_READ_ALL_SM_ERROR_STATES", "NV83DE_CTRL_DEBUG_READ_ALL_SM_ERROR_STATES_PARAMS")]
for label, h, cmd, struct in cases:
    for delta in ((-4, +4) if nv.ffi.sizeof(struct) >= 4 else (+4,)):
        buf = nv.ffi.new(f"uint8_t[{nv.ffi.sizeof(struct) + 8}]")
        p = nv.ffi.new("NVOS54_PARAMETERS *")
        p.hClient, p.hObject, p.cmd = rm.client, h, getattr(nv, cmd)
        p.params = buf
        p.paramsSize = nv.ffi.sizeof(struct) + delta
        rm.escape(rm.fd, nv.NV_ESC_RM_CONTROL, p, "NV_ESC_RM_CONTROL")
        print(f"{label:40s} size{delta:+d}: {nv.NV_STATUS.get(p.status, (hex(p.status),))[0]}")
d.close()
