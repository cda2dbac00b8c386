"""mbarrier phases with partial arrivals, cvt to tf32 (hand-worked roundings), wmma faults
(misaligned matrix, partial warp) and random-valued wmma against numpy, stmatrix.trans."""
from __future__ import annotations

import numpy as np
import pytest

from hwdrv.mock.nvidia import ptx

from test_ptx_helpers import gpu, run_op  # noqa: F401

HEAD = ".version 8.0\n.target sm_90\n.address_size 64\n"

MBARRIER = HEAD + """
.visible .entry k(.param .u64 out)
{
    .reg .b32 %r<12>;
    .reg .b64 %rd<8>;
    .reg .pred %p<6>;
    .shared .align 8 .b8 bar[8];
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, bar;
    setp.eq.u32 %p1, %r1, 0;
    @%p1 mbarrier.init.shared.b64 [%r2], 48;
    bar.sync 0;
    setp.lt.u32 %p2, %r1, 16;
    @%p2 mbarrier.arrive.shared.b64 %rd2, [%r2], 2;
    bar.sync 0;
    mbarrier.test_wait.parity.shared.b64 %p3, [%r2], 0;
    bar.sync 0;
    setp.ge.u32 %p2, %r1, 48;
    @%p2 mbarrier.arrive.shared.b64 %rd3, [%r2];
    bar.sync 0;
    mbarrier.test_wait.parity.shared.b64 %p4, [%r2], 0;
    mbarrier.try_wait.parity.shared.b64 %p5, [%r2], 1;
    selp.u32 %r3, 1, 0, %p3;
    selp.u32 %r4, 2, 0, %p4;
    selp.u32 %r5, 4, 0, %p5;
    or.b32 %r6, %r3, %r4;
    or.b32 %r6, %r6, %r5;
    mul.wide.u32 %rd4, %r1, 4;
    add.s64 %rd5, %rd1, %rd4;
    st.global.u32 [%rd5], %r6;
    ret;
}
"""


def test_mbarrier_phase_completes_only_when_all_expected_arrivals_came(gpu):
    """48 expected: 16 threads arriving with count 2 leave the phase open (parity-0 wait
    false); 16 more single arrivals complete it (parity-0 wait true, parity-1 still false)."""
    m = ptx.parse(MBARRIER)
    out = gpu.alloc(4 * 64)
    gpu.run(m, "k", 1, 64, [out])
    assert set(gpu.download(out, np.uint32, 64).tolist()) == {2}


def test_mbarrier_too_many_arrivals_is_a_fault(gpu):
    m = ptx.parse(MBARRIER.replace("mbarrier.init.shared.b64 [%r2], 48;", "mbarrier.init.shared.b64 [%r2], 8;"))
    with pytest.raises(ptx.IllegalInstruction, match="more arrivals"):
        gpu.run(m, "k", 1, 64, [gpu.alloc(256)])


# cvt to tf32 (10 fraction bits, ulp of [1, 2) = 2**-10), worked by hand:
#   1 + 2**-11     : a tie        -> rna: away (1 + 2**-10), rn: even (1.0), rz: 1.0
#   1 + 3 * 2**-11 : a tie        -> rna and rn: 1 + 2**-9 (even), rz: 1 + 2**-10
#   -(1 + 2**-11)  : a tie        -> rna: -(1 + 2**-10), rn: -1.0, rz: -1.0
#   1 + 2**-12     : below half   -> 1.0 in every mode
#   (f32 bits: 1.0 = 0x3F800000, 2**-11 = 0x1000 units of the last f32 bit)
#   max f32        : above the largest tf32 (2 - 2**-10) * 2**127 -> rna/rn: inf, rz: the largest
TF32_CASES = [
    (0x3F801000, {"rna": 0x3F802000, "rn": 0x3F800000, "rz": 0x3F800000}),
    (0x3F803000, {"rna": 0x3F804000, "rn": 0x3F804000, "rz": 0x3F802000}),
    (0xBF801000, {"rna": 0xBF802000, "rn": 0xBF800000, "rz": 0xBF800000}),
    (0x3F800800, {"rna": 0x3F800000, "rn": 0x3F800000, "rz": 0x3F800000}),
    (0x7F7FFFFF, {"rna": 0x7F800000, "rn": 0x7F800000, "rz": 0x7F7FE000}),
]


@pytest.mark.parametrize("mode", ["rna", "rn", "rz"])
def test_cvt_tf32_roundings(gpu, mode):
    a = np.array([c[0] for c in TF32_CASES], np.uint32)
    (d,) = run_op(gpu, f"cvt.{mode}.tf32.f32 %d, %a;", [a], [np.uint32])
    assert [hex(v) for v in d[:len(a)].tolist()] == [hex(c[1][mode]) for c in TF32_CASES]


def test_cvt_tf32_satfinite_clamps_overflow(gpu):
    a = np.array([0x7F7FFFFF, 0xFF7FFFFF], np.uint32)
    (d,) = run_op(gpu, "cvt.rn.satfinite.tf32.f32 %d, %a;", [a], [np.uint32])
    assert d[:2].tolist() == [0x7F7FE000, 0xFF7FE000]


WMMA = HEAD + """
.visible .entry k(.param .u64 a, .param .u64 b, .param .u64 c, .param .u64 d)
{
    .reg .b32 %r<40>;
    .reg .f32 %f<20>;
    .reg .b64 %rd<8>;
    ld.param.u64 %rd1, [a];
    ld.param.u64 %rd2, [b];
    ld.param.u64 %rd3, [c];
    ld.param.u64 %rd4, [d];
    wmma.load.a.sync.aligned.row.m16n16k16.global.f16 {%r0, %r1, %r2, %r3, %r4, %r5, %r6, %r7}, [%rd1], 16;
    wmma.load.b.sync.aligned.col.m16n16k16.global.f16 {%r8, %r9, %r10, %r11, %r12, %r13, %r14, %r15}, [%rd2], 16;
    wmma.load.c.sync.aligned.row.m16n16k16.global.f32 {%f0, %f1, %f2, %f3, %f4, %f5, %f6, %f7}, [%rd3], 16;
    wmma.mma.sync.aligned.row.col.m16n16k16.f32.f32 {%f8, %f9, %f10, %f11, %f12, %f13, %f14, %f15}, {%r0, %r1, %r2, %r3, %r4, %r5, %r6, %r7}, {%r8, %r9, %r10, %r11, %r12, %r13, %r14, %r15}, {%f0, %f1, %f2, %f3, %f4, %f5, %f6, %f7};
    wmma.store.d.sync.aligned.row.m16n16k16.global.f32 [%rd4], {%f8, %f9, %f10, %f11, %f12, %f13, %f14, %f15}, 16;
    ret;
}
"""


def test_wmma_random_values_match_numpy(gpu):
    rng = np.random.default_rng(21)
    A = rng.standard_normal((16, 16)).astype(np.float16)
    Bt = rng.standard_normal((16, 16)).astype(np.float16)      # col-major B = B.T row-major
    C = rng.standard_normal((16, 16)).astype(np.float32)
    m = ptx.parse(WMMA)
    d = gpu.alloc(1024, align=256)
    gpu.run(m, "k", 1, 32, [gpu.upload(A), gpu.upload(Bt), gpu.upload(C), d])
    want = A.astype(np.float64) @ Bt.T.astype(np.float64) + C
    np.testing.assert_allclose(gpu.download(d, np.float32, 256).reshape(16, 16), want, rtol=1e-5, atol=1e-5)


def test_wmma_misaligned_matrix_faults(gpu):
    m = ptx.parse(WMMA)
    a = gpu.alloc(1024, align=256)
    with pytest.raises(ptx.AddressSpaceFault) as ei:
        gpu.run(m, "k", 1, 32, [a + 16, a, a, a])
    assert ei.value.reason == "misaligned" and ei.value.instruction.startswith("wmma.load.a")


def test_wmma_mma_by_a_partial_warp_is_illegal(gpu):
    m = ptx.parse(WMMA)
    a = gpu.alloc(1024, align=256)
    with pytest.raises(ptx.IllegalInstruction, match="partial warp"):
        gpu.run(m, "k", 1, 16, [a, a, a, a])


def test_stmatrix_trans_is_the_transpose(gpu):
    """stmatrix.x1.trans: lane t's register holds row t/4, columns 2(t%4), 2(t%4)+1 of the
    fragment; .trans stores the transposed 8x8 matrix at the 8 row addresses of lanes 0..7."""
    m = ptx.parse(HEAD + """
.visible .entry k(.param .u64 src, .param .u64 out)
{
    .reg .b32 %r<8>;
    .reg .b64 %rd<8>;
    .shared .align 16 .b8 tile[128];
    ld.param.u64 %rd1, [src];
    ld.param.u64 %rd2, [out];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd3, %r1, 4;
    add.s64 %rd4, %rd1, %rd3;
    ld.global.u32 %r2, [%rd4];
    and.b32 %r3, %r1, 7;
    shl.b32 %r3, %r3, 4;
    mov.u32 %r4, tile;
    add.s32 %r4, %r4, %r3;
    stmatrix.sync.aligned.m8n8.x1.trans.shared.b16 [%r4], {%r2};
    bar.sync 0;
    shl.b32 %r5, %r1, 2;
    ld.shared.u32 %r6, [%r5];
    add.s64 %rd5, %rd2, %rd3;
    st.global.u32 [%rd5], %r6;
    ret;
}
""")
    src = np.arange(32, dtype=np.uint32) * 0x00020002 + 0x00010000     # lo = 2t, hi = 2t + 1
    out = gpu.alloc(128)
    gpu.run(m, "k", 1, 32, [gpu.upload(src), out])
    frag = np.zeros((8, 8), np.uint16)        # fragment element (row, col) = value
    for t in range(32):
        frag[t // 4, 2 * (t % 4)] = 2 * t
        frag[t // 4, 2 * (t % 4) + 1] = 2 * t + 1
    stored = gpu.download(out, np.uint16, 64).reshape(8, 8)
    assert np.array_equal(stored, frag.T)


CP_ASYNC_ARRIVE = HEAD + """
.visible .entry k(.param .u64 src, .param .u64 out)
{
    .reg .b32 %r<12>;
    .reg .b64 %rd<8>;
    .reg .pred %p<4>;
    .shared .align 8 .b8 bar[8];
    .shared .align 16 .b8 buf[256];
    ld.param.u64 %rd1, [src];
    ld.param.u64 %rd2, [out];
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, bar;
    setp.eq.u32 %p1, %r1, 0;
    @%p1 mbarrier.init.shared.b64 [%r2], 64;
    bar.sync 0;
    mul.wide.u32 %rd3, %r1, 4;
    add.s64 %rd4, %rd1, %rd3;
    mov.u32 %r3, buf;
    shl.b32 %r4, %r1, 2;
    add.s32 %r5, %r3, %r4;
    cp.async.ca.shared.global [%r5], [%rd4], 4;
    cp.async.mbarrier.arrive.MODE.shared.b64 [%r2];
    mbarrier.test_wait.parity.shared.b64 %p2, [%r2], 0;
    selp.u32 %r6, 1, 0, %p2;
    xor.b32 %r7, %r1, 1;
    shl.b32 %r7, %r7, 2;
    add.s32 %r7, %r3, %r7;
    ld.shared.u32 %r8, [%r7];
    add.s32 %r8, %r8, %r6;
    add.s64 %rd5, %rd2, %rd3;
    st.global.u32 [%rd5], %r8;
    ret;
}
"""


@pytest.mark.parametrize("noinc", [True, False])
def test_cp_async_mbarrier_arrive(gpu, noinc):
    """.noinc: each thread's arrival counts toward the 64 expected, so the phase completes;
    without it the pending count is raised first, so the phase stays open. Either way the
    copied data (a neighbour's element) is in shared memory."""
    text = CP_ASYNC_ARRIVE.replace(".MODE", ".noinc" if noinc else "")
    src = np.arange(64, dtype=np.uint32) * 10
    out = gpu.alloc(256)
    gpu.run(ptx.parse(text), "k", 1, 64, [gpu.upload(src), out])
    assert gpu.download(out, np.uint32, 64).tolist() == [int(src[t ^ 1]) + int(noinc) for t in range(64)]


TX = HEAD + """
.visible .entry k(.param .u64 out)
{
    .reg .b32 %r<8>;
    .reg .b64 %rd<8>;
    .reg .pred %p<4>;
    .shared .align 8 .b8 bar[8];
    ld.param.u64 %rd1, [out];
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, bar;
    setp.eq.u32 %p1, %r1, 0;
    @%p1 mbarrier.init.shared.b64 [%r2], 32;
    bar.sync 0;
    mbarrier.arrive.expect_tx.shared.b64 %rd2, [%r2], 16;
    mbarrier.test_wait.parity.shared.b64 %p2, [%r2], 0;
    @%p1 mbarrier.complete_tx.shared.b64 [%r2], 500;
    mbarrier.test_wait.parity.shared.b64 %p3, [%r2], 0;
    @%p1 mbarrier.complete_tx.shared.b64 [%r2], 12;
    mbarrier.test_wait.parity.shared.b64 %p1, [%r2], 0;
    selp.u32 %r3, 1, 0, %p2;
    selp.u32 %r4, 2, 0, %p3;
    selp.u32 %r5, 4, 0, %p1;
    or.b32 %r6, %r3, %r4;
    or.b32 %r6, %r6, %r5;
    mul.wide.u32 %rd3, %r1, 4;
    add.s64 %rd4, %rd1, %rd3;
    st.global.u32 [%rd4], %r6;
    ret;
}
"""


def test_mbarrier_phase_waits_for_its_transactions(gpu):
    """32 arrivals that each expect 16 bytes leave 512 bytes of transactions pending: the phase
    completes only when complete_tx has accounted for all 512 (500, then 12)."""
    out = gpu.alloc(4 * 32)
    gpu.run(ptx.parse(TX), "k", 1, 32, [out])
    assert set(gpu.download(out, np.uint32, 32).tolist()) == {4}
