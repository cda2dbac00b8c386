// Atomics: a 64-bin histogram in shared memory merged into global with atomicAdd, plus
// global atomicMax/atomicMin/atomicCAS/atomicExch/atomicInc and float atomicAdd.
extern "C" __global__ void histogram(const unsigned* data, int n, unsigned* hist, int* minmax,
                                     float* fsum, unsigned* counter, unsigned* slots) {
    __shared__ unsigned sh[64];
    if (threadIdx.x < 64) sh[threadIdx.x] = 0;
    __syncthreads();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        unsigned v = data[i];
        atomicAdd(&sh[v & 63], 1u);
        atomicMax(&minmax[0], (int)v - 1000);
        atomicMin(&minmax[1], (int)v - 1000);
        atomicAdd(fsum, (float)(v & 7) * 0.5f);
        unsigned old = atomicInc(counter, 0xffffffffu);
        slots[old] = i;                       // every thread gets a distinct slot
        atomicCAS(&minmax[2], 0, i + 1);      // exactly one winner
        atomicExch(&minmax[3], 7);
        atomicXor((unsigned*)&minmax[4], v);
        atomicOr((unsigned*)&minmax[5], 1u << (v & 31));
        atomicAnd((unsigned*)&minmax[6], ~(1u << (v & 31)));
    }
    __syncthreads();
    if (threadIdx.x < 64) atomicAdd(&hist[threadIdx.x], sh[threadIdx.x]);
}
