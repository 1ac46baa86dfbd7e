$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q.onnx --dtype int3; echo "bad dtype: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q.onnx --block-size 48; echo "block not a power of 2: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q.onnx --mode static; echo "mode not offered: $?"
$HPCZ quantize samples/digits_cnn.onnx; echo "no output: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q.onnx --passes 'quantize-int8{per-chanel}'; echo "bad pass option: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q.onnx --exclude '('; echo "bad regex: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q8.onnx -q
$HPCZ quantize $TMP/q8.onnx -o $TMP/again.onnx; echo "already quantized: $?"
$HPCZ quantize $TMP/q8.onnx -o $TMP/again.onnx --allow-requantize -q; echo "allowed: $?"
ls $TMP
