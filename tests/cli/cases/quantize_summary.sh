# the one-screen summary on stderr; nothing on stdout
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q8.onnx
$HPCZ quantize samples/digits_mlp.onnx -o $TMP/q4.onnx --dtype int4 --block-size 64
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/h.onnx --dtype fp16 --keep-io-types
ls $TMP
