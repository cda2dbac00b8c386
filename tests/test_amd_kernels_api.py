"""Every clang-19 OpenCL kernel of tests/data/amd/kernels through hwdrv's public API on mock:amd:
``dev.program(binary, name)``, buffers from ``dev.alloc``/``upload``, a compute queue's ``exec``
(OpenCL non-uniform global sizes through ``exec_global``), a signal, ``download`` - against numpy
(kernels.json / cases.py, written from the kernels' OpenCL semantics, never from hwdrv)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import hwdrv

KDIR = Path(__file__).parent / "data" / "amd" / "kernels"
_spec = importlib.util.spec_from_file_location("amd_kernel_cases_api", KDIR / "cases.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)
CASES = cases.load()


@pytest.fixture(scope="module")
def dev():
    d = hwdrv.open_device("mock:amd")
    d.loaded = {}
    yield d
    d.close()


def _program(dev, case):
    key = (case["file"], case["kernel"])
    if key not in dev.loaded:
        binary = dev.compiler.compile((KDIR / case["file"]).read_bytes())
        dev.loaded[key] = dev.program(binary, case["kernel"])
    return dev.loaded[key]


@pytest.mark.parametrize("case", CASES, ids=[cases.case_id(c) for c in CASES])
def test_kernel_through_the_api_matches_numpy(dev, case):
    prog = _program(dev, case)
    inputs = cases.make_inputs(case)
    args, bufs = [], {}
    for a in case["args"]:
        v = inputs[a["name"]]
        if a["kind"] == "buffer":
            buf = dev.alloc(max(v.nbytes, 4))
            dev.upload(buf, v)
            bufs[a["name"]] = (buf, v.dtype, v.size)
            args.append(buf)
        else:
            args.append(v)
    glob, loc = tuple(case["global"]), tuple(case["local"])
    sig = dev.signal(0)
    q = dev.compute_queue()
    if any(g % b for g, b in zip(glob, loc)):
        q.exec_global(prog, glob, loc, args)
    else:
        q.exec(prog, grid=tuple(g // b for g, b in zip(glob, loc)), block=loc, args=args)
    q.signal(sig, 1).submit()
    sig.wait(1, timeout=120)
    outputs = {n: dev.download(buf, cnt * dt.itemsize, dtype=dt).copy() for n, (buf, dt, cnt) in bufs.items()}
    for buf, _, _ in bufs.values():
        buf.free()
    cases.compare(case, inputs, outputs)

