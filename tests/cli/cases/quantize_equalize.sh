# cross-layer equalization: static with --calib checks it on the data (kept or left out, said with -v), --no-equalize skips it, the pass on its own
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/s.onnx --calib random:8 --mode static --placement all -v 2>&1 | grep 'equalize:'
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/n.onnx --calib random:8 --mode static --placement all --no-equalize -v 2>&1 | grep -c 'equalize:'
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/f.onnx --calib random:8 --mode static --placement all --equalize -v 2>&1 | grep 'equalize:'
$HPCZ convert samples/digits_cnn.onnx -o $TMP/e.onnx --passes fold-bn,equalize -v 2>&1 | grep 'equalize:'
$HPCZ convert samples/digits_mlp.onnx -o $TMP/m.onnx --passes 'equalize{iterations=5,max-scale=10}' -v 2>&1 | grep 'equalize:'
# usage errors
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/x.onnx --equalize --calib random:4; echo "weight-only: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/x.onnx --equalize --mode static --calib-table $TMP/t.json; echo "with --calib-table: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/x.onnx --equalize --mode static --calib random:4 --passes dce; echo "with --passes: $?"
$HPCZ convert samples/digits_cnn.onnx -o $TMP/x.onnx --passes 'equalize{iterations=0}'; echo "bad iterations: $?"
ls $TMP
