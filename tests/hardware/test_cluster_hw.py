"""exec(..., cluster=) on the GPU with the default QMD variant (hwdrv/nvidia/cluster.py): each
case's geometry registers and distributed-shared-memory partner values match the PTX ISA's
definitions, and exactly the grid's CTAs run. `pytest -m hardware tests/hardware`;
tests/hardware/cluster_probe.py compares every variant."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

from cluster_cases import CASES, expected, mismatches, program, run_case  # noqa: E402

TIMEOUT = 10.0


@pytest.mark.parametrize("case", sorted(CASES))
def test_cluster_records(dev, case):
    grid, cluster = CASES[case]
    got, ran = run_case(dev, program(dev), grid, cluster, TIMEOUT)
    assert ran == grid[0] * grid[1] * grid[2]
    assert mismatches(got, expected(grid, cluster)) == []
