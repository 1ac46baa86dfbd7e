#!/usr/bin/env bash
# The examples in docs/library.md, built the way a user builds against hpcz:
# `meson install` into a scratch folder, then the compiler with
# `pkg-config --cflags --libs hpcz` from the installed hpcz.pc, and run on the
# digits sample. quantize: exit 0 and the model written with a loose gate,
# exit 3 and nothing written with one no int8 model meets. run: digits_cnn on
# 8 test images against torch's logits. batch: two models, then a resumed
# rerun.
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
for ex in quantize run batch; do
  sed -n "/<!-- example:$ex:begin -->/,/<!-- example:$ex:end -->/p" "$root/docs/library.md" |
    sed '1,/^```c$/d; /^```$/,$d' > "$tmp/$ex.c"
  [ -s "$tmp/$ex.c" ] || { echo "FAIL: no example '$ex' between the markers in docs/library.md"; exit 1; }
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror "${flags[@]}" "$tmp/$ex.c" -o "$tmp/$ex" $(pkg-config --cflags --libs hpcz)
done
libdir=$(pkg-config --variable=libdir hpcz)
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fails=0
check() { if eval "$2"; then echo "PASS $1"; else echo "FAIL $1"; fails=$((fails+1)); fi; }
set +e
"$tmp/quantize" "$root/samples/digits_cnn.onnx" "$root/samples/digits/calib" "$tmp/q.onnx" 0.99 > "$tmp/out.txt" 2>/dev/null
rc=$?
set -e
cat "$tmp/out.txt"
check "example exits 0 with a gate it meets" '[ $rc = 0 ]'
check "the quantized model is written" '[ -s "$tmp/q.onnx" ]'
check "it holds QDQ nodes" '"$build/hpcz" inspect "$tmp/q.onnx" | grep -q QuantizeLinear'
check "the gate is reported" 'grep -q "min-cosine 0.99" "$tmp/out.txt"'
set +e
"$tmp/quantize" "$root/samples/digits_cnn.onnx" "$root/samples/digits/calib" "$tmp/q2.onnx" 0.9999999 > "$tmp/out2.txt" 2>/dev/null
rc=$?
set -e
check "a gate it cannot meet: exit 3" '[ $rc = 3 ]'
check "and nothing written" '[ ! -e "$tmp/q2.onnx" ]'
set +e
"$tmp/quantize" "$tmp/missing.onnx" "$root/samples/digits/calib" "$tmp/q3.onnx" 2> "$tmp/err.txt"
rc=$?
set -e
check "a missing model: exit 1, one line naming it" '[ $rc = 1 ] && [ $(wc -l < "$tmp/err.txt") = 1 ] && grep -q missing.onnx "$tmp/err.txt"'
ref="$root/tests/data/reference/digits8"
set +e
"$tmp/run" "$root/samples/digits_cnn.onnx" "$ref" 1e-4 input="$ref/input.npy" > "$tmp/run.txt" 2> "$tmp/run.err"
rc=$?
set -e
cat "$tmp/run.txt"
check "run: within 1e-4 of torch's logits, exit 0" '[ $rc = 0 ] && grep -q "^logits: max abs .* over 80 values$" "$tmp/run.txt"'
set +e
"$tmp/run" "$root/samples/digits_mlp.onnx" "$ref" 1e-4 input="$ref/input.npy" > "$tmp/run2.txt" 2>/dev/null
rc=$?
"$tmp/run" "$root/samples/digits_cnn.onnx" "$ref" 1e-4 x="$ref/input.npy" > /dev/null 2> "$tmp/run3.err"
rc3=$?
set -e
check "run: another model's logits are too far, exit 3" '[ $rc = 3 ] && grep -q "TOO FAR" "$tmp/run2.txt"'
check "run: an input the model lacks, exit 1 and its message" \
  '[ $rc3 = 1 ] && grep -q "model has no input .x. (inputs: input)" "$tmp/run3.err"'
mkdir -p "$tmp/zoo/family"
cp "$root/samples/digits_mlp.onnx" "$tmp/zoo/mlp.onnx"
cp "$root/samples/digits_cnn.onnx" "$tmp/zoo/family/cnn.onnx"
set +e
"$tmp/batch" "$build/hpcz" "$tmp/zoo" "$tmp/out" > "$tmp/batch.txt" 2>&1
rc=$?
"$tmp/batch" "$build/hpcz" "$tmp/zoo" "$tmp/out" > "$tmp/batch2.txt" 2>&1
rc2=$?
set -e
cat "$tmp/batch.txt" "$tmp/batch2.txt"
check "batch: both models quantized, with progress" \
  '[ $rc = 0 ] && grep -q "^\[2/2\] " "$tmp/batch.txt" && grep -q "^2 ok, 0 done before" "$tmp/batch.txt"'
check "batch: the outputs mirror the tree" '[ -s "$tmp/out/mlp.onnx" ] && [ -s "$tmp/out/family/cnn.onnx" ]'
check "batch: a rerun resumes (nothing redone)" '[ $rc2 = 0 ] && grep -q "^0 ok, 2 done before" "$tmp/batch2.txt"'
echo "$fails failed"
[ $fails = 0 ]
