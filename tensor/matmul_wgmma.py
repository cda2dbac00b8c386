"""The Hopper matmul for f16/bf16: C[M,N] = A[M,K] @ B[K,N], row-major, f32 accumulation, on
sm_90a's asynchronous tensor cores (``wgmma.mma_async``) fed by the tensor-memory accelerator
(TMA, ``cp.async.bulk.tensor``).

Structure (the fast.cu / CUTLASS "warp-specialized persistent" shape, nvidia-perf.md 6):

* A persistent grid (at most ``sms`` blocks) walks the output tiles ``bm`` x ``bn`` in the
  grouped order of ``matmul_ptx.raster`` (``group`` tile rows at a time, so the panels of A and B
  a group uses stay in L2), every block taking tiles ``ctaid, ctaid + nctaid, ...``.
* Warpgroup 0 is the producer: it gives registers back (``setmaxnreg.dec``) and one elected
  thread issues the TMA loads of each k-tile (A: ``bm`` x 64, B: 64 x ``bn`` as ``bn``/64 boxes
  of 64 x 64) into a ring of ``stages`` shared-memory stages, 128-byte swizzled. Each stage has a
  *full* mbarrier (armed with the stage's byte count by ``arrive.expect_tx``; the copies
  complete it) and an *empty* mbarrier (one arrival per consumer warpgroup). Both sides track
  the ring with phase-parity waits; the producer starts on parity 1, which a fresh barrier
  reports as complete, so no initial release is needed.
* Warpgroups 1..``consumers`` take more registers (``setmaxnreg.inc``) and each multiplies a
  slice of ``m_blocks`` x 64 rows of the tile (or, ping-pong, whole tiles in turn): per k-tile
  four ``wgmma.mma_async.m64n{bn}k16`` per 64-row block on shared-memory descriptors (A
  K-major, B N-major with ``imm-trans-b``; 128B swizzle), committed and retired with
  ``wgmma.wait_group`` before the stage is handed back (``lag``: right away, or one
  k-tile later). The first k-step of a tile uses scale-d = false instead of zeroing the
  accumulators.
* The epilogue rounds the f32 accumulators to the output type in pairs and stores them with
  ``st.global.b32`` (predicated against M and N for tiles on the ragged edge), or (store
  "tma") into a swizzled shared buffer that TMA writes out, while the producer already streams
  the next tile's stages.

The maps are tiled tensor maps (``hwdrv.nvidia.tensormap``) the host encodes per call from the
operands' addresses (:attr:`MatmulKernel.tensor_maps`); the kernel takes them from global
memory through a pointer (``pmaps``: A's map, then B's, then C's for TMA stores, 128 bytes
each; the form that needs no driver-filled constant-bank slot, nvidia-perf.md 2.4) after
``fence.proxy.tensormap``. Rows
past M or N and k past K read as zeros (TMA out-of-bound fill), so any M works; K and N must
be multiples of 8 (the maps' 16-byte row strides)."""
from __future__ import annotations

from dataclasses import dataclass, replace

from hwdrv.nvidia.tensormap import TENSOR_MAP_BYTES

from .dtype import DType
from .matmul_epilogue import Epilogue, EpiloguePtx
from .matmul_ptx import MatmulKernel, Ptx, TensorMapSpec, cdiv

TARGET = "sm_90a"                 # wgmma and setmaxnreg exist only on sm_90a (PTX ISA target notes)
PTX_VERSION = "8.3"               # fence.proxy.tensormap needs PTX ISA 8.3
BK = 64                           # k per stage: one 128-byte swizzle row of 2-byte elements
SWIZZLE = 128                     # bytes: tensor-map swizzle span, and the wgmma descriptor's mode
SLAB = 64                         # N columns per B box (one 128-byte swizzled row)
WG = 128                          # threads per warpgroup
WG_M = 64                         # rows of one wgmma
K_STEP = 16                       # k of one wgmma (16-bit types)
REGS = 65536                      # registers per SM (sm_90)
MAX_THREAD_REGS = 248             # the largest multiple of 8 (setmaxnreg's unit) below 255
MBARRIER_BYTES = 8
MAX_BOX = 256                     # elements per tensor-map box dimension (A's box is 64 x bm)
PRODUCER_REGS = 40                # what the producer warpgroup keeps after setmaxnreg.dec
# shared memory a block may have on sm_90, less the 1 KiB ptxas reserves in the cubin's static
# shared memory (counted in the same per-block limit)
SMEM_LIMIT = (227 << 10) - 1024
ALIGN = 1024                      # 128B-swizzle atoms repeat every 8 rows of 128 bytes
# wgmma shared-memory descriptor (PTX ISA 9.7.15.5.1.2.2; nvidia-perf.md 1.1)
_DESC_LBO_BIT, _DESC_SBO_BIT, _DESC_SWIZZLE_BIT = 16, 32, 62
_DESC_SWIZZLE_128B = 1
_DESC_SHIFT = 4                   # fields hold byte values >> 4
SWIZZLE_ROWS = 8                  # rows of one swizzle atom: SBO is the stride of 8-row groups
L2_PROMOTION = 256                # bytes: tile rows are 128 B, neighbouring rows share L2 sectors
C_STAGED_BYTES = 2                # element size of C that store "tma" stages (a 64-column box row
                                  # of 128 B: one swizzle span)


@dataclass(frozen=True)
class WgmmaConfig:
    """Tile shape and pipeline of the wgmma kernel: ``consumers`` warpgroups of ``m_blocks`` x 64
    rows each (bm = 64 * m_blocks * consumers; m_blocks 2: two accumulator sets, two wgmmas per
    k-step), ``bn`` columns per wgmma (a multiple of 64 up to 256), ``stages``
    shared-memory stages, ``group`` tile rows per raster group, at most ``sms`` persistent
    blocks (132: the SM count of H100 SXM / H200). ``lag`` 1 keeps one k-tile's wgmmas in flight
    (``wait_group 1``) and hands its stage back one k-tile later (CUTLASS's order); 0 retires
    every k-tile before the next is issued (fast.cu's order). ``store`` "direct": each thread
    stores its accumulator pairs with st.global; "tma": the pairs go to a 128B-swizzled
    shared buffer per consumer that one thread writes out with TMA tensor stores (clipped at
    the edges), which drain while the next tile is multiplied. ``setmaxnreg`` False keeps every
    warpgroup at the launch's register count (for a GPU or driver where register
    reconfiguration misbehaves: whether the QMD needs more for it is not known,
    nvidia-perf.md 1.3). ``pingpong``: each consumer takes every ``consumers``-th tile of the
    block whole (tiles of rows x bn) instead of a slice of every tile, so one consumer's
    epilogue runs while another multiplies (CUTLASS's ping-pong schedule); the stage ring is
    consumed in tile order, which keeps their main loops apart."""
    bn: int = 256
    consumers: int = 2
    stages: int = 4
    group: int = 8
    sms: int = 132
    lag: int = 0
    store: str = "direct"
    setmaxnreg: bool = True
    m_blocks: int = 1
    pingpong: bool = False

    @property
    def rows(self) -> int:
        """Rows of the tile one consumer owns."""
        return WG_M * self.m_blocks

    @property
    def bm(self) -> int:
        return self.rows if self.pingpong else self.rows * self.consumers

    @property
    def slice_rows(self) -> int:
        """Row offset of consumer c's slice of a tile: c * slice_rows (ping-pong: whole tiles)."""
        return 0 if self.pingpong else self.rows

    @property
    def releasers(self) -> int:
        """Consumers that read (and hand back) each stage: the empty barriers' arrival count."""
        return 1 if self.pingpong else self.consumers

    @property
    def threads(self) -> int:
        return WG * (1 + self.consumers)

    @property
    def a_bytes(self) -> int:
        return self.bm * BK * 2

    @property
    def stage_bytes(self) -> int:
        return self.a_bytes + self.bn * BK * 2

    @property
    def barrier_bytes(self) -> int:
        """mbarriers: full and empty per stage; ping-pong adds one turn barrier per consumer."""
        return MBARRIER_BYTES * (2 * self.stages + (self.consumers if self.pingpong else 0))

    @property
    def c_offset(self) -> int:
        """Offset of the C staging buffers (store "tma") from the aligned base: after the
        stages and the mbarriers, 1024-aligned for the swizzle."""
        return -(-(self.stages * self.stage_bytes + self.barrier_bytes) // ALIGN) * ALIGN

    @property
    def c_bytes(self) -> int:
        """One consumer's C staging buffer: its rows x bn, as boxes of 64 x 64."""
        return self.rows * self.bn * 2 if self.store == "tma" else 0

    @property
    def shared(self) -> int:
        """Dynamic shared bytes: slack to align the base, the stages, the mbarriers, and the C
        staging buffers of store "tma"."""
        if self.store == "tma":
            return ALIGN + self.c_offset + self.consumers * self.c_bytes
        return ALIGN + self.stages * self.stage_bytes + self.barrier_bytes

    @property
    def launch_regs(self) -> int:
        """Registers per thread at launch (.maxnreg): an equal share of the file, multiple of 8."""
        return min(REGS // self.threads // 8 * 8, MAX_THREAD_REGS)

    @property
    def reconfigures(self) -> bool:
        """Whether the kernel moves registers from the producer to the consumers (setmaxnreg
        asked for, and the consumers can get more than the launch gives them)."""
        share = (REGS - WG * PRODUCER_REGS) // (WG * self.consumers) // 8 * 8
        return self.setmaxnreg and min(share, MAX_THREAD_REGS) > self.launch_regs

    @property
    def consumer_regs(self) -> int:
        """What each consumer thread has: the file minus the producer's share when the kernel
        reconfigures registers, else the launch's count."""
        if not self.reconfigures:
            return self.launch_regs
        return min((REGS - WG * PRODUCER_REGS) // (WG * self.consumers) // 8 * 8, MAX_THREAD_REGS)

    def check(self) -> None:
        """Raise ValueError unless the kernel can be built (wgmma N, shared memory, registers)."""
        ok = (self.bn % SLAB == 0 and SLAB <= self.bn <= 256 and 1 <= self.consumers <= 3
              and self.m_blocks in (1, 2) and self.bm <= MAX_BOX and (not self.pingpong or self.consumers >= 2)
              and self.stages >= 2 + self.lag and self.lag in (0, 1) and self.store in ("direct", "tma")
              and self.group >= 1 and self.sms >= 1 and self.shared <= SMEM_LIMIT
              and self.consumer_regs >= self.m_blocks * self.bn // 2 + 24)   # accumulators + addresses
        if not ok:
            raise ValueError(f"unsupported wgmma tile config {self}")

    def tag(self) -> str:
        return (f"{self.bm}x{self.bn}x{BK}_c{self.consumers}_s{self.stages}_g{self.group}_p{self.sms}"
                + (f"_l{self.lag}" if self.lag else "") + ("_tma" if self.store == "tma" else "")
                + ("" if self.setmaxnreg else "_fixreg") + (f"_m{self.m_blocks}" if self.m_blocks > 1 else "")
                + ("_pp" if self.pingpong else ""))


def _desc_template(lbo: int, sbo: int) -> int:
    """The constant bits of a 128B-swizzled descriptor (the start address is added per use)."""
    return ((lbo >> _DESC_SHIFT) << _DESC_LBO_BIT | (sbo >> _DESC_SHIFT) << _DESC_SBO_BIT
            | _DESC_SWIZZLE_128B << _DESC_SWIZZLE_BIT)


def wgmma_kernel(dtype: DType, m: int, n: int, k: int, cfg: WgmmaConfig,
                 epilogue: Epilogue | None = None) -> MatmulKernel:
    """The warp-specialized TMA + wgmma kernel for an (m, k) @ (k, n) matmul of f16/bf16.
    Parameters: C, then the address of the tensor maps (A's, B's, C's with store "tma"; see
    the module doc), then the buffers ``epilogue`` reads. With an ``epilogue`` (applied to the
    f32 accumulators before the store) C has the epilogue's dtype; an f32 C is stored "direct"
    (its TMA staging buffers would need twice the shared memory)."""
    if epilogue is not None and epilogue.out.itemsize != C_STAGED_BYTES and cfg.store == "tma":
        cfg = replace(cfg, store="direct")
    cfg.check()
    if k % 8 or n % 8:
        raise ValueError(f"the wgmma kernel needs K and N multiples of 8 (16-byte rows), got K={k} N={n}")
    name = f"matmul_wgmma_{dtype.name}_{m}_{n}_{k}_{cfg.tag()}" + (f"_{epilogue.tag}" if epilogue else "")
    g = _Gen(dtype, m, n, k, cfg, epilogue)
    g.emit()
    tiles = cdiv(m, cfg.bm) * cdiv(n, cfg.bn)
    t = dtype.ptx
    maps = (TensorMapSpec("a", t, (k, m), (k * 2,), (BK, cfg.bm), SWIZZLE, L2_PROMOTION),
            TensorMapSpec("b", t, (n, k), (n * 2,), (SLAB, BK), SWIZZLE, L2_PROMOTION))
    if cfg.store == "tma":
        maps += (TensorMapSpec("c", g.ot, (n, m), (n * g.osize,), (SLAB, WG_M), SWIZZLE),)
    return MatmulKernel(name, g.text(name), (min(tiles, cfg.sms), 1, 1), (cfg.threads, 1, 1), cfg.shared,
                        target=TARGET, tensor_maps=maps)


class _Gen:
    """Emits one kernel; registers are named after what they hold."""

    def __init__(self, dtype: DType, m: int, n: int, k: int, cfg: WgmmaConfig, epi: Epilogue | None = None):
        self.t, self.m, self.n, self.k, self.c = dtype.ptx, m, n, k, cfg
        self.epi = epi
        out = epi.out if epi else dtype
        self.ot, self.osize = out.ptx, out.itemsize     # what C holds
        self.fused: EpiloguePtx | None = None
        self.grid_m, self.grid_n = cdiv(m, cfg.bm), cdiv(n, cfg.bn)
        self.tiles = self.grid_m * self.grid_n
        self.ktiles = cdiv(k, BK)
        self.ragged = bool(m % cfg.bm or n % cfg.bn)
        self.e = Ptx()

    def text(self, name: str) -> str:
        c = self.c
        head = [f".version {PTX_VERSION}", f".target {TARGET}", ".address_size 64", "",
                f".extern .shared .align {ALIGN} .b8 smem[];", "",
                f".visible .entry {name}("] + _params(["pc", "pmaps"] + (self.epi.param_names if self.epi else [])) + \
               [")", f".maxntid {c.threads}, 1, 1", f".maxnreg {c.launch_regs}", "{"]
        return "\n".join(head + ["\t" + r for r in self.e.regs] + self.e.lines + ["\tret;", "}", ""])

    def emit(self) -> None:
        e, c = self.e, self.c
        e.reg("pred", "p", "pw")
        e.reg("b32", "thr", "wg", "sbase", "full", "empty", "stage", "ph", "tile", "tile_m", "tile_n",
              "grp", "gin", "gsz", "row0", "col0", "x", "y", "kt")
        if c.pingpong:
            e.reg("b32", "turns", "my_turn", "next_turn", "turn_ph")
        e("mov.u32 %thr, %tid.x;")
        e("shr.u32 %wg, %thr, 7;")
        # the stages need a 1024-byte aligned base (swizzle atoms); the extern array gets 16
        e("mov.u32 %sbase, smem;")
        e(f"add.u32 %sbase, %sbase, {ALIGN - 1};")
        e(f"and.b32 %sbase, %sbase, {-ALIGN & 0xFFFFFFFF};")
        e(f"add.u32 %full, %sbase, {c.stages * c.stage_bytes};")     # full[s] at full + 8 s
        e(f"add.u32 %empty, %full, {MBARRIER_BYTES * c.stages};")     # empty[s] at empty + 8 s
        if c.pingpong:
            e(f"add.u32 %turns, %empty, {MBARRIER_BYTES * c.stages};")  # turn[c] at turns + 8 c
        e("setp.ne.u32 %p, %thr, 0;")
        e("@%p bra $INIT_DONE;")
        for s in range(c.stages):
            e(f"mbarrier.init.shared::cta.b64 [%full+{MBARRIER_BYTES * s}], 1;")
            e(f"mbarrier.init.shared::cta.b64 [%empty+{MBARRIER_BYTES * s}], {c.releasers};")
        if c.pingpong:
            for w in range(c.consumers):
                e(f"mbarrier.init.shared::cta.b64 [%turns+{MBARRIER_BYTES * w}], 1;")
        e("fence.mbarrier_init.release.cluster;")
        if c.pingpong:                             # consumer 0 has the first turn
            e("mbarrier.arrive.shared::cta.b64 _, [%turns];")
        e("$INIT_DONE:")
        e("bar.sync 0;")
        e("setp.ne.u32 %p, %wg, 0;")
        e("@%p bra $CONSUMER;")
        self.producer()
        e("$CONSUMER:")
        self.consumer()

    # ---- shared pieces ---------------------------------------------------------------------
    def tile_coords(self) -> None:
        """%row0 / %col0 of tile %tile in the grouped raster (matmul_ptx.raster's order)."""
        e, c = self.e, self.c
        g = max(1, min(c.group, self.grid_m))
        width = g * self.grid_n
        e(f"div.u32 %grp, %tile, {width};")
        e(f"rem.u32 %gin, %tile, {width};")
        e(f"mul.lo.u32 %tile_m, %grp, {g};")
        e(f"sub.u32 %gsz, {self.grid_m}, %tile_m;")
        e(f"min.u32 %gsz, %gsz, {g};")
        e("rem.u32 %tile_n, %gin, %gsz;")
        e("add.u32 %tile_m, %tile_m, %tile_n;")
        e("div.u32 %tile_n, %gin, %gsz;")
        e(f"mul.lo.u32 %row0, %tile_m, {c.bm};")
        e(f"mul.lo.u32 %col0, %tile_n, {c.bn};")

    def next_stage(self) -> None:
        """Advance %stage around the ring, flipping the phase parity %ph at the wrap."""
        e = self.e
        e("add.u32 %stage, %stage, 1;")
        e(f"setp.eq.u32 %pw, %stage, {self.c.stages};")
        e("selp.u32 %stage, 0, %stage, %pw;")
        e("xor.b32 %x, %ph, 1;")
        e("selp.u32 %ph, %x, %ph, %pw;")

    def wait(self, label: str, bar: str, parity: str) -> None:
        e = self.e
        e(f"mad.lo.u32 %x, %stage, {MBARRIER_BYTES}, {bar};")
        e(f"{label}:")
        e(f"mbarrier.try_wait.parity.shared::cta.b64 %p, [%x], {parity};")
        e(f"@!%p bra {label};")

    # ---- warpgroup 0: TMA producer ---------------------------------------------------------
    def producer(self) -> None:
        e, c = self.e, self.c
        e.reg("b32", "kc", "sa", "sb", "bar", "elected")
        e.reg("b64", "pmaps", "map_a", "map_b")
        if c.reconfigures:
            e(f"setmaxnreg.dec.sync.aligned.u32 {PRODUCER_REGS};")
        e("setp.ge.u32 %p, %thr, 32;")
        e("@%p bra $DONE;")
        e("elect.sync %elected|%p, 0xffffffff;")
        e("@!%p bra $DONE;")
        e("ld.param.u64 %pmaps, [pmaps];")
        e("mov.b64 %map_a, %pmaps;")
        e(f"add.s64 %map_b, %pmaps, {TENSOR_MAP_BYTES};")
        # the maps were written by the host: order them before the copies that read them
        e(f"fence.proxy.tensormap::generic.acquire.gpu [%map_a], {TENSOR_MAP_BYTES};")
        e(f"fence.proxy.tensormap::generic.acquire.gpu [%map_b], {TENSOR_MAP_BYTES};")
        e("mov.u32 %stage, 0;")
        e("mov.u32 %ph, 0;")
        e("mov.u32 %tile, %ctaid.x;")
        e("$P_TILE:")
        e(f"setp.ge.u32 %p, %tile, {self.tiles};")
        e("@%p bra $DONE;")
        self.tile_coords()
        e("mov.u32 %kc, 0;")
        e("$P_K:")
        e("xor.b32 %y, %ph, 1;")                     # a fresh empty barrier passes parity 1
        self.wait("$P_WAIT", "%empty", "%y")
        e(f"mad.lo.u32 %bar, %stage, {MBARRIER_BYTES}, %full;")
        e(f"mbarrier.arrive.expect_tx.shared::cta.b64 _, [%bar], {c.stage_bytes};")
        e(f"mul.lo.u32 %sa, %stage, {c.stage_bytes};")
        e("add.u32 %sa, %sa, %sbase;")
        e(f"add.u32 %sb, %sa, {c.a_bytes};")
        tma = "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
        e(f"{tma} [%sa], [%map_a, {{%kc, %row0}}], [%bar];")
        for j in range(c.bn // SLAB):
            e(f"add.u32 %y, %col0, {j * SLAB};")
            e(f"{tma} [%sb+{j * SLAB * BK * 2}], [%map_b, {{%y, %kc}}], [%bar];")
        self.next_stage()
        e(f"add.u32 %kc, %kc, {BK};")
        e(f"setp.lt.u32 %p, %kc, {self.k};")
        e("@%p bra $P_K;")
        e("mov.u32 %x, %nctaid.x;")
        e("add.u32 %tile, %tile, %x;")
        e("bra.uni $P_TILE;")

    # ---- warpgroups 1..consumers: wgmma -------------------------------------------------------
    def consumer(self) -> None:
        e, c, t = self.e, self.c, self.t
        nacc = c.bn // 2
        acc = [[f"%d{b * nacc + i}" for i in range(nacc)] for b in range(c.m_blocks)]
        e.reg("f32", *[a[1:] for blk in acc for a in blk])
        e.reg("pred", "pd", "pt", "pr")
        e.reg("b32", "wt", "sa_c", "lead", "prev")
        e.reg("b64", "da", "db", "dai", "dbi")
        if c.reconfigures:
            e(f"setmaxnreg.inc.sync.aligned.u32 {c.consumer_regs};")
        e("sub.u32 %wt, %thr, 128;")                 # thread within the consumer warpgroups
        e("shr.u32 %x, %wt, 7;")                     # consumer index: which rows
        e(f"mul.lo.u32 %sa_c, %x, {c.slice_rows * BK * 2};")
        e("add.u32 %sa_c, %sa_c, %sbase;")           # this consumer's rows of A in stage 0
        e("and.b32 %lead, %wt, 127;")                # thread 0 of each warpgroup releases stages
        e("setp.eq.u32 %pt, %lead, 0;")
        if c.store == "tma":                        # C's map: fenced like A's and B's before use
            e.reg("b64", "map_c")
            e("ld.param.u64 %map_c, [pmaps];")
            e(f"add.s64 %map_c, %map_c, {2 * TENSOR_MAP_BYTES};")   # after A's and B's
            e(f"@%pt fence.proxy.tensormap::generic.acquire.gpu [%map_c], {TENSOR_MAP_BYTES};")
        if self.epi is not None:                    # a thread keeps 2 rows per 64-row block, a column pair
            self.fused = EpiloguePtx(self.epi, e, self.m, self.n, 2 * c.m_blocks, 2, 2, self.ragged)
            self.fused.setup()
        e("mov.u32 %tile, %ctaid.x;")
        if c.pingpong:
            # main loops take turns in tile order: consumer c waits on turn[c] and passes the
            # turn to the next consumer when its last wgmma retired. Without the turns a consumer
            # could wait for a stage phase two ahead, which a parity wait cannot tell apart.
            e(f"mad.lo.u32 %my_turn, %x, {MBARRIER_BYTES}, %turns;")
            e("add.u32 %y, %x, 1;")
            e(f"rem.u32 %y, %y, {c.consumers};")
            e(f"mad.lo.u32 %next_turn, %y, {MBARRIER_BYTES}, %turns;")
            e("mov.u32 %turn_ph, 0;")
            # consumer c's first tile is the block's c-th: its stages start c * ktiles into the ring
            e("mov.u32 %y, %nctaid.x;")
            e("mad.lo.u32 %tile, %x, %y, %tile;")
            e(f"mul.lo.u32 %y, %x, {self.ktiles};")
            e(f"rem.u32 %stage, %y, {c.stages};")
            e(f"div.u32 %y, %y, {c.stages};")
            e("and.b32 %ph, %y, 1;")
        else:
            e("mov.u32 %stage, 0;")
            e("mov.u32 %ph, 0;")
        e("$C_TILE:")
        e(f"setp.ge.u32 %p, %tile, {self.tiles};")
        e(f"@%p bra {'$C_END' if c.store == 'tma' else '$DONE'};")
        e("mov.u32 %kt, 0;")
        if c.pingpong:
            e("$C_TURN:")
            e("mbarrier.try_wait.parity.shared::cta.b64 %p, [%my_turn], %turn_ph;")
            e("@!%p bra $C_TURN;")
            e("xor.b32 %turn_ph, %turn_ph, 1;")
        e("$C_K:")
        self.wait("$C_WAIT", "%full", "%ph")
        # descriptors of this stage: A K-major (SBO: 8 rows of 128 B), B N-major (LBO: the
        # next 64-column slab, SBO: the next 8 k-rows)
        e(f"mul.lo.u32 %x, %stage, {c.stage_bytes};")
        e("add.u32 %y, %x, %sa_c;")
        e(f"shr.u32 %y, %y, {_DESC_SHIFT};")
        e("cvt.u64.u32 %da, %y;")
        e(f"or.b64 %da, %da, {_desc_template(16, SWIZZLE_ROWS * SWIZZLE)};")
        e("add.u32 %y, %x, %sbase;")
        e(f"add.u32 %y, %y, {c.a_bytes};")
        e(f"shr.u32 %y, %y, {_DESC_SHIFT};")
        e("cvt.u64.u32 %db, %y;")
        e(f"or.b64 %db, %db, {_desc_template(SLAB * BK * 2, SWIZZLE_ROWS * SWIZZLE)};")
        e("setp.ne.u32 %pd, %kt, 0;")                # the tile's first k-step overwrites
        e("wgmma.fence.sync.aligned;")
        for ks in range(BK // K_STEP):
            scale = "%pd" if ks == 0 else "1"
            if ks:
                e(f"add.s64 %dbi, %db, {ks * K_STEP * SWIZZLE >> _DESC_SHIFT};")     # 16 k-rows
            for blk in range(c.m_blocks):
                off = (ks * K_STEP * 2 + blk * WG_M * SWIZZLE) >> _DESC_SHIFT       # 32 B along k, 64 rows
                if off:
                    e(f"add.s64 %dai, %da, {off};")
                a, b = "%dai" if off else "%da", "%dbi" if ks else "%db"
                dvec = "{" + ", ".join(acc[blk]) + "}"
                e(f"wgmma.mma_async.sync.aligned.m64n{c.bn}k{K_STEP}.f32.{t}.{t} {dvec}, {a}, {b}, {scale}, "
                  "1, 1, 0, 1;")
        e("wgmma.commit_group.sync.aligned;")
        e(f"wgmma.wait_group.sync.aligned {c.lag};")
        if c.lag:                                   # the previous k-tile is retired: free its stage
            e("setp.ne.and.u32 %pr, %kt, 0, %pt;")
            e("@%pr mbarrier.arrive.shared::cta.b64 _, [%prev];")
            e(f"mad.lo.u32 %prev, %stage, {MBARRIER_BYTES}, %empty;")
        else:
            e(f"mad.lo.u32 %x, %stage, {MBARRIER_BYTES}, %empty;")
            e("@%pt mbarrier.arrive.shared::cta.b64 _, [%x];")
        self.next_stage()
        e("add.u32 %kt, %kt, 1;")
        e(f"setp.lt.u32 %p, %kt, {self.ktiles};")
        e("@%p bra $C_K;")
        if c.lag:
            e("wgmma.wait_group.sync.aligned 0;")
            e("@%pt mbarrier.arrive.shared::cta.b64 _, [%prev];")
        if c.pingpong:                              # this tile's wgmmas are done: next consumer's turn
            e("@%pt mbarrier.arrive.shared::cta.b64 _, [%next_turn];")
        self.tile_coords()
        if c.store == "tma":
            self.tma_epilogue(acc)
        else:
            self.epilogue(acc)
        e("mov.u32 %x, %nctaid.x;")
        if c.pingpong:                              # skip the other consumers' tiles and stages
            e(f"mad.lo.u32 %tile, %x, {c.consumers}, %tile;")
            e(f"add.u32 %x, %stage, {(c.consumers - 1) * self.ktiles};")
            e(f"rem.u32 %stage, %x, {c.stages};")
            e(f"div.u32 %x, %x, {c.stages};")
            e("and.b32 %x, %x, 1;")
            e("xor.b32 %ph, %ph, %x;")
        else:
            e("add.u32 %tile, %tile, %x;")
        e("bra.uni $C_TILE;")
        if c.store == "tma":
            e("$C_END:")                            # the shared buffers must outlive the stores
            e("@%pt cp.async.bulk.wait_group 0;")
        e("$DONE:")

    def epilogue(self, acc: list[list[str]]) -> None:
        """Accumulator i of block b of a thread (warp w, lane l of its warpgroup) is row
        64 b + 16 w + l/4 (+8 when i % 4 >= 2), column 8 (i / 4) + 2 (l % 4) + i % 2 of the
        warpgroup's rows x bn slice: pairs (i, i+1) are one 32-bit store."""
        e, c = self.e, self.c
        e.reg("b32", "crow", "ccol", "pk")
        e.reg("b64", "ptr")
        self.thread_coords()
        e(f"mul.wide.u32 %ptr, %crow, {self.n * self.osize};")
        e("cvt.u64.u32 %da, %ccol;")
        e(f"shl.b64 %da, %da, {self.osize.bit_length() - 1};")
        e("add.s64 %ptr, %ptr, %da;")
        e("ld.param.u64 %da, [pc];")
        e("cvta.to.global.u64 %da, %da;")
        e("add.s64 %ptr, %ptr, %da;")
        if self.fused is not None:
            self.fused_rows()
        if self.ragged:
            e.reg("pred", "pr0", "pr1", "pv")
            # whole tiles store without checks; the edge tiles check every pair
            e(f"add.u32 %x, %row0, {c.bm};")
            e(f"add.u32 %y, %col0, {c.bn};")
            e(f"setp.le.u32 %p, %x, {self.m};")
            e(f"setp.le.and.u32 %p, %y, {self.n}, %p;")
            e("@!%p bra $EDGE;")
        if self.fused is not None:
            self.fused_stores(acc, False)
        else:
            for blk in range(c.m_blocks):
                self.stores(acc[blk], blk, False)
        if self.ragged:
            e("bra.uni $STORED;")
            e("$EDGE:")
            if self.fused is not None:
                self.fused_stores(acc, True)
            else:
                for blk in range(c.m_blocks):
                    e(f"add.u32 %x, %crow, {blk * WG_M};")
                    e(f"setp.lt.u32 %pr0, %x, {self.m};")
                    e("add.u32 %x, %x, 8;")
                    e(f"setp.lt.u32 %pr1, %x, {self.m};")
                    self.stores(acc[blk], blk, True)
            e("$STORED:")

    def thread_coords(self) -> None:
        """%crow / %ccol: the output row and first column of the thread's accumulator 0 (see
        :meth:`epilogue`)."""
        e, c = self.e, self.c
        e("and.b32 %x, %wt, 127;")
        e("shr.u32 %y, %x, 5;")                     # warp in the warpgroup
        e("shl.b32 %y, %y, 4;")
        e("and.b32 %x, %x, 31;")
        e("shr.u32 %crow, %x, 2;")
        e("add.u32 %crow, %crow, %y;")
        e("shr.u32 %y, %wt, 7;")
        e(f"mad.lo.u32 %crow, %y, {c.slice_rows}, %crow;")
        e("add.u32 %crow, %crow, %row0;")
        e("and.b32 %x, %x, 3;")
        e("shl.b32 %x, %x, 1;")
        e("add.u32 %ccol, %x, %col0;")

    # ---- fused epilogue ----------------------------------------------------------------------
    def fused_rows(self) -> None:
        """Binds the epilogue's row slots: slot 2 b + h is row %crow + 64 b + 8 h."""
        for blk in range(self.c.m_blocks):
            for h in range(2):
                self.fused.row(2 * blk + h, "%crow", WG_M * blk + 8 * h)

    def fused_pairs(self, acc: list[list[str]], store) -> None:
        """The epilogue's values of every accumulator pair, column pair by column pair (its two
        column slots bound once for all the thread's rows); ``store(blk, i, v0, v1)`` writes
        the pair (i, i+1) of block ``blk``."""
        for q in range(len(acc[0]) // 4):
            for j in range(2):
                self.fused.col(j, "%ccol", 8 * q + j)
            for blk in range(self.c.m_blocks):
                for h in range(2):
                    i = 4 * q + 2 * h
                    v0 = self.fused.value(2 * blk + h, 0, 0, acc[blk][i])
                    v1 = self.fused.value(2 * blk + h, 1, 1, acc[blk][i + 1])
                    store(blk, i, v0, v1)

    def fused_stores(self, acc: list[list[str]], checked: bool) -> None:
        """Store "direct" of the epilogue's values, predicated by row and column when
        ``checked``: 2-byte pairs as one b32, f32 pairs as one v2.f32."""
        e, c = self.e, self.c
        if checked:
            if c.m_blocks > 1:                       # pr0 / pr1: declared by epilogue()
                e.reg("pred", *[f"pr{j}" for j in range(2, 2 * c.m_blocks)])
            for j in range(2 * c.m_blocks):
                e(f"add.u32 %x, %crow, {WG_M * (j // 2) + 8 * (j % 2)};")
                e(f"setp.lt.u32 %pr{j}, %x, {self.m};")

        def store(blk: int, i: int, v0: str, v1: str) -> None:
            dr, dc = 8 * ((i % 4) // 2) + WG_M * blk, 8 * (i // 4)
            guard = ""
            if checked:
                e(f"add.u32 %x, %ccol, {dc};")
                e(f"setp.lt.and.u32 %pv, %x, {self.n}, %pr{2 * blk + (i % 4) // 2};")
                guard = "@%pv "
            addr = f"[%ptr+{(dr * self.n + dc) * self.osize}]"
            if self.osize == 4:
                e(f"{guard}st.global.v2.f32 {addr}, {{{v0}, {v1}}};")
            else:
                e(f"cvt.rn.{self.ot}x2.f32 %pk, {v1}, {v0};")
                e(f"{guard}st.global.b32 {addr}, %pk;")
        self.fused_pairs(acc, store)

    def stores(self, acc: list[str], blk: int, checked: bool) -> None:
        """The pairs of accumulator block ``blk`` (rows 64 blk on), predicated by %pr0 / %pr1
        (rows in bounds) and the column when ``checked``."""
        e, t = self.e, self.t
        for i in range(0, len(acc), 2):
            dr, dc = 8 * ((i % 4) // 2) + WG_M * blk, 8 * (i // 4)
            e(f"cvt.rn.{t}x2.f32 %pk, {acc[i + 1]}, {acc[i]};")
            guard = ""
            if checked:                             # N is even: a pair is in when its first column is
                e(f"add.u32 %x, %ccol, {dc};")
                e(f"setp.lt.and.u32 %pv, %x, {self.n}, {'%pr1' if (i % 4) // 2 else '%pr0'};")
                guard = "@%pv "
            e(f"{guard}st.global.b32 [%ptr+{(dr * self.n + dc) * 2}], %pk;")

    def tma_epilogue(self, acc: list[list[str]]) -> None:
        """Store "tma": accumulator pairs into this consumer's shared buffer as TMA's 128B
        swizzle lays out a 64 x 64 box (row r, 16-byte chunk q%8 of box q/8 at chunk (q%8) ^ (r%8):
        the 8 rows a warp writes at once land in distinct banks), then one thread stores the
        boxes (bn/64 per 64-row block) with cp.async.bulk.tensor (out-of-bound rows and columns
        are not written)."""
        e, c = self.e, self.c
        e.reg("b32", "cbuf", "crow8", "xg", "bid", "pk")
        if self.fused is not None:
            e.reg("b32", "crow", "ccol")
            self.thread_coords()
            self.fused_rows()
        e("shr.u32 %x, %wt, 7;")                     # consumer index
        e("add.u32 %bid, %x, 1;")                    # named barrier 1 + consumer: its 128 threads
        e(f"mad.lo.u32 %cbuf, %x, {c.c_bytes}, %sbase;")
        e(f"add.u32 %cbuf, %cbuf, {c.c_offset};")
        # the previous tile's stores must have read the buffer before it is overwritten
        e("@%pt cp.async.bulk.wait_group.read 0;")
        e("bar.sync %bid, 128;")
        e("and.b32 %x, %wt, 127;")
        e("shr.u32 %y, %x, 5;")                      # warp
        e("and.b32 %x, %x, 31;")                     # lane
        e("and.b32 %xg, %x, 3;")
        e("shl.b32 %xg, %xg, 2;")                    # 4 t: the pair's bytes in its chunk
        e("shr.u32 %x, %x, 2;")                      # g
        e("shl.b32 %y, %y, 4;")
        e("add.u32 %y, %y, %x;")                     # row 16 w + g
        e(f"mad.lo.u32 %crow8, %y, {SWIZZLE}, %cbuf;")
        e("add.u32 %crow8, %crow8, %xg;")
        e("shl.b32 %xg, %x, 4;")                     # g * 16: the swizzle XOR of rows g and g + 8
        box, boxes = SLAB * WG_M * 2, c.bn // SLAB

        def stage(blk: int, i: int, v0: str, v1: str) -> None:
            q, h = i // 4, (i % 4) // 2
            e(f"cvt.rn.{self.ot}x2.f32 %pk, {v1}, {v0};")
            e(f"xor.b32 %x, %xg, {(q % 8) * 16};")
            e("add.u32 %x, %x, %crow8;")
            e(f"st.shared.b32 [%x+{(blk * boxes + q // 8) * box + h * 8 * SWIZZLE}], %pk;")
        if self.fused is not None:
            self.fused_pairs(acc, stage)
        else:
            for blk in range(c.m_blocks):           # block blk's boxes follow block blk-1's
                for i in range(0, len(acc[blk]), 2):
                    stage(blk, i, acc[blk][i], acc[blk][i + 1])
        e("fence.proxy.async.shared::cta;")          # generic-proxy writes before TMA reads them
        e("bar.sync %bid, 128;")
        e("@!%pt bra $C_STORED;")
        e("shr.u32 %x, %wt, 7;")
        e(f"mad.lo.u32 %y, %x, {c.slice_rows}, %row0;")   # the consumer's first row
        for blk in range(c.m_blocks):
            for j in range(boxes):
                e(f"add.u32 %x, %col0, {j * SLAB};")
                e("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%map_c, {%x, %y}], "
                  f"[%cbuf+{(blk * boxes + j) * box}];")
            if blk + 1 < c.m_blocks:
                e(f"add.u32 %y, %y, {WG_M};")
        e("cp.async.bulk.commit_group;")
        e("$C_STORED:")


def _params(names: list[str]) -> list[str]:
    """The entry's parameter lines (all 64-bit addresses)."""
    return [f"\t.param .u64 {p}" + ("," if j + 1 < len(names) else "") for j, p in enumerate(names)]
