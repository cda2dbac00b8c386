#include <cuda_fp16.h>
#include <cuda_bf16.h>
// One warp computes D(16x8) = A(16x16) * B(16x8) + C with mma.sync m16n8k16 (inline PTX),
// fragments gathered from row-major global arrays per the PTX ISA fragment layout.
extern "C" __global__ void mma_f16_f32(const __half* A, const __half* B, const float* C, float* D) {
    unsigned lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    unsigned a[4], b[2];
    float c[4], d[4];
    for (int r = 0; r < 4; ++r) {
        int row = g + ((r & 1) ? 8 : 0), col = t * 2 + ((r & 2) ? 8 : 0);
        __half2 h = __halves2half2(A[row * 16 + col], A[row * 16 + col + 1]);
        a[r] = *(unsigned*)&h;
    }
    for (int r = 0; r < 2; ++r) {
        int row = t * 2 + (r ? 8 : 0);
        __half2 h = __halves2half2(B[row * 8 + g], B[(row + 1) * 8 + g]);
        b[r] = *(unsigned*)&h;
    }
    for (int r = 0; r < 4; ++r) c[r] = C[(g + (r >= 2 ? 8 : 0)) * 8 + t * 2 + (r & 1)];
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]),
                   "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
    for (int r = 0; r < 4; ++r) D[(g + (r >= 2 ? 8 : 0)) * 8 + t * 2 + (r & 1)] = d[r];
}
extern "C" __global__ void mma_bf16_f32(const __nv_bfloat16* A, const __nv_bfloat16* B, const float* C, float* D) {
    unsigned lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    unsigned a[4], b[2];
    float c[4], d[4];
    for (int r = 0; r < 4; ++r) {
        int row = g + ((r & 1) ? 8 : 0), col = t * 2 + ((r & 2) ? 8 : 0);
        __nv_bfloat162 h = __halves2bfloat162(A[row * 16 + col], A[row * 16 + col + 1]);
        a[r] = *(unsigned*)&h;
    }
    for (int r = 0; r < 2; ++r) {
        int row = t * 2 + (r ? 8 : 0);
        __nv_bfloat162 h = __halves2bfloat162(B[row * 8 + g], B[(row + 1) * 8 + g]);
        b[r] = *(unsigned*)&h;
    }
    for (int r = 0; r < 4; ++r) c[r] = C[(g + (r >= 2 ? 8 : 0)) * 8 + t * 2 + (r & 1)];
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]),
                   "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
    for (int r = 0; r < 4; ++r) D[(g + (r >= 2 ? 8 : 0)) * 8 + t * 2 + (r & 1)] = d[r];
}
// f16 accumulator, A loaded with ldmatrix.x4 from shared memory, B with ldmatrix.x2.trans
// from a row-major (k, n) shared tile.
extern "C" __global__ void mma_ldmatrix_f16(const __half* A, const __half* B, const __half* C, __half* D) {
    __shared__ __align__(16) __half sA[16 * 16];
    __shared__ __align__(16) __half sB[16 * 8];
    unsigned lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    for (int k = lane; k < 256; k += 32) sA[k] = A[k];
    for (int k = lane; k < 128; k += 32) sB[k] = B[k];
    __syncwarp();
    unsigned a[4], b[2], c[2], d[2];
    // x4: lanes 0-7 rows 0-7 cols 0-7, 8-15 rows 8-15 cols 0-7, 16-23 rows 0-7 cols 8-15, 24-31 rows 8-15 cols 8-15
    unsigned arow = (lane & 15), acol = (lane >> 4) * 8;
    unsigned aaddr = (unsigned)__cvta_generic_to_shared(&sA[arow * 16 + acol]);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3]) : "r"(aaddr));
    unsigned brow = lane & 15;
    unsigned baddr = (unsigned)__cvta_generic_to_shared(&sB[brow * 8]);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];"
                 : "=r"(b[0]), "=r"(b[1]) : "r"(baddr));
    for (int r = 0; r < 2; ++r) {
        __half2 h = __halves2half2(C[(g + 8 * r) * 8 + t * 2], C[(g + 8 * r) * 8 + t * 2 + 1]);
        c[r] = *(unsigned*)&h;
    }
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f16.f16.f16.f16 {%0,%1}, {%2,%3,%4,%5}, {%6,%7}, {%8,%9};"
                 : "=r"(d[0]), "=r"(d[1])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(c[0]), "r"(c[1]));
    for (int r = 0; r < 2; ++r) {
        __half2 h = *(__half2*)&d[r];
        D[(g + 8 * r) * 8 + t * 2] = __low2half(h);
        D[(g + 8 * r) * 8 + t * 2 + 1] = __high2half(h);
    }
}
