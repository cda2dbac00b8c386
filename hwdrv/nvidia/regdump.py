"""The decoded register dump of a hang report: GH100 registers read through EXEC_REG_OPS.

Which registers (offsets and fields from the generated ``gen.gh100_regs``, i.e. the published
headers of open-gpu-kernel-modules 580.142; the published gh100 headers carry few registers with
offsets, see autogen/manifest.py):

* ``NV_PMC_BOOT_0`` / ``NV_PMC_BOOT_42``: the chip id. Any client should be able to read these;
  whether they come back tells whether register operations work at all for this client.
* ``NV_RUNLIST_PREEMPT`` of the graphics runlist (its register block located with
  ``NV2080_CTRL_CMD_GPU_GET_ENGINE_RUNLIST_PRI_BASE``): the last preempt of the runlist that
  runs the compute and copy channels, whether it is still pending (a TSG that does not leave the
  GPU is how a hang looks from the scheduler), and which TSG.
* ``NV_VIRTUAL_FUNCTION_TIME_0`` / ``_1``: the GPU timer when the registers were read.

RM checks every op (``gpuValidateRegOps``, subdevice_ctrl_gpu_regops.c): an offset outside BAR0,
or one a non-administrator may not read (the user register access map GSP-RM supplies), comes
back ``INVALID_OFFSET``; GSP-RM checks further. Refused registers are listed with that status.
The debugger object's control is tried first, then the subdevice's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import HwdrvError
from ..hang import HangReport, RefusedRegister, Register
from ..ioctl.bindings import Field
from .gen import gh100_regs as R
from .gen import nv580 as nv

if TYPE_CHECKING:
    from .device import NVDevice


@dataclass(frozen=True)
class RegSpec:
    """A register to read: its header name, BAR0 offset, the fields shown, and for a field the
    prefix of the header's value names (``{field: prefix}``)."""
    name: str
    offset: int
    fields: tuple[str, ...]
    enums: dict[str, str] = field(default_factory=dict)
    why: str = ""


def _enum(prefix: str) -> dict[int, str]:
    return {v: n[len(prefix):] for n, v in sorted(vars(R).items(), key=lambda t: len(t[0]))
            if n.startswith(prefix) and isinstance(v, int) and not isinstance(v, bool)}


def decode(spec: RegSpec, value: int) -> dict[str, Any]:
    """``{field: value}`` of ``value`` by the header's fields; a field with named values shows
    ``NAME (n)``."""
    out: dict[str, Any] = {}
    for f in spec.fields:
        fld = getattr(R, f"{spec.name}_{f}")
        assert isinstance(fld, Field), f"{spec.name}_{f} is not a field"
        v = fld.decode(value)
        names = _enum(spec.enums[f]) if f in spec.enums else {}
        out[f] = f"{names[v]} ({v})" if v in names else v
    return out


def registers(runlist_base: int | None) -> list[RegSpec]:
    """The registers a report reads (the runlist's only where its register block is known)."""
    out = [
        RegSpec("NV_PMC_BOOT_0", R.NV_PMC_BOOT_0,
                ("ARCHITECTURE_0", "IMPLEMENTATION", "MAJOR_REVISION", "MINOR_REVISION"),
                {"ARCHITECTURE_0": "NV_PMC_BOOT_0_ARCHITECTURE_"}, "chip id"),
        RegSpec("NV_PMC_BOOT_42", R.NV_PMC_BOOT_42,
                ("ARCHITECTURE", "IMPLEMENTATION", "MAJOR_REVISION", "MINOR_REVISION"),
                {"ARCHITECTURE": "NV_PMC_BOOT_42_ARCHITECTURE_"}, "chip id"),
    ]
    if runlist_base is not None:
        pend = {"TSG_PREEMPT_PENDING": "NV_RUNLIST_PREEMPT_TSG_PREEMPT_PENDING_",
                "RUNLIST_PREEMPT_PENDING": "NV_RUNLIST_PREEMPT_RUNLIST_PREEMPT_PENDING_",
                "TYPE": "NV_RUNLIST_PREEMPT_TYPE_"}
        out.append(RegSpec("NV_RUNLIST_PREEMPT", runlist_base + R.NV_RUNLIST_PREEMPT,
                           ("TYPE", "ID", "TSG_PREEMPT_PENDING", "RUNLIST_PREEMPT_PENDING"), pend,
                           "graphics runlist: last preempt and whether it is still pending"))
    out += [RegSpec("NV_VIRTUAL_FUNCTION_TIME_0", R.NV_VIRTUAL_FUNCTION_TIME_0, ("NSEC",), {}, "GPU timer"),
            RegSpec("NV_VIRTUAL_FUNCTION_TIME_1", R.NV_VIRTUAL_FUNCTION_TIME_1, ("NSEC",), {}, "GPU timer")]
    return out


def runlist_pri_base(dev: "NVDevice", engine_type: int) -> tuple[int | None, int | None]:
    """(register block base, runlist id) of ``engine_type``'s runlist, as RM reports them."""
    p = R.ffi.new("NV2080_CTRL_GPU_GET_ENGINE_RUNLIST_PRI_BASE_PARAMS *")
    p.engineList[0] = engine_type
    dev.rm.control(dev.h_subdevice, R.NV2080_CTRL_CMD_GPU_GET_ENGINE_RUNLIST_PRI_BASE, p,
                   "NV2080_CTRL_CMD_GPU_GET_ENGINE_RUNLIST_PRI_BASE")
    base, rl = int(p.runlistPriBase[0]), int(p.runlistId[0])
    bad = (R.NV2080_CTRL_GPU_GET_ENGINE_RUNLIST_PRI_BASE_NULL, R.NV2080_CTRL_GPU_GET_ENGINE_RUNLIST_PRI_BASE_ERROR)
    return (None if base in bad else base), (None if rl in bad else rl)


def regop_status_names() -> dict[int, str]:
    return {v: n[len("NV2080_CTRL_GPU_REG_OP_STATUS_"):] for n, v in vars(nv).items()
            if n.startswith("NV2080_CTRL_GPU_REG_OP_STATUS_") and isinstance(v, int)}


def exec_reg_ops(dev: "NVDevice", ops: Sequence[tuple[str, int, int]], via: str
                 ) -> list[tuple[str, int, int | None]]:
    """Read 32-bit registers ``ops`` = [(name, offset, NV2080_CTRL_GPU_REG_OP_TYPE_*)] through
    ``via`` = "debugger" (NV83DE_CTRL_CMD_DEBUG_EXEC_REG_OPS, in the compute context) or
    "subdevice" (NV2080_CTRL_CMD_GPU_EXEC_REG_OPS, targeting the compute channel),
    non-transactionally (one refused op does not fail the others). Returns
    (name, per-op regStatus, value or None). Raises HwdrvError if the control itself fails."""
    ffi = dev.nv.ffi
    if via == "debugger":
        p = ffi.new("NV83DE_CTRL_DEBUG_EXEC_REG_OPS_PARAMS *")
        arr = p.regOps
        if len(ops) > len(arr):
            raise HwdrvError(f"{len(ops)} register ops; the debugger control takes at most {len(arr)}")
    else:
        arr = ffi.new(f"NV2080_CTRL_GPU_REG_OP[{len(ops)}]")
        p = ffi.new("NV2080_CTRL_GPU_EXEC_REG_OPS_PARAMS *")
        p.hClientTarget, p.hChannelTarget = dev.rm.client, dev.h_compute_ch
        p.regOps = arr
    p.bNonTransactional = 1
    p.regOpCount = len(ops)
    for i, (_, off, typ) in enumerate(ops):
        arr[i].regOp = nv.NV2080_CTRL_GPU_REG_OP_READ_32
        arr[i].regType = typ
        arr[i].regOffset = off
        arr[i].regAndNMaskLo = 0xFFFFFFFF
    if via == "debugger":
        dev.rm.control(dev.debugger(), nv.NV83DE_CTRL_CMD_DEBUG_EXEC_REG_OPS, p, "NV83DE_CTRL_CMD_DEBUG_EXEC_REG_OPS")
    else:
        dev.rm.control(dev.h_subdevice, nv.NV2080_CTRL_CMD_GPU_EXEC_REG_OPS, p, "NV2080_CTRL_CMD_GPU_EXEC_REG_OPS")
    ok = nv.NV2080_CTRL_GPU_REG_OP_STATUS_SUCCESS
    return [(name, int(arr[i].regStatus), int(arr[i].regValueLo) if arr[i].regStatus == ok else None)
            for i, (name, _, _) in enumerate(ops)]


def read_registers(dev: "NVDevice", report: HangReport) -> None:
    """Read :func:`registers` into ``report``: decoded ones into ``registers``, refused ones (with
    their status) into ``refused_registers``; a control that fails outright is a note, and the
    other path is tried."""
    base = None
    try:
        base, runlist = runlist_pri_base(dev, nv.NV2080_ENGINE_TYPE_GRAPHICS)
        if base is None:
            report.notes.append("NV2080_CTRL_CMD_GPU_GET_ENGINE_RUNLIST_PRI_BASE gave no register block for "
                                "the graphics runlist: NV_RUNLIST_PREEMPT not read")
    except HwdrvError as e:
        report.notes.append(f"NV2080_CTRL_CMD_GPU_GET_ENGINE_RUNLIST_PRI_BASE refused ({e}): "
                            f"NV_RUNLIST_PREEMPT not read")
    specs = registers(base)
    ops = [(s.name, s.offset, nv.NV2080_CTRL_GPU_REG_OP_TYPE_GLOBAL) for s in specs]
    names = regop_status_names()
    for via, control in (("debugger", "NV83DE_CTRL_CMD_DEBUG_EXEC_REG_OPS"),
                         ("subdevice", "NV2080_CTRL_CMD_GPU_EXEC_REG_OPS")):
        try:
            res = exec_reg_ops(dev, ops, via)
        except HwdrvError as e:
            report.notes.append(f"{control} refused: {e}")
            continue
        for spec, (_, st, val) in zip(specs, res):
            if val is None:
                report.refused_registers.append(RefusedRegister(spec.name, spec.offset, names.get(st, f"{st:#x}"),
                                                                control))
            else:
                report.registers.append(Register(spec.name, val, decode(spec, val), control, spec.offset))
        return
