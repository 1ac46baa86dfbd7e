#!/usr/bin/env bash
# suite 'gpu': whole models (fp32, fp16, int8 QDQ written by hpcz) on the
# cuda backend against the cpu backend (test_gpu_models), and the commands
# with --device cuda against --device cpu. Calibration tables agree within
# 1e-4 of each tensor's magnitude (test_gpu_models, in-process), not bit for
# bit: the GPU sums GEMMs in another order. So the same static quantize
# command may pick scales a few ulps apart: both models must agree on the
# digits test split (cosine >= 0.9999, top-1 agreement >= 99%), and with one
# calibration table (--calib-table) they must be the same bytes.
#   test_gpu_cli.sh HPCZ TEST_GPU_MODELS SOURCE_ROOT [ZOO_MODEL...]
# Exit 77 (skipped) without a CUDA device.
set -uo pipefail
hpcz=$1 models=$2 root=$3; shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! msg=$("$hpcz" run "$root/samples/digits_mlp.onnx" --device cuda --inputs "$root/samples/digits/test_data_set_0" -q 2>&1); then
  echo "SKIP: ${msg#hpcz: error: }"
  exit 77
fi
fail=0
s=$root/samples
calib=$s/digits/calib
for m in digits_cnn digits_mlp; do
  "$hpcz" quantize "$s/$m.onnx" -o "$tmp/${m}_fp16.onnx" --dtype fp16 -q || fail=1
  for dev in cpu cuda; do
    "$hpcz" quantize "$s/$m.onnx" -o "$tmp/${m}_int8_$dev.onnx" --mode static --calib "$calib" \
      --placement all --device $dev -q || fail=1
  done
  if "$hpcz" report "$tmp/${m}_int8_cpu.onnx" "$tmp/${m}_int8_cuda.onnx" --data "$s/digits/test_input.npy" \
       --min-cosine 0.9999 --min-top1-agreement 99 --device cuda >/dev/null; then
    echo "PASS quantize --mode static $m: --device cpu and cuda models agree"
  else
    echo "FAIL quantize --mode static $m: --device cpu and cuda models disagree"; fail=1
  fi
  "$hpcz" calibrate "$s/$m.onnx" --calib "$calib" -o "$tmp/$m.json" --device cuda -q || fail=1
  for dev in cpu cuda; do
    "$hpcz" quantize "$s/$m.onnx" -o "$tmp/${m}_t_$dev.onnx" --mode static --calib-table "$tmp/$m.json" \
      --placement all --device $dev -q || fail=1
  done
  if cmp -s "$tmp/${m}_t_cpu.onnx" "$tmp/${m}_t_cuda.onnx"; then
    echo "PASS quantize --calib-table $m: same bytes with --device cpu and cuda"
  else
    echo "FAIL quantize --calib-table $m: the models differ between --device cpu and cuda"; fail=1
  fi
  rm -f "$tmp/${m}_int8_cuda.onnx" "$tmp/${m}_t_"*.onnx
done
"$models" --samples 8 "$s" "$s/patterns" "$tmp" "$@" || fail=1
exit $fail
