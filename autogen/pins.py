"""SHA-256 pins of the upstream files each target is generated from (``autogen/pins.json``).

A pinned commit names the version; the hashes make sure the files read are that version's bytes
(a tree checked out at another commit, or edited, fails generation with the file named).
``python -m autogen pin TARGET --src DIR`` records the hashes of a target's input files.
"""
from __future__ import annotations

import hashlib
import json
import os

PINS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pins.json")


def load() -> dict[str, str]:
    """``{"<repo dir>/<path>": sha256 hex}``."""
    with open(PINS_PATH) as f:
        return json.load(f)


def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def key(repo_dir: str, path: str) -> str:
    return f"{repo_dir}/{path}"


def mismatches(files: list[tuple[str, str, str]]) -> list[str]:
    """For ``(repo dir, path, absolute path)`` inputs: a line per unpinned or changed file."""
    pins = load()
    out = []
    for repo_dir, path, full in files:
        k = key(repo_dir, path)
        want = pins.get(k)
        if want is None:
            out.append(f"{k}: no pin in autogen/pins.json (run python -m autogen pin)")
            continue
        got = sha256_of(full)
        if got != want:
            out.append(f"{k}: sha256 {got} but the pin is {want} (another version of the file?)")
    return out


def record(files: list[tuple[str, str, str]]) -> int:
    """Add or replace the pins of ``files``; returns how many changed."""
    pins = load()
    changed = 0
    for repo_dir, path, full in files:
        h = sha256_of(full)
        if pins.get(key(repo_dir, path)) != h:
            pins[key(repo_dir, path)] = h
            changed += 1
    with open(PINS_PATH, "w") as f:
        json.dump(dict(sorted(pins.items())), f, indent=1)
        f.write("\n")
    return changed
