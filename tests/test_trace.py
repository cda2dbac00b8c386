"""GPU timelines: spans with GPU timestamps around copies and tensor kernels, exported as
Chrome trace JSON; TENSOR_PROFILE and ``hwdrv profile``."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import hwdrv
from hwdrv.trace import write_chrome_trace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_copies_are_spans_with_gpu_times(tmp_path):
    with hwdrv.open_device("mock:nvidia") as dev:
        trace = dev.start_trace()
        buf = dev.alloc(1 << 16)
        data = np.arange(1 << 14, dtype=np.uint32)
        dev.upload(buf, data)
        assert np.array_equal(dev.download(buf, dtype=np.uint32), data)
        n = write_chrome_trace([trace], str(tmp_path / "t.json"))
    doc = json.loads((tmp_path / "t.json").read_text())
    ev = doc["traceEvents"]
    assert n == 2 and [e["name"] for e in ev] == ["upload", "download"]
    up, down = ev
    assert up["ph"] == "X" and up["cat"] == "copy" and up["args"]["bytes"] == 1 << 16
    assert up["ts"] == 0 and up["dur"] > 0 and down["ts"] >= up["ts"] + up["dur"]


def test_without_tracing_nothing_is_recorded():
    with hwdrv.open_device("mock:nvidia") as dev:
        dev.upload(dev.alloc(64), np.zeros(16, np.uint32))
        assert dev.trace is None


def test_hwdrv_profile_runs_a_tensor_script(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import numpy as np\nfrom tensor import Tensor\n"
                      "x = Tensor(np.arange(64, dtype=np.float32), device='mock:nvidia')\n"
                      "assert ((x * 2 + 1).numpy() == np.arange(64) * 2 + 1).all()\n")
    out = tmp_path / "trace.json"
    r = subprocess.run([sys.executable, "-m", "hwdrv", "profile", "--out", str(out), "--",
                        sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    ev = json.loads(out.read_text())["traceEvents"]
    kernels = [e for e in ev if e["cat"] == "kernel"]
    copies = [e for e in ev if e["cat"] == "copy"]
    assert len(kernels) == 1 and kernels[0]["args"]["shape"] == [64] and kernels[0]["dur"] > 0
    assert {e["name"] for e in copies} == {"upload", "download"}
    assert "kernel" in r.stdout and "trace:" in r.stdout
