"""``python -m hwdrv demo``: a small tensor program on the default device, checked against
numpy, with a report of what ran (kernels, launches, GPU times)."""
from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from .device import attach, runtime
from .tensor import Tensor


def run(device: str | None = None, out=None) -> bool:
    """Run the demo on ``device`` (default device if None), printing to ``out`` (default: the
    current sys.stdout, looked up per call); True when every result matches."""
    out = sys.stdout if out is None else out
    rt = runtime(device)
    name = rt.device.name
    print(f"tensor demo on {name} ({rt.device.arch}{', mock' if rt.device.is_mock else ''})", file=out)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 96)).astype(np.float32)
    y = rng.standard_normal((96,)).astype(np.float32)
    a = rng.standard_normal((64, 64)).astype(np.float16)
    b = rng.standard_normal((64, 32)).astype(np.float16)
    checks = [
        ("fused elementwise chain", lambda: ((Tensor(x, device=name) * 2 + Tensor(y, device=name)).relu().sqrt()),
         np.sqrt(np.maximum(x * 2 + y, 0)), 1e-5),
        ("softmax", lambda: Tensor(x, device=name).softmax(axis=-1),
         np.exp(x - x.max(-1, keepdims=True)) / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True), 1e-5),
        ("matmul f16", lambda: Tensor(a, device=name) @ Tensor(b, device=name),
         (a.astype(np.float32) @ b.astype(np.float32)), 2e-2),
    ]
    ok = True
    for title, build, ref, tol in checks:
        before = len(rt.stats.history)
        t0 = time.perf_counter()
        got = build().numpy().astype(np.float32)
        wall = time.perf_counter() - t0
        err = float(np.max(np.abs(got - ref) / (1 + np.abs(ref))))
        good = err <= tol
        ok &= good
        print(f"\n{title}: {'OK' if good else 'MISMATCH'} (max rel err {err:.2e}, wall {wall * 1e3:.1f} ms)", file=out)
        for launch in rt.stats.history[before:]:
            print(f"  {launch.name:<36} shape={list(launch.shape)!s:<10} grid={launch.grid} "
                  f"block={launch.block} gpu {launch.seconds * 1e6:.1f} us", file=out)
    print(f"\nkernels compiled: {rt.stats.compiles}, launches: {rt.stats.launches}", file=out)
    return ok


def run_demo(device: Any) -> int:
    """What ``python -m hwdrv demo`` calls with the device it opened: 0 when all results match."""
    return 0 if run(attach(device).name) else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m hwdrv demo [device]``."""
    argv = sys.argv[1:] if argv is None else argv
    return 0 if run(argv[0] if argv else None) else 1


if __name__ == "__main__":
    raise SystemExit(main())
