"""The report a person reads, on the mock NVIDIA GPU: the headline for each provocation, the
kernel log lines NVRM-style, the decoded register dump (and what RM refuses), merged fault
records, and the JSON round trip of a real report."""
import errno
import re

import pytest

import hwdrv
from hwdrv import provoke as D
from hwdrv.errors import HwdrvError
from hwdrv.hang import HangReport
from hwdrv.nvidia import regdump
from hwdrv.nvidia.gen import gh100_regs as R
from hwdrv.nvidia.gen import nv580 as nv
from hwdrv.nvidia.samples import OOB_STORE_PTX, TRAP_PTX


@pytest.fixture
def dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


def ptx_line(text: str, needle: str) -> int:
    """1-based line of ``needle`` in the sample's PTX text (what the report must point at)."""
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


def regs(rep):
    return {r.name: r for r in rep.registers}


def no_unknowns(rep):
    t = rep.to_text()
    assert not re.search(r"\bNone\b|=\?|\s\?\s", t), t


def test_oob_store_report(dev):
    rep, msg, exp = D.provoke_oob_store(dev)
    assert rep is not None, msg
    line = ptx_line(OOB_STORE_PTX, "st.global.u32")
    a = exp["address"]
    assert rep.headline == (f"Kernel oob_store faulted at PTX line {line} (`st.global.u32 [%rd1], %r1;`): a write "
                            f"to {a:#x}, which no page table covers (FAULT_PDE, Xid 31 "
                            f"ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT).")
    assert rep.to_text().splitlines()[1] == "  " + rep.headline
    # one fault, one wave error: the channel's shader record and the SM's record are merged
    assert len(rep.faults) == 1 and len(rep.wave_errors) == 1
    w = rep.wave_errors[0]
    assert w.unit is not None and w.address == a and w.source_line.startswith(f"PTX line {line}:")
    # the kernel log: NVRM's Xid 31 line for this GPU, in the driver's wording
    xid = [ln for ln in rep.kernel_log if "NVRM: Xid (PCI:0000:42:00): 31," in ln]
    assert xid and f"faulted @ {a >> 32:#x}_{a & 0xFFFFFFFF:08x}" in xid[0], rep.kernel_log
    assert "MMU Fault: ENGINE GRAPHICS" in xid[0] and "Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_WRITE" in xid[0]
    assert re.match(r"\[\s*\d+\.\d{6}\] NVRM: ", xid[0])
    assert not rep.kernel_log_error
    # decoded registers
    r = regs(rep)
    assert r["NV_PMC_BOOT_0"].fields["ARCHITECTURE_0"] == f"GH100 ({R.NV_PMC_BOOT_0_ARCHITECTURE_GH100})"
    assert r["NV_PMC_BOOT_42"].fields["ARCHITECTURE"] == f"GH100 ({R.NV_PMC_BOOT_42_ARCHITECTURE_GH100})"
    pre = r["NV_RUNLIST_PREEMPT"]
    assert pre.fields["TYPE"] == "TSG (1)" and pre.fields["TSG_PREEMPT_PENDING"] == "FALSE (0)"
    assert pre.source == "NV83DE_CTRL_CMD_DEBUG_EXEC_REG_OPS" and pre.offset % 4 == 0
    t0, t1 = r["NV_VIRTUAL_FUNCTION_TIME_0"].value, r["NV_VIRTUAL_FUNCTION_TIME_1"].value
    assert t0 & 0x1F == 0 and abs(((t1 << 32) | t0) - r["USERMODE.TIME"].value) < 10 ** 10
    no_unknowns(rep)
    assert HangReport.from_json(rep.to_json()) == rep


def test_illegal_instruction_report(dev):
    D.provoke_oob_store(dev)
    rep, msg, _ = D.provoke_illegal_instruction(dev)
    assert rep is not None, msg
    line = ptx_line(TRAP_PTX, "trap;")
    assert rep.headline == (f"Kernel illegal_trap stopped at PTX line {line} (`trap;`): ILLEGAL_INSTR_ENCODING "
                            f"(as the kernel log says) (Xid 13 ROBUST_CHANNEL_GR_EXCEPTION)."), rep.to_text()
    # only this fault's lines: the previous report already showed the Xid 31 line
    assert any("): 13, " in ln and "Graphics SM Warp Exception on (GPC 0, TPC 0, SM 0)" in ln
               for ln in rep.kernel_log), rep.kernel_log
    assert not any("): 31, " in ln for ln in rep.kernel_log)
    assert len(rep.wave_errors) == 1 and rep.wave_errors[0].offset is not None
    no_unknowns(rep)


def test_endless_loop_report(dev, monkeypatch):
    monkeypatch.setattr(D, "WAIT_S", 1.0)
    rep, msg, _ = D.provoke_endless_loop(dev)
    assert rep is not None, msg
    assert rep.headline.startswith(f"Kernel spin_forever was still running when signal {rep.signal_va:#x} did not "
                                   f"reach 1 (it holds 0)")
    assert rep.kernel_log == []            # nothing went wrong yet, so RM printed nothing
    no_unknowns(rep)


def test_unset_signal_report(dev, monkeypatch):
    monkeypatch.setattr(D, "WAIT_S", 1.0)
    rep, msg, exp = D.provoke_unset_signal(dev)
    assert rep is not None, msg
    assert rep.headline.startswith("The compute GPFIFO is stopped at a semaphore acquire: it waits for semaphore "
                                   f"{exp['signal']:#x} (payload 1, memory holds 0)")
    no_unknowns(rep)


def test_kernel_log_unreadable_is_said(dev):
    dev.kernel.kmsg.errno = errno.EPERM
    rep, _, _ = D.provoke_oob_store(dev)
    assert rep.kernel_log == [] and "EPERM" in rep.kernel_log_error and "/dev/kmsg" in rep.kernel_log_error
    assert "kernel log:\n    the kernel log is unreadable" in rep.to_text()


def test_register_ops_for_a_non_administrator(dev):
    """RM's gpuValidateRegOffset: a non-administrator reads only what the user access map allows
    (the mock's: the usermode timer); the rest comes back INVALID_OFFSET, listed with the status."""
    dev.kernel.nvidia.gpu.regs.administrator = False
    rep = dev.diagnose()
    refused = {r.name: r.status for r in rep.refused_registers}
    assert refused == {"NV_PMC_BOOT_0": "INVALID_OFFSET", "NV_PMC_BOOT_42": "INVALID_OFFSET",
                       "NV_RUNLIST_PREEMPT": "INVALID_OFFSET"}
    assert {"NV_VIRTUAL_FUNCTION_TIME_0", "NV_VIRTUAL_FUNCTION_TIME_1"} <= set(regs(rep))
    assert "NV_PMC_BOOT_0 @ 0x0: INVALID_OFFSET" in rep.to_text()


def test_register_ops_rules(dev):
    ok, bad = nv.NV2080_CTRL_GPU_REG_OP_STATUS_SUCCESS, nv.NV2080_CTRL_GPU_REG_OP_STATUS_INVALID_OFFSET
    g = nv.NV2080_CTRL_GPU_REG_OP_TYPE_GLOBAL
    dev.kernel.nvidia.gpu.regs.administrator = True
    ops = [("boot", R.NV_PMC_BOOT_0, g), ("past BAR0", 16 << 20, g),
           ("gr ctx", R.NV_PMC_BOOT_0, nv.NV2080_CTRL_GPU_REG_OP_TYPE_GR_CTX)]
    for via in ("debugger", "subdevice"):
        res = regdump.exec_reg_ops(dev, ops, via)
        assert [st for _, st, _ in res] == [ok, bad, nv.NV2080_CTRL_GPU_REG_OP_STATUS_INVALID_TYPE]
        assert R.NV_PMC_BOOT_0_ARCHITECTURE_0.decode(res[0][2]) == R.NV_PMC_BOOT_0_ARCHITECTURE_GH100
    # a transactional request with a refused op fails as a whole (gpuValidateRegOps)
    p = dev.nv.ffi.new("NV83DE_CTRL_DEBUG_EXEC_REG_OPS_PARAMS *")
    p.regOpCount, p.bNonTransactional = 1, 0
    p.regOps[0].regOp, p.regOps[0].regType, p.regOps[0].regOffset = nv.NV2080_CTRL_GPU_REG_OP_READ_32, g, 16 << 20
    with pytest.raises(HwdrvError, match="NV_ERR_INVALID_ARGUMENT"):
        dev.rm.control(dev.debugger(), nv.NV83DE_CTRL_CMD_DEBUG_EXEC_REG_OPS, p, "EXEC_REG_OPS")
    # the NV2080 form needs ops
    q = dev.nv.ffi.new("NV2080_CTRL_GPU_EXEC_REG_OPS_PARAMS *")
    with pytest.raises(HwdrvError, match="NV_ERR_INVALID_PARAM_STRUCT"):
        dev.rm.control(dev.h_subdevice, nv.NV2080_CTRL_CMD_GPU_EXEC_REG_OPS, q, "EXEC_REG_OPS")


def test_runlist_register_block(dev):
    base, rl = regdump.runlist_pri_base(dev, nv.NV2080_ENGINE_TYPE_GRAPHICS)
    assert base is not None and rl is not None and base % 4 == 0
    with pytest.raises(HwdrvError, match="NV_ERR_INVALID_ARGUMENT"):
        regdump.runlist_pri_base(dev, nv.NV2080_ENGINE_TYPE_COPY(0))
