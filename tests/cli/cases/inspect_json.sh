$HPCZ inspect --json samples/digits_mlp.onnx
