"""Command line: ``python -m hwdrv {info,demo,diagnose,decode,profile}``."""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .errors import HwdrvError

def cmd_info(args: argparse.Namespace) -> int:
    from .registry import devices
    found = devices()
    if args.json:
        print(json.dumps([d.as_dict() for d in found], indent=1))
        return 0
    for d in found:
        state = "mock" if d.mock else ("ok" if d.available else f"unavailable: {d.problem}")
        ver = f" driver {d.driver_version}" if d.driver_version else ""
        print(f"{d.name:14s} {d.vendor:7s} {d.description}{ver} [{state}]")
    return 0


def _default_device(name: str | None):
    """The named device, else a real GPU if one opens, else the mock (said out loud)."""
    from .registry import devices, open_device
    if name:
        return open_device(name)
    real = [d for d in devices(include_mock=False) if d.available]
    if real:
        return open_device(real[0].name)
    print("no GPU found: running on the mock NVIDIA GPU (mock:nvidia)")
    return open_device("mock:nvidia")


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: run a small program on the default device, check it, say what ran."""
    try:
        from tensor.demo import run_demo
    except ImportError:
        run_demo = None
    from .provoke import sample
    dev = _default_device(args.device)
    with dev:
        print(f"device: {dev!r}")
        if run_demo is not None:
            from .errors import UnsupportedDevice
            try:
                from tensor.render import renderer_for
                renderer_for(dev.kind, dev.arch)
            except UnsupportedDevice as e:
                print(f"{e}; running the backend's sample vecadd instead")
            else:
                return run_demo(dev)
        n = 1 << 20 if not dev.is_mock else 1 << 12
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
        ba, bb, bc = dev.alloc(n * 4), dev.alloc(n * 4), dev.alloc(n * 4)
        dev.upload(ba, a)
        dev.upload(bb, b)
        t = time.perf_counter()
        prog = sample(dev, "vecadd")
        t_load = time.perf_counter() - t
        t0, t1 = dev.signal(0), dev.signal(0)
        dev.compute_queue().timestamp(t0).exec(prog, grid=((n + 255) // 256,), block=(256,),
                                               args=[ba, bb, bc, n]).timestamp(t1).signal(t1, 1).submit()
        t1.wait(1, timeout=30)
        ok = np.array_equal(dev.download(bc, dtype=np.float32), a + b)
        print(f"vecadd n={n}: compile+load {t_load * 1e3:.1f} ms, GPU time "
              f"{(t1.timestamp_ns - t0.timestamp_ns) / 1e3:.1f} us, result {'matches numpy' if ok else 'WRONG'}")
        return 0 if ok else 1


def cmd_diagnose(args: argparse.Namespace) -> int:
    from .provoke import run_diagnose
    return run_diagnose(args.device, args.json)


def cmd_decode(args: argparse.Namespace) -> int:
    from .provoke import decode_file
    return decode_file(args.file, args.vendor)


def cmd_profile(args: argparse.Namespace) -> int:
    """Run a command with ``TENSOR_PROFILE`` set, then summarise the trace it wrote."""
    import collections
    import os
    import subprocess
    from .errors import InvalidArgument
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        raise InvalidArgument("hwdrv profile needs a command: hwdrv profile [--out F] -- python script.py")
    env = dict(os.environ, TENSOR_PROFILE=args.out)
    try:
        rc = subprocess.run(cmd, env=env).returncode
    except OSError as e:
        raise InvalidArgument(f"cannot run {cmd[0]!r}: {e.strerror}") from None
    try:
        with open(args.out) as f:
            events = json.load(f)["traceEvents"]
    except (OSError, ValueError, KeyError) as e:
        print(f"no trace was written to {args.out} ({e}); did the command use tensor?", file=sys.stderr)
        return rc or 1
    total: dict[tuple, list[float]] = collections.defaultdict(list)
    for e in events:
        total[(e["cat"], e["name"])].append(e["dur"])
    print(f"{'category':8s} {'name':48s} {'count':>6s} {'total us':>11s} {'mean us':>10s}")
    for (cat, name), durs in sorted(total.items(), key=lambda kv: -sum(kv[1])):
        print(f"{cat:8s} {name[:48]:48s} {len(durs):6d} {sum(durs):11.1f} {sum(durs) / len(durs):10.2f}")
    print(f"trace: {args.out} ({len(events)} events; open in chrome://tracing or ui.perfetto.dev)")
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hwdrv", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("info", help="list devices, real and mock")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_info)
    p = sub.add_parser("demo", help="run a small program on the default device and check it")
    p.add_argument("--device", default=None)
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("diagnose", help="provoke each fault kind and print the hang reports")
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_diagnose)
    p = sub.add_parser("decode", help="print a saved HangReport JSON or a raw command-stream dump")
    p.add_argument("file")
    p.add_argument("--vendor", default="nvidia", help="format of a raw dump (default: nvidia pushbuffer)")
    p.set_defaults(fn=cmd_decode)
    p = sub.add_parser("profile", help="run a command with TENSOR_PROFILE set and summarise its GPU trace")
    p.add_argument("--out", default="hwdrv-trace.json", help="trace file (Chrome trace / Perfetto JSON)")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_profile)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except HwdrvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
