"""A warp-specialized wgmma GEMM on the mock against numpy: warpgroup 0 (registers lowered with
setmaxnreg, one thread chosen with elect.sync) loads 64 x 64 f16 tiles of A and B with TMA
(tensor maps passed by value, 128B swizzle) onto one mbarrier per stage, expecting the bytes with
arrive.expect_tx; warpgroup 1 (registers raised) waits on each stage's parity, runs four
wgmma.mma_async m64n64k16 per stage on 128B-swizzled descriptors, retires them with
wait_group and stores its accumulator fragments. C = A * B^T, 128 x 128 x 128, 2 x 2 CTAs.

A second kernel reuses two stages over four k-tiles with full/empty barrier rings. The PTX
assembles with ``ptxas -arch=sm_90a`` (13.0)."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from hwdrv.mock.nvidia import ptx
from hwdrv.nvidia.tensormap import encode_tiled

from test_ptx_helpers import gpu  # noqa: F401

MN = K = 128

ACC = ", ".join(f"%f{i}" for i in range(32))           # a thread's 32 accumulators (m64n64, f32)


def _mmas(base: int, scale_d: str) -> str:
    """One 64-wide k-tile: four wgmma m64n64k16, the descriptors advanced 32 bytes (2 in their
    16-byte units) per k-step from ``base``; the first k-step's scale-d is ``scale_d``."""
    lines = []
    for j in range(4):
        lines += [f"    add.s64 %rd5, %rd3, {base + 2 * j};", f"    add.s64 %rd6, %rd4, {base + 2 * j};",
                  f"    wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {{{ACC}}}, %rd5, %rd6, "
                  f"{scale_d if j == 0 else '%p7'}, 1, 1, 0, 0;"]
    return "\n".join(lines)


def _stores() -> str:
    """A thread's accumulators to C (f32, 128 columns, at %rd9): register i holds row + 8 ((i%4)/2),
    column 8 (i/4) + i%2 of its fragment."""
    return "\n".join(f"    st.global.f32 [%rd9+{32 * (i // 4) + 4 * (i % 2) + 4096 * ((i % 4) // 2)}], %f{i};"
                     for i in range(32))


def _expand(src: str) -> str:
    """The kernel text with its @MMA base scale-d@ and @STORES@ lines written out."""
    src = src.replace("    @STORES@", _stores())
    return re.sub(r"    @MMA (\d+) (%p\d)@", lambda mo: _mmas(int(mo.group(1)), mo.group(2)), src)


PTX = r"""
.version 8.5
.target sm_90a
.address_size 64

// Warp-specialized GEMM tile: C[64x64 at (m0, n0)] = A[m0:m0+64, :] * B[n0:n0+64, :]^T (A: M x K,
// B: N x K, both row-major f16; C: f32 row-major, 128 x 128). Warpgroup 0 produces (TMA of 64 x 64
// tiles, 128B swizzle, one full mbarrier per stage), warpgroup 1 consumes (wgmma m64n64k16).
.visible .entry pc_gemm(
    .param .align 64 .b8 tmap_a[128],
    .param .align 64 .b8 tmap_b[128],
    .param .u64 out
)
.maxnreg 168
{
    .reg .pred %p<8>;
    .reg .b32 %r<40>;
    .reg .b64 %rd<40>;
    .reg .f32 %f<32>;
    .shared .align 1024 .b8 sa[16384];
    .shared .align 1024 .b8 sb[16384];
    .shared .align 8 .b64 full[2];

    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ctaid.y;
    shl.b32 %r4, %r2, 6;                  // n0
    shl.b32 %r5, %r3, 6;                  // m0
    setp.ne.u32 %p1, %r1, 0;
    @%p1 bra SYNC;
    mbarrier.init.shared::cta.b64 [full+0], 1;
    mbarrier.init.shared::cta.b64 [full+8], 1;
    fence.mbarrier_init.release.cluster;
SYNC:
    bar.sync 0;
    setp.ge.u32 %p2, %r1, 128;
    @%p2 bra CONSUMER;
    setmaxnreg.dec.sync.aligned.u32 40;
    setp.ge.u32 %p3, %r1, 32;
    @%p3 bra PRODUCER_DONE;
    elect.sync %r6|%p4, 0xffffffff;
    @!%p4 bra PRODUCER_DONE;
    mov.u64 %rd1, tmap_a;
    cvta.param.u64 %rd1, %rd1;
    mov.u64 %rd2, tmap_b;
    cvta.param.u64 %rd2, %rd2;
    mbarrier.arrive.expect_tx.shared::cta.b64 _, [full+0], 16384;
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sa+0], [%rd1, {0, %r5}], [full+0];
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sb+0], [%rd2, {0, %r4}], [full+0];
    mbarrier.arrive.expect_tx.shared::cta.b64 _, [full+8], 16384;
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sa+8192], [%rd1, {64, %r5}], [full+8];
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sb+8192], [%rd2, {64, %r4}], [full+8];
PRODUCER_DONE:
    ret;
CONSUMER:
    setmaxnreg.inc.sync.aligned.u32 232;
    setp.ne.u32 %p6, %r1, %r1;
    setp.eq.u32 %p7, %r1, %r1;
    mov.u32 %r7, sa;
    shr.u32 %r7, %r7, 4;
    cvt.u64.u32 %rd3, %r7;
    or.b64 %rd3, %rd3, 4611686293305294848;   // SBO 1024 (64 << 32) | 128B swizzle (1 << 62)
    mov.u32 %r8, sb;
    shr.u32 %r8, %r8, 4;
    cvt.u64.u32 %rd4, %r8;
    or.b64 %rd4, %rd4, 4611686293305294848;
WAIT0:
    mbarrier.try_wait.parity.shared::cta.b64 %p5, [full+0], 0;
    @!%p5 bra WAIT0;
    wgmma.fence.sync.aligned;
    @MMA 0 %p6@
    wgmma.commit_group.sync.aligned;
    wgmma.wait_group.sync.aligned 0;
WAIT1:
    mbarrier.try_wait.parity.shared::cta.b64 %p5, [full+8], 0;
    @!%p5 bra WAIT1;
    wgmma.fence.sync.aligned;
    @MMA 512 %p7@
    wgmma.commit_group.sync.aligned;
    wgmma.wait_group.sync.aligned 0;
    sub.u32 %r9, %r1, 128;
    shr.u32 %r10, %r9, 5;                 // warp
    and.b32 %r11, %r9, 31;                // lane
    shl.b32 %r12, %r10, 4;
    shr.u32 %r13, %r11, 2;
    add.u32 %r12, %r12, %r13;
    add.u32 %r12, %r12, %r5;              // row = m0 + 16 w + l / 4
    and.b32 %r14, %r11, 3;
    shl.b32 %r14, %r14, 1;
    add.u32 %r14, %r14, %r4;              // col = n0 + 2 (l % 4)
    mad.lo.u32 %r15, %r12, 128, %r14;
    ld.param.u64 %rd7, [out];
    cvta.to.global.u64 %rd7, %rd7;
    mul.wide.u32 %rd8, %r15, 4;
    add.s64 %rd9, %rd7, %rd8;
    @STORES@
    ret;
}
"""
PTX = _expand(PTX)

RING_K = 256
RING_PTX = r"""
.version 8.5
.target sm_90a
.address_size 64

// The same tile with a 2-stage ring over 4 k-tiles (K = 256): full[s] (1 arrival + TMA bytes) and
// empty[s] (128 consumer arrivals) barriers, parity waits on both sides; the consumer code comes
// first, so on the mock the producer only runs because waiting lanes yield.
.visible .entry ring_gemm(
    .param .align 64 .b8 tmap_a[128],
    .param .align 64 .b8 tmap_b[128],
    .param .u64 out
)
.maxnreg 168
{
    .reg .pred %p<8>;
    .reg .b32 %r<40>;
    .reg .b64 %rd<40>;
    .reg .f32 %f<32>;
    .shared .align 1024 .b8 sa[16384];
    .shared .align 1024 .b8 sb[16384];
    .shared .align 8 .b64 full[2];
    .shared .align 8 .b64 empty[2];

    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ctaid.y;
    shl.b32 %r4, %r2, 6;                  // n0
    shl.b32 %r5, %r3, 6;                  // m0
    setp.ne.u32 %p1, %r1, 0;
    @%p1 bra SYNC;
    mbarrier.init.shared::cta.b64 [full+0], 1;
    mbarrier.init.shared::cta.b64 [empty+0], 128;
    mbarrier.init.shared::cta.b64 [full+8], 1;
    mbarrier.init.shared::cta.b64 [empty+8], 128;
    fence.mbarrier_init.release.cluster;
SYNC:
    bar.sync 0;
    setp.lt.u32 %p2, %r1, 128;
    @%p2 bra PRODUCER;
    setmaxnreg.inc.sync.aligned.u32 232;
    setp.ne.u32 %p6, %r1, %r1;
    setp.eq.u32 %p7, %r1, %r1;
    mov.u32 %r7, sa;
    shr.u32 %r7, %r7, 4;
    cvt.u64.u32 %rd3, %r7;
    or.b64 %rd3, %rd3, 4611686293305294848;   // SBO 1024 (64 << 32) | 128B swizzle (1 << 62)
    mov.u32 %r8, sb;
    shr.u32 %r8, %r8, 4;
    cvt.u64.u32 %rd4, %r8;
    or.b64 %rd4, %rd4, 4611686293305294848;
CWAIT0:
    mbarrier.try_wait.parity.shared::cta.b64 %p5, [full+0], 0;
    @!%p5 bra CWAIT0;
    wgmma.fence.sync.aligned;
    @MMA 0 %p6@
    wgmma.commit_group.sync.aligned;
    wgmma.wait_group.sync.aligned 0;
    mbarrier.arrive.shared::cta.b64 _, [empty+0];
CWAIT1:
    mbarrier.try_wait.parity.shared::cta.b64 %p5, [full+8], 0;
    @!%p5 bra CWAIT1;
    wgmma.fence.sync.aligned;
    @MMA 512 %p7@
    wgmma.commit_group.sync.aligned;
    wgmma.wait_group.sync.aligned 0;
    mbarrier.arrive.shared::cta.b64 _, [empty+8];
CWAIT2:
    mbarrier.try_wait.parity.shared::cta.b64 %p5, [full+0], 1;
    @!%p5 bra CWAIT2;
    wgmma.fence.sync.aligned;
    @MMA 0 %p7@
    wgmma.commit_group.sync.aligned;
    wgmma.wait_group.sync.aligned 0;
    mbarrier.arrive.shared::cta.b64 _, [empty+0];
CWAIT3:
    mbarrier.try_wait.parity.shared::cta.b64 %p5, [full+8], 1;
    @!%p5 bra CWAIT3;
    wgmma.fence.sync.aligned;
    @MMA 512 %p7@
    wgmma.commit_group.sync.aligned;
    wgmma.wait_group.sync.aligned 0;
    mbarrier.arrive.shared::cta.b64 _, [empty+8];
    sub.u32 %r9, %r1, 128;
    shr.u32 %r10, %r9, 5;                 // warp
    and.b32 %r11, %r9, 31;                // lane
    shl.b32 %r12, %r10, 4;
    shr.u32 %r13, %r11, 2;
    add.u32 %r12, %r12, %r13;
    add.u32 %r12, %r12, %r5;              // row = m0 + 16 w + l / 4
    and.b32 %r14, %r11, 3;
    shl.b32 %r14, %r14, 1;
    add.u32 %r14, %r14, %r4;              // col = n0 + 2 (l % 4)
    mad.lo.u32 %r15, %r12, 128, %r14;
    ld.param.u64 %rd7, [out];
    cvta.to.global.u64 %rd7, %rd7;
    mul.wide.u32 %rd8, %r15, 4;
    add.s64 %rd9, %rd7, %rd8;
    @STORES@
    ret;
PRODUCER:
    setmaxnreg.dec.sync.aligned.u32 40;
    setp.ge.u32 %p3, %r1, 32;
    @%p3 bra PRODUCER_DONE;
    elect.sync %r6|%p4, 0xffffffff;
    @!%p4 bra PRODUCER_DONE;
    mov.u64 %rd1, tmap_a;
    cvta.param.u64 %rd1, %rd1;
    mov.u64 %rd2, tmap_b;
    cvta.param.u64 %rd2, %rd2;
    mbarrier.arrive.expect_tx.shared::cta.b64 _, [full+0], 16384;
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sa+0], [%rd1, {0, %r5}], [full+0];
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sb+0], [%rd2, {0, %r4}], [full+0];
    mbarrier.arrive.expect_tx.shared::cta.b64 _, [full+8], 16384;
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sa+8192], [%rd1, {64, %r5}], [full+8];
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sb+8192], [%rd2, {64, %r4}], [full+8];
PWAIT2:
    mbarrier.try_wait.parity.shared::cta.b64 %p5, [empty+0], 0;
    @!%p5 bra PWAIT2;
    mbarrier.arrive.expect_tx.shared::cta.b64 _, [full+0], 16384;
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sa+0], [%rd1, {128, %r5}], [full+0];
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sb+0], [%rd2, {128, %r4}], [full+0];
PWAIT3:
    mbarrier.try_wait.parity.shared::cta.b64 %p5, [empty+8], 0;
    @!%p5 bra PWAIT3;
    mbarrier.arrive.expect_tx.shared::cta.b64 _, [full+8], 16384;
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sa+8192], [%rd1, {192, %r5}], [full+8];
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [sb+8192], [%rd2, {192, %r4}], [full+8];
PRODUCER_DONE:
    ret;
}
"""
RING_PTX = _expand(RING_PTX)


def _maps(gpu, a, b):
    k = a.shape[1]
    a_va, b_va = gpu.upload(a), gpu.upload(b)
    ta = encode_tiled(a_va, "f16", [k, MN], [k * 2], [64, 64], swizzle=128)
    tb = encode_tiled(b_va, "f16", [k, MN], [k * 2], [64, 64], swizzle=128)
    return ta, tb


def test_producer_consumer_gemm(gpu):
    rng = np.random.default_rng(11)
    a = (rng.integers(-8, 9, (MN, K)) / 8).astype(np.float16)
    b = (rng.integers(-8, 9, (MN, K)) / 8).astype(np.float16)
    ta, tb = _maps(gpu, a, b)
    out = gpu.alloc(MN * MN * 4)
    module = ptx.parse(PTX)
    res = gpu.run(module, "pc_gemm", (2, 2), 256, [ta, tb, out])
    got = gpu.download(out, np.float32, MN * MN).reshape(MN, MN)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b.astype(np.float64).T, rtol=1e-6, atol=1e-6)
    assert res.ctas == 4


def test_producer_consumer_gemm_random_values(gpu):
    rng = np.random.default_rng(12)
    a = rng.standard_normal((MN, K)).astype(np.float16)
    b = rng.standard_normal((MN, K)).astype(np.float16)
    ta, tb = _maps(gpu, a, b)
    out = gpu.alloc(MN * MN * 4)
    gpu.run(ptx.parse(PTX), "pc_gemm", (2, 2), 256, [ta, tb, out])
    got = gpu.download(out, np.float32, MN * MN).reshape(MN, MN)
    np.testing.assert_allclose(got, a.astype(np.float32) @ b.astype(np.float32).T, rtol=1e-4, atol=1e-3)


def test_ring_of_stages_with_empty_barriers(gpu):
    """Two stages over four k-tiles: the producer waits for the consumers to free a stage, the
    consumers wait for the producer; the consumer code comes first in the kernel, so this runs
    only because lanes whose mbarrier wait failed yield to the others."""
    rng = np.random.default_rng(13)
    a = (rng.integers(-8, 9, (MN, RING_K)) / 8).astype(np.float16)
    b = (rng.integers(-8, 9, (MN, RING_K)) / 8).astype(np.float16)
    ta, tb = _maps(gpu, a, b)
    out = gpu.alloc(MN * MN * 4)
    gpu.run(ptx.parse(RING_PTX), "ring_gemm", (2, 2), 256, [ta, tb, out], max_steps=200_000)
    got = gpu.download(out, np.float32, MN * MN).reshape(MN, MN)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b.astype(np.float64).T, rtol=1e-6, atol=1e-6)


def test_ring_deadlock_times_out(gpu):
    """An empty barrier that expects one arrival more than the consumers make: the producer
    waits for it forever, the consumers wait for the tile it never loads: LaunchTimeout, not a hang."""
    bad = RING_PTX.replace("[empty+0], 128;", "[empty+0], 129;")
    assert bad != RING_PTX
    a = np.zeros((MN, RING_K), np.float16)
    ta, tb = _maps(gpu, a, a)
    with pytest.raises(ptx.LaunchTimeout):
        gpu.run(ptx.parse(bad), "ring_gemm", (2, 2), 256, [ta, tb, gpu.alloc(MN * MN * 4)], max_steps=5_000)


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas (CUDA toolkit) not installed")
@pytest.mark.parametrize("src", [PTX, RING_PTX], ids=["one-stage-per-tile", "ring"])
def test_kernel_assembles(tmp_path, src):
    p = tmp_path / "pc.ptx"
    p.write_text(src)
    r = subprocess.run(["ptxas", "-arch=sm_90a", str(p), "-o", str(tmp_path / "pc.cubin")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
