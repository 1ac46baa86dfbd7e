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

# The main job, on the bundled digits CNN: what is in it, and a lossless round trip.
model=samples/digits_cnn.onnx
build/hpcz inspect "$model"
build/hpcz convert "$model" -o build/digits_cnn.roundtrip.onnx
build/hpcz inspect --json "$model" | sed 's/"path": .*//' > build/inspect.before.json
build/hpcz inspect --json build/digits_cnn.roundtrip.onnx | sed 's/"path": .*//' > build/inspect.after.json
if cmp -s build/inspect.before.json build/inspect.after.json; then
  echo "round trip: build/digits_cnn.roundtrip.onnx has the same graph, tensors and metadata" >&2
else
  echo "round trip: the written model differs from $model" >&2
  exit 1
fi
