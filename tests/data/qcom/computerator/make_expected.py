"""Expected results of Mesa's computerator example shaders (src/freedreno/computerator/examples),
computed here in numpy from what each program does, for tests/test_ir3emu_computerator.py.

    python tests/data/qcom/computerator/make_expected.py MESA_TREE > tests/data/qcom/computerator/expected.json

MESA_TREE is the Mesa 25.0.7 release tree; only the sha256 of each example is read from it (the
tests refuse a file whose hash differs, since these results describe that exact program). The
programs themselves are not copied into this repository.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np

EXAMPLES = os.path.join("src", "freedreno", "computerator", "examples")


def branch() -> list[np.ndarray]:
    # 16 fibers; p0 = (id > 0); "br !p0.x" skips the second mov for fiber 0 only; buf[id] = r1.x
    out = np.full(16, 0x12345678, np.uint32)
    out[0] = 0x87654321
    return [out]


def buf_init() -> list[np.ndarray]:
    # 8 fibers; buf = 1..8; fiber i loads buf[i..i+3] (past the 8-dword descriptor: 0), adds 5 to
    # the first, stores the 4 values back at i (past the end: dropped). All loads happen before
    # the stores ((sy) then one store instruction); overlapping stores: the highest fiber's value stays.
    init = np.arange(1, 9, dtype=np.uint32)
    padded = np.concatenate([init, np.zeros(3, np.uint32)])
    out = init.copy()
    for i in range(8):
        vals = padded[i:i + 4].copy()
        vals[0] += 5
        for c in range(4):
            if i + c < 8:
                out[i + c] = vals[c]
    return [out]


def invocationid() -> list[np.ndarray]:
    return [np.arange(32, dtype=np.uint32)]          # buf[id] = id


def localmem() -> list[np.ndarray]:
    return [np.full(8, 5, np.uint32)]                # one fiber writes 5 to l[0]; all read it back


def pvtmem() -> list[np.ndarray]:
    return [np.array([0x12345678, 0, 0, 0], np.uint32)]   # stp/ldp round trip, stored at buf[0]


def simple() -> list[np.ndarray]:
    # r2.x = c0.x + c0.y = 0 -> a0.x = 0 -> r0.x = r<a0.x> = r0.x = 0x12345678 -> buf[0]
    return [np.array([0x12345678, 0, 0, 0], np.uint32)]


def stg_ldg_offset() -> list[np.ndarray]:
    # 16 fibers; byte address c2 + (id << 4) + (2 << 2) gets 0xff; it is read back, +1, stored at +(1 << 2)
    out = np.zeros(128, np.uint32)
    ids = np.arange(16)
    out[4 * ids + 2] = 0xFF
    out[4 * ids + 1] = 0x100
    return [out]


CASES = {
    "branch.asm": branch, "buf-init.asm": buf_init, "invocationid.asm": invocationid, "localmem.asm": localmem,
    "pvtmem.asm": pvtmem, "simple.asm": simple, "stg_ldg_offset.asm": stg_ldg_offset,
}
REJECTED = {"early_preamble.asm": "earlypreamble"}    # needs a6xx gen3+ early preambles; the mock is an A630


def main(tree: str) -> None:
    out = {"source": {"repo": "mesa/mesa", "tag": "mesa-25.0.7", "dir": EXAMPLES.replace(os.sep, "/")},
           "command": "python tests/data/qcom/computerator/make_expected.py MESA_TREE", "cases": {}}
    for name in sorted(set(CASES) | set(REJECTED)):
        sha = hashlib.sha256(open(os.path.join(tree, EXAMPLES, name), "rb").read()).hexdigest()
        case = {"sha256": sha, "groups": [1, 1, 1]}
        if name in CASES:
            case["buffers"] = [[int(v) for v in b] for b in CASES[name]()]
        else:
            case["rejected"] = REJECTED[name]
        out["cases"][name] = case
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
