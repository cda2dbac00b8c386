"""Two GPUs of one host: hwdrv peer copies and all-reduce against CUDA (CuPy, torch, NCCL).

    python bench/multi_gpu_bench.py [--devices nvidia:0,nvidia:1] [--copy-bytes N]
                                    [--allreduce-bytes N] [--out bench/results/multi_gpu.json]

Measured, each side in its own process (all of them reserve large address ranges):
  * hwdrv: peer copy bandwidth on GPU 0's copy engine writing into GPU 1 (push) and GPU 1's
    copy engine reading GPU 0 (pull), from GPU timestamps around the copy; the ring all-reduce
    of tensor/multi.py over ``--allreduce-bytes`` of float32 (wall time, host to host);
  * CuPy: cudaMemcpyPeerAsync between the same GPUs (CUDA events);
  * torch: ``y.copy_(x)`` cuda:0 -> cuda:1 (CUDA events), and ``torch.distributed.all_reduce``
    (NCCL, two processes, NCCL_NVLS_ENABLE=0: multicast off) over the same bytes.
A side whose library is missing is reported as skipped. ``--devices mock:nvidia:0,mock:nvidia:1``
runs the hwdrv side on the mock (a smoke run; its numbers mean nothing).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPEATS = 5


def hwdrv_side(devices: list[str], copy_bytes: int, allreduce_bytes: int) -> dict:
    import numpy as np

    import hwdrv
    from hwdrv import registry
    from tensor import multi
    if devices[0].startswith("mock:"):
        registry.reset_mock_machine("nvidia", gpus=len(devices))
    devs = [hwdrv.open_device(d) for d in devices]
    res: dict = {"devices": [repr(d) for d in devs]}
    a, b = devs[0], devs[1]
    link = a.enable_peer(b)
    res["link"] = link.kind
    res["direct"] = link.direct
    x, y = a.alloc(copy_bytes), b.alloc(copy_bytes)
    for name, dev, dst, src in (("push_gbps", a, y, x), ("pull_gbps", b, x, y)):
        if not link.direct:
            break
        s0, s1, fin = dev.signal(0), dev.signal(0), dev.signal(0)
        v = hwdrv.Var("v")
        q = dev.copy_queue().timestamp(s0).copy(dst, src, copy_bytes).timestamp(s1).signal(fin, v)
        rates = []
        for i in range(1, REPEATS + 2):
            q.submit(v=i)
            fin.wait(i, timeout=60)
            if i > 1:
                rates.append(copy_bytes / max(s1.timestamp - s0.timestamp, 1))   # bytes/ns = GB/s
        res[name] = statistics.median(rates)
    numel = allreduce_bytes // 4
    bufs = [d.alloc(numel * 4) for d in devs]
    for i, (d, buf) in enumerate(zip(devs, bufs)):
        d.upload(buf, np.full(min(numel, 1 << 20), i + 1, np.float32))
    if link.direct:
        multi._ring(devs, bufs, numel, 120.0)            # warm-up: loads the add program
        times = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            multi._ring(devs, bufs, numel, 120.0)
            times.append(time.perf_counter() - t)
        res["allreduce_s"] = statistics.median(times)
        res["allreduce_busbw_gbps"] = 2 * (len(devs) - 1) / len(devs) * allreduce_bytes / res["allreduce_s"] / 1e9
    for d in reversed(devs):
        d.close()
    return res


def cupy_side(copy_bytes: int) -> dict:
    try:
        import cupy as cp
    except ImportError as e:
        return {"skipped": f"cupy: {e}"}
    rt = cp.cuda.runtime
    if rt.getDeviceCount() < 2:
        return {"skipped": "fewer than 2 CUDA devices"}
    with cp.cuda.Device(0):
        x = cp.empty(copy_bytes, cp.uint8)
    with cp.cuda.Device(1):
        y = cp.empty(copy_bytes, cp.uint8)
    res = {"can_access_peer": bool(rt.deviceCanAccessPeer(0, 1))}
    for dev, peer_dev in ((0, 1), (1, 0)):
        with cp.cuda.Device(dev):
            try:
                rt.deviceEnablePeerAccess(peer_dev)
            except rt.CUDARuntimeError:
                pass                          # already enabled
    with cp.cuda.Device(0):
        stream = cp.cuda.Stream(non_blocking=True)
        rates = []
        for i in range(REPEATS + 1):
            e0, e1 = cp.cuda.Event(), cp.cuda.Event()
            e0.record(stream)
            rt.memcpyPeerAsync(y.data.ptr, 1, x.data.ptr, 0, copy_bytes, stream.ptr)
            e1.record(stream)
            e1.synchronize()
            if i:
                rates.append(copy_bytes / (cp.cuda.get_elapsed_time(e0, e1) * 1e6))
        res["peer_copy_gbps"] = statistics.median(rates)
    return res


def torch_copy_side(copy_bytes: int) -> dict:
    try:
        import torch
    except ImportError as e:
        return {"skipped": f"torch: {e}"}
    if torch.cuda.device_count() < 2:
        return {"skipped": "fewer than 2 CUDA devices"}
    x = torch.empty(copy_bytes, dtype=torch.uint8, device="cuda:0")
    y = torch.empty(copy_bytes, dtype=torch.uint8, device="cuda:1")
    rates = []
    for i in range(REPEATS + 1):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        y.copy_(x)
        e1.record()
        torch.cuda.synchronize(0)
        torch.cuda.synchronize(1)
        if i:
            rates.append(copy_bytes / (e0.elapsed_time(e1) * 1e6))
    return {"peer_copy_gbps": statistics.median(rates),
            "can_access_peer": torch.cuda.can_device_access_peer(0, 1)}


def _nccl_worker(rank: int, world: int, nbytes: int, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), NCCL_NVLS_ENABLE="0")
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world)
    t = torch.ones(nbytes // 4, dtype=torch.float32, device=f"cuda:{rank}")
    dist.all_reduce(t)
    torch.cuda.synchronize()
    times = []
    for _ in range(REPEATS):
        dist.barrier()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        dist.all_reduce(t)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"allreduce_s": statistics.median(times), "world": world}, f)
    dist.destroy_process_group()


def nccl_side(nbytes: int) -> dict:
    try:
        import torch
        import torch.multiprocessing as mp
    except ImportError as e:
        return {"skipped": f"torch: {e}"}
    if torch.cuda.device_count() < 2 or not torch.distributed.is_nccl_available():
        return {"skipped": "fewer than 2 CUDA devices or no NCCL"}
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        mp.spawn(_nccl_worker, args=(2, nbytes, 29531, f.name), nprocs=2, join=True)
        res = json.load(open(f.name))
    res["busbw_gbps"] = 2 * (2 - 1) / 2 * nbytes / res["allreduce_s"] / 1e9
    res["nccl_nvls_enable"] = "0"
    return res


def _in_subprocess(side: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--side", side, "--devices", args.devices,
           "--copy-bytes", str(args.copy_bytes), "--allreduce-bytes", str(args.allreduce_bytes)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": root})
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"rc {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", default="nvidia:0,nvidia:1")
    ap.add_argument("--copy-bytes", type=int, default=1 << 30)
    ap.add_argument("--allreduce-bytes", type=int, default=1 << 30)
    ap.add_argument("--out", default="")
    ap.add_argument("--side", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        fn = {"hwdrv": lambda: hwdrv_side(args.devices.split(","), args.copy_bytes, args.allreduce_bytes),
              "cupy": lambda: cupy_side(args.copy_bytes), "torch": lambda: torch_copy_side(args.copy_bytes),
              "nccl": lambda: nccl_side(args.allreduce_bytes)}[args.side]
        print(json.dumps(fn()))
        return
    sides = ["hwdrv"] if args.devices.startswith("mock:") else ["hwdrv", "cupy", "torch", "nccl"]
    res = {s: _in_subprocess(s, args) for s in sides}
    res["copy_bytes"], res["allreduce_bytes"] = args.copy_bytes, args.allreduce_bytes
    print(json.dumps(res, indent=1))
    h = res["hwdrv"]
    for other, key in (("cupy", "peer_copy_gbps"), ("torch", "peer_copy_gbps")):
        if key in res.get(other, {}) and "push_gbps" in h:
            print(f"peer copy: hwdrv {h['push_gbps']:.1f} GB/s vs {other} {res[other][key]:.1f} GB/s "
                  f"(ratio {h['push_gbps'] / res[other][key]:.2f})")
    if "allreduce_s" in res.get("nccl", {}) and "allreduce_s" in h:
        print(f"all-reduce {args.allreduce_bytes >> 20} MiB: hwdrv {h['allreduce_s'] * 1e3:.2f} ms vs NCCL "
              f"{res['nccl']['allreduce_s'] * 1e3:.2f} ms")
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
