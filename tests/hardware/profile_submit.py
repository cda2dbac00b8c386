"""Where the CPU time of a launch goes (not a pytest module): cProfile of eager exec+submit
and of resubmitting a built queue.

    python tests/hardware/profile_submit.py [device]
"""
import cProfile
import pstats
import sys

import hwdrv
sys.path.insert(0, "bench")
from nv_bench import EMPTY_PTX  # noqa: E402

dev = hwdrv.open_device(sys.argv[1] if len(sys.argv) > 1 else "nvidia:0")
prog = dev.program(dev.compiler.compile(EMPTY_PTX), "empty")
sig = dev.signal(0)
k = hwdrv.Var("k")
rq = dev.compute_queue().exec(prog, grid=(1,), block=(1,)).signal(sig, k)


def eager(n=3000):
    for _ in range(n):
        dev.compute_queue().exec(prog, grid=(1,), block=(1,)).submit()
    dev.synchronize()


def resubmit(n=3000):
    for i in range(n):
        rq.submit(k=i + 1)
    sig.wait(n, timeout=30)


import time  # noqa: E402

eager(200)
for fn in (eager, resubmit):           # plain timings first: cProfile inflates per-call costs
    sig.value = 0
    t = time.perf_counter()
    fn()
    print(f"{fn.__name__}: {(time.perf_counter() - t) / 3000 * 1e6:.2f} us per call (incl. final wait)")
for fn in (eager, resubmit):
    sig.value = 0
    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    print(f"==== {fn.__name__}")
    pstats.Stats(pr).sort_stats("tottime").print_stats(30)
dev.close()
