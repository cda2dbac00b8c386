// A by-value struct of 5000 bytes: more than the classic 4 KiB parameter limit (sm_70+ allows 32764).
struct Big { float v[1250]; };
extern "C" __global__ void big_params(Big big, float* out, int k) {
    out[threadIdx.x] = big.v[threadIdx.x % 1250] + big.v[k];
}
