// a real gfx11 instruction the emulator does not implement
  v_cubeid_f32 v0, v1, v2, v3
  s_endpgm
