// private memory: each lane stores its id + 100 at private byte 4 and reads it back into
// s[0:1] + 4 * id; then a store at private byte 60 (the last dword of a 64-byte lane slice).
  v_mbcnt_lo_u32_b32 v0, -1, 0
  v_add_nc_u32 v1, 0x64, v0
  scratch_store_b32 off, v1, off offset:4
  scratch_store_b32 off, v0, off offset:60
  s_waitcnt vmcnt(0)
  scratch_load_b32 v2, off, off offset:4
  v_lshlrev_b32 v3, 2, v0
  s_waitcnt vmcnt(0)
  global_store_b32 v3, v2, s[0:1]
  s_endpgm
