// a global load from an address nothing maps: s[0:1] holds the address
  v_mov_b32 v1, 0
  global_load_b32 v2, v1, s[0:1] offset:16
  s_waitcnt vmcnt(0)
  s_endpgm
