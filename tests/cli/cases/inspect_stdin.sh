# '-' reads the model from standard input
$HPCZ inspect --top 3 - < samples/digits_mlp.onnx
