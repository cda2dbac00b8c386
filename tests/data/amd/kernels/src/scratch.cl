/* Private (per-lane) arrays indexed by data, which the compiler places in scratch memory. */
#include "common.h"
#define ROW 48

/* each work-item sorts its own row of ROW floats in a private array (insertion sort) */
__kernel void private_sort_rows(__global const float *in, __global float *out, uint rows) {
  uint r = gid(0);
  if (r >= rows) return;
  float v[ROW];
  for (int k = 0; k < ROW; k++) v[k] = in[r * ROW + k];
  for (int k = 1; k < ROW; k++) {
    float key = v[k];
    int j = k - 1;
    while (j >= 0 && v[j] > key) { v[j + 1] = v[j]; j--; }
    v[j + 1] = key;
  }
  for (int k = 0; k < ROW; k++) out[r * ROW + k] = v[k];
}

/* private 128-bin histogram of a row of bytes; outputs the most frequent byte (smallest on ties) */
__kernel void private_mode(__global const uchar *in, __global uint *out, uint rows, uint len) {
  uint r = gid(0);
  if (r >= rows) return;
  uint h[128];
  for (int k = 0; k < 128; k++) h[k] = 0;
  for (uint k = 0; k < len; k++) h[in[r * len + k] & 127]++;
  uint best = 0;
  for (int k = 1; k < 128; k++) if (h[k] > h[best]) best = k;
  out[r] = best;
}
