/* hwdrv's AMD sample kernels: the demo's vecadd, the provocations `hwdrv diagnose` runs
 * (conventions in hwdrv/provoke.py) and the compute-queue copy blits. Built by build.sh. */
#include "hwdrv_cl.h"

__kernel void vecadd(__global const float *a, __global const float *b, __global float *c, int n) {
  int i = gid(0);
  if (i < n) c[i] = a[i] + b[i];
}

/* stores a 32-bit value at addr (the provocation passes an address with nothing mapped) */
__kernel void oob_store(__global uint *addr, uint value) { *addr = value; }

/* writes 1 to out[0], then traps (s_trap: no trap handler takes it, the queue faults) */
__kernel void illegal_trap(__global volatile uint *out) {
  out[0] = 1;
  __builtin_amdgcn_s_waitcnt(0);
  __builtin_trap();
}

/* spins until the word at flag is non-zero */
__kernel void spin_forever(__global volatile uint *flag) {
  while (*flag == 0) {
  }
}

/* grid-stride copies: n 16-byte vectors / n bytes */
__kernel void copy16(__global uint4 *dst, __global const uint4 *src, ulong n) {
  ulong stride = (ulong)ngroups(0) * lsize(0);
  for (ulong i = gid(0); i < n; i += stride) dst[i] = src[i];
}

__kernel void copy1(__global uchar *dst, __global const uchar *src, ulong n) {
  ulong stride = (ulong)ngroups(0) * lsize(0);
  for (ulong i = gid(0); i < n; i += stride) dst[i] = src[i];
}
