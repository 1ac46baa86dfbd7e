#!/usr/bin/env bash
# `hpcz run` behaviour that needs no Python: outputs, error messages and exit
# statuses (1: the work failed, 2: usage).
#   tests/runtime/test_run_cli.sh HPCZ SOURCE_ROOT
set -u
hpcz=$1
root=$2
s=$root/samples
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
expect() { # LABEL WANT_RC STDERR_PATTERN -- CMD...
  local label=$1 want=$2 pat=$3
  shift 4
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" = "$want" ] && { [ -z "$pat" ] || grep -qE -- "$pat" "$tmp/err"; }; then
    pass=$((pass + 1)); echo "PASS $label"
  else
    fail=$((fail + 1)); echo "FAIL $label (exit $rc, want $want; stderr:)"; cat "$tmp/err"
  fi
}
x=$s/digits/test_input.npy
expect "runs and writes .npy" 0 "wrote .*/logits.npy" -- \
  "$hpcz" run "$s/digits_cnn.onnx" --input "input=$x" -o "$tmp/o"
[ -s "$tmp/o/logits.npy" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL no output file"; }
expect "--inputs test_data_set folder" 0 "" -- \
  "$hpcz" run "$s/digits_cnn.onnx" --inputs "$s/digits/test_data_set_0" -o "$tmp/o2"
expect "--inputs folder of <name>.npy" 0 "" -- \
  "$hpcz" run "$s/digits_mlp.onnx" --inputs "$s/digits/calib" -o "$tmp/o3"
expect "wrong dtype" 1 "^hpcz: error: [^ ]*digits_mlp.onnx: input 'input': expected float \[batch,1,8,8\], got int64 \[\]$" -- \
  "$hpcz" run "$s/digits_mlp.onnx" --input "input=$s/patterns/int64_side_input.input_sample_rate.npy"
expect "wrong rank" 1 "^hpcz: error: [^ ]*digits_mlp.onnx: input 'input': expected float \[batch,1,8,8\], got float \[" -- \
  "$hpcz" run "$s/digits_mlp.onnx" --input "input=$s/patterns/int64_side_input.input_audio.npy"
expect "--dim fixes a symbolic dimension" 1 "expected float \[7,1,8,8\], got float \[450,1,8,8\]" -- \
  "$hpcz" run "$s/digits_mlp.onnx" --input "input=$x" --dim batch=7
expect "missing input" 1 "^hpcz: error: missing input 'input'" -- "$hpcz" run "$s/digits_mlp.onnx"
expect "unknown input" 1 "^hpcz: error: model has no input 'nope' \(inputs: input\)" -- \
  "$hpcz" run "$s/digits_mlp.onnx" --input "nope=$x"
expect "bad flag" 2 "unknown option" -- "$hpcz" run "$s/digits_mlp.onnx" --bogus
expect "bad --input syntax" 2 "NAME=FILE" -- "$hpcz" run "$s/digits_mlp.onnx" --input foo
expect "bad --threads" 2 "threads" -- "$hpcz" run "$s/digits_mlp.onnx" --threads 0
expect "unreadable .npy" 1 "^hpcz: error: .*: not a .npy file" -- \
  "$hpcz" run "$s/digits_mlp.onnx" --input "input=$s/digits_mlp.onnx"
# an op the runtime lacks: exactly the documented message
cp "$root/../shared/onnx-node-tests/node/test_det_2d/model.onnx" "$tmp/det.onnx" 2>/dev/null &&
  expect "unsupported op" 1 "^hpcz: error: [^ ]*det.onnx: node '[^']*' \(Det, opset [0-9]+\): not supported$" -- \
    "$hpcz" run "$tmp/det.onnx" --inputs "$root/../shared/onnx-node-tests/node/test_det_2d/test_data_set_0"
expect "--bench prints latency and memory" 0 "" -- \
  "$hpcz" run "$s/digits_mlp.onnx" --input "input=$x" --bench 3
grep -q "^latency  median" "$tmp/out" && grep -q "peak activations" "$tmp/out" &&
  pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL --bench output"; cat "$tmp/out"; }
# --profile: per op type and the slowest nodes in text; with --json every node
# that ran, each named, slowest first
expect "--profile text" 0 "" -- \
  "$hpcz" run "$s/digits_cnn.onnx" --input "input=$x" --bench 2 --profile
grep -q "^Conv  " "$tmp/out" && grep -q "^slowest nodes" "$tmp/out" &&
  grep -q "(Conv) " "$tmp/out" &&
  pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL --profile text"; cat "$tmp/out"; }
# every node that ran: digits_cnn's 16 less its 4 BatchNormalization and 4 Relu
# (folded and fused into the Convs)
"$hpcz" run "$s/digits_cnn.onnx" --input "input=$x" --bench 2 --profile --json >"$tmp/prof.json" &&
  awk '/"nodes_by_time"/{f=1} f && /"name"/{n++} END{exit !(n == 8)}' "$tmp/prof.json" &&
  grep -q '"op_type": "Gemm"' "$tmp/prof.json" &&
  pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL --profile --json"; cat "$tmp/prof.json"; }
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
