"""Facts the mock NVIDIA driver answers with: its identity, status codes by name, struct sizes.

Everything that comes from the driver ABI is taken from the generated bindings
(`hwdrv.nvidia.gen.nv580` / `hopper`); what is left here is the identity of the mock GPU (which
must say "mock" wherever a user can see a name) and the GH100 numbers RM would report.
"""
from __future__ import annotations

from types import ModuleType

from hwdrv.nvidia.gen import hopper as hw
from hwdrv.nvidia.gen import nv580 as nv

NV: ModuleType = nv
HW: ModuleType = hw

#: the driver version the mock claims (the H100 box runs 580.159.04; the 580 bindings apply)
DRIVER_VERSION = "580.159.04"
DESCRIPTION = "mock NVIDIA H100 (hwdrv): emulated RM/UVM driver and Hopper GPU, kernels run as PTX"
GPU_NAME = "mock NVIDIA H100 (hwdrv)"
PROC_VERSION_TEXT = (f"NVRM version: hwdrv mock NVIDIA kernel module (not a real driver)  {DRIVER_VERSION}  "
                     "Release Build  (hwdrv@mock)\nGCC version:  none (emulated in Python)\n")

# PCI identity of an H100 (10de:2330 = H100 SXM5 80GB); the mock never hides that it is a mock:
# every name string it serves says so.
PCI_VENDOR, PCI_DEVICE = 0x10DE, 0x2330
PCI_DOMAIN, PCI_BUS, PCI_SLOT = 0, 0x42, 0
GPU_ID = 0x4200          # RM's gpuId: (domain << 16) | (bus << 8) | device, as on real systems
MINOR = 0
DEVICE_INSTANCE = 0
SUBDEVICE_INSTANCE = 0
BOARD_ID = 0x4200
#: 16-byte binary GPU UUID ("GPU-" + this, as RM prints it); mock-specific bytes
UUID = bytes.fromhex("6d6f636b2d6877647276000000004200")   # "mock-hwdrv" + zeros + gpu id



class GpuIdentity:
    """Who GPU number ``index`` of a mock machine is: PCI address, RM gpuId, device-node minor,
    UUID. GPU 0 is the constants above; GPU i sits on PCI bus PCI_BUS + i (an HGX board's GPUs
    sit on distinct buses), and its gpuId and UUID follow from that bus as RM derives them."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.pci_domain, self.pci_bus, self.pci_slot = PCI_DOMAIN, PCI_BUS + index, PCI_SLOT
        self.gpu_id = (self.pci_domain << 16) | (self.pci_bus << 8) | self.pci_slot
        self.minor = MINOR + index
        self.board_id = BOARD_ID + (index << 8)
        self.uuid = UUID[:-2] + self.gpu_id.to_bytes(2, "big")
        self.pci_tag = f"PCI:{self.pci_domain:04x}:{self.pci_bus:02x}:{self.pci_slot:02x}"


#: the most GPUs one mock machine holds (RM's NV0000_CTRL_SYSTEM_MAX_ATTACHED_GPUS is 32; eight
#: is an HGX board, and each GPU costs the mock threads and address space)
MAX_MOCK_GPUS = 8
#: kinds of link between two mock GPUs: what RM's P2P caps and UVM's peer rules see
LINKS = ("nvlink", "pcie", "none")

# GH100 (H100 SXM) topology as GR_GET_INFO reports it: 8 GPCs x 9 TPCs x 2 SMs = 144 SM slots,
# 132 SMs enabled.
NUM_SMS = 132
GR_INFO: dict[int, int] = {
    nv.NV2080_CTRL_GR_INFO_INDEX_SM_VERSION: 0x900,
    nv.NV2080_CTRL_GR_INFO_INDEX_MAX_WARPS_PER_SM: 64,
    nv.NV2080_CTRL_GR_INFO_INDEX_MAX_THREADS_PER_WARP: 32,
    nv.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_GPCS: 8,
    nv.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_TPC_PER_GPC: 9,
    nv.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_SM_PER_TPC: 2,
    nv.NV2080_CTRL_GR_INFO_INDEX_THREAD_STACK_SCALING_FACTOR: 1,
    nv.NV2080_CTRL_GR_INFO_INDEX_GPU_CORE_COUNT: 132 * 128,
    nv.NV2080_CTRL_GR_INFO_INDEX_SHADER_PIPE_COUNT: NUM_SMS,
    nv.NV2080_CTRL_GR_INFO_INDEX_MAX_SP_PER_SM: 128,
    nv.NV2080_CTRL_GR_INFO_INDEX_TENSOR_CORE_COUNT: 132 * 4,
    nv.NV2080_CTRL_GR_INFO_INDEX_MAX_SUBCONTEXT_COUNT: 64,
    nv.NV2080_CTRL_GR_INFO_INDEX_MAX_LEGACY_SUBCONTEXT_COUNT: 64,
    nv.NV2080_CTRL_GR_INFO_INDEX_MAX_PER_ENGINE_SUBCONTEXT_COUNT: 64,
    nv.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_FBPS: 12,
    nv.NV2080_CTRL_GR_INFO_INDEX_LITTER_NUM_LTCS: 24,
    nv.NV2080_CTRL_GR_INFO_INDEX_TIMESLICE_ENABLED: 1,
    nv.NV2080_CTRL_GR_INFO_INDEX_MAX_MIG_ENGINES: 8,
    nv.NV2080_CTRL_GR_INFO_INDEX_MAX_PARTITIONABLE_GPCS: 8,
}

#: classes GET_CLASSLIST reports (GH100's list, trimmed to what this mock can allocate or knows)
CLASS_LIST: tuple[int, ...] = (
    nv.NV01_ROOT_CLIENT, nv.NV01_DEVICE_0, nv.NV20_SUBDEVICE_0, nv.NV01_MEMORY_SYSTEM,
    nv.NV01_MEMORY_LOCAL_USER, nv.NV01_MEMORY_SYSTEM_OS_DESCRIPTOR,
    nv.HOPPER_CHANNEL_GPFIFO_A, nv.AMPERE_CHANNEL_GPFIFO_A, nv.HOPPER_USERMODE_A, nv.HOPPER_COMPUTE_A,
    nv.HOPPER_DMA_COPY_A, nv.FERMI_VASPACE_A, nv.KEPLER_CHANNEL_GROUP_A, nv.FERMI_CONTEXT_SHARE_A,
    nv.GT200_DEBUGGER,
)

#: the mock's video memory: small enough for CI (host memory backs it, lazily), large enough
#: for one allocation above 4 GiB where the host allows it
VRAM_SIZE = 16 << 30
#: RM-owned system memory (NV01_MEMORY_SYSTEM) comes from its own pool
SYSMEM_POOL_SIZE = 8 << 30

_BY_NAME = {name: code for code, (name, _) in nv.NV_STATUS.items()}
_XID_BY_NAME = {name: code for code, name in nv.XID.items()}


def status(name: str) -> int:
    """The NV_STATUS code called `name` (from the generated status table)."""
    return _BY_NAME[name]


def status_name(code: int) -> str:
    return nv.NV_STATUS.get(code, (f"NV_STATUS {code:#x}", ""))[0]


def xid(name: str) -> int:
    """The Xid called `name` (ROBUST_CHANNEL_... from nverror.h, via the generated table)."""
    return _XID_BY_NAME[name]


def size(struct: str) -> int:
    """sizeof(struct) as gcc measured it (the generated LAYOUT table)."""
    return nv.LAYOUT[struct][0]


def off(struct: str, field: str) -> int:
    """offsetof(struct, field) from the generated LAYOUT table."""
    return nv.LAYOUT[struct][1][field]


NV_OK = 0
