// Block sum with shared memory and __syncthreads (tree reduction), one partial per block.
extern "C" __global__ void block_reduce(const float* in, float* out, int n) {
    __shared__ float s[256];
    unsigned tid = threadIdx.x;
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    s[tid] = i < n ? in[i] : 0.0f;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (tid < stride) s[tid] += s[tid + stride];
        __syncthreads();
    }
    if (tid == 0) out[blockIdx.x] = s[0];
}
// Dynamic shared memory variant: integer sum with extern __shared__.
extern "C" __global__ void block_reduce_dyn(const int* in, int* out, int n) {
    extern __shared__ int sd[];
    unsigned tid = threadIdx.x;
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    sd[tid] = i < n ? in[i] : 0;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (tid < stride) sd[tid] += sd[tid + stride];
        __syncthreads();
    }
    if (tid == 0) out[blockIdx.x] = sd[0];
}
