"""The shared conformance suite (tests/conformance_cases.py) on the mock AMD GPU (runs in CI): the
KFD backend against the mock KFD, the mock PM4/SDMA engines and the RDNA3 emulator."""
import pytest

import hwdrv
from conformance_cases import *  # noqa: F401,F403 - the shared cases


@pytest.fixture(scope="module")
def dev_name():
    return "mock:amd"


@pytest.fixture(scope="module")
def dev(dev_name):
    d = hwdrv.open_device(dev_name)
    yield d
    d.close()
