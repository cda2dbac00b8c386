"""ir3 emulator throughput: fiber-instructions per second on a 1M-fiber elementwise kernel.

    python bench/ir3_emu.py [--fibers N] [--threadsize 64|128] [--repeat R]

The kernel (saxpy: y = a*x + y through two IBOs, Mesa computerator's buffer convention) is
assembled with hwdrv's ir3 assembler and run by the mock's emulator (hwdrv.mock.qcom.ir3emu) with
the launch state built directly (no CP); the result is checked against numpy before any number is
printed. Only run_cs is timed; the rate counts every executed instruction of every fiber
(nops included, an (rptN) instruction once).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from hwdrv.mock.qcom.ir3emu import harness
from hwdrv.mock.qcom.ir3emu import run_cs
from hwdrv.qcom import ir3

KERNEL = """
@localsize 128, 1, 1
@buf {n}
@buf {n}
@const(c0.x) 2.5, 0.0, 0.0, 0.0
@invocationid(r0.x)
@wgid(r48.x)
shl.b r0.y, r48.x, 7
(rpt2)nop
add.u r0.y, r0.y, r0.x
(rpt2)nop
ldib.b.untyped.1d.u32.1.imm r1.x, r0.y, 0
ldib.b.untyped.1d.u32.1.imm r1.y, r0.y, 1
(sy)mad.f32 r1.z, c0.x, r1.x, r1.y
(rpt2)nop
stib.b.untyped.1d.u32.1.imm r1.z, r0.y, 1
end
nop
"""
INSTRUCTIONS_PER_FIBER = 10     # shl, nop, add, nop, ldib, ldib, mad, nop, stib, end


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fibers", type=int, default=1 << 20)
    ap.add_argument("--threadsize", type=int, default=128, choices=(64, 128))
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    n = a.fibers // 128 * 128
    d, body = harness.parse(KERNEL.format(n=n))
    code = ir3.assemble(body)
    rng = np.random.default_rng(1)
    x, y = rng.random(n, np.float32), rng.random(n, np.float32)
    best = float("inf")
    for _ in range(a.repeat):
        state, results = harness.prepare(code, d, groups=(n // 128, 1, 1), threadsize=a.threadsize, buffers=[x, y])
        t = time.perf_counter()
        run_cs(state)
        best = min(best, time.perf_counter() - t)
        out = results()[1].view(np.float32)
        np.testing.assert_array_equal(out, np.float32(2.5) * x + y)
    rate = n * INSTRUCTIONS_PER_FIBER / best
    print(f"ir3 emulator: {n} fibers x {INSTRUCTIONS_PER_FIBER} instructions, threadsize {a.threadsize}: "
          f"{best * 1e3:.1f} ms = {rate / 1e6:.1f} M fiber-instructions/s (best of {a.repeat})")


if __name__ == "__main__":
    main()
