"""Programmatic dependent launch (``exec(..., early_start=True)``) cases shared by the mock test
(tests/test_early_start.py) and the GPU test (tests/hardware/test_early_start_hw.py)."""
from __future__ import annotations

import numpy as np

import hwdrv

PTX = """
.version 8.0
.target sm_90
.address_size 64
.visible .entry pdl_empty() { griddepcontrol.launch_dependents; ret; }
.visible .entry pdl_inc(.param .u64 p)
{
    .reg .b32 %r<3>;
    .reg .b64 %rd<2>;
    griddepcontrol.wait;
    ld.param.u64 %rd1, [p];
    cvta.to.global.u64 %rd1, %rd1;
    ld.global.u32 %r1, [%rd1];
    add.u32 %r2, %r1, 1;
    st.global.u32 [%rd1], %r2;
    griddepcontrol.launch_dependents;
    ret;
}
"""


def dependent_increments(dev, n: int, early: bool, timeout: float = 30) -> int:
    """n launches of pdl_inc on one counter, each reading what the one before wrote."""
    prog = dev.program(dev.compiler.compile(PTX), "pdl_inc")
    x = dev.alloc(16)
    dev.upload(x, np.zeros(4, np.uint32))
    done = dev.signal(0)
    q = dev.compute_queue()
    for _ in range(n):
        q.exec(prog, grid=(1,), block=(32,), args=[x], early_start=early)
    q.signal(done, 1).submit()
    done.wait(1, timeout=timeout)
    got = int(dev.download(x, size=4, dtype=np.uint32)[0])
    x.free()
    return got


def us_per_empty_kernel(dev, n: int, early: bool, rounds: int = 6) -> float:
    """GPU time per kernel of a bound queue of n pdl_empty launches (median of rounds after one)."""
    prog = dev.program(dev.compiler.compile(PTX), "pdl_empty")
    t0, t1, done = dev.signal(0), dev.signal(0), dev.signal(0)
    v = hwdrv.Var("v")
    q = dev.compute_queue().timestamp(t0)
    for _ in range(n):
        q.exec(prog, grid=(1,), block=(1,), early_start=early)
    q.timestamp(t1).signal(done, v).bind()
    per = []
    for i in range(1, rounds + 2):
        q.submit(v=i)
        done.wait(i, timeout=30)
        if i > 1:
            per.append((t1.timestamp_ns - t0.timestamp_ns) / n / 1e3)
    return float(np.median(per))
