/* Work-group reductions and scans in LDS with barriers; global atomics to combine groups. */
#include "common.h"
#define WG 256

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void reduce_sum_lds_f32(__global const float *in, __global float *partial, uint n) {
  __local float s[WG];
  uint l = lid(0), i = gid(0);
  s[l] = i < n ? in[i] : 0.0f;
  lbarrier();
  for (uint off = WG / 2; off > 0; off >>= 1) {
    if (l < off) s[l] += s[l + off];
    lbarrier();
  }
  if (l == 0) partial[grp(0)] = s[0];
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void reduce_max_lds_i32(__global const int *in, __global int *partial, uint n) {
  __local int s[WG];
  uint l = lid(0), i = gid(0);
  s[l] = i < n ? in[i] : (int)0x80000000;
  lbarrier();
  for (uint off = WG / 2; off > 0; off >>= 1) {
    if (l < off) s[l] = imax(s[l], s[l + off]);
    lbarrier();
  }
  if (l == 0) partial[grp(0)] = s[0];
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void reduce_sum_atomic_u32(__global const uint *in, __global uint *total, uint n) {
  __local uint s[WG];
  uint l = lid(0), i = gid(0);
  s[l] = i < n ? in[i] : 0u;
  lbarrier();
  for (uint off = WG / 2; off > 0; off >>= 1) {
    if (l < off) s[l] += s[l + off];
    lbarrier();
  }
  if (l == 0) __opencl_atomic_fetch_add((volatile __global atomic_uint *)total, s[0],
                                        memory_order_relaxed, memory_scope_device);
}

/* inclusive Hillis-Steele scan of each 256-element block */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void scan_block_i32(__global const int *in, __global int *out) {
  __local int s[2][WG];
  uint l = lid(0), i = gid(0);
  int cur = 0;
  s[0][l] = in[i];
  lbarrier();
  for (uint off = 1; off < WG; off <<= 1) {
    int v = s[cur][l];
    if (l >= off) v += s[cur][l - off];
    s[cur ^ 1][l] = v;
    cur ^= 1;
    lbarrier();
  }
  out[i] = s[cur][l];
}

/* 64-bin histogram: LDS atomics per group, then global atomics */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void histogram64(__global const uint *in, __global uint *hist, uint n) {
  __local uint h[64];
  uint l = lid(0), i = gid(0);
  if (l < 64) h[l] = 0;
  lbarrier();
  if (i < n) __opencl_atomic_fetch_add((volatile __local atomic_uint *)&h[in[i] & 63u], 1u,
                                       memory_order_relaxed, memory_scope_work_group);
  lbarrier();
  if (l < 64 && h[l]) __opencl_atomic_fetch_add((volatile __global atomic_uint *)&hist[l], h[l],
                                                memory_order_relaxed, memory_scope_device);
}

/* reverse each block through LDS */
__kernel __attribute__((reqd_work_group_size(128, 1, 1)))
void reverse_block(__global const float *in, __global float *out) {
  __local float s[128];
  uint l = lid(0);
  s[l] = in[gid(0)];
  lbarrier();
  out[gid(0)] = s[127 - l];
}

/* 1-D 3-point stencil with halo cells in LDS; edges clamp */
__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void stencil3(__global const float *in, __global float *out, uint n) {
  __local float s[66];
  uint l = lid(0), i = gid(0);
  s[l + 1] = in[umin(i, n - 1)];
  if (l == 0) s[0] = in[i == 0 ? 0 : i - 1];
  if (l == 63) s[65] = in[umin(i + 1, n - 1)];
  lbarrier();
  if (i < n) out[i] = 0.25f * s[l] + 0.5f * s[l + 1] + 0.25f * s[l + 2];
}
