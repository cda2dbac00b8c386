// Atomics: shared/global histograms, CAS loops at 16/32/64 bits, reductions without return (red).
#include <cstdint>

extern "C" __global__ void histogram_shared(const unsigned char* data, unsigned* hist, int n) {
  __shared__ unsigned local[256];
  for (int b = threadIdx.x; b < 256; b += blockDim.x) local[b] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
    atomicAdd(&local[data[i]], 1u);
  __syncthreads();
  for (int b = threadIdx.x; b < 256; b += blockDim.x) atomicAdd(&hist[b], local[b]);
}

__device__ float cas_add_float(float* addr, float v) {
  int* p = (int*)addr;
  int old = *p, assumed;
  do {
    assumed = old;
    old = atomicCAS(p, assumed, __float_as_int(__int_as_float(assumed) + v));
  } while (assumed != old);
  return __int_as_float(old);
}

extern "C" __global__ void cas32_sum(const int* in, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) cas_add_float(out, (float)in[i]);
}

extern "C" __global__ void cas64_sum(const long long* in, unsigned long long* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    unsigned long long old = *out, assumed;
    do {
      assumed = old;
      old = atomicCAS(out, assumed, assumed + (unsigned long long)in[i] * 3ull);
    } while (assumed != old);
  }
}

extern "C" __global__ void cas16_count(const int* in, unsigned short* counters, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    unsigned short* c = counters + (in[i] & 3);
    unsigned short old = *c, assumed;
    do {
      assumed = old;
      old = atomicCAS(c, assumed, (unsigned short)(assumed + 1));
    } while (assumed != old);
  }
}

extern "C" __global__ void red_ops(const int* in, int* sum, int* mx, int* mn, unsigned* andv, unsigned* orv,
                                   unsigned* xorv, unsigned long long* sum64, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    int v = in[i];
    atomicAdd(sum, v);
    atomicMax(mx, v);
    atomicMin(mn, v);
    atomicAnd(andv, (unsigned)v | 0xff000000u);
    atomicOr(orv, 1u << (v & 31));
    atomicXor(xorv, (unsigned)v);
    atomicAdd(sum64, (unsigned long long)(long long)v);
  }
}

extern "C" __global__ void atomic_inc_ticket(unsigned* counter, unsigned* seen, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    unsigned t = atomicInc(counter, 1000000u);
    atomicAdd(&seen[t], 1u);
  }
}

extern "C" __global__ void atomic_float_add(const float* in, float* bins, double* dsum, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    atomicAdd(&bins[i & 7], in[i]);
    atomicAdd(dsum, (double)in[i]);
  }
}
