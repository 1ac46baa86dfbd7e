cp samples/digits_mlp.onnx $TMP/m.onnx
# refuses to overwrite its input...
$HPCZ convert $TMP/m.onnx -o $TMP/m.onnx; echo "same path: $?"
ln -s m.onnx $TMP/link.onnx
$HPCZ convert $TMP/m.onnx -o $TMP/link.onnx; echo "through a symlink: $?"
# ...unless asked
$HPCZ convert $TMP/m.onnx --in-place; echo "in place: $?"
# a failed run leaves no output and no temporary file behind
$HPCZ convert tests/data/bad/truncated.onnx -o $TMP/never.onnx; echo "bad input: $?"
$HPCZ convert samples/digits_mlp.onnx -o $TMP/no/such/dir/out.onnx; echo "bad folder: $?"
ls -A $TMP
