// Kernels the mock can and cannot run, in one module: a module loads if it parses; a kernel
// with an instruction the mock does not implement fails its own launch only.
#include <cstdio>
#include <cassert>
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
namespace cg = cooperative_groups;
typedef int (*binop)(int, int);
__device__ int addf(int a, int b) { return a + b; }
__device__ int mulf(int a, int b) { return a * b; }
__device__ binop ops[2] = {addf, mulf};
extern "C" __global__ void printer(int* out) { printf("thread %d\n", threadIdx.x); out[threadIdx.x] = 1; }
extern "C" __global__ void asserter(int* out) { assert(out != nullptr); out[threadIdx.x] = 2; }
extern "C" __global__ void printf_formats(const double* d, long long big) {
  int t = threadIdx.x;
  printf("t=%d u=%u x=%08x f=%.3f e=%e g=%g s=%s c=%c ll=%lld %%\n", t - 2, t * 1000000000u, t * 0xABCu, d[t],
         d[t] * 1e10, (float)d[t], t & 1 ? "odd" : "even", 'A' + t, big * t);
}
extern "C" __global__ void fnptr(int* out, int which) { out[threadIdx.x] = ops[which](threadIdx.x, 3); }
extern "C" __global__ void fnptr_divergent(int* out) { out[threadIdx.x] = ops[threadIdx.x & 1](threadIdx.x, 3); }
struct Shape { __device__ virtual float area(float x) const = 0; };
struct Square : Shape { __device__ float area(float x) const override { return x * x; } };
struct Disc : Shape { __device__ float area(float x) const override { return 3.0f * x * x; } };
__device__ __noinline__ float area_of(const Shape* s, float x) { return s->area(x); }
extern "C" __global__ void virtual_calls(const float* x, float* out) {
  Square sq; Disc dc;
  const Shape* s = (threadIdx.x % 3 == 0) ? static_cast<const Shape*>(&sq) : static_cast<const Shape*>(&dc);
  out[threadIdx.x] = area_of(s, x[threadIdx.x]);
}
extern "C" __global__ void texobj(cudaTextureObject_t t, float* out) { out[threadIdx.x] = tex1Dfetch<float>(t, threadIdx.x); }
extern "C" __global__ void surfobj(cudaSurfaceObject_t s, int v) { surf1Dwrite(v, s, threadIdx.x * 4); }
extern "C" __global__ void mathy(float* out) { float x = out[threadIdx.x]; out[threadIdx.x] = sinf(x) + expf(x) + logf(x + 2) + powf(x, 1.5f) + erff(x) + tanhf(x); }
extern "C" __global__ void mathd(double* out) { double x = out[threadIdx.x]; out[threadIdx.x] = sin(x) + exp(x) + log(x + 2) + pow(x, 1.5) + erf(x); }
extern "C" __global__ void tiles(int* out) {
  cg::thread_block b = cg::this_thread_block();
  cg::thread_block_tile<8> t = cg::tiled_partition<8>(b);
  out[b.thread_rank()] = cg::reduce(t, (int)b.thread_rank(), cg::plus<int>());
}
extern "C" __global__ void clocks(long long* out) { long long a = clock64(); __nanosleep(10); out[threadIdx.x] = clock64() - a > 0; }
extern "C" __global__ void heap(int* out) { int* p = (int*)malloc(16); p[0] = 5; out[0] = p[0]; free(p); }
extern "C" __global__ void heap_keep(int** slot, int n) {
  int* p = (int*)malloc(n * sizeof(int));
  if (p) for (int k = 0; k < n; ++k) p[k] = k * threadIdx.x;
  slot[threadIdx.x] = p;
}
extern "C" __global__ void heap_sum_free(int** slot, int* out, int n) {
  int* p = slot[threadIdx.x];
  int s = -1;
  if (p) { s = 0; for (int k = 0; k < n; ++k) s += p[k]; }
  out[threadIdx.x] = s;
  free(p);
}
extern "C" __global__ void __cluster_dims__(2, 1, 1) clustered(int* out) {
  cg::cluster_group c = cg::this_cluster();
  out[blockIdx.x * blockDim.x + threadIdx.x] = c.block_rank();
  c.sync();
}
extern "C" __global__ void pdl(int* out) { cudaGridDependencySynchronize(); out[threadIdx.x] = 3; cudaTriggerProgrammaticLaunchCompletion(); }
