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
GRAPH_LAUNCHES = 4
PB_BEFORE, PB_AFTER = 24, 8          # pushbuffer words shown around a graph QMD's address
PB_AROUND = 1024                     # words kept in the JSON on each side (for offline decoding)
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
        for _ in range(GRAPH_LAUNCHES):          # several launches: the ring keeps a few of them
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


def graph_qmd_pointers(found: list[dict]) -> dict[int, str]:
    """The graph QMDs' GPU addresses >> 8 (what SEND_PCAS_A and DEPENDENT_QMD0_POINTER carry):
    graph[i]'s dependent pointer names graph[i + 1]; graph[0]'s is guessed at the same spacing."""
    ptr = hw.NVCBC0_QMDV04_00_DEPENDENT_QMD0_POINTER
    by = {f["launch"]: ptr.get(np.array(f["words"], np.uint32)) for f in found}
    p1, p2 = by.get("graph[0]", 0), by.get("graph[1]", 0)
    out = {v: f"graph[{i + 1}]" for i, v in enumerate((p1, p2)) if v}
    if p1 and p2:
        out[2 * p1 - p2] = "graph[0]?"
    return out


def scan_pushbuffer(targets: dict[int, str]) -> list[dict]:
    """Where libcuda's pushbuffer names a graph QMD: every readable word equal to one of
    ``targets``, with the words around it (how a graph launch sends its QMDs)."""
    hits = []
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        for lo, hi, name in regions():
            for start in range(lo, hi, CHUNK):
                try:
                    data = os.pread(fd, min(CHUNK, hi - start), start)
                except OSError:
                    break
                w = np.frombuffer(data[:len(data) // 4 * 4], np.uint32)
                for value, what in targets.items():
                    for i in np.flatnonzero(w == value)[:8]:
                        i = int(i)
                        ctx = w[max(0, i - PB_BEFORE):i + PB_AFTER]
                        lo_w = max(0, i - PB_AROUND)
                        hits.append({"qmd": what, "addr": hex(start + i * 4), "mapping": name,
                                     "at": min(i, PB_BEFORE), "words": [int(x) for x in ctx],
                                     "around_addr": hex(start + lo_w * 4),
                                     "around": [int(x) for x in w[lo_w:i + PB_AROUND]]})
    finally:
        os.close(fd)
    return hits


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
    targets = graph_qmd_pointers(found)
    hits = scan_pushbuffer(targets) if targets else []
    print(f"graph QMD pointers {', '.join(f'{v:#x}={w}' for v, w in targets.items())}: "
          f"{len(hits)} words in readable memory name them")
    for h in hits[:24]:
        print(f"--- {h['qmd']} named at {h['addr']} ({h['mapping'] or 'anonymous'}), word {h['at']} below:")
        print(" ".join(f"{x:08x}" for x in h["words"]))
        for start in range(0, min(h["at"], 12) + 1):
            try:        # the segment may start anywhere before the hit: show decodings that parse
                text = format_methods(decode(h["words"][start:]))
            except Exception:      # noqa: BLE001 -- a probe: not every start is a header
                continue
            if "INVALID" not in text:
                print(f"[from word {start}]\n{text}")
                break
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"stats": stats, "found": found, "pushbuffer_hits": hits,
                       "decoded": [{k: str(v) for k, v in d.items()} for d in decoded]}, fh)
    return 0 if found else 1


if __name__ == "__main__":
    raise SystemExit(main())
