"""mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 on the mock against numpy, with the
fragment layout of the PTX ISA ("Matrix Fragments for mma.m16n8k8", .tf32 elements):
a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4); b0 (t, g), b1 (t+4, g); c as for f16
(g = laneid >> 2, t = laneid % 4). The tensor core reads 19 bits of each f32 pattern (sign,
exponent, 10 fraction bits): inputs here carry low bits that must not count."""
from __future__ import annotations

import numpy as np
import pytest

from hwdrv.mock.nvidia import ptx

from test_ptx_helpers import gpu  # noqa: F401

HEAD = ".version 8.0\n.target sm_90\n.address_size 64\n"

KERNEL = HEAD + """
.visible .entry k(.param .u64 frag, .param .u64 out)
{
    .reg .b32 %r<8>;
    .reg .f32 %f<8>;
    .reg .b64 %rd<8>;
    mov.u32 %r0, %laneid;
    ld.param.u64 %rd0, [frag];
    mul.wide.u32 %rd1, %r0, 48;
    add.u64 %rd2, %rd0, %rd1;
    ld.global.v4.u32 {%r1, %r2, %r3, %r4}, [%rd2];     // a0..a3
    ld.global.v2.u32 {%r5, %r6}, [%rd2+16];            // b0 b1
    ld.global.v4.f32 {%f4, %f5, %f6, %f7}, [%rd2+32];  // c0..c3
    mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%f0,%f1,%f2,%f3}, {%r1,%r2,%r3,%r4}, {%r5,%r6}, {%f4,%f5,%f6,%f7};
    ld.param.u64 %rd3, [out];
    mul.wide.u32 %rd4, %r0, 16;
    add.u64 %rd5, %rd3, %rd4;
    st.global.v4.f32 [%rd5], {%f0,%f1,%f2,%f3};
    ret;
}
"""


def _tf32(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32).view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)


def test_mma_m16n8k8_tf32(gpu):
    rng = np.random.default_rng(5)
    A = rng.standard_normal((16, 8)).astype(np.float32)
    B = rng.standard_normal((8, 8)).astype(np.float32)
    C = rng.standard_normal((16, 8)).astype(np.float32)
    frag = np.zeros((32, 12), np.float32)
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        frag[lane] = [A[g, t], A[g + 8, t], A[g, t + 4], A[g + 8, t + 4], B[t, g], B[t + 4, g], 0, 0,
                      C[g, 2 * t], C[g, 2 * t + 1], C[g + 8, 2 * t], C[g + 8, 2 * t + 1]]
    out = gpu.alloc(32 * 16)
    gpu.run(ptx.parse(KERNEL), "k", 1, 32, [gpu.upload(frag), out])
    D = gpu.download(out, np.float32, 128).reshape(32, 4)
    ref = _tf32(A) @ _tf32(B) + C.astype(np.float64)
    full = A.astype(np.float64) @ B.astype(np.float64) + C.astype(np.float64)
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        want = [ref[g, 2 * t], ref[g, 2 * t + 1], ref[g + 8, 2 * t], ref[g + 8, 2 * t + 1]]
        np.testing.assert_allclose(D[lane], want, rtol=1e-6, atol=1e-6)
    assert not np.allclose(ref, full, rtol=1e-7, atol=0)     # the dropped bits were there to drop


@pytest.mark.parametrize("bad", ["m16n8k16.row.col.f32.tf32.tf32.f32", "m16n8k8.row.col.f16.tf32.tf32.f16"])
def test_tf32_shapes_the_isa_does_not_have(gpu, bad):
    src = KERNEL.replace("m16n8k8.row.col.f32.tf32.tf32.f32", bad)
    with pytest.raises(ptx.IllegalInstruction, match="not supported"):
        gpu.run(ptx.parse(src), "k", 1, 32, [gpu.alloc(32 * 48), gpu.alloc(32 * 16)])
