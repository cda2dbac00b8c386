"""RDNA3 emulator behaviour on small programs assembled by llvm-mc-19
(tests/data/amd/isa/programs/*.s -> programs.json by build.sh): the initial wave state of a
dispatch, faults (s_trap, illegal and unsupported instructions, unmapped memory, timeouts),
buffer (V#) addressing and range checks, bf16/f16 dot products, LDS with s_barrier.
Expected values come from numpy and the ISA's rules, never from the emulator."""
from __future__ import annotations

import json
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from amd_emu_harness import EmuMachine
from hwdrv.amd.gen.rdna3_isa import KD_FIELDS
from hwdrv.errors import MockFault
from hwdrv.mock.amd.rdna3.dispatch import dispatch
from hwdrv.mock.amd.rdna3.faults import ShaderFault, ShaderTimeout
from hwdrv.mock.gpumem import MemoryFault

PROGS = json.loads((Path(__file__).resolve().parent / "data" / "amd" / "isa" / "programs" / "programs.json")
                   .read_text())["programs"]


def rsrc(reg: str, **fields) -> int:
    v = 0
    for name, val in fields.items():
        sh, w = KD_FIELDS[reg][name]
        assert val < 1 << w
        v |= val << sh
    return v


RSRC1 = rsrc("COMPUTE_PGM_RSRC1", GRANULATED_WORKITEM_VGPR_COUNT=1, FLOAT_DENORM_MODE_32=3,
             FLOAT_DENORM_MODE_16_64=3)


def run(name: str, m: EmuMachine, *, user=(), grid=(1, 1, 1), block=(32, 1, 1), rsrc2=None, lds=0, **kw):
    code = struct.pack(f"<{len(PROGS[name])}I", *(int(w, 16) for w in PROGS[name]))
    pc, _ = m.upload(code + b"\0" * 64, writable=False)
    if rsrc2 is None:
        rsrc2 = rsrc("COMPUTE_PGM_RSRC2", USER_SGPR_COUNT=len(user), ENABLE_SGPR_WORKGROUP_ID_X=1)
    return pc, dispatch(m.mem, pgm_addr=pc, rsrc1=RSRC1, rsrc2=rsrc2, rsrc3=0, user_sgprs=list(user),
                        grid=grid, block=block, lds_bytes=lds, **kw)


def split(va: int) -> list[int]:
    return [va & 0xFFFFFFFF, va >> 32]


def test_initial_state_user_sgprs_workgroup_ids_packed_v0():
    m = EmuMachine()
    out, view = m.alloc(8 * 32 * 16)
    r2 = rsrc("COMPUTE_PGM_RSRC2", USER_SGPR_COUNT=2, ENABLE_SGPR_WORKGROUP_ID_X=1, ENABLE_SGPR_WORKGROUP_ID_Y=1,
              ENABLE_SGPR_WORKGROUP_ID_Z=1, ENABLE_VGPR_WORKITEM_ID=2)
    _, res = run("init_state", m, user=split(out), grid=(2, 2, 2), block=(4, 4, 2), rsrc2=r2)
    got = view[:8 * 32 * 16].view(np.uint32).reshape(2, 2, 2, 32, 4)    # [z][y][x][lane]
    lane = np.arange(32)
    v0 = (lane % 4) | ((lane // 4 % 4) << 10) | ((lane // 16) << 20)
    for z in range(2):
        for y in range(2):
            for x in range(2):
                np.testing.assert_array_equal(got[z, y, x, :, 0], v0)
                np.testing.assert_array_equal(got[z, y, x, :, 1:], np.broadcast_to([x, y, z], (32, 3)))
    assert res.waves == 8 and res.lane_instructions == res.wave_instructions * 32


def test_workgroup_id_goes_to_user_sgpr_count():
    m = EmuMachine()
    out, view = m.alloc(4 * 8)
    r2 = rsrc("COMPUTE_PGM_RSRC2", USER_SGPR_COUNT=5, ENABLE_SGPR_WORKGROUP_ID_Y=1)
    run("user_sgpr5_wgy", m, user=split(out) + [0xAAAA, 0xBBBB, 0xCCCC], grid=(1, 6, 1), rsrc2=r2)
    np.testing.assert_array_equal(view[:24].view(np.uint32), np.arange(6))


def test_s_trap_is_a_fault_with_pc_and_wave_state():
    m = EmuMachine()
    with pytest.raises(ShaderFault) as ei:
        run("trap", m, grid=(3, 1, 1))
    e = ei.value
    code = m.mem.mappings()[0].va
    assert e.kind == "trap" and e.pc == code + 4 and e.disasm == "s_trap 2"
    assert e.exec == 0xFFFFFFFF and e.workgroup == (0, 0, 0) and e.sgprs[4] == 7
    assert isinstance(e, MockFault)


def test_illegal_instruction_faults_at_its_pc():
    m = EmuMachine()
    with pytest.raises(ShaderFault) as ei:
        run("illegal", m)
    code = m.mem.mappings()[0].va
    assert ei.value.kind == "illegal" and ei.value.pc == code + 4
    assert ei.value.trapsts & (1 << 11)


def test_unsupported_instruction_names_itself():
    m = EmuMachine()
    with pytest.raises(ShaderFault, match="v_cubeid_f32") as ei:
        run("unsupported", m)
    assert ei.value.kind == "unsupported" and ei.value.disasm.startswith("v_cubeid_f32")


def test_endless_loop_ends_at_the_deadline():
    m = EmuMachine()
    t0 = time.monotonic()
    with pytest.raises(ShaderTimeout):
        run("forever", m, deadline=time.monotonic() + 0.3)
    assert time.monotonic() - t0 < 5


def test_endless_loop_ends_when_cancelled():
    m = EmuMachine()
    ev = threading.Event()
    threading.Timer(0.2, ev.set).start()
    with pytest.raises(ShaderTimeout, match="cancelled"):
        run("forever", m, cancel=ev)


def test_unmapped_access_raises_memory_fault_with_address_and_pc():
    m = EmuMachine()
    with pytest.raises(MemoryFault) as ei:
        run("unmapped", m, user=[0x7000, 0x5])
    e = ei.value
    code = m.mem.mappings()[0].va
    assert e.address == 0x5_0000_7010 and e.access == "read" and e.reason == "unmapped"
    assert e.pc == code + 4 and e.disasm.startswith("global_load_b32")   # after a 4-byte v_mov_b32


def _vsharp(base: int, stride: int, num_records: int) -> list[int]:
    # V# dword0 base[31:0], dword1 base[47:32] | stride << 16, dword2 num_records, dword3 format
    return [base & 0xFFFFFFFF, (base >> 32) | (stride << 16), num_records, 0]


def test_buffer_offen_idxen_and_range_checks():
    m = EmuMachine()
    src = np.arange(1, 33, dtype=np.uint32) * 10
    recs = np.arange(64, dtype=np.uint32).reshape(32, 2)          # 32 records of 8 bytes
    a, _ = m.upload(src)
    b, _ = m.upload(recs)
    out, view = m.alloc(4096)
    view[:].view(np.uint32)[:] = 0xDEADBEEF
    user = _vsharp(a, 0, 20 * 4) + _vsharp(b, 8, 24) + _vsharp(out, 0, 28 * 4)
    r2 = rsrc("COMPUTE_PGM_RSRC2", USER_SGPR_COUNT=12)
    run("mubuf", m, user=user, rsrc2=r2)
    o = view.view(np.uint32)
    want = np.where(np.arange(32) < 20, src * 3, 0).astype(np.uint32)   # loads past 80 bytes read 0
    np.testing.assert_array_equal(o[:28], want[:28])                     # stores past 112 bytes dropped
    assert (o[28:32] == 0xDEADBEEF).all()
    # structured: record index < 24 valid; byte offset 128 + 4*lane must stay < 112 -> all dropped
    assert (o[32:64] == 0xDEADBEEF).all()


def test_buffer_structured_loads():
    m = EmuMachine()
    recs = np.arange(64, dtype=np.uint32).reshape(32, 2)
    b, _ = m.upload(recs)
    out, view = m.alloc(4096)
    src, _ = m.upload(np.zeros(32, np.uint32))
    user = _vsharp(src, 0, 128) + _vsharp(b, 8, 24) + _vsharp(out, 0, 4096)
    run("mubuf", m, user=user, rsrc2=rsrc("COMPUTE_PGM_RSRC2", USER_SGPR_COUNT=12))
    got = view.view(np.uint32)[32:64]
    np.testing.assert_array_equal(got, np.where(np.arange(32) < 24, recs[:, 1], 0))


def _bf16(x: np.ndarray) -> np.ndarray:
    b = x.astype(np.float32).view(np.uint32)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def test_dot2_bf16_and_f16():
    m = EmuMachine()
    rng = np.random.default_rng(3)
    a = rng.uniform(-4, 4, (32, 2)).astype(np.float32)
    b = rng.uniform(-4, 4, (32, 2)).astype(np.float32)
    ab, bb = _bf16(a), _bf16(b)
    words = np.zeros((32, 2), np.uint32)
    words[:, 0] = ab[:, 0] | (ab[:, 1].astype(np.uint32) << 16)
    words[:, 1] = bb[:, 0] | (bb[:, 1].astype(np.uint32) << 16)
    inp, _ = m.upload(words)
    out, view = m.alloc(32 * 8)
    run("dot_bf16", m, user=split(inp) + split(out), rsrc2=rsrc("COMPUTE_PGM_RSRC2", USER_SGPR_COUNT=4))
    res = view[:256].view(np.float32).reshape(32, 2)
    av = (ab.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    bv = (bb.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    np.testing.assert_allclose(res[:, 0], (av * bv).sum(1) + 1.0, rtol=1e-6)
    h = words.view(np.float16).reshape(32, 2, 2).astype(np.float64)   # same bits read as f16 pairs
    np.testing.assert_allclose(res[:, 1], (h[:, 0] * h[:, 1]).sum(1), rtol=1e-6)


def test_lds_and_barrier_across_four_waves():
    m = EmuMachine()
    out, view = m.alloc(128 * 4)
    r2 = rsrc("COMPUTE_PGM_RSRC2", USER_SGPR_COUNT=2, ENABLE_SGPR_WORKGROUP_ID_X=1)
    run("lds_barrier", m, user=split(out), block=(128, 1, 1), grid=(3, 1, 1), rsrc2=r2, lds=512)
    np.testing.assert_array_equal(view[:512].view(np.uint32), 127 - np.arange(128))


def test_scratch_private_per_lane_and_layout():
    m = EmuMachine()
    out, view = m.alloc(128)
    scratch, sview = m.alloc(2 * 32 * 64)
    r2 = rsrc("COMPUTE_PGM_RSRC2", USER_SGPR_COUNT=2, ENABLE_PRIVATE_SEGMENT=1)
    run("scratch", m, user=split(out), rsrc2=r2, scratch_base=scratch + 32 * 64, scratch_per_wave=32 * 64)
    np.testing.assert_array_equal(view[:128].view(np.uint32), np.arange(32) + 100)
    # wave 0 owns [scratch_base, +2048): private dword d of lane l at d * 128 + l * 4
    words = sview[32 * 64:].view(np.uint32)
    np.testing.assert_array_equal(words[32:64], np.arange(32) + 100)
    np.testing.assert_array_equal(words[15 * 32:16 * 32], np.arange(32))
    assert not sview[:32 * 64].any()          # nothing outside the wave's slice was touched


def test_scratch_past_the_lane_slice_faults():
    m = EmuMachine()
    scratch, _ = m.alloc(32 * 64)
    with pytest.raises(MemoryFault) as ei:
        run("scratch_oob", m, rsrc2=rsrc("COMPUTE_PGM_RSRC2", ENABLE_PRIVATE_SEGMENT=1), scratch_base=scratch,
            scratch_per_wave=32 * 64)
    assert ei.value.reason == "out-of-range" and ei.value.address == 64 and ei.value.access == "write" and ei.value.disasm.startswith("scratch_store")
