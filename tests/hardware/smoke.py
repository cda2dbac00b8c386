"""Bring-up smoke run for a real GPU, step by step with an ioctl trace (not a pytest module).

    HWDRV_TRACE=1 python tests/hardware/smoke.py [device]

Prints each stage; on failure the last traced ioctls show where bring-up stopped.
"""
from __future__ import annotations

import os
import sys
import time
import traceback

import numpy as np

import hwdrv
from hwdrv.ioctl import ioc
from hwdrv.nvidia.samples import VECADD_PTX as VECADD
from hwdrv.ioctl.linux import LinuxKernel




class TracingKernel(LinuxKernel):
    """Prints every ioctl (request decoded, name, result)."""

    def ioctl(self, fd: int, request: int, arg: int, name: str = "") -> int:
        t = time.perf_counter()
        try:
            r = super().ioctl(fd, request, arg, name)
            print(f"  ioctl fd={fd} {name or ''} {ioc.describe(request)} -> {r} "
                  f"({(time.perf_counter() - t) * 1e3:.2f} ms)", flush=True)
            return r
        except Exception as e:
            print(f"  ioctl fd={fd} {name or ''} {ioc.describe(request)} FAILED {e}", flush=True)
            raise


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "nvidia:0"
    if os.environ.get("HWDRV_TRACE") and not name.startswith("mock"):
        import hwdrv.registry as reg
        reg._linux_kernel = TracingKernel
    stage = "open"
    try:
        print("devices:", [d.as_dict() for d in hwdrv.devices(include_mock=name.startswith("mock"))], flush=True)
        t = time.perf_counter()
        dev = hwdrv.open_device(name)
        print(f"opened {dev} in {time.perf_counter() - t:.3f}s arch={dev.arch} "
              f"limits={dev.limits}", flush=True)
        stage = "signal"
        sig = dev.signal(0)
        dev.compute_queue().signal(sig, 7).submit()
        sig.wait(7, timeout=5)
        print("signal ok, ts", sig.timestamp, flush=True)
        stage = "copy"
        a = dev.alloc(1 << 20)
        data = np.arange(1 << 18, dtype=np.float32)
        dev.upload(a, data)
        back = dev.download(a, dtype=np.float32)
        if not np.array_equal(back, data):
            raise AssertionError(f"copy round trip returned wrong data: {back[:4]} ...")
        print("copy roundtrip ok", flush=True)
        stage = "exec"
        n = 1 << 18
        b, c = dev.alloc(n * 4), dev.alloc(n * 4)
        dev.upload(b, np.ones(n, np.float32))
        prog = dev.program(dev.compiler.compile(VECADD), "vecadd")
        dev.compute_queue().exec(prog, grid=(n // 256,), block=(256,), args=[a, b, c, n]).signal(sig, 8).submit()
        sig.wait(8, timeout=5)
        out = dev.download(c, dtype=np.float32)
        if not np.array_equal(out, data + 1):
            raise AssertionError(f"vecadd returned wrong data: {out[:4]} ..., expected {(data + 1)[:4]} ...")
        print("vecadd ok", flush=True)
        stage = "close"
        dev.close()
        print("closed", flush=True)
        return 0
    except Exception:
        print(f"FAILED at stage {stage}", flush=True)
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
