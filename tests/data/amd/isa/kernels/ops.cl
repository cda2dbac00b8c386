/* ALU coverage kernels for the RDNA3 emulator: plain C operators and clang builtins only (built
 * with -nogpulib, no device libraries). Kernel k writes result j of work-item i to out[j*n + i]. */
#define GID (__builtin_amdgcn_workgroup_id_x() * 64u + __builtin_amdgcn_workitem_id_x())

__kernel void i32_ops(__global const int *a, __global const int *b, __global int *out, uint n) {
  uint i = GID;
  if (i >= n) return;
  int x = a[i], y = b[i];
  uint ux = (uint)x, uy = (uint)y;
  __global int *o = out + i;
  o[0 * n] = (int)(((long)x * (long)y) >> 32);
  o[1 * n] = (int)(((ulong)ux * (ulong)uy) >> 32);
  o[2 * n] = y != 0 && !(x == (int)0x80000000 && y == -1) ? x / y : 0;
  o[3 * n] = y != 0 && !(x == (int)0x80000000 && y == -1) ? x % y : 0;
  o[4 * n] = uy != 0 ? (int)(ux / uy) : 0;
  o[5 * n] = uy != 0 ? (int)(ux % uy) : 0;
  o[6 * n] = x >> (y & 31);
  o[7 * n] = (int)(ux >> (uy & 31));
  o[8 * n] = (int)(ux << (uy & 31));
  o[9 * n] = (int)((ux << (uy & 31)) | (ux >> ((32 - (uy & 31)) & 31)));
  o[10 * n] = __builtin_clz(ux | 1u);
  o[11 * n] = __builtin_popcount(ux);
  o[12 * n] = (x < y ? x : y) ^ (x > y ? x : y) * 3;
  o[13 * n] = ux > uy ? (int)(ux - uy) : (int)(uy - ux);
  o[14 * n] = (int)(((ux ^ uy) & 0x0F0F0F0Fu) ^ uy);
  o[15 * n] = x * y + (x ^ 0x5A5A5A5A);
  o[16 * n] = (int)__builtin_bitreverse32(ux);
  o[17 * n] = (int)__builtin_amdgcn_sad_u8(ux, uy, 7u);
  o[18 * n] = (int)__builtin_amdgcn_lerp(ux, uy, ux ^ uy);
}

__kernel void i64_ops(__global const long *a, __global const long *b, __global long *out, uint n) {
  uint i = GID;
  if (i >= n) return;
  long x = a[i], y = b[i];
  ulong ux = (ulong)x, uy = (ulong)y;
  __global long *o = out + i;
  o[0 * n] = x * y;
  o[1 * n] = y != 0 && !(x == (long)0x8000000000000000UL && y == -1) ? x / y : 0;
  o[2 * n] = y != 0 && !(x == (long)0x8000000000000000UL && y == -1) ? x % y : 0;
  o[3 * n] = uy != 0 ? (long)(ux / uy) : 0;
  o[4 * n] = uy != 0 ? (long)(ux % uy) : 0;
  o[5 * n] = x >> (y & 63);
  o[6 * n] = (long)(ux >> (uy & 63));
  o[7 * n] = (long)(ux << (uy & 63));
  o[8 * n] = __builtin_popcountl(ux) + 100 * __builtin_clzl(ux | 1);
  o[9 * n] = (x < y ? x : y) + (long)(ux > uy ? ux : uy);
}

__kernel void f32_ops(__global const float *a, __global const float *b, __global float *out, uint n) {
  uint i = GID;
  if (i >= n) return;
  float x = a[i], y = b[i];
  __global float *o = out + i;
  o[0 * n] = x / y;
  o[1 * n] = __builtin_sqrtf(__builtin_fabsf(x));
  o[2 * n] = __builtin_fmaf(x, y, 0.375f);
  o[3 * n] = __builtin_floorf(x) + __builtin_ceilf(y) * 16.0f;
  o[4 * n] = __builtin_rintf(x) + __builtin_truncf(y) * 16.0f;
  o[5 * n] = __builtin_fminf(x, y) - __builtin_fmaxf(x, y) * 0.5f;
  o[6 * n] = __builtin_copysignf(x, y);
  o[7 * n] = __builtin_ldexpf(x, (int)y);
  o[8 * n] = (float)(int)x + (float)(uint)__builtin_fabsf(y);
  o[9 * n] = x * y - x;
  o[10 * n] = __builtin_roundf(x);
  o[11 * n] = (float)((int)(x * 1000.0f) >> 2);
}

__kernel void f64_ops(__global const double *a, __global const double *b, __global double *out, uint n) {
  uint i = GID;
  if (i >= n) return;
  double x = a[i], y = b[i];
  __global double *o = out + i;
  o[0 * n] = x / y;
  o[1 * n] = __builtin_sqrt(__builtin_fabs(x));
  o[2 * n] = __builtin_fma(x, y, 0.375);
  o[3 * n] = __builtin_floor(x) + __builtin_ceil(y) * 16.0;
  o[4 * n] = __builtin_rint(x) + __builtin_trunc(y) * 16.0;
  o[5 * n] = (double)(long)(x * 1e6) + (double)(float)y;
  o[6 * n] = x * y + x;
}

#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void f16_ops(__global const half *a, __global const half *b, __global half *out, uint n) {
  uint i = GID;
  if (i >= n) return;
  half x = a[i], y = b[i];
  __global half *o = out + i;
  o[0 * n] = x + y;
  o[1 * n] = x * y;
  o[2 * n] = x - y * (half)0.5f;
  o[3 * n] = __builtin_fmaf16(x, y, (half)1.0f);
  o[4 * n] = x < y ? x : y;
  o[5 * n] = (half)((float)x / (float)y);
  o[6 * n] = (half)(int)(x * (half)4.0f);
}

/* AMDGPU builtins that map to single instructions (transcendentals use the hardware's
 * approximations: the test compares them with a tolerance) */
__kernel void builtin_ops(__global const float *a, __global const float *b, __global float *out, uint n) {
  uint i = GID;
  if (i >= n) return;
  float x = a[i], y = b[i];
  uint ux = __builtin_bit_cast(uint, x), uy = __builtin_bit_cast(uint, y);
  __global float *o = out + i;
  o[0 * n] = __builtin_amdgcn_rcpf(y);
  o[1 * n] = __builtin_amdgcn_rsqf(__builtin_fabsf(y));
  o[2 * n] = __builtin_amdgcn_sinf(x * 0.01f);
  o[3 * n] = __builtin_amdgcn_cosf(x * 0.01f);
  o[4 * n] = __builtin_amdgcn_exp2f(y * 0.1f);
  o[5 * n] = __builtin_amdgcn_logf(__builtin_fabsf(x) + 1.0f);
  o[6 * n] = __builtin_amdgcn_fractf(x);
  o[7 * n] = __builtin_amdgcn_frexp_mantf(x) + (float)__builtin_amdgcn_frexp_expf(y);
  o[8 * n] = __builtin_amdgcn_fmed3f(x, y, 1.5f);
  o[9 * n] = __builtin_bit_cast(float, __builtin_amdgcn_ubfe(ux, uy & 31, 9));
  o[10 * n] = __builtin_bit_cast(float, __builtin_amdgcn_sbfe(ux, uy & 15, 13));
  o[11 * n] = __builtin_bit_cast(float, __builtin_amdgcn_alignbit(ux, uy, uy & 31));
  o[12 * n] = __builtin_bit_cast(float, __builtin_amdgcn_perm(ux, uy, 0x0c050a01u));
  o[13 * n] = (float)(__builtin_isnan(x) + 2 * __builtin_isinf(y) + 4 * __builtin_isfinite(x) + 8 * (__builtin_signbit(y) != 0));
  o[14 * n] = __builtin_amdgcn_fdot2(__builtin_bit_cast(half2, ux), __builtin_bit_cast(half2, uy), 0.5f, false);
  o[15 * n] = (float)__builtin_amdgcn_sudot4(true, (int)ux, true, (int)uy, 3, false);
  o[16 * n] = (float)__builtin_amdgcn_udot4(ux, uy, 5u, false);
  o[17 * n] = __builtin_bit_cast(float, __builtin_amdgcn_mbcnt_lo(ux, 0u));
}

__kernel void cvt_ops(__global const double *a, __global const double *b, __global long *out, uint n) {
  uint i = GID;
  if (i >= n) return;
  double x = a[i], y = b[i];
  __global long *o = out + i;
  o[0 * n] = (long)x;
  o[1 * n] = (long)(ulong)__builtin_fabs(x);
  o[2 * n] = __builtin_bit_cast(long, (double)(long)(y * 1e12));
  o[3 * n] = __builtin_bit_cast(long, (double)(ulong)(__builtin_fabs(y) * 1e12));
  o[4 * n] = __builtin_bit_cast(int, (float)(long)(x * 1e9)) + ((long)__builtin_bit_cast(int, (float)(ulong)__builtin_fabs(y * 1e9)) << 32);
  o[5 * n] = __builtin_bit_cast(long, __builtin_fmin(x, y) + __builtin_fmax(x, y) * 2.0);
  o[6 * n] = (long)(int)(float)x + ((long)(uint)(float)__builtin_fabs(y) << 32);
}

__kernel void half2_ops(__global const half2 *a, __global const half2 *b, __global half2 *out, uint n) {
  uint i = GID;
  if (i >= n) return;
  half2 x = a[i], y = b[i];
  __global half2 *o = out + i;
  o[0 * n] = x + y;
  o[1 * n] = x * y;
  o[2 * n] = x - y;
  o[3 * n] = __builtin_elementwise_fma(x, y, (half2)(1.0h, -2.0h));
  o[4 * n] = __builtin_elementwise_min(x, y);
  o[5 * n] = __builtin_elementwise_max(x, y);
}
