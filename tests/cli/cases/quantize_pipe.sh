# stdin to stdout; the bytes equal a file run's
$HPCZ quantize - -o - -q < samples/digits_cnn.onnx > $TMP/piped.onnx
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/file.onnx -q
cmp $TMP/piped.onnx $TMP/file.onnx && echo "pipe output equals file output"
