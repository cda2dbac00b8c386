"""QcomComputeQueue: the raw queue verbs as a6xx PM4 packets in one IB per submission.

* ``wait``: CP_WAIT_REG_MEM on the signal's high word (>= target's), then on its low word
  (>= target's), unsigned. This is ``value >= target`` for every value whose high word equals the
  target's once it reaches it (all values below 2**32, and counters that do not jump a whole 2**32
  block past the target while waited on); a6xx has no 64-bit memory compare.
* ``signal``: CP_WAIT_FOR_IDLE, CP_EVENT_WRITE CACHE_FLUSH_TS (write back UCHE; its value goes to the
  device's scratch word), CP_EVENT_WRITE with the TIMESTAMP bit into the signal's timestamp word,
  CP_WAIT_MEM_WRITES, then one CP_MEM_WRITE of both words of the value.
* ``timestamp``: CP_WAIT_FOR_IDLE, then CP_EVENT_WRITE with the TIMESTAMP bit: the 64-bit always-on
  counter (19.2 MHz) lands in the signal's timestamp word.
* ``exec``: the compute state (SP_CS_* / HLSQ_CS_*), CP_LOAD_STATE6_FRAG of the shader, of the
  const file (launch values + arguments, a side buffer in command memory) and of UBO 0's descriptor
  (the same block, for parameters past the const file), CP_EXEC_CS, then
  CP_WAIT_FOR_IDLE so launches of a queue run in order.
* ``copy``: a compute blit (hwdrv_copy4 / hwdrv_copy1 from samples.py): there is no copy engine.
* ``_push``: one GPU_COMMAND whose IB is the stream plus the timeline release (a signal write).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidArgument
from ..ioctl.bindings import encode
from ..queue import BoundStream, Queue, WordBuffer
from ..var import IntArg, VarExpr
from . import binary as B
from . import pm4
from .gen import a6xx as A
from .gen import adreno_pm4 as P
from .samples import COPY_THREADS

if TYPE_CHECKING:
    from ..signal import Signal
    from .device import QcomDevice
    from .program import QcomProgram

_U32 = 0xFFFFFFFF
_NONE_REG = 0xFC                 # "no register" in the HLSQ_CS_CNTL_0/1 register-id fields (r63.x)
#: instruction-cache units CP_LOAD_STATE6 may preload (A630: 64 units of 128 bytes)
ICACHE_UNITS = 64
#: private memory: 512-byte units per fiber, fibers and SP cores of an A630, 4 KiB per-SP alignment
#: (freedreno_devices.py a630: fibers_per_sp 2048, num_sp_cores 2; Mesa ir3 pvtmem layout)
PVT_UNIT, FIBERS_PER_SP, SP_CORES, PVT_SP_ALIGN = 512, 2048, 2, 4096
#: largest group count per dimension a blit launch uses
MAX_BLIT_GROUPS = 65535
#: HLSQ_INVALIDATE_CMD: drop the CS state and CS IBOs loaded earlier
_INVALIDATE = encode(A, "HLSQ_INVALIDATE_CMD", CS_STATE=1, CS_IBO=1)
_MODE = encode(A, "SP_MODE_CONTROL", CONSTANT_DEMOTION_ENABLE=1, ISAMMODE=A.ISAMMODE_GL)


def release_words(device: "QcomDevice", va: int, value: int) -> list[int]:
    """The end-of-work write of a 64-bit ``value`` to the signal at ``va`` (with the always-on
    counter in its timestamp word, written first); the value is the last 2 words."""
    return (pm4.wait_for_idle() + pm4.event(P.CACHE_FLUSH_TS, device.scratch.va, 0)
            + pm4.event(P.CACHE_FLUSH_TS, va + 8, timestamp=True) + pm4.pkt7(P.CP_WAIT_MEM_WRITES, [])
            + pm4.pkt7(P.CP_MEM_WRITE, [*pm4.lohi(va), value & _U32, value >> 32]))


class QcomComputeQueue(Queue):
    """The compute queue (the only engine kgsl exposes to compute)."""

    kind = "compute"
    device: "QcomDevice"

    def __init__(self, device: "QcomDevice"):
        super().__init__(device)
        #: (program, grid, block) of every exec, for hang reports
        self.launches: list[tuple["QcomProgram", tuple, tuple]] = []

    def _packet(self, words: list[int], vals: dict[int, tuple[IntArg, int]] | None = None) -> None:
        """Append ``words``; ``vals`` maps a word index to (value, nwords) that may be a Var."""
        i = 0
        for at, (v, n) in sorted((vals or {}).items()):
            self._emit(*words[i:at])
            self._emit_val(v, n)
            i = at + n
        self._emit(*words[i:])

    # ---- verbs ------------------------------------------------------------------------
    def _q_wait(self, signal: "Signal", value: IntArg) -> None:
        hi, lo = value >> 32, value & _U32
        self._packet(pm4.wait_mem_ge(signal.va + 4, 0), {4: (hi, 1)})
        self._packet(pm4.wait_mem_ge(signal.va, 0), {4: (lo, 1)})

    def _q_signal(self, signal: "Signal", value: IntArg) -> None:
        words = release_words(self.device, signal.va, 0)
        self._packet(words, {len(words) - 2: (value, 2)})

    def _q_timestamp(self, signal: "Signal") -> None:
        self._emit(*pm4.wait_for_idle(), *pm4.event(P.CACHE_FLUSH_TS, signal.va + 8, timestamp=True))

    def _q_memory_barrier(self) -> None:
        self._emit(*pm4.wait_for_idle(), *pm4.event(P.CACHE_FLUSH_TS, self.device.scratch.va, 0),
                   *pm4.event(P.CACHE_INVALIDATE), *pm4.pkt7(P.CP_WAIT_MEM_WRITES, []))

    def _q_exec(self, prog: "QcomProgram", grid: tuple, block: tuple, args: list, shared: int) -> None:
        dev, m = self.device, prog.meta
        va, mem = dev._cmd_alloc(self, m.block_vec4 * 16, 64)
        image = np.zeros(m.block_vec4 * 4, np.uint32)
        image[B.LOCALSIZE_VEC4 * 4:B.LOCALSIZE_VEC4 * 4 + 4] = (*block, block[0] * block[1] * block[2])
        sym = prog.pack_args(args, image.view(np.uint8), 0)
        for i, g in enumerate(grid):
            if not isinstance(g, VarExpr):
                image[B.NUMWG_VEC4 * 4 + i] = g
        consts = mem.view(np.uint32)[:image.size]
        consts[:] = image
        target = WordBuffer(consts)
        for i, g in enumerate(grid):
            if isinstance(g, VarExpr):
                self._site(target, B.NUMWG_VEC4 * 4 + i, g)
        for off, size, expr in sym:
            self._site(target, off // 4, expr, size // 4)

        ts = A.THREAD128 if m.threadsize == 128 else A.THREAD64
        shared_total = m.shared + shared
        # SHARED_SIZE: 0 = 32 KiB, else (n + 1) KiB
        kib = -(-shared_total // 1024)
        shared_field = 0 if kib >= 32 else max(1, kib - 1)
        lx, ly, lz = block
        self._emit(*pm4.set_marker(P.RM6_COMPUTE),
                   *pm4.pkt4(A.HLSQ_INVALIDATE_CMD, [_INVALIDATE]), *pm4.pkt4(A.HLSQ_INVALIDATE_CMD, [0]),
                   *pm4.pkt4(A.SP_MODE_CONTROL, [_MODE]),
                   *pm4.pkt4(A.SP_PERFCTR_ENABLE, [encode(A, "SP_PERFCTR_ENABLE", CS=1)]),
                   *pm4.wait_for_idle(),
                   *pm4.pkt4(A.HLSQ_CS_NDRANGE_0, [encode(A, "HLSQ_CS_NDRANGE_0", KERNELDIM=3, LOCALSIZEX=lx - 1,
                                                          LOCALSIZEY=ly - 1, LOCALSIZEZ=lz - 1)]))
        # NDRANGE_1..6: global size (threads) and offset per dimension
        self._emit(pm4.pkt4(A.HLSQ_CS_NDRANGE_1, [0] * 6)[0])     # NDRANGE_1..6, consecutive
        for g, b in zip(grid, block):
            self._emit_val(g * b)
            self._emit(0)
        self._emit(*pm4.pkt4(A.HLSQ_CS_CNTL_0, [encode(A, "HLSQ_CS_CNTL_0", WGIDCONSTID=m.wgid, WGSIZECONSTID=_NONE_REG,
                                                       WGOFFSETCONSTID=_NONE_REG, LOCALIDREGID=m.localid)]),
                   *pm4.pkt4(A.HLSQ_CS_CNTL_1, [encode(A, "HLSQ_CS_CNTL_1", LINEARLOCALIDREGID=_NONE_REG, THREADSIZE=ts)]),
                   *pm4.pkt4(A.HLSQ_CS_KERNEL_GROUP_X, [1, 1, 1]),
                   *pm4.pkt4(A.SP_CS_CTRL_REG0, [encode(A, "SP_CS_CTRL_REG0", THREADSIZE=ts, FULLREGFOOTPRINT=m.full_regs,
                                                        MERGEDREGS=1, BRANCHSTACK=m.branchstack)]),
                   *pm4.pkt4(A.SP_CS_CTRL_REG1, [encode(A, "SP_CS_CTRL_REG1", SHARED_SIZE=shared_field,
                                                        CONSTANTRAMMODE=A.CONSTLEN_256)]),
                   *pm4.pkt4(A.SP_CS_OBJ_START, pm4.lohi(prog.code.va)),
                   *pm4.pkt4(A.SP_CS_OBJ_FIRST_EXEC_OFFSET, [0]),
                   *pm4.pkt4(A.SP_CS_INSTRLEN, [prog.instrlen]),
                   *pm4.load_state(P.ST6_SHADER, P.SB6_CS_SHADER, min(prog.instrlen, ICACHE_UNITS), prog.code.va),
                   *pm4.pkt4(A.HLSQ_CS_CNTL, [encode(A, "HLSQ_CS_CNTL", CONSTLEN=m.const_vec4 >> A.HLSQ_CS_CNTL_CONSTLEN_SHR,
                                                     ENABLED=1)]),
                   *pm4.load_state(P.ST6_CONSTANTS, P.SB6_CS_SHADER, m.const_vec4, va),
                   # UBO 0: the whole parameter block (A6XX_UBO: base, size in vec4)
                   *pm4.load_state_direct(P.ST6_UBO, P.SB6_CS_SHADER, 1, [
                       encode(A, "A6XX_UBO_0", BASE_LO=va & _U32),
                       encode(A, "A6XX_UBO_1", BASE_HI=va >> 32, SIZE=m.block_vec4)]),
                   *pm4.pkt4(A.SP_CS_TEX_COUNT, [0]), *pm4.pkt4(A.SP_CS_IBO_COUNT, [len(m.ibos)]),
                   *pm4.pkt4(A.SP_CS_CONFIG, [encode(A, "SP_CS_CONFIG", ENABLED=1, NIBO=len(m.ibos))]))
        if m.private:
            self._emit_private(m.private)
        if m.ibos:
            self._emit_ibos(prog, args)
        words = pm4.exec_cs(0, 0, 0)
        self._packet(words, {2: (grid[0], 1), 3: (grid[1], 1), 4: (grid[2], 1)})
        self._emit(*pm4.wait_for_idle())
        self.launches.append((prog, grid, block))

    def _emit_ibos(self, prog: "QcomProgram", args: list) -> None:
        """The IBO descriptor table (one A6XX_TEX_CONST per listed pointer parameter: a linear buffer
        of 32-bit elements over the whole Buffer, as Mesa's computerator builds it), loaded with
        CP_LOAD_STATE6 and pointed at by SP_CS_IBO."""
        from ..memory.buffer import Buffer
        ibos = prog.meta.ibos
        va, mem = self.device._cmd_alloc(self, 64 * len(ibos), 64)
        table = mem.view(np.uint32)[:16 * len(ibos)]
        table[:] = 0
        for slot, i in enumerate(ibos):
            buf = args[i]
            if not isinstance(buf, Buffer):
                raise InvalidArgument(f"{prog.name} argument {i} ({prog.params[i].name}) is bound as IBO {slot}: pass "
                                      f"a Buffer (its size bounds the IBO), not {type(buf).__name__}")
            elems = buf.size // 4
            if elems >> (A.A6XX_TEX_CONST_1_WIDTH.width + A.A6XX_TEX_CONST_1_HEIGHT.width):
                raise InvalidArgument(f"{prog.name}: a {buf.size}-byte buffer is too large for an IBO descriptor")
            d = table[16 * slot:16 * slot + 16]
            d[0] = encode(A, "A6XX_TEX_CONST_0", FMT=A.FMT6_32_UINT, TILE_MODE=A.TILE6_LINEAR)
            d[1] = encode(A, "A6XX_TEX_CONST_1", WIDTH=elems & ((1 << A.A6XX_TEX_CONST_1_WIDTH.width) - 1),
                          HEIGHT=elems >> A.A6XX_TEX_CONST_1_WIDTH.width)
            d[2] = encode(A, "A6XX_TEX_CONST_2", STRUCTSIZETEXELS=1, TYPE=A.A6XX_TEX_BUFFER)
            d[4] = encode(A, "A6XX_TEX_CONST_4", BASE_LO=(buf.va & _U32) >> A.A6XX_TEX_CONST_4_BASE_LO_SHR)
            d[5] = encode(A, "A6XX_TEX_CONST_5", BASE_HI=buf.va >> 32)
        self._emit(*pm4.load_state(P.ST6_IBO, P.SB6_CS_SHADER, len(ibos), va), *pm4.pkt4(A.SP_CS_IBO, pm4.lohi(va)))

    def _emit_private(self, per_fiber: int) -> None:
        """Private memory as Mesa lays it out for a6xx (qcom.md 2.6): per SP, every fiber's slot
        (per_fiber rounded to 512 bytes, times FIBERS_PER_SP) rounded to 4 KiB; the device's
        buffer holds one such area per SP core; the hardware stack follows each SP's area."""
        dev = self.device
        item = -(-per_fiber // PVT_UNIT) * PVT_UNIT
        per_sp = -(-item * FIBERS_PER_SP // PVT_SP_ALIGN) * PVT_SP_ALIGN
        va = dev._private_memory(per_sp * SP_CORES)
        self._emit(*pm4.pkt4(A.SP_CS_PVT_MEM_PARAM, [encode(A, "SP_CS_PVT_MEM_PARAM",
                                                            MEMSIZEPERITEM=item >> A.SP_CS_PVT_MEM_PARAM_MEMSIZEPERITEM_SHR)]),
                   *pm4.pkt4(A.SP_CS_PVT_MEM_ADDR, pm4.lohi(va)),
                   *pm4.pkt4(A.SP_CS_PVT_MEM_SIZE, [encode(A, "SP_CS_PVT_MEM_SIZE",
                                                           TOTALPVTMEMSIZE=per_sp >> A.SP_CS_PVT_MEM_SIZE_TOTALPVTMEMSIZE_SHR)]),
                   *pm4.pkt4(A.SP_CS_PVT_MEM_HW_STACK_OFFSET, [encode(
                       A, "SP_CS_PVT_MEM_HW_STACK_OFFSET", OFFSET=per_sp >> A.SP_CS_PVT_MEM_HW_STACK_OFFSET_OFFSET_SHR)]))

    def _q_copy(self, dst: IntArg, src: IntArg, size: int) -> None:
        if isinstance(dst, VarExpr) or isinstance(src, VarExpr):
            raise InvalidArgument("a Qualcomm copy runs as a compute blit and needs concrete addresses "
                                  "(a Var address cannot be patched into the blit's arguments yet)")
        aligned = not (dst | src) & 3
        n4 = size // 4 if aligned else 0
        if n4:
            self._blit("hwdrv_copy4", dst, src, n4, 4)
        rest = size - 4 * n4
        if rest:
            self._blit("hwdrv_copy1", dst + 4 * n4, src + 4 * n4, rest, 1)

    def _blit(self, kernel: str, dst: int, src: int, count: int, unit: int) -> None:
        prog = self.device._builtin(kernel)
        step = MAX_BLIT_GROUPS * COPY_THREADS
        for first in range(0, count, step):
            n = min(step, count - first)
            self.exec(prog, grid=(-(-n // COPY_THREADS),), block=(COPY_THREADS,),
                      args=[dst + first * unit, src + first * unit, n])

    # ---- submission -------------------------------------------------------------------
    def _push(self, value: int) -> None:
        dev = self.device
        tl = dev._timelines[self.kind]
        bound = self._bound
        if bound is not None:
            bound.set_timeline_value(value)
            dev._submit(bound.va, bound.nwords * 4, value, self.launches)
        else:
            words = np.concatenate([self._stream.words, np.array(release_words(dev, tl.signal.va, value), np.uint32)])
            va = dev.cmd_ring.put(words, value)
            dev._submit(va, words.size * 4, value, self.launches)

    def _bind_stream(self) -> BoundStream:
        dev = self.device
        words = self._stream.words
        tail = release_words(dev, dev._timelines[self.kind].signal.va, 0)
        n = len(words) + len(tail)
        va, mem = dev._cmd_alloc(self, n * 4, 64)
        view = mem.view(np.uint32)[:n]
        view[:len(words)] = words
        view[len(words):] = tail
        return BoundStream(va, n, view[:len(words)], view[n - 2:])
