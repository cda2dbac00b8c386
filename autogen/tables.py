"""Lookup tables built from headers: NV_STATUS (nvstatuscodes.h) and XID (nverror.h).

Both are read through gcc: the probe includes the header with its list macro redefined to print
each entry, so codes and message strings are exactly what C sees.
"""
from __future__ import annotations

import os
import re

from . import cc

_STATUS_PROBE = r"""
#include <stdio.h>
int main(void) {
#define NV_STATUS_CODE(name, code, string) printf("%%s\t%%llu\t%%s\n", #name, (unsigned long long)(code), string);
#include "%s"
    return 0;
}
"""


def nv_status(t, src: str, flags: list[str], roots: dict[str, str]) -> str:
    """``NV_STATUS = {code: (name, message)}`` from nvstatuscodes.h."""
    path = os.path.join(roots["ogkm"], "kernel-open/common/inc/nvstatuscodes.h")
    out = cc.compile_and_run(_STATUS_PROBE % path, flags)
    rows: dict[int, tuple[str, str]] = {}
    for line in out.splitlines():
        name, code, msg = line.split("\t", 2)
        if int(code) in rows:
            raise ValueError(f"duplicate NV_STATUS code {code}: {rows[int(code)][0]} and {name}")
        rows[int(code)] = (name, msg)
    body = ["# RM status codes: code -> (name, message), from nvstatuscodes.h", "NV_STATUS = {"]
    body += [f"    0x{c:08X}: ({n!r}, {m!r})," for c, (n, m) in sorted(rows.items())]
    body.append("}")
    return "\n".join(body)


# Error numbers are the object-like macros of nverror.h with a plain integer body; these are
# counters/limits or recovery levels, not Xids.
_XID_SKIP = re.compile(r"^(ROBUST_CHANNEL_LAST_ERROR|ROBUST_CHANNEL_ERROR_RECOVERY_LEVEL_\w+|NVERROR_H)$")


def xid(t, src: str, flags: list[str], roots: dict[str, str]) -> str:
    """``XID = {number: name}`` from nverror.h (ROBUST_CHANNEL_* and the other error numbers)."""
    path = os.path.join(roots["ogkm"], "src/common/sdk/nvidia/inc/nverror.h")
    ms = [m for m in cc.macros(f'#include "{path}"\n', flags).values()
          if os.path.realpath(m.file) == os.path.realpath(path) and m.params is None
          and re.fullmatch(r"\(?\s*\d+\s*\)?", m.body) and not _XID_SKIP.match(m.name)]
    lines = "".join(f'printf("%s\\t%llu\\n", "{m.name}", (unsigned long long)({m.name}));\n' for m in ms)
    out = cc.compile_and_run(f'#include <stdio.h>\n#include "{path}"\nint main(void) {{\n{lines}return 0;\n}}\n', flags)
    rows: dict[int, str] = {}
    for line in out.splitlines():
        name, num = line.split("\t")
        if int(num) in rows:
            raise ValueError(f"duplicate Xid {num}: {rows[int(num)]} and {name}")
        rows[int(num)] = name
    body = ["# Xid numbers (error notifier info32, dmesg 'NVRM: Xid') -> name, from nverror.h", "XID = {"]
    body += [f"    {n}: {name!r}," for n, name in sorted(rows.items())]
    body.append("}")
    return "\n".join(body)
