// v_dot2_f32_bf16 and v_dot2_f32_f16 on packed pairs loaded from s[0:1]; results to s[2:3]
  v_mbcnt_lo_u32_b32 v0, -1, 0
  v_lshlrev_b32 v0, 3, v0
  global_load_b64 v[1:2], v0, s[0:1]
  s_waitcnt vmcnt(0)
  v_dot2_f32_bf16 v3, v1, v2, 1.0
  v_dot2_f32_f16 v4, v1, v2, 0
  global_store_b64 v0, v[3:4], s[2:3]
  s_endpgm
