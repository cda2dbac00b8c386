"""NVIDIA peers: P2P capability discovery through RM, peer access through UVM, peer mappings.

The flow (docs/multi-gpu.md; sources: open-gpu-kernel-modules 580.142):

1. ``NV0000_CTRL_CMD_SYSTEM_GET_P2P_CAPS_V2`` on the RM client with both gpuIds
   (CliGetSystemP2pCaps, src/nvidia/src/kernel/rmapi/client_resource.c): NVLINK_SUPPORTED ->
   an NVLink pair; PCI_SUPPORTED with READS and WRITES -> a PCIe P2P pair; otherwise no P2P
   (p2pCapsStatus says why).
2. Both devices' GPUs are registered in the process's one UVM VA space (uvm.py). UVM enables
   NVLink pairs itself when the second GPU registers (register_gpu_peers); a PCIe pair needs
   ``UVM_ENABLE_PEER_ACCESS`` (uvm_api_enable_peer_access, uvm_va_space.c).
3. A peer's allocation is mapped on this GPU by ``UVM_MAP_EXTERNAL_ALLOCATION`` of that GPU on
   the external range its owner made (set_ext_gpu_map_location, uvm_map_external.c: the owner's
   video memory needs the pair enabled; system memory maps on any registered GPU). The range
   is at the owner's address, so the peer uses the buffer at ``buf.va`` like the owner does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..peer import PeerLink

if TYPE_CHECKING:
    from ..memory.buffer import Buffer
    from .device import NVDevice


def p2p_caps(dev: "NVDevice", other: "NVDevice") -> tuple[int, int, int]:
    """(p2pCaps, read status, write status) of the pair, from RM."""
    nv = dev.nv
    p = nv.ffi.new("NV0000_CTRL_SYSTEM_GET_P2P_CAPS_V2_PARAMS *")
    p.gpuIds[0], p.gpuIds[1] = dev.gpu_id, other.gpu_id
    p.gpuCount = 2
    dev.rm.control(dev.rm.client, nv.NV0000_CTRL_CMD_SYSTEM_GET_P2P_CAPS_V2, p, "GET_P2P_CAPS_V2")
    return (int(p.p2pCaps), int(p.p2pCapsStatus[nv.NV0000_CTRL_P2P_CAPS_INDEX_READ]),
            int(p.p2pCapsStatus[nv.NV0000_CTRL_P2P_CAPS_INDEX_WRITE]))


def _status_name(nv, code: int) -> str:
    names = [k for k in dir(nv) if k.startswith("NV0000_P2P_CAPS_STATUS_") and getattr(nv, k) == code]
    return names[0] if names else f"status {code}"


def peer_link(dev: "NVDevice", other) -> PeerLink:
    """How ``dev`` can reach ``other``'s memory."""
    from .device import NVDevice
    if not isinstance(other, NVDevice):
        return PeerLink("none", False, reason=f"{other.name} is not an NVIDIA device")
    if other.kernel is not dev.kernel:
        return PeerLink("none", False, reason=f"{dev.name} and {other.name} are on different machines "
                                             f"(different kernels)")
    if other.uuid == dev.uuid:
        return PeerLink("none", False, reason=f"{dev.name} and {other.name} are the same GPU opened twice "
                                             f"(UVM keeps one VA space per GPU: the second open has its own)")
    if other.uvm.space is not dev.uvm.space:
        return PeerLink("none", False, reason=f"{dev.name} and {other.name} use different UVM VA spaces")
    nv = dev.nv
    caps, rd, wr = p2p_caps(dev, other)
    reads = bool(nv.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_READS_SUPPORTED.decode(caps))
    writes = bool(nv.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_WRITES_SUPPORTED.decode(caps))
    atomics = bool(nv.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_ATOMICS_SUPPORTED.decode(caps))
    if nv.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_NVLINK_SUPPORTED.decode(caps):
        return PeerLink("nvlink", True, reads, writes, atomics)
    if nv.NV0000_CTRL_SYSTEM_GET_P2P_CAPS_PCI_SUPPORTED.decode(caps) and reads and writes:
        return PeerLink("pcie", True, reads, writes, atomics)
    return PeerLink("none", False, reads, writes, atomics,
                    reason=f"RM reports no P2P between {dev.name} and {other.name} (reads: "
                           f"{_status_name(nv, rd)}, writes: {_status_name(nv, wr)})")


def enable_peer(dev: "NVDevice", other: "NVDevice", link: PeerLink) -> None:
    """Peer access between the two GPUs in the shared UVM VA space. UVM_ENABLE_PEER_ACCESS is
    what PCIe pairs need; an NVLink pair is enabled at registration, and the call (made anyway,
    as tinygrad makes it for every pair) then answers NV_ERR_INVALID_DEVICE, taken as done."""
    dev.uvm.enable_peer_access(other.uuid, nvlink=link.kind == "nvlink")


def map_foreign(dev: "NVDevice", buf: "Buffer") -> None:
    """Map ``buf`` (another device's) on ``dev``'s GPU at ``buf.va``."""
    owner = buf.device
    a = buf.meta
    dev.uvm.map_on_this_gpu(owner.rm.fd, owner.rm.client, a.handle, a.va, a.size)
