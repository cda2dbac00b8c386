"""AMD hang reports on a real gfx11 GPU: `pytest -m hardware tests/hardware/test_diagnose_amd_hw.py`
(device: HWDRV_TEST_AMD_DEVICE, default amd:0). Skips, saying why, without /dev/kfd. What to
verify on hardware (docs/amd-diagnosis.md, deviations): the CP read pointer stops at the packet the
report marks; KFD's DBG_TRAP works on the own process after RUNTIME_ENABLE; what the wave save
area holds (printed: the CWSR trap handler's layout is not parsed yet); as root, the §7.3 registers."""
import os

import pytest


@pytest.fixture(scope="module")
def dev():
    import hwdrv
    if not os.path.exists("/dev/kfd"):
        pytest.skip("no AMD GPU on this machine (/dev/kfd missing)")
    d = hwdrv.open_device(os.environ.get("HWDRV_TEST_AMD_DEVICE", "amd:0"))
    yield d
    d.close()


def _stalled(rep):
    q = next(q for q in rep.queues if q.name.startswith("compute"))
    return next((c for c in q.commands if c.stalled), None)


def test_debugger_interface_is_available(dev):
    assert dev.debugger is not None, "KFD refused RUNTIME_ENABLE"
    dev.debugger.enable()
    snap = dev.debugger.queue_snapshot()
    assert dev._hw_queues["compute"] in [int(e.queue_id) for e in snap]


def test_oob_store_report(dev):
    from hwdrv import provoke as D
    rep, msg, exp = D.provoke_oob_store(dev)
    print(rep.to_text() if rep else msg)
    assert rep is not None and [f.address for f in rep.faults][:1] == [exp["address"]]
    st = _stalled(rep)
    assert st is not None and st.text.startswith("DISPATCH_DIRECT"), "the CP stopped elsewhere (prefetch?)"
    assert D.vecadd_check(dev)


def test_unset_signal_report(dev):
    from hwdrv import provoke as D
    rep, msg, exp = D.provoke_unset_signal(dev)
    print(rep.to_text() if rep else msg)
    st = _stalled(rep)
    assert st is not None and st.text.startswith("WAIT_REG_MEM") and f"address={exp['signal']:#x}" in st.text
    assert D.vecadd_check(dev)


def test_trap_report_wave_state(dev):
    from hwdrv import provoke as D
    rep, msg, _ = D.provoke_illegal_instruction(dev)
    print(rep.to_text() if rep else msg)
    assert rep is not None
    assert any("QUEUE_WAVE_TRAP" in n for n in rep.notes), "GET_QUEUE_SNAPSHOT did not report the trap"
    if os.geteuid() == 0:
        assert any(r.name == "GRBM_STATUS" for r in rep.registers)
    assert D.vecadd_check(dev)
