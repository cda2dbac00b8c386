"""The AMD KFD backend on mock:amd beyond the shared conformance cases: topology and target
checks, the packet words against the values reference/amd.md records from tinygrad's working
driver, ring wrap-around, the four provocations with their KFD-event reports and recovery, the
LLVM IR path, and the CLI (info, demo fallback, diagnose)."""
from __future__ import annotations

import time

import numpy as np
import pytest

import hwdrv
import hwdrv.amd.device as amd_device
import hwdrv.mock.amd as mock_amd
from hwdrv import provoke as D
from hwdrv.amd import pm4, sdma, topology
from hwdrv.errors import InvalidArgument, ProgramError, UnsupportedDevice
from hwdrv.mock.amd.topology import GpuNode


@pytest.fixture
def dev():
    d = hwdrv.open_device("mock:amd")
    yield d
    d.close()


# ---- topology --------------------------------------------------------------------------------
def test_topology_names_the_gfx11_node_and_queue_sizes_match_kfd():
    k = mock_amd.make_kernel()
    (node,) = topology.gpu_nodes(k)
    assert node.target == "gfx1100" and node.supported and node.cu_count == 96
    # kfd_queue_ctx_save_restore_size for a 96-CU gfx1100 (values in tests/test_mock_kfd.py, from kfd_queue.c)
    sz = node.queue_sizes()
    assert sz.ctl_stack_size == 0xA000 and sz.cwsr_size == 0xA000 + 96 * 0x75000 and sz.eop_buffer_size == 4096
    assert sz.debug_memory_size == 3072 * 32


def test_non_gfx11_node_is_refused_naming_its_target():
    node = GpuNode()
    node.properties["gfx_target_version"] = 90010           # an MI210 (gfx90a)
    k = mock_amd.make_kernel(node)
    info = amd_device.probe(k)
    assert len(info) == 1 and not info[0].available and "gfx90a" in info[0].problem
    with pytest.raises(UnsupportedDevice, match="gfx90a"):
        amd_device.open(k, 0, "mock:amd")
    assert k.open_fds() == {}


# ---- packets: the words tinygrad's AMD backend emits on gfx11 (reference/amd.md 2.4, 3) ------------
def test_pm4_words_match_the_recorded_gfx11_stream():
    assert pm4.set_sh_reg("COMPUTE_PGM_LO", 1, 2)[:2] == [0xC0027600, 0x20C]
    assert pm4.set_sh_reg("COMPUTE_PGM_RSRC3", 0)[:2] == [0xC0017600, 0x228]
    assert pm4.set_sh_reg("COMPUTE_USER_DATA_0", 0, 0)[1] == 0x240
    assert pm4.acquire_mem(full=True)[7] == 0xC3F1 and pm4.acquire_mem()[7] == 0x3F0
    rel = pm4.release_mem(0x1122334455, 7, pm4.DATA_SEL_32)
    assert rel[:3] == [0xC0064900, 0x0070F514, 0x20000000] and rel[3:6] == [0x22334455, 0x11, 7]
    assert pm4.release_mem(0, 1, pm4.DATA_SEL_32, pm4.INT_SEL_AFTER_WRITE_CONFIRM, 9)[2] == 0x22000000
    assert pm4.wait_mem_geq(0x1000, 5) == [0xC0053C00, 0x15, 0x1000, 0, 5, 0xFFFFFFFF, 4]
    assert pm4.dispatch_direct((3, 2, 1)) == [0xC0031500, 3, 2, 1, 0x8005]
    assert pm4.cs_partial_flush() == [0xC0004600, 0x407]
    assert pm4.indirect_buffer(0x2000, 10)[3] == 10 | 0x800000


def test_sdma_words_match_the_recorded_packets():
    assert sdma.copy_linear(0x3000, 0x2000, 256)[:3] == [0x00000001, 255, 0]
    assert sdma.poll_geq(0x1000, 5) == [0xD0000008, 0x1000, 0, 5, 0xFFFFFFFF, 0x0FFF0004]
    assert sdma.timestamp(0x1008)[0] == 0x20D and sdma.fence(0x10, 3) == [5, 0x10, 0, 3]
    assert sdma.trap(17) == [6, 17]


def test_wait_values_must_fit_32_bits(dev):
    s = dev.signal(0)
    with pytest.raises(InvalidArgument, match="32 bits"):
        dev.compute_queue().wait(s, 1 << 32)
    with pytest.raises(InvalidArgument, match="32 bits"):
        dev.copy_queue().wait(s, 1 << 32)


# ---- rings ---------------------------------------------------------------------------------------
def test_rings_wrap_many_times(monkeypatch):
    monkeypatch.setattr(amd_device, "RING_SIZE", 4096)         # 1024 dwords: each ring wraps several times
    with hwdrv.open_device("mock:amd") as d:
        s, c = d.signal(0), d.signal(0)
        for i in range(1, 151):
            d.compute_queue().signal(s, i).submit()
            d.copy_queue().signal(c, i).submit()
        s.wait(150, timeout=20)
        c.wait(150, timeout=20)
        assert d.rings["compute"].put > 3 * d.rings["compute"].ndw
        assert d.rings["copy"].put > 3 * d.rings["copy"].ndw
        buf = d.alloc(4096)
        d.upload(buf, np.arange(1024, dtype=np.uint32))
        np.testing.assert_array_equal(d.download(buf, dtype=np.uint32), np.arange(1024, dtype=np.uint32))


# ---- provocations ------------------------------------------------------------------------------------
def test_out_of_bounds_store_reports_the_kfd_memory_event(dev):
    t = time.perf_counter()
    rep, msg, exp = D.provoke_oob_store(dev)
    assert time.perf_counter() - t < 2.0, "a KFD memory event must fail the wait within about a second"
    assert rep is not None, msg
    assert rep.cause == "mmu_fault" and rep.error.vendor == "amd" and rep.error.name == "MEMORY"
    assert any(f.address == exp["address"] and "no page" in f.access for f in rep.faults), rep.faults
    assert [ln.kernel for ln in rep.launches] == ["oob_store"]
    assert rep.launches[0].args == [hex(exp["address"]), hex(0xDEAD)]
    assert {q.name.split()[0] for q in rep.queues} == {"compute", "copy"}
    assert D.vecadd_check(dev)


def test_illegal_instruction_reports_the_hw_exception(dev):
    rep, msg, _ = D.provoke_illegal_instruction(dev)
    assert rep is not None, msg
    assert rep.cause == "exception" and rep.error.name == "HW_EXCEPTION"
    assert [ln.kernel for ln in rep.launches] == ["illegal_trap"]
    assert D.vecadd_check(dev)
    assert any("HW_EXCEPTION" in r for r in dev.recoveries)


def test_endless_loop_times_out_and_recover_abandons_it(dev, monkeypatch):
    monkeypatch.setattr(D, "WAIT_S", 1.0)
    rep, msg, _ = D.provoke_endless_loop(dev)
    assert rep is not None and rep.cause == "timeout", msg
    assert [ln.kernel for ln in rep.launches] == ["spin_forever"]
    assert D.vecadd_check(dev)


def test_wait_on_unset_signal_then_recover(dev, monkeypatch):
    monkeypatch.setattr(D, "WAIT_S", 0.5)
    rep, msg, _ = D.provoke_unset_signal(dev)
    assert rep is not None and rep.cause == "timeout" and rep.error is None, msg
    q = next(q for q in rep.queues if q.name.startswith("compute"))
    assert q.get is not None and q.put is not None and q.get < q.put, "the CP stopped before the end of the ring"
    assert D.vecadd_check(dev)


def test_buffers_and_programs_survive_recovery(dev):
    prog = D.sample(dev, "vecadd")
    keep = dev.alloc(4096)
    dev.upload(keep, np.full(1024, 7, np.uint32))
    D.provoke_oob_store(dev)
    dev.recover()
    np.testing.assert_array_equal(dev.download(keep, dtype=np.uint32), np.full(1024, 7, np.uint32))
    n = 300
    a, b, c = dev.alloc(n * 4), dev.alloc(n * 4), dev.alloc(n * 4)
    dev.upload(a, np.ones(n, np.float32))
    dev.upload(b, np.ones(n, np.float32))
    s = dev.signal(0)
    dev.compute_queue().exec(prog, grid=(2,), block=(256,), args=[a, b, c, n]).signal(s, 1).submit()
    s.wait(1, timeout=20)
    np.testing.assert_array_equal(dev.download(c, dtype=np.float32), np.full(n, 2, np.float32))


# ---- programs and compilers -----------------------------------------------------------------------------
def test_code_object_for_another_target_is_refused(dev):
    binary = bytearray(dev.samples["vecadd"][0])
    binary[48] = 0x3F                       # e_flags EF_AMDGPU_MACH: gfx90a
    with pytest.raises(ProgramError, match="gfx90a"):
        dev.compiler.compile(bytes(binary))
    with pytest.raises(ProgramError, match="vecadd"):
        dev.program(dev.samples["vecadd"][0], "no_such_kernel")


def test_llvm_ir_compiles_with_llvmlite_and_runs(dev):
    pytest.importorskip("llvmlite", reason="the LLVM IR path needs the optional llvmlite")
    ir = """
define amdgpu_kernel void @scale(ptr addrspace(1) %p, i32 %k) {
  %t = call i32 @llvm.amdgcn.workitem.id.x()
  %g = call i32 @llvm.amdgcn.workgroup.id.x()
  %b = mul i32 %g, 64
  %i = add i32 %b, %t
  %a = getelementptr i32, ptr addrspace(1) %p, i32 %i
  %v = load i32, ptr addrspace(1) %a
  %w = mul i32 %v, %k
  store i32 %w, ptr addrspace(1) %a
  ret void
}
declare i32 @llvm.amdgcn.workitem.id.x()
declare i32 @llvm.amdgcn.workgroup.id.x()
"""
    binary = dev.compiler.compile(ir)
    assert binary[16] == 1, "llvmlite emits a relocatable (ET_REL) code object"
    p = dev.program(binary, "scale")
    buf = dev.alloc(256 * 4)
    dev.upload(buf, np.arange(256, dtype=np.int32))
    s = dev.signal(0)
    dev.compute_queue().exec(p, grid=(4,), block=(64,), args=[buf, 3]).signal(s, 1).submit()
    s.wait(1, timeout=20)
    np.testing.assert_array_equal(dev.download(buf, dtype=np.int32), 3 * np.arange(256, dtype=np.int32))


# ---- CLI -----------------------------------------------------------------------------------------------
def test_info_lists_the_amd_mock():
    names = {d.name: d for d in hwdrv.devices()}
    assert names["mock:amd"].vendor == "amd" and names["mock:amd"].mock


def test_demo_runs_the_tensor_demo(capsys):
    pytest.importorskip("llvmlite", reason="the tensor renderer for AMD compiles with llvmlite")
    from hwdrv.cli import main
    assert main(["demo", "--device", "mock:amd"]) == 0
    out = capsys.readouterr().out
    assert "tensor demo on mock:amd (gfx1100, mock)" in out and "MISMATCH" not in out
    assert "matmul f16: OK" in out and "mm_wmma_float16" in out


def test_diagnose_runs_all_four_provocations(monkeypatch, capsys):
    monkeypatch.setattr(D, "WAIT_S", 2.0)     # a fault is reported well inside this, even on a loaded machine
    assert D.run_diagnose("mock:amd", as_json=False) == 0
    out = capsys.readouterr().out
    assert out.count("next vecadd: correct") == 4
    assert "KFD event 8 MEMORY" in out and "KFD event 3 HW_EXCEPTION" in out


# ---- patching ----------------------------------------------------------------------------------------
def test_var_grid_patches_the_dispatch_and_the_hidden_block_count(dev):
    """A Var grid: DISPATCH_DIRECT's group counts and the kernarg's hidden_block_count_x are both
    patch sites; the kernel's bound check uses n, its indexing the hidden group size."""
    from hwdrv import Var
    prog = D.sample(dev, "vecadd")
    n = 1024
    a, b, c = dev.alloc(n * 4), dev.alloc(n * 4), dev.alloc(n * 4)
    x = np.arange(n, dtype=np.float32)
    dev.upload(a, x)
    dev.upload(b, x)
    s = dev.signal(0)
    g, v = Var("g"), Var("v")
    q = dev.compute_queue().exec(prog, grid=(g,), block=(64,), args=[a, b, c, n]).signal(s, v)
    for i, groups in enumerate((3, 16), start=1):
        dev.upload(c, np.zeros(n, np.float32))
        q.submit(g=groups, v=i)
        s.wait(i, timeout=20)
        got = dev.download(c, dtype=np.float32)
        np.testing.assert_array_equal(got[:groups * 64], 2 * x[:groups * 64])
        assert not got[groups * 64:].any(), "groups beyond the patched grid must not run"
    # the kernel's own group count (OpenCL get_num_groups from hidden_block_count_x) follows the Var
    from pathlib import Path
    binary = (Path(__file__).parent / "data" / "amd" / "conformance" / "kernels.hsaco").read_bytes()
    grid3d = dev.program(binary, "grid3d")
    out = dev.alloc(64 * 8)
    q = dev.compute_queue().exec(grid3d, grid=(g,), block=(4,), args=[out]).signal(s, v)
    for i, groups in enumerate((2, 13), start=3):
        q.submit(g=groups, v=i)
        s.wait(i, timeout=20)
        shape = dev.download(out, groups * 4 * 8, dtype=np.uint32)[1::2]
        assert set(shape >> 24) == {groups}, "hidden_block_count_x must be patched with the grid"


def test_bound_copy_queue_with_var_addresses(dev):
    from hwdrv import Var
    src, dst = dev.alloc(1 << 16), dev.alloc(1 << 16)
    data = np.random.default_rng(9).integers(0, 256, 1 << 16, dtype=np.uint8)
    dev.upload(src, data)
    dev.upload(dst, np.zeros(1 << 16, np.uint8))
    s = dev.signal(0)
    off, v = Var("off"), Var("v")
    q = dev.copy_queue().copy(dst.va + off, src.va + off, 4096).signal(s, v).bind()
    for i, o in enumerate((0, 8192, 61440), start=1):
        q.submit(off=o, v=(1 << 33) + i)            # 64-bit signal values through two FENCEs
        s.wait((1 << 33) + i, timeout=20)
    out = dev.download(dst)
    for o in (0, 8192, 61440):
        np.testing.assert_array_equal(out[o:o + 4096], data[o:o + 4096])
    assert not out[4096:8192].any()
