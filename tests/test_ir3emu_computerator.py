"""Mesa's computerator example shaders (programs nobody on this project wrote) assembled with
hwdrv's ir3 assembler and run on the mock's ir3 emulator, against results computed in numpy
(tests/data/qcom/computerator/make_expected.py).

The .asm files are Mesa's and are not in this repository: point ``HWDRV_MESA_SRC`` at a Mesa
25.0.7 tree (or ``HWDRV_AUTOGEN_SRC`` at the pinned sources holding ``mesa-25.0.7/``). Without one
these tests skip and say so; the repository's own kernels (test_ir3emu_kernels.py) always run.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from hwdrv.errors import ProgramError
from hwdrv.mock.qcom.ir3emu import harness
from hwdrv.qcom import ir3

_DATA = json.load(open(os.path.join(os.path.dirname(__file__), "data", "qcom", "computerator", "expected.json")))


def _examples_dir() -> str | None:
    roots = []
    if os.environ.get("HWDRV_MESA_SRC"):
        roots.append(os.environ["HWDRV_MESA_SRC"])
    if os.environ.get("HWDRV_AUTOGEN_SRC"):
        roots.append(os.path.join(os.environ["HWDRV_AUTOGEN_SRC"], "mesa-25.0.7"))
    for r in roots:
        d = os.path.join(r, _DATA["source"]["dir"])
        if os.path.isdir(d):
            return d
    return None


_DIR = _examples_dir()
needs_mesa = pytest.mark.skipif(_DIR is None, reason="Mesa's computerator examples are not in this repository: set "
                                "HWDRV_MESA_SRC to a Mesa 25.0.7 tree (or HWDRV_AUTOGEN_SRC to the pinned sources)")


def _source(name: str) -> str:
    path = os.path.join(_DIR, name)
    data = open(path, "rb").read()
    want = _DATA["cases"][name]["sha256"]
    if hashlib.sha256(data).hexdigest() != want:
        pytest.skip(f"{path} is not Mesa 25.0.7's {name} (sha256 differs); the expected results describe that file")
    return data.decode()


@needs_mesa
def test_every_example_has_a_case():
    assert sorted(n for n in os.listdir(_DIR) if n.endswith(".asm")) == sorted(_DATA["cases"])


@needs_mesa
@pytest.mark.parametrize("threadsize", [64, 128])
@pytest.mark.parametrize("name", sorted(n for n, c in _DATA["cases"].items() if "buffers" in c))
def test_example_runs_to_the_expected_buffers(name, threadsize):
    case = _DATA["cases"][name]
    d, body = harness.parse(_source(name))
    code = ir3.assemble(body)
    out = harness.launch(code, d, groups=tuple(case["groups"]), threadsize=threadsize)
    assert len(out) == len(case["buffers"])
    for got, want in zip(out, case["buffers"]):
        np.testing.assert_array_equal(got, np.array(want, np.uint32), err_msg=name)


@needs_mesa
@pytest.mark.parametrize("name", sorted(n for n, c in _DATA["cases"].items() if "rejected" in c))
def test_examples_for_newer_gpus_are_refused_by_name(name):
    with pytest.raises(ProgramError, match=_DATA["cases"][name]["rejected"]):
        harness.parse(_source(name))


@needs_mesa
def test_examples_run_through_more_workgroups():
    # invocationid.asm stores buf[local id] = local id; 3 workgroups write the same values
    d, body = harness.parse(_source("invocationid.asm"))
    out = harness.launch(ir3.assemble(body), d, groups=(3, 1, 1))
    np.testing.assert_array_equal(out[0], np.arange(32, dtype=np.uint32))
