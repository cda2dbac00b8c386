"""bench/chart.py: ratios from benchmark JSON into a chart."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import chart  # noqa: E402


def _results(tmp_path):
    t = tmp_path / "tensor.json"
    t.write_text(json.dumps({"rows": [{"case": "softmax 8192x8192 f32", "ratio": 2.25},
                                      {"case": "add small f32", "ratio": None},
                                      {"case": "matmul f16 <4096>", "ratio": 0.63}]}))
    n = tmp_path / "nv.json"
    n.write_text(json.dumps({"rows": [{"measure": "CPU us per eager exec+submit", "hwdrv": 30, "cuda": 7,
                                       "ratio": 0.23}]}))
    return [str(t), str(n)]


def test_rows_with_ratios_in_order(tmp_path):
    assert chart.load_ratios(_results(tmp_path)) == [("softmax 8192x8192 f32", 2.25), ("matmul f16 <4096>", 0.63),
                                                     ("CPU us per eager exec+submit", 0.23)]


def test_svg_has_one_bar_per_case_scaled_to_ratio(tmp_path):
    out = tmp_path / "c.svg"
    assert chart.main([*_results(tmp_path), "--out", str(out)]) == 0
    svg = out.read_text()
    widths = [float(w) for w in re.findall(r'<rect x="\d+" y="\d+" width="([\d.]+)"', svg)]
    assert len(widths) == 3
    assert widths[0] / widths[1] == pytest.approx(2.25 / 0.63, rel=1e-2)
    assert "matmul f16 &lt;4096&gt;" in svg          # labels are escaped
    assert svg.count('fill="#2a7f3f"') == 1 and svg.count('fill="#c0392b"') == 2


def test_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nothing": 1}))
    with pytest.raises(SystemExit, match="no 'rows' list"):
        chart.load_ratios([str(bad)])
    with pytest.raises(SystemExit, match=".png or .svg"):
        chart.main([*_results(tmp_path), "--out", str(tmp_path / "c.gif")])


def test_png_needs_matplotlib_or_says_so(tmp_path):
    out = tmp_path / "c.png"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(SystemExit, match="needs matplotlib"):
            chart.main([*_results(tmp_path), "--out", str(out)])
        return
    chart.main([*_results(tmp_path), "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
