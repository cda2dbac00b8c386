// Non-inlined device functions: parameters, return values, recursion, local arrays and the stack.

__device__ __noinline__ float poly(float x, float a, float b, float c) { return (a * x + b) * x + c; }

__device__ __noinline__ int collatz_steps(long long v) {
  int steps = 0;
  while (v != 1) { v = (v & 1) ? 3 * v + 1 : v / 2; ++steps; }
  return steps;
}

__device__ __noinline__ unsigned long long fib(int k) { return k < 2 ? (unsigned long long)k : fib(k - 1) + fib(k - 2); }

__device__ __noinline__ int gcd(int a, int b) { return b == 0 ? a : gcd(b, a % b); }

struct Pair { double lo, hi; };
__device__ __noinline__ Pair minmax3(double a, double b, double c) {
  Pair p; p.lo = fmin(a, fmin(b, c)); p.hi = fmax(a, fmax(b, c)); return p;
}

__device__ __noinline__ void sort_local(int* v, int n) {   // insertion sort through a pointer to local memory
  for (int i = 1; i < n; ++i) {
    int x = v[i], j = i - 1;
    while (j >= 0 && v[j] > x) { v[j + 1] = v[j]; --j; }
    v[j + 1] = x;
  }
}

extern "C" __global__ void call_poly(const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = poly(x[i], 0.5f, -2.0f, 3.0f);
}

extern "C" __global__ void call_collatz(const int* start, int* steps, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) steps[i] = collatz_steps(start[i]);
}

extern "C" __global__ void recursive_fib(const int* k, unsigned long long* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = fib(k[i]);
}

extern "C" __global__ void recursive_gcd(const int* a, const int* b, int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = gcd(a[i], b[i]);
}

extern "C" __global__ void call_struct_return(const double* a, double* lo, double* hi, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    Pair p = minmax3(a[3 * i], a[3 * i + 1], a[3 * i + 2]);
    lo[i] = p.lo; hi[i] = p.hi;
  }
}

extern "C" __global__ void local_sort(const int* in, int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    int v[12];
    for (int k = 0; k < 12; ++k) v[k] = in[i * 12 + k];
    sort_local(v, 12);
    for (int k = 0; k < 12; ++k) out[i * 12 + k] = v[k];
  }
}

extern "C" __global__ void local_lookup(const int* idx, int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    int table[32];
    for (int k = 0; k < 32; ++k) table[k] = k * k + i;
    out[i] = table[idx[i] & 31] - table[(idx[i] >> 5) & 31];
  }
}

// Dynamic stack allocation in a recursive device function: each activation's alloca'd buffer
// must survive the deeper calls.
__device__ __noinline__ int alloca_sum(int n, int depth) {
  int* buf = (int*)alloca(n * sizeof(int));
  for (int k = 0; k < n; ++k) buf[k] = k + depth;
  int s = depth > 0 ? alloca_sum(n, depth - 1) : 0;
  for (int k = 0; k < n; ++k) s += buf[k];
  return s;
}

extern "C" __global__ void dynamic_alloca(const int* ns, int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = alloca_sum(ns[i], 3);
}
