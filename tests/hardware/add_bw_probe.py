"""Where add-of-1-GiB's bandwidth goes (not a pytest module): the tensor compiler's add kernel
timed three ways on one GPU, beside torch in the same process.

* ``tensor``: ``(a + b).realize()`` as the benchmark runs it (each run allocates a fresh 1 GiB
  output; the previous one is freed when its tensor goes away);
* ``tensor_kept``: the same, but every result kept alive (no free between runs);
* ``raw_fixed``: the same compiled kernel launched on the raw queue into one output buffer
  allocated once;
* ``raw_barrier``: as raw_fixed with a memory barrier between the kernel and its end stamp
  (the tensor runtime's sequence);
* ``raw_batch10``: ten such launches between two stamps, per launch;
* ``raw_fresh``: as raw_fixed, but a new output buffer allocated and the previous one freed
  before every launch.

GB/s = 3 GiB moved / median GPU time (queue timestamps; torch: CUDA events).

    python tests/hardware/add_bw_probe.py [nvidia:0] [--repeat 10]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, _ROOT)
sys.path.insert(0, os.path.join(_ROOT, "bench"))
from tensor_bench import cuda_seconds  # noqa: E402

N = (1 << 30) // 4


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("device", nargs="?", default="nvidia:0")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--n", type=int, default=N, help="f32 elements (small: a mock check of the script)")
    a = ap.parse_args(argv)
    n = a.n
    import numpy as np
    from tensor import Tensor, dtypes, runtime
    rt = runtime(a.device)
    dev = rt.device
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    ta, tb = Tensor(a_np, dtype=dtypes.float32), Tensor(b_np, dtype=dtypes.float32)
    ta.realize()
    tb.realize()
    rows = {}

    def last_kernel_s() -> float:
        return rt.stats.history[-1].seconds

    (ta + tb).realize()
    times = []
    for _ in range(a.repeat):
        (ta + tb).realize()
        times.append(last_kernel_s())
    rows["tensor"] = statistics.median(times)
    kept, times = [], []
    for _ in range(a.repeat):
        kept.append((ta + tb).realize())
        times.append(last_kernel_s())
    rows["tensor_kept"] = statistics.median(times)
    ok = bool(np.array_equal(kept[-1].numpy()[::4096], (a_np + b_np)[::4096]))
    del kept
    prog = next(p for k, p in rt.programs.items() if k[0] == "ir")
    launch = rt.stats.history[-1]
    abuf, bbuf = ta.lazy.node.buffer, tb.lazy.node.buffer

    def raw(out, barrier: bool = False) -> float:
        t0, t1, done = dev.signal(0), dev.signal(0), dev.signal(0)
        q = dev.compute_queue().timestamp(t0).exec(prog, grid=launch.grid, block=launch.block,
                                                   args=[out, abuf, bbuf])
        if barrier:                     # what the tensor runtime puts between kernel and end stamp
            q.memory_barrier()
        q.timestamp(t1).signal(done, 1).submit()
        done.wait(1, timeout=30)
        return (t1.timestamp - t0.timestamp) / dev.timestamp_hz

    def batch(out, n: int = 10) -> float:
        """n launches between two stamps, a barrier after each (per-launch average)."""
        t0, t1, done = dev.signal(0), dev.signal(0), dev.signal(0)
        q = dev.compute_queue().timestamp(t0)
        for _ in range(n):
            q.exec(prog, grid=launch.grid, block=launch.block, args=[out, abuf, bbuf]).memory_barrier()
        q.timestamp(t1).signal(done, 1).submit()
        done.wait(1, timeout=60)
        return (t1.timestamp - t0.timestamp) / dev.timestamp_hz / n
    out = dev.alloc(n * 4)
    raw(out)
    rows["raw_fixed"] = statistics.median(raw(out) for _ in range(a.repeat))
    rows["raw_barrier"] = statistics.median(raw(out, True) for _ in range(a.repeat))
    rows["raw_batch10"] = statistics.median(batch(out) for _ in range(3))
    times = []
    for _ in range(a.repeat):
        out.free()
        out = dev.alloc(n * 4)
        times.append(raw(out))
    rows["raw_fresh"] = statistics.median(times)
    out.free()
    try:
        import torch
        xa, xb = torch.from_numpy(a_np).cuda(), torch.from_numpy(b_np).cuda()
        rows["torch"] = cuda_seconds(torch, lambda: xa + xb, a.repeat)
    except Exception as e:  # noqa: BLE001 - the table says torch was not measured, and why
        print(f"torch not measured: {e}")
    print(f"add {n} f32, results correct: {ok}; kernel grid {launch.grid} block {launch.block}")
    for name, s in rows.items():
        print(f"{name:<12} {s * 1e6:9.1f} us {3 * n * 4 / s / 1e9:8.0f} GB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
