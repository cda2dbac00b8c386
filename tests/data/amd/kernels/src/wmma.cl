/* GEMM on the RDNA3 matrix cores: C(MxN, f32) = A(MxK, f16) * B(KxN, f16), one wave32 per 16x16
 * tile of C, using v_wmma_f32_16x16x16_f16. Register layout (RDNA3 wave32): lane l holds row
 * (l % 16) of the A tile and column (l % 16) of the B tile (lanes 16-31 repeat lanes 0-15);
 * result element v of lane l is C[2*v + l/16][l % 16]. */
#include "common.h"
typedef half half16 __attribute__((ext_vector_type(16)));
typedef float float8_t __attribute__((ext_vector_type(8)));

__kernel __attribute__((reqd_work_group_size(32, 1, 1)))
void wmma_gemm_f16_f32(__global const half *A, __global const half *B, __global float *C, uint M, uint N, uint K) {
  uint lane = lid(0), l16 = lane % 16;
  uint tile_n = grp(0), tile_m = grp(1);
  uint row0 = tile_m * 16, col0 = tile_n * 16;
  float8_t acc = (float8_t)(0.0f);
  for (uint k0 = 0; k0 < K; k0 += 16) {
    half16 a, b;
    for (int e = 0; e < 16; e++) {
      a[e] = A[(row0 + l16) * K + k0 + e];
      b[e] = B[(k0 + e) * N + col0 + l16];
    }
    acc = __builtin_amdgcn_wmma_f32_16x16x16_f16_w32(a, b, acc);
  }
  for (int v = 0; v < 8; v++) C[(row0 + 2 * v + lane / 16) * N + col0 + l16] = acc[v];
}
