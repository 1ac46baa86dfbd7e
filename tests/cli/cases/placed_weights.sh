# --placed-weights int8: the layers the latency placement leaves float store
# int8 weights (DequantizeLinear -> float op), so a model too small for int8
# kernels still shrinks; a usage error outside static mode
C=samples/digits_cnn.onnx
$HPCZ quantize $C --mode static --calib random:4 -o $TMP/a.onnx; echo "default: $?"
$HPCZ quantize $C --mode static --calib random:4 --placed-weights int8 -o $TMP/b.onnx --json-file $TMP/b.json; echo "int8: $?"
$HPCZ inspect $TMP/a.onnx | grep -E "^(ops|params) "
$HPCZ inspect $TMP/b.onnx | grep -E "^(ops|params) "
grep -o '"pipeline": "[^"]*"' $TMP/b.json
$HPCZ quantize $C --mode weight-only --placed-weights int8 -o $TMP/c.onnx; echo "weight-only: $?"
$HPCZ quantize $C --mode static --calib random:4 --placed-weights int4 -o $TMP/c.onnx; echo "int4: $?"
