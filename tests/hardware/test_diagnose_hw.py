"""Hang and fault diagnosis on a real NVIDIA GPU (`pytest -m hardware tests/hardware`): the four
fault kinds, each report naming the kernel, the address or PC and the stalled method, each
followed by a vecadd that must be correct.

Which Xid the GPU gives is recorded in the report, not assumed: an out-of-bounds store may
surface as an MMU fault (Xid 31) or as an SM exception with MMU_NACK (Xid 13); `trap;` as a GR
exception (Xid 13) or a channel stop (Xid 43)."""
import time


from hwdrv import diagnose as D


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
    print(rep.to_text())
    assert took < D.WAIT_S, f"the fault was not detected from the notifier ({took:.2f} s)"
    assert rep.cause in ("mmu_fault", "exception") and rep.xid in (31, 13), rep.summary()
    addrs = {f.address for f in rep.faults} | {w.address for w in rep.warp_errors}
    assert exp["address"] in addrs or any(a is not None and a >> 12 == exp["address"] >> 12 for a in addrs), rep.summary()
    assert [ln.kernel for ln in rep.launches] == ["oob_store"]
    assert all(w.kernel == "oob_store" for w in rep.warp_errors)
    assert "COMPUTE.SEND_PCAS_A" in stalled(rep)
    assert D.vecadd_check(dev)


def test_illegal_instruction(dev):
    rep, msg, _ = D.provoke_illegal_instruction(dev)
    assert rep is not None, msg
    print(rep.to_text())
    assert rep.cause in ("exception", "channel_error") and rep.xid in (13, 43), rep.summary()
    assert [ln.kernel for ln in rep.launches] == ["illegal_trap"]
    assert rep.warp_errors, rep.to_text()
    w = rep.warp_errors[0]
    assert w.kernel == "illegal_trap" and w.offset is not None, rep.to_text()
    assert "COMPUTE.SEND_PCAS_A" in stalled(rep)
    assert D.vecadd_check(dev)


def test_endless_loop(dev):
    rep, msg, _ = D.provoke_endless_loop(dev)
    assert rep is not None and rep.cause == "timeout", msg
    print(rep.to_text())
    assert [ln.kernel for ln in rep.launches] == ["spin_forever"]
    assert "COMPUTE.SEND_PCAS_A" in stalled(rep)
    assert D.vecadd_check(dev)


def test_wait_on_unset_signal(dev):
    rep, msg, exp = D.provoke_unset_signal(dev)
    assert rep is not None and rep.cause == "timeout", msg
    print(rep.to_text())
    text = stalled(rep)
    assert "HOST.SEM_EXECUTE" in text and "ACQ_STRICT_GEQ" in text
    assert any(hex(exp["signal"]) in n for n in rep.notes)
    assert D.vecadd_check(dev)
