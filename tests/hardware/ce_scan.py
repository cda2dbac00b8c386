"""Which copy engine moves data fastest (not a pytest module): opens the device once per
engine choice (env HWDRV_NV_COPY_ENGINE) and times 1 GiB device-to-device and host-to-device
copies with GPU timestamps.

    python tests/hardware/ce_scan.py
"""
import os
import subprocess
import sys

CHILD = r"""
import hwdrv, numpy as np
d = hwdrv.open_device("nvidia:0")
n = 1 << 30
a, b, h = d.alloc(n), d.alloc(n), d.alloc(n, host_visible=True)
t0, t1, s = d.signal(0), d.signal(0), d.signal(0)
def rate(dst, src):
    best = []
    for i in range(4):
        s.value = 0
        d.copy_queue().timestamp(t0).copy(dst, src, n).timestamp(t1).signal(s, 1).submit()
        s.wait(1, timeout=30)
        best.append(n / ((t1.timestamp - t0.timestamp) / 1e9) / 1e9)
    return sorted(best)[len(best) // 2]
print(f"d2d {2 * rate(b, a):8.1f} GB/s (r+w)  h2d {rate(a, h):6.1f} GB/s  d2h {rate(h, a):6.1f} GB/s")
d.close()
"""
for ce in ["graphics"] + [str(i) for i in range(10)]:
    r = subprocess.run([sys.executable, "-c", CHILD], env=dict(os.environ, HWDRV_NV_COPY_ENGINE=ce),
                       capture_output=True, text=True, timeout=120)
    print(f"engine {ce:>8}: {r.stdout.strip() or r.stderr.strip().splitlines()[-1]}", flush=True)
