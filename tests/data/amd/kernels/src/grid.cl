/* 2-D and 3-D grids, non-uniform work-groups (hidden remainder arguments), matrix kernels. */
#include "common.h"

/* out[z][y][x] = x + 1000*y + 1000000*z over a 3-D grid whose size is not a multiple of the group */
__kernel void grid3d_index(__global uint *out) {
  uint x = gid(0), y = gid(1), z = gid(2);
  uint w = gsize(0), h = gsize(1);
  out[(z * h + y) * w + x] = x + 1000u * y + 1000000u * z;
}

/* per work-item: actual local size, number of groups and global size in each dimension */
__kernel void grid_queries(__global uint *out) {
  uint x = gid(0), y = gid(1), z = gid(2);
  uint idx = (z * gsize(1) + y) * gsize(0) + x;
  __global uint *o = out + 9 * idx;
  for (int d = 0; d < 3; d++) { o[d] = lsize(d); o[3 + d] = ngroups(d); o[6 + d] = gsize(d); }
}

/* naive C = A(MxK) * B(KxN), one work-item per output */
__kernel void matmul_naive(__global const float *A, __global const float *B, __global float *C, uint M, uint N, uint K) {
  uint col = gid(0), row = gid(1);
  if (row >= M || col >= N) return;
  float acc = 0.0f;
  for (uint k = 0; k < K; k++) acc = __builtin_fmaf(A[row * K + k], B[k * N + col], acc);
  C[row * N + col] = acc;
}

/* transpose through a padded 16x16 LDS tile */
__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void transpose_lds(__global const float *in, __global float *out, uint rows, uint cols) {
  __local float tile[16][17];
  uint x = gid(0), y = gid(1);
  if (x < cols && y < rows) tile[lid(1)][lid(0)] = in[y * cols + x];
  lbarrier();
  uint tx = grp(1) * 16 + lid(0), ty = grp(0) * 16 + lid(1);
  if (tx < rows && ty < cols) out[ty * rows + tx] = tile[lid(0)][lid(1)];
}

/* 3-D box sum: out = sum of the 3x3x3 neighbourhood (clamped) of a D*H*W volume */
__kernel void box3d(__global const float *in, __global float *out, uint W, uint H, uint D) {
  int x = gid(0), y = gid(1), z = gid(2);
  if (x >= (int)W || y >= (int)H || z >= (int)D) return;
  float s = 0.0f;
  for (int dz = -1; dz <= 1; dz++)
    for (int dy = -1; dy <= 1; dy++)
      for (int dx = -1; dx <= 1; dx++) {
        int xx = iclamp(x + dx, 0, (int)W - 1), yy = iclamp(y + dy, 0, (int)H - 1), zz = iclamp(z + dz, 0, (int)D - 1);
        s += in[(zz * H + yy) * W + xx];
      }
  out[(z * H + y) * W + x] = s;
}
