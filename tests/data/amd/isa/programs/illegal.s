// an encoding that is no gfx11 instruction (0xffffffff) after one valid instruction
  s_nop 0
  .long 0xffffffff
  s_endpgm
