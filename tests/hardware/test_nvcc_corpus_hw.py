"""The nvcc corpus on a real GPU: the committed sm_90 cubins (built by nvcc from the same .cu
files whose PTX tests/test_nvcc_corpus.py runs on the mock), loaded with ``dev.program`` and
checked against the same numpy expressions. `pytest -m hardware tests/hardware`."""
from __future__ import annotations

import pytest

from test_nvcc_corpus import CASES, CORPUS, run_case


@pytest.fixture(scope="module")
def cubins():
    return {m: (CORPUS / f"{m}.cubin").read_bytes() for m in sorted({c["module"] for c in CASES})}


@pytest.mark.parametrize("case", CASES, ids=[c["kernel"] for c in CASES])
def test_corpus_kernel_on_gpu(dev, cubins, case):
    prog = dev.program(cubins[case["module"]], case["kernel"])
    run_case(dev, prog, case)
