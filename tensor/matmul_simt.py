"""The CUDA-core matmul: f32 (and f16/bf16 shapes the tensor-core kernel cannot take),
C[M,N] = A[M,K] @ B[K,N] row-major, f32 FMAs (full f32: no TF32).

Each block computes a ``bm`` x ``bn`` tile; each thread an 8x8 sub-tile made of 2x2 groups of
4x4 spaced half a tile apart, so the 16-byte shared reads of a quarter-warp cover 128
consecutive bytes (no bank conflicts). k-tiles of 8 are double-buffered: the next tile's
global loads are in flight in registers while the current tile is multiplied, and one
barrier per tile suffices. A is stored transposed (k-major, rows padded by 4 floats so the
transposing stores of a warp hit distinct banks). Global loads and C stores are 16-byte
vectors when the rows allow it (f32 with K, N multiples of 4), else per element."""
from __future__ import annotations

from dataclasses import dataclass

from .dtype import DType, float32
from .matmul_epilogue import Epilogue, EpiloguePtx
from .matmul_ptx import MatmulKernel, Ptx, cdiv, load_params, raster

BK = 8                  # k per shared tile
APAD = 4                # floats of padding per transposed-A row


@dataclass(frozen=True)
class SimtConfig:
    """Tile shape of the CUDA-core kernel (8x8 outputs per thread)."""
    bm: int = 128
    bn: int = 128
    group: int = 8

    @property
    def threads(self) -> int:
        return (self.bm // 8) * (self.bn // 8)

    def check(self) -> None:
        ok = (self.bm in (64, 128) and self.bn in (64, 128)
              and (self.bm * BK // 4) % self.threads == 0 and (self.bn * BK // 4) % self.threads == 0)
        if not ok:
            raise ValueError(f"unsupported simt tile config {self}")

    def tag(self) -> str:
        return f"{self.bm}x{self.bn}_g{self.group}"


def simt_kernel(arch: str, dtype: DType, m: int, n: int, k: int, cfg: SimtConfig,
                epilogue: Epilogue | None = None) -> MatmulKernel:
    """The register-tiled FMA kernel for an (m, k) @ (k, n) matmul of ``dtype``; ``epilogue``:
    elementwise work applied to the f32 accumulators before the store (C then has its dtype,
    and the kernel takes the buffers it reads after C, A and B)."""
    cfg.check()
    name = f"matmul_simt_{dtype.name}_{m}_{n}_{k}_{cfg.tag()}" + (f"_{epilogue.tag}" if epilogue else "")
    g = _Gen(dtype, m, n, k, cfg, epilogue)
    g.emit()
    a_words, b_words = BK * (cfg.bm + APAD), BK * cfg.bn
    shared = [f".shared .align 16 .f32 As[{2 * a_words}];", f".shared .align 16 .f32 Bs[{2 * b_words}];"]
    grid = cdiv(m, cfg.bm) * cdiv(n, cfg.bn)
    extra = tuple(epilogue.param_names) if epilogue else ()
    return MatmulKernel(name, g.e.text(arch, name, cfg.threads, shared, extra=extra), (grid, 1, 1),
                        (cfg.threads, 1, 1))


class _Gen:
    def __init__(self, dtype: DType, m: int, n: int, k: int, cfg: SimtConfig, epi: Epilogue | None = None):
        self.dt, self.m, self.n, self.k, self.c = dtype, m, n, k, cfg
        self.epi = epi
        self.vec = dtype == float32 and k % 4 == 0 and n % 4 == 0
        self.ktiles = cdiv(k, BK)
        self.na = cfg.bm * BK // 4 // cfg.threads    # 4-element chunks per thread per tile
        self.nb = cfg.bn * BK // 4 // cfg.threads
        self.a_bytes, self.b_bytes = BK * (cfg.bm + APAD) * 4, BK * cfg.bn * 4
        self.e = Ptx()

    def emit(self) -> None:
        e, c = self.e, self.c
        e.reg("pred", "p", "pl", "pq")
        e.reg("b32", "thr", "tx", "ty", "row0", "col0", "kt", "x", "y", "t", "sa", "sb", "buf")
        e.reg("b64", "ptr")
        e.reg("b16", "h")
        e("mov.u32 %thr, %tid.x;")
        e(f"rem.u32 %tx, %thr, {c.bn // 8};")
        e(f"div.u32 %ty, %thr, {c.bn // 8};")
        raster(e, cdiv(self.m, c.bm), cdiv(self.n, c.bn), c.group)
        e(f"mul.lo.u32 %row0, %tile_m, {c.bm};")
        e(f"mul.lo.u32 %col0, %tile_n, {c.bn};")
        load_params(e)
        e("mov.u32 %sa, As;")
        e("mov.u32 %sb, Bs;")
        acc = [[f"%acc{i}_{j}" for j in range(8)] for i in range(8)]
        e.reg("f32", *[a[1:] for row in acc for a in row])
        e.reg("f32", *[f"fa{i}" for i in range(8)], *[f"fb{j}" for j in range(8)])
        stage = [f"sa{i}_{q}" for i in range(self.na) for q in range(4)] + \
                [f"sb{i}_{q}" for i in range(self.nb) for q in range(4)]
        e.reg("f32", *stage)
        for row in acc:
            for a in row:
                e(f"mov.f32 {a}, 0f00000000;")
        e("mov.u32 %kt, 0;")
        e("mov.u32 %buf, 0;")
        self.load_tile()
        self.store_tile()
        e("bar.sync 0;")
        e("$KLOOP:")
        e("add.s32 %kt, %kt, 1;")
        e(f"setp.lt.s32 %pl, %kt, {self.ktiles};")     # is there a next tile?
        e("@%pl bra $PREFETCH;")
        e("bra $COMPUTE;")
        e("$PREFETCH:")
        self.load_tile()
        e("$COMPUTE:")
        self.compute()
        e("@!%pl bra $EPILOGUE;")
        e("xor.b32 %buf, %buf, 1;")
        self.store_tile()
        e("bar.sync 0;")
        e("bra $KLOOP;")
        e("$EPILOGUE:")
        self.epilogue(acc)

    # ---- global -> registers -> shared ------------------------------------------------------
    def load_tile(self) -> None:
        """Load k-tile %kt of A and B into the staging registers (zeros outside)."""
        e, c = self.e, self.c
        for i in range(self.na):     # A chunk: row ch/2, k 4*(ch%2) of the tile
            e(f"add.u32 %x, %thr, {i * c.threads};")
            e("shr.u32 %y, %x, 1;")
            e("add.u32 %y, %y, %row0;")                  # global row
            e("and.b32 %x, %x, 1;")
            e("shl.b32 %x, %x, 2;")
            e(f"mad.lo.u32 %x, %kt, {BK}, %x;")          # global k
            e(f"setp.lt.u32 %p, %y, {self.m};")
            e(f"mad.lo.u32 %y, %y, {self.k}, %x;")
            self.load4("%pa", [f"%sa{i}_{q}" for q in range(4)], "%x", self.k)
        for i in range(self.nb):     # B chunk: row ch/(bn/4), column 4*(ch%(bn/4))
            e(f"add.u32 %x, %thr, {i * c.threads};")
            e(f"div.u32 %y, %x, {c.bn // 4};")
            e(f"mad.lo.u32 %y, %kt, {BK}, %y;")          # global k
            e(f"setp.lt.u32 %p, %y, {self.k};")
            e(f"rem.u32 %x, %x, {c.bn // 4};")
            e("shl.b32 %x, %x, 2;")
            e("add.u32 %x, %x, %col0;")                  # global column
            e(f"mad.lo.u32 %y, %y, {self.n}, %x;")
            self.load4("%pb", [f"%sb{i}_{q}" for q in range(4)], "%x", self.n)

    def load4(self, base: str, dst: list[str], pos: str, limit: int) -> None:
        """dst = the 4 elements at index %y of ``base`` (row-valid predicate %p; element q is
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
            e(f"add.u32 %t, {pos}, {q};")
            e(f"setp.lt.and.u32 %pq, %t, {limit}, %p;")
            off = q * dt.itemsize
            if dt == float32:
                e(f"@%pq ld.global.nc.f32 {d}, [%ptr+{off}];")
            else:
                e(f"@%pq ld.global.nc.b16 %h, [%ptr+{off}];")
                e(f"@%pq cvt.f32.{dt.ptx} {d}, %h;")

    def store_tile(self) -> None:
        """Staging registers -> shared buffer %buf (A transposed)."""
        e, c = self.e, self.c
        e(f"mad.lo.u32 %y, %buf, {self.a_bytes}, %sa;")
        for i in range(self.na):
            e(f"add.u32 %x, %thr, {i * c.threads};")
            self._a_slot()
            for q in range(4):
                e(f"st.shared.f32 [%x+{q * (c.bm + APAD) * 4}], %sa{i}_{q};")
        e(f"mad.lo.u32 %y, %buf, {self.b_bytes}, %sb;")
        for i in range(self.nb):
            e(f"add.u32 %x, %thr, {i * c.threads};")
            e("shl.b32 %x, %x, 4;")                      # chunk ch at byte 16*ch of the tile
            e("add.u32 %x, %x, %y;")
            regs = ", ".join(f"%sb{i}_{q}" for q in range(4))
            e(f"st.shared.v4.f32 [%x], {{{regs}}};")

    def _a_slot(self) -> None:
        """%x: chunk %x's address in the transposed A buffer at %y: As[4*(ch%2)][ch/2]."""
        e, c = self.e, self.c
        e("shr.u32 %t, %x, 1;")
        e("and.b32 %x, %x, 1;")
        e(f"mul.lo.u32 %x, %x, {4 * (c.bm + APAD)};")
        e("add.u32 %x, %x, %t;")
        e("shl.b32 %x, %x, 2;")
        e("add.u32 %x, %x, %y;")

    # ---- shared -> FMAs ------------------------------------------------------------------
    def compute(self) -> None:
        e, c = self.e, self.c
        e(f"mad.lo.u32 %x, %buf, {self.a_bytes}, %sa;")
        e("shl.b32 %y, %ty, 4;")
        e("add.u32 %x, %x, %y;")                         # &As[buf][0][4*ty]
        e(f"mad.lo.u32 %y, %buf, {self.b_bytes}, %sb;")
        e("shl.b32 %t, %tx, 4;")
        e("add.u32 %y, %y, %t;")                         # &Bs[buf][0][4*tx]
        fa = [f"%fa{i}" for i in range(8)]
        fb = [f"%fb{j}" for j in range(8)]
        for kk in range(BK):
            ra, rb = kk * (c.bm + APAD) * 4, kk * c.bn * 4
            e(f"ld.shared.v4.f32 {{{', '.join(fa[:4])}}}, [%x+{ra}];")
            e(f"ld.shared.v4.f32 {{{', '.join(fa[4:])}}}, [%x+{ra + c.bm // 2 * 4}];")
            e(f"ld.shared.v4.f32 {{{', '.join(fb[:4])}}}, [%y+{rb}];")
            e(f"ld.shared.v4.f32 {{{', '.join(fb[4:])}}}, [%y+{rb + c.bn // 2 * 4}];")
            for i in range(8):
                for j in range(8):
                    e(f"fma.rn.f32 %acc{i}_{j}, {fa[i]}, {fb[j]}, %acc{i}_{j};")

    # ---- registers -> C --------------------------------------------------------------------
    def epilogue(self, acc: list[list[str]]) -> None:
        """Row i of the thread's tile is 4*ty + i (i < 4) or bm/2 + 4*ty + i-4; columns
        likewise with tx and bn. A fused epilogue's values are stored instead of the
        accumulators, in its dtype: its 8 columns bound once (column slots 0-7), then row by row
        (row slot 0) 4 elements per store (element slots 0-3)."""
        e, c, dt = self.e, self.c, self.epi.out if self.epi else self.dt
        vec = self.vec if self.epi is None else dt == float32 and self.n % 4 == 0
        e.reg("pred", "pr", "pv")
        f = None
        if self.epi is not None:
            f = EpiloguePtx(self.epi, e, self.m, self.n, 1, 8, 4, bool(self.m % c.bm or self.n % c.bn))
            f.setup()
            e("mad.lo.u32 %x, %tx, 4, %col0;")
            for q in range(8):
                f.col(q, "%x", q % 4 + q // 4 * c.bn // 2)
        for i in range(8):
            dr = i if i < 4 else c.bm // 2 + i - 4
            e("mad.lo.u32 %y, %ty, 4, %row0;")
            e(f"add.u32 %y, %y, {dr};")
            e(f"setp.lt.u32 %pr, %y, {self.m};")
            if f is not None:
                f.row(0, "%y")
            for half in range(2):
                e("mad.lo.u32 %x, %tx, 4, %col0;")
                e(f"add.u32 %x, %x, {half * c.bn // 2};")
                e(f"mad.lo.u32 %t, %y, {self.n}, %x;")
                e(f"mul.wide.u32 %ptr, %t, {dt.itemsize};")
                e("add.s64 %ptr, %ptr, %pc;")
                vals = acc[i][4 * half:4 * half + 4]
                if f is not None:
                    vals = [f.value(0, 4 * half + q, q, v) for q, v in enumerate(vals)]
                if vec:
                    e(f"setp.lt.and.u32 %pv, %x, {self.n}, %pr;")
                    e(f"@%pv st.global.v4.f32 [%ptr], {{{', '.join(vals)}}};")
                    continue
                for q, v in enumerate(vals):
                    e(f"add.u32 %t, %x, {q};")
                    e(f"setp.lt.and.u32 %pv, %t, {self.n}, %pr;")
                    if dt == float32:
                        e(f"@%pv st.global.f32 [%ptr+{q * 4}], {v};")
                    else:
                        e(f"cvt.rn.{dt.ptx}.f32 %h, {v};")
                        e(f"@%pv st.global.b16 [%ptr+{q * 2}], %h;")
