"""exec(..., early_start=True) on the GPU: a chain of dependent increments stays exact, and an
early-started chain of empty kernels costs less GPU time per kernel than a plain chained one.
`pytest -m hardware tests/hardware`."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

from early_start_cases import dependent_increments, us_per_empty_kernel  # noqa: E402


def test_dependent_chain_is_exact(dev):
    assert dependent_increments(dev, 1000, early=True) == 1000


def test_early_start_is_faster_per_kernel(dev):
    plain = us_per_empty_kernel(dev, 1000, early=False)
    early = us_per_empty_kernel(dev, 1000, early=True)
    print(f"GPU us per chained empty kernel: plain {plain:.3f}, early_start {early:.3f}")
    assert early < 0.8 * plain, (plain, early)
