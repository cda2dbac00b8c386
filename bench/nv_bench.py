"""NVIDIA launch and copy benchmarks: hwdrv against CUDA (through CuPy) on the same GPU.

    python bench/nv_bench.py [--device nvidia:0] [--out bench/results/nv_bench.json]

Each side runs in its own process (both reserve large address ranges). Prints a table of
ratios (hwdrv / CUDA for throughput, CUDA / hwdrv for times: > 1 means hwdrv is better) and
writes the raw numbers as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

EMPTY_PTX = """
.version 8.0
.target sm_90
.address_size 64
.visible .entry empty() { ret; }
"""
N_KERNELS = 1000
COPY_BYTES = 1 << 30


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def bench_hwdrv(device: str) -> dict:
    import hwdrv
    dev = hwdrv.open_device(device)
    res: dict = {"device": repr(dev), "driver": getattr(dev, "driver_version", "")}
    prog = dev.program(dev.compiler.compile(EMPTY_PTX), "empty")
    t0, t1, done = dev.signal(0), dev.signal(0), dev.signal(0)
    # GPU time per kernel in a queue of 1000 launches (GPU timestamps around them)
    q = dev.compute_queue().timestamp(t0)
    for _ in range(N_KERNELS):
        q.exec(prog, grid=(1,), block=(1,))
    v = hwdrv.Var("v")
    q.timestamp(t1).signal(done, v)
    per = []
    for i in range(1, 12):
        q.submit(v=i)
        done.wait(i, timeout=30)
        if i > 1:
            per.append((t1.timestamp - t0.timestamp) / N_KERNELS / 1e3)
    res["gpu_us_per_kernel_1000_queue"] = _median(per)
    # same with programmatic dependent launch: kernels that run griddepcontrol.launch_dependents,
    # each launch allowed to start early (exec(..., early_start=True))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    from early_start_cases import us_per_empty_kernel
    res["gpu_us_per_kernel_1000_early_start"] = us_per_empty_kernel(dev, N_KERNELS, early=True, rounds=10)
    # same, bound (the command stream uploaded once)
    qb = dev.compute_queue().timestamp(t0)
    for _ in range(N_KERNELS):
        qb.exec(prog, grid=(1,), block=(1,))
    qb.timestamp(t1).signal(done, v).bind()
    per = []
    done.value = 0
    for i in range(1, 12):
        qb.submit(v=i)
        done.wait(i, timeout=30)
        if i > 1:
            per.append((t1.timestamp - t0.timestamp) / N_KERNELS / 1e3)
    res["gpu_us_per_kernel_1000_bound"] = _median(per)
    # CPU time per eager exec + submit (a new queue each time, as an eager runtime would)
    for _ in range(200):
        dev.compute_queue().exec(prog, grid=(1,), block=(1,)).submit()
    dev.synchronize()
    n = 5000
    reps = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            dev.compute_queue().exec(prog, grid=(1,), block=(1,)).submit()
        reps.append((time.perf_counter() - t) / n * 1e6)
        dev.synchronize()
    res["cpu_us_per_eager_launch"] = _median(reps)
    # the same launch through dev.launch (exec + submit in one call, no queue object)
    launch = dev.launch
    for _ in range(200):
        launch(prog, (1,), (1,))
    dev.synchronize()
    reps = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            launch(prog, (1,), (1,))
        reps.append((time.perf_counter() - t) / n * 1e6)
        dev.synchronize()
    res["cpu_us_per_device_launch"] = _median(reps)
    # resubmitting one prebuilt queue (patched value) - the replay path
    k = hwdrv.Var("k")
    rq = dev.compute_queue().exec(prog, grid=(1,), block=(1,)).signal(done, k)
    done.value = 0
    reps = []
    for r in range(5):
        t = time.perf_counter()
        for i in range(n):
            rq.submit(k=r * n + i + 1)
        reps.append((time.perf_counter() - t) / n * 1e6)
        done.wait(r * n + n, timeout=30)
    res["cpu_us_per_resubmit"] = _median(reps)
    # bound queues (commands in command memory: a submit patches the value and pushes one ring
    # entry). A bound queue may not be resubmitted before its run finished, and each submission
    # ends with a wait-for-idle release the GPU takes ~4-5 us for: a few queues in turn would time
    # the GPU's pace, not the CPU's. So each rep submits NB different queues once (fewer than the
    # GPFIFO ring holds, nothing waits), then waits for them outside the timing, as the eager and
    # resubmit rows (and CuPy's launches) are timed.
    nb = 2000
    bqs = [dev.compute_queue().exec(prog, grid=(1,), block=(1,)).signal(done, k).bind() for _ in range(nb)]
    done.value = 0
    reps = []
    for r in range(5):
        base = r * nb
        t = time.perf_counter()
        for i in range(nb):
            bqs[i].submit(k=base + i + 1)
        reps.append((time.perf_counter() - t) / nb * 1e6)
        done.wait(base + nb, timeout=30)
    res["cpu_us_per_bound_resubmit"] = _median(reps)
    # copies: 1 GiB, pinned host memory <-> device, and device <-> device
    host = dev.alloc(COPY_BYTES, host_visible=True)
    host.view()[:] = 1
    d0, d1 = dev.alloc(COPY_BYTES), dev.alloc(COPY_BYTES)

    def copy_gbps(dst, src, make_queue=dev.copy_queue) -> float:
        times = []
        for i in range(6):
            done.value = 0
            make_queue().timestamp(t0).copy(dst, src, COPY_BYTES).timestamp(t1).signal(done, 1).submit()
            done.wait(1, timeout=30)
            if i:
                times.append((t1.timestamp - t0.timestamp) / 1e9)
        return COPY_BYTES / _median(times) / 1e9

    res["h2d_GBps"] = copy_gbps(d0, host)
    res["d2h_GBps"] = copy_gbps(host, d0)
    res["d2d_GBps_rw"] = 2 * copy_gbps(d1, d0)      # bytes read + bytes written
    res["d2d_sm_GBps_rw"] = 2 * copy_gbps(d1, d0, dev.compute_queue)     # copied by the SMs
    dev.close()
    return res


def bench_cuda() -> dict:
    import cupy as cp
    res: dict = {"cupy": cp.__version__, "gpu": cp.cuda.runtime.getDeviceProperties(0)["name"].decode()}
    kern = cp.RawKernel('extern "C" __global__ void empty() {}', "empty")
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        kern((1,), (1,), ())
        stream.synchronize()
        stream.begin_capture()
        for _ in range(N_KERNELS):
            kern((1,), (1,), ())
        graph = stream.end_capture()
        graph.launch(stream)
        stream.synchronize()
        e0, e1 = cp.cuda.Event(), cp.cuda.Event()
        per = []
        for _ in range(10):
            e0.record(stream)
            graph.launch(stream)
            e1.record(stream)
            e1.synchronize()
            per.append(cp.cuda.get_elapsed_time(e0, e1) * 1e3 / N_KERNELS)
        res["gpu_us_per_kernel_graph_1000"] = _median(per)
        n = 5000
        reps = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(n):
                kern((1,), (1,), ())
            reps.append((time.perf_counter() - t) / n * 1e6)
            stream.synchronize()
        res["cpu_us_per_launch"] = _median(reps)
        host = cp.cuda.alloc_pinned_memory(COPY_BYTES)
        hview = np.frombuffer(host, np.uint8, COPY_BYTES)
        hview[:] = 1
        d0 = cp.empty(COPY_BYTES, cp.uint8)
        d1 = cp.empty(COPY_BYTES, cp.uint8)

        def timed(fn) -> float:
            times = []
            for i in range(6):
                e0.record(stream)
                fn()
                e1.record(stream)
                e1.synchronize()
                if i:
                    times.append(cp.cuda.get_elapsed_time(e0, e1) / 1e3)
            return COPY_BYTES / _median(times) / 1e9

        rt = cp.cuda.runtime
        res["h2d_GBps"] = timed(lambda: rt.memcpyAsync(d0.data.ptr, hview.ctypes.data, COPY_BYTES,
                                                       rt.memcpyHostToDevice, stream.ptr))
        res["d2h_GBps"] = timed(lambda: rt.memcpyAsync(hview.ctypes.data, d0.data.ptr, COPY_BYTES,
                                                       rt.memcpyDeviceToHost, stream.ptr))
        res["d2d_GBps_rw"] = 2 * timed(lambda: rt.memcpyAsync(d1.data.ptr, d0.data.ptr, COPY_BYTES,
                                                              rt.memcpyDeviceToDevice, stream.ptr))
    return res


ROWS = [  # (label, hwdrv key, cuda key, kind): kind "time" -> ratio cuda/hwdrv, "rate" -> hwdrv/cuda
    ("GPU us per empty kernel, queue of 1000", "gpu_us_per_kernel_1000_queue", "gpu_us_per_kernel_graph_1000", "time"),
    ("  same, bound queue", "gpu_us_per_kernel_1000_bound", "gpu_us_per_kernel_graph_1000", "time"),
    ("  same, early_start (PDL) vs plain graph", "gpu_us_per_kernel_1000_early_start", "gpu_us_per_kernel_graph_1000",
     "time"),
    ("CPU us per eager exec+submit", "cpu_us_per_eager_launch", "cpu_us_per_launch", "time"),
    ("CPU us per dev.launch (one call)", "cpu_us_per_device_launch", "cpu_us_per_launch", "time"),
    ("CPU us per resubmit of a built queue", "cpu_us_per_resubmit", "cpu_us_per_launch", "time"),
    ("CPU us per resubmit of a bound queue", "cpu_us_per_bound_resubmit", "cpu_us_per_launch", "time"),
    ("H2D GB/s, 1 GiB pinned", "h2d_GBps", "h2d_GBps", "rate"),
    ("D2H GB/s, 1 GiB pinned", "d2h_GBps", "d2h_GBps", "rate"),
    ("D2D GB/s (read+write), 1 GiB, copy engine", "d2d_GBps_rw", "d2d_GBps_rw", "rate"),
    ("D2D GB/s (read+write), 1 GiB, SM copy", "d2d_sm_GBps_rw", "d2d_GBps_rw", "rate"),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="nvidia:0")
    ap.add_argument("--part", choices=["all", "hwdrv", "cuda"], default="all")
    ap.add_argument("--out", default="bench/results/nv_bench.json")
    a = ap.parse_args()
    if a.part == "hwdrv":
        print(json.dumps(bench_hwdrv(a.device)))
        return 0
    if a.part == "cuda":
        print(json.dumps(bench_cuda()))
        return 0
    parts = {}
    for part in ("hwdrv", "cuda"):
        r = subprocess.run([sys.executable, __file__, "--part", part, "--device", a.device],
                           capture_output=True, text=True, timeout=600)
        if r.returncode:
            print(f"{part} part failed:\n{r.stdout}\n{r.stderr}", file=sys.stderr)
            parts[part] = {"error": r.stderr[-2000:]}
        else:
            parts[part] = json.loads(r.stdout.strip().splitlines()[-1])
    h, c = parts["hwdrv"], parts["cuda"]
    print(f"{'measure':42s} {'hwdrv':>10s} {'CUDA':>10s} {'ratio':>8s}  (ratio > 1: hwdrv better)")
    rows = []
    for label, hk, ck, kind in ROWS:
        hv, cv = h.get(hk), c.get(ck)
        ratio = None if hv is None or cv is None else (cv / hv if kind == "time" else hv / cv)
        rows.append({"measure": label, "hwdrv": hv, "cuda": cv, "ratio": ratio})
        fmt = lambda x: "-" if x is None else f"{x:10.3f}"  # noqa: E731
        print(f"{label:42s} {fmt(hv)} {fmt(cv)} {'-' if ratio is None else f'{ratio:8.2f}'}")
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "hwdrv": h, "cuda": c, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
