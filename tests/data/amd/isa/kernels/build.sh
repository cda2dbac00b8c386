#!/bin/sh
# Build ops.hsaco (gfx1100) from ops.cl with Debian clang-19 / ld.lld-19.
# Correctly rounded f32 division/sqrt and no fp contraction, so results are exact IEEE operations.
# Usage: sh tests/data/amd/isa/kernels/build.sh
set -eu
cd "$(dirname "$0")"
clang-19 -x cl -cl-std=CL2.0 -target amdgcn-amd-amdhsa -mcpu=gfx1100 -nogpulib -O2 \
  -cl-fp32-correctly-rounded-divide-sqrt -ffp-contract=off -c ops.cl -o ops.o
ld.lld-19 -shared ops.o -o ops.hsaco
rm -f ops.o
