#include <cuda_fp16.h>
#include <cuda_bf16.h>
// f16 and bf16 arithmetic: scalar fma, packed half2 multiply-add, conversions both ways.
extern "C" __global__ void half_ops(const __half* a, const __half* b, __half* out, float* fout, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    __half x = a[i], y = b[i];
    out[i] = __hfma(x, y, __float2half(1.0f));
    fout[i] = __half2float(x) * 2.0f + __half2float(__hmax(x, y));
}
extern "C" __global__ void half2_ops(const __half2* a, const __half2* b, __half2* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    out[i] = __hadd2(__hmul2(a[i], b[i]), a[i]);
}
extern "C" __global__ void bf16_ops(const __nv_bfloat16* a, const __nv_bfloat16* b, __nv_bfloat16* out, float* fout, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    __nv_bfloat16 x = a[i], y = b[i];
    out[i] = __hfma(x, y, __float2bfloat16(0.5f));
    fout[i] = __bfloat162float(x) + __bfloat162float(y);
}
