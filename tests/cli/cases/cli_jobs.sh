# -j is --jobs (batch) and nothing else
mkdir $TMP/zoo && cp samples/digits_mlp.onnx samples/digits_cnn.onnx $TMP/zoo/
$HPCZ batch $TMP/zoo -o $TMP/out --recipe 'convert' -j 2 -q; echo "batch -j 2: $?"
ls $TMP/out
$HPCZ batch $TMP/zoo -o $TMP/out --recipe 'convert' -j many; echo "batch -j many: $?"
$HPCZ batch --help | grep -e '-j,'
for c in inspect convert quantize report calibrate prune passes run; do
  $HPCZ $c --help | grep -c -e '-j,'
done
$HPCZ quantize samples/digits_mlp.onnx -o $TMP/q.onnx -j; echo "quantize -j: $?"
