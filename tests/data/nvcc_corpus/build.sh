#!/bin/sh
# Rebuilds the committed PTX and sm_90 cubins of the nvcc corpus from the .cu sources.
# Needs nvcc 13.x on PATH. Run from this directory: sh build.sh
set -eu
cd "$(dirname "$0")"
nvcc --version | tail -n 2
for f in *.cu; do
  b="${f%.cu}"
  nvcc -arch=sm_90 -O3 -ptx -o "$b.ptx" "$f"
  nvcc -arch=sm_90 -O3 -cubin -o "$b.cubin" "$f"
done
