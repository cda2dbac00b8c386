// A per-thread array written and read at data-dependent indices cannot live in registers: it goes to
// local memory, so the kernel gets a nonzero stack (EIATTR_MIN_STACK_SIZE / MAX_STACK_SIZE).
extern "C" __global__ void local_array(const int* idx, const float* in, float* out) {
    float scratch[64];
    int t = threadIdx.x;
    for (int j = 0; j < 64; ++j) scratch[j] = in[t * 64 + j];
    scratch[idx[2 * t] & 63] += 1.0f;
    out[t] = scratch[idx[2 * t + 1] & 63];
}
