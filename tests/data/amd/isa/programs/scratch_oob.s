// a private access one dword past a 64-byte lane slice
  v_mov_b32 v1, 1
  scratch_store_b32 off, v1, off offset:64
  s_endpgm
