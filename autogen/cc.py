"""gcc helpers: preprocess a translation unit, read its macro definitions with their origin files,
and compile + run probe programs (the probe's output is the truth for every number we emit)."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass

# Neutralise GNU extensions that pycparser cannot parse. Only used for the *parsing* pass; every
# size, offset and value is measured with the real (unmodified) preprocessing in the probe.
PARSE_DEFINES = [
    "-D__attribute__(x)=", "-D__extension__=", "-D__restrict=", "-D__restrict__=",
    "-D__inline=inline", "-D__inline__=inline", "-D__asm__(x)=", "-D__asm(x)=",
    "-D__builtin_va_list=int", "-D__volatile__=volatile", "-D__signed__=signed",
    "-D__const=const", "-D__typeof__(x)=int", "-D_Float128=double", "-D__float128=double",
]

GCC = os.environ.get("HWDRV_AUTOGEN_CC", "gcc")


class CCError(RuntimeError):
    """gcc failed in a way the generator cannot recover from."""


@dataclass
class Macro:
    name: str
    params: list[str] | None  # None for object-like macros
    body: str
    file: str                 # header the definition came from (absolute path)


def run(cmd: list[str], cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def preprocess(source: str, flags: list[str], extra: list[str] = ()) -> str:
    """``gcc -E`` of ``source`` (C text) with ``flags``; returns the output text."""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "tu.c")
        with open(src, "w") as f:
            f.write(source)
        r = run([GCC, "-E", *flags, *extra, src])
        if r.returncode:
            raise CCError(f"gcc -E failed:\n{r.stderr[-4000:]}")
        return r.stdout


_LINEMARK = re.compile(r'^# (\d+) "([^"]*)"')
_DEFINE = re.compile(r'^#define ([A-Za-z_]\w*)(\(([^)]*)\))?\s?(.*)$')


def macros(source: str, flags: list[str]) -> dict[str, Macro]:
    """Every macro defined while preprocessing ``source``, with the file that defined it
    (from ``gcc -E -dD`` line markers); later definitions and #undef win, as in C."""
    out: dict[str, Macro] = {}
    cur = ""
    for line in preprocess(source, flags, ["-dD"]).splitlines():
        m = _LINEMARK.match(line)
        if m:
            cur = m.group(2)
            continue
        if line.startswith("#define "):
            m = _DEFINE.match(line)
            if m:
                params = None if m.group(2) is None else [p.strip() for p in m.group(3).split(",") if p.strip()]
                out[m.group(1)] = Macro(m.group(1), params, m.group(4).strip(), cur)
        elif line.startswith("#undef "):
            out.pop(line.split()[1], None)
    return out


def compile_and_run(source: str, flags: list[str], tag_lines: dict[int, str] | None = None) -> str:
    """Compile ``source`` as C11 and run it; returns stdout. Raises CCError on failure."""
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "probe.c"), os.path.join(d, "probe")
        with open(src, "w") as f:
            f.write(source)
        r = run([GCC, "-std=gnu11", "-w", "-O0", *flags, src, "-o", exe])
        if r.returncode:
            raise CCError(f"probe compile failed:\n{r.stderr[-6000:]}")
        r = run([exe])
        if r.returncode:
            raise CCError(f"probe exited with {r.returncode}:\n{r.stderr[-2000:]}")
        return r.stdout


def failing_lines(source: str, flags: list[str]) -> set[int] | None:
    """Line numbers of ``source`` named in gcc's error output (None if it compiles)."""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        r = run([GCC, "-std=gnu11", "-w", "-fsyntax-only", "-fmax-errors=0", *flags, src])
        if r.returncode == 0:
            return None
        lines = {int(n) for n in re.findall(r"probe\.c:(\d+):", r.stderr)}
        if not lines:
            raise CCError(f"probe failed without a line number:\n{r.stderr[-4000:]}")
        return lines
