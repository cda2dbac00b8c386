/* Program-scope variables: a constant table, a table of pointers into it (an address the loader
 * must relocate: R_AMDGPU_ABS64 in the relocatable object, R_AMDGPU_RELATIVE64 after ld.lld), both
 * reached through pc-relative REL32_LO/HI relocations. */
#include "common.h"

__constant float coeffs[8] = {1.0f, -2.0f, 0.5f, 4.0f, -0.25f, 3.0f, 8.0f, -1.5f};
__constant float *__constant coeff_ptrs[2] = {&coeffs[0], &coeffs[4]};

/* y = c0 + c1 x + c2 x^2 + c3 x^3 with the coefficient set chosen by i & 1 through the pointer table */
__kernel void poly_table(__global const float *x, __global float *y, uint n) {
  uint i = gid(0);
  if (i >= n) return;
  __constant float *c = coeff_ptrs[i & 1];
  float v = x[i];
  y[i] = ((c[3] * v + c[2]) * v + c[1]) * v + c[0];
}
