"""The generator itself: `python -m autogen check` against the pinned sources (when present), and
a synthetic header run through the whole pipeline (gcc + pycparser + probe)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.environ.get("HWDRV_AUTOGEN_SRC")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed (the generator needs it)")


@needs_gcc
@pytest.mark.skipif(not SRC or not os.path.isdir(SRC),
                    reason="set HWDRV_AUTOGEN_SRC to the directory holding the pinned source trees "
                           "(see autogen/README.md) to check the committed generated modules")
def test_committed_outputs_match_regeneration():
    r = subprocess.run([sys.executable, "-m", "autogen", "check", "--src", SRC], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "up to date" in r.stdout


#: C-header targets without pins, and why (see autogen/README.md, "Pins")
UNPINNED = {"kfd": "no copy of torvalds/linux at the pinned commit could be brought here"}


def test_every_input_file_of_the_c_header_targets_is_pinned():
    """CI cannot fetch the upstream trees (none is on PyPI or Debian main, and the repository
    must not carry them), so the regeneration check above runs where the sources are; what CI
    checks is that every file the C-header targets read has a SHA-256 pin, so a regeneration from
    another version of a file fails instead of silently changing the bindings."""
    sys.path.insert(0, ROOT)
    from autogen import pins
    from autogen.manifest import REPOS, TARGETS
    pinned = pins.load()
    checked = 0
    for name, t in TARGETS.items():
        if (hasattr(t, "module") or getattr(t, "builder", None) is not None
                or not hasattr(t, "table_files") or name in UNPINNED):
            continue        # targets with their own generator record their sources' sha256 themselves
        checked += 1
        for r, p in list(t.headers) + list(t.table_files):
            k = pins.key(REPOS[r].dir, p)
            assert k in pinned and len(pinned[k]) == 64, f"{name}: {k} has no pin"
    assert checked >= 5


def test_a_changed_source_file_fails_generation(tmp_path, monkeypatch):
    sys.path.insert(0, ROOT)
    from autogen import pins
    # record() rewrites the pins file: work on a copy of the committed one, so the tracked
    # autogen/pins.json is never rewritten and a test reading it in parallel never sees it
    # half-written or carrying the synthetic pin
    copy = tmp_path / "pins.json"
    shutil.copyfile(pins.PINS_PATH, copy)
    monkeypatch.setattr(pins, "PINS_PATH", str(copy))
    f = tmp_path / "h.h"
    f.write_text("#define A 1\n")
    k = pins.key("somerepo", "h.h")
    real = pins.load()
    assert k not in real
    pins.record([("somerepo", "h.h", str(f))])
    assert pins.load() == {**real, k: pins.sha256_of(str(f))}
    assert pins.mismatches([("somerepo", "h.h", str(f))]) == []
    f.write_text("#define A 2\n")
    bad = pins.mismatches([("somerepo", "h.h", str(f))])
    assert len(bad) == 1 and k in bad[0] and "another version" in bad[0]


SYNTH = r"""
#include <linux/ioctl.h>
typedef unsigned int u32;
typedef unsigned long long u64;
#define N_SLOTS (2 * 3)
#define X_FIELD 7:4
#define X_WIDE MW(47:16)
#define X_IDX(i) MW((320+(i)*16):(320+(i)*16))
#define X_LIN(i, j) ((i) * 4 + (j) + N_SLOTS)
#define X_NEG (-5)
#define X_TOP (1 << 31)
#define X_STR "not an int"
#define REG__FLD__SHIFT 0x8
#define REG__FLD_MASK 0x00000F00L
enum color { RED = 2, GREEN = 7 };
struct inner { u32 a; };
typedef struct {
    u32 hdr;
    union { u64 q; u32 w[2]; };
    struct { unsigned char b; u64 z; } named;
    u32 flag : 3;
    u32 more : 9;
    struct inner arr[N_SLOTS];
    enum color c;
    void (*cb)(int);
} synth_t;
#define SYNTH_IOC _IOWR('S', 3, synth_t)
"""


@needs_gcc
def test_generator_on_synthetic_header(tmp_path, monkeypatch):
    sys.path.insert(0, ROOT)
    try:
        from autogen import generate as gen
        from autogen import manifest
    finally:
        sys.path.remove(ROOT)
    (tmp_path / "synth").mkdir()
    (tmp_path / "synth" / "synth.h").write_text(SYNTH)
    monkeypatch.setitem(manifest.REPOS, "synth", manifest.Repo("synth", "example/synth", None, "0" * 40))
    t = manifest.Target(name="synth", group="synth", output="x.py", doc="synthetic", repos=["synth"],
                        headers=[("synth", "synth.h")], types=["synth_t"],
                        macros=[r"X_\w+", r"REG__\w+", "SYNTH_IOC", "RED", "GREEN", "N_SLOTS"])
    text = gen.generate(t, str(tmp_path), verify_pins=False)
    ns: dict = {}
    exec(compile(text, "synth_gen.py", "exec"), ns)
    ffi, layout, F = ns["ffi"], ns["LAYOUT"], ns["Field"]
    size, offs = layout["synth_t"]
    assert ffi.sizeof("synth_t") == size
    for path, off in offs.items():
        assert ffi.offsetof("synth_t", *path.split(".")) == off
    assert {"q", "w", "named", "named.b", "named.z", "arr", "c", "cb"} <= set(offs)
    assert layout["struct inner"][0] == 4 and "flag" not in offs
    assert ns["BITFIELDS"]["synth_t"] == {"flag": (offs["named"] * 8 + 128, 3), "more": (offs["named"] * 8 + 131, 9)}
    assert ns["X_FIELD"] == F(7, 4) and ns["X_WIDE"] == F(47, 16)
    assert ns["X_IDX"](2) == F(352, 352) and ns["X_LIN"](3, 1) == 19
    assert ns["X_NEG"] == -5 and ns["X_TOP"] == 0x80000000 and "X_STR" not in ns
    assert ns["REG__FLD"] == F(11, 8) and ns["RED"] == 2 and ns["GREEN"] == 7 and ns["N_SLOTS"] == 6
    assert ns["SYNTH_IOC"] == (3 << 30) | (size << 16) | (ord("S") << 8) | 3
    assert "arr[6]" in ns["CDEF"]


@needs_gcc
def test_generator_rejects_missing_named_symbol(tmp_path, monkeypatch):
    sys.path.insert(0, ROOT)
    try:
        from autogen import generate as gen
        from autogen import manifest
    finally:
        sys.path.remove(ROOT)
    (tmp_path / "synth").mkdir()
    (tmp_path / "synth" / "synth.h").write_text("#define A 1\n")
    monkeypatch.setitem(manifest.REPOS, "synth", manifest.Repo("synth", "example/synth", None, "0" * 40))
    t = manifest.Target(name="synth", group="synth", output="x.py", doc="d", repos=["synth"],
                        headers=[("synth", "synth.h")], macros=["A", "B_MISSING"])
    with pytest.raises(gen.GenError, match="B_MISSING"):
        gen.generate(t, str(tmp_path), verify_pins=False)
