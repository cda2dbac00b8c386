"""The NVIDIA conformance suite on the mock GPU (runs in CI)."""
import pytest

import hwdrv
from conformance_cases import *  # noqa: F401,F403 - the shared cases


@pytest.fixture(scope="module")
def dev_name():
    return "mock:nvidia"


@pytest.fixture(scope="module")
def dev(dev_name):
    d = hwdrv.open_device(dev_name)
    yield d
    d.close()
