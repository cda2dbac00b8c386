"""Finding and opening devices: ``devices()`` and ``open_device(name)``.

Names: ``nvidia:0`` (first NVIDIA GPU), ``mock:nvidia`` (a mock NVIDIA GPU of its own),
``mock:nvidia:N`` (GPU N of this process's shared mock machine). A real device is never replaced
by a mock silently: mocks are opened only by a ``mock:`` name, or by default when ``HWDRV_MOCK=1``.

Mock machines: ``mock:<vendor>`` builds a fresh one-GPU mock kernel on every open (isolated,
as the single-GPU suite wants). ``mock:<vendor>:N`` opens GPU N of one mock machine shared by
the whole process -- one mock kernel with one /dev/nvidiactl, /dev/nvidia0..N-1 and one UVM (or
one /dev/kfd, one kgsl node) -- so devices opened by index can be peers, and opening an index
twice opens the same GPU twice, as two opens of a real GPU do. The NVIDIA machine holds
``HWDRV_MOCK_GPUS`` GPUs (default 2) joined by NVLink; ``mock_machine`` / ``reset_mock_machine``
give tests its kernel (to change links) or a fresh machine.
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


#: the default GPU count of the shared mock machine (mock:<vendor>:N); KFD and kgsl mocks have one
DEFAULT_MOCK_GPUS = 2
_LINUX: Kernel | None = None
_MACHINES: dict[str, Kernel] = {}


def _linux_kernel() -> Kernel:
    # one per process: the OS is one, and backends that share per-process driver state between
    # devices (NVIDIA's UVM VA space) key it by their Kernel
    global _LINUX
    if _LINUX is None:
        from .ioctl.linux import LinuxKernel
        _LINUX = LinuxKernel()
    return _LINUX


def _mock_gpus(vendor: str) -> int:
    if vendor != "nvidia":
        return 1
    raw = os.environ.get("HWDRV_MOCK_GPUS", str(DEFAULT_MOCK_GPUS))
    try:
        n = int(raw)
    except ValueError:
        raise InvalidArgument(f"HWDRV_MOCK_GPUS={raw!r}: expected a GPU count such as 2") from None
    return n


def mock_machine(vendor: str) -> Kernel:
    """The process's shared mock machine of ``vendor`` (the kernel ``mock:<vendor>:N`` opens
    GPUs of), built on first use."""
    if vendor not in _BACKENDS:
        raise DeviceNotFound(f"no mock vendor {vendor!r}; vendors: {', '.join(_BACKENDS)}")
    k = _MACHINES.get(vendor)
    if k is None:
        mod = importlib.import_module(_BACKENDS[vendor][1])
        n = _mock_gpus(vendor)
        k = mod.make_kernel(gpus=n) if vendor == "nvidia" else mod.make_kernel()
        _MACHINES[vendor] = k
    return k


def reset_mock_machine(vendor: str, **kw) -> Kernel:
    """Build a fresh shared mock machine of ``vendor`` (``make_kernel(**kw)``, e.g. ``gpus=4,
    link="pcie"`` for NVIDIA); devices already open on the old one keep using it."""
    if vendor not in _BACKENDS:
        raise DeviceNotFound(f"no mock vendor {vendor!r}; vendors: {', '.join(_BACKENDS)}")
    _MACHINES[vendor] = importlib.import_module(_BACKENDS[vendor][1]).make_kernel(**kw)
    return _MACHINES[vendor]


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
            for i in range(_mock_gpus(vendor)):
                found.append(DeviceInfo(f"mock:{vendor}:{i}", vendor,
                                        f"GPU {i} of the shared mock machine: {mod.DESCRIPTION}",
                                        mock=True))
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
        vendor, _, idx = rest.partition(":")
        if vendor not in _BACKENDS:
            raise DeviceNotFound(f"no mock named {name!r}; mocks: "
                                 f"{', '.join('mock:' + v + '[:N]' for v in _BACKENDS)}")
        backend, mock = _BACKENDS[vendor]
        if not idx:
            kernel = importlib.import_module(mock).make_kernel()
            return importlib.import_module(backend).open(kernel, 0, name)
        try:
            index = int(idx)
        except ValueError:
            raise DeviceNotFound(f"device index in {name!r} must be a number") from None
        return importlib.import_module(backend).open(mock_machine(vendor), index, name)
    if prefix not in _BACKENDS:
        raise DeviceNotFound(f"unknown device {name!r}: expected one of "
                             f"{', '.join(v + ':N' for v in _BACKENDS)} or mock:<vendor>")
    try:
        index = int(rest or "0")
    except ValueError:
        raise DeviceNotFound(f"device index in {name!r} must be a number") from None
    return importlib.import_module(_BACKENDS[prefix][0]).open(_linux_kernel(), index, name)
