// USER_SGPR_COUNT = 5 with only ENABLE_SGPR_WORKGROUP_ID_Y: the Y id is in s5.
// s[0:1] = output address; lane 0 of each workgroup stores s5 at out + 4 * s5.
  v_mbcnt_lo_u32_b32 v1, -1, 0
  v_cmpx_eq_u32 0, v1
  s_lshl_b32 s6, s5, 2
  v_mov_b32 v2, s6
  v_mov_b32 v3, s5
  global_store_b32 v2, v3, s[0:1]
  s_endpgm
