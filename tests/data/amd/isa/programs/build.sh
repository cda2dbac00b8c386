#!/bin/sh
# Assemble the test programs with LLVM 19 (Debian llvm-19) into programs.json (code as dwords).
# Run from this directory:  sh build.sh
set -e
python3 - <<'PY'
import json, pathlib, re, subprocess, tempfile, struct
out = {}
for s in sorted(pathlib.Path(".").glob("*.s")):
    with tempfile.TemporaryDirectory() as d:
        obj, binf = f"{d}/p.o", f"{d}/p.bin"
        subprocess.run(["llvm-mc-19", "-triple=amdgcn-amd-amdhsa", "-mcpu=gfx1100", "-filetype=obj", str(s), "-o", obj], check=True)
        subprocess.run(["llvm-objcopy-19", "-O", "binary", "--only-section=.text", obj, binf], check=True)
        raw = open(binf, "rb").read()
    out[s.stem] = [f"{w:08x}" for w in struct.unpack(f"<{len(raw) // 4}I", raw)]
pathlib.Path("programs.json").write_text(json.dumps({"assembler": "llvm-mc " + re.search(r"LLVM version (\S+)", subprocess.run(["llvm-mc-19", "--version"], capture_output=True, text=True).stdout).group(1), "programs": out}, indent=1) + "\n")
print(len(out), "programs")
PY
