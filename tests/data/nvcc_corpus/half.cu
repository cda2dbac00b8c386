// half and bfloat16 arithmetic.
#include <cuda_fp16.h>
#include <cuda_bf16.h>

extern "C" __global__ void half2_fma(const __half2* a, const __half2* b, const __half2* c, __half2* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __hfma2(a[i], b[i], c[i]);
}

extern "C" __global__ void half_ops(const __half* a, const __half* b, __half* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    out[4 * i + 0] = __hadd(a[i], b[i]);
    out[4 * i + 1] = __hmul(a[i], b[i]);
    out[4 * i + 2] = __hsub(a[i], b[i]);
    out[4 * i + 3] = __hmax(a[i], b[i]);
  }
}

extern "C" __global__ void half_to_float_sum(const __half* a, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __half2float(a[2 * i]) + __half2float(a[2 * i + 1]);
}

extern "C" __global__ void float_to_half(const float* a, __half* rn, __half* rz, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) { rn[i] = __float2half_rn(a[i]); rz[i] = __float2half_rz(a[i]); }
}

extern "C" __global__ void bf16_ops(const __nv_bfloat16* a, const __nv_bfloat16* b, __nv_bfloat16* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    out[3 * i + 0] = __hadd(a[i], b[i]);
    out[3 * i + 1] = __hmul(a[i], b[i]);
    out[3 * i + 2] = __hfma(a[i], b[i], a[i]);
  }
}

extern "C" __global__ void float_to_bf16(const float* a, __nv_bfloat16* out, float* back, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) { out[i] = __float2bfloat16_rn(a[i]); back[i] = __bfloat162float(out[i]) * 2.0f; }
}

// FP8 (sm_89+): float pairs to e4m3x2 / e5m2x2 with saturation, and back through half2.
#include <cuda_fp8.h>
extern "C" __global__ void fp8_roundtrip(const float* a, unsigned short* e4, unsigned short* e5, float* back4, float* back5, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    __nv_fp8x2_e4m3 v(make_float2(a[2 * i], a[2 * i + 1]));
    __nv_fp8x2_e5m2 w(make_float2(a[2 * i], a[2 * i + 1]));
    e4[i] = *reinterpret_cast<unsigned short*>(&v);
    e5[i] = *reinterpret_cast<unsigned short*>(&w);
    float2 f = float2(v), g = float2(w);
    back4[2 * i] = f.x; back4[2 * i + 1] = f.y;
    back5[2 * i] = g.x; back5[2 * i + 1] = g.y;
  }
}
