"""The opt-in TF32 tensor-core matmul for f32: C[M,N] = A[M,K] @ B[K,N], row-major, inputs
rounded to TF32 (``cvt.rna.tf32.f32``: 10 fraction bits, nearest, ties away), f32 accumulation,
``mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32`` (sm_80+).

Only used when asked for (``matmul.matmul_precision("tf32")`` or ``TENSOR_MATMUL_PRECISION=tf32``):
the default f32 matmul stays the exact SIMT kernel.

Each block computes a ``bm`` x ``bn`` tile with ``warps_m`` x ``warps_n`` warps. k-tiles of A
(``bm`` x ``bk``) and B (``bk`` x ``bn``) stream through ``stages`` shared-memory buffers filled
by 16-byte ``cp.async`` copies (zero-filled past the edges), so the copies of tile k+stages-1 run
while tile k is multiplied. Fragments are read with 32-bit shared loads; rows are padded so a
warp's fragment loads hit 32 distinct banks (A: row stride = 4 mod 32 words, lanes (g, t) at
4g + t; B: 8 mod 32, lanes at 8t + g). Needs K and N multiples of 4 (16-byte rows)."""
from __future__ import annotations

from dataclasses import dataclass

from .matmul_ptx import MatmulKernel, Ptx, cdiv, load_params, raster

APAD = 4                # floats of padding per A row (row stride = 4 mod 32 banks)
BPAD = 8                # floats of padding per B row (row stride = 8 mod 32 banks)
CHUNK = 4               # floats per 16-byte copy
K_STEP = 8              # k of one mma


@dataclass(frozen=True)
class Tf32Config:
    """Tile shape and pipeline of the TF32 kernel."""
    bm: int = 128
    bn: int = 128
    bk: int = 32
    warps_m: int = 2
    warps_n: int = 4
    stages: int = 3
    group: int = 8

    @property
    def threads(self) -> int:
        return 32 * self.warps_m * self.warps_n

    @property
    def a_bytes(self) -> int:
        return self.bm * (self.bk + APAD) * 4

    @property
    def stage_bytes(self) -> int:
        return self.a_bytes + self.bk * (self.bn + BPAD) * 4

    @property
    def shared(self) -> int:
        return self.stages * self.stage_bytes

    def check(self) -> None:
        """Raise ValueError unless the loops below tile the block exactly."""
        wm, wn = self.bm // self.warps_m, self.bn // self.warps_n
        ok = (wm % 16 == 0 and wn % 8 == 0 and self.bk % K_STEP == 0 and self.stages >= 2
              and self.threads % (self.bk // CHUNK) == 0 and self.threads % (self.bn // CHUNK) == 0
              and (self.bm * self.bk // CHUNK) % self.threads == 0
              and (self.bk * self.bn // CHUNK) % self.threads == 0 and self.shared <= 227 << 10)
        if not ok:
            raise ValueError(f"unsupported tf32 tile config {self}")

    def tag(self) -> str:
        return f"{self.bm}x{self.bn}x{self.bk}_w{self.warps_m}x{self.warps_n}_s{self.stages}_g{self.group}"


def tf32_kernel(arch: str, m: int, n: int, k: int, cfg: Tf32Config) -> MatmulKernel:
    """The TF32 tensor-core kernel for an (m, k) @ (k, n) f32 matmul (K, N multiples of 4)."""
    cfg.check()
    if k % CHUNK or n % CHUNK:
        raise ValueError(f"the tf32 kernel needs K and N multiples of 4 (16-byte rows), got K={k} N={n}")
    name = f"matmul_tf32_{m}_{n}_{k}_{cfg.tag()}"
    g = _Gen(m, n, k, cfg)
    g.emit()
    grid = cdiv(m, cfg.bm) * cdiv(n, cfg.bn)
    shared = [".extern .shared .align 16 .b8 smem[];"]
    return MatmulKernel(name, g.e.text(arch, name, cfg.threads, shared), (grid, 1, 1), (cfg.threads, 1, 1),
                        cfg.shared)


class _Gen:
    """Emits one kernel; registers are named after what they hold."""

    def __init__(self, m: int, n: int, k: int, cfg: Tf32Config):
        self.m, self.n, self.k, self.c = m, n, k, cfg
        self.wm, self.wn = cfg.bm // cfg.warps_m, cfg.bn // cfg.warps_n
        self.mt, self.nt = self.wm // 16, self.wn // 8
        self.ktiles = cdiv(k, cfg.bk)
        self.ragged = bool(m % cfg.bm or n % cfg.bn or k % cfg.bk)
        self.e = Ptx()

    def emit(self) -> None:
        e, c = self.e, self.c
        e.reg("pred", "p", "pl")
        e.reg("b32", "thr", "warp", "lane", "row0", "col0", "kt", "sbase", "sw", "sr", "x", "y", "g", "t")
        e.reg("b64", "ga", "gb", "ptr")
        e("mov.u32 %thr, %tid.x;")
        e("shr.u32 %warp, %thr, 5;")
        e("and.b32 %lane, %thr, 31;")
        e("shr.u32 %g, %lane, 2;")
        e("and.b32 %t, %lane, 3;")
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
        e("mov.u32 %kt, 0;")
        e("mov.u32 %sw, 0;")
        for s in range(c.stages - 1):        # prologue: tiles 0 .. stages-2 in flight
            if s < self.ktiles:
                self.copy_tile(None)
            e("cp.async.commit_group;")
            self.advance_write()
        e("mov.u32 %sr, 0;")
        e("$KLOOP:")
        e(f"cp.async.wait_group {c.stages - 2};")
        e("bar.sync 0;")                     # tile kt landed for everyone; stage kt-1 is free
        e(f"setp.lt.s32 %pl, %kt, {self.ktiles - (c.stages - 1)};")
        self.copy_tile("%pl")
        e("cp.async.commit_group;")
        self.advance_write()
        e("add.u32 %x, %fa, %sr;")
        e("add.u32 %y, %fb, %sr;")
        for ks in range(c.bk // K_STEP):
            self.fragments(ks)
            self.mmas()
        self.rotate("%sr")
        e("add.s32 %kt, %kt, 1;")
        e(f"setp.lt.s32 %p, %kt, {self.ktiles};")
        e("@%p bra $KLOOP;")
        e("cp.async.wait_group 0;")
        self.epilogue(acc)

    # ---- global -> shared ----------------------------------------------------------------
    def copy_setup(self) -> None:
        """Chunk i of A is row ``ra + i*rsa``, column ``ca4`` of the tile; chunk i of B is row
        ``rb + i*rsb``, column ``cb4``. %ga / %gb advance by one k-tile per copy."""
        e, c = self.e, self.c
        ca, cb = c.bk // CHUNK, c.bn // CHUNK
        self.rsa, self.na = c.threads // ca, c.bm * c.bk // CHUNK // c.threads
        self.rsb, self.nb = c.threads // cb, c.bk * c.bn // CHUNK // c.threads
        e.reg("b32", "ra", "ca4", "rb", "cb4", "soa", "sob")
        e(f"div.u32 %ra, %thr, {ca};")
        e(f"rem.u32 %ca4, %thr, {ca};")
        e("shl.b32 %ca4, %ca4, 2;")
        e(f"div.u32 %rb, %thr, {cb};")
        e(f"rem.u32 %cb4, %thr, {cb};")
        e("shl.b32 %cb4, %cb4, 2;")
        e("add.u32 %ra, %ra, %row0;")
        e(f"mad.lo.u32 %x, %ra, {self.k}, %ca4;")
        e("mul.wide.u32 %ga, %x, 4;")
        e("add.s64 %ga, %ga, %pa;")
        e("add.u32 %cb4, %cb4, %col0;")
        e(f"mad.lo.u32 %x, %rb, {self.n}, %cb4;")
        e("mul.wide.u32 %gb, %x, 4;")
        e("add.s64 %gb, %gb, %pb;")
        e("sub.u32 %x, %ra, %row0;")
        e(f"mad.lo.u32 %soa, %x, {c.bk + APAD}, %ca4;")
        e("shl.b32 %soa, %soa, 2;")
        e("add.u32 %soa, %soa, %sbase;")
        e("sub.u32 %x, %cb4, %col0;")
        e(f"mad.lo.u32 %sob, %rb, {c.bn + BPAD}, %x;")
        e("shl.b32 %sob, %sob, 2;")
        e(f"add.u32 %sob, %sob, {c.a_bytes};")
        e("add.u32 %sob, %sob, %sbase;")
        if self.ragged:
            e.reg("b32", "kb", "sz")
            e("mov.u32 %kb, 0;")

    def copy_tile(self, pred: str | None) -> None:
        """Copy the next k-tile into stage %sw (only where ``pred``, when given)."""
        e, c = self.e, self.c
        guard = f"@{pred} " if pred else ""
        e("add.u32 %x, %soa, %sw;")
        e("add.u32 %y, %sob, %sw;")
        for i in range(self.na):
            goff, soff = i * self.rsa * self.k * 4, i * self.rsa * (c.bk + APAD) * 4
            if not self.ragged:
                e(f"{guard}cp.async.cg.shared.global [%x+{soff}], [%ga+{goff}], 16;")
                continue
            e(f"add.u32 %sz, %ra, {i * self.rsa};")
            e(f"setp.lt.u32 %p, %sz, {self.m};")
            e("add.u32 %sz, %kb, %ca4;")
            e(f"setp.lt.and.u32 %p, %sz, {self.k}, %p;")
            self.chunk(guard, "%x", soff, "%ga", goff, "%pa")
        for i in range(self.nb):
            goff, soff = i * self.rsb * self.n * 4, i * self.rsb * (c.bn + BPAD) * 4
            if not self.ragged:
                e(f"{guard}cp.async.cg.shared.global [%y+{soff}], [%gb+{goff}], 16;")
                continue
            e(f"add.u32 %sz, %rb, {i * self.rsb};")
            e("add.u32 %sz, %sz, %kb;")
            e(f"setp.lt.u32 %p, %sz, {self.k};")
            e(f"setp.lt.and.u32 %p, %cb4, {self.n}, %p;")
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
        e(f"add.s64 %ga, %ga, {c.bk * 4};")
        e(f"add.s64 %gb, %gb, {c.bk * self.n * 4};")
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
        """%fa: this lane's A element (g, t) of the warp's first m-tile in stage 0; %fb: its
        B element (t, g) of the warp's first n-tile."""
        e, c = self.e, self.c
        e.reg("b32", "fa", "fb")
        e(f"div.u32 %x, %warp, {c.warps_n};")
        e(f"mad.lo.u32 %x, %x, {self.wm}, %g;")
        e(f"mad.lo.u32 %fa, %x, {c.bk + APAD}, %t;")
        e("shl.b32 %fa, %fa, 2;")
        e("add.u32 %fa, %fa, %sbase;")
        e(f"rem.u32 %x, %warp, {c.warps_n};")
        e(f"mad.lo.u32 %x, %x, {self.wn}, %g;")
        e(f"mad.lo.u32 %fb, %t, {c.bn + BPAD}, %x;")
        e("shl.b32 %fb, %fb, 2;")
        e(f"add.u32 %fb, %fb, {c.a_bytes};")
        e("add.u32 %fb, %fb, %sbase;")
        e.reg("b32", *[f"a{i}_{q}" for i in range(self.mt) for q in range(4)])
        e.reg("b32", *[f"b{j}_{q}" for j in range(self.nt) for q in range(2)])
        e.reg("f32", "v")

    def fragments(self, ks: int) -> None:
        """Load and round to TF32 this warp's A and B fragments of k-step ``ks`` (stage at
        %x / %y): a_q = A(g + 8 (q%2), t + 4 (q/2)), b_q = B(t + 4q, g)."""
        e, c = self.e, self.c
        for i in range(self.mt):
            for q in range(4):
                off = ((i * 16 + 8 * (q % 2)) * (c.bk + APAD) + ks * K_STEP + 4 * (q // 2)) * 4
                e(f"ld.shared.f32 %v, [%x+{off}];")
                e(f"cvt.rna.tf32.f32 %a{i}_{q}, %v;")
        for j in range(self.nt):
            for q in range(2):
                off = ((ks * K_STEP + 4 * q) * (c.bn + BPAD) + j * 8) * 4
                e(f"ld.shared.f32 %v, [%y+{off}];")
                e(f"cvt.rna.tf32.f32 %b{j}_{q}, %v;")

    def mmas(self) -> None:
        e = self.e
        for i in range(self.mt):
            cols = range(self.nt) if i % 2 == 0 else range(self.nt - 1, -1, -1)
            for j in cols:
                acc = ", ".join(f"%acc{(i * self.nt + j) * 4 + q}" for q in range(4))
                a = ", ".join(f"%a{i}_{q}" for q in range(4))
                e(f"mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {{{acc}}}, {{{a}}}, "
                  f"{{%b{j}_0, %b{j}_1}}, {{{acc}}};")

    # ---- registers -> C --------------------------------------------------------------------
    def epilogue(self, acc: list[str]) -> None:
        """Accumulator q of tile (i, j) is C[g + 8 (q/2), 2t + q%2] of that 16x8 tile: pairs
        are one 8-byte store."""
        e, c = self.e, self.c
        e.reg("b32", "crow", "ccol")
        e(f"div.u32 %y, %warp, {c.warps_n};")
        e(f"mad.lo.u32 %x, %y, {self.wm}, %g;")
        e("add.u32 %crow, %x, %row0;")
        e("shl.b32 %x, %t, 1;")
        e(f"rem.u32 %y, %warp, {c.warps_n};")
        e(f"mad.lo.u32 %x, %y, {self.wn}, %x;")
        e("add.u32 %ccol, %x, %col0;")
        e(f"mul.wide.u32 %ptr, %crow, {self.n * 4};")
        e("mul.wide.u32 %ga, %ccol, 4;")
        e("add.s64 %ptr, %ptr, %ga;")
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
                    guard = ""
                    if self.ragged:     # N % 4 == 0: a pair is in bounds when its first column is
                        e(f"add.u32 %y, %ccol, {j * 8};")
                        e(f"setp.lt.and.u32 %pv, %y, {self.n}, %pr;")
                        guard = "@%pv "
                    e(f"{guard}st.global.v2.f32 [%ptr+{(dr * self.n + j * 8) * 4}], "
                      f"{{{acc[base]}, {acc[base + 1]}}};")
