"""Adreno hang reports on mock:qcom, crashdec-style (issue 16): each provocation of ``python -m hwdrv
diagnose`` gives a report built from the kgsl snapshot the mock wrote, with the stalled packet, the
in-flight dispatch and its shader with the fault PC marked, the faulting IOVA and access from kgsl's
fault info, and the registers by field; the device then runs a correct kernel.

What the reports are checked against comes from outside the report code: the addresses the
provocations used, the mock GPU's own record of each fault (the ir3 emulator names the instruction
it stopped at), the samples' assembly source (the index of each instruction), and kgsl.c's rules for
GET_FAULT_REPORT.
"""
from __future__ import annotations

import errno
import json
import re
import subprocess
import sys

import pytest

import hwdrv
from hwdrv import provoke
from hwdrv.errors import IoctlError
from hwdrv.ioctl.errnos import syscall_error
from hwdrv.qcom import device as qdev
from hwdrv.qcom import samples
from hwdrv.qcom.gen import kgsl as K


def _index_of(source: str, starts: str) -> int:
    """The instruction index of the first line of a sample's assembly starting with ``starts``."""
    body = [ln.strip() for ln in source.strip().splitlines() if ln.strip() and not ln.strip().startswith(".")]
    return next(i for i, ln in enumerate(body) if ln.startswith(starts))


def _emulator_pc(fault) -> int:
    """The instruction the mock's ir3 emulator stopped at, from its fault message."""
    return int(re.search(r"at instruction (\d+)", str(fault)).group(1))


def _stalled(report, queue_prefix: str):
    q = next(q for q in report.queues if q.name.startswith(queue_prefix))
    return next(c for c in q.commands if c.stalled)


def _reg(report, name: str):
    return next(r for r in report.registers if r.name == name)


@pytest.fixture(scope="module")
def provoked():
    """Each provocation in diagnose's order, on one device: (report, message, info, the mock's fault
    record, whether a vecadd afterwards was correct). The mock GPU runs on its own thread, as a real
    one runs beside the host (HWDRV_MOCK_SYNC=1 would run the endless loop inside its submit)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HWDRV_MOCK_SYNC", "0")
        d = hwdrv.open_device("mock:qcom")
    out = {}
    try:
        for kind, fn in provoke.PROVOCATIONS.items():
            before = len(d.kernel.qcom.faults)
            rep, msg, info = fn(d)
            mine = d.kernel.qcom.faults[before:]
            out[kind] = (rep, msg, info, mine, provoke.vecadd_check(d))
        out["recoveries"] = list(d.recoveries)
    finally:
        d.close()
    return out


def test_out_of_bounds_store(provoked):
    rep, msg, info, mock_faults, after_ok = provoked["out-of-bounds store"]
    assert after_ok and rep is not None and "error" in msg
    assert rep.cause == "mmu_fault" and rep.error.name == "GUILTY_CONTEXT_RESET"
    # the IOVA and access from kgsl's fault info, matched against the snapshot's buffer list
    f = rep.faults[0]
    assert (f.address, f.access, f.kind) == (info["address"], "write", "TRANSLATION")
    assert f.source.startswith("kgsl GET_FAULT_REPORT") and "past its end" in f.source
    assert mock_faults[0].kind == "pagefault" and mock_faults[0].address == info["address"]
    # the stalled packets: the ring's CP_INDIRECT_BUFFER into the IB, the IB's dispatch
    assert _stalled(rep, "ringbuffer").text.startswith("CP_INDIRECT_BUFFER")
    assert _stalled(rep, "IB1").text.startswith("CP_EXEC_CS")
    # the in-flight dispatch and its shader, the fault PC marked at the emulator's instruction
    (launch,) = rep.launches
    assert launch.kernel == "oob_store" and launch.grid == (1, 1, 1) and launch.block == (32, 1, 1)
    # its arguments, read from the constants the IB loaded: the store's address is the faulting one
    assert launch.args == [f"addr={info['address']:#x}", "value=0xdead"]
    assert _reg(rep, "SP_CS_OBJ_START").value == launch.program_address
    (w,) = rep.wave_errors
    pc = _index_of(samples.OOB_STORE, "stg")
    assert w.pc == pc == _emulator_pc(mock_faults[0]) and w.source_line.startswith("stg.u32 g[r1.x]")
    assert w.address == info["address"] and w.offset == 8 * pc
    assert any(n.startswith(f">> {pc:04d} ") and "stg.u32" in n for n in rep.notes)
    # kgsl's log lines, and the headline from the evidence
    assert any(f"GPU PAGE FAULT: addr = {info['address']:X}" in ln for ln in rep.kernel_log)
    assert any("(write translation fault)" in ln for ln in rep.kernel_log)
    assert f"{info['address']:#x}" in rep.headline and "oob_store" in rep.headline and "pc 4" in rep.headline


def test_illegal_instruction(provoked):
    rep, msg, info, mock_faults, after_ok = provoked["illegal instruction"]
    assert after_ok and rep is not None
    assert rep.cause == "exception" and not rep.faults
    assert _stalled(rep, "IB1").text.startswith("CP_EXEC_CS")
    assert [ln.kernel for ln in rep.launches] == ["illegal_instruction"]
    (w,) = rep.wave_errors
    pc = _index_of(samples.ILLEGAL, "raw 0xFFFFFFFFFFFFFFFF")
    assert mock_faults[0].kind == "shader" and w.pc == pc == _emulator_pc(mock_faults[0])
    assert w.source_line == "raw 0xFFFFFFFFFFFFFFFF" and "illegal instruction" in w.error
    # nothing latched in the CP: the flag registers list no set bit
    assert _reg(rep, "CP_INTERRUPT_STATUS").fields == {} and _reg(rep, "RBBM_INT_0_STATUS").fields == {}
    assert "illegal_instruction" in rep.headline and f"pc {pc}" in rep.headline


def test_endless_loop(provoked):
    rep, msg, info, mock_faults, after_ok = provoked["endless loop"]
    assert after_ok and rep is not None and "timed out" in msg
    # the wait timed out before anything faulted: no snapshot, the IB as submitted, the one loop marked
    assert rep.cause == "timeout" and rep.error is None and not mock_faults
    assert any(n.startswith("no kgsl snapshot:") for n in rep.notes)
    (q,) = rep.queues
    assert "as submitted" in q.name and not any(c.stalled for c in q.commands)
    assert any(c.text.startswith("CP_EXEC_CS") for c in q.commands)
    (launch,) = rep.launches
    assert launch.kernel == "endless_loop" and len(launch.args) == 1 and re.fullmatch(r"flag=0x[0-9a-f]{6,}",
                                                                                      launch.args[0])
    (w,) = rep.wave_errors
    assert w.pc == _index_of(samples.ENDLESS, "br p0.x, #-3") and w.source_line == "br p0.x, #-3"
    assert "did not finish" in rep.headline


def test_wait_on_a_signal_nobody_sets(provoked):
    rep, msg, info, mock_faults, after_ok = provoked["wait on a signal nobody sets"]
    assert after_ok and rep is not None
    assert mock_faults[-1].kind == "hang"
    assert rep.cause == "timeout" and "RBBM_HANG_DETECT" in _reg(rep, "RBBM_INT_0_STATUS").fields
    stalled = _stalled(rep, "IB1").text
    assert stalled.startswith("CP_WAIT_REG_MEM") and f"POLL_ADDR={info['signal']:#x}" in stalled
    assert "POLL=POLL_MEMORY" in stalled and "FUNCTION=WRITE_GE" in stalled
    assert not rep.launches and not rep.faults        # the CP's wait, nothing of a shader
    assert f"waiting on memory at {info['signal']:#x}" in rep.headline
    # this report read its own snapshot: the endless loop's (taken when the mock's watchdog ended
    # the abandoned kernel) was read and set aside first, so it could not take this fault's place
    assert any(n.startswith("abandoned kgsl context") and "set aside" in n for n in rep.notes)
    assert any("current context" in n for n in rep.notes)


def test_recovery_after_each(provoked):
    assert all(provoked[k][4] for k in provoke.PROVOCATIONS)
    assert len(provoked["recoveries"]) == 4


def test_report_json_round_trip(provoked):
    from hwdrv.hang import HangReport
    rep = provoked["out-of-bounds store"][0]
    back = HangReport.from_json(rep.to_json())
    assert back.to_text() == rep.to_text()


def test_unreadable_snapshot_is_reported_with_the_reason():
    """As on a device where the snapshot file is root-only: the report says why, and still names
    the fault (kgsl's fault info) and the launch."""
    d = hwdrv.open_device("mock:qcom")
    try:
        def refuse():
            raise syscall_error(f"read({qdev.SNAPSHOT_DUMP!r})", errno.EACCES, qdev.SNAPSHOT_DUMP)
        d.kernel.add_file(qdev.SNAPSHOT_DUMP, refuse)
        rep, _, info = provoke.provoke_oob_store(d)
        assert any("snapshot is unreadable" in n and "EACCES" in n and "hwdrv decode" in n for n in rep.notes)
        assert rep.faults[0].address == info["address"] and rep.faults[0].access == "write"
        assert [ln.kernel for ln in rep.launches] == ["oob_store"]
        assert any(q.name.startswith("IB of kgsl context") for q in rep.queues)
        assert rep.cause == "mmu_fault"
    finally:
        d.close()


def test_snapshot_from_devcoredump():
    """kgsl built with CONFIG_QCOM_KGSL_DEVCOREDUMP: the sysfs dump file gone, the snapshot is read
    from /sys/class/devcoredump/devcd<N>/data (recognised by its magic)."""
    d = hwdrv.open_device("mock:qcom")
    try:
        k = d.kernel
        k.add_file("/sys/class/devcoredump/devcd1/data", b"not a kgsl snapshot")      # another driver's dump
        k.add_file("/sys/class/devcoredump/devcd2/data", k.qcom._read_snapshot)
        k.remove_file(qdev.SNAPSHOT_DUMP)
        rep, _, info = provoke.provoke_oob_store(d)
        assert any(n == f"kgsl snapshot: {n.split()[2]} bytes from /sys/class/devcoredump/devcd2/data"
                   for n in rep.notes), rep.notes
        assert _stalled(rep, "IB1").text.startswith("CP_EXEC_CS") and rep.faults[0].address == info["address"]
    finally:
        d.close()


def test_page_faults_from_the_kernel_log_without_get_fault_report():
    """An older kgsl (no GET_FAULT_REPORT, FAULT_INFO dropped): the fault comes from kgsl's log lines."""
    d = hwdrv.open_device("mock:qcom")
    try:
        d.kgsl.fault_report = lambda ctx: (_ for _ in ()).throw(
            IoctlError("GET_FAULT_REPORT", errno.ENOTTY, "no such ioctl"))
        rep, _, info = provoke.provoke_oob_store(d)
        f = rep.faults[0]
        assert f.address == info["address"] and f.access == "write" and f.source.startswith("kgsl dmesg")
        assert any("GET_FAULT_REPORT gave nothing" in n for n in rep.notes)
    finally:
        d.close()


def test_get_fault_report_follows_kgsl_rules():
    """kgsl.c kgsl_ioctl_get_fault_report: EINVAL before the context is invalidated; no list -> the
    number of fault types; zeroed entries -> type and count; pointers -> the records."""
    d = hwdrv.open_device("mock:qcom")
    try:
        with pytest.raises(IoctlError) as e:
            d.kgsl.fault_report(d.ctx)
        assert e.value.errno == errno.EINVAL
        _, _, info = provoke.provoke_oob_store(d)
        rec = d._fault
        assert rec is not None and len(rec.page_faults) == 1
        raw = d.kgsl.fault_report(rec.ctx)
        r = K.ffi.from_buffer("struct kgsl_pagefault_report *", bytearray(raw))
        assert int(r.fault_addr) == info["address"]
        assert int(r.fault_type) == K.KGSL_PAGEFAULT_TYPE_TRANSLATION | K.KGSL_PAGEFAULT_TYPE_WRITE
    finally:
        d.close()


def test_cli_diagnose_on_mock_qcom():
    r = subprocess.run([sys.executable, "-m", "hwdrv", "diagnose", "--device", "mock:qcom", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert [o["kind"] for o in doc] == list(provoke.PROVOCATIONS) and all(o["after_ok"] for o in doc)
    oob = doc[0]["report"]
    assert oob["faults"][0]["access"] == "write" and oob["wave_errors"][0]["source_line"].startswith("stg")
    assert any(c["stalled"] and c["text"].startswith("CP_WAIT_REG_MEM")
               for q in doc[3]["report"]["queues"] for c in q["commands"])
