import os

import pytest


@pytest.fixture(scope="module")
def dev_name():
    return os.environ.get("HWDRV_TEST_DEVICE", "nvidia:0")


@pytest.fixture(scope="module")
def dev(dev_name):
    import hwdrv
    if not os.path.exists("/dev/nvidiactl"):
        pytest.skip("no NVIDIA GPU on this machine (/dev/nvidiactl missing)")
    d = hwdrv.open_device(dev_name)
    yield d
    d.close()
