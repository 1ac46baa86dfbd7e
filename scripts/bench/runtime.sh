#!/usr/bin/env bash
# Runtime benchmark: hpcz's CPU runtime against ONNX Runtime (CPU provider,
# all graph optimizations, the same thread count) on the digits samples and
# torchvision resnet18 / mobilenet_v2 (random weights, batch 1, 224x224),
# in the same run. Prints per model the median latency of both, the ratio
# hpcz/ORT (goal <= 1.0) and the GFLOP/s hpcz's Conv and Gemm reach.
#
#   scripts/bench/runtime.sh [--runs N] [--threads N]
#   scripts/bench/runtime.sh --zoo [NAME...] [--threads 1,2] [--rounds N] [--runs N] [--nodes N]
#       [--variant fp32,static,static_all,static_hpcz,dynamic,fp16] [--from DIR] [--before OTHER_HPCZ]
#
# Builds build-rel/ (release), exports the zoo into build/zoo/ with
# scripts/make_samples.py (needs Debian's python3-torchvision), and creates
# .venv-bench/ (ignored) with pinned onnxruntime and numpy from PyPI.
#
# --zoo runs scripts/bench/runtime_zoo.py instead: the pretrained models of
# .zoo/ (scripts/zoo/README.md) on their eval inputs, hpcz and ORT
# alternated, at 1 and 2 threads: per model the ratio hpcz/ORT (median,
# best run, and at 1 thread CPU time) and the geomean, GFLOP/s per op type
# against OpenBLAS's sgemm, and with --nodes N the per-node overhead on a
# chain of N nodes; --variant adds compressed copies (int8 static/dynamic,
# static_hpcz: int8 placed for hpcz's runtime,
# float16: the same file in both engines, and each one's speed-up over
# fp32), --before a second hpcz binary in the same rounds. It needs the test
# venv (.venv-test: onnx, onnxruntime, numpy).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
runs=50
threads=2
if [ "${1:-}" = --zoo ]; then
  shift
  build=build-rel
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dbuildtype=release >/dev/null
  fi
  ninja -C "$build" >/dev/null
  exec "$root/.venv-test/bin/python" scripts/bench/runtime_zoo.py --hpcz "$root/$build/hpcz" "$@"
fi
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "runtime.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

build=build-rel
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Dbuildtype=release >/dev/null
fi
ninja -C "$build" >/dev/null
hpcz="$root/$build/hpcz"

zoo=build/zoo
if [ ! -f "$zoo/resnet18.onnx" ] || [ ! -f "$zoo/mobilenet_v2.onnx" ]; then
  /usr/bin/python3 scripts/make_samples.py --no-digits --no-patterns --zoo --zoo-out "$zoo" >&2
fi

venv=.venv-bench
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import onnxruntime, numpy; assert onnxruntime.__version__ == "1.32.0"' 2>/dev/null; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check onnxruntime==1.32.0 numpy==2.3.5 >&2
fi

ort_bench() { # MODEL INPUT_NAME=FILE... -> "median_ms"
  "$venv/bin/python" - "$runs" "$threads" "$@" <<'EOF'
import sys, time
import numpy as np
import onnxruntime as ort
runs, threads, model = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
feeds = {}
for kv in sys.argv[4:]:
    k, v = kv.split("=", 1)
    feeds[k] = np.load(v)
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
s.run(None, feeds)
t = []
for _ in range(runs):
    t0 = time.perf_counter()
    s.run(None, feeds)
    t.append((time.perf_counter() - t0) * 1e3)
print(f"{float(np.median(t)):.3f}")
EOF
}

hpcz_bench() { # MODEL INPUT_NAME=FILE... -> "median_ms conv_gflops gemm_gflops peak_bytes"
  local model=$1; shift
  local args=()
  for kv in "$@"; do args+=(--input "$kv"); done
  "$hpcz" run "$model" "${args[@]}" --bench "$runs" --threads "$threads" --profile --json |
    "$venv/bin/python" -c '
import json, sys
d = json.load(sys.stdin)
g = {p["op_type"]: p.get("gflops") for p in d.get("profile", [])}
fmt = lambda v: "-" if v is None else "%.1f" % v
print("%.3f %s %s %d" % (d["bench"]["median_ms"], fmt(g.get("Conv")), fmt(g.get("Gemm")),
                         d["memory"]["peak_activation_bytes"]))'
}

# digits: batch 1 and the 8-sample test set
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/python" -c "
import numpy as np
x = np.load('samples/digits/test_input.npy')
np.save('$tmp/digits_b1.npy', x[:1])
np.save('$tmp/digits_b8.npy', x[:8])
"

printf '%-22s %12s %12s %8s %12s %12s %12s\n' model hpcz_ms ort_ms ratio conv_GFLOPs gemm_GFLOPs peak_act
row() { # LABEL MODEL INPUTS...
  local label=$1; shift
  local h o
  h=$(hpcz_bench "$@")
  o=$(ort_bench "$@")
  read -r hm conv gemm peak <<<"$h"
  ratio=$("$venv/bin/python" -c "print(f'{$hm / $o:.2f}')")
  printf '%-22s %12s %12s %8s %12s %12s %12s\n' "$label" "$hm" "$o" "$ratio" "$conv" "$gemm" "$peak"
}
row digits_cnn_b1 samples/digits_cnn.onnx "input=$tmp/digits_b1.npy"
row digits_cnn_b8 samples/digits_cnn.onnx "input=$tmp/digits_b8.npy"
row digits_mlp_b1 samples/digits_mlp.onnx "input=$tmp/digits_b1.npy"
row digits_mlp_b8 samples/digits_mlp.onnx "input=$tmp/digits_b8.npy"
row resnet18 "$zoo/resnet18.onnx" "input=$zoo/resnet18.input_input.npy"
row mobilenet_v2 "$zoo/mobilenet_v2.onnx" "input=$zoo/mobilenet_v2.input_input.npy"
echo "($runs runs after a warm-up, $threads threads, medians; ratio = hpcz/ORT, goal <= 1.0)"
