"""Running schedules on a device: buffers, the compile cache, launches through hwdrv's raw
queues, and ``TENSOR_DEBUG`` output.

``TENSOR_DEBUG=1`` prints each kernel launched (name, output shape, grid/block, GPU time);
``TENSOR_DEBUG=2`` also prints the IR and source of each kernel as it is compiled."""
from __future__ import annotations

import os
import sys
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwdrv.trace import Span

from .dtype import DType, bfloat16, bool_, bf16_bits_to_f32, f32_to_bf16_bits
from .lazy import LazyNode
from .lower import fused_matmul, lower, lower_epilogue
from .pool import BufferPool
from .matmul import EPILOGUE_PATHS, Config, MatmulKernel, matmul_kernel, matmul_path, matmul_precision
from .matmul_epilogue import OUT_DTYPES
from .ops import Op
from .profile import maybe_start
from .render import renderer_for
from .render.ptx import BLOCK
from .schedule import schedule


def debug_level() -> int:
    """The TENSOR_DEBUG level (0 when unset)."""
    try:
        return int(os.environ.get("TENSOR_DEBUG", "0") or 0)
    except ValueError:
        return 0


@dataclass
class Launch:
    """One kernel run: what, over which grid, and how long the GPU took (seconds, from the
    queue's timestamps)."""
    name: str
    shape: tuple[int, ...]
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    seconds: float = 0.0


@dataclass
class Stats:
    """Counters for a runtime: kernels compiled, launches made, and the recent launches."""
    compiles: int = 0
    launches: int = 0
    history: list[Launch] = field(default_factory=list)


@dataclass
class _Call:
    node: LazyNode
    program: Any
    args: list[Any]
    launch: Launch
    shared: int = 0


class Runtime:
    """Everything tensor keeps per open device: programs compiled for it, its stats."""

    def __init__(self, device: Any, name: str | None = None):
        #: the name tensors use for this device (what it was opened as)
        self.name = name or device.name
        self.device = device
        self.renderer = renderer_for(device.kind, device.arch)
        self.programs: dict[tuple, Any] = {}
        self.stats = Stats()
        #: matmul tile shapes by dtype name, overriding matmul.py's defaults where they suit
        #: the case's path (bench/tensor_variants.py sets these)
        self.matmul_configs: dict[str, Config] = {}
        #: fuse elementwise epilogues into matmul kernels where the kernel takes them (False:
        #: every matmul writes its own buffer, as a baseline to compare with)
        self.fuse_epilogues = True
        #: tensor-map buffers of TMA matmuls by (kernel, operand addresses), newest last
        self.tensor_maps: OrderedDict[tuple, Any] = OrderedDict()
        self._compilers: dict[str, Any] = {}    # ptxas for kernels that need another target
        #: device buffers of collected tensors, reused by later ones of the same size
        self.pool = BufferPool(device)
        maybe_start(self)

    def __repr__(self) -> str:
        return f"<Runtime {self.device.name} {self.device.arch}>"

    # ---- memory ------------------------------------------------------------------------
    def alloc(self, node: LazyNode) -> Any:
        """A buffer for ``node``'s values, back in the pool when the node is collected. Sizes
        round up to whole 32-bit words: a renderer may move narrow elements as the word holding
        them (ir3's IBOs are described in 32-bit elements, so a partial last word would be out
        of bounds)."""
        buf = self.pool.take(max(-(-node.numel * node.dtype.itemsize // 4) * 4, 4))
        weakref.finalize(node, self.pool.give, buf)
        return buf

    def upload(self, node: LazyNode, data: np.ndarray) -> None:
        """Make ``node`` a realized buffer holding ``data`` (host values of ``node.dtype``)."""
        buf = self.alloc(node)
        if data.size:
            self.device.upload(buf, to_storage(data, node.dtype))
        node.realize_as(buf)

    def download(self, node: LazyNode) -> np.ndarray:
        """The values of a realized node as a numpy array of its shape."""
        nbytes = node.numel * node.dtype.itemsize
        if nbytes == 0:
            return np.zeros(node.shape, host_type(node.dtype))
        raw = self.device.download(node.buffer, nbytes, dtype=node.dtype.np)
        return from_storage(raw, node.dtype).reshape(node.shape)

    # ---- compile + launch --------------------------------------------------------------
    def realize(self, targets: list[LazyNode]) -> None:
        """Compute ``targets`` (and whatever they need) into device buffers."""
        todo = []
        for t in schedule(targets, self._takes_epilogue if self.fuse_epilogues else None):
            if t.numel == 0:
                t.realize_as(self.alloc(t))     # nothing to compute
            else:
                todo.append(t)
        if not todo:
            return
        planned = {id(n) for n in todo}
        buffers: dict[int, Any] = {}            # outputs of this batch, before they ran
        calls = [self._prepare(n, planned, buffers) for n in todo]
        q = self.device.compute_queue()
        stamps = []
        for c in calls:
            start, end = self.device.signal(0), self.device.signal(0)
            stamps.append((start, end))
            q.timestamp(start).exec(c.program, grid=c.launch.grid, block=c.launch.block,
                                    args=c.args, shared=c.shared).memory_barrier().timestamp(end)
        done = self.device.signal(0)
        q.signal(done, 1).submit()
        trace = self.device.trace
        if trace is not None:
            for c, (start, end) in zip(calls, stamps):
                trace.add(Span(c.launch.name, "kernel", "compute", start, end,
                               {"shape": list(c.launch.shape), "grid": list(c.launch.grid),
                                "block": list(c.launch.block)}))
        done.wait(1)
        self._trim_tensor_maps()                 # only now: no launch of this batch still reads them
        hz = self.device.timestamp_hz
        for c, (start, end) in zip(calls, stamps):
            c.launch.seconds = max(0, end.timestamp - start.timestamp) / hz
            c.node.realize_as(c.args[0])
            self.stats.launches += 1
            self.stats.history.append(c.launch)
            if debug_level() >= 1:
                print(f"tensor: {c.launch.name:<40} shape={list(c.launch.shape)} grid={c.launch.grid} "
                      f"block={c.launch.block} {c.launch.seconds * 1e6:9.1f} us", file=sys.stderr)
        del self.stats.history[:-1000]

    def _takes_epilogue(self, mm: LazyNode, out: LazyNode) -> bool:
        """Whether this device's kernel for matmul ``mm`` can apply an epilogue storing
        ``out`` (the scheduler's ``fuse_matmul``)."""
        if getattr(self.renderer, "matmul_kernel", None) is not None or out.dtype not in OUT_DTYPES:
            return False                # a target's own generator (AMD, Adreno) takes none
        (m, k), n = mm.srcs[0].shape, mm.shape[1]
        return matmul_path(self.device.arch, mm.dtype, m, n, k, self.matmul_configs.get(mm.dtype.name),
                           matmul_precision()) in EPILOGUE_PATHS

    def _prepare(self, node: LazyNode, planned: set[int], buffers: dict[int, Any]) -> _Call:
        out = buffers[id(node)] = self.alloc(node)

        def buf(n: LazyNode) -> Any:
            return n.buffer if n.buffer is not None else buffers[id(n)]
        mm = node if node.op == Op.MATMUL else fused_matmul(node, planned)
        if mm is not None:
            a, b = (s.node for s in mm.srcs)
            (m, k), n = mm.srcs[0].shape, mm.shape[1]     # views: a prefix of their node
            cfg = self.matmul_configs.get(mm.dtype.name)
            precision = matmul_precision()
            epi, extra = lower_epilogue(node, mm, planned) if mm is not node else (None, [])
            key = ("matmul", mm.dtype.name, m, n, k, cfg, precision) + ((epi.text,) if epi else ())
            if key not in self.programs:
                own = getattr(self.renderer, "matmul_kernel", None)    # the target's generator
                mk = own(mm.dtype, m, n, k, cfg) if own else \
                    matmul_kernel(self.device.arch, mm.dtype, m, n, k, cfg, getattr(self.device, "sm_count", None),
                                  precision, epi)
                self.programs[key] = (self._compile(mk.ptx, mk.name, f"matmul {m}x{k}x{n}", mk.target), mk)
            prog, mk = self.programs[key]
            launch = Launch(mk.name, node.shape, mk.grid, mk.block)
            if mk.tensor_maps:
                args = [out, self._tensor_map_buffer(mk, {"a": buf(a), "b": buf(b), "c": out})]
            else:
                args = [out, buf(a), buf(b)]
            return _Call(node, prog, args + [buf(x) for x in extra], launch, mk.shared)
        kernel, inputs = lower(node, planned)
        key = ("ir", kernel.text())
        if key not in self.programs:
            src = self.renderer.render(kernel)
            self.programs[key] = self._compile(src, kernel.name, kernel.text())
        vec = self.renderer.vector_width(kernel)
        blocks = -(-kernel.threads // (BLOCK * vec))      # one-shot: the grid covers the tensor
        grid = (blocks, 1, 1)
        launch = Launch(kernel.name, node.shape, grid, (BLOCK, 1, 1))
        return _Call(node, self.programs[key], [out] + [buf(i) for i in inputs], launch)

    def _tensor_map_buffer(self, mk: MatmulKernel, operands: dict[str, Any]) -> Any:
        """A device buffer holding the tensor maps ``mk`` reads over ``operands`` (buffers by
        name: "a", "b", "c"), encoded and uploaded once per kernel and set of addresses (a map
        holds only an address and a shape, so a reused address gets a correct map)."""
        from hwdrv.nvidia.tensormap import TENSOR_MAP_BYTES, encode_tiled
        vas = {t.operand: operands[t.operand].va for t in mk.tensor_maps}
        key = (mk.name, *sorted(vas.items()))
        hit = self.tensor_maps.get(key)
        if hit is not None:
            self.tensor_maps.move_to_end(key)
            return hit
        raw = b"".join(encode_tiled(vas[t.operand], t.dtype, t.dims, t.strides, t.box, swizzle=t.swizzle,
                                    l2_promotion=t.l2_promotion) for t in mk.tensor_maps)
        buf = self.device.alloc(len(mk.tensor_maps) * TENSOR_MAP_BYTES)
        self.device.upload(buf, np.frombuffer(raw, np.uint8))
        self.tensor_maps[key] = buf
        return buf

    def _trim_tensor_maps(self) -> None:
        while len(self.tensor_maps) > TENSOR_MAP_CACHE:
            _free(self.tensor_maps.popitem(last=False)[1])

    def _compile(self, src: str, name: str, ir_text: str, target: str | None = None) -> Any:
        t0 = time.perf_counter()
        binary = self._compiler(target).compile(src)
        prog = self.device.program(binary, name)
        self.stats.compiles += 1
        if debug_level() >= 2:
            print(f"tensor: compiled {name} in {(time.perf_counter() - t0) * 1e3:.1f} ms\n"
                  f"{ir_text}\n{src}", file=sys.stderr)
        return prog

    def _compiler(self, target: str | None) -> Any:
        """The device's compiler, or for a kernel that needs another target (sm_90a) than the
        device's ptxas assembles for, a ptxas compiler for that target."""
        dev = self.device.compiler
        if target is None or getattr(dev, "arch", target) == target or not hasattr(dev, "ptxas"):
            return dev                     # the mock's compiler keeps the PTX as it is
        if target not in self._compilers:
            from hwdrv.nvidia.compiler import PtxasCompiler
            self._compilers[target] = PtxasCompiler(arch=target, ptxas=dev.ptxas)
        return self._compilers[target]


#: tensor-map buffers a runtime keeps (128 bytes per map, 2 or 3 maps each)
TENSOR_MAP_CACHE = 256


def _free(buf: Any) -> None:
    try:
        if not buf.freed:
            buf.free()
    except Exception:       # the device may already be closed: its buffers went with it
        pass


def host_type(dtype: DType) -> type:
    """The numpy type ``Tensor.numpy()`` returns for ``dtype`` (float32 for bfloat16)."""
    return np.float32 if dtype == bfloat16 else dtype.np


def to_storage(data: np.ndarray, dtype: DType) -> np.ndarray:
    """Host values -> the bytes a buffer of ``dtype`` holds."""
    if dtype == bfloat16:
        return f32_to_bf16_bits(np.asarray(data, np.float32))
    if dtype == bool_:
        return np.asarray(data, np.bool_).astype(np.uint8)
    return np.ascontiguousarray(data, dtype.np)


def from_storage(raw: np.ndarray, dtype: DType) -> np.ndarray:
    """A buffer's bytes (viewed as ``dtype.np``) -> host values."""
    if dtype == bfloat16:
        return bf16_bits_to_f32(raw)
    if dtype == bool_:
        return raw.view(np.uint8).astype(np.bool_)
    return raw.copy()
