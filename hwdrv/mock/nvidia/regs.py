"""The mock GH100's BAR0 registers that register operations (EXEC_REG_OPS) can read, and RM's
rules for who may read them.

Modelled from the published headers' meaning (offsets and fields from the generated
``hwdrv.nvidia.gen.gh100_regs``), never from the backend:

* ``NV_PMC_BOOT_0`` / ``NV_PMC_BOOT_42`` (nv_ref.h): the chip id. GH100 is architecture 0x18,
  implementation 0; an H100 is stepping A1 (major revision 0xA, minor 1).
* ``NV_VIRTUAL_FUNCTION_TIME_0`` / ``_TIME_1`` (dev_vm.h): the GPU nanosecond timer; TIME_0 holds
  bits 31:5 (its NSEC field; bits 4:0 read 0), TIME_1 bits 60:32 (NSEC 28:0).
* ``NV_RUNLIST_PREEMPT`` (dev_runlist.h) at the graphics runlist's register block: the last
  preempt request. Robust-channel recovery preempts the faulting channel's TSG, so after an RC
  event it names that TSG (TYPE_TSG, ID = the TSG id); the mock's preempts complete at once, so
  the PENDING bits read FALSE.

Who may read (RM 580.142, ``gpuValidateRegOps`` in subdevice_ctrl_gpu_regops.c and
``gpuValidateRegOffset`` in gpu_access.c): an offset beyond BAR0 (``offset > BAR0 size - 4``) is
``INVALID_OFFSET``; so is one a non-administrator client may not read, which RM decides from a
user register access map that GSP-RM hands over at boot (``gpuConstructUserRegisterAccessMap``,
gpu_register_access_map.c). That map is data, not source, so the mock chooses: a non-administrator
may read the usermode timer (the registers every client maps anyway through HOPPER_USERMODE_A),
nothing else; an administrator (root) passes the check for every offset. Offsets the mock does
not model, register types other than GLOBAL and operations other than READ_32 are refused too
(GSP-RM's own checks are not published; see ``exec_ops``).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from hwdrv.nvidia.gen import gh100_regs as R

from . import facts as F
from . import semaphore as S

NV = F.NV

#: PCI BAR0 (register space) size of an H100, which NV_ESC_CARD_INFO reports as ``reg_size``
BAR0_SIZE = 16 << 20
#: where the mock puts the graphics runlist's register block (real GPUs list theirs in the
#: device info table; RM reports it through NV2080_CTRL_CMD_GPU_GET_ENGINE_RUNLIST_PRI_BASE)
GR_RUNLIST_PRI_BASE = 0x4000
GR_RUNLIST_ID = 0
#: H100 stepping A1
BOOT_MAJOR_REVISION, BOOT_MINOR_REVISION = 0xA, 0x1


def _boot_0() -> int:
    return (R.NV_PMC_BOOT_0_ARCHITECTURE_0.encode(R.NV_PMC_BOOT_0_ARCHITECTURE_GH100)
            | R.NV_PMC_BOOT_0_IMPLEMENTATION.encode(0)
            | R.NV_PMC_BOOT_0_MAJOR_REVISION.encode(BOOT_MAJOR_REVISION)
            | R.NV_PMC_BOOT_0_MINOR_REVISION.encode(BOOT_MINOR_REVISION))


def _boot_42() -> int:
    return (R.NV_PMC_BOOT_42_ARCHITECTURE.encode(R.NV_PMC_BOOT_42_ARCHITECTURE_GH100)
            | R.NV_PMC_BOOT_42_IMPLEMENTATION.encode(0)
            | R.NV_PMC_BOOT_42_MAJOR_REVISION.encode(BOOT_MAJOR_REVISION)
            | R.NV_PMC_BOOT_42_MINOR_REVISION.encode(BOOT_MINOR_REVISION))


@dataclass
class RegOp:
    """One NV2080_CTRL_GPU_REG_OP as the caller filled it."""
    op: int
    type: int
    offset: int


class RegisterFile:
    """The registers above, computed from the mock GPU's state when read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._preempt = 0
        #: RM's osIsAdministrator() for this process (tests may change it)
        self.administrator = os.geteuid() == 0

    def note_tsg_preempt(self, tsg_id: int) -> None:
        """RC recovery preempted TSG ``tsg_id`` off the graphics runlist."""
        with self._lock:
            self._preempt = (R.NV_RUNLIST_PREEMPT_TYPE.encode(R.NV_RUNLIST_PREEMPT_TYPE_TSG)
                             | R.NV_RUNLIST_PREEMPT_ID_HW.encode(tsg_id))

    def read32(self, offset: int) -> int | None:
        """The register's value, or None where the mock models nothing at ``offset``."""
        if offset == R.NV_PMC_BOOT_0:
            return _boot_0()
        if offset == R.NV_PMC_BOOT_42:
            return _boot_42()
        if offset in (R.NV_VIRTUAL_FUNCTION_TIME_0, R.NV_VIRTUAL_FUNCTION_TIME_1):
            ns = S.now_ns()
            if offset == R.NV_VIRTUAL_FUNCTION_TIME_0:
                return R.NV_VIRTUAL_FUNCTION_TIME_0_NSEC.encode(
                    R.NV_VIRTUAL_FUNCTION_TIME_0_NSEC.decode(ns & 0xFFFFFFFF))
            return R.NV_VIRTUAL_FUNCTION_TIME_1_NSEC.encode(
                R.NV_VIRTUAL_FUNCTION_TIME_1_NSEC.decode(ns >> 32))
        if offset == GR_RUNLIST_PRI_BASE + R.NV_RUNLIST_PREEMPT:
            with self._lock:
                return self._preempt
        return None

    def user_readable(self, offset: int) -> bool:
        """Whether the user register access map lets a non-administrator read ``offset``."""
        return offset in (R.NV_VIRTUAL_FUNCTION_TIME_0, R.NV_VIRTUAL_FUNCTION_TIME_1)

    def validate(self, offset: int) -> int:
        """RM's per-op pre-validation (gpuValidateRegOps): the regStatus it gives ``offset``."""
        if offset > BAR0_SIZE - 4 or not (self.administrator or self.user_readable(offset)):
            return NV.NV2080_CTRL_GPU_REG_OP_STATUS_INVALID_OFFSET
        return NV.NV2080_CTRL_GPU_REG_OP_STATUS_SUCCESS

    def execute(self, op: RegOp) -> tuple[int, int]:
        """(regStatus, value) of one op that passed validation. The mock serves 32-bit reads of
        GLOBAL registers it models; a write is UNSUPPORTED_OP (the mock's registers are status
        registers), another register type INVALID_TYPE, an unmodelled offset INVALID_OFFSET."""
        if op.op != NV.NV2080_CTRL_GPU_REG_OP_READ_32:
            return NV.NV2080_CTRL_GPU_REG_OP_STATUS_UNSUPPORTED_OP, 0
        if op.type != NV.NV2080_CTRL_GPU_REG_OP_TYPE_GLOBAL:
            return NV.NV2080_CTRL_GPU_REG_OP_STATUS_INVALID_TYPE, 0
        v = self.read32(op.offset)
        if v is None:
            return NV.NV2080_CTRL_GPU_REG_OP_STATUS_INVALID_OFFSET, 0
        return NV.NV2080_CTRL_GPU_REG_OP_STATUS_SUCCESS, v
