"""Every clang-19 OpenCL kernel of tests/data/amd/kernels (built by A2's build.sh, expectations in
kernels.json as numpy formulas) runs on the RDNA3 emulator and matches numpy."""
from __future__ import annotations

import importlib.util
import time

import pytest

from amd_emu_harness import KERNELS, EmuMachine

_spec = importlib.util.spec_from_file_location("amd_kernel_cases", KERNELS / "cases.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)
CASES = cases.load()


@pytest.mark.parametrize("case", CASES, ids=[cases.case_id(c) for c in CASES])
def test_kernel_matches_numpy(case):
    inputs = cases.make_inputs(case)
    m = EmuMachine()
    args, bufs = [], {}
    for a in case["args"]:
        v = inputs[a["name"]]
        if a["kind"] == "buffer":
            va, view = m.upload(v)
            bufs[a["name"]] = (view, v.dtype, v.size)
            args.append(va)
        else:
            args.append(v)
    m.launch(KERNELS / case["file"], case["kernel"], args, case["global"], case["local"],
             deadline=time.monotonic() + 120)
    outputs = {name: view[:n * dt.itemsize].view(dt).copy() for name, (view, dt, n) in bufs.items()}
    cases.compare(case, inputs, outputs)
