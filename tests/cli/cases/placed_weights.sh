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
# fp16 (the default) once some op runs in int8: every layer left float reads
# Cast(float16 weights); the same bytes twice
P='fold-bn,eliminate,quantize-static{min-macs=0,min-macs-per-value=0},dce'
$HPCZ quantize $C --mode static --calib random:4 --passes "$P" -o $TMP/d.onnx; echo "fp16: $?"
$HPCZ quantize $C --mode static --calib random:4 --passes "$P" -o $TMP/e.onnx -q; cmp $TMP/d.onnx $TMP/e.onnx && echo "fp16: same bytes"
$HPCZ quantize $C --mode static --calib random:4 --passes "${P/min-macs=0,/min-macs=0,placed-weights=float,}" -o $TMP/f.onnx -q; echo "float: $?"
$HPCZ inspect $TMP/d.onnx | grep -E "^(ops|params) "
$HPCZ inspect $TMP/f.onnx | grep -E "^(ops|params) "
$HPCZ quantize $C --mode static --calib random:4 --fallback-weights fp8 -o $TMP/c.onnx; echo "fp8: $?"
