"""RM_CONTROL on the mock: the controls hwdrv's backend uses, answered like a GH100 would.

Like `resControlLookup`: a command the object's class does not export is NV_ERR_NOT_SUPPORTED;
`paramsSize` must equal the params size exactly. Through the escape path the real driver answers
a mismatch with NV_ERR_INVALID_ARGUMENT, for every control: measured on an H100 with 580.159.04
(tests/hardware/ctrl_size_probe.py: 4 bytes short or long, on each of the 12 controls hwdrv uses),
although resserv's own table check would say NV_ERR_INVALID_PARAM_STRUCT. A NULL params pointer
with a nonzero size is NV_ERR_INVALID_ARGUMENT too. Handlers read and write the
caller's params struct in place through the generated cffi layouts.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from hwdrv.mock.gpumem import MemoryFault

from hwdrv.nvidia.gen import gh100_regs as R

from . import facts as F
from . import regs as G
from .objects import Channel, ChannelGroup, Client, Debugger, Device, RmObject, RmStatus, Subdevice

if TYPE_CHECKING:
    from .rm import RmServer

NV = F.NV
ffi = NV.ffi
Handler = Callable[["RmServer", Any, Any], None]
_CONTROLS: dict[int, tuple[type | tuple, str, Handler, Any]] = {}


def control(cmd: int, on: type | tuple, struct: str, facts: Any = NV) -> Callable[[Handler], Handler]:
    """Register a handler for control `cmd` on objects of type `on`, params `struct` (whose layout
    and cffi type the generated module `facts` holds)."""
    def deco(fn: Handler) -> Handler:
        _CONTROLS[cmd] = (on, struct, fn, facts)
        return fn
    return deco


def rm_control(rm: "RmServer", h_client: int, h_object: int, cmd: int, params: int, size: int) -> None:
    client = rm.client(h_client)
    obj = rm.obj(client, h_object)
    spec = _CONTROLS.get(cmd)
    if spec is None or not isinstance(obj, spec[0]):
        raise RmStatus("NV_ERR_NOT_SUPPORTED", f"control {cmd:#010x} is not supported on {type(obj).__name__} "
                                               f"(class {obj.cls:#x}) by the mock")
    on, struct, fn, facts = spec
    want = facts.LAYOUT[struct][0]
    if size != want:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"control {cmd:#010x}: paramsSize {size} != sizeof({struct}) "
                                                  f"{want}")
    if not params:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"control {cmd:#010x}: params pointer is NULL")
    fn(rm, obj, facts.ffi.cast(struct + " *", params))


def _gpu(obj: RmObject) -> Any:
    """The mock GPU an object below a device belongs to."""
    return obj.ancestor(Device).gpu


def _put_str(dst: Any, text: str, n: int) -> None:
    b = text.encode()[:n - 1] + b"\0"
    ffi.memmove(dst, b, len(b))


# ---- NV0000 (client) ---------------------------------------------------------------------------
@control(NV.NV0000_CTRL_CMD_SYSTEM_GET_BUILD_VERSION_V2, Client, "NV0000_CTRL_SYSTEM_GET_BUILD_VERSION_V2_PARAMS")
def _build_version(rm: "RmServer", obj: Client, p: Any) -> None:
    n = NV.NV0000_CTRL_SYSTEM_GET_BUILD_VERSION_V2_MAX_STRING_SIZE
    _put_str(p.driverVersionBuffer, F.DRIVER_VERSION, n)
    _put_str(p.versionBuffer, F.DRIVER_VERSION, n)
    _put_str(p.driverBranch, "r580_00 (hwdrv mock)", n)
    _put_str(p.titleBuffer, f"hwdrv mock NVIDIA driver {F.DRIVER_VERSION}", n)
    p.changelistNumber = p.officialChangelistNumber = 0


@control(NV.NV0000_CTRL_CMD_GPU_GET_ID_INFO_V2, Client, "NV0000_CTRL_GPU_GET_ID_INFO_V2_PARAMS")
def _id_info(rm: "RmServer", obj: Client, p: Any) -> None:
    gpu = rm.gpu_by_id(p.gpuId)
    if gpu is None:
        ids = ", ".join(f"{g.ident.gpu_id:#x}" for g in rm.gpus)
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"gpuId {p.gpuId:#x} is not a GPU of this system "
                                                  f"(CARD_INFO lists {ids})")
    if rm.dev_fds_by_gpu[gpu.ident.index] == 0:
        raise RmStatus("NV_ERR_INVALID_STATE", f"open /dev/nvidia{gpu.ident.minor} before GPU_GET_ID_INFO_V2 "
                                               f"(newer modules need it)")
    p.gpuFlags = 0
    # one device per GPU (no SLI): device instance = the GPU's index, subdevice 0
    p.deviceInstance, p.subDeviceInstance = gpu.ident.index, F.SUBDEVICE_INSTANCE
    p.sliStatus, p.boardId, p.gpuInstance = 0, gpu.ident.board_id, gpu.ident.index
    p.numaId = -1                         # NV0000_CTRL_NO_NUMA_NODE


@control(NV.NV0000_CTRL_CMD_SYSTEM_GET_P2P_CAPS_V2, Client, "NV0000_CTRL_SYSTEM_GET_P2P_CAPS_V2_PARAMS")
def _p2p_caps(rm: "RmServer", obj: Client, p: Any) -> None:
    """CliGetSystemP2pCaps (src/kernel/rmapi/client_resource.c, 580.142): the caps common to
    every pair of the listed GPUs, over the mock bus's links. Peer ids are the mock's own
    numbering (the peer's index among the other GPUs); loopback is not modelled (a GPU alone
    reports no caps)."""
    n = int(p.gpuCount)
    if n == 0 or n > NV.NV0000_CTRL_SYSTEM_MAX_ATTACHED_GPUS:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"gpuCount {n}: 1..{NV.NV0000_CTRL_SYSTEM_MAX_ATTACHED_GPUS}")
    ids = [int(p.gpuIds[i]) for i in range(n)]
    invalid = NV.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_INVALID_PEER
    if n == 2 and ids[0] == ids[1]:
        ids, n = ids[:1], 1                 # bLoopback: asked as one GPU
    p.p2pCaps = p.p2pOptimalReadCEs = p.p2pOptimalWriteCEs = 0
    for i in range(NV.NV0000_CTRL_P2P_CAPS_INDEX_TABLE_SIZE):
        p.p2pCapsStatus[i] = NV.NV0000_P2P_CAPS_STATUS_NOT_SUPPORTED
    gpus = []
    for g in ids:
        gpu = rm.gpu_by_id(g)
        if gpu is None:
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"GPU ID not found: {g:#x}")
        gpus.append(gpu.ident.index)
    for x, a in enumerate(gpus):
        for y, b in enumerate(gpus):
            linked = a != b and rm.link(a, b) != "none"
            p.busPeerIds[x * n + y] = (b if b < a else b - 1) if linked else invalid
            p.busEgmPeerIds[x * n + y] = invalid
    kinds = {rm.link(a, b) for a in gpus for b in gpus if a != b}
    connectivity = "none" if not kinds or "none" in kinds else ("pcie" if "pcie" in kinds else "nvlink")
    ok, status = NV.NV0000_P2P_CAPS_STATUS_OK, p.p2pCapsStatus
    rw = ok if connectivity != "none" else NV.NV0000_P2P_CAPS_STATUS_IOH_TOPOLOGY_NOT_SUPPORTED
    caps = 0
    if connectivity == "nvlink":
        # NVLink peers: reads, writes and native atomics
        caps = (NV.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_NVLINK_SUPPORTED.encode(1)
                | NV.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_ATOMICS_SUPPORTED.encode(1)
                | NV.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_READS_SUPPORTED.encode(1)
                | NV.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_WRITES_SUPPORTED.encode(1))
        status[NV.NV0000_CTRL_P2P_CAPS_INDEX_NVLINK] = status[NV.NV0000_CTRL_P2P_CAPS_INDEX_ATOMICS] = ok
    elif connectivity == "pcie":
        # P2P_CONNECTIVITY_PCIE_PROPRIETARY, no PCIe atomics between the mock's GPUs
        caps = (NV.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_READS_SUPPORTED.encode(1)
                | NV.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_WRITES_SUPPORTED.encode(1)
                | NV.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_PCI_SUPPORTED.encode(1)
                | NV.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_PROP_SUPPORTED.encode(1))
        status[NV.NV0000_CTRL_P2P_CAPS_INDEX_PCI] = status[NV.NV0000_CTRL_P2P_CAPS_INDEX_PROP] = ok
    p.p2pCaps = caps
    status[NV.NV0000_CTRL_P2P_CAPS_INDEX_READ] = status[NV.NV0000_CTRL_P2P_CAPS_INDEX_WRITE] = rw


# ---- NV0080 (device) ---------------------------------------------------------------------------
@control(NV.NV0080_CTRL_CMD_GPU_GET_CLASSLIST, Device, "NV0080_CTRL_GPU_GET_CLASSLIST_PARAMS")
def _classlist(rm: "RmServer", obj: Device, p: Any) -> None:
    classes = F.CLASS_LIST
    ptr = int(ffi.cast("uintptr_t", p.classList))
    if ptr:
        if p.numClasses < len(classes):
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"numClasses {p.numClasses} < {len(classes)} classes")
        arr = ffi.cast("NvU32 *", ptr)
        for i, c in enumerate(classes):
            arr[i] = c
    p.numClasses = len(classes)


# ---- NV2080 (subdevice) ------------------------------------------------------------------------
@control(NV.NV2080_CTRL_CMD_GPU_GET_GID_INFO, Subdevice, "NV2080_CTRL_GPU_GET_GID_INFO_PARAMS")
def _gid(rm: "RmServer", obj: Subdevice, p: Any) -> None:
    fmt = NV.NV2080_GPU_CMD_GPU_GET_GID_FLAGS_FORMAT.decode(p.flags)
    uuid = _gpu(obj).ident.uuid
    if fmt == NV.NV2080_GPU_CMD_GPU_GET_GID_FLAGS_FORMAT_BINARY:
        data = uuid
    elif fmt == NV.NV2080_GPU_CMD_GPU_GET_GID_FLAGS_FORMAT_ASCII:
        u = uuid.hex()
        data = f"GPU-{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}".encode() + b"\0"
    else:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"GID format {fmt} is unknown")
    ffi.memmove(p.data, data, len(data))
    p.length = len(data)


@control(NV.NV2080_CTRL_CMD_GPU_GET_NAME_STRING, Subdevice, "NV2080_CTRL_GPU_GET_NAME_STRING_PARAMS")
def _name(rm: "RmServer", obj: Subdevice, p: Any) -> None:
    if p.gpuNameStringFlags == NV.NV2080_CTRL_GPU_GET_NAME_STRING_FLAGS_TYPE_ASCII:
        _put_str(p.gpuNameString.ascii, F.GPU_NAME, len(p.gpuNameString.ascii))
    elif p.gpuNameStringFlags == NV.NV2080_CTRL_GPU_GET_NAME_STRING_FLAGS_TYPE_UNICODE:
        u = p.gpuNameString.unicode
        for i, ch in enumerate((F.GPU_NAME[:len(u) - 1] + "\0")):
            u[i] = ord(ch)
    else:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"name string flags {p.gpuNameStringFlags:#x}")


@control(NV.NV2080_CTRL_CMD_GR_GET_INFO, Subdevice, "NV2080_CTRL_GR_GET_INFO_PARAMS")
def _gr_info(rm: "RmServer", obj: Subdevice, p: Any) -> None:
    n = p.grInfoListSize
    ptr = int(ffi.cast("uintptr_t", p.grInfoList))
    if n == 0 or n > NV.NV2080_CTRL_GR_INFO_MAX_SIZE or not ptr:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"grInfoListSize {n} (1..{NV.NV2080_CTRL_GR_INFO_MAX_SIZE}) "
                                                  f"with list pointer {ptr:#x}")
    items = ffi.cast("NV2080_CTRL_GR_INFO *", ptr)
    for i in range(n):
        idx = items[i].index
        if idx >= NV.NV2080_CTRL_GR_INFO_INDEX_MAX:
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"GR info index {idx} >= INDEX_MAX")
        items[i].data = F.GR_INFO.get(idx, 0)


@control(NV.NV2080_CTRL_CMD_GR_GET_CTX_BUFFER_SIZE, Subdevice, "NV2080_CTRL_GR_GET_CTX_BUFFER_SIZE_PARAMS")
def _ctx_size(rm: "RmServer", obj: Subdevice, p: Any) -> None:
    rm.obj(obj.client, p.hChannel, Channel, "hChannel")
    p.totalBufferSize = 2 << 20


@control(NV.NV2080_CTRL_CMD_PERF_BOOST, Subdevice, "NV2080_CTRL_PERF_BOOST_PARAMS")
def _perf_boost(rm: "RmServer", obj: Subdevice, p: Any) -> None:
    cmd = NV.NV2080_CTRL_PERF_BOOST_FLAGS_CMD.decode(p.flags)
    if cmd not in (NV.NV2080_CTRL_PERF_BOOST_FLAGS_CMD_CLEAR, NV.NV2080_CTRL_PERF_BOOST_FLAGS_CMD_BOOST_1LEVEL,
                   NV.NV2080_CTRL_PERF_BOOST_FLAGS_CMD_BOOST_TO_MAX):
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"PERF_BOOST command {cmd}")
    if p.duration > NV.NV2080_CTRL_PERF_BOOST_DURATION_MAX and p.duration != NV.NV2080_CTRL_PERF_BOOST_DURATION_INFINITE:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"PERF_BOOST duration {p.duration} s")
    _gpu(obj).perf_boost.append((int(p.flags), int(p.duration)))


@control(NV.NV2080_CTRL_CMD_RC_GET_ERROR_COUNT, Subdevice, "NV2080_CTRL_RC_GET_ERROR_COUNT_PARAMS")
def _rc_count(rm: "RmServer", obj: Subdevice, p: Any) -> None:
    p.errorCount = len(_gpu(obj).rc_log)


@control(NV.NV2080_CTRL_CMD_RC_READ_VIRTUAL_MEM, Subdevice, "NV2080_CTRL_RC_READ_VIRTUAL_MEM_PARAMS")
def _rc_read(rm: "RmServer", obj: Subdevice, p: Any) -> None:
    ch = rm.obj(obj.client, p.hChannel, Channel, "hChannel")
    buf = int(ffi.cast("uintptr_t", p.bufferPtr))
    if not buf or p.bufferSize == 0:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", "RC_READ_VIRTUAL_MEM needs a buffer")
    try:
        data = ch.gpu.pt.read(int(p.virtAddress), int(p.bufferSize))
    except MemoryFault as f:
        raise RmStatus("NV_ERR_INVALID_ADDRESS", str(f)) from None
    ffi.memmove(ffi.cast("void *", buf), data, len(data))


# ---- channels and channel groups ---------------------------------------------------------------
@control(NV.NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN, Channel, "NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS")
def _token(rm: "RmServer", obj: Channel, p: Any) -> None:
    p.workSubmitToken = obj.gpu.token


@control(NV.NVA06C_CTRL_CMD_GPFIFO_SCHEDULE, ChannelGroup, "NVA06C_CTRL_GPFIFO_SCHEDULE_PARAMS")
def _schedule(rm: "RmServer", obj: ChannelGroup, p: Any) -> None:
    chans = obj.channels()
    if p.bEnable and not chans:
        raise RmStatus("NV_ERR_INVALID_STATE", "GPFIFO_SCHEDULE on a channel group with no channels")
    obj.scheduled = bool(p.bEnable)
    for c in chans:
        c.gpu.scheduled = obj.scheduled
        if obj.scheduled and not p.bSkipSubmit and not c.gpu.dead:
            c.gpu.kick()


@control(NV.NV906F_CTRL_CMD_GET_MMU_FAULT_INFO, Channel, "NV906F_CTRL_GET_MMU_FAULT_INFO_PARAMS")
def _mmu_fault_info(rm: "RmServer", obj: Channel, p: Any) -> None:
    f = obj.gpu.last_mmu_fault
    ffi.memmove(p, b"\0" * F.size("NV906F_CTRL_GET_MMU_FAULT_INFO_PARAMS"), F.size("NV906F_CTRL_GET_MMU_FAULT_INFO_PARAMS"))
    if f is None:
        return
    p.addrHi, p.addrLo, p.faultType = f.address >> 32, f.address & 0xFFFFFFFF, f.fault_type
    _put_str(p.faultString, f.text(), NV.NV906F_CTRL_MMU_FAULT_STRING_LEN)
    p.shaderProgramVA[0] = f.program_va
    obj.gpu.last_mmu_fault = None          # RM clears it once read


# ---- GT200_DEBUGGER ----------------------------------------------------------------------------
def _target_channel(rm: "RmServer", dbg: Debugger, h: int) -> Channel:
    return rm.obj(dbg.client, h, Channel, "hTargetChannel")


def _fill_sm(regs: Any, e: Any) -> None:
    regs.hwwGlobalEsr, regs.hwwWarpEsr = e.global_esr, e.warp_esr
    # the PC is an address: the faulting PTX line's place in the kernel's text (faults.py doc)
    pc = e.pc
    regs.hwwWarpEsrPc, regs.hwwWarpEsrPc64 = pc & 0xFFFFFFFF, pc
    regs.hwwGlobalEsrReportMask = regs.hwwWarpEsrReportMask = 0xFFFFFFFF
    regs.hwwEsrAddr = e.address


@control(NV.NV83DE_CTRL_CMD_DEBUG_READ_ALL_SM_ERROR_STATES, Debugger, "NV83DE_CTRL_DEBUG_READ_ALL_SM_ERROR_STATES_PARAMS")
def _read_all_sm(rm: "RmServer", dbg: Debugger, p: Any) -> None:
    ch = _target_channel(rm, dbg, p.hTargetChannel)
    n, start = p.numSMsToRead, p.startingSM
    if n > NV.NV83DE_CTRL_DEBUG_MAX_SMS_PER_CALL or start + n > F.NUM_SMS:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"SMs [{start}, {start + n}) with at most "
                                                  f"{NV.NV83DE_CTRL_DEBUG_MAX_SMS_PER_CALL} per call, {F.NUM_SMS} SMs")
    arr = p.smErrorStateArray
    ffi.memmove(ffi.addressof(arr, 0), b"\0" * (48 * len(arr)), 48 * len(arr))
    for i in range(n):
        e = ch.gpu.sm_errors.get(start + i)
        if e is not None:
            _fill_sm(arr[i], e)
    f = ch.gpu.mmu_faults[-1] if ch.gpu.mmu_faults else None
    p.mmuFault.valid = 1 if f is not None else 0
    p.mmuFault.faultInfo = f.fault_type if f is not None else 0
    p.mmuFaultInfo = p.mmuFault.faultInfo


@control(NV.NV83DE_CTRL_CMD_DEBUG_READ_SINGLE_SM_ERROR_STATE, Debugger, "NV83DE_CTRL_DEBUG_READ_SINGLE_SM_ERROR_STATE_PARAMS")
def _read_one_sm(rm: "RmServer", dbg: Debugger, p: Any) -> None:
    ch = _target_channel(rm, dbg, p.hTargetChannel)
    if p.smID >= F.NUM_SMS:
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"smID {p.smID} >= {F.NUM_SMS}")
    ffi.memmove(ffi.addressof(p.smErrorState), b"\0" * 48, 48)
    e = ch.gpu.sm_errors.get(p.smID)
    if e is not None:
        _fill_sm(p.smErrorState, e)


@control(NV.NV83DE_CTRL_CMD_DEBUG_CLEAR_ALL_SM_ERROR_STATES, Debugger, "NV83DE_CTRL_DEBUG_CLEAR_ALL_SM_ERROR_STATES_PARAMS")
def _clear_sm(rm: "RmServer", dbg: Debugger, p: Any) -> None:
    ch = _target_channel(rm, dbg, p.hTargetChannel)
    ch.gpu.sm_errors.clear()


@control(NV.NV83DE_CTRL_CMD_DEBUG_READ_MMU_FAULT_INFO, Debugger, "NV83DE_CTRL_DEBUG_READ_MMU_FAULT_INFO_PARAMS")
def _read_mmu(rm: "RmServer", dbg: Debugger, p: Any) -> None:
    ch = dbg.channel().gpu
    faults = ch.mmu_faults[-NV.NV83DE_CTRL_DEBUG_READ_MMU_FAULT_INFO_MAX_ENTRIES:]
    for i, f in enumerate(faults):
        e = p.mmuFaultInfoList[i]
        e.faultAddress, e.faultType, e.accessType = f.address, f.fault_type, f.access_type
    p.count = len(faults)
    ch.mmu_faults.clear()                 # reading drains the debugger's fault buffer


# ---- register operations (regs.py: the registers, and RM's rules for who may read them) -------
def _reg_ops(gpu: Any, arr: Any, count: int, non_transactional: bool) -> None:
    """Validate then execute ``count`` ops in place, as RM does: every regStatus starts SUCCESS;
    gpuValidateRegOps marks offsets this client may not read INVALID_OFFSET and, for a
    transactional request, fails the whole control with NV_ERR_INVALID_ARGUMENT."""
    regs = gpu.regs
    for i in range(count):
        arr[i].regStatus = NV.NV2080_CTRL_GPU_REG_OP_STATUS_SUCCESS
    for i in range(count):
        st = regs.validate(int(arr[i].regOffset))
        if st != NV.NV2080_CTRL_GPU_REG_OP_STATUS_SUCCESS:
            arr[i].regStatus |= st
            if not non_transactional:
                raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"register op {i}: offset {int(arr[i].regOffset):#x} "
                                                          f"may not be accessed by this client (transactional "
                                                          f"request)")
    for i in range(count):
        if arr[i].regStatus != NV.NV2080_CTRL_GPU_REG_OP_STATUS_SUCCESS:
            continue
        st, value = regs.execute(G.RegOp(int(arr[i].regOp), int(arr[i].regType), int(arr[i].regOffset)))
        arr[i].regStatus = st
        arr[i].regValueLo, arr[i].regValueHi = (value, 0) if st == NV.NV2080_CTRL_GPU_REG_OP_STATUS_SUCCESS \
            else (0, 0)


@control(NV.NV83DE_CTRL_CMD_DEBUG_EXEC_REG_OPS, Debugger, "NV83DE_CTRL_DEBUG_EXEC_REG_OPS_PARAMS")
def _dbg_reg_ops(rm: "RmServer", dbg: Debugger, p: Any) -> None:
    # ksmdbgssnCtrlCmdDebugExecRegOps: at most NV83DE_CTRL_GPU_EXEC_REG_OPS_MAX_OPS (the array's length)
    if p.regOpCount > len(p.regOps):
        raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"regOpCount {p.regOpCount} > {len(p.regOps)}")
    _reg_ops(_gpu(dbg), p.regOps, int(p.regOpCount), bool(p.bNonTransactional))


@control(NV.NV2080_CTRL_CMD_GPU_EXEC_REG_OPS, Subdevice, "NV2080_CTRL_GPU_EXEC_REG_OPS_PARAMS")
def _gpu_reg_ops(rm: "RmServer", obj: Subdevice, p: Any) -> None:
    # subdeviceCtrlCmdGpuExecRegOps_cmn's parameter checks
    ptr = int(ffi.cast("uintptr_t", p.regOps))
    if p.regOpCount == 0 or not ptr:
        raise RmStatus("NV_ERR_INVALID_PARAM_STRUCT", f"regOpCount {p.regOpCount} with regOps {ptr:#x}")
    if (p.hClientTarget == 0) != (p.hChannelTarget == 0):
        raise RmStatus("NV_ERR_INVALID_PARAM_STRUCT", "hClientTarget and hChannelTarget must both be set or both 0")
    if p.hClientTarget:
        rm.obj(rm.client(p.hClientTarget), p.hChannelTarget, Channel, "hChannelTarget")
    _reg_ops(_gpu(obj), ffi.cast("NV2080_CTRL_GPU_REG_OP *", ptr), int(p.regOpCount), bool(p.bNonTransactional))


@control(R.NV2080_CTRL_CMD_GPU_GET_ENGINE_RUNLIST_PRI_BASE, Subdevice,
         "NV2080_CTRL_GPU_GET_ENGINE_RUNLIST_PRI_BASE_PARAMS", facts=R)
def _runlist_pri_base(rm: "RmServer", obj: Subdevice, p: Any) -> None:
    # the mock has one runlist with a register block: graphics (its copy engine runs on it too)
    for i in range(len(p.engineList)):
        e = p.engineList[i]
        if e == NV.NV2080_ENGINE_TYPE_NULL:
            p.runlistPriBase[i] = R.NV2080_CTRL_GPU_GET_ENGINE_RUNLIST_PRI_BASE_NULL
            p.runlistId[i] = R.NV2080_CTRL_GPU_GET_ENGINE_RUNLIST_INVALID
        elif e == NV.NV2080_ENGINE_TYPE_GRAPHICS:
            p.runlistPriBase[i], p.runlistId[i] = G.GR_RUNLIST_PRI_BASE, G.GR_RUNLIST_ID
        else:
            raise RmStatus("NV_ERR_INVALID_ARGUMENT", f"engine type {e} has no runlist on the mock")


def supported() -> dict[int, str]:
    """cmd -> params struct of every control the mock answers (for docs and tests)."""
    return {cmd: spec[1] for cmd, spec in _CONTROLS.items()}


_ = RmObject
