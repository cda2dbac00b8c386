"""The conformance suite on the real GPU with QMD chaining off (see tests/test_conformance_nochain.py)."""
import os

import pytest

import hwdrv
import hwdrv.nvidia.queue as nvq
from conformance_cases import *  # noqa: F401,F403 - the shared cases


@pytest.fixture(scope="module")
def dev(dev_name):
    if not os.path.exists("/dev/nvidiactl"):
        pytest.skip("no NVIDIA GPU on this machine (/dev/nvidiactl missing)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nvq, "CHAIN_LAUNCHES", False)
        d = hwdrv.open_device(dev_name)
        yield d
        d.close()
