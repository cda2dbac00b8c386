// CUB block and warp collectives (reduce, scan, radix sort), as ordinary CUDA code uses them.
#include <cub/cub.cuh>
extern "C" __global__ void cub_reduce(const int* in, int* out) {
  using BR = cub::BlockReduce<int, 128>;
  __shared__ typename BR::TempStorage tmp;
  int v = in[blockIdx.x * 128 + threadIdx.x];
  int s = BR(tmp).Sum(v);
  if (threadIdx.x == 0) out[blockIdx.x] = s;
}
extern "C" __global__ void cub_scan(const int* in, int* out) {
  using BS = cub::BlockScan<int, 128>;
  __shared__ typename BS::TempStorage tmp;
  int v = in[blockIdx.x * 128 + threadIdx.x], r;
  BS(tmp).ExclusiveSum(v, r);
  out[blockIdx.x * 128 + threadIdx.x] = r;
}
extern "C" __global__ void cub_sort(const unsigned* in, unsigned* out) {
  using BRS = cub::BlockRadixSort<unsigned, 128, 4>;
  __shared__ typename BRS::TempStorage tmp;
  unsigned keys[4];
  for (int k = 0; k < 4; ++k) keys[k] = in[threadIdx.x * 4 + k];
  BRS(tmp).Sort(keys);
  for (int k = 0; k < 4; ++k) out[threadIdx.x * 4 + k] = keys[k];
}
extern "C" __global__ void cub_warp(const float* in, float* out) {
  using WR = cub::WarpReduce<float>;
  __shared__ typename WR::TempStorage tmp[4];
  float v = in[threadIdx.x];
  float s = WR(tmp[threadIdx.x / 32]).Reduce(v, cuda::maximum<>{});
  if ((threadIdx.x & 31) == 0) out[threadIdx.x / 32] = s;
}
