// buffer loads/stores through a V# in s[0:3] (base, stride 0, num_records) and s[4:7] (stride 8):
// out[lane] = in[lane] * 3 via offen; lanes past num_records read 0 and their stores are dropped.
// Structured: v3 = lane index, load dword 1 of record lane from s[4:7] and store it at out2.
  v_mbcnt_lo_u32_b32 v0, -1, 0
  v_lshlrev_b32 v1, 2, v0
  buffer_load_b32 v2, v1, s[0:3], 0 offen
  s_waitcnt vmcnt(0)
  v_mul_lo_u32 v2, v2, 3
  buffer_store_b32 v2, v1, s[8:11], 0 offen
  buffer_load_b32 v4, v0, s[4:7], 0 idxen offset:4
  s_waitcnt vmcnt(0)
  buffer_store_b32 v4, v1, s[8:11], 0 offen offset:128
  s_endpgm
