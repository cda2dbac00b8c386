#!/usr/bin/env bash
# One device call that checks a whole session's NVIDIA work (logs under $OUT, at most ~9 min):
# the cluster probe, the hardware suite, the tensor benchmark, nv_bench against a baseline tree
# (optional first argument), the add-of-1-GiB probe and the chained-QMD (PDL) probe. Needs the wheels of
# ../shared/tools/gpu-wheels.sh in .whl/.
#   bash tests/hardware/final_run.sh [baseline-tree]
set -uo pipefail
base=${1:-}; OUT=${OUT:-gpu-out}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 45 python3 tests/hardware/cluster_probe.py nvidia:0 > "$OUT/cluster_probe.txt" 2>&1; tail -3 "$OUT/cluster_probe.txt" | cut -c1-300
timeout 130 python3 -m pytest -m hardware tests/hardware -q -p no:cacheprovider -rfE -x > "$OUT/hw_suite.log" 2>&1; echo "suite rc=$?"; tail -4 "$OUT/hw_suite.log"
timeout 170 python3 bench/tensor_bench.py --repeat 5 > "$OUT/tensor_bench.txt" 2>&1; cat "$OUT/tensor_bench.txt"; cp bench/results/tensor_bench_*.json "$OUT/" 2>/dev/null
timeout 45 python3 bench/nv_bench.py --out "$OUT/nvb_new.json" > "$OUT/nvb_new.txt" 2>&1; cat "$OUT/nvb_new.txt" | tail -14
[ -n "$base" ] && (cd "$base" && PYTHONPATH=/tmp/site:$PWD timeout 35 python3 bench/nv_bench.py --part hwdrv --out "$OUT/nvb_base.json") > "$OUT/nvb_base.txt" 2>&1 && cut -c1-400 "$OUT/nvb_base.txt"
timeout 40 python3 tests/hardware/add_bw_probe.py nvidia:0 --repeat 5 > "$OUT/add_probe.txt" 2>&1; cat "$OUT/add_probe.txt"
PDL_PROBE_VARIANTS=${PDL_PROBE_VARIANTS:-chain,pre_exit,cuda_like} timeout 150 python3 tests/hardware/pdl_probe.py nvidia:0 > "$OUT/pdl_probe.txt" 2>&1; cut -c1-220 "$OUT/pdl_probe.txt"
