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
source size) and stores are predicated. Needs K and N multiples of 8 (16-byte rows)."""
from __future__ import annotations

from dataclasses import dataclass

from .dtype import DType
from .matmul_ptx import MatmulKernel, Ptx, cdiv, load_params, raster

PAD = 8                 # halves of padding per shared row (16 bytes)


@dataclass(frozen=True)
class MmaConfig:
    """Tile shape and pipeline of the tensor-core kernel. The 128x256x64 tile won
    bench/tensor_variants.py on an H100 (2026-11-22; 342 TFLOPS f16 at 8192 against 311 for
    128x256x32). These defaults (4 stages, register prefetch) are what bench/tensor_bench.py
    measured in docs/measurements.md: 401 / 438 TFLOPS f16 at 4096 / 8192."""
    bm: int = 128
    bn: int = 256
    bk: int = 64
    warps_m: int = 2
    warps_n: int = 4
    stages: int = 4
    group: int = 8
    prefetch: bool = True
    ctas: int = 1

    @property
    def threads(self) -> int:
        return 32 * self.warps_m * self.warps_n

    @property
    def a_bytes(self) -> int:
        """One stage of A in shared memory (padded rows)."""
        return self.bm * (self.bk + PAD) * 2

    @property
    def stage_bytes(self) -> int:
        return self.a_bytes + self.bk * (self.bn + PAD) * 2

    @property
    def shared(self) -> int:
        return self.stages * self.stage_bytes

    def check(self) -> None:
        """Raise ValueError unless the loops below tile the block exactly."""
        wm, wn = self.bm // self.warps_m, self.bn // self.warps_n
        ok = (wm % 16 == 0 and wn % 16 == 0 and self.bk % 16 == 0 and self.stages >= 2
              and self.threads % (self.bk // 8) == 0 and self.threads % (self.bn // 8) == 0
              and (self.bm * self.bk // 8) % self.threads == 0
              and (self.bk * self.bn // 8) % self.threads == 0
              and self.ctas * self.shared <= 227 << 10 and self.ctas * self.threads <= 2048
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


class _Gen:
    """Emits one kernel; registers are named after what they hold."""

    def __init__(self, dtype: DType, m: int, n: int, k: int, cfg: MmaConfig):
        self.t, self.m, self.n, self.k, self.c = dtype.ptx, m, n, k, cfg
        self.wm, self.wn = cfg.bm // cfg.warps_m, cfg.bn // cfg.warps_n
        self.mt, self.nt = self.wm // 16, self.wn // 8
        self.ktiles = cdiv(k, cfg.bk)
        self.ragged = m % cfg.bm or n % cfg.bn or k % cfg.bk
        self.e = Ptx()

    def emit(self) -> None:
        e, c = self.e, self.c
        e.reg("pred", "p", "pl")
        e.reg("b32", "thr", "warp", "lane", "row0", "col0", "kt", "sbase", "sw", "sr", "x", "y")
        e.reg("b64", "ga", "gb", "ptr")
        e("mov.u32 %thr, %tid.x;")
        e("shr.u32 %warp, %thr, 5;")
        e("and.b32 %lane, %thr, 31;")
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
        if c.prefetch:
            self.wait_stage()
            self.fragments(0, 0)
        e("$KLOOP:")
        if c.prefetch:
            self.prefetched_tile()
        else:
            self.wait_stage()                        # stage kt-1 is free too
            self.copy_next()
            for ks in range(c.bk // 16):
                self.fragments(0, ks)
                self.mmas(0)
            self.rotate("%sr")
        e("add.s32 %kt, %kt, 1;")
        e(f"setp.lt.s32 %p, %kt, {self.ktiles};")
        e("@%p bra $KLOOP;")
        e("cp.async.wait_group 0;")
        self.epilogue(acc)

    # ---- global -> shared ----------------------------------------------------------------
    def copy_setup(self) -> None:
        """Per-thread chunk coordinates: chunk i of A is row ``ra + i*rsa``, column ``ca8`` of
        the tile; chunk i of B is row ``rb + i*rsb``, column ``cb8``. Global pointers %ga/%gb
        advance by one k-tile per copy."""
        e, c = self.e, self.c
        ca, cb = c.bk // 8, c.bn // 8                # 16-byte chunks per tile row
        self.rsa, self.na = c.threads // ca, c.bm * c.bk // 8 // c.threads
        self.rsb, self.nb = c.threads // cb, c.bk * c.bn // 8 // c.threads
        e.reg("b32", "ra", "ca8", "rb", "cb8", "soa", "sob")
        e(f"div.u32 %ra, %thr, {ca};")
        e(f"rem.u32 %ca8, %thr, {ca};")
        e("shl.b32 %ca8, %ca8, 3;")
        e(f"div.u32 %rb, %thr, {cb};")
        e(f"rem.u32 %cb8, %thr, {cb};")
        e("shl.b32 %cb8, %cb8, 3;")
        e("add.u32 %ra, %ra, %row0;")                # global row of A chunk 0
        e(f"mad.lo.u32 %x, %ra, {self.k}, %ca8;")
        e("mul.wide.u32 %ga, %x, 2;")
        e("add.s64 %ga, %ga, %pa;")
        e("add.u32 %cb8, %cb8, %col0;")              # global column of B chunk 0
        e(f"mad.lo.u32 %x, %rb, {self.n}, %cb8;")
        e("mul.wide.u32 %gb, %x, 2;")
        e("add.s64 %gb, %gb, %pb;")
        e("sub.u32 %x, %ra, %row0;")
        e(f"mad.lo.u32 %soa, %x, {c.bk + PAD}, %ca8;")
        e("shl.b32 %soa, %soa, 1;")
        e("add.u32 %soa, %soa, %sbase;")             # shared address of A chunk 0 in stage 0
        e("sub.u32 %x, %cb8, %col0;")
        e(f"mad.lo.u32 %sob, %rb, {c.bn + PAD}, %x;")
        e("shl.b32 %sob, %sob, 1;")
        e(f"add.u32 %sob, %sob, {c.a_bytes};")
        e("add.u32 %sob, %sob, %sbase;")
        if self.ragged:
            e.reg("b32", "kb", "sz")
            e("mov.u32 %kb, 0;")                     # first k of the tile being copied

    def copy_tile(self, pred: str | None) -> None:
        """Copy the next k-tile into stage %sw (only where ``pred``, when given)."""
        e, c = self.e, self.c
        guard = f"@{pred} " if pred else ""
        e("add.u32 %x, %soa, %sw;")
        e("add.u32 %y, %sob, %sw;")
        for i in range(self.na):
            goff, soff = i * self.rsa * self.k * 2, i * self.rsa * (c.bk + PAD) * 2
            if not self.ragged:
                e(f"{guard}cp.async.cg.shared.global [%x+{soff}], [%ga+{goff}], 16;")
                continue
            e(f"add.u32 %sz, %ra, {i * self.rsa};")
            e(f"setp.lt.u32 %p, %sz, {self.m};")
            e("add.u32 %sz, %kb, %ca8;")
            e(f"setp.lt.and.u32 %p, %sz, {self.k}, %p;")
            self.chunk(guard, "%x", soff, "%ga", goff, "%pa")
        for i in range(self.nb):
            goff, soff = i * self.rsb * self.n * 2, i * self.rsb * (c.bn + PAD) * 2
            if not self.ragged:
                e(f"{guard}cp.async.cg.shared.global [%y+{soff}], [%gb+{goff}], 16;")
                continue
            e(f"add.u32 %sz, %rb, {i * self.rsb};")
            e("add.u32 %sz, %sz, %kb;")
            e(f"setp.lt.u32 %p, %sz, {self.k};")
            e(f"setp.lt.and.u32 %p, %cb8, {self.n}, %p;")
            self.chunk(guard, "%y", soff, "%gb", goff, "%pb")

    def chunk(self, guard: str, s: str, soff: int, g: str, goff: int, base: str) -> None:
        """A bounds-checked 16-byte copy (predicate %p): outside the matrix it reads 0 bytes
        from the matrix's base (a valid address) and zero-fills the chunk."""
        e = self.e
        e(f"add.s64 %ptr, {g}, {goff};")
        e(f"selp.b64 %ptr, %ptr, {base}, %p;")
        e("selp.u32 %sz, 16, 0, %p;")
        e(f"{guard}cp.async.cg.shared.global [{s}+{soff}], [%ptr], 16, %sz;")

    def advance_write(self) -> None:
        e, c = self.e, self.c
        e(f"add.s64 %ga, %ga, {c.bk * 2};")
        e(f"add.s64 %gb, %gb, {c.bk * self.n * 2};")
        if self.ragged:
            e(f"add.u32 %kb, %kb, {c.bk};")
        self.rotate("%sw")

    def rotate(self, reg: str) -> None:
        """Next stage's byte offset, wrapping after the last."""
        e, c = self.e, self.c
        e(f"add.u32 {reg}, {reg}, {c.stage_bytes};")
        e(f"setp.eq.u32 %p, {reg}, {c.shared};")
        e(f"selp.u32 {reg}, 0, {reg}, %p;")

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
        """Wait until the tile in stage %sr has landed (this thread's copies, then everyone's)
        and point %fa / %fb at it."""
        e = self.e
        e(f"cp.async.wait_group {self.c.stages - 2};")
        e("bar.sync 0;")
        e("add.u32 %fa, %la, %sr;")
        e("add.u32 %fb, %lb, %sr;")

    def copy_next(self) -> None:
        """Start copying tile kt+stages-1 into the stage tile kt-1 used (free: every thread
        has passed the barrier after its last read)."""
        e = self.e
        e(f"setp.lt.s32 %pl, %kt, {self.ktiles - (self.c.stages - 1)};")
        self.copy_tile("%pl")
        e("cp.async.commit_group;")
        self.advance_write()

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
        for i in range(self.mt):
            # serpentine over n: consecutive mmas share a B fragment at the turn
            cols = range(self.nt) if i % 2 == 0 else range(self.nt - 1, -1, -1)
            for j in cols:
                acc = ", ".join(f"%acc{(i * self.nt + j) * 4 + q}" for q in range(4))
                a = ", ".join(f"%a{buf}_{i}_{q}" for q in range(4))
                e(f"mma.sync.aligned.m16n8k16.row.col.f32.{t}.{t}.f32 {{{acc}}}, {{{a}}}, "
                  f"{{%b{buf}_{j}_0, %b{buf}_{j}_1}}, {{{acc}}};")

    # ---- registers -> C --------------------------------------------------------------------
    def epilogue(self, acc: list[str]) -> None:
        """Accumulator q of tile (i, j) is C[g + 8*(q//2), 2*t4 + q%2] of that 16x8 tile (g =
        lane/4, t4 = lane%4): each pair of columns is rounded into one 32-bit store."""
        e, c, t = self.e, self.c, self.t
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
                    e(f"cvt.rn.{t}x2.f32 %pk, {acc[base + 1]}, {acc[base]};")
                    guard = ""
                    if self.ragged:     # N is even: a pair is in bounds when its first column is
                        e(f"add.u32 %y, %ccol, {j * 8};")
                        e(f"setp.lt.and.u32 %pv, %y, {self.n}, %pr;")
                        guard = "@%pv "
                    e(f"{guard}st.global.b32 [%ptr+{(dr * self.n + j * 8) * 2}], %pk;")
