"""Throughput of the PTX interpreter (the mock NVIDIA GPU's ISA) on real nvcc output.

Runs kernels from tests/data/ptx over a mock GPU page table and reports thread-instructions per
second (instructions x threads that issued them). The target is >= 2 million/s on a
1M-thread vector add on a 2-core machine. Prints a table and writes JSON.

    python bench/ptx_interp.py [--threads 1048576] [--repeat 3] [--json bench/results/ptx_interp.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwdrv.mock import GpuPageTable, PhysBlock  # noqa: E402
from hwdrv.mock.nvidia import ptx  # noqa: E402

DATA = ROOT / "tests" / "data" / "ptx"
VA = 0x20_0000_0000


class Space:
    def __init__(self, size: int):
        self.block = PhysBlock(size, "bench")
        self.pt = GpuPageTable()
        self.pt.map(VA, self.block.host_addr, size)
        self.top = 0

    def upload(self, arr: np.ndarray) -> int:
        va = VA + self.top
        self.pt.write(va, np.ascontiguousarray(arr).tobytes())
        self.top += (arr.nbytes + 255) // 256 * 256
        return va

    def alloc(self, n: int) -> int:
        return self.upload(np.zeros(n, np.uint8))


def case_vector_add(n: int):
    m = ptx.parse((DATA / "vector_add.ptx").read_text())
    sp = Space(3 * 4 * n + (1 << 20))
    a = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    b = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    pa, pb, pc = sp.upload(a), sp.upload(b), sp.alloc(4 * n)
    params = struct.pack("<QQQi", pa, pb, pc, n)

    def run():
        return ptx.launch(m, "vector_add", ((n + 255) // 256,), (256,), params, sp.pt)

    def check():
        return np.array_equal(np.frombuffer(sp.pt.read(pc, 4 * n), np.float32), a + b)
    return run, check, n


def case_block_reduce(n: int):
    m = ptx.parse((DATA / "block_reduce.ptx").read_text())
    sp = Space(4 * n + (1 << 20))
    x = np.ones(n, np.float32)
    grid = (n + 255) // 256
    pin, pout = sp.upload(x), sp.alloc(4 * grid)
    params = struct.pack("<QQi", pin, pout, n)

    def run():
        return ptx.launch(m, "block_reduce", (grid,), (256,), params, sp.pt)

    def check():
        return bool((np.frombuffer(sp.pt.read(pout, 4 * grid), np.float32) == 256).all())
    return run, check, n


def case_collatz(n: int):
    m = ptx.parse((DATA / "divergence.ptx").read_text())
    sp = Space(8 * n + (1 << 20))
    x = np.random.default_rng(2).integers(1, 1000, n).astype(np.uint32)
    pin, pout = sp.upload(x), sp.alloc(4 * n)
    params = struct.pack("<QQi", pin, pout, n)

    def run():
        return ptx.launch(m, "collatz", ((n + 255) // 256,), (256,), params, sp.pt)

    def check():
        return True
    return run, check, n


def case_histogram(n: int):
    m = ptx.parse((DATA / "histogram.ptx").read_text())
    sp = Space(12 * n + (1 << 20))
    data = np.random.default_rng(3).integers(0, 5000, n).astype(np.uint32)
    pd, ph, pmm = sp.upload(data), sp.alloc(256), sp.upload(np.zeros(8, np.int32))
    pf, pc, ps = sp.alloc(4), sp.alloc(4), sp.alloc(4 * n)
    params = struct.pack("<QiiQQQQQ", pd, n, 0, ph, pmm, pf, pc, ps)

    def run():
        sp.pt.write(ph, bytes(256))
        sp.pt.write(pc, bytes(4))
        return ptx.launch(m, "histogram", ((n + 255) // 256,), (256,), params, sp.pt)

    def check():
        got = np.frombuffer(sp.pt.read(ph, 256), np.uint32)
        return np.array_equal(got, np.bincount(data & 63, minlength=64))
    return run, check, n


CASES = {"vector_add": case_vector_add, "histogram (atomics)": case_histogram, "block_reduce": case_block_reduce, "collatz (divergent loop)": case_collatz}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1 << 20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "ptx_interp.json"))
    args = ap.parse_args()
    rows = []
    for name, make in CASES.items():
        n = args.threads if not name.startswith(("collatz", "histogram")) else max(1024, args.threads // 16)
        run, check, threads = make(n)
        best = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            r = run()
            dt = time.perf_counter() - t0
            if best is None or dt < best[0]:
                best = (dt, r)
        dt, r = best
        rows.append({"kernel": name, "threads": threads, "thread_instructions": r.thread_instructions,
                     "steps": r.steps, "seconds": dt, "thread_instructions_per_s": r.thread_instructions / dt,
                     "correct": bool(check())})
    print(f"{'kernel':<26}{'threads':>10}{'thread-instr':>14}{'seconds':>10}{'M thr-instr/s':>15}{'ok':>5}")
    for row in rows:
        print(f"{row['kernel']:<26}{row['threads']:>10}{row['thread_instructions']:>14}{row['seconds']:>10.3f}"
              f"{row['thread_instructions_per_s'] / 1e6:>15.1f}{'yes' if row['correct'] else 'NO':>5}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bench": "ptx_interp", "target_thread_instructions_per_s": 2e6,
                               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                           "numpy": np.__version__, "platform": platform.platform()},
                               "results": rows}, indent=2))
    print(f"wrote {out}")
    return 0 if all(r["correct"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
