// __device__ globals (.nv.global / .nv.global.init) and __constant__ data (.nv.constant3), reached
// through relocations that the loader must patch.
__device__ unsigned int counter;
__device__ float table[64] = {1.0f, 2.0f, 3.0f};
__constant__ float coeffs[4] = {0.5f, 0.25f, 0.125f, 0.0625f};
extern "C" __global__ void use_globals(float* out) {
    unsigned int slot = atomicAdd(&counter, 1u);
    out[threadIdx.x] = table[threadIdx.x & 63] * coeffs[threadIdx.x & 3] + (float)slot;
}
