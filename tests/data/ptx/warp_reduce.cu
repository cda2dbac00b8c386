// Warp sums with __shfl_down_sync, plus ballot/any/all votes and a butterfly max.
extern "C" __global__ void warp_reduce(const float* in, float* out, unsigned* ballots, int* votes, int* maxes) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = in[i];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    unsigned lane = threadIdx.x & 31;
    unsigned warp = i >> 5;
    unsigned b = __ballot_sync(0xffffffffu, in[i] > 0.0f);
    int any = __any_sync(0xffffffffu, in[i] > 100.0f);
    int all = __all_sync(0xffffffffu, in[i] > -100.0f);
    int m = (int)in[i];
    for (int mask = 16; mask > 0; mask >>= 1) m = max(m, __shfl_xor_sync(0xffffffffu, m, mask));
    int bc = __shfl_sync(0xffffffffu, (int)lane * 3, 5);   // broadcast lane 5
    int up = __shfl_up_sync(0xffffffffu, (int)lane, 1);
    if (lane == 0) { out[warp] = v; ballots[warp] = b; votes[2 * warp] = any; votes[2 * warp + 1] = all; maxes[warp] = m; }
    maxes[1024 + i] = bc + 1000 * up;
}
