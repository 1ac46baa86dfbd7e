#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: installs what hpcz needs, builds a
# release build in build/, and runs the main job on the bundled sample.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if [ -f build/build.ninja ]; then
  meson setup --reconfigure build --buildtype=release >/dev/null
else
  meson setup build --buildtype=release >/dev/null
fi
ninja -C build >/dev/null
echo "built build/hpcz ($(build/hpcz --version))" >&2

# The main job, on the bundled digits CNN: what is in it, an int8 model that
# ONNX Runtime runs, and what that cost in accuracy, checked by a CI gate.
model=samples/digits_cnn.onnx
out=build/demo
mkdir -p "$out"
build/hpcz inspect "$model"
build/hpcz convert "$model" -o "$out/roundtrip.onnx"
build/hpcz inspect --json "$model" | grep -v '"path"' > "$out/inspect.before.json"
build/hpcz inspect --json "$out/roundtrip.onnx" | grep -v '"path"' > "$out/inspect.after.json"
cmp -s "$out/inspect.before.json" "$out/inspect.after.json" \
  && echo "round trip: $out/roundtrip.onnx has the same graph, tensors and metadata" >&2
# the digits CNN is too small for int8 to pay in ONNX Runtime (the default
# placement would leave it float): --placement all quantizes every op
build/hpcz quantize "$model" -o "$out/digits_cnn.int8.onnx" --mode static --placement all --calib samples/digits/calib
build/hpcz report "$model" "$out/digits_cnn.int8.onnx" --data samples/digits/test_input.npy \
  --labels samples/digits/test_labels.npy --max-top1-drop 0.5 --md "$out/report.md" --no-layers
build/hpcz prune "$model" -o "$out/digits_cnn.pruned.onnx" --sparsity 0.5 --fold-bn --reconstruct \
  --calib samples/digits/calib -q
build/hpcz convert "$out/digits_cnn.pruned.onnx" -o "$out/digits_cnn.pruned.hpcz"
echo "demo outputs in $out/ (report.md, int8 and pruned models)" >&2
