#!/bin/sh
# Rebuilds the committed gfx1100 code objects (*.hsaco) from src/*.cl and records what LLVM's own
# tools say about them (llvm_facts.json, the independent check for hwdrv's loader).
# Needs Debian's clang-19, lld-19 and llvm-19:  apt-get install -y clang-19 lld-19 llvm-19
# Usage: sh tests/data/amd/kernels/build.sh   (from anywhere)
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
LLD=${LLD:-ld.lld-19}
# -nogpulib: no ROCm device libraries (not packaged for LLVM 19); kernels use AMDGPU builtins.
CFLAGS="-x cl -cl-std=CL2.0 -target amdgcn-amd-amdhsa -mcpu=gfx1100 -nogpulib -O2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for src in src/*.cl; do
  name=$(basename "$src" .cl)
  $CLANG $CFLAGS -c "$src" -o "$tmp/$name.o"
  $LLD -shared "$tmp/$name.o" -o "$name.hsaco"
  # relocatable objects kept as ET_REL test inputs (what llvmlite/comgr produce)
  case $name in elementwise|globals) cp "$tmp/$name.o" "$name.o" ;; esac
done
# loader-only inputs: relocatable objects (no test case of their own in kernels.json)
for src in src/reloc/*.cl; do
  $CLANG $CFLAGS -c "$src" -o "$(basename "$src" .cl).o"
done
python3 record_llvm_facts.py > llvm_facts.json
