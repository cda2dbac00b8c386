"""Device-function calls through the one loader path: what the driver reads from a cubin about
calls (ptxas's ``$kernel$function`` copies), the call stack it gives such kernels (CUDA's
cudaLimitStackSize model), function pointers as ptxas links them (descriptors into constant bank
2), and the mock GPU running all of it inside the local memory the driver programmed.

The facts compared against come from ptxas 13.0's committed cubins (tests/data/nvcc_corpus)."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

import hwdrv
from hwdrv.mock.nvidia import ptx
from hwdrv.nvidia import mockcubin
from hwdrv.nvidia.cubin import CubinImage
from hwdrv.nvidia.device import DEFAULT_STACK_LIMIT
from hwdrv.nvidia.program import STACK_RESERVE

from test_ptx_helpers import gpu  # noqa: F401

CORPUS = Path(__file__).parent / "data" / "nvcc_corpus"
HEAD = ".version 8.0\n.target sm_90\n.address_size 64\n"


def _pair(module: str) -> tuple[CubinImage, CubinImage]:
    real = CubinImage((CORPUS / f"{module}.cubin").read_bytes())
    mock = CubinImage(mockcubin.build((CORPUS / f"{module}.ptx").read_bytes()))
    return real, mock


@pytest.mark.parametrize("module", ["funcs", "mixed_support"])
def test_mock_cubin_says_which_kernels_call_as_ptxas_does(module):
    real, mock = _pair(module)
    calls = {k: real.kernel(k).calls for k in real.kernels}
    assert {k: mock.kernel(k).calls for k in real.kernels} == calls
    assert calls["recursive_fib" if module == "funcs" else "fnptr"]          # both kinds occur
    assert not calls["local_lookup" if module == "funcs" else "tiles"]


def test_function_pointer_initialisers_are_ptxas_descriptors():
    """``ops = {_Z4addfii, _Z4mulfii}`` and the vtables: the same bytes as ptxas's
    .nv.global.init, and a constant bank 2 of the same shape per kernel."""
    real, mock = _pair("mixed_support")

    def init_bytes(img, name):
        sym = next(s for s in img.symbols if s.name == name)
        return img.section(".nv.global.init").data[sym.value:sym.value + sym.size]
    for name in ("ops", "_ZTV6Square", "_ZTV4Disc"):
        assert init_bytes(mock, name) == init_bytes(real, name)
    for k in ("fnptr", "fnptr_divergent", "virtual_calls"):
        r = real.section(f".nv.constant2.{k}").data
        m = mock.section(f".nv.constant2.{k}").data
        assert len(m) == len(r) and m[:8] == r[:8]          # slot 0, then one slot per function


@pytest.fixture
def dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()


def _slm(per_thread: int) -> int:
    return -(-(per_thread + STACK_RESERVE) // 16) * 16


def test_driver_gives_calling_kernels_the_stack_limit(dev):
    """Local memory per thread = frame + the device's stack limit for a kernel that calls (ptxas
    reports 0 stack for recursion), the cubin's figure otherwise -- for ptxas's cubin and the
    mock's alike, through the same NVProgram."""
    assert dev.stack_limit == DEFAULT_STACK_LIMIT == 1024
    real = (CORPUS / "funcs.cubin").read_bytes()
    fib = dev.program(real, "recursive_fib")
    assert fib.info.min_stack == 0 and fib.stack_bytes == 1024
    assert fib.slm_per_thread == _slm(fib.info.frame_size + 1024)
    sort = dev.program(real, "local_sort")
    assert sort.slm_per_thread == _slm(max(sort.info.min_stack, 48 + 1024))
    lookup = dev.program(real, "local_lookup")
    assert lookup.stack_bytes == 0 and lookup.slm_per_thread == 0      # ptxas: no local memory at all
    image = dev.compiler.compile((CORPUS / "funcs.ptx").read_text())
    mfib = dev.program(image, "recursive_fib")
    assert mfib.stack_bytes == 1024 and mfib.slm_per_thread == _slm(mfib.info.frame_size + 1024)


DEEP = HEAD + """
.func (.param .b32 ret) down(.param .b32 n)
{
    .reg .b32 %r<4>;
    .reg .pred %p<2>;
    ld.param.u32 %r1, [n];
    setp.eq.u32 %p1, %r1, 0;
    @%p1 bra DONE;
    sub.u32 %r2, %r1, 1;
    {
    .param .b32 a0;
    .param .b32 r0;
    st.param.b32 [a0], %r2;
    call.uni (r0), down, (a0);
    ld.param.b32 %r3, [r0];
    }
    add.u32 %r3, %r3, %r1;
    st.param.b32 [ret], %r3;
    ret;
DONE:
    st.param.b32 [ret], 0;
    ret;
}
.visible .entry deep(.param .u64 out, .param .u32 depth)
{
    .reg .b32 %r<3>;
    .reg .b64 %rd<2>;
    ld.param.u64 %rd1, [out];
    ld.param.u32 %r1, [depth];
    {
    .param .b32 a0;
    .param .b32 r0;
    st.param.b32 [a0], %r1;
    call.uni (r0), down, (a0);
    ld.param.b32 %r2, [r0];
    }
    st.global.u32 [%rd1], %r2;
    ret;
}
"""


def _run_deep(dev, depth: int) -> int:
    prog = dev.program(dev.compiler.compile(DEEP), "deep")
    out = dev.alloc(4)
    sig = dev.signal(0)
    dev.compute_queue().exec(prog, grid=(1,), block=(32,), args=[out, depth]).signal(sig, 1).submit()
    sig.wait(1, timeout=60)
    return int(dev.download(out, dtype=np.uint32)[0])


def test_recursion_past_the_stack_limit_faults_and_a_raised_limit_runs(dev):
    """Frames beyond the local memory the driver programmed fault, as on the GPU; raising the
    device's stack limit (for programs loaded afterwards) makes room."""
    assert _run_deep(dev, 10) == 55
    with pytest.raises(hwdrv.GPUHang) as ei:
        _run_deep(dev, 200)
    assert "stack overflow" in str(ei.value) or "stack overflow" in "\n".join(ei.value.report.kernel_log)
    dev.recover()
    dev.stack_limit = 16 << 10
    assert _run_deep(dev, 200) == 200 * 201 // 2


def test_local_variable_of_a_function_uses_the_launch_local_window(gpu):
    """A .func's own .local variable, addressed generically, goes through the local window the
    launch programmed (not the interpreter's default one)."""
    m = ptx.parse(HEAD + """
.func (.param .b32 ret) keep(.param .b32 v)
{
    .local .align 4 .b8 buf[8];
    .reg .b32 %r<4>;
    ld.param.u32 %r1, [v];
    st.u32 [buf+4], %r1;
    ld.local.u32 %r2, [buf+4];
    st.param.b32 [ret], %r2;
    ret;
}
.visible .entry k(.param .u64 out)
{
    .reg .b32 %r<3>;
    .reg .b64 %rd<4>;
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    {
    .param .b32 a0;
    .param .b32 r0;
    st.param.b32 [a0], %r1;
    call.uni (r0), keep, (a0);
    ld.param.b32 %r2, [r0];
    }
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r2;
    ret;
}
""")
    window = ptx.LOCAL_WINDOW + (64 << 20)          # not the interpreter's default window
    config = ptx.AddressConfig(local_window=window, local_window_size=ptx.LOCAL_WINDOW_BYTES,
                               stack_pointer=ptx.LOCAL_WINDOW_BYTES - STACK_RESERVE, local_high=STACK_RESERVE + 1024)
    out = gpu.alloc(4 * 32)
    gpu.run(m, "k", 1, 32, [out], address_config=config)
    assert gpu.download(out, np.uint32, 32).tolist() == list(range(32))
    # the same frame below a local memory too small for the call: a stack overflow, not a silent grow
    small = ptx.AddressConfig(local_window=window, local_window_size=ptx.LOCAL_WINDOW_BYTES,
                              stack_pointer=ptx.LOCAL_WINDOW_BYTES - STACK_RESERVE, local_high=STACK_RESERVE + 16)
    with pytest.raises(ptx.AddressSpaceFault, match="stack overflow"):
        gpu.run(m, "k", 1, 32, [out], address_config=small)


def test_a_driver_that_gives_no_call_stack_fails_on_the_mock(dev):
    """The planted mistake: no stack for a calling kernel (as before the driver read
    ``KernelInfo.calls``) -- the corpus's recursive_fib faults instead of running."""
    dev.stack_limit = 0
    prog = dev.program(dev.compiler.compile((CORPUS / "funcs.ptx").read_text()), "recursive_fib")
    assert prog.stack_bytes == 0
    k = dev.alloc(4 * 32)
    dev.upload(k, np.full(32, 6, np.int32))
    out = dev.alloc(8 * 32)
    sig = dev.signal(0)
    dev.compute_queue().exec(prog, grid=(1,), block=(32,), args=[k, out, 32]).signal(sig, 1).submit()
    with pytest.raises(hwdrv.GPUHang) as ei:
        sig.wait(1, timeout=60)
    # its call slots and frames lie outside the thread's local memory: OOR_ADDR, as on the GPU
    assert "OOR_ADDR" in str(ei.value) and "recursive_fib" in str(ei.value)
