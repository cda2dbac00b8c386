"""Run one compute dispatch of gfx11 machine code on the mock GPU.

Entry point for the mock CP::

    dispatch(mem, *, pgm_addr, rsrc1, rsrc2, rsrc3, user_sgprs, grid, block, lds_bytes,
             scratch_base=0, scratch_per_wave=0, deadline=None, cancel=None) -> DispatchResult

- ``mem``: the GPU's ``GpuPageTable``; code, kernel arguments and buffers are read through it.
- ``pgm_addr``: GPU address of the first instruction (COMPUTE_PGM_LO/HI << 8).
- ``rsrc1/2/3``: COMPUTE_PGM_RSRC1/2/3 (fields from ``rdna3_isa.KD_FIELDS``).
- ``user_sgprs``: COMPUTE_USER_DATA_0.. values, loaded into s0.. (USER_SGPR_COUNT of them).
- ``grid``: workgroup counts (DISPATCH_DIRECT dims); ``block``: work-items per workgroup.
- ``lds_bytes``: LDS per workgroup; ``scratch_base``/``scratch_per_wave``: the private segment.
  Wave w (in dispatch order) owns ``scratch_per_wave`` bytes at ``scratch_base + w *
  scratch_per_wave``, dword-interleaved across its 32 lanes as swizzled scratch is (private byte p
  of lane l is at ``(p // 4) * 128 + l * 4 + p % 4``); each lane has ``scratch_per_wave // 32``
  bytes and a private address past that is a MemoryFault ("out-of-range").
- ``deadline`` (time.monotonic() value) / ``cancel``: stop with a :class:`ShaderTimeout`.
- ``grid_items`` (optional): work-items per dimension when the CP dispatches by thread counts
  (DISPATCH_INITIATOR.USE_THREAD_DIMENSIONS + PARTIAL_TG_EN, or an AQL packet's grid_size): the
  last workgroup of a dimension then holds only the remaining work-items (OpenCL 2.0 non-uniform
  work-groups). Without it every workgroup is full.

Initial wave state (amd.md 4.4): s[0:USER_SGPR_COUNT) = user SGPRs; then workgroup id X, Y, Z
(each if ENABLE_SGPR_WORKGROUP_ID_*), at s[USER_SGPR_COUNT]; v0 = x | y << 10 | z << 20 (the ids
ENABLE_VGPR_WORKITEM_ID enables); EXEC = the lanes that hold work-items; wave32.

Execution: all waves of a batch of workgroups are held in numpy arrays (wave x lane). Each step
runs the instruction at the lowest PC for every wave at that PC (so uniform code runs all waves
at once, divergent waves reconverge at the lowest PC, and a wave never passes s_barrier before the
other waves of its workgroup reach it). Faults: :class:`ShaderFault` (s_trap, illegal or
unsupported instruction, timeout) or the page table's ``MemoryFault`` (annotated with ``pc``,
``wave``, ``workgroup``, ``disasm``).
"""
from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ....amd.gen import rdna3_isa as isa
from ...gpumem import GpuPageTable, MemoryFault
from .decode import DecodeError, Inst, decode, disasm
from .snapshot import WaveSnapshot
from .faults import ShaderFault, ShaderTimeout, Unsupported
from .salu import compile_salu, compile_smem
from .state import EXEC, LANES, WaveState
from .valu import compile_valu
from .vmem import compile_ds, compile_flat, compile_mubuf

KD = isa.KD_FIELDS
MAX_BATCH_LANES = 1 << 17          # lanes held in one batch (bounds VGPR memory)
CHECK_EVERY = 64                    # steps between deadline/cancel checks


def field(reg: str, name: str, value: int) -> int:
    sh, w = KD[reg][name]
    return (value >> sh) & ((1 << w) - 1)


@dataclass
class DispatchResult:
    """Counts of one dispatch: waves run, wave-instructions executed (one per wave per
    instruction), lane-instructions (wave-instructions x 32) and the wall time in seconds."""
    waves: int
    wave_instructions: int
    lane_instructions: int
    seconds: float


class _Op:
    __slots__ = ("fn", "size", "inst", "error")

    def __init__(self, fn, size, inst, error=None):
        self.fn, self.size, self.inst, self.error = fn, size, inst, error


class Program:
    """Decoded-and-compiled instructions of one dispatch, by byte offset from pgm_addr."""

    def __init__(self, mem: GpuPageTable, pgm_addr: int, ctx):
        self.mem, self.base, self.ctx = mem, pgm_addr, ctx
        self.ops: dict[int, _Op] = {}

    def words_at(self, off: int) -> tuple:
        for n in (4, 3, 2, 1):
            try:
                return struct.unpack(f"<{n}I", self.mem.read(self.base + off, 4 * n))
            except MemoryFault:
                if n == 1:
                    raise
        raise AssertionError("unreachable")

    def op(self, off: int) -> _Op:
        o = self.ops.get(off)
        if o is None:
            o = self.ops[off] = self._compile(off)
        return o

    def _compile(self, off: int) -> _Op:
        words = self.words_at(off)
        try:
            inst = decode(words)
        except DecodeError as e:
            return _Op(None, 4, None, ("illegal", str(e)))
        try:
            fn = _COMPILERS[inst.fmt](inst, self.ctx)
        except Unsupported as e:
            return _Op(None, inst.size, inst, ("unsupported", str(e)))
        return _Op(fn, inst.size, inst)


def _compile_vector(inst: Inst, ctx):
    return compile_valu(inst)


_COMPILERS = {"SOP1": compile_salu, "SOP2": compile_salu, "SOPC": compile_salu, "SOPK": compile_salu,
              "SOPP": compile_salu, "SMEM": compile_smem, "VOP1": _compile_vector, "VOP2": _compile_vector,
              "VOPC": _compile_vector, "VOP3": _compile_vector, "VOP3P": _compile_vector,
              "VOPD": _compile_vector, "DS": compile_ds, "FLAT": compile_flat, "GLOBAL": compile_flat,
              "SCRATCH": compile_flat, "MUBUF": compile_mubuf}


class _Ctx:
    """What compiled instructions need from the dispatch."""

    def __init__(self, mem, pgm_addr):
        self.mem, self.pgm_addr = mem, pgm_addr
        self.batch = None   # (first wave index, workgroup ids (W, 3)) of the running batch
        self.wpg = 1        # waves per workgroup
        self.prog: Program | None = None

    def hw_id1(self, st: WaveState) -> np.ndarray:
        """HW_ID1-like word: wave id within the batch in bits 0-4 (WAVE_ID), SIMD 0."""
        return (np.arange(st.W) & 0x1F).astype(np.uint32)

    def fault(self, st: WaveState, kind: str, message: str, off: int | None = None) -> ShaderFault:
        w = int(np.flatnonzero(st.act)[0]) if st.act.any() else 0
        pc = int(st.pc[w]) if off is None else off
        o = self.prog.ops.get(pc) if self.prog else None
        text = "<undecodable>"
        if o is not None and o.inst is not None:
            try:
                text = disasm(o.inst)
            except DecodeError:
                text = o.inst.name
        first, wgids = self.batch
        cls = ShaderTimeout if kind == "timeout" else ShaderFault
        status, trapsts = _STATUS_HALT if kind != "timeout" else 0, _TRAPSTS.get(kind, 0)
        snap = WaveSnapshot(st, self.pgm_addr, first, wgids, self.wpg, w, status, trapsts)
        return cls(kind, message, pc=self.pgm_addr + pc, wave=first + w, workgroup=tuple(int(x) for x in wgids[w]),
                   disasm=text, exec_mask=int(st.s[EXEC][w]), status=status, trapsts=trapsts,
                   hw_id=int(self.hw_id1(st)[w]), sgprs=[int(x) for x in st.s[:106, w]], snapshot=snap)


# STATUS.HALT (bit 13) and TRAPSTS exception bits as gfx11 reports them (SQ_WAVE_STATUS / TRAPSTS:
# ILLEGAL_INST is TRAPSTS bit 11 (EXCP_HI), s_trap sets no TRAPSTS bit).
_STATUS_HALT = 1 << 13
_TRAPSTS = {"illegal": 1 << 11, "unsupported": 1 << 11}


def dispatch(mem: GpuPageTable, *, pgm_addr: int, rsrc1: int, rsrc2: int, rsrc3: int,
             user_sgprs: Sequence[int], grid: tuple[int, int, int], block: tuple[int, int, int],
             lds_bytes: int, scratch_base: int = 0, scratch_per_wave: int = 0,
             deadline: float | None = None, cancel: threading.Event | None = None,
             grid_items: tuple[int, int, int] | None = None) -> DispatchResult:
    """Run a dispatch to completion (see the module docstring)."""
    t0 = time.perf_counter()
    nuser = field("COMPUTE_PGM_RSRC2", "USER_SGPR_COUNT", rsrc2)
    if len(user_sgprs) < nuser:
        raise ShaderFault("illegal", f"USER_SGPR_COUNT is {nuser} but only {len(user_sgprs)} user SGPRs given",
                          pc=pgm_addr, wave=0, workgroup=(0, 0, 0), disasm="", exec_mask=0)
    if field("COMPUTE_PGM_RSRC1", "FLOAT_ROUND_MODE_32", rsrc1) or field("COMPUTE_PGM_RSRC1", "FLOAT_ROUND_MODE_16_64", rsrc1):
        raise ShaderFault("unsupported", "only round-to-nearest-even FP mode is modelled", pc=pgm_addr, wave=0,
                          workgroup=(0, 0, 0), disasm="", exec_mask=0)
    if field("COMPUTE_PGM_RSRC1", "FLOAT_DENORM_MODE_32", rsrc1) != 3 or \
            field("COMPUTE_PGM_RSRC1", "FLOAT_DENORM_MODE_16_64", rsrc1) != 3:
        # numpy keeps denormals (IEEE); flush-to-zero modes would give different results
        raise ShaderFault("unsupported", "only FLOAT_DENORM_MODE 3 (denormals kept) is modelled", pc=pgm_addr,
                          wave=0, workgroup=(0, 0, 0), disasm="", exec_mask=0)
    if field("COMPUTE_PGM_RSRC2", "ENABLE_SGPR_WORKGROUP_INFO", rsrc2):
        raise ShaderFault("unsupported", "ENABLE_SGPR_WORKGROUP_INFO", pc=pgm_addr, wave=0,
                          workgroup=(0, 0, 0), disasm="", exec_mask=0)
    nvgpr = (field("COMPUTE_PGM_RSRC1", "GRANULATED_WORKITEM_VGPR_COUNT", rsrc1) + 1) * 8
    wg_en = [field("COMPUTE_PGM_RSRC2", f"ENABLE_SGPR_WORKGROUP_ID_{a}", rsrc2) for a in "XYZ"]
    tid_en = field("COMPUTE_PGM_RSRC2", "ENABLE_VGPR_WORKITEM_ID", rsrc2)
    priv = field("COMPUTE_PGM_RSRC2", "ENABLE_PRIVATE_SEGMENT", rsrc2)
    gx, gy, gz = grid
    bx, by, bz = block
    nthreads = bx * by * bz
    wpg = -(-nthreads // LANES)                  # waves per workgroup
    n_wg = gx * gy * gz
    wg_per_batch = max(1, MAX_BATCH_LANES // (wpg * LANES))
    ctx = _Ctx(mem, pgm_addr)
    ctx.wpg = wpg
    prog = Program(mem, pgm_addr, ctx)
    ctx.prog = prog
    total_wi = 0
    for first_wg in range(0, n_wg, wg_per_batch):
        nb = min(wg_per_batch, n_wg - first_wg)
        wgl = np.arange(first_wg, first_wg + nb)
        wid = np.stack([wgl % gx, (wgl // gx) % gy, wgl // (gx * gy)], axis=1)       # (nb, 3)
        W = nb * wpg
        packed, wave_exec = _thread_ids(wid, block, grid_items, wpg, tid_en)
        lds = np.zeros((nb, max(lds_bytes, 0)), np.uint8) if lds_bytes else np.zeros((nb, 4), np.uint8)
        st = WaveState(W, nvgpr, lds, np.repeat(np.arange(nb), wpg), lds_bytes)
        for k, v in enumerate(user_sgprs[:nuser]):
            st.s[k] = np.uint32(v & 0xFFFFFFFF)
        r = nuser
        wave_wid = np.repeat(wid, wpg, axis=0)
        for a in range(3):
            if wg_en[a]:
                st.s[r] = wave_wid[:, a].astype(np.uint32)
                r += 1
        first_wave = first_wg * wpg
        if priv:
            st.s[r] = (np.arange(W, dtype=np.uint64) + first_wave).astype(np.uint32) * np.uint32(scratch_per_wave)
        if scratch_per_wave:
            st.scratch_wave_base = np.uint64(scratch_base) + \
                (np.arange(W, dtype=np.uint64) + np.uint64(first_wave)) * np.uint64(scratch_per_wave)
            st.scratch_lane_size = scratch_per_wave // LANES // 4 * 4
        st.v[0] = packed
        st.set_s(EXEC, wave_exec)
        st.done[:] = wave_exec == 0       # waves of a partial workgroup that hold no work-item
        st.set_act(~st.done, not st.done.any())
        ctx.batch = (first_wave, wave_wid)
        total_wi += _run(st, prog, ctx, deadline, cancel)
    return DispatchResult(n_wg * wpg, total_wi, total_wi * LANES, time.perf_counter() - t0)


def _thread_ids(wid: np.ndarray, block, grid_items, wpg: int, tid_en: int):
    """(v0 per wave and lane, EXEC per wave) for the workgroups ``wid`` (nb, 3). Workgroups of
    the same shape (all but the partial ones at the grid's edges) share one computed pattern."""
    blk = np.broadcast_to(np.array(block, np.int64), wid.shape)
    if grid_items is not None:
        blk = np.clip(np.array(grid_items, np.int64) - wid * np.array(block, np.int64), 0, blk)
    shapes, inv = np.unique(blk, axis=0, return_inverse=True)
    t = np.arange(wpg * LANES, dtype=np.int64).reshape(wpg, LANES)
    packed = np.empty((len(wid), wpg, LANES), np.uint32)
    exec_ = np.empty((len(wid), wpg), np.uint32)
    for k, (bx, by, bz) in enumerate(shapes):
        tx, ty, tz = t % bx, (t // bx) % by, t // (bx * by)
        p = tx if tid_en == 0 else tx | (ty << 10) if tid_en == 1 else tx | (ty << 10) | (tz << 20)
        valid = t < bx * by * bz
        sel = inv.reshape(-1) == k
        packed[sel] = p.astype(np.uint32)
        exec_[sel] = (valid.astype(np.uint64) << np.arange(LANES, dtype=np.uint64)).sum(axis=1).astype(np.uint32)
    return packed.reshape(-1, LANES), exec_.reshape(-1)


def _run(st: WaveState, prog: Program, ctx: _Ctx, deadline, cancel) -> int:
    steps = 0
    wave_insts = 0
    with np.errstate(all="ignore"):
        while True:
            live = ~st.done
            n_live = int(live.sum())
            if n_live == 0:
                return wave_insts
            pcs = st.pc if n_live == st.W else st.pc[live]
            p = int(pcs.min())
            if int(pcs.max()) == p:
                st.set_act(live, n_live == st.W)
                n_act = n_live
            else:
                st.set_act(live & (st.pc == p), False)
                n_act = int(st.act.sum())
            op = prog.op(p)
            if op.fn is None:
                kind, msg = op.error
                raise ctx.fault(st, kind, msg, p)
            try:
                jumped = op.fn(st)
            except Unsupported as e:
                raise ctx.fault(st, "unsupported", str(e), p) from None
            except IndexError as e:   # a register index past the wave's allocation
                raise ctx.fault(st, "illegal", f"register index out of range ({e})", p) from None
            except MemoryFault as e:
                _annotate(e, st, ctx, p)
                raise
            if not jumped:
                if st.all_act:
                    st.pc += op.size
                else:
                    st.pc[st.act] = p + op.size
            wave_insts += n_act
            steps += 1
            if steps % CHECK_EVERY == 0:
                if (deadline is not None and time.monotonic() > deadline) or (cancel is not None and cancel.is_set()):
                    why = "cancelled" if cancel is not None and cancel.is_set() else "deadline passed"
                    raise ctx.fault(st, "timeout", f"dispatch {why} after {steps} steps", p)


def _annotate(e: MemoryFault, st: WaveState, ctx: _Ctx, p: int) -> None:
    """Attach the wave state to a page-table fault (the KFD memory-exception event carries the
    address; a debugger reads the PC and wave from the SQ)."""
    f = ctx.fault(st, "memory", str(e), p)
    e.pc, e.wave, e.workgroup, e.disasm, e.exec = f.pc, f.wave, f.workgroup, f.disasm, f.exec
    e.snapshot = f.snapshot
