// Warp matrix multiply-accumulate (wmma): one warp per output tile, K looped over fragments.
#include <mma.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
using namespace nvcuda;

template <int M, int N, int K, typename TIn, typename TFrag, typename TAcc, typename LA, typename LB>
__device__ void gemm_tile(const TIn* A, const TIn* B, TAcc* C, int Kt, int lda, int ldb, int ldc, int Ntiles) {
  int tm = blockIdx.x / Ntiles, tn = blockIdx.x % Ntiles;
  wmma::fragment<wmma::matrix_a, M, N, K, TFrag, LA> a;
  wmma::fragment<wmma::matrix_b, M, N, K, TFrag, LB> b;
  wmma::fragment<wmma::accumulator, M, N, K, TAcc> c;
  wmma::fill_fragment(c, (TAcc)0);
  for (int k = 0; k < Kt; k += K) {
    const bool arow = std::is_same<LA, wmma::row_major>::value, brow = std::is_same<LB, wmma::row_major>::value;
    const TIn* pa = arow ? A + (tm * M) * lda + k : A + k * lda + tm * M;
    const TIn* pb = brow ? B + k * ldb + tn * N : B + (tn * N) * ldb + k;
    wmma::load_matrix_sync(a, pa, lda);
    wmma::load_matrix_sync(b, pb, ldb);
    wmma::mma_sync(c, a, b, c);
  }
  wmma::store_matrix_sync(C + (tm * M) * ldc + tn * N, c, ldc, wmma::mem_row_major);
}

// f16 inputs, f32 accumulate, every shape; A row / B col and the other layouts.
extern "C" __global__ void wmma_f16_m16n16k16_rc(const half* A, const half* B, float* C, int K, int lda, int ldb, int ldc, int nt) {
  gemm_tile<16, 16, 16, half, half, float, wmma::row_major, wmma::col_major>(A, B, C, K, lda, ldb, ldc, nt);
}
extern "C" __global__ void wmma_f16_m16n16k16_cr(const half* A, const half* B, float* C, int K, int lda, int ldb, int ldc, int nt) {
  gemm_tile<16, 16, 16, half, half, float, wmma::col_major, wmma::row_major>(A, B, C, K, lda, ldb, ldc, nt);
}
extern "C" __global__ void wmma_f16_m32n8k16_rr(const half* A, const half* B, float* C, int K, int lda, int ldb, int ldc, int nt) {
  gemm_tile<32, 8, 16, half, half, float, wmma::row_major, wmma::row_major>(A, B, C, K, lda, ldb, ldc, nt);
}
extern "C" __global__ void wmma_f16_m8n32k16_cc(const half* A, const half* B, float* C, int K, int lda, int ldb, int ldc, int nt) {
  gemm_tile<8, 32, 16, half, half, float, wmma::col_major, wmma::col_major>(A, B, C, K, lda, ldb, ldc, nt);
}
// f16 accumulate, stored column-major.
extern "C" __global__ void wmma_f16acc_m16n16k16(const half* A, const half* B, half* C, int K, int lda, int ldb, int ldc) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> a;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::row_major> b;
  wmma::fragment<wmma::accumulator, 16, 16, 16, half> c;
  wmma::load_matrix_sync(c, C, ldc, wmma::mem_col_major);
  for (int k = 0; k < K; k += 16) {
    wmma::load_matrix_sync(a, A + k, lda);
    wmma::load_matrix_sync(b, B + k * ldb, ldb);
    wmma::mma_sync(c, a, b, c);
  }
  for (int e = 0; e < c.num_elements; ++e) c.x[e] = __hmul(c.x[e], __float2half(0.5f));
  wmma::store_matrix_sync(C, c, ldc, wmma::mem_col_major);
}
extern "C" __global__ void wmma_bf16_m16n16k16(const __nv_bfloat16* A, const __nv_bfloat16* B, float* C, int K, int lda, int ldb, int ldc, int nt) {
  gemm_tile<16, 16, 16, __nv_bfloat16, __nv_bfloat16, float, wmma::row_major, wmma::col_major>(A, B, C, K, lda, ldb, ldc, nt);
}
extern "C" __global__ void wmma_bf16_m32n8k16(const __nv_bfloat16* A, const __nv_bfloat16* B, float* C, int K, int lda, int ldb, int ldc, int nt) {
  gemm_tile<32, 8, 16, __nv_bfloat16, __nv_bfloat16, float, wmma::row_major, wmma::row_major>(A, B, C, K, lda, ldb, ldc, nt);
}
extern "C" __global__ void wmma_tf32_m16n16k8(const float* A, const float* B, float* C, int K, int lda, int ldb, int ldc, int nt) {
  // tf32 fragments are loaded from f32 memory and rounded to tf32 explicitly, as CUDA requires.
  int tm = blockIdx.x / nt, tn = blockIdx.x % nt;
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> b;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> c;
  wmma::fill_fragment(c, 0.0f);
  for (int k = 0; k < K; k += 8) {
    wmma::load_matrix_sync(a, A + tm * 16 * lda + k, lda);
    wmma::load_matrix_sync(b, B + tn * 16 * ldb + k, ldb);
    for (int e = 0; e < a.num_elements; ++e) a.x[e] = wmma::__float_to_tf32(a.x[e]);
    for (int e = 0; e < b.num_elements; ++e) b.x[e] = wmma::__float_to_tf32(b.x[e]);
    wmma::mma_sync(c, a, b, c);
  }
  wmma::store_matrix_sync(C + tm * 16 * ldc + tn * 16, c, ldc, wmma::mem_row_major);
}
extern "C" __global__ void wmma_s8_m16n16k16(const signed char* A, const signed char* B, int* C, int K, int lda, int ldb, int ldc, int nt) {
  gemm_tile<16, 16, 16, signed char, signed char, int, wmma::row_major, wmma::col_major>(A, B, C, K, lda, ldb, ldc, nt);
}
extern "C" __global__ void wmma_u8_m8n32k16(const unsigned char* A, const unsigned char* B, int* C, int K, int lda, int ldb, int ldc, int nt) {
  gemm_tile<8, 32, 16, unsigned char, unsigned char, int, wmma::col_major, wmma::row_major>(A, B, C, K, lda, ldb, ldc, nt);
}
extern "C" __global__ void wmma_s8_m32n8k16(const signed char* A, const signed char* B, int* C, int K, int lda, int ldb, int ldc, int nt) {
  gemm_tile<32, 8, 16, signed char, signed char, int, wmma::row_major, wmma::row_major>(A, B, C, K, lda, ldb, ldc, nt);
}
extern "C" __global__ void wmma_f64_m8n8k4(const double* A, const double* B, double* C, int K, int lda, int ldb, int ldc, int nt) {
  gemm_tile<8, 8, 4, double, double, double, wmma::row_major, wmma::col_major>(A, B, C, K, lda, ldb, ldc, nt);
}

// Sub-byte inputs (CUDA's wmma::experimental precisions): A row-major, B column-major, 8x8 tile.
template <typename P, int K>
__device__ void subbyte_tile(const void* A, const void* B, int* C, int bop) {
  wmma::fragment<wmma::matrix_a, 8, 8, K, P, wmma::row_major> a;
  wmma::fragment<wmma::matrix_b, 8, 8, K, P, wmma::col_major> b;
  wmma::fragment<wmma::accumulator, 8, 8, K, int> c;
  wmma::fill_fragment(c, 0);
  wmma::load_matrix_sync(a, A, K);
  wmma::load_matrix_sync(b, B, K);
  if constexpr (K == 128) {
    if (bop) wmma::bmma_sync(c, a, b, c, wmma::experimental::bmmaBitOpXOR);
    else wmma::bmma_sync(c, a, b, c, wmma::experimental::bmmaBitOpAND);
  } else {
    wmma::mma_sync(c, a, b, c);
  }
  wmma::store_matrix_sync(C, c, 8, wmma::mem_row_major);
}
extern "C" __global__ void wmma_s4_m8n8k32(const unsigned char* A, const unsigned char* B, int* C) {
  subbyte_tile<wmma::experimental::precision::s4, 32>(A, B, C, 0);
}
extern "C" __global__ void wmma_u4_m8n8k32(const unsigned char* A, const unsigned char* B, int* C) {
  subbyte_tile<wmma::experimental::precision::u4, 32>(A, B, C, 0);
}
extern "C" __global__ void wmma_b1_and_m8n8k128(const unsigned char* A, const unsigned char* B, int* C) {
  subbyte_tile<wmma::experimental::precision::b1, 128>(A, B, C, 0);
}
extern "C" __global__ void wmma_b1_xor_m8n8k128(const unsigned char* A, const unsigned char* B, int* C) {
  subbyte_tile<wmma::experimental::precision::b1, 128>(A, B, C, 1);
}
