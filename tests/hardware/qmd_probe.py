"""Launch-path probe for a real GPU (not a pytest module): runs a one-store kernel under QMD /
PCAS variants, each on a freshly opened device, and prints what the GPU did.

    python tests/hardware/qmd_probe.py
"""
from __future__ import annotations

import sys
import time
import traceback

import numpy as np

import hwdrv
from hwdrv.nvidia import queue as nvq
from hwdrv.nvidia import qmd as qmdmod
from hwdrv.nvidia.gen import hopper as hw

STORE = r"""
.version 8.0
.target sm_90
.address_size 64
.visible .entry store1(.param .u64 out, .param .u32 v)
{
  .reg .b32 %r<4>; .reg .b64 %rd<4>;
  ld.param.u64 %rd1, [out]; ld.param.u32 %r1, [v];
  mov.u32 %r2, %tid.x; mul.wide.u32 %rd2, %r2, 4; add.s64 %rd3, %rd1, %rd2;
  st.global.u32 [%rd3], %r1;
  ret;
}
"""
P = "NVCBC0_QMDV04_00_"


def run(label, qmd_patch=None, pcas=None):
    orig_build = qmdmod.build_template
    orig_launch = list(nvq._PCAS_B)

    def patched(**kw):
        q = orig_build(**kw)
        if qmd_patch:
            qmd_patch(q)
        return q
    import hwdrv.nvidia.program as prog_mod
    prog_mod.build_template = patched
    if pcas is not None:
        nvq._PCAS_B[1] = hw.NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION.encode(pcas)
    try:
        dev = hwdrv.open_device("nvidia:0")
        try:
            out = dev.alloc(4096, host_visible=True)
            out.view(np.uint32)[:] = 0
            prog = dev.program(dev.compiler.compile(STORE), "store1")
            print(f"[{label}] regs={prog.regs} params={prog.params} cb0={prog.cb0_size:#x} "
                  f"pva={prog.program_va:#x}", flush=True)
            sig = dev.signal(0)
            q = dev.compute_queue().exec(prog, grid=(1,), block=(32,), args=[out, 0x1234]).signal(sig, 1)
            q.submit()
            try:
                sig.wait(1, timeout=3)
                waited = "signal ok"
            except hwdrv.GPUHang as e:
                waited = f"HANG: {e}"
            time.sleep(0.05)
            v = out.view(np.uint32)[:33].copy()
            ch = dev._channels["compute"]
            print(f"[{label}] {waited}; out[0:4]={[hex(x) for x in v[:4]]} out[32]={v[32]:#x} "
                  f"notifier={dev._notifier_error()} gpget={ch.gp_get} put={ch.put}", flush=True)
            if q.launches:
                qva = q.launches[0][3]
                from hwdrv.ioctl import hostmem
                words = hostmem.view(qva, 384).view(np.uint32)
                print(f"[{label}] qmd nonzero: {[(i, hex(int(w))) for i, w in enumerate(words) if w]}")
            return bool(v[0] == 0x1234)
        finally:
            dev.close()
    except Exception:
        traceback.print_exc()
        return False
    finally:
        prog_mod.build_template = orig_build
        nvq._PCAS_B[:] = orig_launch


def set_field(name, val, idx=None):
    def f(q):
        fld = getattr(hw, P + name)
        (fld(idx) if idx is not None else fld).set(q, val)
    return f


def both(*fs):
    def f(q):
        for g in fs:
            g(q)
    return f


if __name__ == "__main__":
    A = "NVCBC0_SEND_SIGNALING_PCAS2_B_PCAS_ACTION_"
    results = {}
    results["base"] = run("base")
    results["type2"] = run("type2", set_field("QMD_TYPE", hw.NVCBC0_QMDV04_00_QMD_TYPE_GRID_CTA))
    results["grp3f"] = run("grp3f+type2", both(set_field("QMD_TYPE", 2), set_field("QMD_GROUP_ID", 0x3f)))
    results["pcas9"] = run("pcas9+type2", set_field("QMD_TYPE", 2), getattr(hw, A + "PREFETCH_SCHEDULE"))
    results["pcas3"] = run("pcas3", None, getattr(hw, A + "INVALIDATE_COPY_SCHEDULE"))
    print("RESULTS", results)
    sys.exit(0)
