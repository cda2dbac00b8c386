"""Which generated driver-ABI module matches the running driver.

The RM ioctl ABI moves between driver branches (struct sizes change; reference nvidia.md
section 6), so bindings are generated per branch and picked by the driver's own version string.
"""
from __future__ import annotations

from types import ModuleType

from ..errors import UnsupportedDriver
from ..ioctl import ioc
from ..ioctl.bindings import addressof
from ..ioctl.kernel import O_CLOEXEC, O_RDWR, Kernel
from .gen import nv580

#: every generated ABI module, newest first
ABI_MODULES: tuple[ModuleType, ...] = (nv580,)


def status_code(nv: ModuleType, name: str) -> int:
    """The NV_STATUS value called ``name`` (from the generated status table)."""
    codes = nv.__dict__.setdefault("_STATUS_BY_NAME", {n: c for c, (n, _) in nv.NV_STATUS.items()})
    return codes[name]


def supported(version: str) -> bool:
    return any(version.startswith(p) for m in ABI_MODULES for p in m.DRIVER_VERSIONS)


def unsupported_message(version: str) -> str:
    known = ", ".join(p + "*" for m in ABI_MODULES for p in m.DRIVER_VERSIONS)
    return (f"NVIDIA driver {version} has no generated bindings in this hwdrv (supported: {known}); "
            f"regenerate them with `python -m autogen generate nvidia` against that driver's "
            f"open-gpu-kernel-modules tag")


def bindings_for(version: str, strict: bool = True) -> ModuleType:
    """The ABI module for ``version``; with ``strict=False`` the newest one as a best guess
    (only for version-stable structs such as the card list)."""
    for m in ABI_MODULES:
        if any(version.startswith(p) for p in m.DRIVER_VERSIONS):
            return m
    if strict:
        raise UnsupportedDriver(unsupported_message(version))
    return ABI_MODULES[0]


def driver_version(kernel: Kernel, ctl_path: str = "/dev/nvidiactl") -> str:
    """The driver's version string, asked of the driver itself (NV_ESC_CHECK_VERSION_STR in
    query mode; its struct has been the same in every branch)."""
    nv = ABI_MODULES[0]
    fd = kernel.open(ctl_path, O_RDWR | O_CLOEXEC)
    try:
        p = nv.ffi.new("nv_ioctl_rm_api_version_t *")
        p.cmd = nv.NV_RM_API_VERSION_CMD_QUERY
        req = ioc._IOWR("F", nv.NV_ESC_CHECK_VERSION_STR, nv.ffi.sizeof("nv_ioctl_rm_api_version_t"))
        kernel.ioctl(fd, req, addressof(p), "NV_ESC_CHECK_VERSION_STR")
        return nv.ffi.string(p.versionString).decode("ascii", "replace")
    finally:
        kernel.close(fd)
