/* The kernels of the shared conformance suite (tests/conformance_cases.py) for AMD, the OpenCL C
 * equivalents of tests/data/conformance/kernels.cu (same names, arguments and results). One code
 * object, several kernels. Rebuild kernels.hsaco with build.sh. */
#include "hwdrv_cl.h"

__kernel void vecadd(__global const float *a, __global const float *b, __global float *c, int n) {
  int i = gid(0);
  if (i < n) c[i] = a[i] + b[i];
}

/* sum of each 256-work-item group through static LDS and barriers */
__kernel void block_reduce(__global const float *in, __global float *out, int n) {
  __local float partial[256];
  int t = lid(0);
  int i = gid(0);
  partial[t] = i < n ? in[i] : 0.0f;
  lbarrier();
  for (int s = lsize(0) / 2; s > 0; s >>= 1) {
    if (t < s) partial[t] += partial[t + s];
    lbarrier();
  }
  if (t == 0) out[grp(0)] = partial[0];
}

/* every work-item of a 3-D grid writes its coordinates and the launch shape */
__kernel void grid3d(__global uint *out) {
  uint bx = grp(0), by = grp(1), bz = grp(2);
  uint tx = lid(0), ty = lid(1), tz = lid(2);
  uint gx = ngroups(0), gy = ngroups(1), gz = ngroups(2);
  uint lx = lsize(0), ly = lsize(1), lz = lsize(2);
  uint block = (bz * gy + by) * gx + bx;
  uint thread = (tz * ly + ty) * lx + tx;
  uint i = block * (lx * ly * lz) + thread;
  out[2 * i] = (bx << 24) | (by << 16) | (bz << 8) | (tx << 4) | (ty << 2) | tz;
  out[2 * i + 1] = (gx << 24) | (gy << 16) | (gz << 8) | (lx << 4) | (ly << 2) | lz;
}

/* more than 4 KiB of kernel arguments: a struct passed by value */
typedef struct { uint v[1100]; } Big;
__kernel void bigparam(Big p, __global uint *out, uint salt) {
  int i = gid(0);
  if (i < 1100) out[i] = p.v[i] ^ salt;
}

/* dynamic LDS: the launch decides its size (exec(shared=...)); OpenCL passes it as a __local pointer */
__kernel void dynshared(__global float *out, int n, __local float *s) {
  for (int i = lid(0); i < n; i += lsize(0)) s[i] = (float)i;
  lbarrier();
  for (int i = lid(0); i < n; i += lsize(0)) out[i] = s[n - 1 - i];
}

/* x[i] += a: patched and resubmitted many times */
__kernel void add_scalar(__global int *x, int a, int n) {
  int i = gid(0);
  if (i < n) x[i] += a;
}

/* a runtime-indexed private array: needs scratch */
__kernel void local_mem(__global const int *idx, __global int *out, int n) {
  volatile int scratch[64];
  int t = gid(0);
  if (t >= n) return;
  int j = idx[t];
  for (int k = 0; k < 64; k++) scratch[(k * 7 + j) & 63] = k * 3 + t;
  out[t] = scratch[(j + 1) & 63];   /* written when k * 7 == 1 (mod 64): k = 55 */
}

/* does nothing: launch-overhead measurements */
__kernel void empty(void) {}
