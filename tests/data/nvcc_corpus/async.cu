// Asynchronous copies, mbarriers, ldmatrix/stmatrix, fences and sleeps.
#include <cuda_pipeline.h>
#include <cuda/barrier>
#include <cstdint>
#pragma nv_diag_suppress static_var_with_dynamic_init

extern "C" __global__ void cp_async_scale(const float4* in, float4* out, float s, int n4) {
  __shared__ float4 buf[2][128];
  int t = threadIdx.x;
  int base = blockIdx.x * blockDim.x;
  // double-buffered: stage 0 and 1 in flight, wait for the older one
  if (base + t < n4) __pipeline_memcpy_async(&buf[0][t], &in[base + t], sizeof(float4));
  __pipeline_commit();
  int base1 = base + gridDim.x * blockDim.x;
  if (base1 + t < n4) __pipeline_memcpy_async(&buf[1][t], &in[base1 + t], sizeof(float4));
  __pipeline_commit();
  __pipeline_wait_prior(1);
  __syncthreads();
  if (base + t < n4) { float4 v = buf[0][t]; out[base + t] = make_float4(v.x * s, v.y * s, v.z * s, v.w * s); }
  __pipeline_wait_prior(0);
  __syncthreads();
  if (base1 + t < n4) { float4 v = buf[1][t]; out[base1 + t] = make_float4(v.x * s, v.y * s, v.z * s, v.w * s); }
}

extern "C" __global__ void mbarrier_phases(const int* in, int* out) {
  using barrier = cuda::barrier<cuda::thread_scope_block>;
  __shared__ barrier bar;
  __shared__ int stage[256];
  int t = threadIdx.x;
  if (t == 0) init(&bar, blockDim.x);
  __syncthreads();
  int v = in[blockIdx.x * blockDim.x + t];
  for (int round = 0; round < 3; ++round) {
    stage[t] = v;
    bar.arrive_and_wait();
    v = v + stage[(t + 1) % blockDim.x];
    bar.arrive_and_wait();
  }
  out[blockIdx.x * blockDim.x + t] = v;
}

extern "C" __global__ void mbarrier_raw(const unsigned* in, unsigned* out, unsigned* phases) {
  __shared__ __align__(8) uint64_t bar;
  __shared__ unsigned data[64];
  unsigned t = threadIdx.x;
  unsigned addr = (unsigned)__cvta_generic_to_shared(&bar);
  if (t == 0) asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(addr), "r"(blockDim.x));
  __syncthreads();
  unsigned ok_total = 0;
  for (unsigned phase = 0; phase < 2; ++phase) {
    data[t] = in[t] * (phase + 1);
    uint64_t token;
    asm volatile("mbarrier.arrive.shared::cta.b64 %0, [%1];" : "=l"(token) : "r"(addr) : "memory");
    unsigned done = 0;
    while (!done) {
      asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                   : "=r"(done) : "r"(addr), "r"(phase & 1) : "memory");
    }
    unsigned tested;
    asm volatile("{ .reg .pred p; mbarrier.test_wait.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                 : "=r"(tested) : "r"(addr), "l"(token) : "memory");
    ok_total += tested;
    out[phase * blockDim.x + t] = data[(t + 7) % blockDim.x];
    __syncthreads();
  }
  phases[t] = ok_total;
}

extern "C" __global__ void ldmatrix_x4(const unsigned short* in, unsigned* out) {
  __shared__ __align__(16) unsigned short tile[4 * 64];
  int t = threadIdx.x;
  for (int k = t; k < 4 * 64; k += 32) tile[k] = in[k];
  __syncthreads();
  // lane t gives the address of row (t % 8) of matrix (t / 8)
  unsigned addr = (unsigned)__cvta_generic_to_shared(&tile[(t / 8) * 64 + (t % 8) * 8]);
  unsigned r0, r1, r2, r3;
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
  out[t * 4 + 0] = r0; out[t * 4 + 1] = r1; out[t * 4 + 2] = r2; out[t * 4 + 3] = r3;
  unsigned q0, q1;
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];"
               : "=r"(q0), "=r"(q1) : "r"(addr));
  out[128 + t * 2 + 0] = q0; out[128 + t * 2 + 1] = q1;
}

extern "C" __global__ void stmatrix_x2(const unsigned* in, unsigned short* out) {
  __shared__ __align__(16) unsigned short tile[2 * 64];
  int t = threadIdx.x;
  unsigned addr = (unsigned)__cvta_generic_to_shared(&tile[((t / 8) & 1) * 64 + (t % 8) * 8]);
  asm volatile("stmatrix.sync.aligned.m8n8.x2.shared.b16 [%0], {%1, %2};"
               :: "r"(addr), "r"(in[2 * t]), "r"(in[2 * t + 1]) : "memory");
  __syncthreads();
  for (int k = t; k < 2 * 64; k += 32) out[k] = tile[k];
}

extern "C" __global__ void fence_sleep(const int* in, int* out, int* flag) {
  int t = blockIdx.x * blockDim.x + threadIdx.x;
  out[t] = in[t] * 2;
  __threadfence();
  __threadfence_block();
  __threadfence_system();
  __nanosleep(100);
  if (t == 0) atomicExch(flag, 1);
}

// libcu++ memcpy_async with a block barrier: on sm_90 a bulk copy that completes a transaction
// count on the barrier's mbarrier (cp.async.bulk + mbarrier.expect_tx). Every thread issues the
// (same) copy: 128 threads x 2 KiB keeps the expected bytes within the tx-count's 2^20 - 1.
extern "C" __global__ void bulk_copy_barrier(const int4* in, int4* out) {
  using barrier = cuda::barrier<cuda::thread_scope_block>;
  __shared__ alignas(16) int4 buf[128];
  __shared__ barrier bar;
  if (threadIdx.x == 0) init(&bar, blockDim.x);
  __syncthreads();
  cuda::memcpy_async(buf, in + blockIdx.x * 128, cuda::aligned_size_t<16>(sizeof(int4) * 128), bar);
  bar.arrive_and_wait();
  int4 v = buf[127 - threadIdx.x];
  out[blockIdx.x * 128 + threadIdx.x] = make_int4(v.x + 1, v.y + 2, v.z + 3, v.w + 4);
}
