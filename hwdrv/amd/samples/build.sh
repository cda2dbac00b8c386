#!/bin/sh
# Rebuilds samples.hsaco (hwdrv's AMD sample and builtin kernels) from samples.cl with Debian's
# clang-19 + lld-19 (apt-get install -y clang-19 lld-19), the same command as
# tests/data/amd/kernels/build.sh. Usage: sh hwdrv/amd/samples/build.sh  (from anywhere)
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
LLD=${LLD:-ld.lld-19}
CFLAGS="-x cl -cl-std=CL2.0 -target amdgcn-amd-amdhsa -mcpu=gfx1100 -nogpulib -O2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$CLANG $CFLAGS -c samples.cl -o "$tmp/samples.o"
$LLD -shared "$tmp/samples.o" -o samples.hsaco
