#!/usr/bin/env bash
# The examples in docs/library.md, built the way a user builds against hpcz:
# `meson install` into a scratch folder, then the compiler with
# `pkg-config --cflags --libs hpcz` from the installed hpcz.pc, and run on the
# digits samples: the step-by-step quantize example and the quantize job
# (exit 0 and the model written with a loose gate, exit 3 and nothing written
# with one no int8 model meets, exit 0 with auto-fallback), and the prune job
# (a parameter budget met and the model written).
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
# the quantize job: the same gates, and auto-fallback meeting the strict one
set +e
"$tmp/quantize_job" "$root/samples/digits_cnn.onnx" "$root/samples/digits/calib" "$tmp/j.onnx" 0.99 > "$tmp/j.txt" 2>/dev/null
rc=$?
set -e
cat "$tmp/j.txt"
check "quantize job: exit 0 with a gate it meets" '[ $rc = 0 ] && [ -s "$tmp/j.onnx" ]'
check "quantize job: QDQ nodes in what it wrote" '"$build/hpcz" inspect "$tmp/j.onnx" | grep -q QuantizeLinear'
check "quantize job: the summary and the gate printed" 'grep -q "hpcz quantize: int8 static" "$tmp/j.txt" && grep -q "min-cosine 0.99" "$tmp/j.txt"'
set +e
"$tmp/quantize_job" "$root/samples/digits_cnn.onnx" "$root/samples/digits/calib" "$tmp/j2.onnx" 0.9999999 > /dev/null 2>&1
rc=$?
"$tmp/quantize_job" "$root/samples/digits_cnn.onnx" "$root/samples/digits/calib" "$tmp/j3.onnx" 0.9999999 fallback > "$tmp/j3.txt" 2>/dev/null
rc3=$?
set -e
check "quantize job: a gate it cannot meet: exit 3, nothing written" '[ $rc = 3 ] && [ ! -e "$tmp/j2.onnx" ]'
check "quantize job: auto-fallback meets it" '[ $rc3 = 0 ] && [ -s "$tmp/j3.onnx" ] && grep -q "auto-fallback: [0-9]* layers\? kept float" "$tmp/j3.txt"'
# the prune job: a budget of 8000 non-zeros of the MLP's 17,226
set +e
"$tmp/prune_job" "$root/samples/digits_mlp.onnx" "$root/samples/digits/calib" "$tmp/p.onnx" 8000 > "$tmp/p.txt" 2> "$tmp/p.err"
rc=$?
set -e
cat "$tmp/p.txt"
check "prune job: exit 0, the model written" '[ $rc = 0 ] && [ -s "$tmp/p.onnx" ]'
check "prune job: the budget met" '[ "$(sed -n "s/^non-zeros left: \([0-9]*\).*/\1/p" "$tmp/p.txt")" -le 8000 ]'
check "prune job: the chosen layers said, the output delta measured" 'grep -q "^prune: " "$tmp/p.err" && grep -q "^  output .logits." "$tmp/p.txt"'
echo "$fails failed"
[ $fails = 0 ]
