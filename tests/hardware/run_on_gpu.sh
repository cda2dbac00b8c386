#!/usr/bin/env bash
# One device-machine run: the hardware suite, the smoke run, the diagnosis CLI and nv_bench,
# logs under $OUT (default ./gpu-out). Needs the wheels of ../shared/tools/gpu-wheels.sh in .whl/.
#   bash tests/hardware/run_on_gpu.sh [suite|tensor|bench|probes|all] [baseline-tree]
# probes: the launch-path profile (against the baseline tree when given), the TMA box probe, the
# QMD pre-exit (PDL) probe, the elementwise and matmul config sweeps.
# With a baseline tree (an older checkout's hwdrv/ and bench/), nv_bench runs alternately on it
# and on this tree, so the two are compared on the same GPU in the same run.
set -uo pipefail
what=${1:-all}; base=${2:-}
FINAL=${OUT:-gpu-out}; OUT="$FINAL/logs"; mkdir -p "$OUT"
# everything in one archive, whatever step ends the run (the device tool returns at most 8 files)
trap 'tar -czf "$FINAL/logs.tgz" -C "$FINAL" logs && rm -rf "$OUT"' EXIT
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version,pci.bus_id --format=csv > "$OUT/gpu.txt" 2>&1
if [ "$what" = suite ] || [ "$what" = all ]; then
  timeout "${SUITE_S:-300}" python3 -m pytest -m hardware tests/hardware -q -p no:cacheprovider -rfEs > "$OUT/hw_suite.log" 2>&1
  echo "suite rc=$?"; tail -3 "$OUT/hw_suite.log"
  python3 tests/hardware/smoke.py nvidia:0 > "$OUT/smoke.log" 2>&1; echo "smoke rc=$?"
  timeout 120 python3 -m hwdrv diagnose --device nvidia:0 > "$OUT/diagnose.log" 2>&1; echo "diagnose rc=$?"
  timeout 120 python3 -m hwdrv diagnose --device nvidia:0 --json > "$OUT/diagnose.json" 2>&1; echo "diagnose json rc=$?"
fi
if [ "$what" = probes ]; then
  timeout 60 python3 tests/hardware/profile_submit.py nvidia:0 > "$OUT/prof_new.txt" 2>&1
  [ -n "$base" ] && (cd "$base" && PYTHONPATH=/tmp/site:$PWD timeout 60 python3 "$OLDPWD/tests/hardware/profile_submit.py" nvidia:0) > "$OUT/prof_base.txt" 2>&1
  grep "per call" "$OUT"/prof_*.txt
  timeout 150 python3 bench/tensor_bench.py --matmul-configs --repeat 5 > "$OUT/mm_sweep.txt" 2>&1; cat "$OUT/mm_sweep.txt"
  timeout 80 python3 tests/hardware/tma_swizzle_probe.py > "$OUT/tma.txt" 2>&1; cut -c1-110 "$OUT/tma.txt"
  timeout 60 python3 tests/hardware/pdl_probe.py > "$OUT/pdl.txt" 2>&1; cut -c1-200 "$OUT/pdl.txt"
  OUT="$OUT" timeout 100 python3 bench/elementwise_sweep.py --repeat 10 > "$OUT/ew_sweep.txt" 2>&1; cat "$OUT/ew_sweep.txt"
fi
if [ "$what" = tensor ] || [ "$what" = all ]; then
  timeout "${TENSOR_S:-200}" python3 bench/tensor_bench.py --repeat 10 > "$OUT/tensor_bench.txt" 2>&1; echo "tensor bench rc=$?"
  cp bench/results/tensor_bench_*.json "$OUT/" 2>/dev/null
  TENSOR_PROFILE="$OUT/demo_trace.json" python3 -m hwdrv demo > "$OUT/demo.log" 2>&1; echo "demo rc=$?"
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  for i in $(seq 1 "${ROUNDS:-2}"); do
    python3 bench/nv_bench.py --out "$OUT/nv_bench_new_$i.json" > "$OUT/nv_bench_new_$i.txt" 2>&1; echo "bench new $i rc=$?"
    if [ -n "$base" ]; then
      (cd "$base" && PYTHONPATH=/tmp/site:$PWD python3 bench/nv_bench.py --part hwdrv --out "$OLDPWD/$OUT/nv_bench_base_$i.json") \
        > "$OUT/nv_bench_base_$i.txt" 2>&1; echo "bench base $i rc=$?"
    fi
  done
fi
# the ratios as a chart: PNG where matplotlib is installed, else SVG (needs nothing)
ls "$OUT"/tensor_bench_*.json "$OUT"/nv_bench_new_*.json >/dev/null 2>&1 && {
  python3 bench/chart.py "$OUT"/tensor_bench_*.json "$OUT"/nv_bench_new_1.json --out "$FINAL/chart.png" 2>/dev/null ||
    python3 bench/chart.py "$OUT"/tensor_bench_*.json "$OUT"/nv_bench_new_1.json --out "$FINAL/chart.svg"; }
