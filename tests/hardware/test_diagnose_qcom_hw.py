"""Fault diagnosis on a real Adreno through kgsl (qcom:0): `pytest -m hardware
tests/hardware/test_diagnose_qcom_hw.py`; skips cleanly where /dev/kgsl-3d0 does not exist.

What kgsl reports is recorded, not assumed beyond kgsl's documented behaviour: with
NO_FAULT_TOLERANCE a page fault or an illegal instruction invalidates the context (reset status
GUILTY), and the next vecadd (on a new context) must be correct. An endless shader is exempt from
kgsl's long-IB timeout under NO_FAULT_TOLERANCE, so only its timeout report is checked. The
out-of-bounds store's report must hold crashdec's analysis of kgsl's snapshot, or say why it could
not (reading the snapshot file usually needs root)."""
import os

import pytest

from hwdrv import provoke as D

KGSL = "/dev/kgsl-3d0"


@pytest.fixture(scope="module")
def dev():
    import hwdrv
    if not os.path.exists(KGSL):
        pytest.skip(f"no Adreno GPU on this machine ({KGSL} missing)")
    d = hwdrv.open_device(os.environ.get("HWDRV_TEST_QCOM_DEVICE", "qcom:0"))
    yield d
    d.close()


@pytest.mark.parametrize("provoke,kernel", [(D.provoke_oob_store, "oob_store"),
                                            (D.provoke_illegal_instruction, "illegal_instruction")])
def test_faults_are_reported_as_kgsl_faults_and_the_device_recovers(dev, provoke, kernel):
    rep, msg, _ = provoke(dev)
    assert rep is not None, msg
    print(rep.to_text())
    assert rep.error is not None and rep.error.kind == "kgsl fault", rep.summary()
    assert [ln.kernel for ln in rep.launches] == [kernel], rep.summary()
    assert D.vecadd_check(dev)


def test_endless_loop_times_out_with_the_kernel_named(dev):
    rep, msg, _ = D.provoke_endless_loop(dev)
    assert rep is not None, msg
    print(rep.to_text())
    assert "endless_loop" in [ln.kernel for ln in rep.launches], rep.summary()


def test_oob_store_report_is_crashdecs_or_says_why(dev):
    """The report holds crashdec's analysis of kgsl's snapshot (stalled packets, the dispatch's
    registers) when the snapshot could be read, else a note saying why; the faulting address comes
    from GET_FAULT_REPORT or kgsl's log lines, else the report says what it could not read."""
    rep, msg, info = D.provoke_oob_store(dev)
    assert rep is not None, msg
    print(rep.to_text())
    if any(n.startswith("kgsl snapshot:") for n in rep.notes):
        assert any(c.stalled for q in rep.queues for c in q.commands), rep.summary()
        assert any(r.name == "SP_CS_OBJ_START" for r in rep.registers), rep.summary()
    else:
        assert any(n.startswith("no kgsl snapshot:") or "set aside" in n or "could not be read" in n
                   for n in rep.notes), rep.notes
    if rep.faults:
        assert rep.faults[0].address >> 12 == info["address"] >> 12 and rep.faults[0].access == "write"
    else:
        assert rep.kernel_log_error or any("GET_FAULT_REPORT" in n for n in rep.notes), rep.notes
    assert D.vecadd_check(dev)
