"""A module loads if it parses: tests/data/nvcc_corpus/mixed_support.cu (nvcc 13, sm_90) holds
kernels the mock cannot run (printf, assert, device malloc, an indirect call, texture and
surface objects, clusters) next to kernels it can (libdevice math, cooperative-groups tile
reductions, clock64, programmatic dependent launch). Every kernel that can run does; each one
that cannot fails only its own launch, naming the instruction, kernel and PTX line."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import hwdrv
from hwdrv.mock.nvidia import ptx

from test_ptx_helpers import Gpu, assert_launch_refused

PTX = (Path(__file__).parent / "data" / "nvcc_corpus" / "mixed_support.ptx").read_text()
# kernel -> (how its first refused instruction starts, a word near it, the word the fault names)
REFUSED = {"printer": ("call", "vprintf", "vprintf"), "asserter": ("call", "__assertfail", "__assertfail"),
           "fnptr": ("call (retval0)", "%rd", "indirect call"), "texobj": ("tex.", "tex.", "tex"),
           "surfobj": ("sust.", "sust.", "sust"), "heap": ("call", "malloc", "malloc"),
           "clustered": ("barrier.cluster", "barrier.cluster", "barrier")}
RUNS = {"mathy", "mathd", "tiles", "clocks", "pdl"}


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
    """Place the module's .global variables (libdevice tables) the way a loader would."""
    out = {}
    for name, v in module.global_variables.items():
        out[name] = gpu.upload(np.frombuffer(v.init or bytes(v.size), np.uint8))
    return out


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
        out = g.alloc(4 * 64)
        g.run(module, "tiles", 1, 64, [out], global_addresses=ga)
        ranks = np.arange(64)
        assert g.download(out, np.int32, 64).tolist() == [int(ranks[r // 8 * 8:r // 8 * 8 + 8].sum()) for r in ranks]
        clk = g.alloc(8 * 32)
        g.run(module, "clocks", 1, 32, [clk])
        assert g.download(clk, np.int64, 32).tolist() == [1] * 32        # clock64 advanced
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
