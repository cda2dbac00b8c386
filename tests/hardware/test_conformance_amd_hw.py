"""The shared conformance suite on a real AMD gfx11 GPU through KFD: `pytest -m hardware
tests/hardware/test_conformance_amd_hw.py` (device: HWDRV_TEST_AMD_DEVICE, default amd:0). Skips,
saying why, on a machine without /dev/kfd."""
import os

import pytest

from conformance_cases import *  # noqa: F401,F403 - the shared cases


@pytest.fixture(scope="module")
def dev_name():
    return os.environ.get("HWDRV_TEST_AMD_DEVICE", "amd:0")


@pytest.fixture(scope="module")
def dev(dev_name):
    import hwdrv
    if not os.path.exists("/dev/kfd"):
        pytest.skip("no AMD GPU on this machine (/dev/kfd missing)")
    d = hwdrv.open_device(dev_name)
    yield d
    d.close()


def test_diagnose_provocations_on_amd(dev):
    """The four provocations: each reports (KFD memory / hardware-exception event, or a timeout
    with the in-flight dispatch) and a correct vecadd follows."""
    from hwdrv import provoke as D
    for kind, outcome in zip(D.PROVOCATIONS, D.diagnose_all(dev)):
        assert outcome.report is not None, f"{kind}: {outcome.message}"
        print(outcome.report.to_text())
        assert outcome.after_ok, f"{kind}: the vecadd afterwards was wrong"
