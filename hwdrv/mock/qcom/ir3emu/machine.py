"""The batch runner: executes a decoded program over many waves at once, numpy-vectorised over
fibers, and checks ir3's scheduling rules as it goes.

A batch is a run of whole workgroups laid out as lanes ``[workgroup][wave][fiber]`` (waves of
``threadsize`` fibers; lanes past the local size are dead from the start). Every step executes the
fibers at the lowest instruction index ("min-PC"): while no fiber diverges that is every running
fiber, and the per-wave bookkeeping is one shared timeline; after a divergent branch each wave
keeps its own cycle count and register ready times.

Scheduling rules (sources in docs/ir3-emulator.md): an ALU (cat1-3) result may be read by an ALU
instruction 3 cycles after it was written (+3 when merged half/full sizes differ, -2 for the third
source of mad/madsh) and by any other instruction after 6; an a0.x/a1.x write needs 6 before any
reader; SFU (cat4) and local-memory loads need ``(ss)``, global/IBO/private loads and atomics need
``(sy)`` on the reader or an instruction between. A cycle is one instruction, (rptN) adds N and
(nopN) adds N.
"""
from __future__ import annotations

import time

import numpy as np

from hwdrv.errors import MockFault
from hwdrv.ioctl import hostmem
from hwdrv.mock.gpumem import MemoryFault
from hwdrv.qcom.gen import a6xx as A

from . import alu
from .exec_mem import IBO_FORMATS, check_local
from .flow import END
from .ops import ALU, SS, SY, HazardFault, Op, ShaderFault
from .program import Program
from .regfile import A0, A1, P0, RegFile, reg_name

SSP, SYP, HALFW, ADDRW = 1, 2, 4, 8      # per register unit: pending (ss), pending (sy), half write, a0/a1 write
ALU_TO_ALU, NON_ALU, CAT3_SRC3_READ, HALF_MISMATCH = 3, 6, 2, 3   # ir3_compiler.c (gen 6) / ir3_delay.c
# ir3_delay.c's comment names cat4/cat5 as the 6-cycle consumers of ALU results; Mesa's hand-written
# computerator examples (localmem.asm, stg_ldg_offset.asm) feed cat6 memory instructions after 3-4
# cycles, so memory instructions get the ALU-to-ALU latency (docs/ir3-emulator.md).
MEM_CONSUMER = ALU_TO_ALU
CHECK_EVERY = 256
SHARED_REGS = (48 * 4, 56 * 4)   # r48.x..r55.w: ir3's shared registers (IR3_REG_SHARED, ir3.h)


class Batch:
    """One batch of workgroups (see the module doc). Ops reach the machine through the methods below."""

    def __init__(self, state, prog: Program, wg_first: int, nwg: int, deadline: float):
        self.state, self.prog, self.deadline = state, prog, deadline
        self.ts = ts = state.threadsize
        lx, ly, lz = state.local_size
        nloc = lx * ly * lz
        self.wpw = -(-nloc // ts)
        self.nwg, self.per_wg = nwg, self.wpw * ts
        self.nwaves = nwg * self.wpw
        self.lanes = lanes = self.nwaves * ts
        self.lin_small = np.arange(self.per_wg, dtype=np.int32)       # linear local id of each lane of a workgroup
        self.alive = np.tile(self.lin_small < nloc, nwg)
        self.all_alive = bool(self.alive.all())
        self.ones = np.ones(lanes, bool)
        self.wg_first = wg_first
        self.merged = state.mergedregs
        sysregs = self._sysval_regs()
        full = set(prog.full_regs) | set(sysregs)
        if prog.uses_relative:        # relative addressing may reach any register of the footprint
            full |= set(range(4 * max(state.full_regs, 1)))
        self.regs = RegFile(lanes, full, set(prog.half_regs), self.merged)
        for n, (per_lane, per_wg) in sysregs.items():
            rows = self.regs.full(n).reshape(nwg, self.per_wg)
            rows[:] = per_lane[None, :] if per_lane is not None else per_wg[:, None]
        self.consts = np.ascontiguousarray(state.consts, dtype=np.uint32).reshape(-1)
        self.nconst = self.consts.size if not (state.const_enabled and state.constlen_vec4) else \
            min(self.consts.size, 4 * state.constlen_vec4)
        self.mem = state.memory
        self._shared: np.ndarray | None = None
        self._pvt: np.ndarray | None = None
        self._ibo_cache: dict[int, tuple] = {}
        self.pc = np.zeros(lanes, np.int32)
        self.upc = state.first_exec_offset      # uniform pc while every running fiber is at the same index
        self._timeline_init()

    @property
    def lane_wg(self) -> np.ndarray:
        """Workgroup of each lane, counted from the batch's first."""
        return np.repeat(np.arange(self.nwg, dtype=np.int32), self.per_wg)

    @property
    def lane_lin(self) -> np.ndarray:
        """Linear local id of each lane."""
        return np.tile(self.lin_small, self.nwg)

    @property
    def lane_wave_id(self) -> np.ndarray:
        """getwid: the wave's index in the dispatch."""
        return ((self.wg_first + self.lane_wg) * self.wpw + self.lane_lin // self.ts).astype(np.uint32)

    @property
    def lane_fiber(self) -> np.ndarray:
        """getfiberid: the fiber's index in its wave."""
        return (self.lane_lin % self.ts).astype(np.uint32)

    def wg_id(self, lane: int) -> tuple[int, int, int]:
        gx, gy, _ = self.state.groups
        g = self.wg_first + lane // self.per_wg
        return g % gx, (g // gx) % gy, g // (gx * gy)

    # --- system values ------------------------------------------------------------------------------
    def _sysval_regs(self) -> dict[int, tuple[np.ndarray | None, np.ndarray | None]]:
        """register -> (value per lane of a workgroup, or value per workgroup of the batch)."""
        st = self.state
        lx, ly, _ = st.local_size
        lin = self.lin_small
        gx, gy, _ = st.groups
        g = self.wg_first + np.arange(self.nwg, dtype=np.int64)
        out: dict[int, tuple[np.ndarray | None, np.ndarray | None]] = {}

        def vec3(regid, vals, per_lane):
            if regid != 0xFC:
                for c in range(3):
                    v = np.broadcast_to(np.asarray(vals[c], np.uint32), lin.shape if per_lane else g.shape)
                    out[regid + c] = (v, None) if per_lane else (None, v)
        vec3(st.localid_regid, (lin % lx, (lin // lx) % ly, lin // (lx * ly)), True)
        vec3(st.wgid_regid, (g % gx, (g // gx) % gy, g // (gx * gy)), False)
        vec3(st.wgsize_regid, st.local_size, True)
        vec3(st.wgoffset_regid, st.global_offset, True)
        if st.linearlocalid_regid != 0xFC:
            out[st.linearlocalid_regid] = (lin.astype(np.uint32), None)
        return out

    # --- register access (used by ops) --------------------------------------------------------------
    def reg(self, n: int, half: bool) -> np.ndarray:
        return self.regs.half(n) if half else self.regs.full(n)

    def wr(self, n: int, half: bool, bits, mask) -> None:
        view = self.regs.half(n) if half else self.regs.full(n)
        if mask is None:
            view[...] = bits
        else:
            np.copyto(view, bits, where=mask, casting="unsafe")

    def a0(self) -> np.ndarray:
        return self.regs.full(A0).view(np.int32).astype(np.int64)

    def active(self, mask) -> np.ndarray:
        return self.ones if mask is None else mask

    def _const(self, idx, half: bool, is_float: bool):
        bad = (np.asarray(idx) < 0) | (np.asarray(idx) >= self.nconst)
        if np.any(bad):
            i = int(np.asarray(idx).reshape(-1)[np.flatnonzero(np.asarray(bad).reshape(-1))[0]])
            raise MockFault(f"const c{i >> 2}.{'xyzw'[i & 3]} is past the const file the dispatch loaded "
                            f"({self.nconst // 4} vec4: HLSQ_CS_CNTL.CONSTLEN)")
        v = self.consts[idx]
        if half:
            # half-precision reads of the 32-bit const file: float ops demote the f32 value, integer
            # ops take the low 16 bits (Mesa ir3_cp.c lower_immed: "Half constant registers seems to
            # handle only 32-bit values within floating-point opcodes")
            if is_float:
                return np.asarray(np.asarray(v, np.uint32).view(np.float32), np.float16).view(np.uint16)
            return np.asarray(v & 0xFFFF, np.uint16)
        return v

    def src(self, s, k: int, is_float: bool):
        kind = s.kind
        if kind == "gpr":
            n = s.n + k if s.r else s.n
            return self.regs.half(n) if s.half else self.regs.full(n)
        if kind == "const":
            return self._const(s.n + k if s.r else s.n, s.half, is_float)
        if kind == "imm":
            return np.uint16(s.bits) if s.half else np.uint32(s.bits)
        idx = self.a0() + s.n + (k if s.r else 0)
        if kind == "relgpr":
            return self.regs.gather(idx, s.half)
        return self._const(idx, s.half, is_float)

    @staticmethod
    def widen(v: np.ndarray, t: int) -> np.ndarray:
        """Memory value of cat6 TYPE t -> register bits (8-bit types extend into a half register)."""
        kind, width = alu.TYPES[t]
        if width == 8:
            return v.astype(np.int16).view(np.uint16) if kind == "s" else v.astype(np.uint16)
        return v.view(np.uint32 if width == 32 else np.uint16)

    @staticmethod
    def narrow(bits: np.ndarray, dt: np.dtype) -> np.ndarray:
        return np.asarray(bits).astype(dt) if dt.itemsize == 1 else np.asarray(bits).view(dt)

    # --- global memory ------------------------------------------------------------------------------
    def _window(self, addr: np.ndarray, act: np.ndarray, size: int, access: str):
        """(host view, lowest address) when every active lane's access lies in one mapping, else None
        (then the page table's per-lane path runs and reports the exact faulting lane)."""
        a = addr[act] if act is not self.ones else addr
        if a.size == 0:
            return None
        lo, hi = int(a.min()), int(a.max()) + size
        try:
            host = self.mem.translate(lo, hi - lo, access)
        except MemoryFault:
            return None
        return hostmem.view(host, hi - lo), lo

    def gload(self, addr: np.ndarray, dt: np.dtype, act: np.ndarray, access: str = "read") -> np.ndarray:
        """One ``dt`` per active lane from GPU addresses (inactive lanes read 0)."""
        dt = np.dtype(dt)
        w = self._window(addr, act, dt.itemsize, access)
        if w is None:
            return self.mem.load(addr, dt, None if act is self.ones else act, access)
        buf, lo = w
        off = (addr - np.uint64(lo)).astype(np.int64)
        if act is not self.ones:
            off = np.where(act, off, 0)
        k = dt.itemsize
        if lo % k == 0 and not (off % k).any():
            out = buf.view(dt)[off // k]
        else:
            out = buf[off[:, None] + np.arange(k)].view(dt)[:, 0]
        return out if act is self.ones else np.where(act, out, dt.type(0))

    def gstore(self, addr: np.ndarray, val: np.ndarray, act: np.ndarray, access: str = "write") -> None:
        """Store ``val`` to ``addr`` for active lanes (flat order; where lanes collide the last one stays)."""
        val = np.broadcast_to(val, addr.shape)
        k = val.dtype.itemsize
        w = self._window(addr, act, k, access)
        if w is None:
            self.mem.store(addr, val, None if act is self.ones else act, access)
            return
        buf, lo = w
        sel = act if act is not self.ones else slice(None)
        off = (addr[sel] - np.uint64(lo)).astype(np.int64)
        v = np.ascontiguousarray(val[sel])
        if lo % k == 0 and not (off % k).any():
            buf.view(v.dtype)[off // k] = v
        else:
            buf[off[:, None] + np.arange(k)] = v.view(np.uint8).reshape(-1, k)

    # --- local and private memory -------------------------------------------------------------------
    def _space(self, space: str) -> tuple[np.ndarray, np.ndarray, int]:
        """(byte buffer, per-lane base offset, limit in bytes) of local (per workgroup) or private (per fiber) memory."""
        if space == "local":
            if self._shared is None:
                self._shared = np.zeros(self.nwg * self.state.shared_size, np.uint8)
                self._shared_base = self.lane_wg.astype(np.int64) * self.state.shared_size
            return self._shared, self._shared_base, self.state.shared_size
        size = self.state.pvt_per_fiber
        if self._pvt is None:
            self._pvt = np.zeros(self.lanes * size, np.uint8)
            self._pvt_base = np.arange(self.lanes, dtype=np.int64) * size
        return self._pvt, self._pvt_base, size

    def local_load(self, space: str, addr: np.ndarray, dt: np.dtype, act: np.ndarray, op: Op) -> np.ndarray:
        buf, base, limit = self._space(space)
        check_local(space, addr, dt.itemsize, limit, act, op)
        off = np.where(act, base + addr, 0)
        k = dt.itemsize
        if k == 4 and not (off & 3).any():
            return buf.view(np.uint32)[off >> 2].view(dt)
        return buf[off[:, None] + np.arange(k)].view(dt)[:, 0]

    def local_store(self, space: str, addr: np.ndarray, val: np.ndarray, act: np.ndarray, op: Op) -> None:
        """Store ``val`` (lanes, components) at byte offsets ``addr`` (lanes, components), lane-major."""
        buf, base, limit = self._space(space)
        k = val.dtype.itemsize
        for c in range(addr.shape[1]):
            check_local(space, addr[:, c], k, limit, act, op)
        sel = np.flatnonzero(act)
        off = (base[:, None] + addr)[sel].reshape(-1)
        v = np.ascontiguousarray(val[sel]).reshape(-1)
        buf[off[:, None] + np.arange(k)] = v.view(np.uint8).reshape(-1, k)

    # --- IBOs ---------------------------------------------------------------------------------------
    def _ibo(self, idx: int, op: Op) -> tuple[int, int]:
        hit = self._ibo_cache.get(idx)
        if hit is not None:
            return hit
        st = self.state
        d = st.ibos.get(idx)
        if d is None and idx < st.ibo_count and st.ibo_table_iova:
            d = np.frombuffer(self.mem.read(st.ibo_table_iova + 64 * idx, 64), np.uint32)
        if d is None:
            raise ShaderFault(f"IBO {idx} has no descriptor (CP_LOAD_STATE6 IBO / SP_CS_IBO_COUNT = {st.ibo_count}) "
                              f"at {op.where()}", op.pc)
        d = [int(x) for x in d]
        fmt = A.A6XX_TEX_CONST_0_FMT.decode(d[0])
        if A.A6XX_TEX_CONST_2_TYPE.decode(d[2]) != A.A6XX_TEX_BUFFER or fmt not in IBO_FORMATS:
            raise ShaderFault(f"IBO {idx}: only buffer descriptors of 8/16/32-bit single-component formats are "
                              f"modelled (TYPE {A.A6XX_TEX_CONST_2_TYPE.decode(d[2])}, FMT {fmt:#x}) at {op.where()}",
                              op.pc)
        elems = A.A6XX_TEX_CONST_1_WIDTH.decode(d[1]) | (A.A6XX_TEX_CONST_1_HEIGHT.decode(d[1]) << 15)
        base = (A.A6XX_TEX_CONST_4_BASE_LO.decode(d[4]) << A.A6XX_TEX_CONST_4_BASE_LO_SHR) | \
            (A.A6XX_TEX_CONST_5_BASE_HI.decode(d[5]) << 32)
        out = self._ibo_cache[idx] = (base, elems * IBO_FORMATS[fmt])
        return out

    def ibo_window(self, idx: int, op: Op) -> tuple[np.ndarray, int] | None:
        """(host view of the whole buffer as bytes, its size) when the descriptor's range is mapped in
        one piece, else None (the per-lane path then reports the faulting lane)."""
        key = -1 - idx
        hit = self._ibo_cache.get(key)
        if hit is None:
            base, limit = self._ibo(idx, op)
            try:
                hit = (hostmem.view(self.mem.translate(base, limit, "write"), limit), limit) if limit else None
            except MemoryFault:
                hit = None
            self._ibo_cache[key] = hit or (None, 0)
        return None if hit[0] is None else hit

    def ubo_addr(self, idx, byte_off: np.ndarray, op: Op) -> tuple[np.ndarray, np.ndarray]:
        """Per-lane address and in-bounds flag of a 4-byte UBO read (A6XX_UBO_0/1: base, size in vec4)."""
        def desc(i: int) -> tuple[int, int]:
            d = self.state.ubos.get(i)
            if d is None:
                raise ShaderFault(f"UBO {i} has no descriptor (CP_LOAD_STATE6 UBO) at {op.where()}", op.pc)
            lo, hi = int(d[0]), int(d[1])
            return (A.A6XX_UBO_0_BASE_LO.decode(lo) | (A.A6XX_UBO_1_BASE_HI.decode(hi) << 32),
                    16 * A.A6XX_UBO_1_SIZE.decode(hi))
        if np.ndim(idx) == 0:
            base, limit = desc(int(idx))
            base_a, limit_a = np.uint64(base), limit
        else:
            table = {int(i): desc(int(i)) for i in np.unique(idx[self.alive])}
            base_a = np.array([table.get(int(i), (0, 0))[0] for i in idx], np.uint64)
            limit_a = np.array([table.get(int(i), (0, 0))[1] for i in idx], np.int64)
        ok = (byte_off >= 0) & (byte_off + 4 <= limit_a)
        return base_a + np.where(ok, byte_off, 0).astype(np.uint64), ok

    def ibo_addr(self, idx, byte_off: np.ndarray, size: int, typed: bool, op: Op) -> tuple[np.ndarray, np.ndarray]:
        """Per-lane GPU address and in-bounds flag of an IBO access (bounds = the descriptor's size)."""
        if typed:
            raise ShaderFault(f"typed IBO access is not modelled, at {op.where()}", op.pc)
        if np.ndim(idx) == 0:
            base, limit = self._ibo(int(idx), op)
            base_a, limit_a = np.uint64(base), limit
        else:
            uniq = np.unique(idx[self.alive])
            table = {int(i): self._ibo(int(i), op) for i in uniq}
            base_a = np.array([table.get(int(i), (0, 0))[0] for i in idx], np.uint64)
            limit_a = np.array([table.get(int(i), (0, 0))[1] for i in idx], np.int64)
        ok = (byte_off >= 0) & (byte_off + size <= limit_a)
        return base_a + np.where(ok, byte_off, 0).astype(np.uint64), ok

    # --- atomics ------------------------------------------------------------------------------------
    def atomic(self, space: str, opname: str, signed: bool, addr: np.ndarray, vals: list[np.ndarray],
               ok: np.ndarray, op: Op) -> np.ndarray:
        """Apply one atomic per active lane, lanes in ascending order; returns each lane's old value."""
        sel = np.flatnonzero(ok)
        old = np.zeros(self.lanes, np.uint32)
        if sel.size == 0:
            return old
        if space == "local":
            buf, base, limit = self._space("local")
            check_local("local", addr, 4, limit, ok, op)
            keys = (base + addr)[sel].astype(np.int64)
        else:
            keys = addr[sel].astype(np.uint64)
        uk, inv = np.unique(keys, return_inverse=True)
        if space == "local":
            cur = buf[uk[:, None] + np.arange(4)].view(np.uint32)[:, 0].copy()
        else:
            cur = self.gload(uk, np.uint32, np.ones(uk.size, bool), "atomic").copy()
        v0 = vals[0][sel]
        v1 = vals[1][sel] if len(vals) > 1 else None
        order = np.argsort(inv, kind="stable")
        g = inv[order]
        if opname in ("add", "sub"):
            d = v0.astype(np.uint64) if opname == "add" else (-v0.astype(np.int64)).astype(np.uint64)
            d = d[order]
            cs = np.cumsum(d)
            start = np.searchsorted(g, np.arange(uk.size))
            before = cs - d - np.where(start > 0, cs[start - 1], 0)[g]
            o = (cur[g].astype(np.uint64) + before) & 0xFFFFFFFF
            old[sel[order]] = o.astype(np.uint32)
            total = np.zeros(uk.size, np.uint64)
            np.add.at(total, g, d)
            cur = ((cur.astype(np.uint64) + total) & 0xFFFFFFFF).astype(np.uint32)
        else:
            # sequential within each address, one rank per numpy step
            rank = np.arange(g.size) - np.searchsorted(g, g)
            fn = _SEQ[opname]
            for r in range(int(rank.max()) + 1):
                at = order[rank == r]
                gi = inv[at]
                old[sel[at]] = cur[gi]
                cur[gi] = fn(cur[gi], v0[at], None if v1 is None else v1[at], signed)
        if space == "local":
            buf[uk[:, None] + np.arange(4)] = cur.view(np.uint8).reshape(-1, 4)
        else:
            self.gstore(uk, cur, np.ones(uk.size, bool), "atomic")
        return old

    # --- control flow (used by flow ops) ------------------------------------------------------------
    def retire(self, which) -> None:
        which = self.ones if which is None else which
        self.alive = self.alive & ~which
        self.all_alive = False

    def split(self, act: np.ndarray, taken: np.ndarray, target: int, fall: int):
        t = taken & act
        if not t.any():
            return fall
        if (t == act).all():
            return target
        return np.where(t, target, fall).astype(np.int32)

    def lane_local(self, lane: int) -> tuple[int, int, int]:
        lx, ly, _ = self.state.local_size
        lin = lane % self.per_wg
        return lin % lx, (lin // lx) % ly, lin // (lx * ly)

    def pc_of(self, lane: int) -> int:
        return self.upc if self.upc >= 0 else int(self.pc[lane])

    # --- scheduling rules ---------------------------------------------------------------------------
    def _timeline_init(self) -> None:
        units: dict[tuple[int, bool], int] = {}
        for op in self.prog.ops:
            for n, half, *_ in op.reads + op.writes:
                units.setdefault(self._unit_key(n, half), len(units))
        for n in self._sysval_regs():
            units.setdefault(self._unit_key(n, False), len(units))
        self.units = units
        nu = max(len(units), 1)
        self.W = 1                                  # one shared timeline until a wave diverges
        self.cycle = np.zeros(1, np.int64)
        self.wtime = np.full((nu, 1), -(1 << 40), np.int64)
        self.wflags = np.zeros((nu, 1), np.uint8)
        self.wpc = np.full((nu, 1), -1, np.int32)

    def _unit_key(self, n: int, half: bool) -> tuple[int, bool]:
        if half and n not in (A0, A1) and not (P0 <= n < P0 + 4):
            return (n >> 1, False) if self.merged else (n, True)
        return (n, False)

    def _per_wave(self) -> None:
        if self.W == 1:
            self.W = self.nwaves
            for name in ("wtime", "wflags", "wpc"):
                setattr(self, name, np.repeat(getattr(self, name), self.W, axis=1))
            self.cycle = np.repeat(self.cycle, self.W)

    def _hazard(self, op: Op, why: str, n: int, half: bool, waves) -> HazardFault:
        u = self.units[self._unit_key(n, half)]
        wpc = np.atleast_1d(self.wpc[u, waves])
        producer = self.prog.ops[int(wpc[0])] if wpc.size and wpc[0] >= 0 else None
        by = f" written by {producer.where()}" if producer else ""
        return HazardFault(f"ir3 scheduling hazard at {op.where()}: reads {reg_name(n, half)}{by} {why}; "
                           "the hardware would read a stale value", op.pc)

    def _check(self, op: Op, waves) -> None:
        fl = self.wflags
        if op.ss:
            fl[:, waves] &= np.uint8(~SSP & 0xFF)
        if op.sy:
            fl[:, waves] &= np.uint8(~SYP & 0xFF)
        cyc = self.cycle[waves]
        for n, half, c, late in op.reads:
            u = self.units[self._unit_key(n, half)]
            f = fl[u, waves]
            if (f & SSP).any():
                raise self._hazard(op, "without (ss) since that SFU / local-memory / shared-register result was "
                                       "produced (ir3.h is_ss_producer -> (ss), ir3_legalize.c)", n, half, waves)
            if (f & SYP).any():
                raise self._hazard(op, "without (sy) since that memory load / atomic was issued "
                                       "(ir3.h is_sy_producer -> (sy), ir3_legalize.c)", n, half, waves)
            d = cyc + c - self.wtime[u, waves] - 1
            if op.consumer == "alu":
                need = ALU_TO_ALU - (CAT3_SRC3_READ if late else 0)
                if self.merged:
                    need = need + np.where(((f & HALFW) != 0) != half, HALF_MISMATCH, 0)
            else:
                need = NON_ALU if op.consumer == "long" else MEM_CONSUMER
            need = np.where(f & ADDRW, NON_ALU, need)
            short = d < need
            if np.any(short):
                i = int(np.flatnonzero(np.atleast_1d(short))[0])
                dd, nn = int(np.atleast_1d(d)[i]), int(np.atleast_1d(np.broadcast_to(need, np.shape(d)))[i])
                kind = {"alu": "an ALU result read by an ALU instruction", "mem": "an ALU result read by a memory "
                        "instruction", "long": "an ALU result read by an SFU/flow instruction"}[op.consumer]
                raise self._hazard(op, f"only {max(dd, 0)} cycle(s) later; {kind} needs {nn} "
                                       "(ir3_delay.c ir3_delayslots: nops, (rptN) or (nopN))", n, half, waves)

    def _retire_writes(self, op: Op, waves) -> None:
        cyc = self.cycle[waves]
        for n, half, c in op.writes:
            u = self.units[self._unit_key(n, half)]
            if op.produces == ALU and SHARED_REGS[0] <= n < SHARED_REGS[1] and not half:
                self.wflags[u, waves] = SSP       # ir3.h is_ss_producer: shared-register write (a6xx: no scalar ALU)
            elif op.produces == ALU:
                self.wtime[u, waves] = cyc + c
                self.wflags[u, waves] = (HALFW if half else 0) | (ADDRW if n in (A0, A1) else 0)
            elif op.produces == SS:
                self.wflags[u, waves] = SSP
            elif op.produces == SY:
                self.wflags[u, waves] = SYP
            self.wpc[u, waves] = op.pc
        self.cycle[waves] = cyc + op.cycles

    # --- the loop -----------------------------------------------------------------------------------
    def run(self) -> None:
        ops, nops = self.prog.ops, len(self.prog.ops)
        parked = np.zeros(self.lanes, bool)
        steps = 0
        while True:
            steps += 1
            if steps % CHECK_EVERY == 0 and time.monotonic() > self.deadline:
                at = self.pc_of(int(np.flatnonzero(self.alive)[0]))
                raise ShaderFault(f"GPU hang: the shader is still running at instruction {at} after {steps} steps "
                                  "(the mock's shader time limit)", at)
            if self.upc >= 0:
                pc = self.upc
                mask = None if self.all_alive else self.alive
                waves = slice(None)
            else:
                live = self.pc[self.alive]
                if live.size == 0:
                    return
                pc = int(live.min())
                mask = self.alive & (self.pc == pc)
                wmask = mask.reshape(self.nwaves, self.ts).any(1)
                waves = np.flatnonzero(wmask)
                joining = mask & parked
                if joining.any() and pc < nops and not ops[pc].jp:
                    lane = int(np.flatnonzero(joining)[0])
                    raise ShaderFault(f"fibers that diverged meet again at {ops[pc].where()}, which has no (jp) "
                                      f"(fiber {self.lane_local(lane)} of workgroup {self.wg_id(lane)}): the hardware "
                                      "only reconverges parked fibers at (jp) instructions", pc)
                parked[mask] = False
                wl = np.repeat(wmask, self.ts)
                parked |= self.alive & ~mask & wl
                if not (self.alive & ~mask).any():       # everyone is here again
                    self.upc = pc
                    parked[:] = False
            if pc >= nops or pc < 0:
                raise ShaderFault(f"execution reached instruction {pc}, outside the program "
                                  f"({nops} instructions: SP_CS_INSTRLEN) without an end", pc)
            op = ops[pc]
            if mask is not None and not mask.any():
                return
            self._check(op, waves)
            try:
                nxt = op.run(self, mask)
            except MemoryFault as e:
                e.args = (f"{e.args[0]} (at {op.where()})",)
                raise
            except ShaderFault:
                raise
            except MockFault as e:
                raise ShaderFault(f"{e} at {op.where()}", pc) from None
            self._retire_writes(op, waves)
            if nxt is None:
                if self.upc >= 0:
                    self.upc = pc + 1
                else:
                    self.pc[mask] = pc + 1
            elif isinstance(nxt, int):
                if nxt == END:
                    if self.upc >= 0:      # every running fiber was here: the batch is done
                        return
                    continue
                if self.upc >= 0:
                    self.upc = nxt
                else:
                    self.pc[mask] = nxt
            else:       # divergence
                if self.upc >= 0:
                    self.pc[:] = pc
                    self.upc = -1
                    self._per_wave()
                    waves = np.arange(self.nwaves)
                    mask = self.alive.copy()
                self.pc[mask] = nxt[mask]
                self._check_branchstack(waves)

    def _check_branchstack(self, waves) -> None:
        cap = 2 * self.state.branchstack     # ir3_shader_branchstack_hw: field = ceil(depth / 2)
        pcs = np.where(self.alive, self.pc, -1).reshape(self.nwaves, self.ts)[waves]
        s = np.sort(pcs, axis=1)
        distinct = ((np.diff(s, axis=1) != 0) & (s[:, 1:] >= 0)).sum(1) + (s[:, 0] >= 0)
        depth = distinct - 1
        if (depth > cap).any():
            w = int(np.atleast_1d(waves)[int(np.flatnonzero(depth > cap)[0])])
            raise ShaderFault(f"wave {w} has {int(depth.max()) + 1} divergent paths but SP_CS_CTRL_REG0.BRANCHSTACK = "
                              f"{self.state.branchstack} (room for {cap} levels): the branch stack would overflow")


def _seq_min(cur, v, _v1, signed):
    return np.minimum(cur.view(np.int32), v.view(np.int32)).view(np.uint32) if signed else np.minimum(cur, v)


def _seq_max(cur, v, _v1, signed):
    return np.maximum(cur.view(np.int32), v.view(np.int32)).view(np.uint32) if signed else np.maximum(cur, v)


_SEQ = {
    "xchg": lambda cur, v, v1, s: v,
    "and": lambda cur, v, v1, s: cur & v,
    "or": lambda cur, v, v1, s: cur | v,
    "xor": lambda cur, v, v1, s: cur ^ v,
    "min": _seq_min, "max": _seq_max,
    "inc": lambda cur, v, v1, s: np.where(cur >= v, 0, cur + 1).astype(np.uint32),
    "dec": lambda cur, v, v1, s: np.where((cur == 0) | (cur > v), v, cur - 1).astype(np.uint32),
    "cmpxchg": lambda cur, cmp, new, s: np.where(cur == cmp, new, cur).astype(np.uint32),
}
