/* Elementwise kernels: float/int/64-bit/half math, one work-item per element. */
#include "common.h"

__kernel void vec_add_f32(__global const float *a, __global const float *b, __global float *c, uint n) {
  uint i = gid(0);
  if (i < n) c[i] = a[i] + b[i];
}

__kernel void saxpy(float alpha, __global const float *x, __global float *y, uint n) {
  uint i = gid(0);
  if (i < n) y[i] = alpha * x[i] + y[i];
}

__kernel void int_affine(__global const int *a, __global int *out, uint n) {
  uint i = gid(0);
  if (i < n) out[i] = a[i] * 3 - 7 + (a[i] >> 2);
}

__kernel void fma_sqrt_f32(__global const float *a, __global const float *b, __global const float *c,
                           __global float *out, uint n) {
  uint i = gid(0);
  if (i < n) out[i] = __builtin_fmaf(__builtin_sqrtf(__builtin_fabsf(a[i])), b[i], c[i]);
}

__kernel void bitops_u32(__global const uint *a, __global const uint *b, __global uint *out, uint n) {
  uint i = gid(0);
  if (i >= n) return;
  uint x = a[i], y = b[i];
  out[4 * i + 0] = (x ^ (y << 3)) | (y >> 29);
  out[4 * i + 1] = __builtin_popcount(x);
  out[4 * i + 2] = x ? __builtin_clz(x) : 32u;
  out[4 * i + 3] = (x & 0xFFFF0000u) | ((x >> 8) & 0xFFu) | (y & 0x0000FF00u);
}

__kernel void minmax_select(__global const float *a, __global const float *b, __global float *out, uint n) {
  uint i = gid(0);
  if (i < n) out[i] = __builtin_fmaxf(__builtin_fminf(a[i], b[i]), -0.5f) + (a[i] > b[i] ? 1.0f : 0.0f);
}

__kernel void mul_add_u64(__global const ulong *a, __global const ulong *b, __global ulong *out, uint n) {
  uint i = gid(0);
  if (i < n) out[i] = a[i] * b[i] + (a[i] >> 7) - (b[i] << 5);
}

__kernel void divmod_u64(__global const ulong *a, __global const ulong *b, __global ulong *q, __global ulong *r, uint n) {
  uint i = gid(0);
  if (i < n) { q[i] = a[i] / b[i]; r[i] = a[i] % b[i]; }
}

__kernel void div_s64(__global const long *a, __global const long *b, __global long *q, __global long *r, uint n) {
  uint i = gid(0);
  if (i < n) { q[i] = a[i] / b[i]; r[i] = a[i] % b[i]; }
}

__kernel void fma_f64(__global const double *a, __global const double *b, __global const double *c, __global double *out, uint n) {
  uint i = gid(0);
  if (i < n) out[i] = a[i] * b[i] + c[i] / 4.0;
}

__kernel void half_axpb(__global const half *a, __global const half *b, __global const half *c, __global half *out, uint n) {
  uint i = gid(0);
  if (i < n) out[i] = a[i] * b[i] + c[i];
}

__kernel void half2_packed(__global const half2 *a, __global const half2 *b, __global half2 *out, uint n) {
  uint i = gid(0);
  if (i < n) { half2 x = a[i], y = b[i]; out[i] = x * y - (x + y); }
}

__kernel void convert_types(__global const float *a, __global int *as_i, __global half *as_h, __global float *back, uint n) {
  uint i = gid(0);
  if (i >= n) return;
  float x = a[i];
  as_i[i] = (int)x;                /* truncation toward zero */
  half h = (half)x;                /* round to nearest even */
  as_h[i] = h;
  back[i] = (float)h + (float)(int)x;
}
