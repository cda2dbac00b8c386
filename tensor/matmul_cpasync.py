"""The ``cp.async`` stage pipeline shared by the ``mma.sync`` matmul generators (``matmul_mma.py``
for f16/bf16, ``matmul_tf32.py`` for f32): C[M,N] = A[M,K] @ B[K,N], row-major.

Each block computes a ``bm`` x ``bn`` tile of C with ``warps_m`` x ``warps_n`` warps. k-tiles of
A (``bm`` x ``bk``) and B (``bk`` x ``bn``) stream through a ring of ``stages`` shared-memory
buffers filled by 16-byte ``cp.async`` copies, so the copies of tile k+stages-1 run while tile k
is multiplied. Shared rows of A and B are padded (by element counts the kernel picks for its
fragment loads' banks). When M, N and K are multiples of the tile the copies carry no bounds
checks; otherwise each 16-byte chunk is zero-filled past the edges (``cp.async``'s source size).

A kernel subclasses ``CpAsyncTiles`` for its config (element size and paddings) and
``CpAsyncGen`` for its generator, which keeps the kernel skeleton and the copies here; the
subclass supplies what differs: fragment loads, the mma instruction, the k-tile loop body and
the epilogue's addressing and store instruction (the predicated store loop is here)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Iterator

from .matmul_ptx import Ptx, cdiv, load_params, raster, zero_fill_copy

COPY_BYTES = 16         # bytes of one cp.async.cg copy
SHARED_LIMIT = 227 << 10  # dynamic shared memory one block may use on sm_90


class CpAsyncTiles:
    """Shared-memory layout of one pipeline stage: the padded A tile, then the padded B tile.
    Subclasses are frozen dataclasses with ``bm``, ``bn``, ``bk``, ``warps_m``, ``warps_n``
    and ``stages`` fields and set the class constants below."""
    ELEM_BYTES: ClassVar[int]           # bytes per element of A and B
    A_PAD: ClassVar[int]                # elements of padding per shared A row
    B_PAD: ClassVar[int]                # elements of padding per shared B row
    bm: int
    bn: int
    bk: int
    warps_m: int
    warps_n: int
    stages: int
    group: int

    @property
    def threads(self) -> int:
        return 32 * self.warps_m * self.warps_n

    @property
    def chunk_elems(self) -> int:
        """Elements per 16-byte copy."""
        return COPY_BYTES // self.ELEM_BYTES

    @property
    def a_bytes(self) -> int:
        """One stage of A in shared memory (padded rows)."""
        return self.bm * (self.bk + self.A_PAD) * self.ELEM_BYTES

    @property
    def stage_bytes(self) -> int:
        return self.a_bytes + self.bk * (self.bn + self.B_PAD) * self.ELEM_BYTES

    @property
    def shared(self) -> int:
        return self.stages * self.stage_bytes

    def copies_tile(self, ctas: int = 1) -> bool:
        """Whether the block's threads split both tiles into whole rounds of 16-byte copies,
        the ring has at least 2 stages and ``ctas`` blocks' rings fit in shared memory."""
        ch = self.chunk_elems
        return (self.stages >= 2
                and self.threads % (self.bk // ch) == 0 and self.threads % (self.bn // ch) == 0
                and (self.bm * self.bk // ch) % self.threads == 0
                and (self.bk * self.bn // ch) % self.threads == 0
                and ctas * self.shared <= SHARED_LIMIT)


class CpAsyncGen(ABC):
    """Emits one kernel around the cp.async pipeline; registers are named after what they
    hold. Subclasses implement ``fragment_setup``, ``k_tile`` and ``epilogue`` and may extend
    ``lane_setup`` / ``before_loop``."""

    LANE_REGS: ClassVar[tuple[str, ...]] = ()   # extra b32 registers lane_setup fills

    def __init__(self, m: int, n: int, k: int, cfg: CpAsyncTiles):
        self.m, self.n, self.k, self.c = m, n, k, cfg
        self.wm, self.wn = cfg.bm // cfg.warps_m, cfg.bn // cfg.warps_n
        self.mt, self.nt = self.wm // 16, self.wn // 8
        self.ktiles = cdiv(k, cfg.bk)
        self.ragged = bool(m % cfg.bm or n % cfg.bn or k % cfg.bk)
        self.es = cfg.ELEM_BYTES
        self.e = Ptx()

    def emit(self) -> None:
        e, c = self.e, self.c
        e.reg("pred", "p", "pl")
        e.reg("b32", "thr", "warp", "lane", "row0", "col0", "kt", "sbase", "sw", "sr", "x", "y",
              *self.LANE_REGS)
        e.reg("b64", "ga", "gb", "ptr")
        e("mov.u32 %thr, %tid.x;")
        e("shr.u32 %warp, %thr, 5;")
        e("and.b32 %lane, %thr, 31;")
        self.lane_setup()
        raster(e, cdiv(self.m, c.bm), cdiv(self.n, c.bn), c.group)
        e(f"mul.lo.u32 %row0, %tile_m, {c.bm};")
        e(f"mul.lo.u32 %col0, %tile_n, {c.bn};")
        load_params(e)
        e("mov.u32 %sbase, smem;")
        self.copy_setup()
        self.fragment_setup()
        acc = [f"%acc{i}" for i in range(self.mt * self.nt * 4)]
        e.reg("f32", *[a[1:] for a in acc])
        for a in acc:
            e(f"mov.f32 {a}, 0f00000000;")
        # prologue: tiles 0 .. stages-2 in flight (K is known, so empty ones are skipped here)
        e("mov.u32 %kt, 0;")
        e("mov.u32 %sw, 0;")
        for s in range(c.stages - 1):
            if s < self.ktiles:
                self.copy_tile(None)
            e("cp.async.commit_group;")
            self.advance_write()
        e("mov.u32 %sr, 0;")
        self.before_loop()
        e("$KLOOP:")
        self.k_tile()
        e("add.s32 %kt, %kt, 1;")
        e(f"setp.lt.s32 %p, %kt, {self.ktiles};")
        e("@%p bra $KLOOP;")
        e("cp.async.wait_group 0;")
        self.epilogue(acc)

    # ---- hooks -----------------------------------------------------------------------------
    def lane_setup(self) -> None:
        """Fill ``LANE_REGS`` from %lane / %warp (none here)."""

    @abstractmethod
    def fragment_setup(self) -> None:
        """Per-lane fragment addresses and the fragment registers."""

    def before_loop(self) -> None:
        """Anything between the prologue and the k-tile loop (nothing here)."""

    @abstractmethod
    def k_tile(self) -> None:
        """One iteration of the k-tile loop: wait for stage %sr, copy the next tile, multiply."""

    @abstractmethod
    def epilogue(self, acc: list[str]) -> None:
        """Store the accumulators ``acc`` into C (``store_pairs`` once %ptr, %crow, %ccol are set)."""

    def pack_pair(self, lo: str, hi: str) -> None:
        """Anything a column pair needs before its bounds check (nothing here)."""

    @abstractmethod
    def store_pair(self, guard: str, lo: str, hi: str, off: int) -> None:
        """Store accumulators ``lo``, ``hi`` (two adjacent columns) at %ptr + ``off`` bytes."""

    # ---- tensor cores --------------------------------------------------------------------
    def serpentine(self) -> Iterator[tuple[int, int, str]]:
        """(m-tile i, n-tile j, its 4 accumulators as an operand list) of the warp tile's mmas,
        in serpentine order over n: consecutive mmas share a B fragment at the turn."""
        for i in range(self.mt):
            cols = range(self.nt) if i % 2 == 0 else range(self.nt - 1, -1, -1)
            for j in cols:
                yield i, j, ", ".join(f"%acc{(i * self.nt + j) * 4 + q}" for q in range(4))

    # ---- registers -> C --------------------------------------------------------------------
    def store_pairs(self, acc: list[str]) -> None:
        """Store the accumulators: q of tile (i, j) is C[%crow + 16i + 8 (q/2), %ccol + 8j + q%2]
        (%crow, %ccol: the lane's first element, %ptr its address). Ragged shapes predicate each
        pair on its row and first column (N is a multiple of the 16-byte chunk, so even: a pair
        is in bounds when its first column is)."""
        e = self.e
        if self.ragged:
            e.reg("pred", "pr", "pv")
        for i in range(self.mt):
            for half in range(2):
                dr = i * 16 + 8 * half
                if self.ragged:
                    e(f"add.u32 %x, %crow, {dr};")
                    e(f"setp.lt.u32 %pr, %x, {self.m};")
                for j in range(self.nt):
                    base = (i * self.nt + j) * 4 + 2 * half
                    self.pack_pair(acc[base], acc[base + 1])
                    guard = ""
                    if self.ragged:
                        e(f"add.u32 %y, %ccol, {j * 8};")
                        e(f"setp.lt.and.u32 %pv, %y, {self.n}, %pr;")
                        guard = "@%pv "
                    self.store_pair(guard, acc[base], acc[base + 1], (dr * self.n + j * 8) * self.es)

    # ---- global -> shared ----------------------------------------------------------------
    def copy_setup(self) -> None:
        """Per-thread chunk coordinates: chunk i of A is row ``ra + i*rsa``, column ``caN`` of
        the tile; chunk i of B is row ``rb + i*rsb``, column ``cbN`` (N: elements per chunk).
        Global pointers %ga/%gb advance by one k-tile per copy."""
        e, c, es = self.e, self.c, self.es
        ch = c.chunk_elems
        ca, cb = c.bk // ch, c.bn // ch              # 16-byte chunks per tile row
        self.rsa, self.na = c.threads // ca, c.bm * c.bk // ch // c.threads
        self.rsb, self.nb = c.threads // cb, c.bk * c.bn // ch // c.threads
        self.cac, self.cbc = f"%ca{ch}", f"%cb{ch}"  # this thread's chunk column in A / B
        e.reg("b32", "ra", self.cac[1:], "rb", self.cbc[1:], "soa", "sob")
        e(f"div.u32 %ra, %thr, {ca};")
        e(f"rem.u32 {self.cac}, %thr, {ca};")
        e(f"shl.b32 {self.cac}, {self.cac}, {_log2(ch)};")
        e(f"div.u32 %rb, %thr, {cb};")
        e(f"rem.u32 {self.cbc}, %thr, {cb};")
        e(f"shl.b32 {self.cbc}, {self.cbc}, {_log2(ch)};")
        e("add.u32 %ra, %ra, %row0;")                # global row of A chunk 0
        e(f"mad.lo.u32 %x, %ra, {self.k}, {self.cac};")
        e(f"mul.wide.u32 %ga, %x, {es};")
        e("add.s64 %ga, %ga, %pa;")
        e(f"add.u32 {self.cbc}, {self.cbc}, %col0;")  # global column of B chunk 0
        e(f"mad.lo.u32 %x, %rb, {self.n}, {self.cbc};")
        e(f"mul.wide.u32 %gb, %x, {es};")
        e("add.s64 %gb, %gb, %pb;")
        e("sub.u32 %x, %ra, %row0;")
        e(f"mad.lo.u32 %soa, %x, {c.bk + c.A_PAD}, {self.cac};")
        e(f"shl.b32 %soa, %soa, {_log2(es)};")
        e("add.u32 %soa, %soa, %sbase;")             # shared address of A chunk 0 in stage 0
        e(f"sub.u32 %x, {self.cbc}, %col0;")
        e(f"mad.lo.u32 %sob, %rb, {c.bn + c.B_PAD}, %x;")
        e(f"shl.b32 %sob, %sob, {_log2(es)};")
        e(f"add.u32 %sob, %sob, {c.a_bytes};")
        e("add.u32 %sob, %sob, %sbase;")
        if self.ragged:
            e.reg("b32", "kb", "sz")
            e("mov.u32 %kb, 0;")                     # first k of the tile being copied

    def copy_tile(self, pred: str | None) -> None:
        """Copy the next k-tile into stage %sw (only where ``pred``, when given)."""
        e, c, es = self.e, self.c, self.es
        guard = f"@{pred} " if pred else ""
        e("add.u32 %x, %soa, %sw;")
        e("add.u32 %y, %sob, %sw;")
        for i in range(self.na):
            goff, soff = i * self.rsa * self.k * es, i * self.rsa * (c.bk + c.A_PAD) * es
            if not self.ragged:
                e(f"{guard}cp.async.cg.shared.global [%x+{soff}], [%ga+{goff}], 16;")
                continue
            e(f"add.u32 %sz, %ra, {i * self.rsa};")
            e(f"setp.lt.u32 %p, %sz, {self.m};")
            e(f"add.u32 %sz, %kb, {self.cac};")
            e(f"setp.lt.and.u32 %p, %sz, {self.k}, %p;")
            self.chunk(guard, "%x", soff, "%ga", goff, "%pa")
        for i in range(self.nb):
            goff, soff = i * self.rsb * self.n * es, i * self.rsb * (c.bn + c.B_PAD) * es
            if not self.ragged:
                e(f"{guard}cp.async.cg.shared.global [%y+{soff}], [%gb+{goff}], 16;")
                continue
            e(f"add.u32 %sz, %rb, {i * self.rsb};")
            e("add.u32 %sz, %sz, %kb;")
            e(f"setp.lt.u32 %p, %sz, {self.k};")
            e(f"setp.lt.and.u32 %p, {self.cbc}, {self.n}, %p;")
            self.chunk(guard, "%y", soff, "%gb", goff, "%pb")

    def chunk(self, guard: str, s: str, soff: int, g: str, goff: int, base: str) -> None:
        """A bounds-checked 16-byte copy (predicate %p): outside the matrix it reads 0 bytes
        from the matrix's base (a valid address) and zero-fills the chunk."""
        zero_fill_copy(self.e, guard, "cg", COPY_BYTES, s, soff, g, goff, base)

    def advance_write(self) -> None:
        """Move %ga / %gb (and %kb) to the next k-tile and %sw to the next stage."""
        e, c = self.e, self.c
        e(f"add.s64 %ga, %ga, {c.bk * self.es};")
        e(f"add.s64 %gb, %gb, {c.bk * self.n * self.es};")
        if self.ragged:
            e(f"add.u32 %kb, %kb, {c.bk};")
        self.rotate("%sw")

    def rotate(self, reg: str) -> None:
        """Next stage's byte offset, wrapping after the last."""
        e, c = self.e, self.c
        e(f"add.u32 {reg}, {reg}, {c.stage_bytes};")
        e(f"setp.eq.u32 %p, {reg}, {c.shared};")
        e(f"selp.u32 {reg}, 0, {reg}, %p;")

    def wait_landed(self) -> None:
        """Wait until the tile in stage %sr has landed: this thread's copies, then everyone's
        (after the barrier the stage tile kt-1 used is free too)."""
        self.e(f"cp.async.wait_group {self.c.stages - 2};")
        self.e("bar.sync 0;")

    def copy_next(self) -> None:
        """Start copying tile kt+stages-1 into the stage tile kt-1 used (free: every thread
        has passed the barrier after its last read)."""
        e = self.e
        e(f"setp.lt.s32 %pl, %kt, {self.ktiles - (self.c.stages - 1)};")
        self.copy_tile("%pl")
        e("cp.async.commit_group;")
        self.advance_write()


def _log2(x: int) -> int:
    """log2 of a power of two (a shift count)."""
    return x.bit_length() - 1
