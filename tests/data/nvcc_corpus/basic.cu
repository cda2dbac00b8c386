// Integer and floating-point basics: grid-stride loops, 64-bit division, mul.wide, bit ops.
#include <cstdint>

extern "C" __global__ void saxpy(float a, const float* __restrict__ x, float* y, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
    y[i] = a * x[i] + y[i];
}

extern "C" __global__ void daxpy_grid_stride(double a, const double* x, double* y, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x)
    y[i] = fma(a, x[i], y[i]);
}

extern "C" __global__ void div64(const long long* a, const long long* b, long long* q, long long* r,
                                 unsigned long long* uq, unsigned long long* ur, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    q[i] = a[i] / b[i];
    r[i] = a[i] % b[i];
    unsigned long long ua = (unsigned long long)a[i], ub = (unsigned long long)b[i];
    uq[i] = ua / ub;
    ur[i] = ua % ub;
  }
}

extern "C" __global__ void mul_wide(const int* a, const int* b, long long* s, unsigned long long* u,
                                    int* hi, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    s[i] = (long long)a[i] * (long long)b[i];
    u[i] = (unsigned long long)(unsigned)a[i] * (unsigned)b[i];
    hi[i] = __mulhi(a[i], b[i]);
  }
}

extern "C" __global__ void bit_ops(const unsigned* a, const unsigned* b, unsigned* popc, unsigned* clz,
                                   unsigned* brev, unsigned* ffs, unsigned* field, unsigned* ins,
                                   unsigned* funnel, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    unsigned x = a[i], y = b[i];
    popc[i] = __popc(x);
    clz[i] = __clz(x);
    brev[i] = __brev(x);
    ffs[i] = __ffs(x);
    unsigned start = y & 15;
    field[i] = (x >> start) & 0x3ffu;                      // a 10-bit field: bfe
    ins[i] = (x & ~(0xffu << 8)) | ((y & 0xffu) << 8);    // insert byte 1: bfi
    funnel[i] = __funnelshift_l(x, y, start);
  }
}

extern "C" __global__ void byte_perm(const unsigned* a, const unsigned* b, unsigned* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    unsigned x = a[i], y = b[i];
    out[4 * i + 0] = __byte_perm(x, y, 0x5140);
    out[4 * i + 1] = __byte_perm(x, y, 0x0123);
    out[4 * i + 2] = __byte_perm(x, y, 0x7777);
    out[4 * i + 3] = __byte_perm(x, y, b[i] & 0xffff);
  }
}

extern "C" __global__ void dot_products(const int* a, const int* b, const int* c, int* d4s, unsigned* d4u,
                                        int* d2lo, int* d2hi, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    d4s[i] = __dp4a(a[i], b[i], c[i]);
    d4u[i] = __dp4a((unsigned)a[i], (unsigned)b[i], (unsigned)c[i]);
    d2lo[i] = __dp2a_lo(a[i], b[i], c[i]);
    d2hi[i] = __dp2a_hi(a[i], b[i], c[i]);
  }
}

extern "C" __global__ void ldg_gather(const float* __restrict__ src, const int* __restrict__ idx,
                                      float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __ldg(&src[__ldg(&idx[i])]) * 2.0f;
}

extern "C" __global__ void int_math(const int* a, const int* b, int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    int x = a[i], y = b[i];
    out[4 * i + 0] = x / y;
    out[4 * i + 1] = x % y;
    out[4 * i + 2] = min(x, y) * 3 - max(x, y);
    out[4 * i + 3] = abs(x) >> (y & 7);
  }
}

extern "C" __global__ void simd_video(const unsigned* a, const unsigned* b, unsigned* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    unsigned x = a[i], y = b[i];
    out[8 * i + 0] = __vabsdiffu4(x, y);
    out[8 * i + 1] = __vsadu4(x, y);
    out[8 * i + 2] = __vabsdiffu2(x, y);
    out[8 * i + 3] = __vsadu2(x, y);
    out[8 * i + 4] = __vabsdiffs4(x, y);
    out[8 * i + 5] = __vmaxu4(x, y);
    out[8 * i + 6] = __vavgu4(x, y);
    out[8 * i + 7] = __vaddus4(x, y);
  }
}
