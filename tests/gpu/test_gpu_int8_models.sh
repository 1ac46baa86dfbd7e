#!/usr/bin/env bash
# suite 'gpu', any machine: the digits samples quantized by hpcz (static int8
# QDQ, --placement all) on the cuda backend with host emulations of its
# kernels (test_gpu_models, HPCZ_GPU_EMULATE=1): the fused int8 nodes run the
# device's integer arithmetic, so the outputs must equal the cpu backend's
# exactly (normalised error 0), and the int8 tensors stay on the device (one
# copy in and one out per run).
#   test_gpu_int8_models.sh HPCZ TEST_GPU_MODELS SOURCE_ROOT
set -uo pipefail
hpcz=$1 models=$2 root=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in digits_cnn digits_mlp; do
  "$hpcz" quantize "$root/samples/$m.onnx" -o "$tmp/${m}_int8.onnx" --mode static \
    --calib "$root/samples/digits/calib" --placement all -q || exit 1
done
out=$(HPCZ_GPU_EMULATE=1 "$models" --samples 4 "$tmp" 2>&1)
rc=$?
echo "$out"
exact=$(grep -c 'int8, batch .*normalized error 0.00e+00 .* 2 copies per run' <<<"$out")
if [ "$rc" -ne 0 ] || [ "$exact" -ne 2 ]; then
  echo "FAIL: want both int8 models equal to the cpu's with 2 copies per run ($exact of 2)"
  exit 1
fi
echo "PASS: both int8 models equal to the cpu's, resident on the device"
