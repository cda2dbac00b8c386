"""Driver versions without generated bindings are refused with the supported versions named."""
import pytest

import hwdrv
from hwdrv.mock.nvidia import facts
from hwdrv.nvidia import abi, device


def test_unknown_driver_version_is_refused_clearly(monkeypatch):
    from hwdrv.mock.nvidia import make_kernel
    monkeypatch.setattr(facts, "DRIVER_VERSION", "595.45.04")
    kernel = make_kernel()
    assert abi.driver_version(kernel) == "595.45.04"
    with pytest.raises(hwdrv.UnsupportedDriver, match=r"595\.45\.04.*supported: 580\.\*"):
        device.open(kernel, 0, "mock:nvidia")
    info = device.probe(kernel)
    assert info and not info[0].available and "595.45.04" in info[0].problem


def test_supported_version_selects_the_580_bindings():
    from hwdrv.nvidia.gen import nv580
    assert abi.bindings_for("580.159.04") is nv580
    assert abi.supported("580.65.06") and not abi.supported("575.64.05")
