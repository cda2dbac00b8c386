// A kernel taking a > 4 KiB struct by value: the parameter block exceeds 4 KiB, so the
// parameter layout and ld.param at large offsets are exercised.
struct Big { int n; float scale; float table[1100]; double bias; };
extern "C" __global__ void bigparam(Big p, float* out) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < p.n) out[i] = p.table[(i * 7) % 1100] * p.scale + (float)p.bias;
}
