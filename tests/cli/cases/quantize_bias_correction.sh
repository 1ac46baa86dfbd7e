# bias correction: --bias-correction for static and weight-only --algo rtn (off by default), in the pipeline shown
$HPCZ quantize samples/digits_cnn.onnx --dry-run --json --calib random:4 --algo rtn --bias-correction | grep -o '"pipeline": *"[^"]*"'
$HPCZ quantize samples/digits_cnn.onnx --dry-run --json --calib random:4 --algo rtn | grep -o '"pipeline": *"[^"]*"'
$HPCZ quantize samples/digits_cnn.onnx --dry-run --json --calib random:4 --mode static --bias-correction | grep -o '"pipeline": *"[^"]*"'
$HPCZ quantize samples/digits_cnn.onnx --dry-run --json --calib random:4 --mode static --bias-correction --no-bias-correction | grep -o '"pipeline": *"[^"]*"'
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q.onnx --calib random:8 --algo rtn --bias-correction -v 2>&1 | grep 'bias-correct:'
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/p.onnx --passes 'bias-correct{random=8}' -v 2>&1 | grep 'bias-correct:'
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/n.onnx --passes 'bias-correct' -v 2>&1 | grep 'bias-correct:'
# usage errors
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/e.onnx --bias-correction; echo "without data: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/e.onnx --bias-correction --calib random:4; echo "GPTQ: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/e.onnx --bias-correction --dtype int4 --calib random:4 --algo rtn; echo "int4: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/e.onnx --bias-correction --passes dce --calib random:4; echo "with --passes: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/e.onnx --passes 'bias-correct{random=-1}'; echo "bad random: $?"
ls $TMP
