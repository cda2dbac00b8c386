"""Shared pieces of the reliability and stress suites: the devices they run on, two small
kernels (PTX and ir3 assembly here, the AMD build in tests/data/amd/stress), and a runner that
executes code in a child process so a segfault or a hang is observed and counted instead of
killing pytest."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from hwdrv.qcom.samples import guarded_kernel

#: devices the stress suites run on
DEVICES = ["mock:nvidia", "mock:amd", "mock:qcom"]

#: out[i] = in[i] + k for i < n (u32)
ADD_PTX = r"""
.version 8.0
.target sm_90
.address_size 64
.visible .entry add_k(.param .u64 dst, .param .u64 src, .param .u32 k, .param .u32 n)
{
  .reg .pred %p<2>; .reg .b32 %r<8>; .reg .b64 %rd<8>;
  ld.param.u64 %rd1, [dst]; ld.param.u64 %rd2, [src];
  ld.param.u32 %r1, [k]; ld.param.u32 %r2, [n];
  mov.u32 %r3, %ctaid.x; mov.u32 %r4, %ntid.x; mov.u32 %r5, %tid.x;
  mad.lo.s32 %r6, %r3, %r4, %r5;
  setp.ge.u32 %p1, %r6, %r2;
  @%p1 bra DONE;
  mul.wide.u32 %rd3, %r6, 4;
  add.s64 %rd4, %rd2, %rd3; add.s64 %rd5, %rd1, %rd3;
  ld.global.u32 %r7, [%rd4];
  add.s32 %r7, %r7, %r1;
  st.global.u32 [%rd5], %r7;
DONE:
  ret;
}
"""

#: spins ``iters`` times, then writes ``val`` to *flag (a kernel that is still running a while)
SPIN_PTX = r"""
.version 8.0
.target sm_90
.address_size 64
.visible .entry spin_then_write(.param .u64 flag, .param .u32 iters, .param .u32 val)
{
  .reg .pred %p<2>; .reg .b32 %r<6>; .reg .b64 %rd<2>;
  ld.param.u64 %rd1, [flag]; ld.param.u32 %r1, [iters]; ld.param.u32 %r2, [val];
  mov.u32 %r3, 0;
LOOP:
  add.u32 %r3, %r3, 1;
  setp.lt.u32 %p1, %r3, %r1;
  @%p1 bra LOOP;
  st.global.u32 [%rd1], %r2;
  ret;
}
"""


#: the Qualcomm build of the same kernels: ir3 assembly (Mesa's syntax) that hwdrv.qcom.ir3 assembles
#: at test time. ``add_k`` is the backend's element-wise frame (hwdrv.qcom.samples.guarded_kernel,
#: as its vecadd and copy blits) around a load, add and store. Const file (hwdrv.qcom.binary): c0.xyz
#: workgroup counts, c1.xyz workgroup size, parameters from c2.x (a pointer takes two scalars).
#: Scheduling as the mock's hazard rules want: an ALU result is read 3 instructions later at the
#: earliest, a load is waited for with (sy).
QCOM_STRESS = "\n" + guarded_kernel("add_k", [("dst", 8), ("src", 8), ("k", 4), ("n", 4)], "n", [
    "ldg.a.u32 r2.x, g[r1.z+(r0.y)<<2], 1",
    "(sy)add.u r2.y, r2.x, c3.x",                   # + k
    "(rpt2)nop",
    "stg.a.u32 g[r1.x+(r0.y)<<2], r2.y, 1"]) + r"""
.kernel spin_then_write
.param flag 8
.param iters 4
.param val 4
mov.u32u32 r1.x, c2.x
mov.u32u32 r1.y, c2.y
mov.u32u32 r1.z, c2.w
mov.u32u32 r2.x, 0
(rpt2)nop
(jp)add.u r2.x, r2.x, 1
(rpt2)nop
cmps.u.lt p0.x, r2.x, c2.z
(rpt5)nop
br p0.x, #-4
stg.u32 g[r1.x], r1.z, 1
end
nop
"""


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the AMD build of the same kernels (OpenCL C, tests/data/amd/stress/stress.cl)
AMD_STRESS = os.path.join(_ROOT, "tests", "data", "amd", "stress", "stress.hsaco")


def stress_binary(dev) -> bytes:
    """The binary holding ``add_k`` and ``spin_then_write`` for ``dev``'s vendor."""
    if dev.kind == "nvidia":
        return dev.compiler.compile(ADD_PTX + SPIN_PTX.split(".address_size 64", 1)[1])
    if dev.kind == "amd":
        with open(AMD_STRESS, "rb") as f:
            return f.read()
    if dev.kind == "qcom":
        return dev.compiler.compile(QCOM_STRESS)
    raise LookupError(f"no stress kernels for {dev.kind}: add its build to tests/stress_kit.py")


def stress_program(dev, name: str):
    """Kernel ``name`` (``add_k`` or ``spin_then_write``) loaded on ``dev``."""
    return dev.program(stress_binary(dev), name)


def run_isolated(code: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (repository on sys.path); a crash shows up as a
    negative return code, a hang as TimeoutExpired."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=root)
