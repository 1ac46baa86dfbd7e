# --device: the same option on every command that runs models. Without a GPU
# (or without CUDA in the build) --device cuda is one error line, exit 1.
# HPCZ_TEST_CUDA (set by meson: 1 in builds with CUDA, 0 without) picks the
# message this build must print; run by hand, either is accepted.
case "${HPCZ_TEST_CUDA:-}" in
1) want='no CUDA device found \(cudaGetDeviceCount: .*\)' ;;
0) want='hpcz was built without CUDA' ;;
*) want='(no CUDA device found \(cudaGetDeviceCount: .*\)|hpcz was built without CUDA)' ;;
esac
m=samples/digits_mlp.onnx
nocuda() { sed -E "s/^(hpcz: error: --device cuda(:[0-9]+)?: )$want\$/\1<no CUDA device>/"; }
$HPCZ run $m --device cuda --inputs samples/digits/test_data_set_0 2>&1 | nocuda; echo "run cuda: $?"
$HPCZ run $m --device cuda:1 --inputs samples/digits/test_data_set_0 2>&1 | nocuda; echo "run cuda:1: $?"
$HPCZ calibrate $m --calib random:2 -o $TMP/t.json --device cuda 2>&1 | nocuda; echo "calibrate: $?"
$HPCZ quantize $m -o $TMP/q.onnx --mode static --calib random:2 --device cuda 2>&1 | nocuda; echo "quantize: $?"
$HPCZ prune $m -o $TMP/p.onnx --sparsity 0.5 --device cuda 2>&1 | nocuda; echo "prune: $?"
$HPCZ report $m $m --device cuda 2>&1 | nocuda; echo "report: $?"
$HPCZ batch samples -o $TMP/b --recipe 'quantize --mode weight-only' --device cuda 2>&1 | nocuda; echo "batch: $?"
ls $TMP
# bad names are usage errors
$HPCZ run $m --device gpu; echo "gpu: $?"
$HPCZ quantize $m -o $TMP/q.onnx --device cuda:x; echo "cuda:x: $?"
$HPCZ report $m $m --device cuda: ; echo "cuda:: $?"
# cpu is the default, and --device cpu gives the same bytes
$HPCZ run $m --inputs samples/digits/test_data_set_0 -o $TMP/a -q; echo "run: $?"
$HPCZ run $m --device cpu --inputs samples/digits/test_data_set_0 -o $TMP/b -q; echo "run cpu: $?"
cmp $TMP/a/*.npy $TMP/b/*.npy && echo "same outputs"
