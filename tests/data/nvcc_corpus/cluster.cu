// Thread block clusters (sm_90): cluster geometry, cluster-wide barriers, distributed shared memory.
#include <cooperative_groups.h>
namespace cg = cooperative_groups;

extern "C" __global__ void __cluster_dims__(2, 2, 1) cluster_geometry(unsigned* out) {
  cg::cluster_group c = cg::this_cluster();
  unsigned cta = blockIdx.x + gridDim.x * blockIdx.y;
  if (threadIdx.x == 0) {
    dim3 bi = c.block_index(), dims = c.dim_blocks();
    unsigned* o = out + 6 * cta;
    o[0] = c.block_rank(); o[1] = c.num_blocks(); o[2] = bi.x; o[3] = bi.y; o[4] = dims.x * 10 + dims.y;
    o[5] = blockIdx.x / 2 + 100 * (blockIdx.y / 2);
  }
  c.sync();
}

extern "C" __global__ void __cluster_dims__(4, 1, 1) dsmem_ring(const int* in, int* out) {
  __shared__ int buf[128];
  cg::cluster_group c = cg::this_cluster();
  unsigned rank = c.block_rank();
  buf[threadIdx.x] = in[blockIdx.x * 128 + threadIdx.x];
  c.sync();
  int* next = c.map_shared_rank(buf, (rank + 1) % c.num_blocks());
  out[blockIdx.x * 128 + threadIdx.x] = next[127 - threadIdx.x] + (int)rank;
  c.sync();
}

extern "C" __global__ void __cluster_dims__(2, 1, 1) dsmem_atomic(int* out) {
  __shared__ int counter;
  cg::cluster_group c = cg::this_cluster();
  if (threadIdx.x == 0) counter = 0;
  c.sync();
  int* leader = c.map_shared_rank(&counter, 0);
  atomicAdd(leader, (int)threadIdx.x + 1);
  c.sync();
  if (c.block_rank() == 0 && threadIdx.x == 0) out[blockIdx.x / 2] = counter;
}
