// Initial wave state (amd.md 4.4): user SGPRs s[0:1] = output address, USER_SGPR_COUNT = 2,
// workgroup ids X/Y/Z enabled -> s2, s3, s4; v0 = packed work-item ids. Grid (2,2,2) of 4x4x2
// work-items (one wave per workgroup). Each lane stores {v0, s2, s3, s4} at
// out + (wg_linear * 32 + lane) * 16.
  s_mul_i32 s5, s4, 2
  s_add_u32 s5, s5, s3
  s_mul_i32 s5, s5, 2
  s_add_u32 s5, s5, s2
  s_lshl_b32 s5, s5, 9
  v_mbcnt_lo_u32_b32 v4, -1, 0
  v_lshlrev_b32 v4, 4, v4
  v_add_nc_u32 v4, s5, v4
  v_mov_b32 v1, s2
  v_mov_b32 v2, s3
  v_mov_b32 v3, s4
  global_store_b128 v4, v[0:3], s[0:1]
  s_sendmsg sendmsg(MSG_DEALLOC_VGPRS)
  s_endpgm
