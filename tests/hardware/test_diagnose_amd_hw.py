"""AMD hang reports on a real gfx11 GPU: `pytest -m hardware tests/hardware/test_diagnose_amd_hw.py`
(device: HWDRV_TEST_AMD_DEVICE, default amd:0). Skips, saying why, without /dev/kfd. What to
verify on hardware (docs/amd-diagnosis.md, deviations): the CP read pointer stops at the packet the
report marks; KFD's DBG_TRAP works on the own process after RUNTIME_ENABLE; the context-save area
after SUSPEND_QUEUES holds the control stack and trap-handler records hwdrv/amd/cwsr.py reads (the
same check as on mock:amd, tests/amd_cwsr_cases.py); as root, the §7.3 registers."""
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


def test_running_waves_from_the_context_save_area(dev):
    """spin_forever suspended mid-loop: every saved wave's PC inside the kernel, EXEC full, the
    descriptor's VGPRs, not halted, one first and one last wave per workgroup, records filling the
    wave state exactly; then resumed, it finishes once its flag is set."""
    from amd_cwsr_cases import check_spin_waves, suspended_spin_waves
    from hwdrv import provoke as D
    area, prog = suspended_spin_waves(dev)
    print(f"control stack {area.control_stack_offset:#x}+{area.control_stack_size:#x}, "
          f"waves end {area.wave_state_offset:#x} size {area.wave_state_size:#x}")
    for w in area.waves:
        print(f"wave {w.index}: SE {w.se_id} wg {w.workgroup} #{w.wave_in_group} wave{w.lanes} pc {w.pc:#x} "
              f"(+{w.pc - prog.code_va:#x}) exec {w.exec:#x} status {w.hwregs['STATUS']:#x} {w.fields('STATUS')} "
              f"trapsts {w.hwregs['TRAPSTS']:#x} vgprs {len(w.vgprs)} relaunch {w.relaunch_wave:#x}/"
              f"{w.relaunch_state:#x}/{w.relaunch2_state:#x} ttmps {w.ttmps}")
    check_spin_waves(area, prog)
    assert D.vecadd_check(dev)


def test_endless_loop_report_names_the_kernel(dev):
    from hwdrv import provoke as D
    rep, msg, _ = D.provoke_endless_loop(dev)
    print(rep.to_text() if rep else msg)
    assert rep is not None and rep.wave_errors, "no wave state in the report"
    w = rep.wave_errors[0]
    assert w.kernel == "spin_forever" and "running" in w.error and w.source_line
    assert D.vecadd_check(dev)


def test_trap_report_wave_state(dev):
    from hwdrv import provoke as D
    rep, msg, _ = D.provoke_illegal_instruction(dev)
    print(rep.to_text() if rep else msg)
    assert rep is not None
    assert any("QUEUE_WAVE_TRAP" in n for n in rep.notes), "GET_QUEUE_SNAPSHOT did not report the trap"
    # whether the wave is still resident depends on the kernel's trap handler (6.1's steps over an
    # s_trap without a second-level handler); a saved one must be read right
    for w in rep.wave_errors:
        if w.kernel == "illegal_trap" and "QUEUE_WAVE_TRAP" in w.error:
            assert w.source_line.startswith("s_trap")
    if os.geteuid() == 0:
        assert any(r.name == "GRBM_STATUS" for r in rep.registers)
    assert D.vecadd_check(dev)
