"""A module loads if it parses: tests/data/nvcc_corpus/mixed_support.cu (nvcc 13, sm_90) holds
kernels the mock cannot run (texture and surface objects) next to kernels it can (printf,
assert, device malloc/free, function pointers, virtual calls, clusters, libdevice math,
cooperative-groups tile reductions, clock64, programmatic dependent launch). Every kernel that can run does; each one
that cannot fails only its own launch, naming the instruction, kernel and PTX line."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import hwdrv
from hwdrv.mock.nvidia import ptx
from hwdrv.mock.nvidia.ptx import calls

from test_ptx_helpers import Gpu, assert_launch_refused

PTX = (Path(__file__).parent / "data" / "nvcc_corpus" / "mixed_support.ptx").read_text()
# kernel -> (how its first refused instruction starts, a word near it, the word the fault names)
REFUSED = {"texobj": ("tex.", "tex.", "tex"),
           "surfobj": ("sust.", "sust.", "sust")}
RUNS = {"printer", "asserter", "printf_formats", "fnptr", "fnptr_divergent", "virtual_calls", "heap", "heap_keep",
        "heap_sum_free", "clustered", "mathy", "mathd", "tiles", "clocks", "pdl"}


def _line_of(kernel: str) -> int:
    """The PTX line of ``kernel``'s first refused instruction, found in the text (not by the
    parser): nvcc writes a call's target on the line after ``call.uni``."""
    prefix, near, _ = REFUSED[kernel]
    lines = PTX.splitlines()
    start = next(i for i, t in enumerate(lines) if t.startswith(".visible .entry") and f" {kernel}(" in t)
    return next(i for i in range(start, len(lines))
                if lines[i].lstrip().startswith(prefix) and near in lines[i] + lines[i + 1] + lines[i + 2]) + 1


@pytest.fixture(scope="module")
def module():
    return ptx.parse(PTX)


def test_module_loads_and_sorts_kernels(module):
    assert set(module.entries) == set(REFUSED) | RUNS
    assert {k for k, e in module.entries.items() if e.unsupported} == set(REFUSED)


@pytest.mark.parametrize("kernel", sorted(REFUSED))
def test_unsupported_kernel_fails_its_launch(module, kernel):
    assert_launch_refused(module, kernel, _line_of(kernel), REFUSED[kernel][2])


def _globals(gpu: Gpu, module) -> dict[str, int]:
    """Place the module's .global variables (libdevice tables, strings, function-pointer tables
    and vtables) the way a loader would: allocate, then write the relocated images."""
    out = {name: gpu.alloc(max(v.size, 1)) for name, v in module.global_variables.items()}
    for name, va in out.items():
        gpu.pt.write(va, module.global_image(name, out))
    return out


def test_function_pointers_and_virtual_calls(module):
    g = Gpu(8 << 20)
    try:
        ga = _globals(g, module)
        out = g.alloc(4 * 64)
        t = np.arange(64)
        g.run(module, "fnptr", 1, 64, [out, 0], global_addresses=ga)            # ops[0] = add
        assert g.download(out, np.int32, 64).tolist() == (t + 3).tolist()
        g.run(module, "fnptr", 1, 64, [out, 1], global_addresses=ga)            # ops[1] = mul
        assert g.download(out, np.int32, 64).tolist() == (t * 3).tolist()
        g.run(module, "fnptr_divergent", 1, 64, [out], global_addresses=ga)     # both in one warp
        assert g.download(out, np.int32, 64).tolist() == np.where(t & 1, t * 3, t + 3).tolist()
        x = np.linspace(-2, 2, 64).astype(np.float32)
        g.run(module, "virtual_calls", 1, 64, [g.upload(x), out], global_addresses=ga)
        x64 = x.astype(np.float64)
        want = np.where(t % 3 == 0, x64 * x64, 3 * x64 * x64).astype(np.float32)
        np.testing.assert_allclose(g.download(out, np.float32, 64), want, rtol=1e-6)
    finally:
        g.close()


def test_device_heap_lives_across_launches(module):
    """malloc in one kernel, free in the next, from one heap the launcher keeps; blocks are
    16-byte aligned and disjoint; a heap too small gives NULL, as CUDA's malloc does."""
    g = Gpu(8 << 20)
    try:
        heap_va = g.alloc(1 << 16)
        heap = ptx.DeviceHeap(heap_va, 1 << 16)
        slot, out, n = g.alloc(8 * 64), g.alloc(4 * 64), 20
        g.run(module, "heap_keep", 1, 64, [slot, n], heap=heap)
        ptrs = g.download(slot, np.uint64, 64)
        assert all(p % 16 == 0 and heap_va <= p < heap_va + (1 << 16) for p in ptrs.tolist())
        assert len(set(ptrs.tolist())) == 64 and np.diff(np.sort(ptrs)).min() >= n * 4
        g.run(module, "heap_sum_free", 1, 64, [slot, out, n], heap=heap)
        assert g.download(out, np.int32, 64).tolist() == [t * n * (n - 1) // 2 for t in range(64)]
        assert heap.free_blocks == [(heap_va, 1 << 16)] and not heap.used        # all returned
        small = ptx.DeviceHeap(heap_va, 10 * 80)                                 # room for 10 blocks of 80
        g.run(module, "heap_keep", 1, 64, [slot, n], heap=small)
        assert int((g.download(slot, np.uint64, 64) != 0).sum()) == 10
    finally:
        g.close()


def test_free_of_a_foreign_pointer_is_illegal(module):
    g = Gpu(1 << 20)
    try:
        heap = ptx.DeviceHeap(g.alloc(4096), 4096)
        slot = g.upload(np.full(32, 0x2000_0040, np.uint64))
        with pytest.raises(ptx.IllegalInstruction, match="not a pointer malloc returned"):
            g.run(module, "heap_sum_free", 1, 32, [slot, g.alloc(128), 0], heap=heap)
    finally:
        g.close()


def test_indirect_call_to_a_non_function_is_illegal():
    text = """.version 8.0
.target sm_90
.address_size 64
.func (.param .b32 r) f(.param .b32 a)
{
    .reg .b32 %r<2>;
    ld.param.u32 %r0, [a];
    st.param.b32 [r], %r0;
    ret;
}
.visible .entry k(.param .u64 target)
{
    .reg .b64 %rd<2>;
    .reg .b32 %r<2>;
    ld.param.u64 %rd0, [target];
    {
    .param .b32 param0;
    st.param.b32 [param0], 1;
    .param .b32 retval0;
    proto : .callprototype (.param .b32 _) _ (.param .b32 _);
    call (retval0), %rd0, (param0), proto;
    ld.param.b32 %r0, [retval0];
    }
    ret;
}
"""
    m = ptx.parse(text)
    g = Gpu(1 << 20)
    try:
        g.run(m, "k", 1, 32, [calls.function_address(list(m.parsed.functions).index("f"))])
        with pytest.raises(ptx.IllegalInstruction, match="indirect call to 0x1234: not the address of a function"):
            g.run(m, "k", 1, 32, [0x1234])
    finally:
        g.close()


def test_supported_kernels_of_the_same_module_run(module):
    g = Gpu(8 << 20)
    try:
        ga = _globals(g, module)
        x = np.linspace(0.1, 3.0, 64)
        buf = g.upload(x.astype(np.float32))
        g.run(module, "mathy", 1, 64, [buf], global_addresses=ga)
        ref = [math.sin(v) + math.exp(v) + math.log(v + 2) + v ** 1.5 + math.erf(v) + math.tanh(v)
               for v in x.astype(np.float32).astype(float)]
        np.testing.assert_allclose(g.download(buf, np.float32, 64), ref, rtol=2e-6)
        bufd = g.upload(x)
        g.run(module, "mathd", 1, 64, [bufd], global_addresses=ga)
        refd = [math.sin(v) + math.exp(v) + math.log(v + 2) + v ** 1.5 + math.erf(v) for v in x]
        np.testing.assert_allclose(g.download(bufd, np.float64, 64), refd, rtol=1e-14)
        out = g.alloc(4 * 256)
        g.run(module, "tiles", 1, 64, [out], global_addresses=ga)
        ranks = np.arange(64)
        assert g.download(out, np.int32, 64).tolist() == [int(ranks[r // 8 * 8:r // 8 * 8 + 8].sum()) for r in ranks]
        g.run(module, "clustered", 4, 64, [out], global_addresses=ga)     # __cluster_dims__(2, 1, 1)
        assert g.download(out, np.int32, 4 * 64).reshape(4, 64)[:, 0].tolist() == [0, 1, 0, 1]
        clk = g.alloc(8 * 32)
        g.run(module, "clocks", 1, 32, [clk])
        assert g.download(clk, np.int64, 32).tolist() == [1] * 32        # clock64 advanced
    finally:
        g.close()


def test_printf_lines_in_lane_order(module):
    g = Gpu(8 << 20)
    try:
        ga = _globals(g, module)
        d = np.array([1.5, -2.25, 3.14159, 1e-3, 2.0 ** -30, 12345.678])
        res = g.run(module, "printf_formats", 1, 6, [g.upload(d), 1 << 40], global_addresses=ga)
        # what C's printf makes of the same values (Python's % follows C's conversions)
        want = ["t=%d u=%u x=%08x f=%.3f e=%e g=%g s=%s c=%c ll=%d %%\n"
                % (t - 2, (t * 1000000000) % 2**32, t * 0xABC, d[t], d[t] * 1e10, float(np.float32(d[t])),
                   "odd" if t & 1 else "even", chr(65 + t), (1 << 40) * t) for t in range(6)]
        assert res.output == want
        assert g.run(module, "printer", 1, 3, [g.alloc(64)], global_addresses=ga).output == \
            ["thread 0\n", "thread 1\n", "thread 2\n"]
    finally:
        g.close()


def test_assert_passes_or_faults_naming_the_expression(module):
    src = (Path(__file__).parent / "data" / "nvcc_corpus" / "mixed_support.cu").read_text().splitlines()
    line = next(i for i, t in enumerate(src) if "assert(out != nullptr)" in t) + 1
    g = Gpu(8 << 20)
    try:
        ga = _globals(g, module)
        out = g.alloc(4 * 32)
        g.run(module, "asserter", 1, 32, [out], global_addresses=ga)
        assert g.download(out, np.int32, 32).tolist() == [2] * 32
        with pytest.raises(ptx.DeviceAssert) as ei:
            g.run(module, "asserter", 1, 32, [0], global_addresses=ga)
        assert isinstance(ei.value, ptx.IllegalInstruction)          # the GPU traps
        assert f"mixed_support.cu:{line}: void asserter(int *): Assertion `out != nullptr` failed." in str(ei.value)
        assert ei.value.entry == "asserter" and ei.value.thread == (0, 0, 0)
    finally:
        g.close()


def test_on_mock_nvidia_one_refused_kernel_leaves_the_others_working():
    """The issue's scenario through the public API: one module, one image; the kernel that the
    mock cannot run faults its own launch, and the module's other kernels run before and after."""
    dev = hwdrv.open_device("mock:nvidia")
    try:
        image = dev.compiler.compile(PTX)
        tiles, pdl, tex = (dev.program(image, k) for k in ("tiles", "pdl", "texobj"))
        out = dev.alloc(4 * 64)

        def run(prog, args):
            sig = dev.signal(0)
            dev.compute_queue().exec(prog, grid=(1,), block=(64,), args=args).signal(sig, 1).submit()
            sig.wait(1, timeout=60)

        run(tiles, [out])
        ranks = np.arange(64)
        assert dev.download(out, dtype=np.int32).tolist() == [int(ranks[r // 8 * 8:r // 8 * 8 + 8].sum()) for r in ranks]
        with pytest.raises(hwdrv.GPUHang):
            run(tex, [0, out])
        dev.recover()
        run(pdl, [out])
        assert dev.download(out, dtype=np.int32).tolist() == [3] * 64
    finally:
        dev.close()
