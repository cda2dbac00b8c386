"""CLI: ``python -m autogen generate <target|group> --src DIR`` and ``python -m autogen check``."""
from __future__ import annotations

import argparse
import difflib
import os
import sys

from .generate import GenError, generate, input_files, sources_present
from .manifest import GROUPS, TARGETS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _names(what: list[str]) -> list[str]:
    out: list[str] = []
    for w in what or ["all"]:
        if w in GROUPS:
            out += GROUPS[w]
        elif w in TARGETS:
            out.append(w)
        else:
            raise SystemExit(f"unknown target {w!r}; targets: {sorted(TARGETS)}, groups: {sorted(GROUPS)}")
    return list(dict.fromkeys(out))


def cmd_generate(args: argparse.Namespace) -> int:
    for n in _names(args.targets):
        t = TARGETS[n]
        text = generate(t, args.src)
        out = os.path.join(args.out or REPO_ROOT, t.output)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            f.write(text)
        print(f"{n}: wrote {out} ({len(text)} bytes, {text.count(chr(10))} lines)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    bad = 0
    for n in _names(args.targets):
        t = TARGETS[n]
        if not sources_present(t, args.src):
            print(f"{n}: skipped, sources not found under {args.src}")
            continue
        new = generate(t, args.src)
        path = os.path.join(REPO_ROOT, t.output)
        old = open(path).read() if os.path.exists(path) else ""
        if new != old:
            bad += 1
            diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), t.output, "regenerated", lineterm=""))
            print(f"{n}: {t.output} differs from regenerated output ({len(diff)} diff lines):")
            print("\n".join(diff[:60]))
        else:
            print(f"{n}: {t.output} up to date")
    return 1 if bad else 0


def cmd_pin(args: argparse.Namespace) -> int:
    from . import pins
    for n in _names(args.targets):
        t = TARGETS[n]
        if hasattr(t, "module") or getattr(t, "builder", None) is not None or not hasattr(t, "table_files"):
            print(f"{n}: has its own generator, which records its sources' sha256 itself")
            continue
        if not sources_present(t, args.src):
            print(f"{n}: skipped, sources not found under {args.src}")
            continue
        changed = pins.record(input_files(TARGETS[n], args.src))
        print(f"{n}: {changed} pin(s) recorded in autogen/pins.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autogen", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    default_src = os.environ.get("HWDRV_AUTOGEN_SRC")
    for name, fn in (("generate", cmd_generate), ("check", cmd_check), ("pin", cmd_pin)):
        s = sub.add_parser(name)
        s.add_argument("targets", nargs="*", help=f"targets {sorted(TARGETS)} or groups {sorted(GROUPS)}")
        s.add_argument("--src", default=default_src, required=default_src is None,
                       help="directory holding the source trees (env HWDRV_AUTOGEN_SRC)")
        if name == "generate":
            s.add_argument("--out", help="write under this root instead of the repository")
        s.set_defaults(fn=fn)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except GenError as e:
        print(f"autogen: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
