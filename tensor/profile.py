"""``TENSOR_PROFILE=out.json``: trace every kernel and copy of the devices tensor opens and
write a Chrome trace / Perfetto JSON at exit (``hwdrv profile -- python script.py`` sets it)."""
from __future__ import annotations

import atexit
import os
import sys

from hwdrv.trace import write_chrome_trace

ENV = "TENSOR_PROFILE"
_registered = False


def maybe_start(runtime) -> None:
    """Start tracing ``runtime``'s device if ``TENSOR_PROFILE`` names an output file."""
    global _registered
    path = os.environ.get(ENV)
    if not path:
        return
    runtime.device.start_trace()
    if not _registered:
        atexit.register(_write, path)
        _registered = True


def _write(path: str) -> None:
    from .device import _RUNTIMES
    traces = [rt.device.trace for rt in _RUNTIMES.values() if rt.device.trace is not None]
    n = write_chrome_trace(traces, path)
    print(f"tensor: wrote {n} trace events to {path}", file=sys.stderr)
