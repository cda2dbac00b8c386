"""Driver-ABI misuse answered alike by the mock and the real driver: each case sends a
deliberately wrong request through the device's own RM client and checks the exact errno or
NV_STATUS. Run on mock:nvidia (tests/test_abi.py) and on the GPU (tests/hardware/test_abi_hw.py).
"""
from __future__ import annotations

import errno

import pytest

import hwdrv
from hwdrv.provoke import sample
from hwdrv.ioctl import ioc
from hwdrv.ioctl.bindings import addressof


def _status_name(dev, code: int) -> str:
    return dev.nv.NV_STATUS[code][0]


@pytest.mark.parametrize("delta", [-4, 4])
@pytest.mark.parametrize("target,cmd,struct", [
    ("h_subdevice", "NV2080_CTRL_CMD_GPU_GET_GID_INFO", "NV2080_CTRL_GPU_GET_GID_INFO_PARAMS"),
    ("h_device", "NV0080_CTRL_CMD_GPU_GET_CLASSLIST", "NV0080_CTRL_GPU_GET_CLASSLIST_PARAMS"),
    ("h_subdevice", "NV2080_CTRL_CMD_PERF_BOOST", "NV2080_CTRL_PERF_BOOST_PARAMS"),
])
def test_control_param_size_mismatch_is_invalid_argument(dev, target, cmd, struct, delta):
    """A control whose paramsSize is off by one field: NV_ERR_INVALID_ARGUMENT on the H100's
    580.159.04 driver (not NV_ERR_INVALID_PARAM_STRUCT, whatever resserv's own check says)."""
    nv, rm = dev.nv, dev.rm
    buf = nv.ffi.new(f"uint8_t[{nv.ffi.sizeof(struct) + 8}]")
    p = nv.ffi.new("NVOS54_PARAMETERS *")
    p.hClient, p.hObject, p.cmd = rm.client, getattr(dev, target), getattr(nv, cmd)
    p.params = buf
    p.paramsSize = nv.ffi.sizeof(struct) + delta
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
    rm = dev.rm
    with pytest.raises(hwdrv.DriverStatusError) as ei:
        rm.alloc(dev.h_device, 0xBEEF)
    assert ei.value.status_name == "NV_ERR_INVALID_CLASS", ei.value.status_name


# What the H100 (580.159.04) did with one wrong field in an otherwise good QMD: the mock must do
# the same. None: the launch completes (it runs, or - for a QUEUE-type QMD - silently does not).
WRONG_QMD = {
    "QMD_MAJOR_VERSION": (3, None, True),        # the version fields are not checked
    "REGISTER_COUNT": (0, 13, False),            # scheduler checks: Xid 13
    "CTA_THREAD_DIMENSION0": (0, 13, False),
    "SHARED_MEMORY_SIZE": (240 << 10, 13, False),
    "QMD_TYPE": ("QUEUE", None, False),          # fetched, no grid runs, no error
}


@pytest.mark.parametrize("field", sorted(WRONG_QMD))
def test_wrong_qmd_field(dev, field):
    import numpy as np

    from hwdrv.ioctl import hostmem
    from hwdrv.nvidia.gen import hopper as hw
    value, xid, runs = WRONG_QMD[field]
    if value == "QUEUE":
        value = hw.NVCBC0_QMDV04_00_QMD_TYPE_QUEUE
    n = 256
    a, b, c = dev.alloc(n * 4), dev.alloc(n * 4), dev.alloc(n * 4)
    dev.upload(a, np.ones(n, np.float32))
    dev.upload(b, np.ones(n, np.float32))
    dev.upload(c, np.zeros(n, np.float32))
    prog = sample(dev, "vecadd")
    sig = dev.signal(0)
    q = dev.compute_queue().exec(prog, grid=(1,), block=(256,), args=[a, b, c, n]).signal(sig, 1)
    getattr(hw, "NVCBC0_QMDV04_00_" + field).set(hostmem.view(q.launches[0][3], 384).view(np.uint32), value)
    q.submit()
    if xid is None:
        sig.wait(1, timeout=10)
        ran = bool((dev.download(c, dtype=np.float32) == 2).all())
        assert ran == runs
    else:
        with pytest.raises(hwdrv.GPUHang) as ei:
            sig.wait(1, timeout=10)
        assert ei.value.report.error.code == xid, ei.value.report.summary()
        dev.recover()
    # the device works afterwards
    s2 = dev.signal(0)
    dev.compute_queue().exec(prog, grid=(1,), block=(256,), args=[a, b, c, n]).signal(s2, 1).submit()
    s2.wait(1, timeout=10)
    assert (dev.download(c, dtype=np.float32) == 2).all()
