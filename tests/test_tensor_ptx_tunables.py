"""The elementwise PTX tunables (tensor/render/ptx.py, read at import; bench/elementwise_sweep.py
sets them per process): the values they take and a clear error for others."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = ("import tensor.render.ptx as p; "
         "print(p.ACCESSES, repr(p.STORE_HINT))")


def _run(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


@pytest.mark.parametrize("acc,hint", [("2", ".cs"), ("4", "")])
def test_values_taken(acc, hint):
    r = _run(TENSOR_NV_ACCESSES=acc, TENSOR_NV_STORE_HINT=hint)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [acc, repr(hint)]


@pytest.mark.parametrize("var,value", [("TENSOR_NV_ACCESSES", "0"), ("TENSOR_NV_ACCESSES", "x"),
                                       ("TENSOR_NV_STORE_HINT", ".wb")])
def test_bad_values_name_the_variable(var, value):
    r = _run(**{var: value})
    assert r.returncode != 0 and f"InvalidArgument: {var}={value!r}" in r.stderr
