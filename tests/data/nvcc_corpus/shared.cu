// Shared-memory tiling, transposes (bank-conflict-heavy and padded), dynamic shared, stencils.
#define TILE 16

extern "C" __global__ void matmul_tiled(const float* A, const float* B, float* C, int M, int N, int K) {
  __shared__ float As[TILE][TILE];
  __shared__ float Bs[TILE][TILE];
  int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
  float acc = 0.0f;
  for (int t = 0; t < (K + TILE - 1) / TILE; ++t) {
    int ak = t * TILE + threadIdx.x, bk = t * TILE + threadIdx.y;
    As[threadIdx.y][threadIdx.x] = (row < M && ak < K) ? A[row * K + ak] : 0.0f;
    Bs[threadIdx.y][threadIdx.x] = (bk < K && col < N) ? B[bk * N + col] : 0.0f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < TILE; ++k) acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
    __syncthreads();
  }
  if (row < M && col < N) C[row * N + col] = acc;
}

extern "C" __global__ void transpose_conflicts(const float* in, float* out, int rows, int cols) {
  __shared__ float tile[32][32];   // no padding: column reads hit one bank 32 times
  int x = blockIdx.x * 32 + threadIdx.x, y = blockIdx.y * 32 + threadIdx.y;
  for (int j = 0; j < 32; j += blockDim.y)
    if (x < cols && y + j < rows) tile[threadIdx.y + j][threadIdx.x] = in[(y + j) * cols + x];
  __syncthreads();
  x = blockIdx.y * 32 + threadIdx.x;
  y = blockIdx.x * 32 + threadIdx.y;
  for (int j = 0; j < 32; j += blockDim.y)
    if (x < rows && y + j < cols) out[(y + j) * rows + x] = tile[threadIdx.x][threadIdx.y + j];
}

extern "C" __global__ void transpose_padded(const double* in, double* out, int rows, int cols) {
  __shared__ double tile[32][33];
  int x = blockIdx.x * 32 + threadIdx.x, y = blockIdx.y * 32 + threadIdx.y;
  for (int j = 0; j < 32; j += blockDim.y)
    if (x < cols && y + j < rows) tile[threadIdx.y + j][threadIdx.x] = in[(y + j) * cols + x];
  __syncthreads();
  x = blockIdx.y * 32 + threadIdx.x;
  y = blockIdx.x * 32 + threadIdx.y;
  for (int j = 0; j < 32; j += blockDim.y)
    if (x < rows && y + j < cols) out[(y + j) * rows + x] = tile[threadIdx.x][threadIdx.y + j];
}

extern "C" __global__ void reverse_dynamic(const int* in, int* out, int n) {
  extern __shared__ int buf[];
  int t = threadIdx.x, base = blockIdx.x * blockDim.x;
  if (base + t < n) buf[t] = in[base + t];
  __syncthreads();
  int src = blockDim.x - 1 - t;
  if (base + t < n && base + src < n) out[base + t] = buf[src];
}

extern "C" __global__ void stencil_1d(const float* in, float* out, int n) {
  __shared__ float s[256 + 6];
  int g = blockIdx.x * blockDim.x + threadIdx.x, l = threadIdx.x + 3;
  s[l] = g < n ? in[g] : 0.0f;
  if (threadIdx.x < 3) {
    s[l - 3] = (g >= 3 && g - 3 < n) ? in[g - 3] : 0.0f;
    int h = g + blockDim.x;
    s[l + blockDim.x] = h < n ? in[h] : 0.0f;
  }
  __syncthreads();
  if (g < n) {
    float acc = 0.0f;
    for (int k = -3; k <= 3; ++k) acc += s[l + k];
    out[g] = acc;
  }
}

extern "C" __global__ void shared_bank_stride(const unsigned* in, unsigned* out, int stride) {
  __shared__ unsigned s[32 * 33];
  int t = threadIdx.x;
  for (int k = t; k < 32 * 33; k += blockDim.x) s[k] = in[k];
  __syncthreads();
  unsigned acc = 0;
  for (int k = 0; k < 32; ++k) acc += s[(t * stride + k) % (32 * 33)];
  out[t] = acc;
}
