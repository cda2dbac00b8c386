// Two kernels of different register pressure plus a __noinline__ device function with its own
// stack frame, to check that per-function .nv.info records (REGCOUNT, FRAME_SIZE, MIN_STACK_SIZE)
// are matched by symbol index, not by the order they appear in.
__device__ __noinline__ float pick(const float* c, int k) {
    float window[32];
    for (int j = 0; j < 32; ++j) window[j] = c[j] * (float)k;
    return window[k & 31];
}
extern "C" __global__ void dims(int* out) {
    out[0] = blockDim.x; out[1] = blockDim.y; out[2] = blockDim.z;
    out[3] = gridDim.x; out[4] = gridDim.y; out[5] = gridDim.z;
}
extern "C" __global__ void generic(const float* x, const float* c, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v[16];
    #pragma unroll
    for (int j = 0; j < 16; ++j) v[j] = x[(i + j * 977) % n];
    float s = 0.0f;
    #pragma unroll
    for (int j = 0; j < 16; ++j) s += v[j] * v[(j * 5) % 16];
    y[i] = s + pick(c, i);
}
