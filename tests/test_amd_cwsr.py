"""The gfx11 context-save area: the mock KFD's SUSPEND_QUEUES writes it from the RDNA3 emulator's
registers in the KFD trap handler's layout, and hwdrv/amd/cwsr.py reads it back. The expected
values are the emulator's own arrays (WaveState), never the writer's intermediate records; the
layout facts come from the trap handler / ROCdbgapi (gen/cwsr.py, cross-checked at generation)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import hwdrv
from hwdrv import provoke as D
from hwdrv.amd import cwsr
from hwdrv.amd import diagnose as DG
from hwdrv.amd.gen import cwsr as C
from hwdrv.amd.gen import gc11 as G
from hwdrv.amd.gen import kfd as K
from hwdrv.mock.amd import cwsr_save, dbg_trap
from hwdrv.mock.amd.rdna3.snapshot import WaveSnapshot
from hwdrv.mock.amd.rdna3.state import EXEC, M0, VCC, WaveState

CTL = 0x3000                 # a control-stack size (page multiple, as kfd_queue_ctx_save_restore_size gives)


def test_generated_layout_matches_the_trap_handler_and_rocdbgapi():
    # the facts the reader depends on, as the pinned sources state them (comments of the asm / dbgapi)
    assert C.AREA_ORDER == ("VGPR", "SVGPR", "SGPR", "HWREG", "LDS")
    assert C.HWREG_SLOTS[:7] == ("M0", "PC_LO", "PC_HI", "EXEC_LO", "EXEC_HI", "STATUS", "TRAPSTS")
    assert C.SGPR_AREA_BYTES == 4 * C.SGPR_COUNT and C.SGPRS_SAVED <= C.SGPR_COUNT
    assert C.VGPR_ROW_BYTES_W32 == 32 * 4 and C.VGPR_ROW_BYTES_W64 == 64 * 4
    assert C.TTMP_OFFSET + 4 * 16 == C.HWREG_AREA_BYTES


def _node_props(gfxv: int, cu: int) -> dict:
    return {"gfx_target_version": gfxv, "simd_count": 2 * cu, "simd_per_cu": 2, "num_xcc": 1, "array_count": 12,
            "simd_arrays_per_engine": 2, "lds_size_in_kb": 64}


@pytest.mark.parametrize("key", sorted(C.KFD_QUEUE_SIZES))
def test_mock_kfd_queue_sizes_are_the_kernels(key):
    """The mock KFD validates CREATE_QUEUE with the sizes Linux 6.12's kfd_queue_ctx_save_restore_size
    gives (that function compiled and run by gcc at generation)."""
    from hwdrv.mock.amd.topology import queue_sizes
    q = queue_sizes(_node_props(*key))
    assert (q.ctl_stack_size, q.cwsr_size, q.debug_memory_size, q.eop_buffer_size) == C.KFD_QUEUE_SIZES[key]


@pytest.mark.parametrize("key", sorted(C.KFD_QUEUE_SIZES))
def test_backend_allocates_the_cwsr_sizes_kfd_checks(key):
    from hwdrv.amd.topology import Node
    q = Node(1, 0x1234, _node_props(*key)).queue_sizes()
    assert (q.ctl_stack_size, q.cwsr_size, q.debug_memory_size, q.eop_buffer_size) == C.KFD_QUEUE_SIZES[key]


def _state(n_wg: int, wpg: int, nvgpr: int, lds_bytes: int, seed: int) -> tuple[WaveState, np.ndarray]:
    rng = np.random.default_rng(seed)
    W = n_wg * wpg
    lds = rng.integers(0, 256, (n_wg, max(lds_bytes, 4)), dtype=np.uint8)
    st = WaveState(W, nvgpr, lds, np.repeat(np.arange(n_wg), wpg), lds_bytes)
    st.s[:] = rng.integers(0, 1 << 32, st.s.shape, dtype=np.uint64).astype(np.uint32)
    st.v[:] = rng.integers(0, 1 << 32, st.v.shape, dtype=np.uint64).astype(np.uint32)
    st.s[EXEC + 1] = 0                                    # wave32: EXEC_HI is 0
    st.pc[:] = rng.integers(0, 0x400, W) * 4
    st.scc[:] = rng.integers(0, 2, W).astype(bool)
    st.mode[:] = rng.integers(0, 1 << 20, W).astype(np.uint32)
    wid = np.stack([np.repeat(np.arange(n_wg), wpg), np.zeros(W, int), np.full(W, 7)], axis=1)
    return st, wid


@pytest.mark.parametrize("n_wg,wpg,nvgpr,lds_bytes", [(1, 1, 8, 0), (2, 4, 24, 1000), (3, 2, 256, 65536)])
def test_mock_save_area_reads_back_as_the_emulators_registers(n_wg, wpg, nvgpr, lds_bytes):
    st, wid = _state(n_wg, wpg, nvgpr, lds_bytes, seed=n_wg * 100 + nvgpr)
    st.done[-1] = n_wg * wpg > 1                          # an ended wave is not resident
    pgm, base = 0x7F00_1234_5000, 0x7F55_0000_0000
    focus = 0
    snap = WaveSnapshot(st, pgm, 0, wid, wpg, focus, G.SQ_WAVE_STATUS__HALT.mask, 0x100)
    waves = snap.waves()
    size = CTL + (4 << 20)
    buf = bytearray(size)
    for off, data in cwsr_save.save_area(waves, base, CTL, size):
        buf[off:off + len(data)] = data
    area = cwsr.parse_bytes(bytes(buf))
    live = [w for w in range(st.W) if not st.done[w]]
    assert len(area.waves) == len(live)
    assert area.wave_state_offset - area.wave_state_size == CTL               # records start at ctl_stack_size
    assert area.control_stack_offset + area.control_stack_size == CTL          # stack ends there
    by_wave = {}
    for sw in area.waves:
        by_wave[(sw.workgroup, sw.wave_in_group)] = sw
    for w in live:
        sw = by_wave[(tuple(int(x) for x in wid[w]), w % wpg)]
        assert sw.lanes == 32 and sw.vgprs.shape == (nvgpr, 32)
        assert np.array_equal(sw.vgprs, st.v[:, w, :])
        assert np.array_equal(sw.sgprs[:VCC], st.s[:VCC, w])
        assert list(sw.sgprs[VCC:VCC + 2]) == [st.s[VCC, w], st.s[VCC + 1, w]]
        assert sw.pc == pgm + int(st.pc[w]) and sw.exec == int(st.s[EXEC, w])
        assert sw.hwregs["M0"] == st.s[M0, w] and sw.hwregs["MODE"] == st.mode[w]
        assert G.SQ_WAVE_STATUS__SCC.decode(sw.hwregs["STATUS"]) == int(st.scc[w])
        assert G.SQ_WAVE_STATUS__HALT.decode(sw.hwregs["STATUS"]) == (w == focus)
        assert sw.hwregs["TRAPSTS"] == (0x100 if w == focus else 0)
        mates = [x for x in live if x // wpg == w // wpg]
        assert sw.first_wave == (w == mates[0]) and sw.last_wave == (w == mates[-1])
        if sw.first_wave and lds_bytes:
            assert sw.lds[:lds_bytes] == st.lds[w // wpg, :lds_bytes].tobytes()
        else:
            assert sw.lds is None
        # the XNACK_MASK slot: the upper half of the record's HWREG area address (the gfx11 handler's ttmp15)
        assert sw.hwregs["XNACK_MASK"] == (base + sw.offset) >> 32


def test_a_full_area_keeps_whole_workgroups_that_fit():
    st, wid = _state(4, 2, 64, 0, seed=5)
    waves = WaveSnapshot(st, 0x1000, 0, wid, 2, 0, 0, 0).waves()
    one = len(cwsr_save.wave_record(waves[0], 0))
    size = CTL + 3 * 2 * one + 100                        # room for 3 of the 4 workgroups
    buf = bytearray(size)
    for off, data in cwsr_save.save_area(waves, 0, CTL, size):
        buf[off:off + len(data)] = data
    area = cwsr.parse_bytes(bytes(buf))
    assert len(area.waves) == 6 and {sw.workgroup[0] for sw in area.waves} == {0, 1, 2}


def test_a_wave64_record_is_sized_and_read_by_its_state_word():
    """A hand-built wave64 area (the emulator runs wave32 only): 3 VGPR blocks of 4, 64 lanes."""
    rng = np.random.default_rng(9)
    f = C.RELAUNCH_FIELDS
    state = C.COMPUTE_RELAUNCH_IS_STATE[1] | (2 << C.STATE_VGPR_BLOCKS[1])          # W32_EN = 0
    wave = 1 << f["WAVE_FIRST_WAVE"][1] | 1 << f["WAVE_LAST_WAVE"][1] | 3 << f["WAVE_SE_ID"][1]
    v = rng.integers(0, 1 << 32, (12, 64), dtype=np.uint64).astype("<u4")
    s = rng.integers(0, 1 << 32, C.SGPR_AREA_BYTES // 4, dtype=np.uint64).astype("<u4")
    hw = np.zeros(C.HWREG_AREA_BYTES // 4, "<u4")
    hw[C.HWREG_SLOTS.index("EXEC_LO")], hw[C.HWREG_SLOTS.index("EXEC_HI")] = 0x89ABCDEF, 0x01234567
    rec = v.tobytes() + s.tobytes() + hw.tobytes()
    stack = np.array([0, 0, state, 0, wave], "<u4").tobytes()
    head = np.array([CTL - len(stack), len(stack), CTL + len(rec), len(rec)], "<u4").tobytes()
    buf = bytearray(CTL + len(rec))
    buf[:16], buf[CTL - len(stack):CTL], buf[CTL:] = head, stack, rec
    [w] = cwsr.parse_bytes(bytes(buf)).waves
    assert w.lanes == 64 and np.array_equal(w.vgprs, v) and w.exec == 0x0123456789ABCDEF and w.se_id == 3
    assert np.array_equal(w.sgprs, s[:C.SGPRS_SAVED]) and w.lds is None


def _captured(monkeypatch) -> list:
    seen = []
    real = dbg_trap.saved_waves

    def spy(fault):
        seen.append(fault)
        return real(fault)
    monkeypatch.setattr(dbg_trap, "saved_waves", spy)
    return seen


@pytest.mark.parametrize("provoke,kind", [(D.provoke_oob_store, "memory"), (D.provoke_illegal_instruction, "trap"),
                                          (D.provoke_endless_loop, "timeout")])
def test_report_wave_state_is_the_emulators_live_registers(monkeypatch, provoke, kind):
    monkeypatch.setattr(D, "WAIT_S", 1.0)
    seen = _captured(monkeypatch)
    with hwdrv.open_device("mock:amd") as dev:
        rep, msg, _ = provoke(dev)
        assert rep is not None, msg
        faults = [f for f in seen if getattr(f, "snapshot", None) is not None]
        assert faults, "SUSPEND_QUEUES saved no emulator state"
        f = faults[-1]
        st, w = f.snapshot.st, f.snapshot.focus
        [we] = rep.wave_errors
        # a stopped wave's PC is its faulting instruction; a preempted one saves where it resumes
        assert we.pc == f.snapshot.pgm_addr + int(st.pc[w])
        if kind != "timeout":
            assert we.pc == f.pc
        assert we.status["SQ_WAVE_EXEC_LO"] == int(st.s[EXEC, w]) == f.exec
        assert we.status["SQ_WAVE_M0"] == int(st.s[M0, w]) and we.status["SQ_WAVE_MODE"] == int(st.mode[w])
        halted = G.SQ_WAVE_STATUS__HALT.decode(we.status["SQ_WAVE_STATUS"])
        assert halted == (kind != "timeout")
        excp = G.SQ_WAVE_TRAPSTS__EXCP.decode(we.status["SQ_WAVE_TRAPSTS"])
        assert bool(excp & K.KFD_DBG_TRAP_MASK_DBG_MEMORY_VIOLATION) == (kind == "memory")
        assert we.kernel == rep.launches[0].kernel and we.offset == we.pc - rep.launches[0].program_address
        assert "SE 0, workgroup (0, 0, 0) wave 0, wave32" in we.error
        # the whole record: every SGPR and VGPR of the wave, read back from the area in memory
        area = DG.read_save_area(dev._qbufs["compute"]["cwsr"].va, dev.node.queue_sizes().cwsr_size)
        [sw] = area.waves
        assert np.array_equal(sw.sgprs[:VCC], st.s[:VCC, w]) and np.array_equal(sw.vgprs, st.v[:, w, :])
        assert D.vecadd_check(dev)


def test_suspended_running_waves_on_mock():
    from amd_cwsr_cases import check_spin_waves, suspended_spin_waves
    with hwdrv.open_device("mock:amd") as dev:
        area, prog = suspended_spin_waves(dev)
        check_spin_waves(area, prog)
        # the mock saves the ttmps the SPI's debug setup writes: workgroup ids and place in the group
        assert sorted((w.workgroup, w.wave_in_group) for w in area.waves) == [
            ((g, 0, 0), k) for g in range(2) for k in range(2)]
        assert D.vecadd_check(dev)


def test_a_kernel_that_writes_no_header_gives_a_note_not_stale_waves(monkeypatch):
    with hwdrv.open_device("mock:amd") as dev:
        rep, _, _ = D.provoke_illegal_instruction(dev)           # leaves a saved wave in the area
        assert rep.wave_errors
        monkeypatch.setattr(dbg_trap, "save_area", lambda *a: [])  # a pre-6.4 KFD: no header, no copy
        monkeypatch.setattr(D, "WAIT_S", 0.5)
        rep, _, _ = D.provoke_unset_signal(dev)
        assert rep.wave_errors == [] and any("no context-save area header" in n for n in rep.notes)


def _good_area(seed: int = 1) -> bytes:
    st, wid = _state(2, 2, 16, 600, seed)
    waves = WaveSnapshot(st, 0x1000, 0, wid, 2, 0, 0, 0).waves()
    size = CTL + 0x8000
    buf = bytearray(size)
    for off, data in cwsr_save.save_area(waves, 0, CTL, size):
        buf[off:off + len(data)] = data
    return bytes(buf)


GOOD = _good_area()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.data())
def test_fuzz_corrupt_save_areas_raise_save_area_error(data):
    """Truncations, flipped header/control-stack words and random bytes: a clean SaveAreaError or a
    parse whose records all lie inside the area — never another exception."""
    how = data.draw(hs.sampled_from(["truncate", "header", "stack", "garbage"]))
    buf = bytearray(GOOD)
    if how == "truncate":
        buf = buf[:data.draw(hs.integers(0, len(buf) - 1))]
    elif how == "header":
        i = data.draw(hs.integers(0, 3))
        buf[4 * i:4 * i + 4] = data.draw(hs.integers(0, (1 << 32) - 1)).to_bytes(4, "little")
    elif how == "stack":
        a = cwsr.parse_bytes(GOOD)
        i = data.draw(hs.integers(0, a.control_stack_size // 4 - 1))
        at = a.control_stack_offset + 4 * i
        buf[at:at + 4] = data.draw(hs.integers(0, (1 << 32) - 1)).to_bytes(4, "little")
    else:
        buf = bytearray(data.draw(hs.binary(min_size=0, max_size=512)))
    try:
        area = cwsr.parse_bytes(bytes(buf))
    except cwsr.SaveAreaError:
        return
    for sw in area.waves:
        assert 0 <= sw.offset < len(buf)


def test_truncated_and_inconsistent_areas_name_the_problem():
    with pytest.raises(cwsr.SaveAreaError, match="outside"):
        cwsr.parse_bytes(GOOD[:8])
    a = cwsr.parse_bytes(GOOD)
    bad = bytearray(GOOD)
    bad[12:16] = (a.wave_state_size - 4).to_bytes(4, "little")              # wave_state_size one dword short
    with pytest.raises(cwsr.SaveAreaError, match="contiguous"):
        cwsr.parse_bytes(bytes(bad))
    assert K.ffi.sizeof("struct kfd_context_save_area_header") > cwsr.WAVE_STATE_BYTES == 16
