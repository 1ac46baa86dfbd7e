# --algo adaround: the pipelines (weight-only: quantize-adaround, then round-to-nearest for what it cannot
# measure; static: quantize-static{adaround=true}, without its bias correction) and the usage errors
$HPCZ quantize samples/digits_cnn.onnx --dry-run --json --calib random:4 --algo adaround | grep -o '"pipeline": *"[^"]*"'
$HPCZ quantize samples/digits_cnn.onnx --dry-run --json --calib random:4 --algo adaround --dtype int4 | grep -o '"pipeline": *"[^"]*"'
$HPCZ quantize samples/digits_cnn.onnx --dry-run --json --calib random:4 --algo adaround --mode static | grep -o '"pipeline": *"[^"]*"'
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/e.onnx --algo adaround; echo "without data: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/e.onnx --algo adaround --mode dynamic --calib random:4; echo "dynamic: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/e.onnx --algo adaround --dtype fp16 --calib random:4; echo "fp16: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/e.onnx --algo adaround --mode static --calib random:4 --bias-correction; echo "bias correction: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/e.onnx --algo adround --calib random:4; echo "typo: $?"
ls $TMP
