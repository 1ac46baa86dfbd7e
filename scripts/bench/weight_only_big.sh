#!/usr/bin/env bash
# Benchmark (not a test): weight-only int8 quantization of a ~540 MB float model
# against `cp` of the same file, in the same run. Project goal: quantize <= 2x cp.
#
#   scripts/bench/weight_only_big.sh [--runs N] [--tensors N] [--dim D] [--perf] [--keep]
#                                    (defaults: 3 runs, 8 tensors of 4096x4096)
# (needs ~1.3 GB in build/bench-wo/, removed at the end unless --keep)
#
# Makes build/bench-wo/big.onnx with Debian's /usr/bin/python3 (onnx 1.12, numpy):
# a chain of MatMuls x[1,D] -> W0 -> ... -> W(N-1), each W a seeded random DxD
# float32 initializer stored inline (8 x 64 MiB = 512 MiB of weights: far from
# protobuf's 2 GB limit, so no external data). Then, warm (the file is read once
# first so both start from the page cache; outputs are written to the page cache,
# not synced, and removed between runs), for N runs each:
#   cp big.onnx out/copy.onnx
#   hpcz quantize big.onnx -o out/q.onnx --mode weight-only   (int8 per-channel, the default)
#   the same with --clip minmax (no search for the clipping with least squared error)
# and prints the median and best wall time and peak RSS of each, the output size,
# and the ratio quantize/cp (hpcz reads the weights in place in its mapping of
# big.onnx, so its peak RSS counts those 512 MiB of page-cache pages). With
# --perf (or when quantize is slower than 2x cp, if perf works here) it records one run of each quantize command with `perf record`
# and prints the top of `perf report` (what dominates, by self time). Uses build-rel/ (release, built if needed).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=3 tensors=8 dim=4096 want_perf=0 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --tensors) tensors=$2; shift 2 ;;
    --dim) dim=$2; shift 2 ;;
    --perf) want_perf=1; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "weight_only_big.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

build=build-rel
[ -f "$build/build.ninja" ] || meson setup "$build" -Dbuildtype=release >/dev/null
ninja -C "$build" >/dev/null
hpcz=$PWD/$build/hpcz
work=build/bench-wo
rm -rf "$work"; mkdir -p "$work/out"

/usr/bin/python3 - "$work/big.onnx" "$tensors" "$dim" <<'EOF'
import sys, time
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
path, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = time.time()
rng = np.random.default_rng(0)
inits, nodes, prev = [], [], "x"
for k in range(n):
    w = rng.standard_normal((d, d), dtype=np.float32) * np.float32(1.0 / np.sqrt(d))
    inits.append(numpy_helper.from_array(w, "w%d" % k))
    nodes.append(helper.make_node("MatMul", [prev, "w%d" % k], ["y%d" % k], name="matmul%d" % k))
    prev = "y%d" % k
g = helper.make_graph(nodes, "big_matmul_chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, d])],
                      [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, d])], initializer=inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
onnx.save(m, path)
print("made %s: %d MatMul weights of %dx%d float32 (%.0f MiB), in %.1f s" % (path, n, d, d, n * d * d * 4 / 2**20, time.time() - t0))
EOF

cat "$work/big.onnx" >/dev/null   # warm the page cache for both contenders
size_in=$(stat -c %s "$work/big.onnx")

# one timed run: label, output file, command... -> "seconds peak_rss_kib"
one() {
  local out=$1; shift
  rm -f "$out"
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc) $(tail -1 "$work/rss")"
}
stats() { # "s rss" lines on stdin -> "median best max_rss"
  sort -n | awk '{t[NR]=$1; if ($2>r) r=$2} END {m=(NR%2)?t[(NR+1)/2]:(t[NR/2]+t[NR/2+1])/2; printf "%.3f %.3f %d\n", m, t[1], r}'
}

cp_lines="" q_lines="" m_lines=""
for _ in $(seq "$runs"); do   # interleaved, so drift in the machine's load hits all three
  cp_lines+="$(one "$work/out/copy.onnx" cp "$work/big.onnx" "$work/out/copy.onnx")"$'\n'
  q_lines+="$(one "$work/out/q.onnx" "$hpcz" quantize "$work/big.onnx" -o "$work/out/q.onnx" --mode weight-only -q)"$'\n'
  m_lines+="$(one "$work/out/m.onnx" "$hpcz" quantize "$work/big.onnx" -o "$work/out/m.onnx" --mode weight-only \
              --clip minmax -q)"$'\n'
done
read -r cp_med cp_best cp_rss <<<"$(printf '%s' "$cp_lines" | stats)"
read -r q_med q_best q_rss <<<"$(printf '%s' "$q_lines" | stats)"
read -r m_med m_best m_rss <<<"$(printf '%s' "$m_lines" | stats)"
size_q=$(stat -c %s "$work/out/q.onnx")
size_m=$(stat -c %s "$work/out/m.onnx")
ratio=$(echo "$q_med / $cp_med" | bc -l)

printf '\ninput %s: %d bytes (%.1f MiB); %d runs each, warm page cache, %s cores\n' "$work/big.onnx" "$size_in" \
  "$(echo "$size_in / 1048576" | bc -l)" "$runs" "$(nproc)"
printf '| %-44s | %9s | %9s | %12s | %14s |\n' command "median s" "best s" "peak RSS MiB" "output bytes"
printf '|%s|\n' "---|---:|---:|---:|---:"
printf '| %-44s | %9.3f | %9.3f | %12.1f | %14d |\n' "cp" "$cp_med" "$cp_best" "$(echo "$cp_rss / 1024" | bc -l)" "$size_in"
printf '| %-44s | %9.3f | %9.3f | %12.1f | %14d |\n' "hpcz quantize --mode weight-only (int8)" "$q_med" "$q_best" \
  "$(echo "$q_rss / 1024" | bc -l)" "$size_q"
printf '| %-44s | %9.3f | %9.3f | %12.1f | %14d |\n' "  the same with --clip minmax (no MSE search)" "$m_med" "$m_best" \
  "$(echo "$m_rss / 1024" | bc -l)" "$size_m"
printf 'ratio quantize / cp (medians): %.2f, with --clip minmax %.2f   (goal <= 2.00: %s)\n' "$ratio" \
  "$(echo "$m_med / $cp_med" | bc -l)" \
  "$( [ "$(echo "$ratio <= 2" | bc -l)" = 1 ] && echo met || echo NOT met)"

if [ "$want_perf" = 1 ] || [ "$(echo "$ratio > 2" | bc -l)" = 1 ]; then
  if perf record -o "$work/perf.data" -g -- true >/dev/null 2>&1; then
    echo
    for extra in "" "--clip minmax"; do
      echo "perf record of one 'hpcz quantize --mode weight-only $extra' run; perf report, self time >= 2%:"
      # shellcheck disable=SC2086
      perf record -q -o "$work/perf.data" -- "$hpcz" quantize "$work/big.onnx" -o "$work/out/q.onnx" \
        --mode weight-only $extra -q >/dev/null 2>&1
      perf report -i "$work/perf.data" --stdio --percent-limit 2 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15
      echo
    done
  else
    echo "(perf cannot record here: no profile)"
  fi
fi
[ "$keep" = 1 ] || rm -rf "$work"
