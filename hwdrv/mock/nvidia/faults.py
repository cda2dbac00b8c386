"""Channel errors of the mock GPU and what RC recovery records about them.

A `ChannelError` is the mock's robust-channel (RC) event: an Xid, the engine, a message, and
optionally the MMU fault and SM error state the hardware would have latched. The channel turns it
into the error notifier write and keeps the records for the RM controls that read them
(NV906F GET_MMU_FAULT_INFO, NV83DE READ_ALL_SM_ERROR_STATES / READ_MMU_FAULT_INFO).

Which Xid (nverror.h, via the generated table):
  * MMU fault (unmapped / read-only / out-of-range access by any engine)  -> 31 FIFO_ERROR_MMU_ERR_FLT
  * SM exception (illegal instruction, shared/local out of range, misaligned, bad address space)
                                                                          -> 13 GR_EXCEPTION
  * kernel stopped by the mock's watchdog (endless loop)                  -> 13 GR_EXCEPTION, with
    the mock-only global ESR bit MOCK_GLOBAL_ESR_WATCHDOG and the PC where it was stopped (real
    RM's watchdog would report a context-switch timeout, Xid 109, which nverror.h does not define)
  * bad method / data for the compute class, bad QMD, unbound subchannel  -> 69 GR_CLASS_ERROR
  * bad method / data for the copy class                                  -> CE<n>_ERROR (39.. per copy engine)
  * malformed pushbuffer / GP entry / host method                         -> 32 PBDMA_ERROR
  * other channels of the TSG (their notifier, if it is not the same memory) -> 45 PREEMPTIVE_REMOVAL

SM error state ESR codes are Hopper's warp-ESR error codes (see esr_codes); "PC" is the GPU
address of the faulting PTX line in the kernel's text (program address + byte offset), the mock's
ISA being PTX, as a real SM's PC is the address of its SASS instruction.

`kernel_log_lines` words the RC event the way NVRM prints it to the kernel log (the GPU appends
them to the MockKernel's log).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hwdrv.errors import MockFault
from hwdrv.mock.gpumem import MemoryFault

from . import esr_codes as P
from . import facts as F

NV = F.NV

#: mock-only hwwGlobalEsr bit: the kernel was stopped by the mock's launch watchdog
MOCK_GLOBAL_ESR_WATCHDOG = 1 << 31

XID_GR_EXCEPTION = F.xid("ROBUST_CHANNEL_GR_EXCEPTION")
XID_MMU_FAULT = F.xid("ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT")
XID_PBDMA = F.xid("ROBUST_CHANNEL_PBDMA_ERROR")
XID_GR_CLASS = F.xid("ROBUST_CHANNEL_GR_CLASS_ERROR")
XID_PREEMPTIVE_REMOVAL = F.xid("ROBUST_CHANNEL_PREEMPTIVE_REMOVAL")
_CE_XIDS = [F.xid(f"ROBUST_CHANNEL_CE{i}_ERROR") for i in range(10)]

_ACCESS = {"read": NV.NV_PFAULT_ACCESS_TYPE_VIRT_READ, "fetch": NV.NV_PFAULT_ACCESS_TYPE_VIRT_READ,
           "write": NV.NV_PFAULT_ACCESS_TYPE_VIRT_WRITE, "atomic": NV.NV_PFAULT_ACCESS_TYPE_VIRT_ATOMIC}
_ACCESS_NAMES = {NV.NV_PFAULT_ACCESS_TYPE_VIRT_READ: "ACCESS_TYPE_VIRT_READ",
                 NV.NV_PFAULT_ACCESS_TYPE_VIRT_WRITE: "ACCESS_TYPE_VIRT_WRITE",
                 NV.NV_PFAULT_ACCESS_TYPE_VIRT_ATOMIC: "ACCESS_TYPE_VIRT_ATOMIC"}
_FAULT_NAMES = {NV.NV_PFAULT_FAULT_TYPE_PDE: "FAULT_PDE", NV.NV_PFAULT_FAULT_TYPE_PTE: "FAULT_PTE", NV.NV_PFAULT_FAULT_TYPE_RO_VIOLATION: "FAULT_RO_VIOLATION",
                NV.NV_PFAULT_FAULT_TYPE_VA_LIMIT_VIOLATION: "FAULT_VA_LIMIT_VIOLATION"}


def ce_xid(engine_type: int) -> int:
    """The CE<n>_ERROR Xid of the copy engine `engine_type` names (CE0 for anything else)."""
    for i in range(10):
        if engine_type == NV.NV2080_ENGINE_TYPE_COPY(i):
            return _CE_XIDS[i]
    return _CE_XIDS[0]


@dataclass
class MmuFault:
    """A latched MMU fault: GPU VA, NV_PFAULT_FAULT_TYPE_*, NV_PFAULT_ACCESS_TYPE_*, the client
    unit that faulted (e.g. "GPCCLIENT_T1_0", "HUBCLIENT_HOST", "HUBCLIENT_CE0"), the engine."""
    address: int
    fault_type: int
    access_type: int
    client: str
    engine_type: int
    program_va: int = 0

    def text(self) -> str:
        return f"{self.fault_name()} {_ACCESS_NAMES.get(self.access_type, 'ACCESS_TYPE')}"

    def fault_name(self) -> str:
        return _FAULT_NAMES.get(self.fault_type, f"FAULT_TYPE_{self.fault_type}")


@dataclass
class SmError:
    """The SM error state registers latched for one SM (NV83DE_SM_ERROR_STATE_REGISTERS)."""
    sm_id: int
    warp: int
    global_esr: int
    warp_esr: int
    pc: int                   # GPU address of the faulting PTX line (see the module doc)
    address: int = 0
    program_va: int = 0       # the kernel's program address (its .entry text in the image)
    line: int = 0             # the faulting instruction's PTX line (1-based, in the module text)


@dataclass(eq=False)
class ChannelError(MockFault):
    """A robust-channel event of the mock GPU (see the module doc for which Xid when)."""
    xid: int
    message: str
    engine_type: int = 0
    mmu: MmuFault | None = None
    sm: SmError | None = None
    cause: BaseException | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        MockFault.__init__(self, f"Xid {self.xid} ({NV.XID.get(self.xid, '?')}): {self.message}")

    def __str__(self) -> str:
        return f"Xid {self.xid} ({NV.XID.get(self.xid, '?')}): {self.message}"


def mmu_fault(fault: MemoryFault, client: str, engine_type: int, what: str, program_va: int = 0,
              sm: SmError | None = None) -> ChannelError:
    """Xid 31 for a page-table fault of `client` while doing `what`."""
    ftype = (NV.NV_PFAULT_FAULT_TYPE_RO_VIOLATION if fault.reason == "read-only" else
             NV.NV_PFAULT_FAULT_TYPE_PDE if getattr(fault, "no_table", False) else NV.NV_PFAULT_FAULT_TYPE_PTE)
    rec = MmuFault(fault.address, ftype, _ACCESS.get(fault.access, NV.NV_PFAULT_ACCESS_TYPE_VIRT_READ),
                   client, engine_type, program_va)
    return ChannelError(XID_MMU_FAULT, f"MMU fault: {client} faulted @ {fault.address:#x} {rec.text()} "
                                       f"({fault.reason}) while {what}: {fault}",
                        engine_type, mmu=rec, sm=sm, cause=fault)


def _esr_for(fault: BaseException) -> int:
    from .ptx import AddressSpaceFault, IllegalInstruction
    if isinstance(fault, IllegalInstruction):
        return P.NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_ILLEGAL_INSTR_ENCODING
    if isinstance(fault, AddressSpaceFault):
        reason = str(getattr(fault, "reason", ""))
        if "align" in reason:
            return P.NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_MISALIGNED_ADDR
        if "space" in reason:
            return P.NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_INVALID_ADDR_SPACE
        if getattr(fault, "space", "") == "const":
            return P.NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_INVALID_CONST_ADDR
        return P.NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_OOR_ADDR
    if isinstance(fault, MemoryFault):
        return P.NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_MMU_NACK
    return P.NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_NONE


def kernel_fault(fault: MockFault, kernel: str, program_va: int, engine_type: int, grid: tuple) -> ChannelError:
    """The RC event for a fault raised by the PTX interpreter while running `kernel`."""
    from .ptx import LaunchTimeout
    cta = getattr(fault, "cta", (0, 0, 0)) or (0, 0, 0)
    linear_cta = cta[0] + grid[0] * (cta[1] + grid[1] * cta[2])
    sm = SmError(sm_id=linear_cta % F.NUM_SMS, warp=int(getattr(fault, "warp", 0) or 0),
                 global_esr=0, warp_esr=_esr_for(fault), pc=int(getattr(fault, "pc", 0) or 0),
                 address=int(getattr(fault, "address", 0) or 0), program_va=program_va,
                 line=int(getattr(fault, "line", 0) or 0))
    where = (f"kernel {kernel} CTA {tuple(cta)} warp {sm.warp} lane {getattr(fault, 'lane', '?')} "
             f"pc {sm.pc} (PTX line {getattr(fault, 'line', '?')}: {getattr(fault, 'instruction', '?')})")
    if isinstance(fault, MemoryFault):
        client = f"GPCCLIENT_T1_{sm.sm_id % 40}"
        return mmu_fault(fault, client, engine_type, f"running {where}", program_va, sm)
    if isinstance(fault, LaunchTimeout):
        sm.global_esr = MOCK_GLOBAL_ESR_WATCHDOG
        return ChannelError(XID_GR_EXCEPTION, f"kernel stopped by the mock launch watchdog "
                                              f"({getattr(fault, 'reason', 'timeout')}): {fault}; {where}",
                            engine_type, sm=sm, cause=fault)
    return ChannelError(XID_GR_EXCEPTION, f"Graphics SM Warp Exception (ESR {sm.warp_esr:#x}): {fault}; {where}",
                        engine_type, sm=sm, cause=fault)


#: warp-ESR error code -> the name its header gives it (esr_codes), for the kernel log
ESR_NAMES = {v: n[len("NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_"):] for n, v in vars(P).items()
             if n.startswith("NV_PGRAPH_PRI_GPC0_TPC0_SM0_HWW_WARP_ESR_ERROR_")}
#: GH100 topology the mock numbers SMs by (facts.GR_INFO: 9 TPCs per GPC, 2 SMs per TPC)
_SM_PER_TPC = F.GR_INFO[NV.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_SM_PER_TPC]
_TPC_PER_GPC = F.GR_INFO[NV.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_TPC_PER_GPC]


def sm_location(sm_id: int) -> tuple[int, int, int]:
    """(GPC, TPC, SM in TPC) of the mock's SM ``sm_id`` (SMs numbered GPC-major, no floorsweeping)."""
    return sm_id // (_SM_PER_TPC * _TPC_PER_GPC), sm_id // _SM_PER_TPC % _TPC_PER_GPC, sm_id % _SM_PER_TPC


def _va(a: int) -> str:
    # NVRM prints fault addresses with an underscore between the high and low 32 bits
    return f"0x{a >> 32:x}_{a & 0xFFFFFFFF:08x}"


def kernel_log_lines(err: ChannelError, chid: int, pid: int, name: str) -> list[str]:
    """The lines NVRM would print for ``err`` (without the ``NVRM: Xid (PCI:...): `` prefix,
    which the GPU adds): the Xid line in the driver's wording, then the mock's own explanation."""
    who = f"pid={pid}, name={name}"
    if err.mmu is not None:
        f = err.mmu
        engine = "GRAPHICS" if f.client.startswith("GPCCLIENT") else f.client.replace("HUBCLIENT_", "")
        gpc = f"GPC{sm_location(err.sm.sm_id)[0]} " if err.sm is not None else ""
        first = (f"{who}, channel {chid:#010x}, intr 00000000. MMU Fault: ENGINE {engine} {gpc}{f.client} "
                 f"faulted @ {_va(f.address)}. Fault is of type {f.fault_name()} "
                 f"{_ACCESS_NAMES.get(f.access_type, 'ACCESS_TYPE')}")
    elif err.sm is not None:
        gpc, tpc, sm = sm_location(err.sm.sm_id)
        if err.sm.global_esr & MOCK_GLOBAL_ESR_WATCHDOG:
            what = "stopped by the mock launch watchdog (mock-only; RM would report a context-switch timeout)"
        else:
            what = ESR_NAMES.get(err.sm.warp_esr, f"ESR {err.sm.warp_esr:#x}")
        first = f"{who}, Graphics SM Warp Exception on (GPC {gpc}, TPC {tpc}, SM {sm}): {what}"
    elif err.xid == XID_GR_CLASS:
        first = f"{who}, Class Error: ChId {chid:04x}"
    else:
        first = f"{who}, Ch {chid:08x}"
    return [first, f"{who}, mock detail: {err.message}"]

