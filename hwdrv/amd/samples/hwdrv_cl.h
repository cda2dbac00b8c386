/* Work-item queries on the AMDGPU builtins (the ROCm device libraries, where OpenCL's
 * get_global_id & co live, are not used: the code objects are built with -nogpulib). They read
 * the code-object-v5 hidden kernel arguments hwdrv fills as ROCm does (reference/amd.md 4.5). */
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
static inline uint lsize(int d) { return hidden()->group_size[d]; }
static inline uint ngroups(int d) { return hidden()->block_count[d] + (hidden()->remainder[d] != 0); }
static inline uint gid(int d) { return grp(d) * lsize(d) + lid(d); }

/* work-group barrier with local-memory ordering (OpenCL's barrier(CLK_LOCAL_MEM_FENCE)) */
static inline void lbarrier(void) {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
  __builtin_amdgcn_s_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}
