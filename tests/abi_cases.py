"""Driver-ABI misuse answered alike by the mock and the real driver: each case sends a
deliberately wrong request through the device's own RM client and checks the exact errno or
NV_STATUS. Run on mock:nvidia (tests/test_abi.py) and on the GPU (tests/hardware/test_abi_hw.py).
"""
from __future__ import annotations

import errno

import pytest

import hwdrv
from hwdrv.ioctl import ioc
from hwdrv.ioctl.bindings import addressof


def _status_name(dev, code: int) -> str:
    return dev.nv.NV_STATUS[code][0]


def test_control_param_size_mismatch_is_invalid_param_struct(dev):
    nv, rm = dev.nv, dev.rm
    gid = nv.ffi.new("NV2080_CTRL_GPU_GET_GID_INFO_PARAMS *")
    p = nv.ffi.new("NVOS54_PARAMETERS *")
    p.hClient, p.hObject, p.cmd = rm.client, dev.h_subdevice, nv.NV2080_CTRL_CMD_GPU_GET_GID_INFO
    p.params = gid
    p.paramsSize = nv.ffi.sizeof("NV2080_CTRL_GPU_GET_GID_INFO_PARAMS") - 4
    rm.escape(rm.fd, nv.NV_ESC_RM_CONTROL, p, "NV_ESC_RM_CONTROL")
    got = _status_name(dev, p.status)
    assert got == "NV_ERR_INVALID_PARAM_STRUCT", got


def test_embedded_pointer_control_size_mismatch_is_invalid_argument(dev):
    """Controls whose params carry a user pointer are size-checked earlier, when RM copies the
    embedded buffer in: a different status than other controls."""
    nv, rm = dev.nv, dev.rm
    real = nv.ffi.new("NV0080_CTRL_GPU_GET_CLASSLIST_PARAMS *")
    p = nv.ffi.new("NVOS54_PARAMETERS *")
    p.hClient, p.hObject, p.cmd = rm.client, dev.h_device, nv.NV0080_CTRL_CMD_GPU_GET_CLASSLIST
    p.params = real
    p.paramsSize = nv.ffi.sizeof("NV0080_CTRL_GPU_GET_CLASSLIST_PARAMS") - 4    # one field short
    rm.escape(rm.fd, nv.NV_ESC_RM_CONTROL, p, "NV_ESC_RM_CONTROL")
    got = _status_name(dev, p.status)
    assert got == "NV_ERR_INVALID_ARGUMENT", got


def test_escape_size_mismatch_is_einval(dev):
    nv, rm = dev.nv, dev.rm
    buf = nv.ffi.new("uint8_t[40]")      # NVOS21 is 32 bytes: RmIoctl checks the size exactly
    req = ioc._IOWR("F", nv.NV_ESC_RM_ALLOC, 40)
    with pytest.raises(hwdrv.IoctlError) as ei:
        dev.kernel.ioctl(rm.fd, req, addressof(buf), "NV_ESC_RM_ALLOC")
    assert ei.value.errno == errno.EINVAL


def test_alloc_under_a_parent_that_does_not_exist(dev):
    nv, rm = dev.nv, dev.rm
    with pytest.raises(hwdrv.DriverStatusError) as ei:
        rm.alloc(0x0BAD0BAD, nv.NV20_SUBDEVICE_0, nv.ffi.new("NV2080_ALLOC_PARAMETERS *"))
    assert ei.value.status_name == "NV_ERR_OBJECT_NOT_FOUND", ei.value.status_name


def test_control_on_the_wrong_object_class(dev):
    nv, rm = dev.nv, dev.rm
    # a subdevice control sent to the device object
    with pytest.raises(hwdrv.DriverStatusError) as ei:
        rm.control(dev.h_device, nv.NV2080_CTRL_CMD_PERF_BOOST, nv.ffi.new("NV2080_CTRL_PERF_BOOST_PARAMS *"))
    assert ei.value.status_name == "NV_ERR_NOT_SUPPORTED", ei.value.status_name


def test_unknown_class_is_invalid_class(dev):
    nv, rm = dev.nv, dev.rm
    with pytest.raises(hwdrv.DriverStatusError) as ei:
        rm.alloc(dev.h_device, 0xBEEF)
    assert ei.value.status_name == "NV_ERR_INVALID_CLASS", ei.value.status_name
