"""Which device a tensor lives on: opening hwdrv devices once per name, and the default.

The default is ``HWDRV_DEVICE`` when set, else the first real GPU hwdrv finds, else the mock
NVIDIA GPU (``mock:nvidia``)."""
from __future__ import annotations

import os
from typing import Any

import hwdrv

from .runtime import Runtime

_RUNTIMES: dict[str, Runtime] = {}
MOCK = "mock:nvidia"


def default_device() -> str:
    """The device name tensors use when none is given."""
    name = os.environ.get("HWDRV_DEVICE")
    if name:
        return name
    try:
        real = [d for d in hwdrv.devices(include_mock=False) if d.available]
    except hwdrv.HwdrvError:
        real = []
    return real[0].name if real else MOCK


def runtime(name: str | None = None) -> Runtime:
    """The runtime of device ``name`` (opened on first use, then shared)."""
    name = name or default_device()
    rt = _RUNTIMES.get(name)
    if rt is None or rt.device.closed:
        rt = _RUNTIMES[name] = Runtime(hwdrv.open_device(name), name)
    return rt


def attach(device: Any, name: str | None = None) -> Runtime:
    """Use an hwdrv device the caller already opened, under ``name`` (default its own name)."""
    name = name or device.name
    rt = _RUNTIMES[name] = Runtime(device, name)
    return rt


def close_all() -> None:
    """Close every device tensor opened (their buffers go with them)."""
    for rt in _RUNTIMES.values():
        rt.device.close()
    _RUNTIMES.clear()
