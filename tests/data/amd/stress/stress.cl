/* The kernels of the stress suites (tests/stress_kit.py) for AMD: the OpenCL C equivalents of
 * stress_kit's ADD_PTX and SPIN_PTX (same names, arguments and results). Rebuild with build.sh. */
#include "hwdrv_cl.h"

/* out[i] = in[i] + k for i < n */
__kernel void add_k(__global uint *dst, __global const uint *src, uint k, uint n) {
  uint i = gid(0);
  if (i < n) dst[i] = src[i] + k;
}

/* spins `iters` times, then writes `val` to *flag (a kernel that is still running a while) */
__kernel void spin_then_write(__global volatile uint *flag, uint iters, uint val) {
  volatile uint i = 0;
  while (i < iters) i++;
  *flag = val;
}
