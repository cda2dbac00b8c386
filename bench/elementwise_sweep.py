"""Elementwise code-generation variants on one GPU in one call: 16-byte accesses per thread
(``TENSOR_NV_ACCESSES``) x store cache hint (``TENSOR_NV_STORE_HINT``), each in its own process
(the renderer reads them at import), timed on add of 1 GiB f32 against PyTorch in the same
process. Prints a table and writes JSON ($OUT or bench/results/).

    python bench/elementwise_sweep.py [--device nvidia:0] [--repeat 20]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

VARIANTS = [(1, ""), (2, ""), (4, ""), (1, ".cs"), (2, ".cs"), (4, ".cs")]
N = (1 << 30) // 4


def one(device: str | None, repeat: int) -> dict:
    """Time ours and torch's ``a + b`` on 2**28 f32 in this process."""
    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tensor import Tensor, dtypes, runtime
    from tensor_bench import cuda_seconds, gpu_seconds
    rt = runtime(device)
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal(N, dtype=np.float32)
    b_np = rng.standard_normal(N, dtype=np.float32)
    a, b = Tensor(a_np, dtype=dtypes.float32), Tensor(b_np, dtype=dtypes.float32)
    a.realize()
    b.realize()
    out = (a + b).realize()
    ok = bool(np.array_equal(out.numpy()[:: 1 << 12], (a_np + b_np)[:: 1 << 12]))
    ours = gpu_seconds(rt, lambda: (a + b).realize(), repeat)
    torch_s = None
    try:
        import torch
        ta, tb = torch.from_numpy(a_np).cuda(), torch.from_numpy(b_np).cuda()
        torch_s = cuda_seconds(torch, lambda: ta + tb, repeat)
    except Exception as e:  # noqa: BLE001 - the table says torch was not measured, and why
        print(f"torch not measured: {e}", file=sys.stderr)
    return {"ok": ok, "ours_s": ours, "torch_s": torch_s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one(a.device, a.repeat)))
        return 0
    rows = []
    print(f"{'accesses':>8} {'hint':>5} {'ours GB/s':>10} {'torch GB/s':>11} {'ratio':>6} ok")
    for acc, hint in VARIANTS:
        env = dict(os.environ, TENSOR_NV_ACCESSES=str(acc), TENSOR_NV_STORE_HINT=hint)
        cmd = [sys.executable, __file__, "--one", "--repeat", str(a.repeat)] + (["--device", a.device] if a.device else [])
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if r.returncode:
            print(f"{acc:>8} {hint or '-':>5} failed: {r.stderr.strip()[-300:]}")
            continue
        res = json.loads(r.stdout.strip().splitlines()[-1])
        gb = 3 * N * 4 / 1e9
        ours = gb / res["ours_s"]
        torch_gb = gb / res["torch_s"] if res["torch_s"] else None
        ratio = ours / torch_gb if torch_gb else None
        rows.append({"accesses": acc, "hint": hint, "ours_gbs": ours, "torch_gbs": torch_gb, "ratio": ratio,
                     "ok": res["ok"]})
        print(f"{acc:>8} {hint or '-':>5} {ours:>10.1f} {torch_gb or float('nan'):>11.1f} "
              f"{ratio or float('nan'):>6.3f} {res['ok']}")
    out_dir = os.environ.get("OUT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"elementwise_sweep_{time.strftime('%Y%m%d_%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump({"rows": rows}, f, indent=1)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
