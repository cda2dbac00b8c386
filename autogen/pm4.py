"""Generator of hwdrv/amd/gen/pm4.py: the C-header pipeline over amdgpu's nvd.h, plus the packet
macros whose value is a full 32-bit dword.

nvd.h builds headers as ``(PACKET_TYPE3 << 30) | ...`` and a few fields as ``(x) << 29``: in C these
are ``int`` expressions that overflow into the sign bit, so the generic pipeline (which checks its
Python translation against gcc's signed result) refuses them. Here they are translated with the same
``cexpr`` translator, masked to 32 bits, and checked against gcc's ``(unsigned int)`` value of the
macro for sample arguments -- the dword the CP actually reads.
"""
from __future__ import annotations

import itertools
import os

from . import cc, cexpr
from .generate import GenError, _flags, _generate
from .manifest import PM4_C, PM4_DWORD_MACROS

SAMPLES = [0, 1, 2, 5, 7, 0x3F, 0xFF, 0x3FFF]


def source_paths(src: str) -> list[str]:
    from .manifest import REPOS
    return [os.path.join(src, REPOS[r].dir, p) for r, p in PM4_C.headers]


def generate(src: str) -> str:
    """Module text of hwdrv/amd/gen/pm4.py."""
    text = _generate(PM4_C, src, [], verify_pins=True)
    flags = _flags(PM4_C, src)
    header = source_paths(src)[0]
    ms = cc.macros(f'#include "{header}"\n', flags)
    defs, probe, checks = [], [], []
    for name in PM4_DWORD_MACROS:
        m = ms.get(name)
        if m is None or m.params is None:
            raise GenError(f"pm4: {name} is not a function-like macro of {header}")
        params = [f"__hwdrv_p{j}" for j in range(len(m.params))]
        call = f"{name}({', '.join(params)})"
        expanded = [ln for ln in cc.preprocess(f'#include "{header}"\n__hwdrv_exp = {call} ;\n', flags, ["-P"]).splitlines()
                    if ln.startswith("__hwdrv_exp = ")][0][len("__hwdrv_exp = "):-2]
        py = cexpr.to_python(expanded, params)
        pnames = [p for p in m.params]
        for j, p in enumerate(pnames):
            py = py.replace(f"__hwdrv_p{j}", p)
        defs.append(f"def {name}({', '.join(f'{p}: int' for p in pnames)}) -> int:\n"
                    f"    return ({py}) & 0xFFFFFFFF\n")
        for args in itertools.product(SAMPLES, repeat=len(pnames)):
            probe.append(f'printf("%u\\n", (unsigned int)({name}({", ".join(map(str, args))})));')
            checks.append((name, pnames, py, args))
    out = cc.compile_and_run(f'#include <stdio.h>\n#include "{header}"\nint main(void) {{\n' + "\n".join(probe) +
                             "\nreturn 0;\n}\n", flags)
    for (name, pnames, py, args), want in zip(checks, out.split()):
        got = eval(py, {}, dict(zip(pnames, args))) & 0xFFFFFFFF  # noqa: S307 - our own translation
        if got != int(want):
            raise GenError(f"pm4: {name}{args}: python gives {got}, gcc (unsigned) gives {want}")
    return (text.rstrip("\n") + "\n\n# Whole-dword packet macros (checked against gcc as unsigned 32-bit values)\n"
            + "\n".join(defs))
