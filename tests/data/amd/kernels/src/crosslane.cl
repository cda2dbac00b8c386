/* Cross-lane operations inside a wave32 (what OpenCL's sub_group_* functions compile to in ROCm's
 * device libraries: ds_bpermute, DPP, ds_swizzle, v_permlane*, ballot, readfirstlane). */
#include "common.h"

/* butterfly all-reduce through ds_bpermute: every lane ends with the wave's sum */
__kernel void wave_allreduce_bpermute(__global const int *in, __global int *out) {
  int v = in[gid(0)];
  uint lane = lane_id();
  for (uint m = 16; m > 0; m >>= 1) v += shfl(v, lane ^ m);
  out[gid(0)] = v;
}

/* inclusive prefix sum over the wave (shuffle up) */
__kernel void wave_scan_bpermute(__global const int *in, __global int *out) {
  int v = in[gid(0)];
  uint lane = lane_id();
  for (uint off = 1; off < 32; off <<= 1) {
    int t = shfl(v, lane >= off ? lane - off : lane);
    if (lane >= off) v += t;
  }
  out[gid(0)] = v;
}

/* per wave: bitmask of lanes with a positive value, its popcount, and the first lane's value */
__kernel void wave_ballot(__global const int *in, __global uint *mask, __global uint *count, __global int *first) {
  int v = in[gid(0)];
  uint b = __builtin_amdgcn_ballot_w32(v > 0);
  uint w = gid(0) / 32;
  if (lane_id() == 0) { mask[w] = b; count[w] = __builtin_popcount(b); }
  int f = __builtin_amdgcn_readfirstlane(v);
  if (lane_id() == 31) first[w] = f;
}

/* row_shr:1 DPP (rows of 16 lanes; lane 0 of a row has no source and keeps `old` = -1) and
 * quad_perm [1,0,3,2] */
__kernel void dpp_ops(__global const int *in, __global int *shr, __global int *qperm) {
  int v = in[gid(0)];
  shr[gid(0)] = __builtin_amdgcn_update_dpp(-1, v, 0x111, 0xF, 0xF, false);
  qperm[gid(0)] = __builtin_amdgcn_update_dpp(-1, v, 0xB1, 0xF, 0xF, false);
}

/* ds_swizzle bit-mask mode: and 0x1F, or 0, xor 1 -> lane ^ 1; and 0x18, or 0x3 -> (lane & 0x18) | 3 */
__kernel void swizzle_ops(__global const int *in, __global int *x1, __global int *bc) {
  int v = in[gid(0)];
  x1[gid(0)] = __builtin_amdgcn_ds_swizzle(v, 0x1F | (1 << 10));
  bc[gid(0)] = __builtin_amdgcn_ds_swizzle(v, 0x18 | (3 << 5));
}

/* v_permlane16 (reverse inside each row of 16) and v_permlanex16 (identity select from the other row) */
__kernel void permlane_ops(__global const uint *in, __global uint *rev16, __global uint *swap16) {
  uint v = in[gid(0)];
  rev16[gid(0)] = __builtin_amdgcn_permlane16(v, v, 0x89ABCDEFu, 0x01234567u, false, false);
  swap16[gid(0)] = __builtin_amdgcn_permlanex16(v, v, 0x76543210u, 0xFEDCBA98u, false, false);
}

/* float wave reduction of max with bpermute; one value per wave */
__kernel void wave_max_f32(__global const float *in, __global float *out) {
  float v = in[gid(0)];
  uint lane = lane_id();
  for (uint m = 1; m < 32; m <<= 1) v = __builtin_fmaxf(v, shflf(v, lane ^ m));
  if (lane == 0) out[gid(0) / 32] = v;
}
