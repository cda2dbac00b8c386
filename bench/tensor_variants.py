"""Candidate kernel variants of tensor, checked and timed on one GPU in one call: matmul tile
configs per dtype/size, and the softmax. Prints a table (best per case marked with
``*``) and writes JSON (bench/results/, and $OUT when set).

    python bench/tensor_variants.py [--device nvidia:0] [--repeat 20] [--quick]

Every variant runs on fresh random inputs (so a stale output of another variant cannot pass)
and is checked against numpy by ||out - ref|| / ||ref|| (matmul: on 64 random rows; limits per
dtype below) and for NaN; times are GPU timestamps around each kernel (hwdrv signals), the
median of ``--repeat`` runs after one warm-up run. ptxas -v resources are listed when ptxas is
on PATH."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tensor import Tensor, dtypes, runtime  # noqa: E402
from tensor.dtype import bf16_bits_to_f32, f32_to_bf16_bits  # noqa: E402
from tensor_bench import gpu_seconds  # noqa: E402 - bench/ is on sys.path when run as a script
from tensor.matmul import DEFAULT_MMA, DEFAULT_SIMT, MmaConfig, SimtConfig, matmul_kernel  # noqa: E402

#: relative-error limits (f32 accumulation everywhere; narrow outputs are rounded once)
LIMIT = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2}
#: the default first; then the previous default (3 stages, no fragment prefetch) as the
#: baseline, each change alone, the transposed tile, and two blocks per SM at 128 registers
MMA_VARIANTS = [DEFAULT_MMA,
                MmaConfig(stages=3, prefetch=False),
                MmaConfig(stages=3),
                MmaConfig(stages=4, group=16),
                MmaConfig(256, 128, 64, 4, 2, 4),
                MmaConfig(128, 256, 32, 2, 4, 4),
                MmaConfig(128, 128, 32, 2, 4, 4, ctas=2),
                MmaConfig(128, 128, 64, 2, 4, 3, ctas=2)]
SIMT_VARIANTS = [DEFAULT_SIMT, SimtConfig(group=16), SimtConfig(bk=16), SimtConfig(warps_m=2, warps_n=2, tn=16),
                 SimtConfig(group=1)]


def rounded(x: np.ndarray, dt) -> np.ndarray:
    """Host values as ``dt`` stores them, as float32."""
    if dt == dtypes.bfloat16:
        return bf16_bits_to_f32(f32_to_bf16_bits(x))
    return x.astype(dt.np).astype(np.float32)


def resources(ptx: str) -> str:
    """ptxas -v's register / spill / shared summary for sm_90 ('' without ptxas)."""
    exe = shutil.which("ptxas")
    if exe is None:
        return ""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "k.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        r = subprocess.run([exe, "-arch=sm_90", "-v", src, "-o", os.path.join(d, "k.cubin")],
                           capture_output=True, text=True)
    text = r.stdout + r.stderr
    regs = re.search(r"Used (\d+) registers", text)
    spill = re.search(r"(\d+) bytes spill stores", text)
    return f"{regs.group(1) if regs else '?'}r spill{spill.group(1) if spill else '?'}"


def matmul_case(rt, dt, size: int, cfg, repeat: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    a = rounded(rng.standard_normal((size, size), np.float32), dt)
    b = rounded(rng.standard_normal((size, size), np.float32), dt)
    rt.matmul_configs[dt.name] = cfg
    ta, tb = Tensor(a, dt, rt.name), Tensor(b, dt, rt.name)
    out = (ta @ tb).numpy().astype(np.float32)
    rows = rng.choice(size, 64, replace=False)
    ref = a[rows].astype(np.float64) @ b.astype(np.float64)
    err = float(np.linalg.norm(out[rows] - ref) / np.linalg.norm(ref))
    ok = bool(np.isfinite(out).all() and err < LIMIT[dt.name])
    sec = gpu_seconds(rt, lambda: (ta @ tb).realize(), repeat)
    mk = matmul_kernel(rt.device.arch, dt, size, size, size, cfg)
    return {"case": f"matmul {size} {dt.name}", "variant": cfg.tag(), "ok": ok, "rel_err": err,
            "seconds": sec, "rate": 2 * size ** 3 / sec / 1e12, "unit": "TFLOPS",
            "ptxas": resources(mk.ptx), "shared": mk.shared}


def softmax_case(rt, rows: int, cols: int, repeat: int, seed: int) -> dict:
    x = np.random.default_rng(seed).standard_normal((rows, cols), np.float32)
    t = Tensor(x, device=rt.name)
    out = t.softmax(-1).numpy()
    e = np.exp(x.astype(np.float64) - x.max(-1, keepdims=True))
    ref = e / e.sum(-1, keepdims=True)
    err = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
    sec = gpu_seconds(rt, lambda: t.softmax(-1).realize(), repeat)
    return {"case": f"softmax {rows}x{cols} f32", "variant": "default", "ok": err < 1e-5,
            "rel_err": err, "seconds": sec, "rate": 2 * rows * cols * 4 / sec / 1e9,
            "unit": "GB/s", "ptxas": "", "shared": 0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="small sizes, few variants (a smoke run)")
    args = ap.parse_args(argv)
    rt = runtime(args.device)
    s = 16 if args.quick else 1
    mma = MMA_VARIANTS[:2] if args.quick else MMA_VARIANTS
    simt = SIMT_VARIANTS[:2] if args.quick else SIMT_VARIANTS
    rows: list[dict] = []
    seed = 0

    def record(row: dict) -> None:
        rows.append(row)
        print(f"  {row['case']:<22} {row['variant']:<28} {row['rate']:9.2f} {row['unit']:<6} "
              f"err={row['rel_err']:.1e} {'ok' if row['ok'] else 'WRONG'} {row['ptxas']}", flush=True)

    for dt in (dtypes.float16, dtypes.bfloat16):
        for size in (4096 // s, 8192 // s):
            for cfg in mma:
                seed += 1
                record(matmul_case(rt, dt, size, cfg, args.repeat, seed))
    for cfg in simt:
        seed += 1
        record(matmul_case(rt, dtypes.float32, 4096 // s, cfg, args.repeat, seed))
    rt.matmul_configs.clear()
    record(softmax_case(rt, 8192 // s, 8192, args.repeat, seed + 1))

    print(f"\n{'case':<22} {'variant':<28} {'rate':>9} {'unit':<6} {'check':<6} ptxas")
    best = {}
    for r in rows:
        if r["ok"] and r["rate"] > best.get(r["case"], (0, None))[0]:
            best[r["case"]] = (r["rate"], r["variant"])
    for r in rows:
        star = "*" if best.get(r["case"], (0, None))[1] == r["variant"] else " "
        print(f"{r['case']:<22} {r['variant']:<28} {r['rate']:9.2f} {r['unit']:<6} "
              f"{'ok' if r['ok'] else 'WRONG':<6} {r['ptxas']} {star}")
    doc = {"device": rt.device.name, "arch": rt.device.arch, "repeat": args.repeat,
           "quick": args.quick, "rows": rows,
           "best": {c: {"rate": v[0], "variant": v[1]} for c, v in best.items()}}
    stamp = time.strftime("%Y%m%d_%H%M%S")
    dirs = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")]
    if os.environ.get("OUT"):
        dirs.append(os.environ["OUT"])
    for d in dirs:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"tensor_variants_{stamp}.json"), "w") as f:
            json.dump(doc, f, indent=2)
    print(json.dumps(doc["best"], indent=1))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
