"""The shared conformance cases on a real Adreno through kgsl (qcom:0): `pytest -m hardware
tests/hardware/test_conformance_qcom_hw.py`. Skips cleanly where /dev/kgsl-3d0 does not exist."""
import os

import pytest

from conformance_cases import *  # noqa: F401,F403 - the shared cases

KGSL = "/dev/kgsl-3d0"


@pytest.fixture(scope="module")
def dev_name():
    return os.environ.get("HWDRV_TEST_QCOM_DEVICE", "qcom:0")


@pytest.fixture(scope="module")
def dev(dev_name):
    import hwdrv
    if not os.path.exists(KGSL):
        pytest.skip(f"no Adreno GPU on this machine ({KGSL} missing)")
    d = hwdrv.open_device(dev_name)
    yield d
    d.close()


def test_device_is_an_a6xx(dev):
    assert dev.kind == "qcom" and dev.arch.startswith("a6") and dev.engines == ("compute",)
    assert dev.chip_id >> 24 == 6
