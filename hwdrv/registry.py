"""Finding and opening devices: ``devices()`` and ``open_device(name)``.

Names: ``nvidia:0`` (first NVIDIA GPU), ``mock:nvidia`` (the mock NVIDIA GPU). A real device is
never replaced by a mock silently: mocks are opened only by a ``mock:`` name, or by default
when ``HWDRV_MOCK=1``.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import asdict, dataclass

from .errors import DeviceNotFound, HwdrvError, InvalidArgument
from .ioctl.kernel import Kernel

# vendor -> (backend module, mock-driver module); each backend module has probe(kernel) and
# open(kernel, index, name); each mock module has make_kernel().
_BACKENDS = {
    "nvidia": ("hwdrv.nvidia.device", "hwdrv.mock.nvidia"),
    "amd": ("hwdrv.amd.device", "hwdrv.mock.amd"),
    "qcom": ("hwdrv.qcom.device", "hwdrv.mock.qcom"),
}
# vendor -> module whose decode_dump(data, what) -> list[str] decodes a raw command-stream dump
_DUMP_DECODERS = {
    "nvidia": "hwdrv.nvidia.pbdecode",
    "qcom": "hwdrv.qcom.pm4decode",     # raw PM4 dwords, or a kgsl snapshot (by its magic)
    "amd": "hwdrv.amd.pm4decode",
}


def dump_decoder(vendor: str):
    """``decode_dump(data, what) -> lines`` for ``vendor``'s raw command-stream dumps."""
    if vendor not in _DUMP_DECODERS:
        raise InvalidArgument(f"no command-stream decoder for {vendor!r}; vendors: "
                              f"{', '.join(sorted(_DUMP_DECODERS))}")
    return importlib.import_module(_DUMP_DECODERS[vendor]).decode_dump


@dataclass
class DeviceInfo:
    """What ``devices()`` reports for one device."""
    name: str
    vendor: str
    description: str
    driver_version: str = ""
    mock: bool = False
    available: bool = True
    problem: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _linux_kernel() -> Kernel:
    from .ioctl.linux import LinuxKernel
    return LinuxKernel()


def devices(include_mock: bool = True) -> list[DeviceInfo]:
    """Every device hwdrv can open here, real ones first, then the mocks."""
    found: list[DeviceInfo] = []
    for vendor, (backend, mock) in _BACKENDS.items():
        try:
            mod = importlib.import_module(backend)
            found.extend(mod.probe(_linux_kernel()))
        except HwdrvError as e:
            found.append(DeviceInfo(f"{vendor}:?", vendor, "probe failed", available=False,
                                    problem=str(e)))
    if include_mock:
        for vendor, (backend, mock) in _BACKENDS.items():
            mod = importlib.import_module(mock)
            found.append(DeviceInfo(f"mock:{vendor}", vendor, mod.DESCRIPTION, mock=True))
    return found


def open_device(name: str | None = None):
    """Open a device by name (``"nvidia:0"``, ``"mock:nvidia"``). With no name: ``HWDRV_DEVICE``
    if set, else ``mock:nvidia`` when ``HWDRV_MOCK=1``, else the first real device."""
    if name is None:
        name = os.environ.get("HWDRV_DEVICE") or None
    if name is None and os.environ.get("HWDRV_MOCK") == "1":
        name = "mock:nvidia"
    if name is None:
        real = [d for d in devices(include_mock=False) if d.available]
        if not real:
            raise DeviceNotFound("no GPU found on this machine; open a mock explicitly with "
                                 "open_device('mock:nvidia') or set HWDRV_MOCK=1")
        name = real[0].name
    if not isinstance(name, str):
        raise DeviceNotFound(f"open_device: name must be a str such as 'nvidia:0' or "
                             f"'mock:nvidia', got {name!r}")
    prefix, _, rest = name.partition(":")
    if prefix == "mock":
        if rest not in _BACKENDS:
            raise DeviceNotFound(f"no mock named {name!r}; mocks: "
                                 f"{', '.join('mock:' + v for v in _BACKENDS)}")
        backend, mock = _BACKENDS[rest]
        kernel = importlib.import_module(mock).make_kernel()
        return importlib.import_module(backend).open(kernel, 0, name)
    if prefix not in _BACKENDS:
        raise DeviceNotFound(f"unknown device {name!r}: expected one of "
                             f"{', '.join(v + ':N' for v in _BACKENDS)} or mock:<vendor>")
    try:
        index = int(rest or "0")
    except ValueError:
        raise DeviceNotFound(f"device index in {name!r} must be a number") from None
    return importlib.import_module(_BACKENDS[prefix][0]).open(_linux_kernel(), index, name)
