"""The tensor-core matmul for f16/bf16: C[M,N] = A[M,K] @ B[K,N], row-major, f32 accumulation.

Each block computes a ``bm`` x ``bn`` tile of C with ``warps_m`` x ``warps_n`` warps. Tiles of
A (``bm`` x ``bk``) and B (``bk`` x ``bn``) stream through a ring of ``stages`` shared-memory
buffers filled by 16-byte ``cp.async`` copies, so the loads of tile k+stages-1 run while tile
k is multiplied. Each warp reads its fragments with ``ldmatrix`` (``.trans`` for B, which is
k-major) and multiplies with ``mma.sync.m16n8k16``. Shared rows are padded by 16 bytes, which
puts the 8 row addresses of every ``ldmatrix`` phase in distinct banks.

With ``prefetch`` the fragments are double-buffered in registers: the ldmatrix of k-step s+1
is issued before the mmas of step s, and the barrier that hands the next stage over sits at the
last k-step of a tile, so the first fragments of the next tile load under the last mmas of this
one (the CUTLASS multistage order). ``ctas`` > 1 caps registers (``.minnctapersm``) so that
many blocks share an SM.

Shapes are baked in. When M, N and K are multiples of the tile the copies and stores carry no
bounds checks; otherwise each 16-byte chunk is zero-filled past the edges (``cp.async``'s
source size) and stores are predicated. Needs K and N multiples of 8 (16-byte rows). The copy
pipeline and kernel skeleton are matmul_cpasync.py's (shared with the TF32 kernel)."""
from __future__ import annotations

from dataclasses import dataclass

from .dtype import DType
from .matmul_cpasync import CpAsyncGen, CpAsyncTiles
from .matmul_ptx import MatmulKernel, cdiv

PAD = 8                 # halves of padding per shared row (16 bytes)
MAX_THREADS_PER_SM = 2048


@dataclass(frozen=True)
class MmaConfig(CpAsyncTiles):
    """Tile shape and pipeline of the tensor-core kernel. The 128x256x64 tile won
    bench/tensor_variants.py on an H100 (2026-11-22; 342 TFLOPS f16 at 8192 against 311 for
    128x256x32). These defaults (4 stages, register prefetch) are what bench/tensor_bench.py
    measured in docs/measurements.md: 401 / 438 TFLOPS f16 at 4096 / 8192."""
    ELEM_BYTES = 2
    A_PAD = PAD
    B_PAD = PAD
    bm: int = 128
    bn: int = 256
    bk: int = 64
    warps_m: int = 2
    warps_n: int = 4
    stages: int = 4
    group: int = 8
    prefetch: bool = True
    ctas: int = 1

    def check(self) -> None:
        """Raise ValueError unless the loops below tile the block exactly."""
        wm, wn = self.bm // self.warps_m, self.bn // self.warps_n
        ok = (wm % 16 == 0 and wn % 16 == 0 and self.bk % 16 == 0 and self.copies_tile(self.ctas)
              and self.ctas * self.threads <= MAX_THREADS_PER_SM
              and (not self.prefetch or self.bk % 32 == 0))     # an even count of k-steps
        if not ok:
            raise ValueError(f"unsupported mma tile config {self}")

    def tag(self) -> str:
        return (f"{self.bm}x{self.bn}x{self.bk}_w{self.warps_m}x{self.warps_n}_s{self.stages}_g{self.group}"
                + ("_pf" if self.prefetch else "") + (f"_c{self.ctas}" if self.ctas > 1 else ""))


def mma_kernel(arch: str, dtype: DType, m: int, n: int, k: int, cfg: MmaConfig) -> MatmulKernel:
    """The pipelined tensor-core kernel for an (m, k) @ (k, n) matmul of f16/bf16."""
    cfg.check()
    name = f"matmul_mma_{dtype.name}_{m}_{n}_{k}_{cfg.tag()}"
    g = _Gen(dtype, m, n, k, cfg)
    g.emit()
    grid = cdiv(m, cfg.bm) * cdiv(n, cfg.bn)
    shared = [".extern .shared .align 16 .b8 smem[];"]
    return MatmulKernel(name, g.e.text(arch, name, cfg.threads, shared, cfg.ctas), (grid, 1, 1),
                        (cfg.threads, 1, 1), cfg.shared)


class _Gen(CpAsyncGen):
    """The cp.async pipeline (matmul_cpasync.py) with ldmatrix fragments and m16n8k16 mmas."""
    c: MmaConfig

    def __init__(self, dtype: DType, m: int, n: int, k: int, cfg: MmaConfig):
        super().__init__(m, n, k, cfg)
        self.t = dtype.ptx

    def before_loop(self) -> None:
        if self.c.prefetch:
            self.wait_stage()
            self.fragments(0, 0)

    def k_tile(self) -> None:
        c = self.c
        if c.prefetch:
            self.prefetched_tile()
        else:
            self.wait_stage()                        # stage kt-1 is free too
            self.copy_next()
            for ks in range(c.bk // 16):
                self.fragments(0, ks)
                self.mmas(0)
            self.rotate("%sr")

    # ---- shared -> registers -> tensor cores ---------------------------------------------
    def fragment_setup(self) -> None:
        """%la / %lb: this lane's ldmatrix row address in stage 0 for m-tile 0 / n-tiles 0-1
        at k 0. Lanes 8q..8q+7 address matrix q: A's are (rows 0-7, k 0-7), (rows 8-15, k 0-7),
        (rows 0-7, k 8-15), (rows 8-15, k 8-15) - the a0..a3 order mma wants; B's (.trans)
        are (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15): b0 b1 of two
        n-tiles."""
        e, c = self.e, self.c
        e.reg("b32", "la", "lb", "q", "r8")
        e("and.b32 %r8, %lane, 7;")
        e("shr.u32 %q, %lane, 3;")
        e("and.b32 %x, %q, 1;")
        e("mad.lo.u32 %x, %x, 8, %r8;")              # row within the 16-row pair
        e(f"div.u32 %y, %warp, {c.warps_n};")
        e(f"mad.lo.u32 %x, %y, {self.wm}, %x;")       # + the warp's first row
        e("shr.u32 %y, %q, 1;")
        e("shl.b32 %y, %y, 3;")                      # k 0 or 8
        e(f"mad.lo.u32 %la, %x, {c.bk + PAD}, %y;")
        e("shl.b32 %la, %la, 1;")
        e("add.u32 %la, %la, %sbase;")
        e("and.b32 %x, %q, 1;")
        e("mad.lo.u32 %x, %x, 8, %r8;")              # k row
        e(f"mul.lo.u32 %x, %x, {c.bn + PAD};")
        e("shr.u32 %y, %q, 1;")
        e("shl.b32 %y, %y, 3;")                      # n 0 or 8
        e("add.u32 %x, %x, %y;")
        e(f"rem.u32 %y, %warp, {c.warps_n};")
        e(f"mad.lo.u32 %lb, %y, {self.wn}, %x;")      # + the warp's first column
        e("shl.b32 %lb, %lb, 1;")
        e(f"add.u32 %lb, %lb, {c.a_bytes};")
        e("add.u32 %lb, %lb, %sbase;")
        e.reg("b32", "fa", "fb")
        for buf in range(2 if c.prefetch else 1):
            e.reg("b32", *[f"a{buf}_{i}_{q}" for i in range(self.mt) for q in range(4)])
            e.reg("b32", *[f"b{buf}_{j}_{q}" for j in range(self.nt) for q in range(2)])

    def wait_stage(self) -> None:
        """Wait until the tile in stage %sr has landed and point %fa / %fb at it."""
        self.wait_landed()
        self.e("add.u32 %fa, %la, %sr;")
        self.e("add.u32 %fb, %lb, %sr;")

    def prefetched_tile(self) -> None:
        """One k-tile with double-buffered fragments: step ks multiplies buffer ks%2 while
        buffer (ks+1)%2 loads step ks+1 - at the last step, step 0 of the next tile, after
        the barrier that makes it visible."""
        steps = self.c.bk // 16
        for ks in range(steps):
            if ks == 0:
                self.copy_next()
            if ks == steps - 1:
                self.rotate("%sr")
                self.wait_stage()
            self.fragments((ks + 1) % 2, (ks + 1) % steps)
            self.mmas(ks % 2)

    def fragments(self, buf: int, ks: int) -> None:
        """ldmatrix this warp's A and B fragments of k-step ``ks`` (of the stage at %fa / %fb)
        into register buffer ``buf``."""
        e, c = self.e, self.c
        for i in range(self.mt):
            regs = ", ".join(f"%a{buf}_{i}_{q}" for q in range(4))
            off = (i * 16 * (c.bk + PAD) + ks * 16) * 2
            e(f"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {{{regs}}}, [%fa+{off}];")
        for j in range(0, self.nt, 2):
            regs = f"%b{buf}_{j}_0, %b{buf}_{j}_1, %b{buf}_{j + 1}_0, %b{buf}_{j + 1}_1"
            off = (ks * 16 * (c.bn + PAD) + j * 8) * 2
            e(f"ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {{{regs}}}, [%fb+{off}];")

    def mmas(self, buf: int) -> None:
        """The warp tile's mmas on fragment buffer ``buf``."""
        e, t = self.e, self.t
        for i, j, acc in self.serpentine():
            a = ", ".join(f"%a{buf}_{i}_{q}" for q in range(4))
            e(f"mma.sync.aligned.m16n8k16.row.col.f32.{t}.{t}.f32 {{{acc}}}, {{{a}}}, "
              f"{{%b{buf}_{j}_0, %b{buf}_{j}_1}}, {{{acc}}};")

    # ---- registers -> C --------------------------------------------------------------------
    def epilogue(self, acc: list[str]) -> None:
        """Accumulator q of tile (i, j) is C[g + 8*(q//2), 2*t4 + q%2] of that 16x8 tile (g =
        lane/4, t4 = lane%4): each pair of columns is rounded into one 32-bit store."""
        e, c = self.e, self.c
        e.reg("b32", "crow", "ccol", "pk")
        e("shr.u32 %x, %lane, 2;")
        e(f"div.u32 %y, %warp, {c.warps_n};")
        e(f"mad.lo.u32 %x, %y, {self.wm}, %x;")
        e("add.u32 %crow, %x, %row0;")
        e("and.b32 %x, %lane, 3;")
        e("shl.b32 %x, %x, 1;")
        e(f"rem.u32 %y, %warp, {c.warps_n};")
        e(f"mad.lo.u32 %x, %y, {self.wn}, %x;")
        e("add.u32 %ccol, %x, %col0;")
        e(f"mad.lo.u32 %x, %crow, {self.n}, %ccol;")
        e("mul.wide.u32 %ptr, %x, 2;")
        e("add.s64 %ptr, %ptr, %pc;")
        self.store_pairs(acc)

    def pack_pair(self, lo: str, hi: str) -> None:
        """Round the pair into %pk (two halves, ``lo`` in the low one)."""
        self.e(f"cvt.rn.{self.t}x2.f32 %pk, {hi}, {lo};")

    def store_pair(self, guard: str, lo: str, hi: str, off: int) -> None:
        """One 32-bit store of the packed pair."""
        self.e(f"{guard}st.global.b32 [%ptr+{off}], %pk;")
