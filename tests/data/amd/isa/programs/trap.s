// s_trap stops the wave with a fault naming the PC and the instruction.
  s_mov_b32 s4, 7
  s_trap 2
  s_endpgm
