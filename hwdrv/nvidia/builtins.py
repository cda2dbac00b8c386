"""Kernels hwdrv itself launches: the compute queue's copy (a grid-stride copy by the SMs, far
faster device-to-device than the copy engine attached to graphics: 189 GB/s on an H100).

Written in PTX so one source serves ptxas on a GPU and the PTX interpreter on the mock.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .device import NVDevice
    from .program import NVProgram

# One grid-stride loop over n items (16-byte vectors or bytes), parameterised per kernel:
# %rd4 = item index, %rd6 = grid stride, %rd7 = byte offset of the item.
_COPY_ENTRY = """
.visible .entry {name}(.param .u64 dst, .param .u64 src, .param .u64 n)
{{
  .reg .pred %p;
  .reg .b16 %h1;
  .reg .b32 %r<9>;
  .reg .b64 %rd<10>;
  ld.param.u64 %rd1, [dst];
  ld.param.u64 %rd2, [src];
  ld.param.u64 %rd3, [n];
  mov.u32 %r1, %ctaid.x;
  mov.u32 %r2, %ntid.x;
  mov.u32 %r3, %tid.x;
  mov.u32 %r4, %nctaid.x;
  mul.wide.u32 %rd4, %r1, %r2;
  cvt.u64.u32 %rd5, %r3;
  add.u64 %rd4, %rd4, %rd5;
  mul.wide.u32 %rd6, %r4, %r2;
LOOP:
  setp.ge.u64 %p, %rd4, %rd3;
  @%p bra DONE;
  {offset}
  add.u64 %rd8, %rd2, %rd7;
  add.u64 %rd9, %rd1, %rd7;
  {move}
  add.u64 %rd4, %rd4, %rd6;
  bra LOOP;
DONE:
  ret;
}}
"""
COPY_PTX = ".version 8.0\n.target sm_90\n.address_size 64\n" + "".join([
    # 16 bytes per thread per step (n = number of 16-byte vectors)
    _COPY_ENTRY.format(name="hwdrv_copy16", offset="shl.b64 %rd7, %rd4, 4;",
                       move="ld.global.nc.v4.u32 {%r5, %r6, %r7, %r8}, [%rd8];\n"
                            "  st.global.v4.u32 [%rd9], {%r5, %r6, %r7, %r8};"),
    # one byte per thread per step: tails and unaligned copies
    _COPY_ENTRY.format(name="hwdrv_copy1", offset="mov.u64 %rd7, %rd4;",
                       move="ld.global.u8 %h1, [%rd8];\n  st.global.u8 [%rd9], %h1;"),
])
COPY_THREADS = 512
#: blocks per SM for the copy kernels: enough loads in flight to saturate memory
COPY_BLOCKS_PER_SM = 4


def builtin(dev: "NVDevice", name: str) -> "NVProgram":
    """The built-in kernel ``name``, compiled and loaded on first use."""
    progs = dev._builtins
    if name not in progs:
        binary = dev.compiler.compile(COPY_PTX)
        for k in ("hwdrv_copy16", "hwdrv_copy1"):
            progs[k] = dev.program(binary, k)
    return progs[name]
