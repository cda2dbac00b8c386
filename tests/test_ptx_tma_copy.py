"""TMA tile copies on the mock (cp.async.bulk.tensor.2d with tiled tensor maps) against numpy:
loads with out-of-bound fill in every swizzle mode, the map passed by value and through a
global pointer, completion on an mbarrier with a parity wait, and tile stores. The expected
shared-memory image is a numpy model of the swizzle written from what was measured on an H100
(nvidia-perf.md 2.3: 16-byte chunk index XOR row % 8 for 128-byte rows, (row/2) % 4 for 64-byte
rows, (row/4) % 2 for 32-byte rows). The PTX below assembles with ``ptxas -arch=sm_90a`` (13.0)."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from hwdrv.mock.nvidia import ptx
from hwdrv.nvidia.tensormap import encode_tiled

from test_ptx_helpers import gpu  # noqa: F401

PTX = r"""
.version 8.5
.target sm_90a
.address_size 64

// One CTA loads a 2-D box with TMA into swizzled shared memory (map by value; _variants adds
// the same kernel with the map behind a global pointer, and a 3-D one), waits on the mbarrier
// with a parity wait, and copies the raw shared image out.
.visible .entry tma_load_2d(
    .param .align 64 .b8 tmap[128],
    .param .u64 out,
    .param .u32 c0,
    .param .u32 c1,
    .param .u32 nbytes
)
{
    .reg .pred %p<4>;
    .reg .b32 %r<16>;
    .reg .b64 %rd<16>;
    .shared .align 1024 .b8 tile[8192];
    .shared .align 8 .b64 bar;

    mov.u32 %r1, %tid.x;
    ld.param.u32 %r5, [nbytes];
    setp.ne.u32 %p1, %r1, 0;
    @%p1 bra SYNC;
    mbarrier.init.shared::cta.b64 [bar], 1;
    fence.mbarrier_init.release.cluster;
SYNC:
    bar.sync 0;
    @%p1 bra WAIT;
    ld.param.u32 %r3, [c0];
    ld.param.u32 %r4, [c1];
    mov.u64 %rd6, tmap;
    cvta.param.u64 %rd6, %rd6;
    prefetch.tensormap [%rd6];
    mbarrier.arrive.expect_tx.shared::cta.b64 %rd1, [bar], %r5;
    cp.async.bulk.prefetch.tensor.2d.L2.global.tile [%rd6, {%r3, %r4}];
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [tile], [%rd6, {%r3, %r4}], [bar];
WAIT:
    mbarrier.try_wait.parity.shared::cta.b64 %p2, [bar], 0;
    @!%p2 bra WAIT;
    ld.param.u64 %rd2, [out];
    cvta.to.global.u64 %rd2, %rd2;
    mov.u32 %r6, tile;
    shl.b32 %r7, %r1, 4;
COPY:
    setp.ge.u32 %p3, %r7, %r5;
    @%p3 bra DONE;
    add.u32 %r8, %r6, %r7;
    ld.shared.v4.u32 {%r9, %r10, %r11, %r12}, [%r8];
    cvt.u64.u32 %rd3, %r7;
    add.u64 %rd4, %rd2, %rd3;
    st.global.v4.u32 [%rd4], {%r9, %r10, %r11, %r12};
    add.u32 %r7, %r7, 2048;
    bra COPY;
DONE:
    ret;
}

// Shared image in (raw, as laid out in shared memory) -> TMA tile store to the tensor.
.visible .entry tma_store_2d(
    .param .align 64 .b8 tmap[128],
    .param .u64 img,
    .param .u32 c0,
    .param .u32 c1,
    .param .u32 nbytes
)
{
    .reg .pred %p<4>;
    .reg .b32 %r<16>;
    .reg .b64 %rd<16>;
    .shared .align 1024 .b8 tile[8192];

    mov.u32 %r1, %tid.x;
    ld.param.u32 %r5, [nbytes];
    ld.param.u64 %rd2, [img];
    cvta.to.global.u64 %rd2, %rd2;
    mov.u32 %r6, tile;
    shl.b32 %r7, %r1, 4;
COPY:
    setp.ge.u32 %p3, %r7, %r5;
    @%p3 bra STORE;
    add.u32 %r8, %r6, %r7;
    cvt.u64.u32 %rd3, %r7;
    add.u64 %rd4, %rd2, %rd3;
    ld.global.v4.u32 {%r9, %r10, %r11, %r12}, [%rd4];
    st.shared.v4.u32 [%r8], {%r9, %r10, %r11, %r12};
    add.u32 %r7, %r7, 2048;
    bra COPY;
STORE:
    fence.proxy.async.shared::cta;
    bar.sync 0;
    setp.ne.u32 %p1, %r1, 0;
    @%p1 bra DONE;
    ld.param.u32 %r3, [c0];
    ld.param.u32 %r4, [c1];
    mov.u64 %rd6, tmap;
    cvta.param.u64 %rd6, %rd6;
    cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [%rd6, {%r3, %r4}], [tile];
    cp.async.bulk.commit_group;
    cp.async.bulk.wait_group 0;
DONE:
    ret;
}
"""

ROWS, COLS = 40, 72                      # the f16 tensor: 40 rows of 72 elements (144-byte rows)


def _variants(src: str) -> str:
    """The by-value 2-D load kernel as two more kernels: with the map in global memory (a
    pointer parameter, fence.proxy.tensormap before use) and 3-D (a third coordinate)."""
    k = src[src.index(".visible .entry tma_load_2d("):src.index("// Shared image in")]
    out = [src]
    for changes in (
            ((".entry tma_load_2d(", ".entry tma_load_2d_global_map("),
             (".param .align 64 .b8 tmap[128],", ".param .u64 tmap_ptr,"),
             ("ld.param.u32 %r5, [nbytes];", "ld.param.u32 %r5, [nbytes];\n    ld.param.u64 %rd5, [tmap_ptr];"),
             ("mov.u64 %rd6, tmap;\n    cvta.param.u64 %rd6, %rd6;\n    prefetch.tensormap [%rd6];",
              "fence.proxy.tensormap::generic.acquire.gpu [%rd5], 128;"),
             ("    cp.async.bulk.prefetch.tensor.2d.L2.global.tile [%rd6, {%r3, %r4}];\n", ""),
             ("[%rd6, {%r3, %r4}]", "[%rd5, {%r3, %r4}]")),
            ((".entry tma_load_2d(", ".entry tma_load_3d("),
             (".param .u32 c1,", ".param .u32 c1,\n    .param .u32 c2,"),
             ("ld.param.u32 %r4, [c1];", "ld.param.u32 %r4, [c1];\n    ld.param.u32 %r13, [c2];"),
             (".2d.", ".3d."), ("{%r3, %r4}", "{%r3, %r4, %r13}"))):
        v = k
        for old, new in changes:
            assert old in v
            v = v.replace(old, new)
        out.append(v)
    return "\n".join(out)


PTX = _variants(PTX)


@pytest.fixture(scope="module")
def module():
    return ptx.parse(PTX)


def swizzled_image(box: np.ndarray, swizzle: int) -> np.ndarray:
    """Raw bytes of ``box`` (rows x row bytes) as TMA lays it out in shared memory (from a
    1024-byte aligned start)."""
    raw = box.view(np.uint8).reshape(box.shape[0], -1)
    if not swizzle:
        return raw.ravel()
    rows, width = raw.shape
    assert width == swizzle
    chunks = raw.reshape(rows, width // 16, 16)
    out = np.empty_like(chunks)
    per_128 = 128 // width                       # rows of this width in one 128-byte line
    period = {128: 8, 64: 4, 32: 2}[swizzle]
    for r in range(rows):
        x = (r // per_128) % period
        for c in range(width // 16):
            out[r, c ^ x] = chunks[r, c]
    return out.ravel()


def _tensor(gpu, oob_nan=False, swizzle=0, box=(64, 16)):
    rng = np.random.default_rng(7)
    t = rng.standard_normal((ROWS, COLS)).astype(np.float16)
    va = gpu.upload(t)
    tm = encode_tiled(va, "f16", [COLS, ROWS], [COLS * 2], list(box),
                      swizzle=swizzle, oob_nan=oob_nan)
    return t, va, tm


def _box_of(t, c0, c1, b0, b1, fill):
    out = np.full((b1, b0), fill, np.float16)
    for r in range(b1):
        for c in range(b0):
            y, x = c1 + r, c0 + c
            if 0 <= y < ROWS and 0 <= x < COLS:
                out[r, c] = t[y, x]
    return out


@pytest.mark.parametrize("swizzle,box", [(0, (64, 16)), (0, (24, 8)), (32, (16, 16)), (64, (32, 16)),
                                         (128, (64, 16))])
@pytest.mark.parametrize("coords", [(8, 4), (40, -3), (-8, 30)])
def test_tile_load_with_oob_zero_fill(gpu, module, swizzle, box, coords):
    t, _, tm = _tensor(gpu, swizzle=swizzle, box=box)
    nbytes = box[0] * box[1] * 2
    out = gpu.alloc(nbytes)
    gpu.run(module, "tma_load_2d", 1, 128, [tm, out, coords[0], coords[1], nbytes])
    want = swizzled_image(_box_of(t, *coords, *box, 0), swizzle)
    assert np.array_equal(gpu.download(out, np.uint8, nbytes), want)


@pytest.mark.parametrize("swizzle,box", [(64, (32, 16)), (128, (64, 16))])
def test_tile_load_nan_fill_through_global_map(gpu, module, swizzle, box):
    t, _, tm = _tensor(gpu, oob_nan=True, swizzle=swizzle, box=box)
    map_va = gpu.upload(np.frombuffer(tm, np.uint8))                      # 256-byte aligned
    nbytes = box[0] * box[1] * 2
    out = gpu.alloc(nbytes)
    gpu.run(module, "tma_load_2d_global_map", 1, 128, [map_va, out, 48, 32, nbytes])
    want = swizzled_image(_box_of(t, 48, 32, *box, np.nan), swizzle)
    got = gpu.download(out, np.uint8, nbytes)
    g16, w16 = got.view(np.float16), want.view(np.float16)
    assert np.isnan(w16).sum() > 0
    assert np.array_equal(np.isnan(g16), np.isnan(w16))
    assert np.array_equal(g16[~np.isnan(w16)], w16[~np.isnan(w16)])


@pytest.mark.parametrize("swizzle,box", [(0, (64, 16)), (128, (64, 16)), (32, (16, 8))])
def test_tile_store_skips_out_of_bound_elements(gpu, module, swizzle, box):
    t, va, tm = _tensor(gpu, swizzle=swizzle, box=box)
    new = np.random.default_rng(8).standard_normal((box[1], box[0])).astype(np.float16)
    img = gpu.upload(swizzled_image(new, swizzle))
    c0, c1 = COLS - box[0] // 2, ROWS - box[1] // 2
    gpu.run(module, "tma_store_2d", 1, 128, [tm, img, c0, c1, new.nbytes])
    want = t.copy()
    want[c1:, c0:] = new[:ROWS - c1, :COLS - c0]
    assert np.array_equal(gpu.download(va, np.float16, ROWS * COLS).reshape(ROWS, COLS), want)


def test_misaligned_global_map_faults(gpu, module):
    _, _, tm = _tensor(gpu)
    base = gpu.upload(np.zeros(256, np.uint8))
    gpu.pt.write(base + 32, tm)
    out = gpu.alloc(2048)
    with pytest.raises(ptx.IllegalInstruction, match="not 64-byte aligned"):
        gpu.run(module, "tma_load_2d_global_map", 1, 128, [base + 32, out, 0, 0, 2048])


def test_map_rank_and_box_checks(gpu, module):
    va = gpu.upload(np.zeros((ROWS, COLS), np.float16))
    out = gpu.alloc(8192)
    rank1 = encode_tiled(va, "f16", [COLS * ROWS], [], [64])
    with pytest.raises(ptx.IllegalInstruction, match="2d tensor copy with a rank-1"):
        gpu.run(module, "tma_load_2d", 1, 128, [rank1, out, 0, 0, 128])
    narrow = encode_tiled(va, "f16", [COLS, ROWS], [COLS * 2], [32, 8], swizzle=128)
    with pytest.raises(ptx.IllegalInstruction, match="only boxes exactly as wide"):
        gpu.run(module, "tma_load_2d", 1, 128, [narrow, out, 0, 0, 512])
    with pytest.raises(ptx.IllegalInstruction, match="reserved bits"):
        gpu.run(module, "tma_load_2d", 1, 128, [bytes([0xFF]) * 128, out, 0, 0, 512])


def test_short_expect_tx_never_completes_the_phase(gpu, module):
    """expect_tx of fewer bytes than the box moves: the transaction count never returns to 0,
    so the parity wait spins until the step limit."""
    _, _, tm = _tensor(gpu)
    out = gpu.alloc(2048)
    with pytest.raises(ptx.LaunchTimeout):
        gpu.run(module, "tma_load_2d", 1, 128, [tm, out, 0, 0, 1024], max_steps=20_000)


def test_three_d_box_with_oob(gpu, module):
    rng = np.random.default_rng(9)
    t = rng.integers(0, 2**16, (5, 12, 24), dtype=np.uint16)          # z, y, x
    va = gpu.upload(t)
    box = (8, 4, 3)
    tm = encode_tiled(va, "u16", [24, 12, 5], [48, 48 * 12], list(box))
    nbytes = 8 * 4 * 3 * 2
    out = gpu.alloc(nbytes)
    gpu.run(module, "tma_load_3d", 1, 128, [tm, out, 16, -1, 3, nbytes])
    want = np.zeros((3, 4, 8), np.uint16)
    for z in range(3):
        for y in range(4):
            for x in range(8):
                zz, yy, xx = 3 + z, -1 + y, 16 + x
                if zz < 5 and 0 <= yy < 12 and xx < 24:
                    want[z, y, x] = t[zz, yy, xx]
    assert np.array_equal(gpu.download(out, np.uint16, nbytes // 2).reshape(3, 4, 8), want)


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas (CUDA toolkit) not installed")
def test_kernels_assemble(tmp_path):
    p = tmp_path / "tma.ptx"
    p.write_text(PTX)
    r = subprocess.run(["ptxas", "-arch=sm_90a", str(p), "-o", str(tmp_path / "tma.cubin")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
