# bad input: one line, nothing written
$HPCZ prune samples/digits_cnn.onnx -o $TMP/p.onnx --sparsity 1.0; echo "sparsity 1.0: $?"
$HPCZ prune samples/digits_cnn.onnx -o $TMP/p.onnx --sparsity -0.1; echo "negative sparsity: $?"
$HPCZ prune samples/digits_cnn.onnx -o $TMP/p.onnx --method nm --pattern 5:4; echo "pattern 5:4: $?"
$HPCZ prune samples/digits_cnn.onnx -o $TMP/p.onnx --method nm --pattern 2-4; echo "pattern 2-4: $?"
$HPCZ prune samples/digits_cnn.onnx -o $TMP/p.onnx --method random; echo "unknown method: $?"
$HPCZ prune samples/patterns/symbolic_batch.onnx -o $TMP/p.onnx --op-types Conv; echo "nothing to prune: $?"
ls -A $TMP
