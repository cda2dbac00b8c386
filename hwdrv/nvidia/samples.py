"""The NVIDIA backend's sample kernels (PTX): the demo's vecadd and the provocations that
``python -m hwdrv diagnose`` runs. The real GPU (through ptxas) and the mock run the same text.

Each entry of :data:`SAMPLES` is (source, kernel name) with the argument convention the core's
``hwdrv.provoke`` expects (see there).
"""
from __future__ import annotations

_HEADER = """.version 8.0
.target sm_90
.address_size 64
"""
OOB_STORE_PTX = _HEADER + r"""
.visible .entry oob_store(.param .u64 bad, .param .u32 v)
{
  .reg .b32 %r<2>; .reg .b64 %rd<2>;
  ld.param.u64 %rd1, [bad]; ld.param.u32 %r1, [v];
  st.global.u32 [%rd1], %r1;
  ret;
}
"""
TRAP_PTX = _HEADER + r"""
.visible .entry illegal_trap(.param .u64 out)
{
  .reg .b32 %r<2>; .reg .b64 %rd<2>;
  ld.param.u64 %rd1, [out]; mov.u32 %r1, 1;
  st.global.u32 [%rd1], %r1;
  trap;
  ret;
}
"""
SPIN_PTX = _HEADER + r"""
.visible .entry spin_forever(.param .u64 flag)
{
  .reg .pred %p; .reg .b32 %r<2>; .reg .b64 %rd<2>;
  ld.param.u64 %rd1, [flag];
spin:
  ld.volatile.global.u32 %r1, [%rd1];
  setp.eq.u32 %p, %r1, 0;
  @%p bra spin;
  ret;
}
"""
VECADD_PTX = _HEADER + r"""
.visible .entry vecadd(.param .u64 a, .param .u64 b, .param .u64 c, .param .u32 n)
{
  .reg .pred %p; .reg .b32 %r<6>; .reg .b64 %rd<8>; .reg .f32 %f<4>;
  ld.param.u64 %rd1, [a]; ld.param.u64 %rd2, [b]; ld.param.u64 %rd3, [c]; ld.param.u32 %r1, [n];
  mov.u32 %r2, %ctaid.x; mov.u32 %r3, %ntid.x; mov.u32 %r4, %tid.x;
  mad.lo.s32 %r5, %r2, %r3, %r4;
  setp.ge.u32 %p, %r5, %r1; @%p bra done;
  mul.wide.u32 %rd4, %r5, 4;
  add.s64 %rd5, %rd1, %rd4; add.s64 %rd6, %rd2, %rd4; add.s64 %rd7, %rd3, %rd4;
  ld.global.f32 %f1, [%rd5]; ld.global.f32 %f2, [%rd6]; add.f32 %f3, %f1, %f2; st.global.f32 [%rd7], %f3;
done:
  ret;
}
"""



SAMPLES = {
    "vecadd": (VECADD_PTX, "vecadd"),
    "oob_store": (OOB_STORE_PTX, "oob_store"),
    "illegal_instruction": (TRAP_PTX, "illegal_trap"),
    "endless_loop": (SPIN_PTX, "spin_forever"),
}
