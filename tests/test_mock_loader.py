"""The mock runs what the driver loaded and programmed: a wrong shared/local window, stack
pointer, SLM size, local size, shared size, register count or relocation -- planted by patching
what the NVIDIA backend writes -- makes the kernel fail on mock:nvidia as it would on the GPU,
while the unpatched driver gets the right answer (so each test can fail both ways).

Before the mock loaded cubin-shaped binaries these all passed: the mock ignored the windows, the
constant-bank-0 driver words, the SLM and QMD sizes, and had no relocations to get wrong."""
from __future__ import annotations

import numpy as np
import pytest

import hwdrv
from hwdrv.errors import GPUHang
from hwdrv.nvidia import cubin as cubin_mod
from hwdrv.nvidia import device as nvdevice
from hwdrv.nvidia import program as nvprogram
from hwdrv.nvidia.program import CB0_STACK_POINTER
from hwdrv.nvidia.queue import NVComputeQueue

XID_GR_EXCEPTION, XID_MMU_FAULT = 13, 31
ESR_OOR_ADDR = 0x0E           # warp ESR "out of range address" (hwdrv/mock/nvidia/esr_codes.py)
N = 128

HEADER = ".version 8.0\n.target sm_90\n.address_size 64\n"
# out[i] = 127 - i through shared memory addressed generically (cvta.shared: constant bank 0's
# shared base; the store is routed by the SET_SHADER_SHARED_MEMORY_WINDOW the driver sent)
SMEM = HEADER + """
.visible .entry smem_rev(.param .u64 out)
{
  .reg .b32 %r<6>; .reg .b64 %rd<8>;
  .shared .align 4 .b8 buf[512];
  ld.param.u64 %rd1, [out];
  mov.u32 %r1, %tid.x;
  mov.u64 %rd2, buf;
  cvta.shared.u64 %rd3, %rd2;
  mul.wide.u32 %rd4, %r1, 4;
  add.s64 %rd5, %rd3, %rd4;
  st.u32 [%rd5], %r1;
  bar.sync 0;
  mov.u32 %r4, 127;
  sub.u32 %r2, %r4, %r1;
  mul.wide.u32 %rd6, %r2, 4;
  add.s64 %rd7, %rd3, %rd6;
  ld.u32 %r3, [%rd7];
  add.s64 %rd5, %rd1, %rd4;
  st.global.u32 [%rd5], %r3;
  ret;
}
"""
# out[i] = (63 + i) + (0 + i) through a 256-byte .local array, written generically
LMEM = HEADER + """
.visible .entry lmem(.param .u64 out)
{
  .local .align 4 .b8 depot[256];
  .reg .b32 %r<8>; .reg .b64 %rd<8>; .reg .pred %p<2>;
  ld.param.u64 %rd1, [out];
  mov.u32 %r1, %tid.x;
  mov.u64 %rd2, depot;
  cvta.local.u64 %rd3, %rd2;
  mov.u32 %r2, 0;
LOOP:
  mul.wide.u32 %rd4, %r2, 4;
  add.s64 %rd5, %rd3, %rd4;
  add.u32 %r3, %r2, %r1;
  st.u32 [%rd5], %r3;
  add.u32 %r2, %r2, 1;
  setp.lt.u32 %p1, %r2, 64;
  @%p1 bra LOOP;
  ld.local.u32 %r4, [depot+252];
  ld.u32 %r5, [%rd3];
  add.u32 %r6, %r4, %r5;
  mul.wide.u32 %rd6, %r1, 4;
  add.s64 %rd7, %rd1, %rd6;
  st.global.u32 [%rd7], %r6;
  ret;
}
"""
# out[i] = table[i % 4]; counter counts the threads (addresses from relocated constant bank 4)
GLOBALS = HEADER + """
.global .align 4 .u32 counter;
.global .align 4 .u32 table[4] = {10, 20, 30, 40};
.visible .entry use_globals(.param .u64 out)
{
  .reg .b32 %r<6>; .reg .b64 %rd<8>;
  ld.param.u64 %rd1, [out];
  mov.u32 %r1, %tid.x;
  atom.global.add.u32 %r2, [counter], 1;
  and.b32 %r4, %r1, 3;
  mul.wide.u32 %rd2, %r4, 4;
  mov.u64 %rd3, table;
  add.s64 %rd4, %rd3, %rd2;
  ld.global.u32 %r3, [%rd4];
  mul.wide.u32 %rd5, %r1, 4;
  add.s64 %rd6, %rd1, %rd5;
  st.global.u32 [%rd6], %r3;
  ret;
}
"""
EXPECTED = {"smem_rev": 127 - np.arange(N), "lmem": 63 + 2 * np.arange(N),
            "use_globals": np.array([10, 20, 30, 40] * (N // 4))}
SOURCES = {"smem_rev": SMEM, "lmem": LMEM, "use_globals": GLOBALS}


@pytest.fixture
def dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


def load(dev, name: str):
    return dev.program(dev.compiler.compile(SOURCES[name]), name)


def run(dev, prog) -> np.ndarray:
    out = dev.alloc(N * 4)
    try:
        s = dev.signal(0)
        dev.compute_queue().exec(prog, grid=(1,), block=(N,), args=[out]).signal(s, 1).submit()
        s.wait(1, timeout=30)
        return dev.download(out, dtype=np.uint32)
    finally:
        out.free()


def fails(dev, prog) -> "hwdrv.hang.HangReport":
    with pytest.raises(GPUHang) as e:
        run(dev, prog)
    return e.value.report


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_driver_as_written_gets_the_right_answer(dev, name):
    prog = load(dev, name)
    assert prog.regs > 0 and prog.image.kernel(name).regs == prog.regs
    np.testing.assert_array_equal(run(dev, prog), EXPECTED[name])


def test_wrong_shared_window_in_constant_bank_0_faults(dev, monkeypatch):
    # the driver writes a shared base into c[0][0x18] that is not the window it programmed
    monkeypatch.setattr(dev, "shared_window", dev.shared_window + (8 << 32))
    rep = fails(dev, load(dev, "smem_rev"))
    assert rep.error.code == XID_MMU_FAULT                 # the "shared" store went to global memory
    assert any(f.address >> 32 == (dev.shared_window >> 32) for f in rep.faults)


def test_wrong_shared_window_method_faults(monkeypatch):
    # the SET_SHADER_SHARED_MEMORY_WINDOW method says one thing, constant bank 0 another
    monkeypatch.setattr(nvdevice, "SHARED_WINDOW", nvdevice.SHARED_WINDOW + (2 << 32))
    d = hwdrv.open_device("mock:nvidia")
    try:
        rep = fails(d, load(d, "smem_rev"))
        assert rep.error.code == XID_MMU_FAULT
    finally:
        d.close()


def test_shared_window_not_4gib_aligned_fails_the_launch(monkeypatch):
    monkeypatch.setattr(nvdevice, "SHARED_WINDOW", nvdevice.SHARED_WINDOW + 0x1000)
    d = hwdrv.open_device("mock:nvidia")
    try:
        monkeypatch.setattr(d, "shared_window", nvdevice.SHARED_WINDOW)
        rep = fails(d, load(d, "smem_rev"))
        assert rep.error.code == XID_GR_EXCEPTION and not rep.wave_errors      # refused before any warp ran
    finally:
        d.close()


def test_wrong_local_window_in_constant_bank_0_faults(dev, monkeypatch):
    monkeypatch.setattr(dev, "local_window", dev.local_window + (16 << 20))
    rep = fails(dev, load(dev, "lmem"))
    assert rep.error.code == XID_MMU_FAULT


def test_slm_smaller_than_the_driver_said_faults(dev, monkeypatch):
    # SET_SHADER_LOCAL_MEMORY_NON_THROTTLED says an eighth of what the kernel's local memory needs
    real = NVComputeQueue._emit_slm
    monkeypatch.setattr(NVComputeQueue, "_emit_slm", lambda q, va, per_tpc: real(q, va, per_tpc // 8))
    rep = fails(dev, load(dev, "lmem"))
    w = rep.wave_errors[0]
    assert rep.error.code == XID_GR_EXCEPTION and w.status["HWW_WARP_ESR"] == ESR_OOR_ADDR
    # the SM's PC is the faulting line's address in the kernel's text: the report names the line
    assert w.source_line == "PTX line 18: st.u32 [%rd5], %r3;", w.source_line


def test_local_size_in_qmd_too_small_faults(dev):
    prog = load(dev, "lmem")
    prog.slm_per_thread = 0x100           # QMD SHADER_LOCAL_MEMORY_HIGH_SIZE below frame + reserve
    rep = fails(dev, prog)
    assert rep.error.code == XID_GR_EXCEPTION and rep.wave_errors[0].status["HWW_WARP_ESR"] == ESR_OOR_ADDR


def test_wrong_stack_pointer_faults(dev):
    prog = load(dev, "lmem")
    # c[0][0x28]: a stack pointer at the bottom of the window instead of its top
    prog.cb0_template[CB0_STACK_POINTER:CB0_STACK_POINTER + 4] = np.frombuffer(
        np.uint32(0x8000).tobytes(), np.uint8)
    rep = fails(dev, prog)
    assert rep.error.code == XID_GR_EXCEPTION and rep.wave_errors[0].status["HWW_WARP_ESR"] == ESR_OOR_ADDR


def test_wrong_relocation_faults(dev, monkeypatch):
    # the loader patches the addresses of `counter`/`table` into constant bank 4 wrongly
    real = cubin_mod.CubinImage._symbol_address
    monkeypatch.setattr(cubin_mod.CubinImage, "_symbol_address",
                        lambda self, sym, code_va, global_va: real(self, sym, code_va, global_va) + (1 << 45))
    rep = fails(dev, load(dev, "use_globals"))
    assert rep.error.code == XID_MMU_FAULT


def test_register_count_zero_fails_the_launch(dev):
    prog = load(dev, "smem_rev")
    prog.regs = 0
    rep = fails(dev, prog)
    assert rep.error.code == XID_GR_EXCEPTION and not rep.wave_errors          # the scheduler refused it


def test_shared_size_in_qmd_too_small_faults(dev):
    prog = load(dev, "smem_rev")
    prog.shared_static = 0                # the QMD then gives the CTA only the 1 KiB reserve
    rep = fails(dev, prog)
    assert rep.error.code == XID_GR_EXCEPTION and rep.wave_errors[0].status["HWW_WARP_ESR"] == ESR_OOR_ADDR


def test_barrier_count_from_the_binary_and_too_few_fail(dev, monkeypatch):
    two = dev.compiler.compile(SMEM.replace("bar.sync 0", "bar.sync 1"))    # named barrier 1: two needed
    prog = dev.program(two, "smem_rev")
    assert prog.info.barriers == 2
    np.testing.assert_array_equal(run(dev, prog), EXPECTED["smem_rev"])
    real = nvprogram.build_template
    monkeypatch.setattr(nvprogram, "build_template", lambda **kw: real(**{**kw, "barriers": 1}))
    rep = fails(dev, dev.program(two, "smem_rev"))
    assert rep.error.code == XID_GR_EXCEPTION and not rep.wave_errors


def test_slm_backing_not_mapped_faults(dev, monkeypatch):
    # SET_SHADER_LOCAL_MEMORY_A/B point somewhere nothing is mapped
    real = NVComputeQueue._emit_slm
    monkeypatch.setattr(NVComputeQueue, "_emit_slm", lambda q, va, per_tpc: real(q, va + (1 << 40), per_tpc))
    rep = fails(dev, load(dev, "lmem"))
    assert rep.error.code == XID_MMU_FAULT
