"""A chart of hwdrv/CUDA ratios from benchmark results: one horizontal bar per case, a line at
1.0 (parity with the vendor stack; right of it hwdrv is faster).

    python bench/chart.py RESULT.json [RESULT.json ...] --out chart.png

Reads the JSON that ``bench/tensor_bench.py`` (rows with ``case``/``ratio``) and
``bench/nv_bench.py`` (rows with ``measure``/``ratio``) write. A ``.png`` needs matplotlib (the
``chart`` extra); a ``.svg`` is written by hand and needs nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
from html import escape


def load_ratios(paths: list[str]) -> list[tuple[str, float]]:
    """(label, ratio) for every row with a ratio, in file order."""
    out = []
    for p in paths:
        with open(p) as f:
            data = json.load(f)
        rows = data.get("rows")
        if not isinstance(rows, list):
            raise SystemExit(f"{p}: no 'rows' list; expected a tensor_bench or nv_bench result")
        for r in rows:
            label = r.get("case") or r.get("measure")
            ratio = r.get("ratio")
            if label is not None and isinstance(ratio, (int, float)):
                out.append((str(label), float(ratio)))
    if not out:
        raise SystemExit("no rows with a ratio in " + ", ".join(paths) + " (was the CUDA side measured?)")
    return out


def write_svg(rows: list[tuple[str, float]], path: str, title: str) -> None:
    """A dependency-free SVG bar chart (any browser opens it)."""
    bar_h, gap, left, width = 18, 6, 330, 420
    top = max(2.0, max(r for _, r in rows) * 1.05)
    scale = width / top
    height = 40 + len(rows) * (bar_h + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 70}" height="{height}" '
             'font-family="sans-serif" font-size="12">',
             f'<text x="10" y="20" font-size="14">{escape(title)}</text>']
    for i, (label, ratio) in enumerate(rows):
        y = 35 + i * (bar_h + gap)
        color = "#2a7f3f" if ratio >= 1.0 else "#c0392b"
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{ratio * scale:.1f}" height="{bar_h}" fill="{color}"/>')
        parts.append(f'<text x="{left + ratio * scale + 4:.1f}" y="{y + 13}">{ratio:.2f}</text>')
    x1 = left + scale
    parts.append(f'<line x1="{x1:.1f}" y1="28" x2="{x1:.1f}" y2="{height - 25}" stroke="black" '
                 'stroke-dasharray="4,3"/>')
    parts.append(f'<text x="{x1:.1f}" y="{height - 10}" text-anchor="middle">1.0 = CUDA</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def write_png(rows: list[tuple[str, float]], path: str, title: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("a .png chart needs matplotlib (pip install 'hwdrv[chart]'); "
                         "or ask for a .svg, which needs nothing") from None
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.2))
    labels = [r[0] for r in rows][::-1]
    vals = [r[1] for r in rows][::-1]
    ax.barh(labels, vals, color=["#2a7f3f" if v >= 1.0 else "#c0392b" for v in vals])
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlabel("hwdrv / CUDA (higher is better for hwdrv)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="tensor_bench/nv_bench JSON files")
    ap.add_argument("--out", required=True, help="chart file: .png (matplotlib) or .svg")
    ap.add_argument("--title", default="hwdrv vs CUDA (same GPU, same run)")
    a = ap.parse_args(argv)
    rows = load_ratios(a.results)
    if a.out.endswith(".svg"):
        write_svg(rows, a.out, a.title)
    elif a.out.endswith(".png"):
        write_png(rows, a.out, a.title)
    else:
        raise SystemExit(f"--out {a.out!r}: give a .png or .svg file name")
    print(f"wrote {a.out} ({len(rows)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
