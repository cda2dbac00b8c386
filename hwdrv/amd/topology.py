"""KFD topology: the GPU nodes under /sys/devices/virtual/kfd/kfd/topology (reference/amd.md 1.1).

Each node directory holds ``gpu_id`` (0 for CPU nodes) and ``properties`` (``key value`` lines).
hwdrv drives gfx11 (RDNA3, gfx_target_version 110000..110503); other GPUs are listed but refused
with :class:`~hwdrv.errors.UnsupportedDevice` naming their target. The queue-buffer sizes KFD
checks in CREATE_QUEUE are not in sysfs: :func:`queue_sizes` derives them as kfd_queue.c's
``kfd_queue_ctx_save_restore_size`` does.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import DeviceNotFound, UnsupportedDevice
from ..ioctl.kernel import Kernel

TOPOLOGY = "/sys/devices/virtual/kfd/kfd/topology"
#: gfx_target_version range hwdrv's AMD backend drives (gfx1100 .. gfx1153)
GFX11_FIRST, GFX11_LAST = 110000, 110503
PAGE = 4096
# kfd_queue_ctx_save_restore_size: per-CU context-save bytes (vgpr by target, then sgpr, lds, hwreg)
_VGPR_BYTES_LARGE = {90402: 0x80000, 90010: 0x80000, 90008: 0x80000, 90500: 0x80000}
# gfx1151 (110501) joined the 0x60000 class in Linux 6.12 (tests/test_amd_cwsr.py checks against it)
_VGPR_BYTES_GFX11 = {110000: 0x60000, 110001: 0x60000, 110501: 0x60000, 120000: 0x60000, 120001: 0x60000}
_VGPR_BYTES_DEFAULT = 0x40000
_SGPR_BYTES, _LDS_BYTES, _HWREG_BYTES = 0x4000, 0x10000, 0x1000
_WAVES_PER_CU = 32
_CTL_STACK_HEADER, _CTL_STACK_PER_WAVE, _CTL_STACK_TAIL = 40, 12, 8
_EOP_BUFFER_SIZE = 4096


def target_name(version: int) -> str:
    """gfx_target_version 110000 -> "gfx1100" (major, then minor and stepping as hex digits)."""
    return "gfx%d%x%x" % (version // 10000, (version // 100) % 100, version % 100)


def _align(v: int, a: int) -> int:
    return (v + a - 1) // a * a


@dataclass(frozen=True)
class QueueSizes:
    """Queue buffer sizes CREATE_QUEUE validates (kfd_queue_acquire_buffers)."""
    ctl_stack_size: int
    cwsr_size: int
    debug_memory_size: int
    eop_buffer_size: int


@dataclass(frozen=True)
class Node:
    """One GPU node of the KFD topology."""
    index: int              # node directory number
    gpu_id: int
    props: dict

    @property
    def gfx_version(self) -> int:
        return self.props.get("gfx_target_version", 0)

    @property
    def target(self) -> str:
        return target_name(self.gfx_version)

    @property
    def supported(self) -> bool:
        return GFX11_FIRST <= self.gfx_version <= GFX11_LAST

    @property
    def render_minor(self) -> int:
        return self.props["drm_render_minor"]

    @property
    def cu_count(self) -> int:
        return self.props["simd_count"] // self.props["simd_per_cu"] // max(self.props.get("num_xcc", 1), 1)

    def queue_sizes(self) -> QueueSizes:
        """kfd_queue.c ``kfd_queue_ctx_save_restore_size`` for a gfx10.1+ node (reference 1.7)."""
        v = self.gfx_version
        cu = self.cu_count
        waves = cu * _WAVES_PER_CU
        vgpr = _VGPR_BYTES_LARGE.get(v) or _VGPR_BYTES_GFX11.get(v) or _VGPR_BYTES_DEFAULT
        wg_data = _align(cu * (vgpr + _SGPR_BYTES + _LDS_BYTES + _HWREG_BYTES), PAGE)
        ctl = _align(_CTL_STACK_HEADER + waves * _CTL_STACK_PER_WAVE + _CTL_STACK_TAIL, PAGE)
        return QueueSizes(ctl_stack_size=ctl, cwsr_size=_align(ctl + wg_data, PAGE),
                          debug_memory_size=_align(waves * 32, 64), eop_buffer_size=_EOP_BUFFER_SIZE)


def parse_properties(text: str) -> dict:
    """``key value`` lines -> {key: int}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = int(parts[1])
    return out


def gpu_nodes(kernel: Kernel) -> list[Node]:
    """Every GPU node (gpu_id != 0), in node order; [] when KFD is not loaded."""
    base = f"{TOPOLOGY}/nodes"
    if not kernel.exists(base):
        return []
    nodes = []
    for name in sorted(kernel.listdir(base), key=lambda n: int(n) if n.isdigit() else -1):
        if not name.isdigit():
            continue
        gpu_id = int(kernel.read_file(f"{base}/{name}/gpu_id").strip() or b"0")
        if gpu_id == 0:
            continue
        props = parse_properties(kernel.read_file(f"{base}/{name}/properties").decode())
        nodes.append(Node(int(name), gpu_id, props))
    return nodes


def pick(kernel: Kernel, index: int, name: str) -> Node:
    """GPU node number ``index`` (among GPU nodes); refuses non-gfx11 targets by name."""
    nodes = gpu_nodes(kernel)
    if not nodes:
        raise DeviceNotFound(f"{name}: no KFD GPU nodes under {TOPOLOGY} (amdgpu/KFD not loaded?)")
    if not 0 <= index < len(nodes):
        raise DeviceNotFound(f"{name}: there are {len(nodes)} AMD GPU node(s); index {index} is out of range")
    node = nodes[index]
    if not node.supported:
        raise UnsupportedDevice(f"{name}: {node.target} (gfx_target_version {node.gfx_version}) is not supported: "
                                f"hwdrv's AMD backend drives gfx11 (RDNA3, gfx1100..gfx1153) GPUs")
    return node
