// an endless loop: only the dispatch deadline / cancel event ends it
loop:
  s_add_u32 s4, s4, 1
  s_branch loop
