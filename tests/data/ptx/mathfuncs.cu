// Math and integer intrinsics as nvcc lowers them: division, sqrt, rsqrt, exp2, log2, sin, cos,
// tanh, integer bit tricks, 64-bit multiply-high, conversions with rounding.
extern "C" __global__ void mathfuncs(const float* x, const double* xd, const unsigned* u, float* of, double* od, unsigned* ou, long long* ol, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[i];
    of[8 * i + 0] = __fdiv_rn(v, 3.0f);
    of[8 * i + 1] = sqrtf(fabsf(v));
    of[8 * i + 2] = rsqrtf(fabsf(v) + 1.0f);
    of[8 * i + 3] = exp2f(v * 0.01f);
    of[8 * i + 4] = __log2f(fabsf(v) + 1.0f);
    of[8 * i + 5] = __sinf(v) + __cosf(v);
    of[8 * i + 6] = __fadd_rz(v, 0.1f);
    of[8 * i + 7] = fminf(v, 1.5f) + copysignf(2.0f, v);
    double d = xd[i];
    od[4 * i + 0] = d / 7.0;
    od[4 * i + 1] = sqrt(fabs(d));
    od[4 * i + 2] = fma(d, d, -1.0);
    od[4 * i + 3] = (double)__float2int_rd(v);
    unsigned w = u[i];
    ou[6 * i + 0] = __popc(w);
    ou[6 * i + 1] = __clz(w);
    ou[6 * i + 2] = __brev(w);
    ou[6 * i + 3] = __byte_perm(w, 0x01234567u, 0x5140);
    ou[6 * i + 4] = __umulhi(w, 0x9e3779b9u);
    ou[6 * i + 5] = (w >> 3) ^ (w << 5) ^ (unsigned)((int)w >> 7);
    ol[2 * i + 0] = __mul64hi((long long)w * 0x12345678LL, -0x7654321LL * (long long)w);
    ol[2 * i + 1] = (long long)w * 12345 / ((long long)(w & 255) + 1) - (long long)(v * 3.0f);
}
