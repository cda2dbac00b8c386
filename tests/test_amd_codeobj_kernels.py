"""The committed kernel cases agree with what LLVM says about the code objects.

kernels.json is written by hand; llvm_facts.json is llvm-readelf-19's decode of each code object's
metadata note (recorded by build.sh). Each case must name a kernel that exists, pass exactly its
explicit arguments with the sizes LLVM laid out, and produce expected outputs of the buffer's shape.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

KDIR = Path(__file__).parent / "data" / "amd" / "kernels"
_spec = importlib.util.spec_from_file_location("amd_kernel_cases", KDIR / "cases.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)
FACTS = json.loads((KDIR / "llvm_facts.json").read_text())
CASES = cases.load()


def test_at_least_30_kernels_each_with_a_case():
    kernels = {(f, k) for f, v in FACTS.items() if "metadata" in v for k in [m[".name"] for m in v["metadata"]["amdhsa.kernels"]]}
    assert len(kernels) >= 30
    assert {(c["file"], c["kernel"]) for c in CASES} == kernels


@pytest.mark.parametrize("case", CASES, ids=cases.case_id)
def test_case_matches_llvm_metadata(case):
    meta = {k[".name"]: k for k in FACTS[case["file"]]["metadata"]["amdhsa.kernels"]}[case["kernel"]]
    explicit = [a for a in meta[".args"] if not a[".value_kind"].startswith("hidden_")]
    assert len(explicit) == len(case["args"])
    for want, arg in zip(explicit, case["args"]):
        if arg["kind"] == "buffer":
            assert want[".value_kind"] == "global_buffer" and want[".size"] == 8
        else:
            assert want[".value_kind"] == "by_value" and want[".size"] == np.dtype(arg["dtype"]).itemsize
    assert all(g >= 1 and l >= 1 for g, l in zip(case["global"], case["local"]))
    assert int(np.prod(case["local"])) <= meta[".max_flat_workgroup_size"]


@pytest.mark.parametrize("case", CASES, ids=cases.case_id)
def test_expected_outputs_are_well_formed(case):
    inputs = cases.make_inputs(case)
    for name, want in cases.expected(case, inputs).items():
        assert isinstance(inputs[name], np.ndarray)
        if name not in case.get("post", {}):
            assert want.shape == inputs[name].shape, name
