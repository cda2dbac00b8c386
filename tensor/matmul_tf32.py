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
4g + t; B: 8 mod 32, lanes at 8t + g). Needs K and N multiples of 4 (16-byte rows). The copy
pipeline and kernel skeleton are matmul_cpasync.py's (shared with the f16/bf16 kernel)."""
from __future__ import annotations

from dataclasses import dataclass

from .matmul_cpasync import CpAsyncGen, CpAsyncTiles
from .matmul_ptx import MatmulKernel, cdiv

APAD = 4                # floats of padding per A row (row stride = 4 mod 32 banks)
BPAD = 8                # floats of padding per B row (row stride = 8 mod 32 banks)
K_STEP = 8              # k of one mma


@dataclass(frozen=True)
class Tf32Config(CpAsyncTiles):
    """Tile shape and pipeline of the TF32 kernel."""
    ELEM_BYTES = 4
    A_PAD = APAD
    B_PAD = BPAD
    bm: int = 128
    bn: int = 128
    bk: int = 32
    warps_m: int = 2
    warps_n: int = 4
    stages: int = 3
    group: int = 8

    def check(self) -> None:
        """Raise ValueError unless the loops below tile the block exactly."""
        wm, wn = self.bm // self.warps_m, self.bn // self.warps_n
        ok = wm % 16 == 0 and wn % 8 == 0 and self.bk % K_STEP == 0 and self.copies_tile()
        if not ok:
            raise ValueError(f"unsupported tf32 tile config {self}")

    def tag(self) -> str:
        return f"{self.bm}x{self.bn}x{self.bk}_w{self.warps_m}x{self.warps_n}_s{self.stages}_g{self.group}"


def tf32_kernel(arch: str, m: int, n: int, k: int, cfg: Tf32Config) -> MatmulKernel:
    """The TF32 tensor-core kernel for an (m, k) @ (k, n) f32 matmul (K, N multiples of 4)."""
    cfg.check()
    if k % cfg.chunk_elems or n % cfg.chunk_elems:
        raise ValueError(f"the tf32 kernel needs K and N multiples of {cfg.chunk_elems} (16-byte rows), "
                         f"got K={k} N={n}")
    name = f"matmul_tf32_{m}_{n}_{k}_{cfg.tag()}"
    g = _Gen(m, n, k, cfg)
    g.emit()
    grid = cdiv(m, cfg.bm) * cdiv(n, cfg.bn)
    shared = [".extern .shared .align 16 .b8 smem[];"]
    return MatmulKernel(name, g.e.text(arch, name, cfg.threads, shared), (grid, 1, 1), (cfg.threads, 1, 1),
                        cfg.shared)


class _Gen(CpAsyncGen):
    """The cp.async pipeline (matmul_cpasync.py) with 32-bit shared fragment loads rounded to
    TF32 and m16n8k8 mmas. %g / %t: the lane's group (lane / 4) and thread in group (lane % 4)."""
    LANE_REGS = ("g", "t")
    c: Tf32Config

    def lane_setup(self) -> None:
        self.e("shr.u32 %g, %lane, 2;")
        self.e("and.b32 %t, %lane, 3;")

    def k_tile(self) -> None:
        e = self.e
        self.wait_landed()
        self.copy_next()
        e("add.u32 %x, %fa, %sr;")
        e("add.u32 %y, %fb, %sr;")
        for ks in range(self.c.bk // K_STEP):
            self.fragments(ks)
            self.mmas()
        self.rotate("%sr")

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
        for i, j, acc in self.serpentine():
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
        self.store_pairs(acc)

    def store_pair(self, guard: str, lo: str, hi: str, off: int) -> None:
        """One 8-byte store of the f32 pair."""
        self.e(f"{guard}st.global.v2.f32 [%ptr+{off}], {{{lo}, {hi}}};")
