"""ABI misuse on the mock NVIDIA driver (the same cases run on the real driver under -m hardware)."""
import pytest

import hwdrv
from abi_cases import *  # noqa: F401,F403


@pytest.fixture(scope="module")
def dev():
    d = hwdrv.open_device("mock:nvidia")
    yield d
    d.close()
