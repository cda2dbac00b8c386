"""Print (as JSON) what LLVM's own tools say about each committed code object.

Run by build.sh after the code objects are built; the output (llvm_facts.json) is the independent
reference the loader tests compare against:
  - `directives`: the `.amdhsa_*` values of each kernel descriptor, from the assembly clang-19 emits
    for the same source and flags (``-S``);
  - `metadata`: the NT_AMDGPU_METADATA note as llvm-readelf-19 --notes decodes it (YAML);
  - `symbols`: value/size of each dynamic symbol, from llvm-readelf-19 --dyn-syms;
  - `load`: the PT_LOAD program headers from llvm-readelf-19 -l;
  - `relocations`: per relocation section, (offset, type, symbol, addend) from llvm-readelf-19 -r,
    for the code objects and the kept relocatable objects (*.o).
Needs clang-19, llvm-19 and PyYAML (build-time only).
"""
import glob
import json
import os
import re
import subprocess

import yaml

CFLAGS = ["-x", "cl", "-cl-std=CL2.0", "-target", "amdgcn-amd-amdhsa", "-mcpu=gfx1100", "-nogpulib", "-O2"]


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def directives(src: str) -> dict:
    asm = run("clang-19", *CFLAGS, "-S", src, "-o", "-")
    out = {}
    for m in re.finditer(r"^\s*\.amdhsa_kernel (\S+)\n(.*?)^\s*\.end_amdhsa_kernel", asm, re.M | re.S):
        out[m.group(1)] = {k: int(v, 0) for k, v in re.findall(r"^\s*\.(amdhsa_\w+)\s+(\S+)\s*$", m.group(2), re.M)}
    return out


def metadata(hsaco: str) -> dict:
    text = run("llvm-readelf-19", "--notes", hsaco)
    doc = text[text.index("---"):text.index("\n...", text.index("---"))]
    return yaml.safe_load(doc)


def symbols(hsaco: str) -> dict:
    out = {}
    for line in run("llvm-readelf-19", "--dyn-syms", "-W", hsaco).splitlines():
        f = line.split()
        if len(f) == 8 and f[0].rstrip(":").isdigit() and f[7] != "UND":
            out[f[7]] = {"value": int(f[1], 16), "size": int(f[2]), "type": f[3]}
    return out


def loads(hsaco: str) -> list:
    out = []
    for line in run("llvm-readelf-19", "-l", "-W", hsaco).splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            out.append({"offset": int(f[1], 16), "vaddr": int(f[2], 16), "filesz": int(f[4], 16),
                        "memsz": int(f[5], 16), "flags": "".join(f[6:-1]), "align": int(f[-1], 16)})
    return out


def relocations(path: str) -> dict:
    out, sec = {}, None
    for line in run("llvm-readelf-19", "-r", "-W", path).splitlines():
        m = re.match(r"Relocation section '([^']+)'", line)
        if m:
            sec = out.setdefault(m.group(1), [])
            continue
        f = line.split()
        if sec is not None and len(f) >= 3 and f[2].startswith("R_AMDGPU_"):
            if len(f) >= 6:                           # offset info type value name + addend
                sym, addend = f[4], int(f[6], 16) if len(f) > 6 else 0
                if f[5] == "-":
                    addend = -int(f[6], 16)
            else:                                     # offset info type addend (no symbol)
                sym, addend = "", int(f[3], 16)
            sec.append({"offset": int(f[0], 16), "type": f[2], "symbol": sym, "addend": addend})
    return out


facts = {}
for src in sorted(glob.glob("src/*.cl")):
    name = os.path.basename(src)[:-3]
    hsaco = name + ".hsaco"
    facts[hsaco] = {"directives": directives(src), "metadata": metadata(hsaco),
                    "symbols": symbols(hsaco), "load": loads(hsaco), "relocations": relocations(hsaco)}
    if os.path.exists(name + ".o"):
        facts[name + ".o"] = {"relocations": relocations(name + ".o")}
for src in sorted(glob.glob("src/reloc/*.cl")):
    obj = os.path.basename(src)[:-3] + ".o"
    facts[obj] = {"relocations": relocations(obj), "directives": directives(src)}
print(json.dumps(facts, indent=1, sort_keys=True))
