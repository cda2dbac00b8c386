"""Several GPUs in one process on the mock machine (docs/multi-gpu.md).

The mock's answers are checked against the rules of the driver source (open-gpu-kernel-modules
580.142: CliGetSystemP2pCaps in src/nvidia/src/kernel/rmapi/client_resource.c,
uvm_api_enable_peer_access / register_gpu_peers in kernel-open/nvidia-uvm/uvm_va_space.c,
set_ext_gpu_map_location in uvm_map_external.c; Linux 6.1 kfd_open / kfd_create_process in
amdkfd), and data moved between devices against numpy.
"""
from __future__ import annotations

import errno
import warnings

import numpy as np
import pytest

import hwdrv
from hwdrv import peer, registry
from hwdrv.errors import DriverStatusError, HwdrvError, IoctlError
from hwdrv.ioctl.kernel import O_RDWR
from hwdrv.nvidia.gen import nv580 as nv


@pytest.fixture
def machine():
    """A fresh two-GPU shared mock machine per test, NVLink unless the test relinks it."""
    registry.reset_mock_machine("nvidia", gpus=2)
    opened = []

    def open_(i: int, link: str | None = None):
        if link is not None:
            registry.mock_machine("nvidia").nvidia.set_link(0, 1, link)
        d = hwdrv.open_device(f"mock:nvidia:{i}")
        opened.append(d)
        return d
    yield open_
    for d in reversed(opened):
        d.close()


def _arr(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


# ---- naming and the mock bus ---------------------------------------------------------------------
def test_devices_lists_each_gpu_of_the_shared_machine():
    names = [d.name for d in hwdrv.devices()]
    assert "mock:nvidia" in names
    assert ["mock:nvidia:0", "mock:nvidia:1"] == [n for n in names if n.startswith("mock:nvidia:")]


def test_two_gpus_one_bus_distinct_identities(machine):
    a, b = machine(0), machine(1)
    assert a.kernel is b.kernel                     # one /dev/nvidiactl, one UVM
    assert {a.minor, b.minor} == {0, 1}
    assert a.gpu_id != b.gpu_id and a.uuid != b.uuid
    # RM's gpuId is (domain << 16) | (bus << 8) | device, as CARD_INFO's PCI address says
    assert b.gpu_id - a.gpu_id == 1 << 8
    assert a.uvm.space is b.uvm.space
    k = a.kernel
    assert k.exists("/dev/nvidia0") and k.exists("/dev/nvidia1") and not k.exists("/dev/nvidia2")


def test_plain_mock_name_stays_a_private_gpu0(machine):
    a = machine(0)
    with hwdrv.open_device("mock:nvidia") as solo:
        assert solo.kernel is not a.kernel and solo.minor == 0
        assert solo.peer_link(a).kind == "none"


def test_index_out_of_range(machine):
    machine(0)
    with pytest.raises(hwdrv.DeviceNotFound, match="index 2 is out of range"):
        hwdrv.open_device("mock:nvidia:2")


def test_card_info_refuses_a_short_array(machine):
    a = machine(0)
    cards = nv.ffi.new("nv_ioctl_card_info_t[1]")
    from hwdrv.ioctl import _IOWR
    from hwdrv.ioctl.bindings import addressof
    with pytest.raises(IoctlError) as ei:       # nvidia_read_card_info: num_entries < num_nv_devices
        a.kernel.ioctl(a.rm.fd, _IOWR("F", nv.NV_ESC_CARD_INFO, nv.ffi.sizeof(cards)), addressof(cards))
    assert ei.value.errno == errno.EINVAL


# ---- RM: NV0000_CTRL_CMD_SYSTEM_GET_P2P_CAPS_V2 -----------------------------------------------------
def _caps(dev, ids, count=None):
    p = nv.ffi.new("NV0000_CTRL_SYSTEM_GET_P2P_CAPS_V2_PARAMS *")
    for i, g in enumerate(ids):
        p.gpuIds[i] = g
    p.gpuCount = len(ids) if count is None else count
    dev.rm.control(dev.rm.client, nv.NV0000_CTRL_CMD_SYSTEM_GET_P2P_CAPS_V2, p, "GET_P2P_CAPS_V2")
    return p


F = nv.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_NVLINK_SUPPORTED


@pytest.mark.parametrize("link,want,absent", [
    ("nvlink", ("NVLINK", "READS", "WRITES", "ATOMICS"), ("PCI", "PROP")),
    ("pcie", ("PCI", "READS", "WRITES", "PROP"), ("NVLINK",)),
    ("none", (), ("NVLINK", "PCI", "READS", "WRITES")),
])
def test_p2p_caps_follow_the_link(machine, link, want, absent):
    a = machine(0, link)
    b = machine(1)
    p = _caps(a, [a.gpu_id, b.gpu_id])
    for name in want:
        assert getattr(nv, f"NV0000_CTRL_SYSTEM_GET_P2P_CAPS_{name}_SUPPORTED").decode(p.p2pCaps) == 1, name
    for name in absent:
        assert getattr(nv, f"NV0000_CTRL_SYSTEM_GET_P2P_CAPS_{name}_SUPPORTED").decode(p.p2pCaps) == 0, name
    ok = nv.NV0000_P2P_CAPS_STATUS_OK
    assert (p.p2pCapsStatus[nv.NV0000_CTRL_P2P_CAPS_INDEX_READ] == ok) == (link != "none")
    # busPeerIds[X * count + Y]: no peer with itself; a peer id exactly where there is a link
    inv = nv.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_INVALID_PEER
    assert p.busPeerIds[0] == inv and p.busPeerIds[3] == inv
    assert (p.busPeerIds[1] != inv) == (link != "none") == (p.busPeerIds[2] != inv)


def test_p2p_caps_argument_rules(machine):
    a, b = machine(0), machine(1)
    for ids, count in (([a.gpu_id], 0), ([a.gpu_id], nv.NV0000_CTRL_SYSTEM_MAX_ATTACHED_GPUS + 1),
                       ([a.gpu_id, 0x7700], None)):
        with pytest.raises(DriverStatusError) as ei:
            _caps(a, ids, count)
        assert ei.value.status_name == "NV_ERR_INVALID_ARGUMENT"
    # the same GPU twice is the loopback query: one GPU, no peer caps on the mock
    p = _caps(a, [a.gpu_id, a.gpu_id])
    assert p.p2pCaps == 0


# ---- UVM peer rules --------------------------------------------------------------------------------
def _uvm_status(dev, name, **f):
    try:
        dev.uvm._call(name, getattr(nv, name), name + "_PARAMS", **f)
    except DriverStatusError as e:
        return e.status_name
    return "NV_OK"


def test_uvm_enable_peer_access_rules(machine):
    a = machine(0, "pcie")
    b = machine(1)
    assert _uvm_status(a, "UVM_ENABLE_PEER_ACCESS", gpuUuidA=a.uuid, gpuUuidB=a.uuid) == "NV_ERR_INVALID_DEVICE"
    assert _uvm_status(a, "UVM_ENABLE_PEER_ACCESS", gpuUuidA=a.uuid, gpuUuidB=bytes(16)) == "NV_ERR_INVALID_DEVICE"
    assert _uvm_status(a, "UVM_DISABLE_PEER_ACCESS", gpuUuidA=a.uuid, gpuUuidB=b.uuid) == "NV_ERR_INVALID_DEVICE"
    assert _uvm_status(a, "UVM_ENABLE_PEER_ACCESS", gpuUuidA=a.uuid, gpuUuidB=b.uuid) == "NV_OK"
    assert _uvm_status(a, "UVM_ENABLE_PEER_ACCESS", gpuUuidA=b.uuid, gpuUuidB=a.uuid) == "NV_ERR_INVALID_DEVICE"
    assert _uvm_status(a, "UVM_DISABLE_PEER_ACCESS", gpuUuidA=a.uuid, gpuUuidB=b.uuid) == "NV_OK"


def test_uvm_nvlink_pairs_are_enabled_at_registration(machine):
    a, b = machine(0, "nvlink"), machine(1)
    # register_gpu_peers enabled them; ENABLE_PEER_ACCESS is for PCIe pairs only
    assert _uvm_status(a, "UVM_ENABLE_PEER_ACCESS", gpuUuidA=a.uuid, gpuUuidB=b.uuid) == "NV_ERR_INVALID_DEVICE"
    x = a.alloc(1 << 16)
    # UVM maps A's video memory on B with no enable call (hwdrv's API still asks for one)
    b.uvm.map_on_this_gpu(a.rm.fd, a.rm.client, x.meta.handle, x.meta.va, x.meta.size)


def test_uvm_refuses_pairs_without_a_link(machine):
    a, b = machine(0, "none"), machine(1)
    assert _uvm_status(a, "UVM_ENABLE_PEER_ACCESS", gpuUuidA=a.uuid, gpuUuidB=b.uuid) == "NV_ERR_NOT_SUPPORTED"


def test_uvm_maps_peer_vidmem_only_for_enabled_pairs(machine):
    a, b = machine(0, "pcie"), machine(1)
    x = a.alloc(1 << 16)
    with pytest.raises(DriverStatusError) as ei:      # set_ext_gpu_map_location
        b.uvm.map_on_this_gpu(a.rm.fd, a.rm.client, x.meta.handle, x.meta.va, x.meta.size)
    assert ei.value.status_name == "NV_ERR_INVALID_DEVICE"
    h = a.alloc(1 << 16, host_visible=True)           # system memory: any registered GPU
    b.uvm.map_on_this_gpu(a.rm.fd, a.rm.client, h.meta.handle, h.meta.va, h.meta.size)
    a.enable_peer(b)
    b.uvm.map_on_this_gpu(a.rm.fd, a.rm.client, x.meta.handle, x.meta.va, x.meta.size)


# ---- peer API: copies, signals, kernels --------------------------------------------------------------
@pytest.mark.parametrize("link", ["nvlink", "pcie"])
@pytest.mark.parametrize("engine", ["copy", "compute"])
def test_peer_copy_both_directions(machine, link, engine):
    a, b = machine(0, link), machine(1)
    assert a.can_access_peer(b) and a.enable_peer(b).kind == link
    n = 1 << 14
    src_a, src_b = _arr(n, 1), _arr(n, 2)
    x, y = a.alloc(4 * n), b.alloc(4 * n)
    a.upload(x, src_a)
    b.upload(y, src_b)
    xa, yb = a.alloc(4 * n), b.alloc(4 * n)
    q = a.copy_queue() if engine == "copy" else a.compute_queue()
    q.copy(yb, x, 4 * n).submit().synchronize(10)               # A's engine writes into B
    q = b.copy_queue() if engine == "copy" else b.compute_queue()
    q.copy(xa, y, 4 * n).submit().synchronize(10)               # B's engine writes into A
    np.testing.assert_array_equal(b.download(yb, 4 * n).view(np.float32), src_a)
    np.testing.assert_array_equal(a.download(xa, 4 * n).view(np.float32), src_b)


def test_queue_waits_on_the_other_devices_signal(machine):
    a, b = machine(0), machine(1)
    a.enable_peer(b)
    n = 4096
    x, y = a.alloc(4 * n), b.alloc(4 * n)
    a_done, b_done = a.signal(0), b.signal(0)
    # B's copy waits on A's signal, which A sets only after its own upload finished
    b.copy_queue().wait(a_done, 1).copy(y, x, 4 * n).signal(b_done, 1).submit()
    data = _arr(n, 3)
    stage = a.alloc(4 * n, host_visible=True)
    stage.view(np.float32)[:] = data
    import time
    time.sleep(0.05)
    assert b_done.value == 0                                     # still waiting on A
    a.copy_queue().copy(x, stage, 4 * n).signal(a_done, 1).submit()
    b_done.wait(1, 10)
    np.testing.assert_array_equal(b.download(y, 4 * n).view(np.float32), data)


def test_kernel_on_one_gpu_reads_the_others_memory(machine):
    a, b = machine(0), machine(1)
    b.enable_peer(a)
    n = 3000
    va, vb = _arr(n, 4), _arr(n, 5)
    xa, ya = a.alloc(4 * n), a.alloc(4 * n)
    a.upload(xa, va)
    a.upload(ya, vb)
    out = b.alloc(4 * n)
    src, name = b.samples["vecadd"]
    prog = b.program(b.compiler.compile(src), name)
    b.compute_queue().exec(prog, grid=(-(-n // 256),), block=(256,), args=[xa, ya, out, n]).submit() \
        .synchronize(20)
    np.testing.assert_array_equal(b.download(out, 4 * n).view(np.float32), va + vb)


def test_without_p2p_enable_warns_and_copy_stages_through_host(machine):
    a, b = machine(0, "none"), machine(1)
    assert not a.can_access_peer(b)
    with pytest.warns(peer.PeerFallbackWarning, match="no P2P"):
        link = a.enable_peer(b)
    assert link.staged and "IOH_TOPOLOGY_NOT_SUPPORTED" in link.reason
    n = (peer.STAGING_CHUNK // 4) * 2 + 777           # three chunks: both slots reused
    data = _arr(n, 6)
    x, y = a.alloc(4 * n), b.alloc(4 * n)
    a.upload(x, data)
    with pytest.raises(peer.PeerAccessError, match="hwdrv.peer.copy"):
        a.copy_queue().copy(y, x, 4 * n)
    assert peer.copy(y, x) == "staged"
    np.testing.assert_array_equal(b.download(y, 4 * n).view(np.float32), data)
    # signals still cross without P2P (host memory)
    s = a.signal(0)
    b.compute_queue().wait(s, 1).submit()
    a.compute_queue().signal(s, 1).submit()
    b.synchronize(10)


def test_foreign_device_memory_needs_enable_peer(machine):
    a, b = machine(0), machine(1)
    x = b.alloc(4096)
    with pytest.raises(peer.PeerAccessError, match="enable_peer"):
        a.copy_queue().copy(x, x, 16)


def test_same_gpu_opened_twice_gets_its_own_uvm_space(machine):
    a = machine(0)
    a2 = machine(0)
    assert a2.uvm.space is not a.uvm.space
    assert not a.can_access_peer(a2)
    x, y = a.alloc(4096), a2.alloc(4096)
    data = _arr(1024, 7)
    a.upload(x, data)
    assert peer.copy(y, x) == "host"
    np.testing.assert_array_equal(a2.download(y, 4096).view(np.float32), data)


def test_closing_one_device_leaves_the_other_working(machine):
    a, b = machine(0), machine(1)
    a.enable_peer(b)
    x = a.alloc(4096)
    b._use_foreign(x, "test")
    a.close()
    assert b.uvm.space.fd >= 0 and a.uuid not in b.uvm.space.gpus
    y = b.alloc(4096)
    data = _arr(1024, 8)
    b.upload(y, data)
    np.testing.assert_array_equal(b.download(y, 4096).view(np.float32), data)
    a2 = machine(0)                      # the GPU registers again in the same VA space
    assert a2.uvm.space is b.uvm.space and a2.can_access_peer(b)


def test_four_gpus_ring_of_peer_copies():
    registry.reset_mock_machine("nvidia", gpus=4)
    devs = [hwdrv.open_device(f"mock:nvidia:{i}") for i in range(4)]
    try:
        data = _arr(2048, 9)
        bufs = [d.alloc(4 * 2048) for d in devs]
        devs[0].upload(bufs[0], data)
        for i in range(3):
            devs[i].enable_peer(devs[i + 1])
            devs[i].copy_queue().copy(bufs[i + 1], bufs[i], 4 * 2048).submit().synchronize(10)
        np.testing.assert_array_equal(devs[3].download(bufs[3], 4 * 2048).view(np.float32), data)
    finally:
        for d in reversed(devs):
            d.close()


# ---- AMD and Qualcomm mocks opened twice ----------------------------------------------------------
def test_kfd_opens_share_the_process():
    """kfd_open -> kfd_create_process: a second open of /dev/kfd in one process finds the same
    kfd_process; it lives until the last fd closes (kfd_release -> kfd_unref_process)."""
    k = registry.reset_mock_machine("amd")
    f1, f2 = k.open("/dev/kfd", O_RDWR), k.open("/dev/kfd", O_RDWR)
    p = k.state_of(f1)
    assert k.state_of(f2) is p and len(k.amd.processes) == 1
    k.close(f1)
    assert not p.closed and k.amd.processes == [p]
    k.close(f2)
    assert p.closed and k.amd.processes == []


def test_amd_device_opened_twice_on_one_gpu_hits_kfds_acquire_vm_rule():
    """Both hwdrv devices share the process's KFD state, and KFD lets a process bind a GPU's VM
    through one render fd only (kfd_ioctl_acquire_vm: EBUSY for another drm file)."""
    registry.reset_mock_machine("amd")
    with hwdrv.open_device("mock:amd:0") as d1:
        with pytest.raises(IoctlError) as ei:
            hwdrv.open_device("mock:amd:0")
        assert ei.value.errno == errno.EBUSY and "ACQUIRE_VM" in str(ei.value)
        x = d1.alloc(4096)                        # the first device is unaffected
        d1.upload(x, np.arange(1024, dtype=np.float32))
        assert d1.download(x, 16).view(np.float32)[3] == 3


def test_qcom_opened_twice_both_work():
    registry.reset_mock_machine("qcom")
    with hwdrv.open_device("mock:qcom:0") as d1, hwdrv.open_device("mock:qcom:0") as d2:
        assert d1.kernel is d2.kernel
        for d, seed in ((d1, 10), (d2, 11)):
            data = _arr(1024, seed)
            x = d.alloc(4096)
            d.upload(x, data)
            np.testing.assert_array_equal(d.download(x, 4096).view(np.float32), data)
        with pytest.raises(HwdrvError, match="not supported by the qcom backend yet"):
            d1.enable_peer(d2)
        y = d2.alloc(4096)
        with pytest.raises(peer.PeerAccessError):
            d1.copy_queue().copy(y, y, 16)


def test_amd_peer_api_says_not_supported():
    with hwdrv.open_device("mock:amd") as d1, hwdrv.open_device("mock:amd") as d2:
        with pytest.raises(HwdrvError, match="not supported by the amd backend yet"):
            d1.peer_link(d2)


def test_warnings_module_clean():
    # enable_peer with P2P must not warn
    registry.reset_mock_machine("nvidia", gpus=2)
    a, b = hwdrv.open_device("mock:nvidia:0"), hwdrv.open_device("mock:nvidia:1")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            a.enable_peer(b)
    finally:
        b.close()
        a.close()


def _pt(dev):
    """The mock GPU page table of ``dev``'s VA space (mock internals, for mapping checks)."""
    uvm = dev.kernel.nvidia.uvm
    st = next(s for s in uvm.fds if dev.uuid in s.vaspace)
    return st.vaspace[dev.uuid].pt


def test_uvm_unmap_external_and_disable_peer_drop_peer_mappings(machine):
    from hwdrv.mock.gpumem import MemoryFault
    a, b = machine(0, "pcie"), machine(1)
    a.enable_peer(b)
    x = a.alloc(1 << 16)
    b._use_foreign(x, "test")
    _pt(b).translate(x.va, 16, "read")
    # uvm_api_unmap_external: only B's mapping goes
    assert _uvm_status(b, "UVM_UNMAP_EXTERNAL", base=x.meta.va, length=x.meta.size, gpuUuid=b.uuid) == "NV_OK"
    with pytest.raises(MemoryFault):
        _pt(b).translate(x.va, 16, "read")
    _pt(a).translate(x.va, 16, "read")
    b.uvm.map_on_this_gpu(a.rm.fd, a.rm.client, x.meta.handle, x.meta.va, x.meta.size)
    # uvm_api_disable_peer_access: the pair's peer mappings go with it
    assert _uvm_status(a, "UVM_DISABLE_PEER_ACCESS", gpuUuidA=a.uuid, gpuUuidB=b.uuid) == "NV_OK"
    with pytest.raises(MemoryFault):
        _pt(b).translate(x.va, 16, "read")
    _pt(a).translate(x.va, 16, "read")


def test_a_fault_on_gpu1_is_gpu1s_alone(machine):
    """An MMU fault on GPU 1: NVRM's Xid line names GPU 1's PCI address, GPU 1 recovers, and
    GPU 0 (same machine, same kernel log) keeps working with no error of its own."""
    from hwdrv.provoke import sample, vecadd_check
    a, b = machine(0), machine(1)
    prog = sample(b, "oob_store")
    sig = b.signal(0)
    b.compute_queue().exec(prog, grid=(1,), block=(1,), args=[0xDEAD0000, 7]).signal(sig, 1).submit()
    with pytest.raises(hwdrv.GPUHang):
        sig.wait(1, 10)
    tag = f"PCI:0000:{0x42 + 1:02x}:00"
    assert any(f"NVRM: Xid ({tag})" in r for r in b.kernel.kmsg.records())
    assert not any("NVRM: Xid (PCI:0000:42:00)" in r for r in a.kernel.kmsg.records())
    assert vecadd_check(a) and vecadd_check(b)


def test_each_gpu_has_its_own_video_memory(machine):
    a, b = machine(0), machine(1)
    gpus = a.kernel.nvidia.gpus
    before = [g.vram.used for g in gpus]
    x = b.alloc(8 << 20)
    assert gpus[1].vram.used - before[1] >= 8 << 20 and gpus[0].vram.used == before[0]
    x.free()
    b.synchronize()
    assert gpus[1].vram.used == before[1]


def test_mock_machine_argument_errors(monkeypatch):
    with pytest.raises(hwdrv.InvalidArgument, match="1..8 GPUs"):
        registry.reset_mock_machine("nvidia", gpus=9)
    with pytest.raises(hwdrv.InvalidArgument, match="link"):
        registry.reset_mock_machine("nvidia", gpus=2, link="infiniband")
    k = registry.reset_mock_machine("nvidia", gpus=2)
    with pytest.raises(hwdrv.InvalidArgument, match="no GPU pair"):
        k.nvidia.set_link(0, 0, "pcie")
    monkeypatch.setenv("HWDRV_MOCK_GPUS", "two")
    with pytest.raises(hwdrv.InvalidArgument, match="HWDRV_MOCK_GPUS"):
        hwdrv.devices()
