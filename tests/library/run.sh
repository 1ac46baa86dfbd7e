#!/usr/bin/env bash
# The examples in docs/library.md, built the way a user builds against hpcz:
# `meson install` into a scratch folder, then the compiler with
# `pkg-config --cflags --libs hpcz` from the installed hpcz.pc, and run on the
# digits samples: the step-by-step quantize example and the quantize job
# (exit 0 and the model written with a loose gate, exit 3 and nothing written
# with one no int8 model meets, exit 0 with auto-fallback), and the prune job
# (a parameter budget met and the model written); run: digits_cnn on 8 test
# images against torch's logits; batch: two models, then a resumed rerun.
#   tests/library/run.sh BUILD_DIR SOURCE_ROOT [SANITIZE]
set -euo pipefail
build=$(realpath "$1"); root=$(realpath "$2"); sanitize=${3:-none}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config not found"; exit 77; }
meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
pc=$(find "$tmp/root" -name hpcz.pc | head -1)
[ -n "$pc" ] || { echo "FAIL: meson install wrote no hpcz.pc"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$tmp/root"
flags=()
[ "$sanitize" != none ] && flags=(-fsanitize="$sanitize")
# example MARKER NAME: the C block between <!-- MARKER:begin --> and
# <!-- MARKER:end --> built as $tmp/NAME
example() {
  sed -n "/<!-- $1:begin -->/,/<!-- $1:end -->/p" "$root/docs/library.md" |
    sed '1,/^```c$/d; /^```$/,$d' > "$tmp/$2.c"
  [ -s "$tmp/$2.c" ] || { echo "FAIL: no example between the $1 markers in docs/library.md"; exit 1; }
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror "${flags[@]}" "$tmp/$2.c" -o "$tmp/$2" $(pkg-config --cflags --libs hpcz)
}
example example quantize
example example:quantize_job quantize_job
example example:prune_job prune_job
example example:run run
example example:batch batch
libdir=$(pkg-config --variable=libdir hpcz)
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fails=0
check() { if eval "$2"; then echo "PASS $1"; else echo "FAIL $1"; fails=$((fails+1)); fi; }
# run NAME ARGS...: the example NAME, stdout in $tmp/NAME.out, stderr in
# $tmp/NAME.err, exit status in $rc
run() { local x=$1; shift; set +e; "$tmp/$x" "$@" > "$tmp/$x.out" 2> "$tmp/$x.err"; rc=$?; set -e; }
cnn=$root/samples/digits_cnn.onnx calib=$root/samples/digits/calib
run quantize "$cnn" "$calib" "$tmp/q.onnx" 0.99
cat "$tmp/quantize.out"
check "example exits 0 with a gate it meets" '[ $rc = 0 ]'
check "the quantized model is written" '[ -s "$tmp/q.onnx" ]'
check "it holds QDQ nodes" '"$build/hpcz" inspect "$tmp/q.onnx" | grep -q QuantizeLinear'
check "the gate is reported" 'grep -q "min-cosine 0.99" "$tmp/quantize.out"'
run quantize "$cnn" "$calib" "$tmp/q2.onnx" 0.9999999
check "a gate it cannot meet: exit 3" '[ $rc = 3 ]'
check "and nothing written" '[ ! -e "$tmp/q2.onnx" ]'
run quantize "$tmp/missing.onnx" "$calib" "$tmp/q3.onnx"
check "a missing model: exit 1, one line naming it" '[ $rc = 1 ] && [ $(wc -l < "$tmp/quantize.err") = 1 ] && grep -q missing.onnx "$tmp/quantize.err"'
# the quantize job: the same gates, and auto-fallback meeting the strict one
run quantize_job "$cnn" "$calib" "$tmp/j.onnx" 0.99
cat "$tmp/quantize_job.out"
check "quantize job: exit 0 with a gate it meets" '[ $rc = 0 ] && [ -s "$tmp/j.onnx" ]'
check "quantize job: QDQ nodes in what it wrote" '"$build/hpcz" inspect "$tmp/j.onnx" | grep -q QuantizeLinear'
check "quantize job: the summary and the gate printed" 'grep -q "hpcz quantize: int8 static" "$tmp/quantize_job.out" && grep -q "min-cosine 0.99" "$tmp/quantize_job.out"'
run quantize_job "$cnn" "$calib" "$tmp/j2.onnx" 0.9999999
check "quantize job: a gate it cannot meet: exit 3, nothing written" '[ $rc = 3 ] && [ ! -e "$tmp/j2.onnx" ]'
run quantize_job "$cnn" "$calib" "$tmp/j3.onnx" 0.9999999 fallback
check "quantize job: auto-fallback meets it" '[ $rc = 0 ] && [ -s "$tmp/j3.onnx" ] && grep -q "auto-fallback: [0-9]* layers\? kept float" "$tmp/quantize_job.out"'
# the prune job: a budget of 8000 non-zeros of the MLP's 17,226
run prune_job "$root/samples/digits_mlp.onnx" "$calib" "$tmp/p.onnx" 8000
cat "$tmp/prune_job.out"
check "prune job: exit 0, the model written" '[ $rc = 0 ] && [ -s "$tmp/p.onnx" ]'
check "prune job: the budget met" '[ "$(sed -n "s/^non-zeros left: \([0-9]*\).*/\1/p" "$tmp/prune_job.out")" -le 8000 ]'
check "prune job: the chosen layers said, the output delta measured" 'grep -q "^prune: " "$tmp/prune_job.err" && grep -q "^  output .logits." "$tmp/prune_job.out"'
# run: digits_cnn on .npy inputs against torch's logits
ref="$root/tests/data/reference/digits8"
run run "$cnn" "$ref" 1e-4 input="$ref/input.npy"
cat "$tmp/run.out"
check "run: within 1e-4 of torch's logits, exit 0" '[ $rc = 0 ] && grep -q "^logits: max abs .* over 80 values$" "$tmp/run.out"'
run run "$root/samples/digits_mlp.onnx" "$ref" 1e-4 input="$ref/input.npy"
check "run: another model's logits are too far, exit 3" '[ $rc = 3 ] && grep -q "TOO FAR" "$tmp/run.out"'
run run "$cnn" "$ref" 1e-4 x="$ref/input.npy"
check "run: an input the model lacks, exit 1 and its message" \
  '[ $rc = 1 ] && grep -q "model has no input .x. (inputs: input)" "$tmp/run.err"'
# batch: a tree of two models, then the same again (resumed)
mkdir -p "$tmp/zoo/family"
cp "$root/samples/digits_mlp.onnx" "$tmp/zoo/mlp.onnx"
cp "$cnn" "$tmp/zoo/family/cnn.onnx"
run batch "$build/hpcz" "$tmp/zoo" "$tmp/out"
cat "$tmp/batch.out"
check "batch: both models quantized, with progress" \
  '[ $rc = 0 ] && grep -q "^\[2/2\] " "$tmp/batch.out" && grep -q "^2 ok, 0 done before" "$tmp/batch.out"'
check "batch: the outputs mirror the tree" '[ -s "$tmp/out/mlp.onnx" ] && [ -s "$tmp/out/family/cnn.onnx" ]'
run batch "$build/hpcz" "$tmp/zoo" "$tmp/out"
cat "$tmp/batch.out"
check "batch: a rerun resumes (nothing redone)" '[ $rc = 0 ] && grep -q "^0 ok, 2 done before" "$tmp/batch.out"'
echo "$fails failed"
[ $fails = 0 ]
