#!/bin/sh
# Rebuilds stress.hsaco (the AMD kernels of the stress suites) from stress.cl with
# Debian's clang-19 + lld-19, the same command as tests/data/amd/kernels/build.sh.
# Usage: sh tests/data/amd/stress/build.sh  (from anywhere)
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
LLD=${LLD:-ld.lld-19}
CFLAGS="-x cl -cl-std=CL2.0 -target amdgcn-amd-amdhsa -mcpu=gfx1100 -nogpulib -O2 -I ../../../../hwdrv/amd/samples"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$CLANG $CFLAGS -c stress.cl -o "$tmp/stress.o"
$LLD -shared "$tmp/stress.o" -o stress.hsaco
