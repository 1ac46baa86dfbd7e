$HPCZ quantize samples/digits_mlp.onnx -o $TMP/q.onnx -q --json
