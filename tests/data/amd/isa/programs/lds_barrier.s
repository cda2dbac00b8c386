// 4 waves of one workgroup: each lane writes its work-item id to LDS, s_barrier, then reads the
// entry of the mirrored work-item (127 - id) and stores it to s[0:1] + 4 * id.
  v_lshlrev_b32 v1, 2, v0
  ds_store_b32 v1, v0
  s_waitcnt lgkmcnt(0)
  s_barrier
  v_sub_nc_u32 v2, 0x7f, v0
  v_lshlrev_b32 v2, 2, v2
  ds_load_b32 v3, v2
  s_waitcnt lgkmcnt(0)
  global_store_b32 v1, v3, s[0:1]
  s_endpgm
