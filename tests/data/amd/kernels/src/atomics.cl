/* Global atomics (add/min/max/and/or/xchg-free CAS loop), 32- and 64-bit. */
#include "common.h"

__kernel void atomic_counters(__global const int *in, __global int *res, uint n) {
  uint i = gid(0);
  if (i >= n) return;
  int v = in[i];
  volatile __global atomic_int *r = (volatile __global atomic_int *)res;
  __opencl_atomic_fetch_add(&r[0], v, memory_order_relaxed, memory_scope_device);
  __opencl_atomic_fetch_min(&r[1], v, memory_order_relaxed, memory_scope_device);
  __opencl_atomic_fetch_max(&r[2], v, memory_order_relaxed, memory_scope_device);
  __opencl_atomic_fetch_or(&r[3], 1 << (v & 31), memory_order_relaxed, memory_scope_device);
  __opencl_atomic_fetch_and(&r[4], ~(1 << ((v >> 5) & 31)), memory_order_relaxed, memory_scope_device);
  __opencl_atomic_fetch_xor(&r[5], v, memory_order_relaxed, memory_scope_device);
}

/* float add by compare-and-swap loop; inputs are small integers so the sum is exact in any order */
__kernel void atomic_cas_fadd(__global const float *in, __global float *sum, uint n) {
  uint i = gid(0);
  if (i >= n) return;
  volatile __global atomic_uint *p = (volatile __global atomic_uint *)sum;
  uint old = __opencl_atomic_load(p, memory_order_relaxed, memory_scope_device);
  uint want;
  do {
    want = as_uint(as_float(old) + in[i]);
  } while (!__opencl_atomic_compare_exchange_strong(p, &old, want, memory_order_relaxed,
                                                    memory_order_relaxed, memory_scope_device));
}

__kernel void atomic_u64(__global const ulong *in, __global ulong *res, uint n) {
  uint i = gid(0);
  if (i >= n) return;
  volatile __global atomic_ulong *r = (volatile __global atomic_ulong *)res;
  __opencl_atomic_fetch_add(&r[0], in[i], memory_order_relaxed, memory_scope_device);
  __opencl_atomic_fetch_max(&r[1], in[i], memory_order_relaxed, memory_scope_device);
}

/* stream compaction: keep positive values; slot from an atomic counter, output sorted by test */
__kernel void compact_positive(__global const int *in, __global int *out, __global uint *count, uint n) {
  uint i = gid(0);
  if (i >= n || in[i] <= 0) return;
  uint slot = __opencl_atomic_fetch_add((volatile __global atomic_uint *)count, 1u,
                                        memory_order_relaxed, memory_scope_device);
  out[slot] = in[i];
}
