"""AMD hang reports on mock:amd: each provocation reported with the ring decoded around the read
pointer, the in-flight dispatch, the KFD memory-exception data and the wave state read through
KFD's debugger interface (AMDKFD_IOC_DBG_TRAP) — then a correct vecadd. The faulting instruction's
description is checked against the mock RDNA3 decoder (itself checked against llvm-mc), and the
DBG_TRAP rules against kfd_chardev.c / kfd_debug.c."""
from __future__ import annotations

import errno
import os
import re

import pytest

import hwdrv
from hwdrv import provoke as D
from hwdrv.amd import diagnose as DG
from hwdrv.amd.gen import gc11 as G
from hwdrv.amd.gen import kfd as K
from hwdrv.errors import IoctlError
from hwdrv.hang import HangReport
from hwdrv.mock.amd.rdna3.decode import decode, disasm


@pytest.fixture
def dev():
    d = hwdrv.open_device("mock:amd")
    yield d
    d.close()


def _compute(rep):
    return next(q for q in rep.queues if q.name.startswith("compute"))


def _stalled(rep):
    return next(c for c in _compute(rep).commands if c.stalled)


def _mock_disasm(dev, wave) -> str:
    """The instruction at the wave's kernel+offset as the mock's LLVM-checked decoder prints it
    (the sample is loaded again: the provocation's program object is gone)."""
    key = next(k for k, (_, name) in dev.samples.items() if name == wave.kernel)
    prog = D.sample(dev, key)
    code = prog.code_object.relocated(prog.image.va)
    at = prog.code_va - prog.image.va + wave.offset
    return disasm(decode([int.from_bytes(code[at + 4 * i:at + 4 * i + 4], "little") for i in range(3)]))


def test_out_of_bounds_store(dev):
    rep, msg, exp = D.provoke_oob_store(dev)
    assert rep is not None and rep.cause == "mmu_fault", msg
    assert [f.address for f in rep.faults] == [exp["address"]]
    assert rep.faults[0].access.startswith("write") and "no page present" in rep.faults[0].access
    assert "EC_DEVICE_MEMORY_VIOLATION" in rep.faults[0].source
    [w] = rep.wave_errors
    assert w.kernel == "oob_store" and 0 <= w.offset < 0x100 and "QUEUE_WAVE_MEMORY_VIOLATION" in w.error
    assert w.source_line.startswith("global_store_b32") and _mock_disasm(dev, w).startswith("global_store_b32")
    assert G.SQ_WAVE_STATUS__HALT.decode(w.status["SQ_WAVE_STATUS"]) == 1
    assert w.status["SQ_WAVE_TRAPSTS"] & K.KFD_DBG_TRAP_MASK_DBG_MEMORY_VIOLATION
    assert w.status["SQ_WAVE_EXEC_LO"] == 0xFFFFFFFF                   # 32 work-items, one wave32
    st = _stalled(rep)
    assert st.text.startswith("DISPATCH_DIRECT DIM_X=1 DIM_Y=1 DIM_Z=1") and st.offset == _compute(rep).get
    assert [ln.kernel for ln in rep.launches] == ["oob_store"] and rep.launches[0].args[1] == "0xdead"
    assert D.vecadd_check(dev)


def test_s_trap(dev):
    rep, msg, _ = D.provoke_illegal_instruction(dev)
    assert rep is not None and rep.cause == "exception", msg
    [w] = rep.wave_errors
    assert w.kernel == "illegal_trap" and "QUEUE_WAVE_TRAP" in w.error
    assert w.source_line.startswith("s_trap") and _mock_disasm(dev, w).startswith("s_trap")
    assert G.SQ_WAVE_STATUS__HALT.decode(w.status["SQ_WAVE_STATUS"]) == 1
    assert _stalled(rep).text.startswith("DISPATCH_DIRECT")
    assert any("raised QUEUE_WAVE_TRAP" in n for n in rep.notes)
    assert D.vecadd_check(dev)


def test_endless_loop(dev, monkeypatch):
    monkeypatch.setattr(D, "WAIT_S", 1.0)
    rep, msg, _ = D.provoke_endless_loop(dev)
    assert rep is not None and rep.cause == "timeout", msg
    [w] = rep.wave_errors
    assert w.kernel == "spin_forever" and "running" in w.error and w.offset is not None
    assert G.SQ_WAVE_STATUS__HALT.decode(w.status["SQ_WAVE_STATUS"]) == 0 and w.status["SQ_WAVE_TRAPSTS"] == 0
    # the wave stops wherever the loop is; LLVM (and the mock) name the encoding (_e32/_e64), the describer not
    assert re.sub(r"_(e32|e64|dpp)$", "", _mock_disasm(dev, w).split()[0]) == w.source_line.split()[0]
    assert _stalled(rep).text.startswith("DISPATCH_DIRECT")
    assert D.vecadd_check(dev)


def test_wait_on_unset_signal(dev, monkeypatch):
    monkeypatch.setattr(D, "WAIT_S", 0.5)
    rep, msg, exp = D.provoke_unset_signal(dev)
    assert rep is not None and rep.cause == "timeout", msg
    st = _stalled(rep)
    assert st.text.startswith("WAIT_REG_MEM FUNCTION=5 MEM_SPACE=1")
    assert f"address={exp['signal']:#x}" in st.text and st.text.endswith(f"the word at {exp['signal']:#x} is now 0x0")
    assert rep.wave_errors == [] and any("no wave to save" in n for n in rep.notes)
    assert HangReport.from_json(rep.to_json()) == rep
    assert D.vecadd_check(dev)


def test_suspend_resume_keeps_a_waiting_queue_going(dev):
    """A report requested while the queue waits: SUSPEND/RESUME leave it waiting, then it finishes."""
    never, done = dev.signal(0), dev.signal(0)
    dev.compute_queue().wait(never, 1).signal(done, 7).submit()
    rep = dev.diagnose()
    assert _stalled(rep).text.startswith("WAIT_REG_MEM")
    never.value = 1
    done.wait(7, timeout=10)


def _dbg(dev, op, **sub):
    a = K.ffi.new("struct kfd_ioctl_dbg_trap_args *")
    a.pid, a.op = sub.pop("pid", os.getpid()), op
    for part, fields in sub.items():
        for k, v in fields.items():
            setattr(getattr(a, part), k, v)
    return dev.kfd.call("DBG_TRAP", a)


def test_dbg_trap_rules(dev):
    with pytest.raises(IoctlError) as e:
        _dbg(dev, K.KFD_IOC_DBG_TRAP_GET_QUEUE_SNAPSHOT)                 # not enabled yet
    assert e.value.errno == errno.EINVAL
    with pytest.raises(IoctlError) as e:
        _dbg(dev, K.KFD_IOC_DBG_TRAP_ENABLE, pid=os.getpid() + 100000)   # no such KFD process
    assert e.value.errno == errno.ESRCH
    dev.debugger.enable()
    with pytest.raises(IoctlError) as e:
        _dbg(dev, K.KFD_IOC_DBG_TRAP_ENABLE)
    assert e.value.errno == errno.EALREADY
    assert dev.debugger.memory_violation(dev.gpu_id) is None                # ENODATA: none raised
    snap = dev.debugger.queue_snapshot()
    rings = {e.queue_id: (e.ring_base_address, e.ring_size) for e in snap}
    qid = dev._hw_queues["compute"]
    assert rings[qid] == (dev.rings["compute"].ring_va, dev.rings["compute"].size)
    assert dev.debugger.suspend([qid, 999]) == [999 | K.KFD_DBG_QUEUE_INVALID_MASK]
    assert dev.debugger.suspend([qid]) == [qid | K.KFD_DBG_QUEUE_ERROR_MASK]   # already suspended
    assert DG.read_save_area(dev._qbufs["compute"]["cwsr"].va, dev.node.queue_sizes().cwsr_size).waves == []
    assert dev.debugger.resume([qid]) == []
    assert D.vecadd_check(dev)


def test_debugger_needs_runtime_enable():
    from hwdrv.mock.amd import make_kernel
    from hwdrv.amd.device import AMDDevice
    d = AMDDevice(make_kernel(), 0, "mock:amd")
    try:
        d.kfd.call("RUNTIME_ENABLE", mode_mask=0)             # runtime off again
        d.debugger.enable()
        with pytest.raises(IoctlError) as e:
            d.debugger.suspend([d._hw_queues["compute"]])
        assert e.value.errno == errno.EPERM
    finally:
        d.close()


def test_diagnose_cli_reports_all_four(capsys, monkeypatch):
    monkeypatch.setattr(D, "WAIT_S", 1.0)
    assert D.run_diagnose("mock:amd", False) == 0
    out = capsys.readouterr().out
    assert out.count("next vecadd: correct") == 4
    for needle in ("in oob_store+0x", "(global_store_b32", "in illegal_trap+0x", "(s_trap", "in spin_forever+0x",
                   ">> 0x", "WAIT_REG_MEM FUNCTION=5"):
        assert needle in out, needle


def test_a_saved_ring_dump_decodes_like_the_report(dev, tmp_path):
    """dump_ring -> file -> `hwdrv decode --vendor amd` lists the packets the report shows."""
    from hwdrv.amd.pm4decode import decode_dump
    D.vecadd_check(dev)
    data = DG.dump_ring(dev)
    assert len(data) == 4 * dev.rings["compute"].wptr
    lines = decode_dump(data, "ring.bin")
    assert any("DISPATCH_DIRECT" in ln for ln in lines) and any("SET_SH_REG COMPUTE_PGM_LO=" in ln for ln in lines)
    rep = dev.diagnose()
    shown = {c.text for c in _compute(rep).commands}
    assert shown and shown <= {ln.split("  ", 1)[1] for ln in lines[1:]}
