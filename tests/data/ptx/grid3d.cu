// 3-D grid and block indexing: every thread writes a code of its coordinates at its linear index.
extern "C" __global__ void grid3d(unsigned long long* out) {
    unsigned bx = blockIdx.x, by = blockIdx.y, bz = blockIdx.z;
    unsigned block = (bz * gridDim.y + by) * gridDim.x + bx;
    unsigned t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    unsigned long long lin = (unsigned long long)block * (blockDim.x * blockDim.y * blockDim.z) + t;
    out[lin] = ((unsigned long long)threadIdx.x) | ((unsigned long long)threadIdx.y << 8) |
               ((unsigned long long)threadIdx.z << 16) | ((unsigned long long)bx << 24) |
               ((unsigned long long)by << 32) | ((unsigned long long)bz << 40);
}
