"""Extract Mesa's ir3 disassembler test vectors from ``src/freedreno/ir3/tests/disasm.c``.

    python tests/data/qcom/ir3/extract_vectors.py SRC/src/freedreno/ir3/tests/disasm.c \
        > tests/data/qcom/ir3/mesa_disasm_vectors.json

SRC is the Mesa 25.0.7 release tree (autogen/manifest.py pins it and this file's sha256). Keeps the
a6xx (INSTR_6XX, gpu_id 600) and a7xx (INSTR_7XX, gpu_id 700) entries of the ``tests[]`` table that
the C preprocessor would compile (``#if 0`` branches and comments dropped), plus the entries
``add_generated_tests()`` adds in its loop. a4xx/a5xx entries are counted and left out.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys

GPU_ID = {"INSTR_6XX": 600, "INSTR_7XX": 700}   # Mesa tests with gpu_id = dev_info->chip * 100


def _strip_comments(text: str) -> str:
    # keep line numbers: block comments become as many newlines as they held
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _preprocess(lines: list[str]) -> list[tuple[int, str]]:
    """Drop `#if 0` branches (the only conditionals the file uses)."""
    out, stack = [], []
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if s.startswith("#if"):
            stack.append(s == "#if 0")
        elif s.startswith("#else"):
            stack[-1] = not stack[-1]
        elif s.startswith("#endif"):
            stack.pop()
        elif not any(stack):
            out.append((n, line))
    return out


def extract(path: str) -> dict:
    raw = open(path, "rb").read()
    text = _strip_comments(raw.decode())
    lines = _preprocess(text.split("\n"))
    body = "\n".join(f"@{n}@{l}" for n, l in lines)
    start = body.index("} tests[] = {")
    end = body.index("};", start)
    vectors, skipped = [], {}
    entry = re.compile(r"@(\d+)@\s*(INSTR_\dXX)\(([0-9a-fA-F]{8})_([0-9a-fA-F]{8}),\s*\"((?:[^\"\\]|\\.)*)\"\s*(,[^)]*)?\)")
    for m in entry.finditer(body[start:end]):
        line, macro, hi, lo, expected, extra = m.groups()
        if macro not in GPU_ID:
            skipped[macro] = skipped.get(macro, 0) + 1
            continue
        vectors.append({"gpu_id": GPU_ID[macro], "hex": f"{hi.lower()}_{lo.lower()}", "text": expected,
                        "line": int(line), **({"extra": extra.strip(", ")} if extra else {})})
    # add_generated_tests(): for (int offset = 1; offset < N; offset++) { fmt % offset, BASE + (offset << S) }
    gen = body[body.index("add_generated_tests"):]
    line_no = int(re.search(r"@(\d+)@\s*for \(int offset", gen).group(1))
    gen = re.sub(r"@\d+@", "", gen)
    loop = re.search(r"for \(int offset = (\d+); offset < (0x[0-9a-f]+|\d+); offset\+\+\)", gen)
    pairs = re.findall(r"ralloc_asprintf\(\s*ctx,\s*\"([^\"]+)\",\s*offset\);.*?INSTR_6XX_RAW\(\s*"
                       r"(0x[0-9a-fA-F]+)ull \+ \(\(uint64_t\)offset << (\d+)\),", gen, flags=re.S)
    if not loop or len(pairs) != 2:
        raise SystemExit("add_generated_tests() is not in the expected shape; update this script")
    for offset in range(int(loop.group(1)), int(loop.group(2), 0)):
        for fmt, base, shift in pairs:
            word = int(base, 16) + (offset << int(shift))
            vectors.append({"gpu_id": 600, "hex": f"{word >> 32:08x}_{word & 0xFFFFFFFF:08x}",
                            "text": fmt.replace("%u", str(offset)), "line": line_no})
    return {"source": {"repo": "mesa/mesa", "tag": "mesa-25.0.7", "path": "src/freedreno/ir3/tests/disasm.c",
                       "sha256": hashlib.sha256(raw).hexdigest()},
            "command": "python tests/data/qcom/ir3/extract_vectors.py SRC/src/freedreno/ir3/tests/disasm.c",
            "left_out": {k: f"{v} entries for other GPU generations (a4xx/a5xx)" for k, v in sorted(skipped.items())},
            "vectors": vectors}


if __name__ == "__main__":
    json.dump(extract(sys.argv[1]), sys.stdout, indent=1)
    sys.stdout.write("\n")
