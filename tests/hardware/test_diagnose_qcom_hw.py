"""Fault diagnosis on a real Adreno through kgsl (qcom:0): `pytest -m hardware
tests/hardware/test_diagnose_qcom_hw.py`; skips cleanly where /dev/kgsl-3d0 does not exist.

What kgsl reports is recorded, not assumed beyond kgsl's documented behaviour: with
NO_FAULT_TOLERANCE a page fault or an illegal instruction invalidates the context (reset status
GUILTY), and the next vecadd (on a new context) must be correct. An endless shader is exempt from
kgsl's long-IB timeout under NO_FAULT_TOLERANCE, so only its timeout report is checked."""
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
