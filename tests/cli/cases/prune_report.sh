$HPCZ prune samples/digits_cnn.onnx -o $TMP/p.onnx --sparsity 0.6 --keep-first-last
$HPCZ prune samples/digits_mlp.onnx -o $TMP/nm.onnx --method nm --pattern 1:4 --json -q
