"""NVIDIA queues: verbs encoded as host-class semaphore methods, compute-class launches
(QMD + constant bank 0 in command memory) and copy-engine transfers."""
from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..cmdmem import SlotRing
from ..device import LAUNCH_SLOT_BYTES, launch_var_error
from ..queue import BoundStream, Queue, WordBuffer
from ..var import IntArg, VarExpr
from ..errors import InvalidArgument
from . import gpfifo as pb
from .builtins import COPY_BLOCKS_PER_SM, COPY_THREADS, builtin
from .cluster import CB0_NCLUSTERID
from .gen import hopper as hw
from .program import CB0_GRID_DIM, NVProgram
from .qmd import CB0_ADDR_LO, GRID_X, GRID_Y, GRID_Z, QMD_ALIGN, QMD_SIZE, word_field, word_patch

if TYPE_CHECKING:
    from ..signal import Signal
    from .device import NVDevice

_U32 = 0xFFFFFFFF
_PCAS_LAUNCH = hw.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION.encode(
    hw.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_INVALIDATE_PREFETCH_COPY_SCHEDULE)
# Code, constants and globals may have been written by the host or an earlier kernel.
_INVALIDATE = (hw.NVCBC0_INVALIDATE_SHADER_CACHES_NO_WFI_INSTRUCTION.encode(
    hw.NVCBC0_INVALIDATE_SHADER_CACHES_NO_WFI_INSTRUCTION_TRUE)
    | hw.NVCBC0_INVALIDATE_SHADER_CACHES_NO_WFI_GLOBAL_DATA.encode(
        hw.NVCBC0_INVALIDATE_SHADER_CACHES_NO_WFI_GLOBAL_DATA_TRUE)
    | hw.NVCBC0_INVALIDATE_SHADER_CACHES_NO_WFI_CONSTANT.encode(
        hw.NVCBC0_INVALIDATE_SHADER_CACHES_NO_WFI_CONSTANT_TRUE))
_LAUNCH_WORDS = [pb.inc(pb.SUBCH_COMPUTE, hw.NVCBC0_INVALIDATE_SHADER_CACHES_NO_WFI, 1), _INVALIDATE,
                 pb.inc(pb.SUBCH_COMPUTE, hw.NVCBC0_SEND_PCAS_A, 1)]
_PCAS_B = [pb.inc(pb.SUBCH_COMPUTE, hw.NVCBC0_SEND_SIGNALING_PCAS2_B, 1), _PCAS_LAUNCH]
_PCAS_A = [pb.inc(pb.SUBCH_COMPUTE, hw.NVCBC0_SEND_PCAS_A, 1)]
_WFI = [pb.inc(pb.SUBCH_COMPUTE, hw.NVCBC0_WAIT_FOR_IDLE, 1), 0]
# What chaining writes into the previous launch's QMD: schedule the next QMD when done (with
# prefetch); a device-scope membar suffices between kernels of a chain (the last kernel keeps the
# system-scope membar that makes results visible to the host), with task chasing, as libcuda's
# CUDA-graph QMDs have it (read back by tests/hardware/cuda_qmd_probe.py): on an H100, 0.815 us
# per chained empty kernel against 1.058 without (a CUDA graph: 0.783), and chains of dependent
# increments and of wide cross-block reads stayed exact (tests/hardware/pdl_probe.py, 2026-12-06).
_CHAIN = (word_patch(hw.NVCBC0_QMDV04_00_DEPENDENT_QMD_ENABLE(0), hw.NVCBC0_QMDV04_00_DEPENDENT_QMD_ENABLE_TRUE),
          word_patch(hw.NVCBC0_QMDV04_00_DEPENDENT_QMD_ACTION(0),
                     hw.NVCBC0_QMDV04_00_DEPENDENT_QMD_ACTION_QMD_SCHEDULE),
          word_patch(hw.NVCBC0_QMDV04_00_DEPENDENT_QMD_PREFETCH(0), hw.NVCBC0_QMDV04_00_DEPENDENT_QMD_PREFETCH_TRUE),
          word_patch(hw.NVCBC0_QMDV04_00_CWD_MEMBAR_TYPE, hw.NVCBC0_QMDV04_00_CWD_MEMBAR_TYPE_L1_MEMBAR),
          word_patch(hw.NVCBC0_QMDV04_00_CWD_MEMBAR_TASK_CHASING_ENABLE,
                     hw.NVCBC0_QMDV04_00_CWD_MEMBAR_TASK_CHASING_ENABLE_TRUE))
_DEP_POINTER = word_field(hw.NVCBC0_QMDV04_00_DEPENDENT_QMD0_POINTER)
# A chained launch's constant bank 0 is bound by the launch before it as its bank 5 with
# PREFETCH_POST, and the chained launch does not invalidate its bank 0 at start: measured on an
# H100 (tests/hardware/pdl_probe.py, 2026-12-06), 0.786 us per chained empty kernel against
# 0.825 (a CUDA graph, whose QMDs do the same: 0.787) and 2.25 us against 2.48 per wide kernel,
# both correctness chains exact. Either half alone gains nothing. Safe because every bank 0 of a
# chain is written before the submission and the queue's first launch invalidates the constant
# caches (_LAUNCH_WORDS): what the prefetch loads is current. A program that binds bank 5 itself
# keeps the plain chain.
_NEXT_CB_BANK = 5
_NEXT_CB_LO = word_field(hw.NVCBC0_QMDV04_00_CONSTANT_BUFFER_ADDR_LOWER_SHIFTED6(_NEXT_CB_BANK))[0]
_NEXT_CB_HI = word_field(hw.NVCBC0_QMDV04_00_CONSTANT_BUFFER_ADDR_UPPER_SHIFTED6(_NEXT_CB_BANK))[0]
_NEXT_CB_ON = (word_patch(hw.NVCBC0_QMDV04_00_CONSTANT_BUFFER_VALID(_NEXT_CB_BANK), 1),
               word_patch(hw.NVCBC0_QMDV04_00_CONSTANT_BUFFER_PREFETCH(_NEXT_CB_BANK),
                          hw.NVCBC0_QMDV04_00_CONSTANT_BUFFER_PREFETCH_PREFETCH_POST))
_KEEP_CB0 = (word_patch(hw.NVCBC0_QMDV04_00_CONSTANT_BUFFER_INVALIDATE(0),
                        hw.NVCBC0_QMDV04_00_CONSTANT_BUFFER_INVALIDATE_FALSE),)
_PRE_EXIT = (word_patch(hw.NVCBC0_QMDV04_00_ENABLE_PROGRAM_PRE_EXIT, hw.NVCBC0_QMDV04_00_ENABLE_PROGRAM_PRE_EXIT_TRUE),)
#: chain consecutive launches of a queue through their QMDs (env HWDRV_NV_QMD_CHAIN=0: a
#: WAIT_FOR_IDLE and a new launch method each instead)
CHAIN_LAUNCHES = os.environ.get("HWDRV_NV_QMD_CHAIN", "1") != "0"
# A copy-engine transfer: pitch layout on both sides, one line, flushed when done.
_DMA_LAUNCH = (hw.NVC8B5_LAUNCH_DMA_DATA_TRANSFER_TYPE.encode(hw.NVC8B5_LAUNCH_DMA_DATA_TRANSFER_TYPE_NON_PIPELINED)
               | hw.NVC8B5_LAUNCH_DMA_FLUSH_ENABLE.encode(hw.NVC8B5_LAUNCH_DMA_FLUSH_ENABLE_TRUE)
               | hw.NVC8B5_LAUNCH_DMA_SRC_MEMORY_LAYOUT.encode(hw.NVC8B5_LAUNCH_DMA_SRC_MEMORY_LAYOUT_PITCH)
               | hw.NVC8B5_LAUNCH_DMA_DST_MEMORY_LAYOUT.encode(hw.NVC8B5_LAUNCH_DMA_DST_MEMORY_LAYOUT_PITCH))
#: bytes per copy-engine launch (LINE_LENGTH_IN is a 32-bit byte count)
COPY_CHUNK = 1 << 31


_CB0_GRID_WORD = (QMD_SIZE + CB0_GRID_DIM) // 4
_CB0_ADDR_BYTE = CB0_ADDR_LO[0] * 4          # low word, then the high word (qmd.py checks)
_CB0_NCLUSTERID_WORD = (QMD_SIZE + CB0_NCLUSTERID) // 4
_ADDR_WORDS = struct.Struct("<II")
_WORD = struct.Struct("<I")


#: One exec's launch words, as a list [image, mem, host]: ``mem`` the command memory the GPU
#: reads, ``image`` the program's launch image it was copied from, ``host`` None until the first
#: patch (a list: one is made per eager launch, and a class instance costs four times as much).
_Launch = list


def _patch_launch(launch: _Launch, patches: tuple[tuple[int, int, int], ...]) -> None:
    """Apply (word, clear mask, bits) patches (chaining, early start) to a launch's words.
    They read a host copy of the image, made at the first patch, and write it and command
    memory, so the GPU's copy is never read back: they touch QMD control words only, never the
    words a launch writes itself (the constant bank's address and the arguments;
    tests/test_qmd_carveout.py)."""
    image, mem, host = launch
    if host is None:
        host = launch[2] = bytearray(image)
    for word, clear, bits in patches:
        v = (_WORD.unpack_from(host, word * 4)[0] & ~clear) | bits
        _WORD.pack_into(host, word * 4, v)
        _WORD.pack_into(mem, word * 4, v)


def _write_launch(prog: NVProgram, mem: memoryview, va: int, image: bytes, hi_bits: int,
                  args: "Sequence[Any]", params: "bytearray | None" = None) -> "list | None":
    """Write a launch into its command memory (``mem``, at GPU address ``va``): the launch image,
    then what differs per launch -- constant bank 0's address and the arguments (``params``,
    packed already, or packed from ``args`` here). Returns the symbolic arguments to patch
    (None where there are none)."""
    mem[:len(image)] = image
    cb_va = va + QMD_SIZE
    _ADDR_WORDS.pack_into(mem, _CB0_ADDR_BYTE, (cb_va >> 6) & _U32, hi_bits | (cb_va >> 38))
    if params is not None:
        mem[prog.args_offset:prog.args_offset + len(params)] = params
        return None
    return prog.pack_args(args, mem, prog.args_offset) if args or prog.params else None


# launch_now's pushbuffer segment, at a fixed place at the end of each launch slot: the words
# that start a queue's first launch (with the QMD address between them), then the compute
# timeline's release. All but the QMD address and the release payload are written once, when
# the slot ring is made (_prepare_launch_slots).
_LAUNCH_SEGMENT_WORDS = len(_LAUNCH_WORDS) + 1 + len(_PCAS_B) + pb.SEMAPHORE_WORDS
_SEGMENT_QMD_WORD = len(_LAUNCH_WORDS)
_SEGMENT_PAYLOAD_WORD = len(_LAUNCH_WORDS) + 1 + len(_PCAS_B) + pb.SEMAPHORE_PAYLOAD.start


def _prepare_launch_slots(dev: "NVDevice", slots: "SlotRing") -> None:
    """Write the constant words of launch_now's segment into every slot of a new slot ring."""
    seg = np.array(_LAUNCH_WORDS + [0] + _PCAS_B
                   + pb.semaphore(dev._timelines["compute"].signal.va, 0, pb.SEM_RELEASE), np.uint32).tobytes()
    if slots.slot_size != LAUNCH_SLOT_BYTES or len(seg) != _LAUNCH_SEGMENT_WORDS * 4:
        raise ValueError("launch slots and their segment disagree with _SLOT_IMAGE_BYTES")
    for view in slots.views:
        view[_SLOT_IMAGE_BYTES:] = seg


#: the largest launch image a slot holds (the segment's words take the slot's end)
_SLOT_IMAGE_BYTES = LAUNCH_SLOT_BYTES - _LAUNCH_SEGMENT_WORDS * 4


def launch_now(dev: "NVDevice", prog: NVProgram, grid: tuple, block: tuple, args: "Sequence[Any]",
               shared: int) -> bool:
    """``Device.launch``'s fast path: one launch whose shape passed the checks (_slot_launch).
    Returns False (a queue must do it) for a kernel that needs local memory (growing it takes
    queue commands) or whose launch does not fit a slot."""
    if prog.slm_per_thread:
        return False
    img = prog._images.get((block, shared, grid))      # launch_image's cache, looked at inline
    image, hi_bits = img if img is not None else prog.launch_image(block, shared, grid)
    if len(image) > _SLOT_IMAGE_BYTES:
        return False
    _slot_launch(dev, prog, grid, block, image, hi_bits, args, None)
    return True


def _slot_launch(dev: "NVDevice", prog: NVProgram, grid: tuple, block: tuple, image: bytes, hi_bits: int,
                 args: "Sequence[Any]", params: "bytearray | None") -> int:
    """Submit one launch the way a compute queue holding just that exec would, under one hold of
    the device lock; returns its timeline value. Launch image and words go into the next slot
    of the device's launch slot ring (hwdrv/cmdmem.py SlotRing): the image at the slot's start,
    the words, made when the ring was, at its end, where the GP entry points; a launch writes
    the image, its arguments (``params``, packed already, or packed from ``args`` here), the
    QMD address and the timeline value. No command-memory piece to allocate and release, no
    pushbuffer-ring space to reserve."""
    slots = dev._launch_slots
    if slots is None:
        slots = dev._launch_slot_ring(lambda ring: _prepare_launch_slots(dev, ring))
    seg = _SLOT_IMAGE_BYTES                # where each slot's segment starts
    with dev._lock:
        if dev._closed:
            dev._check_open()
        if dev._recover_pending:
            dev.recover()
        timeline = dev._timelines["compute"]
        i = slots.next
        slots.next = i + 1 if i + 1 < len(slots.last) else 0
        if slots.last[i] > timeline._cell[0]:        # 2048 launches behind: wait for this slot's
            timeline.wait(slots.last[i], dev.submit_timeout)
        va, mem = slots.va + i * slots.slot_size, slots.views[i]
        if _write_launch(prog, mem, va, image, hi_bits, args, params):
            raise launch_var_error(prog.name)
        timeline.value = value = timeline.value + 1
        _WORD.pack_into(mem, seg + _SEGMENT_QMD_WORD * 4, va >> 8)
        pb.PAYLOAD.pack_into(mem, seg + _SEGMENT_PAYLOAD_WORD * 4, value)
        try:
            dev.channels["compute"].publish(va + seg, _LAUNCH_SEGMENT_WORDS)
        except BaseException:
            timeline.unreserve(value)
            raise
        slots.last[i] = value
        dev.submissions.append((value, [(prog, grid, block, va)]))
    return value


class _NVBound(BoundStream):
    """A bound stream whose release payload (low, high word) is written as one little-endian
    64-bit store per submit (x86-64 and aarch64 hosts, the ones hwdrv runs on, are little-endian)."""

    __slots__ = ("_tail64",)

    def __init__(self, va: int, nwords: int, words: memoryview, tail: np.ndarray):
        super().__init__(va, nwords, words, tail)
        self._tail64 = memoryview(tail).cast("B").cast("Q")


class NVQueue(Queue):
    """Host-class verbs shared by the compute and copy queues."""

    device: "NVDevice"

    def _q_wait(self, signal: "Signal", value: IntArg) -> None:
        self._semaphore(signal.va, value, pb.SEM_ACQUIRE_GEQ)

    def _q_signal(self, signal: "Signal", value: IntArg) -> None:
        self._semaphore(signal.va, value, pb.SEM_RELEASE_TS)

    def _q_timestamp(self, signal: "Signal") -> None:
        self._semaphore(signal.va, 0, pb.SEM_TIMESTAMP_ONLY)

    #: (program, grid, block, QMD address) of every exec of this queue, recorded with each
    #: submission for hang reports (compute queues; a list from the first exec on)
    launches: "list[tuple[NVProgram, tuple, tuple, int]] | tuple" = ()

    def _push(self, value: int) -> None:
        dev = self.device
        kind = self.kind
        bound = self._bound
        if bound is not None:
            bound._tail64[0] = value                 # the release payload, one 64-bit store
            dev.channels[kind].publish(bound.va, bound.nwords)
        else:
            dev.channels[kind].push_copy(self._stream.words.tobytes(), dev._timelines[kind].signal.va, value)
        if self.launches:
            dev.submissions.append((value, self.launches))

    def _bind_stream(self) -> BoundStream:
        words = self._stream.words
        release = pb.semaphore(self.device._timelines[self.kind].signal.va, 0, pb.SEM_RELEASE)
        n = len(words) + len(release)
        if n > pb.MAX_SEGMENT_WORDS:
            raise InvalidArgument(f"bind: this queue's {n} command words exceed the {pb.MAX_SEGMENT_WORDS} "
                                  f"one submission can fetch; split its work over several queues")
        va, mem = self.device._cmd_alloc(self, n * 4, 256)
        view = mem.view(np.uint32)[:n]
        view[:len(words)] = words
        view[len(words):] = release
        tail = view[len(words):][pb.SEMAPHORE_PAYLOAD]
        # patch sites write the stream through a memoryview: a quarter of a numpy item store
        return _NVBound(va, n, memoryview(view[:len(words)]), tail)

    def _semaphore(self, va: int, value: IntArg, execute: int) -> None:
        words = pb.semaphore(va, 0 if isinstance(value, VarExpr) else value, execute)
        self._emit(*words[:3])
        self._emit_val(value, 2)
        self._emit(words[5])


class NVComputeQueue(NVQueue):
    """Compute queue on the channel with the HOPPER_COMPUTE_A object."""

    kind = "compute"
    _prev: _Launch | None = None                   # the exec just before, if nothing came between
    _chained_from: _Launch | None = None           # the launch that schedules the last exec, if chained
    _invalidated = False

    def _emit(self, *words: int) -> None:
        self._prev = None
        super()._emit(*words)

    def _q_exec(self, prog: NVProgram, grid: tuple, block: tuple, args: list, shared: int,
                cluster: tuple[int, int, int] | None = None) -> None:
        # A fresh queue's first exec (an eager runtime's queue per launch) is kept pending: its
        # arguments are checked and packed now, and if nothing else comes the submit launches
        # it through Device.launch's slot ring (_submit_pending); anything else writes it first.
        if self._pending is None:
            if self._prev is None and not self._words and not self.launches and cluster is None \
                    and not prog.slm_per_thread:
                img = prog._images.get((block, shared, grid))     # only concrete grids are cached
                if img is not None and len(img[0]) <= _SLOT_IMAGE_BYTES:
                    params = None
                    if args or prog.params:
                        params = bytearray(prog.param_size)
                        if prog.pack_args(args, params, 0):        # a Var: patched, so written now
                            params = None
                            img = None
                    if img is not None:
                        self._pending = (prog, grid, block, args, shared, img[0], img[1], params)
                        return
        else:
            self._materialize()
        self._q_exec_now(prog, grid, block, args, shared, cluster)

    def _submit_pending(self) -> bool:
        prog, grid, block, args, _shared, image, hi_bits, params = self._pending
        dev = self.device
        value = _slot_launch(dev, prog, grid, block, image, hi_bits, args, params)
        self._sealed = True                 # submitted: no more commands (a resubmit writes it)
        life = self._life
        life.timeline, life.last_submit = dev._timelines["compute"], value
        return True

    def _materialize(self) -> None:
        # with the arguments as packed at exec (the caller may have changed its list since)
        prog, grid, block, args, shared, _image, _hi_bits, params = self._pending
        self._pending = None
        sealed, self._sealed = self._sealed, False
        self._q_exec_now(prog, grid, block, args, shared, params=params)
        if sealed:
            self._seal()

    def _q_exec_now(self, prog: NVProgram, grid: tuple, block: tuple, args: list, shared: int,
                    cluster: tuple[int, int, int] | None = None, params: "bytearray | None" = None) -> None:
        dev = self.device
        gx, gy, gz = grid
        concrete = type(gx) is int and type(gy) is int and type(gz) is int
        # bytes with everything but the constant bank's address and the arguments in place
        # (a cluster launch's grid is concrete: the core refuses a Var grid with clusters)
        image, hi_bits = prog.launch_image(block, shared, grid if concrete else (1, 1, 1), cluster,
                                           dev.cluster_variant if cluster else None)
        va, _, _, mem = dev._cmd_piece(self, len(image), QMD_ALIGN)
        sym_args = _write_launch(prog, mem, va, image, hi_bits, args, params)
        if not concrete or sym_args:
            target = WordBuffer(np.frombuffer(mem, np.uint32))
            if not concrete:
                for i, (g, (wi, sh, mask)) in enumerate(zip(grid, (GRID_X, GRID_Y, GRID_Z))):
                    self._site(target, wi, g, 1, sh, mask)
                    self._site(target, _CB0_GRID_WORD + i, g)
                    self._site(target, _CB0_NCLUSTERID_WORD + i, g)     # an implicit 1x1x1 cluster
            for off, size, expr in sym_args:
                self._site(target, off // 4, expr, size // 4)
        if prog.slm_per_thread:
            dev._ensure_slm(self, prog.slm_per_thread)
        prev = self._prev
        launch = [image, mem, None]
        if prev is not None and CHAIN_LAUNCHES:
            # Back-to-back launches: the previous grid schedules this one when it completes,
            # in hardware, with no host method in between (in-order, no WAIT_FOR_IDLE).
            word, shift, mask = _DEP_POINTER
            patches = _CHAIN + ((word, mask, (va >> 8) << shift),)
            if _NEXT_CB_BANK not in self.launches[-1][0].const_banks:
                # (the two words of this launch's bank-0 binding, as the bank-5 binding's)
                cb_va = va + QMD_SIZE
                patches += _NEXT_CB_ON + ((_NEXT_CB_LO, _U32, (cb_va >> 6) & _U32),
                                          (_NEXT_CB_HI, _U32, hi_bits | (cb_va >> 38)))
                _patch_launch(launch, _KEEP_CB0)
            _patch_launch(prev, patches)
            self._chained_from = prev
        else:
            self._chained_from = None
            # straight into the word list (this queue's _emit would forget the launch just made)
            words = self._words
            if prev is not None:
                words += _WFI
            words += _PCAS_A if self._invalidated else _LAUNCH_WORDS
            words.append(va >> 8)
            words += _PCAS_B
            self._invalidated = True
        self._prev = launch
        launches = self.launches
        if not launches:             # the first exec: the queue's own list replaces the class's ()
            launches = self.launches = []
        launches.append((prog, grid, block, va))

    def _q_early_start(self) -> None:
        # The previous kernel's griddepcontrol.launch_dependents (SASS PREEXIT) schedules this
        # QMD: measured on an H100 (tests/hardware/pdl_probe.py, 2026-12-06) with the field on
        # every QMD of a chain, 0.37 us per dependent kernel against 1.04 chained without, and a
        # chain of 1000 dependent increments stayed exact. PRE_EXIT_AT_LAST_CTA_LAUNCH lost
        # increments (494 of 1000): not used. A launch not chained to a previous one (the first
        # of a queue, or after a host method) starts as usual.
        if self._chained_from is not None:
            _patch_launch(self._chained_from, _PRE_EXIT)

    def _q_copy(self, dst: IntArg, src: IntArg, size: int) -> None:
        """Copy with the SMs (device-to-device at memory speed): 16-byte vectors, then a byte
        tail; any misalignment copies bytewise. Addresses must be concrete ints here."""
        if isinstance(dst, VarExpr) or isinstance(src, VarExpr):
            raise InvalidArgument("a compute-queue copy needs concrete addresses (use a copy queue "
                                  "for Var addresses)")
        dev = self.device
        max_blocks = dev.sm_count * COPY_BLOCKS_PER_SM
        n16 = size // 16 if not (dst | src) & 15 else 0
        if n16:
            blocks = min(max_blocks, -(-n16 // COPY_THREADS))
            self.exec(builtin(dev, "hwdrv_copy16"), grid=(blocks,), block=(COPY_THREADS,),
                      args=[dst, src, n16])
        rest = size - n16 * 16
        if rest:
            blocks = min(max_blocks, -(-rest // COPY_THREADS))
            self.exec(builtin(dev, "hwdrv_copy1"), grid=(blocks,), block=(COPY_THREADS,),
                      args=[dst + n16 * 16, src + n16 * 16, rest])

    def _q_memory_barrier(self) -> None:
        self._emit(*_WFI)
        self._emit(pb.inc(pb.SUBCH_HOST, hw.NVC86F_MEM_OP_A, 4), 0, 0,
                   hw.NVC86F_MEM_OP_C_MEMBAR_TYPE.encode(hw.NVC86F_MEM_OP_C_MEMBAR_TYPE_SYS_MEMBAR),
                   hw.NVC86F_MEM_OP_D_OPERATION.encode(hw.NVC86F_MEM_OP_D_OPERATION_MEMBAR))

    def _emit_slm(self, va: int, bytes_per_tpc: int) -> None:
        """Point shader local memory at ``va`` (``bytes_per_tpc`` per TPC)."""
        self._emit(*_WFI)
        self._emit(pb.inc(pb.SUBCH_COMPUTE, hw.NVCBC0_SET_SHADER_LOCAL_MEMORY_A, 2), va >> 32, va & _U32)
        self._emit(pb.inc(pb.SUBCH_COMPUTE, hw.NVCBC0_SET_SHADER_LOCAL_MEMORY_NON_THROTTLED_A, 3),
                   bytes_per_tpc >> 32, bytes_per_tpc & _U32,
                   hw.NVCBC0_SET_SHADER_LOCAL_MEMORY_NON_THROTTLED_C_MAX_SM_COUNT.encode(
                       (1 << hw.NVCBC0_SET_SHADER_LOCAL_MEMORY_NON_THROTTLED_C_MAX_SM_COUNT.width) - 1))

class NVCopyQueue(NVQueue):
    """Copy queue on the channel with the HOPPER_DMA_COPY_A object."""

    kind = "copy"

    def _q_copy(self, dst: IntArg, src: IntArg, size: int) -> None:
        off = 0
        while off < size:
            n = min(COPY_CHUNK, size - off)
            s = src + off if off else src
            d = dst + off if off else dst
            self._emit(pb.inc(pb.SUBCH_COPY, hw.NVC8B5_OFFSET_IN_UPPER, 4))
            for a in (s, d):
                self._emit_val(a >> 32)
                self._emit_val(a & _U32)
            self._emit(pb.inc(pb.SUBCH_COPY, hw.NVC8B5_LINE_LENGTH_IN, 1), n,
                       pb.inc(pb.SUBCH_COPY, hw.NVC8B5_LAUNCH_DMA, 1), _DMA_LAUNCH)
            off += n
