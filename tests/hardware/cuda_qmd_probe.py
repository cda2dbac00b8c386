"""What libcuda puts in the QMDs of its launches, read back from this process's memory (not a
pytest module).

    python tests/hardware/cuda_qmd_probe.py [--json out.json]

Launches one kernel through CuPy with distinctive shapes -- a plain stream launch, then a CUDA
graph of three launches -- and scans every readable mapping of this process (/proc/self/mem)
for QMD V04 images of them: the grid width (one value per launch) at the GRID_WIDTH word, with
the grid height and block width beside it. Each QMD found is decoded with hwdrv's generated
QMD facts (hwdrv/nvidia/pbdecode.decode_qmd), and the fields that differ between the launches
are printed: how libcuda sets the end-of-kernel membar, the cache invalidations, dependent-QMD
chaining and the semaphore releases of a graph's first, middle and last kernel. The 64 words
before each QMD are decoded as pushbuffer methods too, in case the QMD travels inline.
Mappings that cannot be read (device memory behind BAR1 often cannot) are counted, not fatal.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from hwdrv.nvidia.gen import hopper as hw  # noqa: E402
from hwdrv.nvidia.pbdecode import decode, decode_qmd, format_methods  # noqa: E402

SRC = r'''extern "C" __global__ void qmd_probe(unsigned long long tag, int* p) {
    p[blockIdx.y * gridDim.x + blockIdx.x] = (int)tag + threadIdx.x;
}'''
TAG = 0x1122334455667788
BLOCK = 96
HEIGHT = 3
STREAM_WIDTH = 4567
GRAPH_WIDTHS = (4568, 4569, 4570)
_GW, _GH, _BX = (hw.NVCBC0_QMDV04_00_GRID_WIDTH, hw.NVCBC0_QMDV04_00_GRID_HEIGHT,
                 hw.NVCBC0_QMDV04_00_CTA_THREAD_DIMENSION0)
QMD_WORDS = 96
CHUNK = 64 << 20
MAX_REGION = 8 << 30


def launch() -> None:
    import cupy as cp
    kern = cp.RawKernel(SRC, "qmd_probe")
    out = cp.zeros(max(GRAPH_WIDTHS) * HEIGHT, cp.int32)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        kern((STREAM_WIDTH, HEIGHT), (BLOCK,), (cp.uint64(TAG), out))
        stream.synchronize()
        stream.begin_capture()
        for w in GRAPH_WIDTHS:
            kern((w, HEIGHT), (BLOCK,), (cp.uint64(TAG), out))
        graph = stream.end_capture()
        graph.launch(stream)
        stream.synchronize()
    if int(out[0]) == 0:
        raise SystemExit("the probe kernel did not run")
    launch.keep = (kern, out, stream, graph)      # keep libcuda's memory alive while scanning


def regions() -> list[tuple[int, int, str]]:
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
            if not m or "r" not in m.group(3) or m.group(4) in ("[vsyscall]", "[vvar]"):
                continue
            lo, hi = int(m.group(1), 16), int(m.group(2), 16)
            if hi - lo <= MAX_REGION:
                out.append((lo, hi, m.group(4).strip()))
    return out


def scan() -> tuple[list[dict], dict]:
    widths = {STREAM_WIDTH: "stream", **{w: f"graph[{i}]" for i, w in enumerate(GRAPH_WIDTHS)}}
    gw_word = _GW.lo // 32
    found, stats = [], {"regions": 0, "unreadable": 0, "bytes": 0}
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        for lo, hi, name in regions():
            stats["regions"] += 1
            for start in range(lo, hi, CHUNK):
                try:
                    data = os.pread(fd, min(CHUNK, hi - start), start)
                except OSError:
                    stats["unreadable"] += 1
                    break
                stats["bytes"] += len(data)
                w = np.frombuffer(data[:len(data) // 4 * 4], np.uint32)
                for width, what in widths.items():
                    for i in np.flatnonzero(w == width):
                        base = int(i) - gw_word
                        if base < 0 or base + QMD_WORDS > len(w):
                            continue
                        q = w[base:base + QMD_WORDS]
                        if _GH.get(q) != HEIGHT or _BX.get(q) != BLOCK:
                            continue
                        before = w[max(0, base - 64):base]
                        found.append({"launch": what, "addr": hex(start + base * 4), "mapping": name,
                                      "words": [int(x) for x in q], "before": [int(x) for x in before]})
    finally:
        os.close(fd)
    return found, stats


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    a = ap.parse_args()
    launch()
    found, stats = scan()
    print(f"scanned {stats['regions']} mappings, {stats['bytes'] >> 20} MiB, {stats['unreadable']} unreadable; "
          f"{len(found)} QMD images found")
    decoded = []
    for f in found:
        d = decode_qmd(f["words"], nonzero_only=False)
        decoded.append(d)
        print(f"--- {f['launch']} at {f['addr']} ({f['mapping'] or 'anonymous'})")
    if decoded:
        keys = sorted({k for d in decoded for k in d})
        print(f"{'field':56s} " + " ".join(f"{f['launch']:>12s}" for f in found))
        for k in keys:
            vals = [str(d.get(k, "")) for d in decoded]
            if any(v not in ("0", "") for v in vals):
                print(f"{k:56s} " + " ".join(f"{v[:12]:>12s}" for v in vals))
        for f in found[:4]:
            print(f"--- methods before {f['launch']} QMD (best effort)")
            try:
                print(format_methods(decode(f["before"])))
            except Exception as e:      # noqa: BLE001 -- a probe: show what could be decoded
                print(f"(not decodable as methods: {e})")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"stats": stats, "found": found,
                       "decoded": [{k: str(v) for k, v in d.items()} for d in decoded]}, fh)
    return 0 if found else 1


if __name__ == "__main__":
    raise SystemExit(main())
