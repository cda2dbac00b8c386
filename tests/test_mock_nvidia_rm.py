"""The mock NVIDIA driver (RM + UVM) driven through raw MockKernel ioctls: the bring-up sequence
of reference/nvidia.md 1.9 end to end, and the driver's argument rules answered with the real
status codes. Structs are built with the generated `nv580.ffi`; nothing from the backend is used.

`Rig` (also used by test_mock_nvidia_gpu.py) is a minimal hand-written client of the mock.
"""
from __future__ import annotations

import errno

import pytest

import hwdrv.mock.nvidia as mock_nv
from hwdrv.errors import IoctlError
from hwdrv.ioctl import _IOWR, hostmem
from hwdrv.ioctl.bindings import addressof
from hwdrv.ioctl.kernel import MAP_FIXED_NOREPLACE, MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE
from hwdrv.nvidia.gen import hopper as hw
from hwdrv.nvidia.gen import nv580 as nv

ffi = nv.ffi
STATUS = {name: code for code, (name, _) in nv.NV_STATUS.items()}


def _free_low_va(start: int, span: int) -> int:
    """The first 2 MiB-aligned address >= ``start`` with ``span`` bytes unmapped in this process
    (after /proc/self/maps), below 2^40."""
    align = 2 << 20
    va = -(-start // align) * align
    with open("/proc/self/maps") as f:
        ranges = sorted(tuple(int(x, 16) for x in line.split()[0].split("-")) for line in f)
    for a, b in ranges:
        if b <= va:
            continue
        if a >= va + span:
            break
        va = -(-b // align) * align        # overlaps: go past it
    assert va + span <= 1 << 40, "no free low VA range left for the rig"
    return va


class Rig:
    """A tiny RM/UVM client of the mock, written from nvidia.md (not from the backend)."""

    def __init__(self, kernel_timeout: float = 1.0):
        self.k = mock_nv.make_kernel(kernel_timeout=kernel_timeout)
        self.ctl = self.k.open("/dev/nvidiactl", O_RDWR)
        self.next_va = 0x20_0000_0000          # low VAs (< 2^40) as libcuda uses: QMD/pushbuffer limits
        self.placed: list[tuple[int, int]] = []  # (va, size) mapped by place(), unmapped at close()

    def place(self, size: int, fd: int) -> int:
        """mmap `fd` at the next free low VA (MAP_FIXED_NOREPLACE: never clobbers anything). Other
        code in this process (a device another test left open) may hold low VAs: occupied ranges
        are skipped."""
        span = -(-size // (2 << 20)) * (2 << 20)
        for _ in range(16):
            va = _free_low_va(self.next_va, span)
            try:
                got = self.k.mmap(va, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0)
            except IoctlError as e:
                if e.errno != errno.EEXIST:      # EEXIST: mapped meanwhile by another thread
                    raise
                self.next_va = va + (2 << 20)
                continue
            self.next_va = va + span + (2 << 20)
            self.placed.append((got, size))
            return got
        raise AssertionError("no free low VA range found for the rig")

    # ---- raw escapes -----------------------------------------------------------------------------
    def escape(self, fd: int, nr: int, cdata, size: int | None = None) -> None:
        size = ffi.sizeof(cdata[0]) if size is None else size
        self.k.ioctl(fd, _IOWR("F", nr, size), addressof(cdata))

    def alloc(self, parent: int, cls: int, params=None, handle: int = 0, root: int | None = None) -> tuple[int, int]:
        p = ffi.new("NVOS21_PARAMETERS *")
        p.hRoot = self.client if root is None else root
        p.hObjectParent, p.hObjectNew, p.hClass = parent, handle, cls
        if params is not None:
            p.pAllocParms = params
            p.paramsSize = ffi.sizeof(params[0])
        self.escape(self.ctl, nv.NV_ESC_RM_ALLOC, p)
        return p.status, p.hObjectNew

    def ok_alloc(self, parent: int, cls: int, params=None) -> int:
        st, h = self.alloc(parent, cls, params)
        assert st == 0, f"alloc class {cls:#x}: {nv.NV_STATUS[st][0]}"
        return h

    def control(self, h: int, cmd: int, params, size: int | None = None) -> int:
        p = ffi.new("NVOS54_PARAMETERS *")
        p.hClient, p.hObject, p.cmd = self.client, h, cmd
        p.params = params
        p.paramsSize = ffi.sizeof(params[0]) if size is None else size
        self.escape(self.ctl, nv.NV_ESC_RM_CONTROL, p)
        return p.status

    def free(self, h: int) -> int:
        p = ffi.new("NVOS00_PARAMETERS *")
        p.hRoot, p.hObjectOld = self.client, h
        self.escape(self.ctl, nv.NV_ESC_RM_FREE, p)
        return p.status

    def uvm(self, cmd: int, struct: str, fd: int | None = None, **fields) -> tuple[int, object]:
        p = ffi.new(struct + " *", fields or None)
        self.k.ioctl(self.uvm_fd if fd is None else fd, cmd, addressof(p))
        return p.rmStatus, p

    def dev_fd(self) -> int:
        fd = self.k.open("/dev/nvidia0", O_RDWR)
        r = ffi.new("nv_ioctl_register_fd_t *", {"ctl_fd": self.ctl})
        self.escape(fd, nv.NV_ESC_REGISTER_FD, r)
        return fd

    def map_memory(self, h: int, size: int, fd: int) -> int:
        p = ffi.new("nv_ioctl_nvos33_parameters_with_fd *")
        p.params.hClient, p.params.hDevice, p.params.hMemory, p.params.length = self.client, self.device, h, size
        p.fd = fd
        self.escape(self.ctl, nv.NV_ESC_RM_MAP_MEMORY, p)
        return p.params.status

    # ---- bring-up (nvidia.md 1.9) ------------------------------------------------------------------
    def bring_up(self) -> "Rig":
        v = ffi.new("nv_ioctl_rm_api_version_t *", {"cmd": nv.NV_RM_API_VERSION_CMD_QUERY})
        self.escape(self.ctl, nv.NV_ESC_CHECK_VERSION_STR, v)
        assert v.reply == nv.NV_RM_API_VERSION_REPLY_RECOGNIZED and ffi.string(v.versionString) == b"580.159.04"
        self.client = 0
        st, self.client = self.alloc(0, nv.NV01_ROOT_CLIENT, root=0)
        assert st == 0 and self.client
        bv = ffi.new("NV0000_CTRL_SYSTEM_GET_BUILD_VERSION_V2_PARAMS *")
        assert self.control(self.client, nv.NV0000_CTRL_CMD_SYSTEM_GET_BUILD_VERSION_V2, bv) == 0
        assert ffi.string(bv.driverVersionBuffer) == b"580.159.04"
        self.uvm_fd, self.uvm_fd2 = self.k.open("/dev/nvidia-uvm", O_RDWR), self.k.open("/dev/nvidia-uvm", O_RDWR)
        assert self.uvm(nv.UVM_INITIALIZE, "UVM_INITIALIZE_PARAMS")[0] == 0
        assert self.uvm(nv.UVM_MM_INITIALIZE, "UVM_MM_INITIALIZE_PARAMS", fd=self.uvm_fd2, uvmFd=self.uvm_fd)[0] == 0
        cards = ffi.new("nv_ioctl_card_info_t[64]")
        self.escape(self.ctl, nv.NV_ESC_CARD_INFO, cards, ffi.sizeof(cards))
        assert cards[0].valid and not cards[1].valid
        assert (cards[0].pci_info.vendor_id, cards[0].pci_info.device_id) == (0x10DE, 0x2330)
        self.dev = self.dev_fd()
        info = ffi.new("NV0000_CTRL_GPU_GET_ID_INFO_V2_PARAMS *", {"gpuId": cards[0].gpu_id})
        assert self.control(self.client, nv.NV0000_CTRL_CMD_GPU_GET_ID_INFO_V2, info) == 0
        self.device = self.ok_alloc(self.client, nv.NV01_DEVICE_0, ffi.new(
            "NV0080_ALLOC_PARAMETERS *", {"deviceId": info.deviceInstance, "hClientShare": self.client}))
        self.subdevice = self.ok_alloc(self.device, nv.NV20_SUBDEVICE_0, ffi.new("NV2080_ALLOC_PARAMETERS *"))
        cl = ffi.new("NV0080_CTRL_GPU_GET_CLASSLIST_PARAMS *")
        assert self.control(self.device, nv.NV0080_CTRL_CMD_GPU_GET_CLASSLIST, cl) == 0
        arr = ffi.new(f"NvU32[{cl.numClasses}]")
        cl.classList = arr
        assert self.control(self.device, nv.NV0080_CTRL_CMD_GPU_GET_CLASSLIST, cl) == 0
        assert {nv.HOPPER_CHANNEL_GPFIFO_A, nv.HOPPER_COMPUTE_A, nv.HOPPER_DMA_COPY_A, nv.HOPPER_USERMODE_A} <= set(arr)
        self.usermode = self.ok_alloc(self.subdevice, nv.HOPPER_USERMODE_A)
        fd = self.dev_fd()
        assert self.map_memory(self.usermode, 0x10000, fd) == 0
        self.usermode_va = self.k.mmap(0, 0x10000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        self.k.close(fd)
        boost = ffi.new("NV2080_CTRL_PERF_BOOST_PARAMS *", {"flags": 2 | (1 << 4) | (1 << 6), "duration": 0xFFFFFFFF})
        assert self.control(self.subdevice, nv.NV2080_CTRL_CMD_PERF_BOOST, boost) == 0
        self.vaspace = self.ok_alloc(self.device, nv.FERMI_VASPACE_A, ffi.new(
            "NV_VASPACE_ALLOCATION_PARAMETERS *", {"flags": nv.NV_VASPACE_ALLOCATION_FLAGS_ENABLE_PAGE_FAULTING
                                                   | nv.NV_VASPACE_ALLOCATION_FLAGS_IS_EXTERNALLY_OWNED}))
        gid = ffi.new("NV2080_CTRL_GPU_GET_GID_INFO_PARAMS *", {"flags": 2 << 1})
        gid.flags = nv.NV2080_GPU_CMD_GPU_GET_GID_FLAGS_FORMAT.encode(nv.NV2080_GPU_CMD_GPU_GET_GID_FLAGS_FORMAT_BINARY)
        assert self.control(self.subdevice, nv.NV2080_CTRL_CMD_GPU_GET_GID_INFO, gid) == 0 and gid.length == 16
        self.uuid = bytes(gid.data[0:16])
        assert self.uvm(nv.UVM_REGISTER_GPU, "UVM_REGISTER_GPU_PARAMS", gpu_uuid={"uuid": list(self.uuid)},
                        rmCtrlFd=-1)[0] == 0
        assert self.uvm(nv.UVM_REGISTER_GPU_VASPACE, "UVM_REGISTER_GPU_VASPACE_PARAMS",
                        gpuUuid={"uuid": list(self.uuid)}, rmCtrlFd=self.ctl, hClient=self.client,
                        hVaSpace=self.vaspace)[0] == 0
        self.tsg = self.ok_alloc(self.device, nv.KEPLER_CHANNEL_GROUP_A, ffi.new(
            "NV_CHANNEL_GROUP_ALLOCATION_PARAMETERS *", {"engineType": nv.NV2080_ENGINE_TYPE_GRAPHICS}))
        self.notifier_h, self.notifier = self.sysmem(0x1000)
        self.ring_h, self.ring = self.vidmem(4 << 20)
        self.ctxshare = self.ok_alloc(self.tsg, nv.FERMI_CONTEXT_SHARE_A, ffi.new(
            "NV_CTXSHARE_ALLOCATION_PARAMETERS *", {"hVASpace": self.vaspace, "flags": 1}))
        self.heap_h, self.heap = self.vidmem(256 << 20)
        self.heap_size = 256 << 20
        self.heap_top = 0
        self.compute = self.channel(0, nv.HOPPER_COMPUTE_A, 0x2000_0000)
        self.copy = self.channel(1, nv.HOPPER_DMA_COPY_A, 0x2400_0000)
        sched = ffi.new("NVA06C_CTRL_GPFIFO_SCHEDULE_PARAMS *", {"bEnable": 1})
        assert self.control(self.tsg, nv.NVA06C_CTRL_CMD_GPFIFO_SCHEDULE, sched) == 0
        return self

    def gpu_map(self, h: int, va: int, size: int) -> None:
        assert self.uvm(nv.UVM_CREATE_EXTERNAL_RANGE, "UVM_CREATE_EXTERNAL_RANGE_PARAMS", base=va, length=size)[0] == 0
        p = ffi.new("UVM_MAP_EXTERNAL_ALLOCATION_PARAMS *")
        p.base, p.length, p.gpuAttributesCount = va, size, 1
        p.perGpuAttributes[0].gpuUuid.uuid = list(self.uuid)
        p.rmCtrlFd, p.hClient, p.hMemory = self.ctl, self.client, h
        self.k.ioctl(self.uvm_fd, nv.UVM_MAP_EXTERNAL_ALLOCATION, addressof(p))
        assert p.rmStatus == 0, nv.NV_STATUS[p.rmStatus]

    def vidmem(self, size: int) -> tuple[int, int]:
        """Video memory mapped to the CPU and to the GPU at the same address (GPU VA == CPU VA)."""
        p = ffi.new("NV_MEMORY_ALLOCATION_PARAMS *", {"owner": self.client, "size": size, "alignment": 4096})
        p.attr = nv.NVOS32_ATTR_PHYSICALITY.encode(nv.NVOS32_ATTR_PHYSICALITY_CONTIGUOUS)
        h = self.ok_alloc(self.device, nv.NV01_MEMORY_LOCAL_USER, p)
        fd = self.dev_fd()
        assert self.map_memory(h, size, fd) == 0
        va = self.place(size, fd)
        self.k.close(fd)
        self.gpu_map(h, va, size)
        return h, va

    def sysmem(self, size: int) -> tuple[int, int]:
        p = ffi.new("NV_MEMORY_ALLOCATION_PARAMS *", {"owner": self.client, "size": size, "type": 13})
        p.attr = nv.NVOS32_ATTR_LOCATION.encode(nv.NVOS32_ATTR_LOCATION_PCI)
        h = self.ok_alloc(self.device, nv.NV01_MEMORY_SYSTEM, p)
        fd = self.k.open("/dev/nvidiactl", O_RDWR)
        assert self.map_memory(h, size, fd) == 0
        va = self.k.mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        self.k.close(fd)
        return h, va

    def channel(self, slot: int, cls: int, ctx_va: int, entries: int = 256) -> dict:
        off = slot * (1 << 20)
        p = ffi.new("NV_CHANNEL_ALLOC_PARAMS *")
        p.hObjectError, p.hObjectBuffer = self.notifier_h, self.ring_h
        p.gpFifoOffset, p.gpFifoEntries = self.ring + off, entries
        p.hContextShare = self.ctxshare
        p.hUserdMemory[0], p.userdOffset[0] = self.ring_h, off + entries * 8
        ch = self.ok_alloc(self.tsg, nv.HOPPER_CHANNEL_GPFIFO_A, p)
        obj = self.ok_alloc(ch, cls)
        tok = ffi.new("NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN_PARAMS *")
        assert self.control(ch, nv.NVC36F_CTRL_CMD_GPFIFO_GET_WORK_SUBMIT_TOKEN, tok) == 0
        assert self.uvm(nv.UVM_REGISTER_CHANNEL, "UVM_REGISTER_CHANNEL_PARAMS", gpuUuid={"uuid": list(self.uuid)},
                        rmCtrlFd=self.ctl, hClient=self.client, hChannel=ch, base=ctx_va, length=2 << 20)[0] == 0
        return {"h": ch, "obj": obj, "token": tok.workSubmitToken, "ring": self.ring + off,
                "userd": self.ring + off + entries * 8, "entries": entries, "put": 0, "cls": cls}

    def heap_alloc(self, size: int, align: int = 256) -> int:
        self.heap_top = -(-self.heap_top // align) * align
        va = self.heap + self.heap_top
        self.heap_top += size
        assert self.heap_top <= self.heap_size, "test heap exhausted"
        return va

    def close(self) -> None:
        self.k.close(self.ctl)        # frees the client: channels stop, engines join
        while self.placed:            # the low VAs go back (a later rig in this process reuses them)
            self.k.munmap(*self.placed.pop())


def status_of(name: str) -> int:
    return STATUS[name]


@pytest.fixture
def rig():
    r = Rig().bring_up()
    yield r
    r.close()


# ---- bring-up ------------------------------------------------------------------------------------
def test_bring_up_end_to_end_and_files(rig):
    assert b"580.159.04" in rig.k.read_file("/proc/driver/nvidia/version")
    assert b"mock" in rig.k.read_file("/proc/driver/nvidia/version")
    assert rig.k.read_file("/sys/module/nvidia/version").strip() == b"580.159.04"
    name = ffi.new("NV2080_CTRL_GPU_GET_NAME_STRING_PARAMS *")
    assert rig.control(rig.subdevice, nv.NV2080_CTRL_CMD_GPU_GET_NAME_STRING, name) == 0
    assert b"mock" in ffi.string(name.gpuNameString.ascii)
    items = ffi.new("NV2080_CTRL_GR_INFO[3]")
    for i, idx in enumerate((nv.NV2080_CTRL_GR_INFO_INDEX_SM_VERSION, nv.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_GPCS,
                             nv.NV2080_CTRL_GR_INFO_INDEX_MAX_WARPS_PER_SM)):
        items[i].index = idx
    gi = ffi.new("NV2080_CTRL_GR_GET_INFO_PARAMS *", {"grInfoListSize": 3})
    gi.grInfoList = items
    assert rig.control(rig.subdevice, nv.NV2080_CTRL_CMD_GR_GET_INFO, gi) == 0
    assert [items[i].data for i in range(3)] == [0x900, 8, 64]
    assert rig.compute["token"] != rig.copy["token"]


# ---- RM rules ------------------------------------------------------------------------------------
def test_wrong_escape_size_is_einval(rig):
    p = ffi.new("NVOS54_PARAMETERS *")
    with pytest.raises(IoctlError) as ei:
        rig.escape(rig.ctl, nv.NV_ESC_RM_CONTROL, p, size=28)
    assert ei.value.errno == errno.EINVAL


def test_control_param_size_and_unknown_control(rig):
    bv = ffi.new("NV0000_CTRL_SYSTEM_GET_BUILD_VERSION_V2_PARAMS *")
    # the 550-era size of this struct: the H100's 580 driver answers any size mismatch so
    assert rig.control(rig.client, nv.NV0000_CTRL_CMD_SYSTEM_GET_BUILD_VERSION_V2, bv, size=776) == \
        status_of("NV_ERR_INVALID_ARGUMENT")
    assert rig.control(rig.client, 0x0000DEAD, bv) == status_of("NV_ERR_NOT_SUPPORTED")
    # a subdevice control on the device object is not exported by that class
    gi = ffi.new("NV2080_CTRL_GR_GET_INFO_PARAMS *")
    assert rig.control(rig.device, nv.NV2080_CTRL_CMD_GR_GET_INFO, gi) == status_of("NV_ERR_NOT_SUPPORTED")


def test_parent_class_and_handle_rules(rig):
    assert rig.alloc(rig.client, nv.NV20_SUBDEVICE_0, ffi.new("NV2080_ALLOC_PARAMETERS *"))[0] == \
        status_of("NV_ERR_INVALID_OBJECT_PARENT")
    assert rig.alloc(rig.device, 0xBEEF)[0] == status_of("NV_ERR_INVALID_CLASS")
    assert rig.alloc(rig.device, nv.NV20_SUBDEVICE_0, ffi.new("NV2080_ALLOC_PARAMETERS *"),
                     handle=rig.subdevice)[0] == status_of("NV_ERR_INSERT_DUPLICATE_NAME")
    st, h = rig.alloc(rig.device, nv.NV20_SUBDEVICE_0, ffi.new("NV2080_ALLOC_PARAMETERS *"), handle=0x5005)
    assert st == 0 and h == 0x5005                     # caller-chosen handles are allowed if free
    assert rig.free(0x5005) == 0
    assert rig.free(0x5005) == status_of("NV_ERR_OBJECT_NOT_FOUND")       # stale handle
    gi = ffi.new("NV2080_CTRL_GR_GET_INFO_PARAMS *")
    assert rig.control(0x5005, nv.NV2080_CTRL_CMD_GR_GET_INFO, gi) == status_of("NV_ERR_OBJECT_NOT_FOUND")
    st, _ = rig.alloc(rig.device, nv.NV20_SUBDEVICE_0, ffi.new("NV2080_ALLOC_PARAMETERS *"), root=0x1234)
    assert st == status_of("NV_ERR_INVALID_OBJECT_HANDLE")               # unknown client


def test_freeing_a_parent_frees_children(rig):
    tsg = rig.ok_alloc(rig.device, nv.KEPLER_CHANNEL_GROUP_A, ffi.new("NV_CHANNEL_GROUP_ALLOCATION_PARAMETERS *"))
    cs = rig.ok_alloc(tsg, nv.FERMI_CONTEXT_SHARE_A, ffi.new("NV_CTXSHARE_ALLOCATION_PARAMETERS *",
                                                             {"hVASpace": rig.vaspace}))
    assert rig.free(tsg) == 0
    assert rig.free(cs) == status_of("NV_ERR_OBJECT_NOT_FOUND")


def test_register_fd_once_and_fd_kinds(rig):
    fd = rig.dev_fd()
    r = ffi.new("nv_ioctl_register_fd_t *", {"ctl_fd": rig.ctl})
    with pytest.raises(IoctlError) as ei:
        rig.escape(fd, nv.NV_ESC_REGISTER_FD, r)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(IoctlError):                    # RM_CONTROL on a device fd
        rig.escape(fd, nv.NV_ESC_RM_CONTROL, ffi.new("NVOS54_PARAMETERS *"))
    rig.k.close(fd)


def test_mmap_context_is_one_per_fd(rig):
    h, _ = rig.sysmem(0x1000)
    fd = rig.k.open("/dev/nvidiactl", O_RDWR)
    assert rig.map_memory(h, 0x1000, fd) == 0
    assert rig.map_memory(h, 0x1000, fd) == status_of("NV_ERR_STATE_IN_USE")
    vfd = rig.k.open("/dev/nvidia0", O_RDWR)         # vidmem needs a registered device fd
    assert rig.map_memory(rig.heap_h, 0x1000, vfd) == status_of("NV_ERR_INVALID_ARGUMENT")
    rig.k.close(fd)
    rig.k.close(vfd)


def test_vidmem_exhaustion_is_no_memory(rig):
    p = ffi.new("NV_MEMORY_ALLOCATION_PARAMS *", {"owner": rig.client, "size": 1 << 40})
    assert rig.alloc(rig.device, nv.NV01_MEMORY_LOCAL_USER, p)[0] == status_of("NV_ERR_NO_MEMORY")


def test_os_descriptor_memory_only_on_device_fd(rig):
    va = rig.k.mmap(0, 0x2000, PROT_READ | PROT_WRITE, MAP_SHARED | 0x20, -1, 0)
    p = ffi.new("nv_ioctl_nvos02_parameters_with_fd *")
    p.params.hRoot, p.params.hObjectParent, p.params.hObjectNew = rig.client, rig.device, 0x7001
    p.params.hClass, p.params.pMemory, p.params.limit, p.fd = nv.NV01_MEMORY_SYSTEM_OS_DESCRIPTOR, ffi.cast("void *", va), 0x1FFF, -1
    with pytest.raises(IoctlError):
        rig.escape(rig.ctl, nv.NV_ESC_RM_ALLOC_MEMORY, p)
    rig.escape(rig.dev, nv.NV_ESC_RM_ALLOC_MEMORY, p)
    assert p.params.status == 0
    rig.gpu_map(0x7001, va, 0x2000)        # pinned memory: the GPU sees the caller's own pages
    hostmem.write(va, b"pinned!")
    pt = rig.k.nvidia.clients[rig.client].objects[rig.vaspace].pt
    assert pt.read(va, 7) == b"pinned!"


# ---- UVM rules -----------------------------------------------------------------------------------
def test_uvm_rules():
    r = Rig()
    fd = r.k.open("/dev/nvidia-uvm", O_RDWR)
    st, _ = r.uvm(nv.UVM_CREATE_EXTERNAL_RANGE, "UVM_CREATE_EXTERNAL_RANGE_PARAMS", fd=fd, base=0x10000, length=0x1000)
    assert st == status_of("NV_ERR_ILLEGAL_ACTION")
    assert r.uvm(nv.UVM_INITIALIZE, "UVM_INITIALIZE_PARAMS", fd=fd)[0] == 0
    assert r.uvm(nv.UVM_MM_INITIALIZE, "UVM_MM_INITIALIZE_PARAMS", fd=fd, uvmFd=fd)[0] == status_of("NV_ERR_IN_USE")
    r.close()


def test_uvm_registration_rules(rig):
    uuid = {"uuid": list(rig.uuid)}
    assert rig.uvm(nv.UVM_REGISTER_GPU, "UVM_REGISTER_GPU_PARAMS", gpu_uuid=uuid, rmCtrlFd=-1)[0] == \
        status_of("NV_ERR_INVALID_DEVICE")                                  # double registration
    assert rig.uvm(nv.UVM_REGISTER_GPU, "UVM_REGISTER_GPU_PARAMS", gpu_uuid={"uuid": [1] * 16},
                   rmCtrlFd=-1)[0] == status_of("NV_ERR_GPU_UUID_NOT_FOUND")
    fd = rig.k.open("/dev/nvidia-uvm", O_RDWR)
    assert rig.uvm(nv.UVM_INITIALIZE, "UVM_INITIALIZE_PARAMS", fd=fd)[0] == 0
    assert rig.uvm(nv.UVM_REGISTER_GPU, "UVM_REGISTER_GPU_PARAMS", fd=fd, gpu_uuid=uuid, rmCtrlFd=-1)[0] == 0
    plain = rig.ok_alloc(rig.device, nv.FERMI_VASPACE_A, ffi.new("NV_VASPACE_ALLOCATION_PARAMETERS *"))
    assert rig.uvm(nv.UVM_REGISTER_GPU_VASPACE, "UVM_REGISTER_GPU_VASPACE_PARAMS", fd=fd, gpuUuid=uuid,
                   rmCtrlFd=rig.ctl, hClient=rig.client, hVaSpace=plain)[0] == status_of("NV_ERR_INVALID_FLAGS")
    rig.k.close(fd)
    base = 0x7000_0000_0000
    assert rig.uvm(nv.UVM_CREATE_EXTERNAL_RANGE, "UVM_CREATE_EXTERNAL_RANGE_PARAMS", base=base, length=0x10000)[0] == 0
    assert rig.uvm(nv.UVM_CREATE_EXTERNAL_RANGE, "UVM_CREATE_EXTERNAL_RANGE_PARAMS", base=base + 0x1000,
                   length=0x1000)[0] == status_of("NV_ERR_UVM_ADDRESS_IN_USE")
    assert rig.uvm(nv.UVM_CREATE_EXTERNAL_RANGE, "UVM_CREATE_EXTERNAL_RANGE_PARAMS", base=0x2000_0000,
                   length=0x1000)[0] == status_of("NV_ERR_UVM_ADDRESS_IN_USE")     # the channel's context range
    assert rig.uvm(nv.UVM_CREATE_EXTERNAL_RANGE, "UVM_CREATE_EXTERNAL_RANGE_PARAMS", base=base + 1,
                   length=0x1000)[0] == status_of("NV_ERR_INVALID_ADDRESS")
    p = ffi.new("UVM_MAP_EXTERNAL_ALLOCATION_PARAMS *")
    p.base, p.length, p.gpuAttributesCount = base, 0x10000, 1
    p.perGpuAttributes[0].gpuUuid.uuid = list(rig.uuid)
    p.rmCtrlFd, p.hClient, p.hMemory = rig.ctl, rig.client, rig.notifier_h          # a 4 KiB object
    rig.k.ioctl(rig.uvm_fd, nv.UVM_MAP_EXTERNAL_ALLOCATION, addressof(p))
    assert p.rmStatus == status_of("NV_ERR_INVALID_LIMIT")
    assert rig.uvm(nv.UVM_FREE, "UVM_FREE_PARAMS", base=base, length=0x10000)[0] == 0


def test_card_info_needs_whole_structs(rig):
    buf = ffi.new("char[100]")
    with pytest.raises(IoctlError) as ei:
        rig.k.ioctl(rig.ctl, _IOWR("F", nv.NV_ESC_CARD_INFO, 100), addressof(buf))
    assert ei.value.errno == errno.EINVAL


_ = hw


def test_map_fixed_noreplace_never_replaces_a_mapping(rig):
    """MAP_FIXED_NOREPLACE over a range that is mapped already fails with EEXIST and leaves those
    pages alone (Linux's rule; the mock once took it for MAP_FIXED and replaced them, which cut a
    device another test had open off from its own signal memory); the rig's placement then skips
    the occupied range."""
    from hwdrv.ioctl import LinuxKernel
    from hwdrv.ioctl.kernel import MAP_ANONYMOUS, MAP_PRIVATE
    os_k = LinuxKernel()
    busy = None
    for hint in range(0x30_0000_0000, 0x40_0000_0000, 0x1_0000_0000):     # a free low range
        try:
            busy = os_k.mmap(hint, 4 << 20, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
            break
        except IoctlError:
            continue
    assert busy is not None
    try:
        hostmem.write(busy, b"mine")
        size = 2 << 20
        p = ffi.new("NV_MEMORY_ALLOCATION_PARAMS *", {"owner": rig.client, "size": size, "alignment": 4096})
        p.attr = nv.NVOS32_ATTR_PHYSICALITY.encode(nv.NVOS32_ATTR_PHYSICALITY_CONTIGUOUS)
        h = rig.ok_alloc(rig.device, nv.NV01_MEMORY_LOCAL_USER, p)
        fd = rig.dev_fd()
        assert rig.map_memory(h, size, fd) == 0
        with pytest.raises(IoctlError) as ei:
            rig.k.mmap(busy + (1 << 20), size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0)
        assert ei.value.errno == errno.EEXIST
        assert hostmem.read(busy, 4) == b"mine"
        rig.next_va = busy
        va = rig.place(size, fd)
        assert not (va < busy + (4 << 20) and busy < va + size)
        assert hostmem.read(busy, 4) == b"mine"
        rig.k.close(fd)
    finally:
        os_k.munmap(busy, 4 << 20)
