"""Hang and fault diagnosis on a real NVIDIA GPU (`pytest -m hardware tests/hardware`): the four
fault kinds, each report naming the kernel, the address or PC and the stalled method, each
followed by a vecadd that must be correct; each report leads with its one-sentence headline,
carries the kernel log (or says why it cannot), the decoded register dump (or the status RM
refused each register with), and prints no unknown field.

Which Xid the GPU gives is recorded in the report, not assumed: an out-of-bounds store may
surface as an MMU fault (Xid 31) or as an SM exception with MMU_NACK (Xid 13); `trap;` as a GR
exception (Xid 13) or a channel stop (Xid 43)."""
import re
import shutil
import time

from hwdrv import provoke as D
from hwdrv.hang import HangReport
from hwdrv.nvidia import regdump
from hwdrv.nvidia.gen import gh100_regs as R


def check_common(rep, dev, xids=()):
    """What every report must hold, on whatever machine: see the module doc."""
    text = rep.to_text()
    print(text)
    assert rep.headline and text.splitlines()[1] == "  " + rep.headline, text
    assert not re.search(r"\bNone\b|=\?|\s\?\s", text), text
    assert HangReport.from_json(rep.to_json()) == rep
    # the kernel log: NVRM's Xid line for this GPU, or the reason the log cannot be read, or the
    # note that the driver's lines never reach this kernel's log (a sandboxed kernel)
    tag = dev.kmsg.tag
    if rep.kernel_log_error:
        assert "/dev/kmsg" in rep.kernel_log_error and re.search(r"E[A-Z]+", rep.kernel_log_error), rep.kernel_log_error
    elif any("no NVRM line at all" in n for n in rep.notes):
        assert not any("NVRM:" in ln for ln in rep.kernel_log)
    elif xids:
        assert any(f"NVRM: Xid ({tag}): {x}," in ln for ln in rep.kernel_log for x in xids), rep.kernel_log
    # registers: each one read and decoded by its header fields, or refused with RM's status
    read = {r.name: r for r in rep.registers}
    refused = {r.name: r.status for r in rep.refused_registers}
    whole = [n for n in rep.notes if "EXEC_REG_OPS refused" in n]
    if len(whole) < 2:
        for spec in regdump.registers(0):
            if spec.name == "NV_RUNLIST_PREEMPT" and any("RUNLIST_PRI_BASE" in n for n in rep.notes):
                continue
            assert spec.name in read or spec.name in refused, (spec.name, text)
            if spec.name in read:
                assert set(read[spec.name].fields) == set(spec.fields)
        if "NV_PMC_BOOT_0" in read:
            assert read["NV_PMC_BOOT_0"].fields["ARCHITECTURE_0"] == f"GH100 ({R.NV_PMC_BOOT_0_ARCHITECTURE_GH100})"
        assert all(re.fullmatch(r"[A-Z_]+|0x[0-9a-f]+", st) for st in refused.values()), refused


def stalled(report):
    q = next(q for q in report.queues if q.name == "compute GPFIFO")
    marked = [c for c in q.commands if c.stalled]
    assert len(marked) == 1, report.to_text()
    return marked[0].text


def test_out_of_bounds_store(dev):
    t = time.perf_counter()
    rep, msg, exp = D.provoke_oob_store(dev)
    took = time.perf_counter() - t
    assert rep is not None, msg
    assert took < D.WAIT_S, f"the fault was not detected from the notifier ({took:.2f} s)"
    assert rep.cause in ("mmu_fault", "exception") and rep.error.code in (31, 13), rep.summary()
    addrs = {f.address for f in rep.faults} | {w.address for w in rep.wave_errors}
    assert exp["address"] in addrs or any(a is not None and a >> 12 == exp["address"] >> 12 for a in addrs), rep.summary()
    assert [ln.kernel for ln in rep.launches] == ["oob_store"]
    assert all(w.kernel == "oob_store" for w in rep.wave_errors)
    assert "COMPUTE.SEND_PCAS_A" in stalled(rep)
    check_common(rep, dev, xids=(31, 13))
    assert rep.headline.startswith("Kernel oob_store ") and (hex(exp["address"]) in rep.headline
                                                            or "oob_store+0x" in rep.headline), rep.headline
    located = [w for w in rep.wave_errors if w.offset is not None]
    if located and shutil.which("nvdisasm"):
        # the SASS instruction at the faulting PC, as nvdisasm reads the kernel's code: a store
        assert any(w.source_line.startswith("SASS oob_store+0x") and "ST" in w.source_line for w in located), \
            rep.to_text()
    assert D.vecadd_check(dev)


def test_illegal_instruction(dev):
    rep, msg, _ = D.provoke_illegal_instruction(dev)
    assert rep is not None, msg
    assert rep.cause in ("exception", "channel_error") and rep.error.code in (13, 43), rep.summary()
    assert [ln.kernel for ln in rep.launches] == ["illegal_trap"]
    assert rep.wave_errors, rep.to_text()
    w = rep.wave_errors[0]
    assert w.kernel == "illegal_trap" and w.offset is not None, rep.to_text()
    assert "COMPUTE.SEND_PCAS_A" in stalled(rep)
    check_common(rep, dev, xids=(13, 43))
    assert rep.headline.startswith("Kernel illegal_trap stopped at "), rep.headline
    assert len({(w.kernel, w.offset) for w in rep.wave_errors}) == len(rep.wave_errors), "unmerged records"
    assert D.vecadd_check(dev)


def test_endless_loop(dev):
    rep, msg, _ = D.provoke_endless_loop(dev)
    assert rep is not None and rep.cause == "timeout", msg
    assert [ln.kernel for ln in rep.launches] == ["spin_forever"]
    assert "COMPUTE.SEND_PCAS_A" in stalled(rep)
    check_common(rep, dev)
    assert rep.headline.startswith("Kernel spin_forever was still running"), rep.headline
    assert D.vecadd_check(dev)


def test_wait_on_unset_signal(dev):
    rep, msg, exp = D.provoke_unset_signal(dev)
    assert rep is not None and rep.cause == "timeout", msg
    text = stalled(rep)
    assert "HOST.SEM_EXECUTE" in text and "ACQ_CIRC_GEQ" in text
    assert any(hex(exp["signal"]) in n for n in rep.notes)
    check_common(rep, dev)
    assert rep.headline.startswith("The compute GPFIFO is stopped at a semaphore acquire"), rep.headline
    assert D.vecadd_check(dev)
