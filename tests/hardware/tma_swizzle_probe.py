"""Which TMA boxes the GPU accepts (not a pytest module). The H200 run of 2026-12-05 faulted
(Xid 13) on the 32- and 64-byte swizzled cases of tests/test_ptx_wgmma_device.py where the mock
accepted them; this separates the candidate rules (start coordinate alignment, out-of-bounds
parts, swizzle mode). Each case runs in its own process so a fault cannot spill into the next:

    python tests/hardware/tma_swizzle_probe.py [nvidia:0]
"""
from __future__ import annotations

import subprocess
import sys

# (swizzle bytes, box (inner, outer) in f16 elements, start coordinates (x, y)); tensor is 72 x 40
CASES = [
    (32, (16, 16), (-5, 30)), (32, (16, 16), (8, 20)), (32, (16, 16), (3, 0)), (32, (8, 16), (0, 0)),
    (64, (32, 16), (50, 32)), (64, (32, 16), (48, 16)), (64, (32, 16), (4, 0)), (64, (16, 16), (0, 0)),
    (0, (64, 16), (41, -3)), (0, (8, 16), (3, 0)), (128, (64, 16), (9, 4)), (128, (32, 16), (0, 0)),
]


def one(dev_name: str, sw: int, box: tuple, coords: tuple) -> None:
    sys.path.insert(0, "tests")
    import hwdrv
    from hwdrv.nvidia.compiler import PtxasCompiler
    from test_ptx_wgmma_device import run_tma_case
    dev = hwdrv.open_device(dev_name)
    try:
        mock = dev.name.startswith("mock")
        run_tma_case(dev, dev.compiler.compile if mock else PtxasCompiler(arch="sm_90a").compile, sw, box, coords)
        print("OK")
    finally:
        dev.close()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        one(sys.argv[2], int(sys.argv[3]), tuple(map(int, sys.argv[4].split(","))),
            tuple(map(int, sys.argv[5].split(","))))
        sys.exit(0)
    name = sys.argv[1] if len(sys.argv) > 1 else "nvidia:0"
    for sw, box, xy in CASES:
        r = subprocess.run([sys.executable, __file__, "--one", name, str(sw), "%d,%d" % box, "%d,%d" % xy],
                           capture_output=True, text=True, timeout=60)
        last = (r.stdout.strip().splitlines() or r.stderr.strip().splitlines() or ["?"])[-1]
        print(f"swizzle {sw:3d} box {box} start {xy}: rc {r.returncode} {last[:300]}", flush=True)
