"""AMD queues: a PM4 compute queue (dispatches, waits, signals, timestamps, barriers) and an SDMA
copy queue, both on KFD user-mode queues (hwdrv/amd/ring.py).

Every submission ends with a release of the engine's timeline value and a write of the KFD
signal event's mailbox slot plus an interrupt whose context id is the event id, so a host thread
sleeping in WAIT_EVENTS wakes when work finishes (reference/amd.md 1.8). Signal values are 64-bit;
waits compare the low 32 bits (the CP's WAIT_REG_MEM and SDMA's POLL_REGMEM compare 32 bits), so
a wait value must fit in 32 bits.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidArgument
from ..queue import BoundStream, Queue, WordBuffer
from ..signal import Signal
from ..var import IntArg, VarExpr
from . import pm4 as P
from . import sdma as D
from .gen import gc11 as G
from .program import SCRATCH_GRANULE, WAVE_SIZE

if TYPE_CHECKING:
    from .device import AMDDevice
    from .program import AMDProgram

_U32 = 0xFFFFFFFF
#: bytes per COPY_LINEAR (a copy queue splits larger copies)
COPY_CHUNK = D.COPY_MAX
#: kernarg segments are placed at this alignment (HSA: at least 16)
KERNARG_ALIGN = 64
_WAIT_MAX = _U32


class AMDQueue(Queue):
    """What the compute and copy queues share: timeline tails, ring pushes, wait range checks."""

    device: "AMDDevice"

    def _wait_value(self, value: IntArg) -> IntArg:
        if not isinstance(value, VarExpr) and value > _WAIT_MAX:
            raise InvalidArgument(f"wait value {value} does not fit in 32 bits: AMD queues compare the low 32 bits of "
                                  "a signal (WAIT_REG_MEM / POLL_REGMEM); keep waited-on values below 2**32")
        return value

    @abstractmethod
    def _tail(self, value: int) -> list[int]:
        """The end of a submission: timeline = ``value``, then wake host sleepers."""

    def _push(self, value: int) -> None:
        ring = self.device.rings[self.kind]
        bound = self._bound
        if bound is not None:
            bound.set_timeline_value(value)
            ring.push(self._bound_words(bound))
        else:
            ring.push(np.concatenate([self._stream.words, np.array(self._tail(value), np.uint32)]))
        self._pushed(value)

    @abstractmethod
    def _bound_words(self, bound: BoundStream) -> np.ndarray:
        """What one submit of a bound queue puts on the ring."""

    def _pushed(self, value: int) -> None:
        """Hook: remember what this submission launched (compute)."""


class AMDComputeQueue(AMDQueue):
    """A PM4 compute queue (KFD_IOC_QUEUE_TYPE_COMPUTE)."""

    kind = "compute"

    def __init__(self, device: "AMDDevice"):
        super().__init__(device)
        #: (program, grid, block, args) of every exec, for hang reports
        self.launches: list[tuple] = []

    # ---- verbs ---------------------------------------------------------------------------------
    def _q_wait(self, signal: Signal, value: IntArg) -> None:
        w = P.wait_mem_geq(signal.va, 0)
        self._emit(*w[:P.WAIT_REFERENCE])
        self._emit_val(self._wait_value(value))
        self._emit(*w[P.WAIT_REFERENCE + 1:])

    def _q_signal(self, signal: Signal, value: IntArg) -> None:
        # a signal carries the time it was set: the clock first, so a reader who sees the value sees it
        self._q_timestamp(signal)
        self._release(signal.va, value, P.DATA_SEL_64)
        self._emit(*self.device.wake_words_pm4())

    def _q_timestamp(self, signal: Signal) -> None:
        self._emit(*P.release_mem(signal.va + 8, 0, P.DATA_SEL_CLOCK))

    def _q_memory_barrier(self) -> None:
        self._emit(*P.cs_partial_flush(), *P.acquire_mem(full=True))

    def _release(self, va: int, value: IntArg, data_sel: int) -> None:
        w = P.release_mem(va, 0, data_sel)
        self._emit(*w[:P.RELEASE_DATA])
        self._emit_val(value, 2)
        self._emit(*w[P.RELEASE_DATA + 2:])

    def exec_global(self, program: "AMDProgram", global_size, local_size, args=(), shared: int = 0) -> "AMDComputeQueue":
        """OpenCL-style launch: ``global_size`` work-items per dimension in groups of ``local_size``;
        where a global size is not a multiple of the group size the last group is partial (the
        kernel sees OpenCL 2.0 non-uniform work-groups: hidden remainder arguments, PARTIAL_TG_EN).
        Sizes are plain ints; otherwise as :meth:`exec`."""
        from ..queue import _dims
        self._check_building()
        if program.device is not self.device:
            raise InvalidArgument(f"program {program.name!r} belongs to {program.device.name}, not {self.device.name}")
        g, b = _dims(tuple(global_size), "global size"), _dims(tuple(local_size), "local size")
        if any(isinstance(x, VarExpr) for x in g):
            raise InvalidArgument("exec_global takes concrete global sizes (use exec with a Var grid of groups)")
        groups = tuple(-(-x // y) for x, y in zip(g, b))
        program.check_launch(groups, b, shared)
        self._encode_exec(program, groups, b, list(args), int(shared), items=g)
        return self

    def _q_exec(self, prog: "AMDProgram", grid: tuple, block: tuple, args: list, shared: int) -> None:
        self._encode_exec(prog, grid, block, args, shared, items=None)

    def _encode_exec(self, prog: "AMDProgram", grid: tuple, block: tuple, args: list, shared: int,
                     items: tuple | None) -> None:
        dev = self.device
        symbolic_grid = any(isinstance(g, VarExpr) for g in grid)
        concrete = tuple(1 if isinstance(g, VarExpr) else g for g in grid)
        if items is None:
            items_c = tuple(g * b for g, b in zip(concrete, block))
        else:
            items_c = items
        if not symbolic_grid and any(x > _U32 for x in items_c):
            raise InvalidArgument(f"{prog.name}: grid {grid} x block {block} exceeds 2**32 - 1 work-items per "
                                  "dimension")
        # kernarg segment in command memory: hidden arguments, then the explicit ones
        ka_va, ka = dev._cmd_alloc(self, max(prog.param_size, 16), KERNARG_ALIGN)
        raw = bytearray(prog.kernarg_template(items_c, block, shared))
        sym = prog.pack_args(args, raw)
        ka[:len(raw)] = np.frombuffer(bytes(raw), np.uint8)
        words = ka.view(np.uint32)
        target = WordBuffer(words)
        for off, size, expr in sym:
            self._site(target, off // 4, expr, size // 4)
        if symbolic_grid:
            for axis, g in zip("xyz", grid):
                off = prog.hidden_offset(f"hidden_block_count_{axis}")
                if off is not None:
                    self._site(target, off // 4, g)
        # scratch: one slot per wave of the dispatch
        tmpring, scratch_va = 0, 0
        per_wave = prog.scratch_per_wave()
        if per_wave:
            if symbolic_grid:
                raise InvalidArgument(f"{prog.name} uses scratch ({prog.private_size} bytes per work-item): its grid "
                                      "must be concrete ints (the scratch size depends on the wave count)")
            waves = math.ceil(math.prod(block) / WAVE_SIZE) * math.prod(grid)
            scratch_va = dev.scratch(per_wave * waves)
            tmpring = (G.COMPUTE_TMPRING_SIZE__WAVESIZE.encode(per_wave // SCRATCH_GRANULE)
                       | G.COMPUTE_TMPRING_SIZE__WAVES.encode(min(waves, (1 << G.COMPUTE_TMPRING_SIZE__WAVES.width) - 1)))
        user = []
        for prop, _, count in prog.user_sgprs:
            user += {"ENABLE_SGPR_KERNARG_SEGMENT_PTR": [ka_va & _U32, ka_va >> 32],
                     "ENABLE_SGPR_DISPATCH_ID": [0, 0],
                     "ENABLE_SGPR_PRIVATE_SEGMENT_SIZE": [prog.private_size]}[prop]
        rsrc1, rsrc2, rsrc3 = prog.rsrc(shared)
        pgm = prog.code_va >> 8
        self._emit(*P.acquire_mem(),
                   *P.set_sh_reg("COMPUTE_PGM_LO", pgm & _U32, pgm >> 32),
                   *P.set_sh_reg("COMPUTE_PGM_RSRC1", rsrc1, rsrc2),
                   *P.set_sh_reg("COMPUTE_PGM_RSRC3", rsrc3),
                   *P.set_sh_reg("COMPUTE_TMPRING_SIZE", tmpring),
                   *P.set_sh_reg("COMPUTE_DISPATCH_SCRATCH_BASE_LO", (scratch_va >> 8) & _U32, scratch_va >> 40),
                   *P.set_sh_reg("COMPUTE_RESOURCE_LIMITS", 0),
                   *(P.set_sh_reg("COMPUTE_USER_DATA_0", *user) if user else ()),
                   *P.set_sh_reg("COMPUTE_NUM_THREAD_X", *block))
        d = P.dispatch_direct(concrete if items is None else items, work_items=items is not None)
        self._emit(d[0])
        for g in (grid if items is None else items):
            self._emit_val(g)
        self._emit(d[4], *P.cs_partial_flush())
        self.launches.append((prog, grid, block, tuple(args), ka_va))

    def _q_copy(self, dst: IntArg, src: IntArg, size: int) -> None:
        """Copy with the shader cores (a compute blit): 16-byte vectors, then a byte tail; any
        misalignment copies bytewise. Addresses must be concrete ints here."""
        if isinstance(dst, VarExpr) or isinstance(src, VarExpr):
            raise InvalidArgument("a compute-queue copy needs concrete addresses (use a copy queue for Var addresses)")
        dev = self.device
        n16 = size // 16 if not (dst | src) & 15 else 0
        if n16:
            self.exec(dev.builtin("copy16"), grid=(min(-(-n16 // 256), 65535),), block=(256,), args=[dst, src, n16])
        rest = size - n16 * 16
        if rest:
            self.exec(dev.builtin("copy1"), grid=(min(-(-rest // 256), 65535),), block=(256,),
                      args=[dst + n16 * 16, src + n16 * 16, rest])

    # ---- submission ---------------------------------------------------------------------------------
    def _tail(self, value: int) -> list[int]:
        tl = self.device._timelines[self.kind].signal
        return P.release_mem(tl.va, value, P.DATA_SEL_64) + self.device.wake_words_pm4()

    def _bind_stream(self) -> BoundStream:
        words = self._stream.words
        release = np.array(P.release_mem(self.device._timelines[self.kind].signal.va, 0, P.DATA_SEL_64), np.uint32)
        n = len(words) + len(release)
        if n > P.IB_MAX_DWORDS:
            raise InvalidArgument(f"a bound stream of {n} dwords exceeds an indirect buffer's {P.IB_MAX_DWORDS}")
        va, mem = self.device._cmd_alloc(self, n * 4, 256)
        view = mem.view(np.uint32)[:n]
        view[:len(words)] = words
        view[len(words):] = release
        return BoundStream(va, n, view[:len(words)], view[len(words) + P.RELEASE_DATA:][:2])

    def _bound_words(self, bound: BoundStream) -> np.ndarray:
        return np.array(P.indirect_buffer(bound.va, bound.nwords) + self.device.wake_words_pm4(), np.uint32)

    def _pushed(self, value: int) -> None:
        if self.launches:
            self.device.submissions.append((value, self.launches))


class AMDCopyQueue(AMDQueue):
    """An SDMA queue (KFD_IOC_QUEUE_TYPE_SDMA). bind() keeps the stream in command memory and each
    submit copies it into the ring (SDMA indirect buffers are not used: the packet needs 8-dword
    alignment of the ring position, and the copy is a few dwords per transfer)."""

    kind = "copy"

    def _q_wait(self, signal: Signal, value: IntArg) -> None:
        w = D.poll_geq(signal.va, 0)
        self._emit(*w[:D.POLL_VALUE])
        self._emit_val(self._wait_value(value))
        self._emit(*w[D.POLL_VALUE + 1:])

    def _fence64(self, va: int, value: IntArg) -> None:
        # FENCE writes 32 bits: low word first, so a >= waiter never sees a value above the final one
        for half, part in ((0, value & _U32), (4, value >> 32)):
            w = D.fence(va + half, 0)
            self._emit(*w[:D.FENCE_DATA])
            self._emit_val(part)
            self._emit(*w[D.FENCE_DATA + 1:])

    def _q_signal(self, signal: Signal, value: IntArg) -> None:
        self._q_timestamp(signal)           # the time it was set, before the value
        self._fence64(signal.va, value)
        self._emit(*self.device.wake_words_sdma())

    def _q_timestamp(self, signal: Signal) -> None:
        self._emit(*D.timestamp(signal.va + 8))

    def _q_copy(self, dst: IntArg, src: IntArg, size: int) -> None:
        off = 0
        while off < size:
            n = min(COPY_CHUNK, size - off)
            w = D.copy_linear(0, 0, n)
            self._emit(*w[:D.COPY_SRC_LO])
            for a in (src + off if off else src, dst + off if off else dst):
                self._emit_val(a & _U32)
                self._emit_val(a >> 32)
            off += n

    def _tail(self, value: int) -> list[int]:
        tl = self.device._timelines[self.kind].signal.va
        return D.fence(tl, value & _U32) + D.fence(tl + 4, value >> 32) + self.device.wake_words_sdma()

    def _bind_stream(self) -> BoundStream:
        words = self._stream.words
        tail = np.array(self._tail(0), np.uint32)
        n = len(words) + len(tail)
        va, mem = self.device._cmd_alloc(self, n * 4, 256)
        view = mem.view(np.uint32)[:n]
        view[:len(words)] = words
        view[len(words):] = tail
        return _SdmaBound(va, n, view[:len(words)], view)

    def _bound_words(self, bound: BoundStream) -> np.ndarray:
        return bound.full


class _SdmaBound(BoundStream):
    """A bound SDMA stream: the timeline value is two FENCE data words (low, high)."""

    __slots__ = ("full", "lo", "hi")

    def __init__(self, va: int, nwords: int, words: np.ndarray, full: np.ndarray):
        n = len(words)
        super().__init__(va, nwords, words, full[n + D.FENCE_DATA:][:1])
        self.full = full
        self.lo = n + D.FENCE_DATA
        self.hi = n + D.LENGTHS["FENCE"] + D.FENCE_DATA

    def set_timeline_value(self, value: int) -> None:
        self.full[self.lo] = value & _U32
        self.full[self.hi] = value >> 32
