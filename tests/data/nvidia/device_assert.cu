// Device-side assert calls __assertfail, which the CUDA driver provides: the cubin keeps an
// R_CUDA_64 relocation against that undefined symbol, which a loader without libcuda must refuse.
#include <cassert>
extern "C" __global__ void checked(float* x, int n) {
    assert(n > 0);
    x[threadIdx.x] = n;
}
