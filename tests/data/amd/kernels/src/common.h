/* Work-item queries written on the AMDGPU builtins, because the ROCm device libraries (where
 * OpenCL's get_global_id & co live) are not used: the code objects are built with -nogpulib.
 * The semantics follow OpenCL 2.0 with non-uniform work-groups, computed the way ROCm's ockl
 * does it from the code-object-v5 hidden kernel arguments:
 *   hidden_block_count_d = number of FULL work-groups, hidden_remainder_d = size of the last
 *   partial group (0 if none), hidden_group_size_d = the work-group size. */
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

typedef struct {
  uint block_count[3];      /* offset 0 of the implicit-argument block */
  ushort group_size[3];     /* offset 12 */
  ushort remainder[3];      /* offset 18 */
} hidden_t;

static inline __constant hidden_t *hidden(void) {
  return (__constant hidden_t *)__builtin_amdgcn_implicitarg_ptr();
}
static inline uint lid(int d) {
  return d == 0 ? __builtin_amdgcn_workitem_id_x() : d == 1 ? __builtin_amdgcn_workitem_id_y()
                                                            : __builtin_amdgcn_workitem_id_z();
}
static inline uint grp(int d) {
  return d == 0 ? __builtin_amdgcn_workgroup_id_x() : d == 1 ? __builtin_amdgcn_workgroup_id_y()
                                                             : __builtin_amdgcn_workgroup_id_z();
}
/* the enqueued (uniform) work-group size */
static inline uint enq_lsize(int d) { return hidden()->group_size[d]; }
/* actual size of this work-group (smaller in the last, partial group) */
static inline uint lsize(int d) {
  return grp(d) < hidden()->block_count[d] ? hidden()->group_size[d] : hidden()->remainder[d];
}
static inline uint ngroups(int d) { return hidden()->block_count[d] + (hidden()->remainder[d] != 0); }
static inline uint gsize(int d) {
  return hidden()->block_count[d] * hidden()->group_size[d] + hidden()->remainder[d];
}
static inline uint gid(int d) { return grp(d) * enq_lsize(d) + lid(d); }
static inline uint flat_lid(void) { return lid(0) + lsize(0) * (lid(1) + lsize(1) * lid(2)); }

/* work-group barrier with local-memory ordering (what OpenCL's barrier(CLK_LOCAL_MEM_FENCE) does) */
static inline void lbarrier(void) {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
  __builtin_amdgcn_s_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}
/* lane within the wave32 and a generic shuffle through ds_bpermute (byte address = lane*4) */
static inline uint lane_id(void) { return __builtin_amdgcn_mbcnt_lo(~0u, 0u); }
static inline int shfl(int v, uint src_lane) { return __builtin_amdgcn_ds_bpermute((int)(src_lane << 2), v); }
static inline float shflf(float v, uint src_lane) { return as_float(shfl(as_int(v), src_lane)); }

/* integer min/max/clamp (OpenCL's min/max/clamp are device-library functions) */
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline uint umin(uint a, uint b) { return a < b ? a : b; }
static inline int iclamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
