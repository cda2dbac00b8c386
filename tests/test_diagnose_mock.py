"""Hang and fault diagnosis on the mock NVIDIA GPU: the four fault kinds, each followed by a
vecadd that must be correct; fast failure once the notifier is set; pending work fails cleanly."""
import time

import numpy as np
import pytest

import hwdrv
from hwdrv import provoke as D
from hwdrv.errors import GPUHang
from hwdrv.var import Var


@pytest.fixture
def dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


def stalled(report, queue="compute GPFIFO"):
    q = next(q for q in report.queues if q.name == queue)
    marked = [c for c in q.commands if c.stalled]
    assert len(marked) == 1, q.commands
    return marked[0].text


def test_out_of_bounds_store(dev):
    t = time.perf_counter()
    rep, msg, exp = D.provoke_oob_store(dev)
    assert time.perf_counter() - t < 2.0, "a reported fault must fail the wait within about a second"
    assert rep is not None, msg
    assert rep.cause == "mmu_fault" and rep.error.code == 31
    assert any(f.address == exp["address"] and f.access == "write" for f in rep.faults)
    assert [ln.kernel for ln in rep.launches] == ["oob_store"]
    assert rep.launches[0].args[0] == hex(exp["address"])
    w = rep.wave_errors[0]
    assert w.kernel == "oob_store" and w.pc is not None and w.address == exp["address"]
    assert "COMPUTE.SEND_PCAS_A" in stalled(rep)
    assert D.vecadd_check(dev)


def test_illegal_instruction(dev):
    rep, msg, _ = D.provoke_illegal_instruction(dev)
    assert rep is not None, msg
    assert rep.cause == "exception" and rep.error.code == 13
    w = rep.wave_errors[0]
    assert w.kernel == "illegal_trap" and w.pc is not None and w.status["HWW_WARP_ESR"]
    assert "COMPUTE.SEND_PCAS_A" in stalled(rep)
    assert D.vecadd_check(dev)


def test_endless_loop(dev, monkeypatch):
    monkeypatch.setattr(D, "WAIT_S", 1.0)
    rep, msg, _ = D.provoke_endless_loop(dev)
    assert rep is not None and rep.cause == "timeout", msg
    assert [ln.kernel for ln in rep.launches] == ["spin_forever"]
    assert "COMPUTE.SEND_PCAS_A" in stalled(rep)
    assert any("still running" in n for n in rep.notes)
    assert D.vecadd_check(dev)
    assert any("lost compute timeline" in r for r in dev.recoveries)


def test_wait_on_unset_signal(dev, monkeypatch):
    monkeypatch.setattr(D, "WAIT_S", 1.0)
    rep, msg, exp = D.provoke_unset_signal(dev)
    assert rep is not None and rep.cause == "timeout", msg
    assert rep.expected == 1 and rep.seen == 0
    text = stalled(rep)
    assert "HOST.SEM_EXECUTE" in text and "ACQ_STRICT_GEQ" in text
    assert any(hex(exp["signal"]) in n for n in rep.notes)
    assert D.vecadd_check(dev)


def test_pending_work_fails_cleanly_then_recovers(dev):
    """After a fault every wait fails at once (not at its timeout); the next submit recovers."""
    prog = D.sample(dev, "illegal_instruction")
    out = dev.alloc(4096, host_visible=True)
    s1, s2 = dev.signal(0), dev.signal(0)
    q1 = dev.compute_queue().exec(prog, grid=(1,), block=(32,), args=[out]).signal(s1, 1).submit()
    q2 = dev.compute_queue().signal(s2, 1).submit()
    with pytest.raises(GPUHang) as e:
        s1.wait(1, timeout=30)
    assert e.value.report.cause == "exception"
    t = time.perf_counter()
    with pytest.raises(GPUHang):
        q2.synchronize(timeout=30)
    assert time.perf_counter() - t < 2.0
    assert D.vecadd_check(dev)                     # recovers on its first submit
    assert dev.diagnose().error is None              # the new channels carry no error
    del q1


def test_bound_queue_resubmits_after_recovery(dev):
    prog = D.sample(dev, "oob_store")
    buf = dev.alloc(4096, host_visible=True)
    s = dev.signal(0)
    n = Var("n")
    q = dev.compute_queue().exec(prog, grid=(1,), block=(32,), args=[buf, 7]).signal(s, n).bind()
    q.submit(n=1)
    s.wait(1)
    rep, _, _ = D.provoke_oob_store(dev)
    assert rep is not None and rep.cause == "mmu_fault"
    q.submit(n=2)
    s.wait(2, timeout=30)
    assert buf.view(np.uint32)[0] == 7


def test_requested_report_and_explicit_recover(dev):
    rep = dev.diagnose()
    assert rep.cause == "requested" and rep.error is None and not rep.faults
    assert {q.name for q in rep.queues} == {"compute GPFIFO", "copy GPFIFO"}
    dev.recover()
    assert D.vecadd_check(dev)


def test_cli_diagnose_json(capsys, monkeypatch):
    import json
    monkeypatch.setattr(D, "WAIT_S", 1.0)
    assert D.run_diagnose("mock:nvidia", True) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [o["kind"] for o in doc] == list(D.PROVOCATIONS)
    assert all(o["after_ok"] and o["report"] for o in doc)
    from hwdrv.hang import HangReport
    HangReport.from_json(json.dumps(doc[0]["report"]))
