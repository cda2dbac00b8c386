// Divergence and loops: a data-dependent trip count (Collatz steps), a switch, and a
// per-thread local array indexed dynamically (forces .local memory).
extern "C" __global__ void collatz(const unsigned* in, unsigned* steps, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned x = in[i], s = 0;
    while (x != 1 && x != 0) {
        x = (x & 1) ? 3 * x + 1 : x >> 1;
        ++s;
    }
    steps[i] = s;
}
extern "C" __global__ void branches(const int* in, int* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int v = in[i];
    int r;
    switch (v & 3) {
        case 0: r = v * 7; break;
        case 1: r = v / 3; break;
        case 2: r = v % 5 - 9; break;
        default: r = -v; break;
    }
    volatile int local[16];
    for (int k = 0; k < 16; ++k) local[k] = k * v;
    r += local[(unsigned)v % 16];
    out[i] = r;
}
