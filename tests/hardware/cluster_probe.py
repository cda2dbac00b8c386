"""Which QMD encoding launches thread-block clusters on this GPU (not a pytest module).

The QMD V04_00 CGA fields are named in open-gpu-doc but their semantics are undocumented
(reference nvidia-perf.md 3.1); hwdrv/nvidia/cluster.py holds the hypotheses as named variants.
For each variant this probe launches the kernel of tests/cluster_cases.py over every cluster case
(8 CTAs in clusters of 2 and of 4, 2D grids in 2x2 and 2x1 clusters): each CTA records ctaid,
%cluster_ctarank, %clusterid, %cluster_ctaid, %cluster_nctaid, %cluster_nctarank, %nclusterid
and the rank its partner (rank ^ 1) stored in shared memory, read over distributed shared memory.
A plain launch (implicit 1x1x1 cluster: the constant-bank-0 cluster words every launch now
carries) runs first as a control. Waits time out after a few seconds; a variant that faults or
hangs is reported as such and the device is closed and reopened for the next one.

    python tests/hardware/cluster_probe.py [nvidia:0]       # ~10-60 s

Prints one line per (variant, case): OK, WRONG (the differing fields) or FAULT/HANG, then the
variants that got every case right. The default is the first of VARIANTS.
"""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cluster_cases import CASES, expected, mismatches, program, run_case  # noqa: E402

#: seconds a launch may take before the probe calls it a hang (the kernel runs in microseconds)
WAIT_TIMEOUT = 3.0
CONTROL = "no_cluster_8"


def _one_case(dev, prog, case: str) -> tuple[str, str]:
    """(status, detail) of one case: OK, WRONG, FAULT or HANG."""
    import hwdrv
    grid, cluster = CASES[case]
    try:
        got, ran = run_case(dev, prog, grid, cluster, WAIT_TIMEOUT)
    except hwdrv.GPUHang as e:
        text = str(e).splitlines()
        return ("HANG" if "timed out" in text[0] else "FAULT"), " | ".join(text[:2])[:300]
    want = expected(grid, cluster)
    bad = mismatches(got, want)
    n = len(want)
    if ran != n:
        bad.insert(0, f"{ran} CTAs ran, {n} expected")
    return ("OK", f"{n} CTAs") if not bad else ("WRONG", "; ".join(bad)[:600])


def main(name: str) -> int:
    import hwdrv
    from hwdrv.nvidia import cluster as C
    results: dict[str, dict[str, str]] = {}
    control = "not run"
    dev = hwdrv.open_device(name)
    try:
        prog = program(dev)
        control, detail = _one_case(dev, prog, CONTROL)
        print(f"{'(plain launch)':26s} {CONTROL:12s} {control:5s} {detail}", flush=True)
        if control in ("FAULT", "HANG"):
            dev.close(wait=False)
            dev = hwdrv.open_device(name)
            prog = program(dev)
        for vname, v in C.VARIANTS.items():
            dev.cluster_variant = v
            results[vname] = {}
            t0 = time.monotonic()
            for case, (_, cluster) in CASES.items():
                if cluster is None:
                    continue
                status, detail = _one_case(dev, prog, case)
                results[vname][case] = status
                print(f"{vname:26s} {case:12s} {status:5s} {detail}", flush=True)
                if status in ("FAULT", "HANG"):
                    # start the next variant on a fresh device: nothing of this one left behind
                    dev.close(wait=False)
                    dev = hwdrv.open_device(name)
                    prog = program(dev)
                    break
            print(f"{vname:26s} ({time.monotonic() - t0:.1f} s): {v.idea}", flush=True)
    finally:
        dev.close(wait=False)
    good = [v for v, r in results.items() if r and all(s == "OK" for s in r.values())
            and len(r) == sum(c is not None for _, c in CASES.values())]
    print("variants with every case right:", ", ".join(good) or "none")
    print(json.dumps({"control": control, "results": results, "working": good}))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "nvidia:0"))
