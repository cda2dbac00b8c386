// Kernels of the NVIDIA conformance suite (tests/conformance_cases.py). One module, several
// entries: the loader must pick each kernel's own metadata. Regenerate kernels.ptx with
//   nvcc -ptx -arch=sm_90 -o kernels.ptx kernels.cu
#include <cstdint>

extern "C" __global__ void vecadd(const float* a, const float* b, float* c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}

// Sum of each 256-thread block through static shared memory and __syncthreads.
extern "C" __global__ void block_reduce(const float* in, float* out, int n) {
    __shared__ float partial[256];
    int t = threadIdx.x;
    int i = blockIdx.x * blockDim.x + t;
    partial[t] = i < n ? in[i] : 0.0f;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) partial[t] += partial[t + s];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = partial[0];
}

// Every thread of a 3-D grid of 3-D blocks writes its coordinates and the launch shape.
extern "C" __global__ void grid3d(uint32_t* out) {
    uint32_t bx = blockIdx.x, by = blockIdx.y, bz = blockIdx.z;
    uint32_t tx = threadIdx.x, ty = threadIdx.y, tz = threadIdx.z;
    uint32_t block = (bz * gridDim.y + by) * gridDim.x + bx;
    uint32_t thread = (tz * blockDim.y + ty) * blockDim.x + tx;
    uint32_t i = block * (blockDim.x * blockDim.y * blockDim.z) + thread;
    out[2 * i] = (bx << 24) | (by << 16) | (bz << 8) | (tx << 4) | (ty << 2) | tz;
    out[2 * i + 1] = (gridDim.x << 24) | (gridDim.y << 16) | (gridDim.z << 8) |
                     (blockDim.x << 4) | (blockDim.y << 2) | blockDim.z;
}

// More than 4 KiB of parameters: a struct passed by value.
struct Big { uint32_t v[1100]; };
extern "C" __global__ void bigparam(Big p, uint32_t* out, uint32_t salt) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < 1100) out[i] = p.v[i] ^ salt;
}

// Dynamic shared memory (the launch decides its size; tests use more than 48 KiB).
extern "C" __global__ void dynshared(float* out, int n) {
    extern __shared__ float s[];
    for (int i = threadIdx.x; i < n; i += blockDim.x) s[i] = (float)i;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = s[n - 1 - i];
}

// x[i] += a: patched and resubmitted many times.
extern "C" __global__ void add_scalar(int* x, int a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += a;
}

// A runtime-indexed local array: needs shader local memory.
extern "C" __global__ void local_mem(const int* idx, int* out, int n) {
    int scratch[64];
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    int j = idx[t];
    for (int k = 0; k < 64; k++) scratch[(k * 7 + j) & 63] = k * 3 + t;
    out[t] = scratch[(j + 1) & 63];   // written when k * 7 == 1 (mod 64): k = 55
}

// Does nothing: launch-overhead measurements.
extern "C" __global__ void empty() {}
