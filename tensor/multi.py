"""Tensors over several devices: moving a tensor, data-parallel splits, a ring all-reduce.

* :func:`to_device` (``Tensor.to``): a device-to-device copy where the devices share a machine
  (:func:`hwdrv.peer.copy`: the copy engine over P2P, or staged through host memory where P2P
  is refused), through the CPU otherwise.
* :func:`allreduce`: sums equally shaped float32 tensors, one per device, in place, with a ring
  written on the raw queues (docs/multi-gpu.md): N-1 reduce-scatter steps (each device's copy
  engine writes one chunk into its right neighbour's receive buffer; the neighbour's compute
  queue waits on the sender's signal and adds it in) and N-1 all-gather steps (the copy engine
  writes the reduced chunk straight into the neighbour's tensor). Every hand-over is a queue on
  one device waiting on a signal of another; the host only waits for the end. Where the
  devices are not all direct peers it warns and sums on the host instead.
* :func:`shard` / :func:`gather`, :func:`elementwise` (rows split over the devices) and
  :func:`split_matmul` (the shared dimension split over the devices, partial products summed
  by :func:`allreduce`).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np

import hwdrv
from hwdrv import peer

from . import device as devices
from .dtype import float32
from .lazy import LazyNode, LazyView
from .ops import Op
from .tensor import Tensor

#: dst[i] += src[i] over n float32 values: the all-reduce's add (NVIDIA: the only backend with
#: peers so far; docs/multi-gpu.md)
ADD_PTX = """.version 8.0
.target sm_90
.address_size 64
.visible .entry hwdrv_allreduce_add(.param .u64 dst, .param .u64 src, .param .u32 n)
{
  .reg .pred %p; .reg .b32 %r<6>; .reg .f32 %f<4>; .reg .b64 %rd<6>;
  ld.param.u64 %rd1, [dst]; ld.param.u64 %rd2, [src]; ld.param.u32 %r1, [n];
  mov.u32 %r2, %ctaid.x; mov.u32 %r3, %ntid.x; mov.u32 %r4, %tid.x;
  mad.lo.u32 %r5, %r2, %r3, %r4;
  setp.ge.u32 %p, %r5, %r1;
  @%p bra done;
  mul.wide.u32 %rd3, %r5, 4;
  add.u64 %rd4, %rd1, %rd3; add.u64 %rd5, %rd2, %rd3;
  ld.global.f32 %f1, [%rd4]; ld.global.f32 %f2, [%rd5];
  add.f32 %f3, %f1, %f2;
  st.global.f32 [%rd4], %f3;
done:
  ret;
}
"""
_BLOCK = 256
_ADD: dict[int, Any] = {}          # id(device) -> its loaded add program


def _buffer(t: Tensor) -> Any:
    """The device buffer holding ``t``'s values row-major from its start."""
    return t.contiguous().realize().lazy.node.buffer


def _peers(a: Any, b: Any) -> bool:
    """Enable peer access between two hwdrv devices once; whether it is direct."""
    if a is b:
        return True
    link = a._peers.get(b)
    if link is None:
        try:
            link = a.enable_peer(b)
        except hwdrv.HwdrvError:
            return False           # a backend without peers: the caller goes through the host
    return link.direct


def to_device(t: Tensor, device: str) -> Tensor:
    """``t`` on device ``device``: a device-to-device copy where both devices are on one
    machine (P2P, or staged through host memory), through the CPU otherwise."""
    rt = devices.runtime(device)
    if rt is t.runtime:
        return t
    src = t.contiguous().realize()
    nbytes = t.numel * t.dtype.itemsize
    node = LazyNode(rt, Op.BUFFER, t.dtype, t.shape)
    if nbytes == 0:
        rt.upload(node, np.zeros(t.shape, dtype=np.float32))
        return Tensor(LazyView(node))
    sdev, ddev = src.runtime.device, rt.device
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", peer.PeerFallbackWarning)   # copy() stages instead
            _peers(sdev, ddev)
        shares = sdev._peers.get(ddev) is not None
    except hwdrv.HwdrvError:
        shares = False
    if not shares:
        return Tensor(src.numpy(), t.dtype, device)
    buf = rt.alloc(node)
    peer.copy(buf, src.lazy.node.buffer, nbytes)
    node.realize_as(buf)
    return Tensor(LazyView(node))


def shard(x: Any, devices_: Sequence[str], axis: int = 0) -> list[Tensor]:
    """Split ``x`` (numpy array or Tensor) into len(devices_) near-equal parts along ``axis``,
    one per device."""
    arr = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    return [Tensor(np.ascontiguousarray(part), device=d)
            for part, d in zip(np.array_split(arr, len(devices_), axis=axis), devices_)]


def gather(parts: Sequence[Tensor], device: str, axis: int = 0) -> np.ndarray:
    """The parts moved to ``device`` (device to device) and joined along ``axis``."""
    return np.concatenate([to_device(p, device).numpy() for p in parts], axis=axis)


def elementwise(fn: Callable[..., Tensor], *inputs: Any, devices_: Sequence[str]) -> list[Tensor]:
    """``fn`` applied to the row shards of ``inputs`` on each device (data parallel)."""
    shards = [shard(x, devices_) for x in inputs]
    return [fn(*parts).realize() for parts in zip(*shards)]


def split_matmul(a: Any, b: Any, devices_: Sequence[str]) -> list[Tensor]:
    """``a @ b`` with the shared dimension split over the devices: device i computes
    a[:, K_i] @ b[K_i, :], then :func:`allreduce` sums the partial products, so every device
    ends up holding the whole product (float32)."""
    parts_a = shard(a, devices_, axis=1)
    parts_b = shard(b, devices_, axis=0)
    partial = [(pa.cast(float32) @ pb.cast(float32)).realize() for pa, pb in zip(parts_a, parts_b)]
    return allreduce(partial)


def allreduce(tensors: Sequence[Tensor], timeout: float = 60.0) -> list[Tensor]:
    """Sum ``tensors`` (float32, one shape, one per device) into each of them, in place: a ring
    over peer copies on the raw queues (see the module doc). Returns the tensors."""
    ts = list(tensors)
    n = len(ts)
    if n == 0 or any(t.dtype != float32 or t.shape != ts[0].shape for t in ts):
        raise hwdrv.InvalidArgument("allreduce: one float32 tensor of one shape per device")
    devs = [t.runtime.device for t in ts]
    if len({id(d) for d in devs}) != n:
        raise hwdrv.InvalidArgument("allreduce: each tensor must be on a different device")
    bufs = [_buffer(t) for t in ts]
    if n == 1:
        return ts
    direct = all(_peers(devs[i], devs[(i + 1) % n]) for i in range(n))
    if not direct:
        warnings.warn(peer.PeerFallbackWarning("allreduce: the devices are not all direct peers; "
                                               "summing on the host"), stacklevel=2)
        total = sum(t.numpy().astype(np.float32) for t in ts)
        for d, b in zip(devs, bufs):
            d.upload(b, np.ascontiguousarray(total, np.float32))
        return ts
    _ring(devs, bufs, ts[0].numel, timeout)
    return ts


def _ring(devs: list[Any], bufs: list[Any], numel: int, timeout: float) -> None:
    n = len(devs)
    bounds = [numel * k // n for k in range(n + 1)]
    chunk = [(bounds[k], bounds[k + 1] - bounds[k]) for k in range(n)]
    biggest = max(c for _, c in chunk)
    recv = [d.alloc(max(4 * biggest, 4)) for d in devs]
    for i in range(n):            # each sender writes its right neighbour's buffers by address
        j = (i + 1) % n
        devs[i]._use_foreign(bufs[j], "allreduce")
        devs[i]._use_foreign(recv[j], "allreduce")
    adds = [_add_program(d) for d in devs]
    sent = [d.signal(0) for d in devs]       # steps device i finished sending
    prog = [d.signal(0) for d in devs]       # steps device i finished receiving
    try:
        for s in range(2 * n - 2):
            t = s + 1
            for i in range(n):
                j = (i + 1) % n
                if s < n - 1:                               # reduce-scatter
                    off, cnt = chunk[(i - s) % n]
                else:                                       # all-gather
                    off, cnt = chunk[(i + 1 - (s - n + 1)) % n]
                q = devs[i].copy_queue().wait(prog[i], s)
                if s < n - 1:
                    q.wait(prog[j], s)                      # j's receive buffer is free again
                    if cnt:
                        q.copy(recv[j], bufs[i].va + 4 * off, 4 * cnt)
                elif cnt:
                    q.copy(bufs[j].va + 4 * off, bufs[i].va + 4 * off, 4 * cnt)
                q.signal(sent[i], t).submit()
                r = devs[j].compute_queue().wait(sent[i], t)
                if s < n - 1 and cnt:
                    r.exec(adds[j], grid=(-(-cnt // _BLOCK),), block=(_BLOCK,),
                           args=[bufs[j].va + 4 * off, recv[j], cnt])
                r.signal(prog[j], t).submit()
        for i in range(n):
            prog[i].wait(2 * n - 2, timeout)
            sent[i].wait(2 * n - 2, timeout)
    finally:
        for d in devs:
            d.synchronize(timeout)
        for r in recv:
            r.free()


def _add_program(dev: Any) -> Any:
    prog = _ADD.get(id(dev))
    if prog is None or prog.device is not dev or dev.closed:
        prog = _ADD[id(dev)] = dev.program(dev.compiler.compile(ADD_PTX), "hwdrv_allreduce_add")
    return prog
