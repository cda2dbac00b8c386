"""Peers: several devices of one machine using each other's memory and signals.

Vendor-neutral records and the one helper that works with or without P2P:

* :class:`PeerLink` -- what ``dev.peer_link(other)`` reports: the link kind ("nvlink", "pcie",
  "none"), whether ``dev``'s engines reach ``other``'s device memory directly, and why not.
* ``dev.enable_peer(other)`` turns direct access on (both ways). Afterwards ``other``'s buffers
  and signals go straight into ``dev``'s queues: ``copy(dst_on_other, src_on_dev, n)``, a kernel
  argument, ``wait(other_signal, v)``. A backend maps a peer's memory at the address it has on
  its owner, so ``buf.va`` is valid on both devices.
* Without P2P, ``enable_peer`` warns with :class:`PeerFallbackWarning` and returns a link with
  ``direct`` False. Signals and host-visible buffers of the other device still work in this
  device's queues (host memory is reachable from every GPU of the machine); device memory of
  the other device does not (:class:`PeerAccessError`): move it with :func:`copy`, which stages
  through host memory.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import InvalidArgument

if TYPE_CHECKING:
    from .memory.buffer import Buffer

#: bytes per staging slot of a copy between devices without P2P (two slots alternate)
STAGING_CHUNK = 32 << 20


class PeerAccessError(InvalidArgument):
    """A device was asked to use memory of another device it cannot reach."""


class PeerFallbackWarning(UserWarning):
    """P2P between two devices is refused: copies between them stage through host memory."""


@dataclass(frozen=True)
class PeerLink:
    """How one device reaches another's memory."""
    kind: str                 # "nvlink" | "pcie" | "none"
    direct: bool              # engines of this device read and write the other's device memory
    reads: bool = False
    writes: bool = False
    atomics: bool = False
    reason: str = ""          # why not direct

    @property
    def staged(self) -> bool:
        """Copies between the two devices go through host memory."""
        return not self.direct


def copy(dst: "Buffer", src: "Buffer", size: int | None = None, *, timeout: float = 30.0) -> str:
    """Copy ``size`` bytes (default: all of ``src``) from ``src`` to ``dst`` on another (or the
    same) device and wait for it. Direct where ``enable_peer`` made the devices direct peers (one
    copy on ``src``'s copy engine, writing into ``dst``); otherwise staged through host memory: ``src``'s copy engine
    fills a host-visible slot, ``dst``'s copy queue waits on ``src``'s signal and drains it, two
    slots in flight; where the devices share no memory at all, through the CPU. Returns
    "direct", "staged" or "host"."""
    sdev, ddev = src.device, dst.device
    n = src.size if size is None else size
    if not isinstance(n, int) or n <= 0 or n > src.size or n > dst.size:
        raise InvalidArgument(f"peer copy: size {n!r} must be a positive int within both buffers "
                              f"({src.size} and {dst.size} bytes)")
    deadline = time.perf_counter() + timeout
    link = sdev._peers.get(ddev)
    if sdev is ddev or (link is not None and link.direct):
        sdev.copy_queue().copy(dst, src, n).submit().synchronize(timeout)
        return "direct"
    if not sdev._backend_can_map_host(ddev):
        # not even host memory is shared between them (another machine, or the same GPU opened
        # twice): the CPU carries the bytes
        ddev.upload(dst, sdev.download(src, n))
        return "host"
    chunk = min(STAGING_CHUNK, n)
    slots = [sdev.alloc(chunk, host_visible=True) for _ in range(2)]
    filled, drained = sdev.signal(0), ddev.signal(0)
    try:
        done = 0
        for i in range(-(-n // chunk)):
            step = min(chunk, n - done)
            slot = slots[i % 2]
            # the slot is free once dst drained the chunk that used it two steps ago
            (sdev.copy_queue().wait(drained, max(i - 1, 0)).copy(slot, src.va + done, step)
             .signal(filled, i + 1).submit())
            (ddev.copy_queue().wait(filled, i + 1).copy(dst.va + done, slot, step)
             .signal(drained, i + 1).submit())
            done += step
        drained.wait(-(-n // chunk), max(0.0, deadline - time.perf_counter()))
    finally:
        sdev.synchronize(max(0.0, deadline - time.perf_counter()))
        for s in slots:
            s.free()
    return "staged"
