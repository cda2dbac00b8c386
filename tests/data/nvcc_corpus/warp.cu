// Warp-level primitives: shuffles, votes, match, redux, activemask; block reductions.

extern "C" __global__ void warp_reduce_sum(const float* in, float* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = in[i];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  if ((threadIdx.x & 31) == 0) out[i / 32] = v;
}

extern "C" __global__ void warp_inclusive_scan(const int* in, int* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int lane = threadIdx.x & 31;
  int v = in[i];
  for (int off = 1; off < 32; off <<= 1) {
    int t = __shfl_up_sync(0xffffffffu, v, off);
    if (lane >= off) v += t;
  }
  out[i] = v;
}

extern "C" __global__ void warp_butterfly_max(const int* in, int* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int v = in[i];
  for (int m = 1; m < 32; m <<= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, m));
  out[i] = v;
}

extern "C" __global__ void ballot_count(const int* in, unsigned* ballots, int* counts, int* anys) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int pred = in[i] > 0;
  unsigned b = __ballot_sync(0xffffffffu, pred);
  int all = __all_sync(0xffffffffu, pred);
  int any = __any_sync(0xffffffffu, pred);
  if ((threadIdx.x & 31) == 0) {
    ballots[i / 32] = b;
    counts[i / 32] = __popc(b) + 100 * all;
    anys[i / 32] = any;
  }
}

extern "C" __global__ void active_mask(const int* in, unsigned* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  unsigned m = 0;
  if (in[i] & 1) m = __activemask();
  out[i] = m;
}

extern "C" __global__ void match_any(const int* in, unsigned* any_mask, unsigned* all_mask, int* all_pred) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int v = in[i];
  any_mask[i] = __match_any_sync(0xffffffffu, v);
  int p;
  all_mask[i] = __match_all_sync(0xffffffffu, v & 0x10000, &p);
  all_pred[i] = p;
}

extern "C" __global__ void redux_ops(const unsigned* in, unsigned* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  unsigned v = in[i];
  unsigned s = __reduce_add_sync(0xffffffffu, v);
  unsigned mn = __reduce_min_sync(0xffffffffu, v);
  unsigned mx = __reduce_max_sync(0xffffffffu, v);
  int smn = __reduce_min_sync(0xffffffffu, (int)v);
  unsigned a = __reduce_and_sync(0xffffffffu, v);
  unsigned o = __reduce_or_sync(0xffffffffu, v);
  unsigned x = __reduce_xor_sync(0xffffffffu, v);
  if ((threadIdx.x & 31) == 0) {
    unsigned* w = out + (i / 32) * 7;
    w[0] = s; w[1] = mn; w[2] = mx; w[3] = (unsigned)smn; w[4] = a; w[5] = o; w[6] = x;
  }
}

extern "C" __global__ void block_reduce_sum(const float* in, float* out, int n) {
  __shared__ float partial[32];
  float v = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) v += in[i];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < blockDim.x / 32 ? partial[lane] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0) out[blockIdx.x] = v;
  }
}
