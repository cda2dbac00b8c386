// __launch_bounds__ becomes .maxntid in PTX and EIATTR_MAX_THREADS in the cubin; a kernel with
// no parameters has no EIATTR_PARAM_CBANK record at all.
extern "C" __global__ void __launch_bounds__(256) bounded(float* out) { out[threadIdx.x] = 1.0f; }
extern "C" __global__ void no_params() { }
