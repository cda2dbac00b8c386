// Calls through a __device__ table of function pointers, from two kernels: the table lives in
// .nv.global.init (its address in .nv.constant4, patched by R_CUDA_64), and because each kernel
// has its own copy of the callees ptxas gives each a jump table in .nv.constant2.<kernel>.
typedef float (*op_t)(float);
__device__ float twice(float x) { return 2.0f * x; }
__device__ float square(float x) { return x * x; }
__device__ op_t ops[2] = {twice, square};
extern "C" __global__ void apply(float* x, int which) {
    x[threadIdx.x] = ops[which & 1](x[threadIdx.x]);
}
extern "C" __global__ void apply_both(float* x) {
    x[threadIdx.x] = ops[0](ops[1](x[threadIdx.x]));
}
