#!/usr/bin/env bash
# The example in docs/library.md, built the way a user builds against hpcz:
# `meson install` into a scratch folder, then the compiler with
# `pkg-config --cflags --libs hpcz` from the installed hpcz.pc, and run on the
# digits sample: exit 0 and the model written with a loose gate, exit 3 and
# nothing written with one no int8 model meets.
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
sed -n '/<!-- example:begin -->/,/<!-- example:end -->/p' "$root/docs/library.md" |
  sed '1,/^```c$/d; /^```$/,$d' > "$tmp/quantize.c"
[ -s "$tmp/quantize.c" ] || { echo "FAIL: no example between the markers in docs/library.md"; exit 1; }
flags=()
[ "$sanitize" != none ] && flags=(-fsanitize="$sanitize")
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror "${flags[@]}" "$tmp/quantize.c" -o "$tmp/quantize" $(pkg-config --cflags --libs hpcz)
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
echo "$fails failed"
[ $fails = 0 ]
