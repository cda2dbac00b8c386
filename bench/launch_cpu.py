"""Host CPU cost of an NVIDIA launch on the mock, without the mock GPU's own cost.

    python bench/launch_cpu.py [--batch 2000] [--rounds 7] [--json bench/results/launch_cpu.json]

Measures, per call, (a) an eager ``dev.compute_queue().exec(prog, grid=(1,), block=(1,)).submit()``,
(a') the same through ``dev.launch(prog, (1,), (1,))``, (b) a resubmit of one built, unbound queue (exec + signal of a Var, the Var patched each time)
and (c) a resubmit of bound queues of the same shape (one queue per submit of a batch: a bound
queue may not be resubmitted before its run finished). These are bench/nv_bench.py's four
CPU rows (and its dev.launch row), measured on mock:nvidia.

The mock GPU runs in a worker thread that the doorbell wakes. For each batch (smaller than the
GPFIFO ring, so no push waits for ring space) the channel's doorbell is a plain MMIO store
(what the hardware path costs) that does not wake the mock; afterwards the real doorbell is
restored, rung once, the device synchronized and the results checked (every submission's
timeline release and signal landed). Prints min-of-rounds microseconds per call and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hwdrv  # noqa: E402
from hwdrv.ioctl import hostmem  # noqa: E402
from hwdrv.nvidia.gpfifo import GPFIFO_ENTRIES  # noqa: E402

from nv_bench import EMPTY_PTX  # noqa: E402  (the same empty kernel nv_bench launches)
#: submissions per timed batch: below the GPFIFO ring (no push may wait on the idle mock)
DEFAULT_BATCH = 2000
DEFAULT_ROUNDS = 7
#: seconds the mock may take to run one batch after the doorbell
DRAIN_TIMEOUT = 120.0


class QuietDoorbell:
    """While active, the device kernel's doorbell write is the plain fenced MMIO store the
    hardware path does, without waking the mock GPU; ``ring()`` restores it and rings it."""

    def __init__(self, dev: "hwdrv.Device"):
        self.kernel = dev.kernel
        self.channel = dev.channels["compute"]

    def __enter__(self) -> "QuietDoorbell":
        self.kernel.mmio_write32 = hostmem.mmio_write32     # instance attribute shadows the method
        return self

    def __exit__(self, *exc: object) -> None:
        del self.kernel.mmio_write32
        self.kernel.mmio_write32(self.channel.doorbell, self.channel.token)


def _timed_batch(run: Callable[[int], None], dev: "hwdrv.Device", batch: int,
                 check: Callable[[], None]) -> float:
    """Run ``run(i)`` for i in range(batch) with the quiet doorbell; returns us per call."""
    with QuietDoorbell(dev):
        t = time.perf_counter()
        for i in range(batch):
            run(i)
        dt = time.perf_counter() - t
    dev.synchronize(DRAIN_TIMEOUT)
    check()
    return dt / batch * 1e6


def measure(device: str = "mock:nvidia", batch: int = DEFAULT_BATCH, rounds: int = DEFAULT_ROUNDS) -> dict:
    """The four per-call costs (min over ``rounds`` batches of ``batch`` calls), in us."""
    if not 0 < batch < GPFIFO_ENTRIES - 1:
        raise SystemExit(f"--batch must be in 1..{GPFIFO_ENTRIES - 2} (below the GPFIFO ring)")
    dev = hwdrv.open_device(device)
    try:
        prog = dev.program(dev.compiler.compile(EMPTY_PTX), "empty")
        timeline = dev._timelines["compute"]
        done = dev.signal(0)
        k = hwdrv.Var("k")

        def all_released() -> None:
            if not timeline.done(timeline.value):
                raise RuntimeError("the mock GPU did not release every submission")

        def signal_is(v: int) -> Callable[[], None]:
            def check() -> None:
                all_released()
                if done.value != v:
                    raise RuntimeError(f"signal is {done.value}, expected {v}: a submission did not run")
            return check

        def eager(_i: int) -> None:
            dev.compute_queue().exec(prog, grid=(1,), block=(1,)).submit()

        rq = dev.compute_queue().exec(prog, grid=(1,), block=(1,)).signal(done, k)
        bqs = [dev.compute_queue().exec(prog, grid=(1,), block=(1,)).signal(done, k).bind()
               for _ in range(batch)]
        res: dict = {"device": repr(dev), "batch": batch, "rounds": rounds}
        cases = {"eager_exec_submit_us": lambda r: (eager, all_released),
                 "device_launch_us": lambda r: (lambda i: dev.launch(prog, (1,), (1,)), all_released),
                 "resubmit_unbound_us": lambda r: (lambda i: rq.submit(k=r * batch + i + 1),
                                                   signal_is(r * batch + batch)),
                 "resubmit_bound_us": lambda r: (lambda i: bqs[i].submit(k=r * batch + i + 1),
                                                 signal_is(r * batch + batch))}
        for name, make in cases.items():
            done.value = 0
            times = []
            for r in range(rounds + 1):          # round 0 warms caches and command memory
                run, check = make(r)
                us = _timed_batch(run, dev, batch, check)
                if r:
                    times.append(us)
            res[name] = min(times)
            res[name.replace("_us", "_all_us")] = times
        return res
    finally:
        dev.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="mock:nvidia")
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    ap.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    ap.add_argument("--json", default="bench/results/launch_cpu.json")
    a = ap.parse_args()
    res = measure(a.device, a.batch, a.rounds)
    for label, key in (("eager exec+submit", "eager_exec_submit_us"),
                       ("dev.launch", "device_launch_us"),
                       ("resubmit, unbound queue", "resubmit_unbound_us"),
                       ("resubmit, bound queue", "resubmit_bound_us")):
        print(f"{label:26s} {res[key]:8.2f} us  (min of {a.rounds} x {a.batch})")
    if a.json:
        os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
        with open(a.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S"), **res}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
