"""The shared conformance cases on the mock Adreno 630 (mock kgsl + a6xx CP + ir3 emulator), in CI."""
import pytest

import hwdrv
from conformance_cases import *  # noqa: F401,F403 - the shared cases


@pytest.fixture(scope="module")
def dev_name():
    return "mock:qcom"


@pytest.fixture(scope="module")
def dev(dev_name):
    d = hwdrv.open_device(dev_name)
    yield d
    d.close()
