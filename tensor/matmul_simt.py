"""The CUDA-core matmul: f32 (and f16/bf16 shapes the tensor-core kernels cannot take),
C[M,N] = A[M,K] @ B[K,N] row-major, f32 FMAs (full f32: no TF32).

A block of ``warps_m`` x ``warps_n`` warps computes a ``bm`` x ``bn`` tile; each warp a
``bm/warps_m`` x ``bn/warps_n`` warp tile; each lane ``tm`` x ``tn`` outputs made of
(tm/4) x (tn/4) groups of 4x4 spaced ``lanes_m*4`` rows / ``lanes_n*4`` columns apart, so
each fragment is one 16-byte shared load and the lanes of a warp read consecutive 16-byte
words (no bank conflicts). A is stored transposed in shared memory (k-major, rows padded by
4 floats), B as it is.

k-tiles of ``bk`` reach shared memory one of two ways:

* f32 (``async_copy``): a ring of ``stages`` buffers filled by ``cp.async``, so tile k +
  stages-1 is in flight while tile k is multiplied and no register holds it. B rows are
  16-byte ``cp.async.cg`` copies (4-byte ones when N % 4 != 0); A is copied 4 bytes at a time
  (``cp.async.ca``), which scatters it into the transposed layout: 8 lanes read the 32
  consecutive bytes of one row (a whole sector) and write 8 k-rows, 4 rows per warp, into
  distinct banks.
* f16/bf16 (cp.async cannot convert) or ``async_copy=False``: two buffers; the next tile's
  global loads go to registers before the current tile's FMAs and are converted to f32 and
  stored after them (4 consecutive elements per load, per element when rows are not 16-byte
  multiples).

With ``prefetch`` the fragments are double-buffered in registers (k-step s+1 is read from
shared memory while s is multiplied); with the cp.async ring the wait and the barrier that
hand the next stage over sit at the last k-step, so the next tile's first fragments load
under the last FMAs of this one (CUTLASS's multistage order). ``ctas`` asks ptxas to fit that
many blocks per SM (``.minnctapersm``: registers capped at 64K / (ctas * threads)).

Shapes are baked in; when M, N and K are multiples of the tile nothing is bounds-checked,
otherwise copies past the edges zero-fill (cp.async's source size) and stores are predicated.

A fused elementwise epilogue (``matmul_epilogue.py``) is applied to the f32 accumulators in the
store path: C then has the epilogue's dtype and the kernel takes the buffers it reads after C,
A and B."""
from __future__ import annotations

from dataclasses import dataclass

from .dtype import DType, float32
from .matmul_cpasync import SHARED_LIMIT
from .matmul_epilogue import Epilogue, EpiloguePtx
from .matmul_ptx import MatmulKernel, Ptx, cdiv, load_params, raster, zero_fill_copy

F32 = 4                 # bytes of an f32
VEC = 4                 # f32 per 16-byte word: a fragment group side, a register-path chunk
APAD = 4                # floats of padding per transposed-A row (16-byte aligned rows; the
                        # 4-byte copies of 8 k-rows x 4 rows land in 32 distinct banks)
A_COPY_K = 8            # k of one row's 4-byte A copies per round (32 bytes: one sector)
WARP = 32
MAX_THREADS_PER_SM = 2048
THREAD_TILES = (4, 8, 16)       # outputs per lane along M or N (1, 2 or 4 fragment groups)
TILE_SIDES = (32, 64, 128, 256)
K_TILES = (8, 16, 32)


@dataclass(frozen=True)
class SimtConfig:
    """Tile shape and pipeline of the CUDA-core kernel (see the module docstring): block tile
    ``bm`` x ``bn`` x ``bk``, ``warps_m`` x ``warps_n`` warps, ``tm`` x ``tn`` outputs per lane,
    ``stages`` cp.async buffers, ``ctas`` blocks per SM, register ``prefetch`` of fragments,
    ``async_copy`` (f32 only) and the raster ``group``."""
    bm: int = 128
    bn: int = 128
    bk: int = 8
    warps_m: int = 2
    warps_n: int = 4
    tm: int = 8
    tn: int = 8
    stages: int = 3
    ctas: int = 2
    prefetch: bool = True
    async_copy: bool = True
    group: int = 8

    @property
    def threads(self) -> int:
        return WARP * self.warps_m * self.warps_n

    @property
    def lanes_m(self) -> int:
        """Lanes of a warp along M (the warp tile is lanes_m * tm rows)."""
        return self.bm // self.warps_m // self.tm

    @property
    def lanes_n(self) -> int:
        return self.bn // self.warps_n // self.tn

    @property
    def a_bytes(self) -> int:
        """One buffer of transposed A: bk rows of bm + APAD floats."""
        return self.bk * (self.bm + APAD) * F32

    @property
    def stage_bytes(self) -> int:
        return self.a_bytes + self.bk * self.bn * F32

    def buffers(self, dtype: DType) -> int:
        """Shared buffers the kernel for ``dtype`` uses: the ring, or 2 on the register path."""
        return self.stages if self.copies_async(dtype) else 2

    def copies_async(self, dtype: DType) -> bool:
        return self.async_copy and dtype == float32

    def check(self) -> None:
        """Raise ValueError unless the tiles, copies and shared memory divide exactly."""
        t, ok = self.threads, True
        ok &= self.bm in TILE_SIDES and self.bn in TILE_SIDES and self.bk in K_TILES
        ok &= self.tm in THREAD_TILES and self.tn in THREAD_TILES
        ok &= self.bm % (self.warps_m * self.tm) == 0 and self.bn % (self.warps_n * self.tn) == 0
        ok &= self.lanes_m * self.lanes_n == WARP
        # every copy round is whole: A's 4-byte rounds (t/8 rows each) and register chunks
        # (t/(bk/4) rows), B's 16-byte chunks; both are powers of two, so each thread's
        # positions are its first one plus constants
        ok &= t // A_COPY_K <= self.bm and (self.bm * self.bk) % t == 0
        ok &= (self.bk * self.bn // VEC) % t == 0 and (self.bm * self.bk // VEC) % t == 0
        ok &= self.stages >= 2 and self.ctas >= 1 and self.ctas * t <= MAX_THREADS_PER_SM
        ok &= self.ctas * self.stages * self.stage_bytes <= SHARED_LIMIT
        if not ok:
            raise ValueError(f"unsupported simt tile config {self}")

    def tag(self) -> str:
        return (f"{self.bm}x{self.bn}x{self.bk}_w{self.warps_m}x{self.warps_n}_t{self.tm}x{self.tn}"
                f"_s{self.stages}_c{self.ctas}_g{self.group}" + ("_pf" if self.prefetch else "")
                + ("" if self.async_copy else "_regs"))


def simt_kernel(arch: str, dtype: DType, m: int, n: int, k: int, cfg: SimtConfig,
                epilogue: Epilogue | None = None) -> MatmulKernel:
    """The register-tiled FMA kernel for an (m, k) @ (k, n) matmul of ``dtype``; ``epilogue``:
    elementwise work applied to the f32 accumulators before the store (C then has its dtype,
    and the kernel takes the buffers it reads after C, A and B)."""
    cfg.check()
    name = f"matmul_simt_{dtype.name}_{m}_{n}_{k}_{cfg.tag()}" + (f"_{epilogue.tag}" if epilogue else "")
    g = _Gen(dtype, m, n, k, cfg, epilogue)
    g.emit()
    shared = [".extern .shared .align 16 .b8 smem[];"]
    grid = cdiv(m, cfg.bm) * cdiv(n, cfg.bn)
    extra = tuple(epilogue.param_names) if epilogue else ()
    return MatmulKernel(name, g.e.text(arch, name, cfg.threads, shared, cfg.ctas, extra), (grid, 1, 1),
                        (cfg.threads, 1, 1), cfg.buffers(dtype) * cfg.stage_bytes)


class _Gen:
    """Emits one kernel. Registers: %sr / %sw the byte offsets of the buffer read / written,
    %fa / %fb this lane's first A / B fragment in buffer 0, %xa / %xb the same in buffer %sr."""

    def __init__(self, dtype: DType, m: int, n: int, k: int, cfg: SimtConfig, epi: Epilogue | None = None):
        self.dt, self.m, self.n, self.k, self.c = dtype, m, n, k, cfg
        self.epi = epi
        self.out = epi.out if epi else dtype            # C's dtype
        self.async_ = cfg.copies_async(dtype)
        self.bufs = cfg.buffers(dtype)
        self.shared = self.bufs * cfg.stage_bytes
        self.vec_b = n % VEC == 0                          # B rows are whole 16-byte words
        self.vec = dtype == float32 and k % VEC == 0 and self.vec_b  # register-path loads
        self.vec_c = self.out == float32 and self.vec_b    # 16-byte C stores
        self.ktiles = cdiv(k, cfg.bk)
        self.ragged = bool(m % cfg.bm or n % cfg.bn or k % cfg.bk)
        self.e = Ptx()

    def emit(self) -> None:
        e, c = self.e, self.c
        e.reg("pred", "p", "pq", "pl")
        e.reg("b32", "thr", "warp", "lane", "row0", "col0", "kt", "x", "y", "t",
              "sbase", "sr", "sw", "fa", "fb", "xa", "xb")
        e.reg("b64", "ptr")
        e("mov.u32 %thr, %tid.x;")
        e("shr.u32 %warp, %thr, 5;")
        e("and.b32 %lane, %thr, 31;")
        raster(e, cdiv(self.m, c.bm), cdiv(self.n, c.bn), c.group)
        e(f"mul.lo.u32 %row0, %tile_m, {c.bm};")
        e(f"mul.lo.u32 %col0, %tile_n, {c.bn};")
        load_params(e)
        e("mov.u32 %sbase, smem;")
        self.fragment_setup()
        self.acc = [[f"%acc{i}_{j}" for j in range(c.tn)] for i in range(c.tm)]
        e.reg("f32", *[a[1:] for row in self.acc for a in row])
        for row in self.acc:
            for a in row:
                e(f"mov.f32 {a}, 0f00000000;")
        e("mov.u32 %kt, 0;")
        if self.async_:
            self.async_loop()
        else:
            self.register_loop()
        self.epilogue()

    # ---- the k-tile loops ----------------------------------------------------------------
    def async_loop(self) -> None:
        """The cp.async ring: tiles 0 .. stages-2 in flight before the loop; iteration kt
        copies tile kt+stages-1 into the buffer tile kt-1 used, then multiplies tile kt."""
        e, c = self.e, self.c
        self.copy_setup()
        e("mov.u32 %sw, 0;")
        for s in range(c.stages - 1):
            if s < self.ktiles:          # K is known: copies of tiles past it are left out
                self.copy_tile(None)
            e("cp.async.commit_group;")
            self.advance_copy()
        e("mov.u32 %sr, 0;")
        if c.prefetch:
            self.wait_landed()
            self.point_fragments()
            self.load_fragments(0, 0)
        e("$KLOOP:")
        if not c.prefetch:
            self.wait_landed()
        e(f"setp.lt.s32 %pl, %kt, {self.ktiles - (c.stages - 1)};")
        self.copy_tile("%pl")
        e("cp.async.commit_group;")
        self.advance_copy()
        if not c.prefetch:
            self.point_fragments()
        self.k_steps(self.next_stage if c.prefetch else None)
        if not c.prefetch:
            self.rotate("%sr")
        self.loop_end()
        e("cp.async.wait_group 0;")

    def wait_landed(self) -> None:
        """Wait until the tile of buffer %sr has landed: this thread's copies, then everyone's
        (after the barrier the buffer the previous tile used is free as well)."""
        self.e(f"cp.async.wait_group {self.c.stages - 2};")
        self.e("bar.sync 0;")

    def next_stage(self) -> None:
        """At the last k-step with prefetch: hand over the next tile's buffer."""
        self.wait_landed()
        self.rotate("%sr")
        self.point_fragments()

    def register_loop(self) -> None:
        """Two buffers through registers: iteration kt loads tile kt+1 (zeros past the last),
        multiplies tile kt, then stores tile kt+1 into the other buffer. Straight-line code:
        a branch around the loads lets ptxas sink them below the FMAs, exposing their latency."""
        e, c = self.e, self.c
        self.stage_regs()
        e("mov.u32 %sw, 0;")
        e("setp.eq.u32 %pl, %kt, %kt;")                  # tile 0 exists (k >= 1)
        self.load_tile()
        self.store_tile()
        e("bar.sync 0;")
        e("mov.u32 %sr, 0;")
        e(f"mov.u32 %sw, {c.stage_bytes};")
        e("$KLOOP:")
        e(f"setp.lt.s32 %pl, %kt, {self.ktiles - 1};")   # is there a next tile?
        self.load_tile(next_tile=True)
        self.point_fragments()
        if c.prefetch:
            self.load_fragments(0, 0)
        self.k_steps(None)
        self.store_tile()
        e("bar.sync 0;")
        e("xor.b32 %sr, %sr, %sw;")                      # swap the buffers
        e("xor.b32 %sw, %sr, %sw;")
        e("xor.b32 %sr, %sr, %sw;")
        self.loop_end()

    def loop_end(self) -> None:
        e = self.e
        e("add.s32 %kt, %kt, 1;")
        e(f"setp.lt.s32 %p, %kt, {self.ktiles};")
        e("@%p bra $KLOOP;")

    def rotate(self, reg: str) -> None:
        """Next buffer's byte offset, wrapping after the last."""
        e = self.e
        e(f"add.u32 {reg}, {reg}, {self.c.stage_bytes};")
        e(f"setp.eq.u32 %p, {reg}, {self.shared};")
        e(f"selp.u32 {reg}, 0, {reg}, %p;")

    # ---- shared -> registers -> FMAs -------------------------------------------------------
    def fragment_setup(self) -> None:
        """%fa: &As[0][warp_row + 4 lane_m] in buffer 0; %fb: &Bs[0][warp_col + 4 lane_n];
        lane = lane_m * lanes_n + lane_n, so a quarter-warp reads consecutive B words."""
        e, c = self.e, self.c
        e.reg("b32", "lm", "ln")
        e(f"div.u32 %lm, %lane, {c.lanes_n};")
        e(f"rem.u32 %ln, %lane, {c.lanes_n};")
        e(f"div.u32 %x, %warp, {c.warps_n};")
        e(f"mul.lo.u32 %x, %x, {c.bm // c.warps_m};")
        e(f"mad.lo.u32 %x, %lm, {VEC}, %x;")
        e(f"mad.lo.u32 %fa, %x, {F32}, %sbase;")
        e(f"rem.u32 %x, %warp, {c.warps_n};")
        e(f"mul.lo.u32 %x, %x, {c.bn // c.warps_n};")
        e(f"mad.lo.u32 %x, %ln, {VEC}, %x;")
        e(f"mad.lo.u32 %fb, %x, {F32}, %sbase;")
        e(f"add.u32 %fb, %fb, {c.a_bytes};")
        bufs = 2 if c.prefetch else 1
        self.fa = [[f"%fa{b}_{i}" for i in range(c.tm)] for b in range(bufs)]
        self.fb = [[f"%fb{b}_{j}" for j in range(c.tn)] for b in range(bufs)]
        e.reg("f32", *[r[1:] for buf in self.fa + self.fb for r in buf])

    def point_fragments(self) -> None:
        self.e("add.u32 %xa, %fa, %sr;")
        self.e("add.u32 %xb, %fb, %sr;")

    def load_fragments(self, kk: int, buf: int) -> None:
        """Fragment registers ``buf`` = k-row ``kk`` of the lane's A rows and B columns."""
        e, c = self.e, self.c
        for i in range(c.tm // VEC):
            off = (kk * (c.bm + APAD) + i * c.lanes_m * VEC) * F32
            e(f"ld.shared.v4.f32 {{{', '.join(self.fa[buf][VEC * i:VEC * i + VEC])}}}, [%xa+{off}];")
        for j in range(c.tn // VEC):
            off = (kk * c.bn + j * c.lanes_n * VEC) * F32
            e(f"ld.shared.v4.f32 {{{', '.join(self.fb[buf][VEC * j:VEC * j + VEC])}}}, [%xb+{off}];")

    def k_steps(self, boundary) -> None:
        """The FMAs of one tile (buffer %xa / %xb). With prefetch k-step kk's fragments are
        already in buffer kk % 2 and kk+1's are loaded first; at the last step ``boundary``
        (if any) switches to the next tile's buffer, whose first fragments load there."""
        c = self.c
        for kk in range(c.bk):
            if not c.prefetch:
                self.load_fragments(kk, 0)
                self.fmas(0)
                continue
            if kk + 1 < c.bk:
                self.load_fragments(kk + 1, (kk + 1) % 2)
            elif boundary is not None:
                boundary()
                self.load_fragments(0, 0)                # bk is even: buffer 0 again
            self.fmas(kk % 2)

    def fmas(self, buf: int) -> None:
        for i, a in enumerate(self.fa[buf]):
            for j, b in enumerate(self.fb[buf]):
                self.e(f"fma.rn.f32 {self.acc[i][j]}, {a}, {b}, {self.acc[i][j]};")

    # ---- global -> shared: cp.async ------------------------------------------------------
    def copy_setup(self) -> None:
        """This thread's first copy of each operand; copy i adds constants (``_steps``).
        A: row thr/8, k thr%8 (4 bytes); B: k-row thr/(bn/w), column w * (thr % (bn/w)) with
        w = 4 (16-byte copies) or 1. %ga / %gb advance one k-tile per tile copied."""
        e, c = self.e, self.c
        self.bw = VEC if self.vec_b else 1              # B elements per copy
        e.reg("b32", "ra", "ka", "rb", "cb", "soa", "sob")
        e.reg("b64", "ga", "gb")
        e(f"shr.u32 %ra, %thr, {_log2(A_COPY_K)};")
        e(f"and.b32 %ka, %thr, {A_COPY_K - 1};")
        e(f"mad.lo.u32 %x, %ka, {c.bm + APAD}, %ra;")
        e(f"mad.lo.u32 %soa, %x, {F32}, %sbase;")
        e("add.u32 %ra, %ra, %row0;")
        e(f"mad.lo.u32 %x, %ra, {self.k}, %ka;")
        e(f"mul.wide.u32 %ga, %x, {F32};")
        e("add.s64 %ga, %ga, %pa;")
        per_row = c.bn // self.bw
        e(f"shr.u32 %rb, %thr, {_log2(per_row)};")
        e(f"and.b32 %cb, %thr, {per_row - 1};")
        e(f"mul.lo.u32 %cb, %cb, {self.bw};")
        e(f"mad.lo.u32 %x, %rb, {c.bn}, %cb;")
        e(f"mad.lo.u32 %sob, %x, {F32}, %sbase;")
        e(f"add.u32 %sob, %sob, {c.a_bytes};")
        e("add.u32 %cb, %cb, %col0;")
        e(f"mad.lo.u32 %x, %rb, {self.n}, %cb;")
        e(f"mul.wide.u32 %gb, %x, {F32};")
        e("add.s64 %gb, %gb, %pb;")
        if self.ragged:
            e.reg("b32", "kb", "sz")
            e("mov.u32 %kb, 0;")                         # first k of the tile being copied

    def copy_tile(self, pred: str | None) -> None:
        """Copy the next k-tile into buffer %sw (only where ``pred``, when given)."""
        e, c = self.e, self.c
        guard = f"@{pred} " if pred else ""
        e("add.u32 %x, %soa, %sw;")
        e("add.u32 %y, %sob, %sw;")
        for d_k, d_row in _steps(c.bm * c.bk // c.threads, c.threads // A_COPY_K, c.bm):
            d_k *= A_COPY_K                              # k-groups of 8 follow all bm rows
            goff, soff = (d_row * self.k + d_k) * F32, (d_k * (c.bm + APAD) + d_row) * F32
            checks = [("%ra", d_row, self.m), ("%ka", d_k, self.k)]
            self.copy(guard, "ca", F32, "%x", soff, "%ga", goff, "%pa", checks)
        for d_k, d_col in _steps(c.bk * c.bn // self.bw // c.threads, c.threads, c.bn // self.bw):
            d_col *= self.bw
            goff, soff = (d_k * self.n + d_col) * F32, (d_k * c.bn + d_col) * F32
            checks = [("%rb", d_k, self.k), ("%cb", d_col, self.n)]
            cache = "cg" if self.bw == VEC else "ca"     # .cg takes 16-byte copies only
            self.copy(guard, cache, self.bw * F32, "%y", soff, "%gb", goff, "%pb", checks)

    def copy(self, guard: str, cache: str, size: int, s: str, soff: int, g: str, goff: int,
             base: str, checks: list[tuple[str, int, int]]) -> None:
        """One cp.async of ``size`` bytes. On ragged shapes each (register, offset, limit) of
        ``checks`` must hold (register + offset < limit; %kb is added to k registers), else
        the copy reads 0 bytes from the matrix's base (a valid address) and zero-fills."""
        e = self.e
        if not self.ragged:
            e(f"{guard}cp.async.{cache}.shared.global [{s}+{soff}], [{g}+{goff}], {size};")
            return
        for q, (reg, off, limit) in enumerate(checks):
            e(f"add.u32 %sz, {reg}, {off};")
            if reg in ("%ka", "%rb"):
                e("add.u32 %sz, %sz, %kb;")
            e(f"setp.lt.u32 %p, %sz, {limit};" if q == 0 else f"setp.lt.and.u32 %p, %sz, {limit}, %p;")
        zero_fill_copy(e, guard, cache, size, s, soff, g, goff, base)

    def advance_copy(self) -> None:
        """Move %ga / %gb (and %kb) to the next k-tile and %sw to the next buffer."""
        e, c = self.e, self.c
        e(f"add.s64 %ga, %ga, {c.bk * F32};")
        e(f"add.s64 %gb, %gb, {c.bk * self.n * F32};")
        if self.ragged:
            e(f"add.u32 %kb, %kb, {c.bk};")
        self.rotate("%sw")

    # ---- global -> registers -> shared -----------------------------------------------------
    def stage_regs(self) -> None:
        """Staging registers and this thread's first chunk: A chunk = 4 k of one row (row
        thr/(bk/4), k 4 (thr % (bk/4))); B chunk = 4 columns of one k-row."""
        e, c = self.e, self.c
        self.na = c.bm * c.bk // VEC // c.threads
        self.nb = c.bk * c.bn // VEC // c.threads
        e.reg("b32", "ra", "ka", "rb", "cb")
        e.reg("b16", "h")
        e.reg("f32", *[f"sa{i}_{q}" for i in range(self.na) for q in range(VEC)],
              *[f"sb{i}_{q}" for i in range(self.nb) for q in range(VEC)])
        e(f"shr.u32 %ra, %thr, {_log2(c.bk // VEC)};")
        e(f"and.b32 %ka, %thr, {c.bk // VEC - 1};")
        e(f"shl.b32 %ka, %ka, {_log2(VEC)};")
        e(f"shr.u32 %rb, %thr, {_log2(c.bn // VEC)};")
        e(f"and.b32 %cb, %thr, {c.bn // VEC - 1};")
        e(f"shl.b32 %cb, %cb, {_log2(VEC)};")

    def load_tile(self, next_tile: bool = False) -> None:
        """Staging registers = k-tile %kt (+1 with ``next_tile``) of A and B where %pl, zeros
        outside the matrices."""
        e, c = self.e, self.c
        e("mov.u32 %t, %kt;")
        if next_tile:
            e("add.u32 %t, %t, 1;")
        e(f"mul.lo.u32 %t, %t, {c.bk};")                  # first k of the tile
        for i, (d_row, d_k) in enumerate(_steps(self.na, c.threads, c.bk // VEC)):
            e(f"add.u32 %y, %ra, {d_row};")
            e("add.u32 %y, %y, %row0;")                  # global row
            e(f"setp.lt.and.u32 %p, %y, {self.m}, %pl;")
            e(f"add.u32 %x, %ka, {d_k * VEC};")
            e("add.u32 %x, %x, %t;")                     # global k
            e(f"mad.lo.u32 %y, %y, {self.k}, %x;")
            self.load4("%pa", [f"%sa{i}_{q}" for q in range(VEC)], "%x", self.k)
        for i, (d_k, d_col) in enumerate(_steps(self.nb, c.threads, c.bn // VEC)):
            e(f"add.u32 %y, %rb, {d_k};")
            e("add.u32 %y, %y, %t;")                     # global k
            e(f"setp.lt.and.u32 %p, %y, {self.k}, %pl;")
            e(f"add.u32 %x, %cb, {d_col * VEC};")
            e("add.u32 %x, %x, %col0;")                  # global column
            e(f"mad.lo.u32 %y, %y, {self.n}, %x;")
            self.load4("%pb", [f"%sb{i}_{q}" for q in range(VEC)], "%x", self.n)

    def load4(self, base: str, dst: list[str], pos: str, limit: int) -> None:
        """dst = the 4 elements at index %y of ``base`` (predicate %p: row valid; element q is
        in bounds when ``pos`` + q < ``limit``)."""
        e, dt = self.e, self.dt
        e(f"mul.wide.u32 %ptr, %y, {dt.itemsize};")
        e(f"add.s64 %ptr, %ptr, {base};")
        for d in dst:
            e(f"mov.f32 {d}, 0f00000000;")
        if self.vec:    # limit % 4 == 0: the chunk is all in or all out
            e(f"setp.lt.and.u32 %p, {pos}, {limit}, %p;")
            e(f"@%p ld.global.nc.v4.f32 {{{', '.join(dst)}}}, [%ptr];")
            return
        for q, d in enumerate(dst):
            e(f"add.u32 %y, {pos}, {q};")
            e(f"setp.lt.and.u32 %pq, %y, {limit}, %p;")
            off = q * dt.itemsize
            if dt == float32:
                e(f"@%pq ld.global.nc.f32 {d}, [%ptr+{off}];")
            else:
                e(f"@%pq ld.global.nc.b16 %h, [%ptr+{off}];")
                e(f"@%pq cvt.f32.{dt.ptx} {d}, %h;")

    def store_tile(self) -> None:
        """Staging registers -> buffer %sw (A transposed)."""
        e, c = self.e, self.c
        e(f"mad.lo.u32 %x, %ka, {c.bm + APAD}, %ra;")
        e(f"mad.lo.u32 %x, %x, {F32}, %sbase;")
        e("add.u32 %x, %x, %sw;")
        for i, (d_row, d_k) in enumerate(_steps(self.na, c.threads, c.bk // VEC)):
            for q in range(VEC):
                off = ((d_k * VEC + q) * (c.bm + APAD) + d_row) * F32
                e(f"st.shared.f32 [%x+{off}], %sa{i}_{q};")
        e(f"mad.lo.u32 %y, %rb, {c.bn}, %cb;")
        e(f"mad.lo.u32 %y, %y, {F32}, %sbase;")
        e("add.u32 %y, %y, %sw;")
        for i, (d_k, d_col) in enumerate(_steps(self.nb, c.threads, c.bn // VEC)):
            off = c.a_bytes + (d_k * c.bn + d_col * VEC) * F32
            regs = ", ".join(f"%sb{i}_{q}" for q in range(VEC))
            e(f"st.shared.v4.f32 [%y+{off}], {{{regs}}};")

    # ---- registers -> C --------------------------------------------------------------------
    def epilogue(self) -> None:
        """Output (i, j) of the lane is C[crow + 4 lanes_m (i/4) + i%4, ccol + 4 lanes_n (j/4)
        + j%4] with crow, ccol the lane's first row and column; 4 columns per store. A fused
        epilogue's values are stored instead of the accumulators, in its dtype: the lane's tn
        columns bound once (column slots 0 .. tn-1), then row by row (row slot 0), 4 elements
        per store (element slots 0-3)."""
        e, c, dt = self.e, self.c, self.out
        e.reg("pred", "pr", "pv")
        if dt != float32 and self.async_:
            e.reg("b16", "h")                            # the register path declares its own
        e.reg("b32", "crow", "ccol")
        e(f"div.u32 %x, %warp, {c.warps_n};")
        e(f"mul.lo.u32 %x, %x, {c.bm // c.warps_m};")
        e(f"mad.lo.u32 %x, %lm, {VEC}, %x;")
        e("add.u32 %crow, %x, %row0;")
        e(f"rem.u32 %x, %warp, {c.warps_n};")
        e(f"mul.lo.u32 %x, %x, {c.bn // c.warps_n};")
        e(f"mad.lo.u32 %x, %ln, {VEC}, %x;")
        e("add.u32 %ccol, %x, %col0;")
        fused = self.fused_epilogue()
        e(f"mad.lo.u32 %x, %crow, {self.n}, %ccol;")
        e(f"mul.wide.u32 %ptr, %x, {dt.itemsize};")
        e("add.s64 %ptr, %ptr, %pc;")
        for i in range(c.tm):
            dr = i // VEC * c.lanes_m * VEC + i % VEC
            if self.ragged:
                e(f"add.u32 %y, %crow, {dr};")
                e(f"setp.lt.u32 %pr, %y, {self.m};")
            if fused is not None:
                fused.row(0, "%crow", dr)
            for jg in range(c.tn // VEC):
                dc = jg * c.lanes_n * VEC
                vals = self.acc[i][VEC * jg:VEC * jg + VEC]
                if fused is not None:
                    vals = [fused.value(0, VEC * jg + q, q, v) for q, v in enumerate(vals)]
                off = (dr * self.n + dc) * dt.itemsize
                if self.vec_c:
                    guard = ""
                    if self.ragged:
                        e(f"add.u32 %x, %ccol, {dc};")
                        e(f"setp.lt.and.u32 %pv, %x, {self.n}, %pr;")
                        guard = "@%pv "
                    e(f"{guard}st.global.v4.f32 [%ptr+{off}], {{{', '.join(vals)}}};")
                    continue
                for q, v in enumerate(vals):
                    e(f"add.u32 %x, %ccol, {dc + q};")
                    e(f"setp.lt.u32 %pv, %x, {self.n};")
                    if self.ragged:
                        e("and.pred %pv, %pv, %pr;")
                    if dt == float32:
                        e(f"@%pv st.global.f32 [%ptr+{off + q * F32}], {v};")
                    else:
                        e(f"cvt.rn.{dt.ptx}.f32 %h, {v};")
                        e(f"@%pv st.global.b16 [%ptr+{off + q * dt.itemsize}], %h;")

    def fused_epilogue(self) -> EpiloguePtx | None:
        """The epilogue's emitter with what it computes once per lane done (buffer addresses,
        the values of the lane's tn columns, column j = %ccol + 4 lanes_n (j/4) + j%4), or None
        without an epilogue. Rows and columns are clamped only when M or N is ragged (K is
        not the epilogue's concern)."""
        if self.epi is None:
            return None
        c = self.c
        f = EpiloguePtx(self.epi, self.e, self.m, self.n, 1, c.tn, VEC, bool(self.m % c.bm or self.n % c.bn))
        f.setup()
        for j in range(c.tn):
            f.col(j, "%ccol", j // VEC * c.lanes_n * VEC + j % VEC)
        return f


def _steps(count: int, threads: int, per_row: int) -> list[tuple[int, int]]:
    """(row, column) offsets of a thread's copies 0..count-1 from its first one, where copy i
    of thread t is item t + i*threads of a row-major grid ``per_row`` wide. Powers of two make
    these the same for every thread (its column plus the offset stays inside the row)."""
    return [divmod(i * threads, per_row) for i in range(count)]


def _log2(x: int) -> int:
    """log2 of a power of two (a shift count)."""
    return x.bit_length() - 1
