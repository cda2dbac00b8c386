/* Loops whose trip count depends on the data (divergent across lanes). */
#include "common.h"

__kernel void collatz_steps(__global const uint *in, __global uint *steps, uint n) {
  uint i = gid(0);
  if (i >= n) return;
  ulong x = in[i];
  uint s = 0;
  while (x != 1) { x = (x & 1) ? 3 * x + 1 : x >> 1; s++; }
  steps[i] = s;
}

__kernel void gcd_u32(__global const uint *a, __global const uint *b, __global uint *out, uint n) {
  uint i = gid(0);
  if (i >= n) return;
  uint x = a[i], y = b[i];
  while (y) { uint t = x % y; x = y; y = t; }
  out[i] = x;
}

/* modular exponentiation with 64-bit multiply/remainder; exponent varies per lane */
__kernel void powmod_u64(__global const ulong *base, __global const uint *exp, __global ulong *out, ulong mod, uint n) {
  uint i = gid(0);
  if (i >= n) return;
  ulong r = 1 % mod, b = base[i] % mod;
  for (uint e = exp[i]; e; e >>= 1) {
    if (e & 1) r = (r * b) % mod;
    b = (b * b) % mod;
  }
  out[i] = r;
}

/* sum of row i of a CSR matrix times x (row lengths differ) */
__kernel void csr_spmv(__global const uint *rowptr, __global const uint *col, __global const float *val,
                       __global const float *x, __global float *y, uint rows) {
  uint r = gid(0);
  if (r >= rows) return;
  float acc = 0.0f;
  for (uint k = rowptr[r]; k < rowptr[r + 1]; k++) acc += val[k] * x[col[k]];
  y[r] = acc;
}
