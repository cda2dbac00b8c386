"""tensor vs PyTorch on one GPU: elementwise add (GB/s), softmax (GB/s), sums over the last and
the first axis (GB/s), matmul and matmul with a fused bias + relu epilogue (TFLOPS), as ratios
to PyTorch. Prints a table and writes JSON to bench/results/.

    python bench/tensor_bench.py [--device nvidia:0] [--repeat 20] [--quick | --small] [--only TEXT]
    python bench/tensor_bench.py --matmul-configs [--f32] [--quick | --small] [--only TEXT]

``--only TEXT``: just the cases whose name contains TEXT (``--only bias``: the fused epilogue
cases: ``relu(a @ b + bias)`` as one kernel, the same with fusion off (two kernels), and
PyTorch's ``torch.relu(a @ b + bias)``).

``--matmul-configs``: instead of the cases, time f16 and bf16 matmul at 8192 (4096 with
--quick) with each config of MATMUL_SWEEP (wgmma tile shapes and the mma.sync kernel) and print
one table; every result is checked against numpy on sampled rows and columns. With ``--f32``:
exact f32 matmul at 4096 (2048 with --quick) with each SIMT config of SIMT_SWEEP instead, against
torch.matmul with TF32 off; a config that fails its check is reported WRONG and the sweep goes on.

``--small``: tiny sizes that the mock GPU runs in seconds (``--device mock:nvidia``), to check
the script end to end; its numbers mean nothing. Our times are GPU timestamps around each
kernel (hwdrv signals), summed over the kernels one run launches (a split reduce: 2), without
the gaps between them; PyTorch's are CUDA events around the same op. Targets (issue 14):
add and softmax >= 1.0x; reductions: near memory speed (no target ratio yet)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tensor import Tensor, dtypes, runtime  # noqa: E402
from hwdrv import HwdrvError  # noqa: E402
from tensor.matmul import SIMT_SWEEP, MmaConfig, Tf32Config, WgmmaConfig  # noqa: E402

TARGETS = {"add": 1.0, "softmax": 1.0, "sum last": None, "sum first": None, "matmul f32": 0.9,
           "matmul f16": 0.95, "matmul bf16": 0.95,
           # one fused kernel against PyTorch's matmul + add + relu kernels
           "matmul+bias+relu f16": 1.0, "matmul+bias+relu f16 unfused": None, "matmul+bias+relu f32": None}
EPILOGUE = "matmul+bias+relu"           # kinds that start so: relu(a @ b + bias), bias of N


#: configs --matmul-configs tries (None: the default path, wgmma on sm_90)
_D = {"store": "direct"}     # the configs below spell out what they were measured with
MATMUL_SWEEP = [None, WgmmaConfig(stages=4, **_D), WgmmaConfig(stages=3, **_D), WgmmaConfig(bn=128, stages=6, **_D),
                WgmmaConfig(bn=256, consumers=1, stages=4, **_D), WgmmaConfig(bn=192, consumers=3, stages=3, **_D),
                WgmmaConfig(group=16), WgmmaConfig(group=4), WgmmaConfig(lag=1),
                WgmmaConfig(stages=3, lag=1, **_D), WgmmaConfig(bn=128, stages=5, lag=1, store="tma"),
                WgmmaConfig(setmaxnreg=False, stages=4, **_D), WgmmaConfig(bn=128, m_blocks=2, stages=4, **_D),
                WgmmaConfig(bn=128, m_blocks=2, stages=3, store="tma"),
                WgmmaConfig(bn=128, m_blocks=2, stages=6, pingpong=True, **_D),
                WgmmaConfig(bn=128, m_blocks=2, stages=4, store="tma", pingpong=True),
                WgmmaConfig(bn=256, stages=3, store="tma", pingpong=True), MmaConfig()]


def cases(quick: bool, small: bool = False) -> list[tuple[str, str, tuple, object, object]]:
    """(name, kind, shape, dtype, matmul config or None); sizes per the issue unless --quick
    (1/16) or --small (mock). Matmul shapes are (m, n, k)."""
    if small:       # odd sizes on purpose: vector tails, ragged rows, a padded split
        return [("add small f32", "add", (4 * 256 * 3 + 5,), dtypes.float32, None),
                ("softmax 4x1000 f32", "softmax", (4, 1000), dtypes.float32, None),
                ("sum last 8x3000 f32", "sum last", (8, 3000), dtypes.float32, None),
                ("sum first 3000x40 f32", "sum first", (3000, 40), dtypes.float32, None),
                ("matmul 64 f16", "matmul f16", (64, 64, 64), dtypes.float16, None),
                ("matmul 64 f16 mma.sync", "matmul f16", (64, 64, 64), dtypes.float16, MmaConfig()),
                ("matmul 200x136x72 bf16", "matmul bf16", (200, 136, 72), dtypes.bfloat16, None),
                ("matmul 64 f32", "matmul f32", (64, 64, 64), dtypes.float32, None),
                ("matmul 64 f32 tf32", "matmul f32", (64, 64, 64), dtypes.float32, Tf32Config()),
                ("matmul+bias+relu 200x136x72 f16", "matmul+bias+relu f16", (200, 136, 72), dtypes.float16, None),
                ("matmul+bias+relu 200x136x72 f16 unfused", "matmul+bias+relu f16 unfused", (200, 136, 72),
                 dtypes.float16, None),
                ("matmul+bias+relu 100x72x40 f32", "matmul+bias+relu f32", (100, 72, 40), dtypes.float32, None)]
    s = 16 if quick else 1
    add_n = (1 << 28) // s                 # 1 GiB of f32
    return [("add 1GiB f32", "add", (add_n,), dtypes.float32, None),
            ("softmax 8192x8192 f32", "softmax", (8192 // s, 8192), dtypes.float32, None),
            ("sum last 8192x8192 f32", "sum last", (8192 // s, 8192), dtypes.float32, None),
            ("sum first 8192x8192 f32", "sum first", (8192 // s, 8192), dtypes.float32, None),
            ("matmul 4096 f16", "matmul f16", (4096 // s,) * 3, dtypes.float16, None),
            ("matmul 8192 f16", "matmul f16", (8192 // s,) * 3, dtypes.float16, None),
            ("matmul 4096 bf16", "matmul bf16", (4096 // s,) * 3, dtypes.bfloat16, None),
            ("matmul 8192 bf16", "matmul bf16", (8192 // s,) * 3, dtypes.bfloat16, None),
            # the mma.sync kernel sm_90 used before wgmma, for comparison in the same run
            ("matmul 8192 f16 mma.sync", "matmul f16", (8192 // s,) * 3, dtypes.float16, MmaConfig()),
            # ragged tiles in every dimension (M % 128, N % 256, K % 64)
            ("matmul 6000x5000x4104 f16", "matmul f16", (6000 // s, 5000 // s, 4104 // s // 8 * 8),
             dtypes.float16, None),
            ("matmul 4096 f32", "matmul f32", (4096 // s,) * 3, dtypes.float32, None),
            # the opt-in TF32 path (matmul_precision("tf32")); torch's column is exact f32 unless
            # torch.backends.cuda.matmul.allow_tf32 is set
            ("matmul 4096 f32 tf32", "matmul f32", (4096 // s,) * 3, dtypes.float32, Tf32Config()),
            ("matmul+bias+relu 8192 f16", "matmul+bias+relu f16", (8192 // s,) * 3, dtypes.float16, None),
            ("matmul+bias+relu 8192 f16 unfused", "matmul+bias+relu f16 unfused", (8192 // s,) * 3,
             dtypes.float16, None),
            ("matmul+bias+relu 4096 f32", "matmul+bias+relu f32", (4096 // s,) * 3, dtypes.float32, None)]


def sweep_cases(quick: bool, small: bool = False, f32: bool = False) -> list[tuple[str, str, tuple, object, object]]:
    """The --matmul-configs cases: f16 and bf16 at 8192 (4096 with --quick, 200x136x72 with
    --small) with each config of MATMUL_SWEEP; with ``f32`` f32 at 4096 (2048 with --quick) with
    each config of SIMT_SWEEP."""
    if f32:
        shape = (200, 136, 72) if small else (2048,) * 3 if quick else (4096,) * 3
        return [(f"matmul {'x'.join(map(str, shape))} f32 simt {cfg.tag()}", "matmul f32", shape,
                 dtypes.float32, cfg) for cfg in SIMT_SWEEP]
    shape = (200, 136, 72) if small else (4096,) * 3 if quick else (8192,) * 3
    out = []
    for dt in (dtypes.float16, dtypes.bfloat16):
        for cfg in MATMUL_SWEEP:
            tag = "default" if cfg is None else f"{'wgmma' if isinstance(cfg, WgmmaConfig) else 'mma'} {cfg.tag()}"
            kind = f"matmul {dt.name.replace('float', 'f')}"
            out.append((f"matmul {'x'.join(map(str, shape))} {dt.name} {tag}", kind, shape, dt, cfg))
    return out


def work(kind: str, shape: tuple, itemsize: int) -> tuple[float, str]:
    """(amount per run, unit): bytes moved for memory-bound ops, flops for matmul."""
    if kind == "add":
        return 3 * shape[0] * itemsize, "GB/s"
    if kind == "softmax":
        return 2 * shape[0] * shape[1] * itemsize, "GB/s"
    if kind.startswith("sum"):            # read once, one value out per row / column
        return (shape[0] * shape[1] + shape[0 if kind == "sum last" else 1]) * itemsize, "GB/s"
    m, n, k = shape
    return 2 * m * n * k, "TFLOPS"


def ours(device: str, kind: str, shape: tuple, dt, repeat: int, config=None) -> float:
    """Median GPU seconds of the kernels one run launches (``config``: the matmul config to use)."""
    rt = runtime(device)
    rng = np.random.default_rng(0)
    if kind == "add":
        a = Tensor(rng.random(shape, np.float32), dt, device)
        b = Tensor(rng.random(shape, np.float32), dt, device)
        run = lambda: (a + b).realize()  # noqa: E731
    elif kind == "softmax":
        x = Tensor(rng.random(shape, np.float32), dt, device)
        run = lambda: x.softmax(-1).realize()  # noqa: E731
    elif kind.startswith("sum"):
        x = Tensor(rng.random(shape, np.float32), dt, device)
        axis = -1 if kind == "sum last" else 0
        run = lambda: x.sum(axis).realize()  # noqa: E731
    else:
        m, n, k = shape
        bias = None
        if kind.startswith(EPILOGUE):     # centred: relu clips about half the outputs
            a = Tensor(rng.random((m, k), np.float32) - 0.5, dt, device)
            b = Tensor(rng.random((k, n), np.float32) - 0.5, dt, device)
            bias = Tensor(rng.random((n,), np.float32) - 0.5, dt, device)
            run = lambda: (a @ b + bias).relu().realize()  # noqa: E731
        else:
            a = Tensor(rng.random((m, k), np.float32), dt, device)
            b = Tensor(rng.random((k, n), np.float32), dt, device)
            run = lambda: (a @ b).realize()  # noqa: E731
    saved, saved_fuse = dict(rt.matmul_configs), rt.fuse_epilogues
    if config is not None:
        rt.matmul_configs[dt.name] = config
    rt.fuse_epilogues = not kind.endswith("unfused")
    try:
        seconds = gpu_seconds(rt, run, repeat)   # the first run compiles
        # a fast wrong kernel must not count
        if kind.startswith("matmul"):
            check_matmul(run().numpy(), a, b, dt, bias=bias)
        else:
            check(kind, shape, run().numpy(), *((a, b) if kind == "add" else (x,)))
    finally:
        rt.matmul_configs.clear()
        rt.matmul_configs.update(saved)
        rt.fuse_epilogues = saved_fuse
    return seconds


def check_matmul(got: np.ndarray, a: Tensor, b: Tensor, dt, samples: int = 32, bias: Tensor | None = None) -> None:
    """Raise when sampled rows and columns of ``got`` differ from numpy's product of the same
    (rounded) inputs (computed in f32: a full f64 product at 8192 would take the host minutes),
    or with ``bias`` from relu(product + bias); tolerances of the output type, the absolute
    one scaled with sqrt(K)."""
    ha, hb = a.numpy().astype(np.float32), b.numpy().astype(np.float32)
    hbias = None if bias is None else bias.numpy().astype(np.float32)

    def want(x: np.ndarray, cols: slice | np.ndarray) -> np.ndarray:
        return x if hbias is None else np.maximum(x + hbias[cols], 0)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, ha.shape[0], samples)
    cols = rng.integers(0, hb.shape[1], samples)
    rtol = {dtypes.float16: 1e-2, dtypes.bfloat16: 3e-2}.get(dt, 1e-4)
    if "matmul_tf32_" in runtime(a.device).stats.history[-1].name:
        rtol = 2e-3                     # inputs rounded to 10 fraction bits
    atol = rtol * np.sqrt(ha.shape[1]) * max(1.0, float(np.abs(ha).max() * np.abs(hb).max()))
    got = got.astype(np.float32)
    np.testing.assert_allclose(got[rows], want(ha[rows] @ hb, slice(None)), rtol=rtol, atol=atol,
                               err_msg=f"matmul {ha.shape} @ {hb.shape} rows")
    np.testing.assert_allclose(got[:, cols], want(ha @ hb[:, cols], cols), rtol=rtol, atol=atol,
                               err_msg=f"matmul {ha.shape} @ {hb.shape} columns")


def check(kind: str, shape: tuple, got: np.ndarray, *inputs: Tensor) -> None:
    """Raise when ``got`` differs from numpy's result on the same inputs (f32 tolerances)."""
    hs = [t.numpy().astype(np.float64) for t in inputs]
    if kind == "add":
        want = hs[0] + hs[1]
    elif kind == "softmax":
        e = np.exp(hs[0] - hs[0].max(-1, keepdims=True))
        want = e / e.sum(-1, keepdims=True)
    else:
        want = hs[0].sum(-1 if kind == "sum last" else 0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=f"{kind} {shape}")


def gpu_seconds(rt, run, repeat: int) -> float:
    """Median over ``repeat`` runs (after one warm-up run) of the GPU time of the kernels one
    run launches (counted by ``stats.launches``: the history keeps only the last 1000)."""
    run()
    times = []
    for _ in range(repeat):
        before = rt.stats.launches
        run()
        n = rt.stats.launches - before
        times.append(sum(launch.seconds for launch in rt.stats.history[-n:]) if n else 0.0)
    return statistics.median(times)


def torch_time(kind: str, shape: tuple, dt, repeat: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    tdt = {dtypes.float32: torch.float32, dtypes.float16: torch.float16, dtypes.bfloat16: torch.bfloat16}[dt]
    torch.backends.cuda.matmul.allow_tf32 = False    # f32 matmul: exact, as ours (PyTorch's default)
    if kind == "add":
        a, b = torch.rand(shape, device="cuda", dtype=tdt), torch.rand(shape, device="cuda", dtype=tdt)
        run = lambda: a + b  # noqa: E731
    elif kind == "softmax":
        x = torch.rand(shape, device="cuda", dtype=tdt)
        run = lambda: torch.softmax(x, -1)  # noqa: E731
    elif kind.startswith("sum"):
        x = torch.rand(shape, device="cuda", dtype=tdt)
        axis = -1 if kind == "sum last" else 0
        run = lambda: torch.sum(x, axis)  # noqa: E731
    elif kind.startswith(EPILOGUE):
        m, n, k = shape
        a, b = torch.rand((m, k), device="cuda", dtype=tdt) - 0.5, torch.rand((k, n), device="cuda", dtype=tdt) - 0.5
        bias = torch.rand((n,), device="cuda", dtype=tdt) - 0.5
        run = lambda: torch.relu(a @ b + bias)  # noqa: E731
    else:
        m, n, k = shape
        a, b = torch.rand((m, k), device="cuda", dtype=tdt), torch.rand((k, n), device="cuda", dtype=tdt)
        run = lambda: a @ b  # noqa: E731
    return cuda_seconds(torch, run, repeat)


def cuda_seconds(torch, run, repeat: int) -> float:
    """Median over ``repeat`` runs (after one warm-up run) of ``run()``'s GPU time between two
    CUDA events (torch's stream)."""
    run()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        run()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="hwdrv device (default: the tensor default)")
    ap.add_argument("--repeat", type=int, default=20)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="1/16 of the sizes (a smoke run)")
    size.add_argument("--small", action="store_true",
                      help="tiny sizes the mock runs (--device mock:nvidia): checks the script only")
    ap.add_argument("--matmul-configs", action="store_true",
                    help="time f16/bf16 matmul with each config of MATMUL_SWEEP instead of the cases")
    ap.add_argument("--f32", action="store_true",
                    help="with --matmul-configs: f32 matmul with each SIMT config of SIMT_SWEEP")
    ap.add_argument("--only", default="", metavar="TEXT", help="only the cases whose name contains TEXT")
    args = ap.parse_args(argv)
    rt = runtime(args.device)
    rows = []
    if args.f32 and not args.matmul_configs:
        ap.error("--f32 selects the configs --matmul-configs sweeps: give both")
    todo = sweep_cases(args.quick, args.small, args.f32) if args.matmul_configs else cases(args.quick, args.small)
    todo = [c for c in todo if args.only in c[0]]
    if not todo:
        ap.error(f"no case name contains {args.only!r}")
    width = max(24, max(len(c[0]) for c in todo) + 2)
    print(f"{'case':<{width}}{'ours':>14}{'torch':>14}{'ratio':>8}{'target':>8}")
    for name, kind, shape, dt, config in todo:
        amount, unit = work(kind, shape, dt.itemsize)
        scale = 1e9 if unit == "GB/s" else 1e12
        try:
            t_ours = ours(rt.name, kind, shape, dt, args.repeat, config)
        except (AssertionError, HwdrvError) as e:
            if not args.matmul_configs:
                raise
            print(f"{name:<{width}}{'WRONG':>14}  {str(e).splitlines()[0][:100]}")   # the sweep goes on
            rows.append({"case": name, "unit": "TFLOPS", "ours": None, "error": str(e)[:2000]})
            continue
        t_torch = torch_time(kind, shape, dt, args.repeat)
        r_ours = amount / t_ours / scale if t_ours > 0 else float("nan")
        r_torch = amount / t_torch / scale if t_torch else None
        ratio = r_ours / r_torch if r_torch else None
        target = TARGETS[kind]
        rows.append({"case": name, "unit": unit, "ours": r_ours, "torch": r_torch, "ratio": ratio,
                     "target": target, "ours_seconds": t_ours, "torch_seconds": t_torch,
                     "last_kernel": rt.stats.history[-1].name})
        print(f"{name:<{width}}{r_ours:>9.2f} {unit:<4}" +
              (f"{r_torch:>9.2f} {unit:<4}{ratio:>8.2f}" if r_torch else f"{'-':>14}{'-':>8}") +
              f"{target if target else '-':>8}")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    prefix = ("tensor_bench_matmul_configs" + ("_f32" if args.f32 else "")) if args.matmul_configs else "tensor_bench"
    path = os.path.join(out_dir, f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump({"device": rt.device.name, "arch": rt.device.arch, "repeat": args.repeat,
                   "quick": args.quick, "small": args.small, "rows": rows}, f, indent=2)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
