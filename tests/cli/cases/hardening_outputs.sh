# Outputs never replace what is not a regular file, and write through links
# (issue 12, severe 1)
ln -s /dev/null $TMP/null
$HPCZ convert samples/digits_cnn.onnx -o $TMP/null; echo "through a link to /dev/null: $?"
stat -c '%F' $TMP/null /dev/null
$HPCZ quantize samples/digits_mlp.onnx -o $TMP/null --json-file $TMP/null -q; echo "model and JSON to /dev/null: $?"
stat -c '%F' $TMP/null /dev/null
mkfifo $TMP/fifo
timeout 20 sh -c "wc -c < $TMP/fifo" > $TMP/count &
$HPCZ convert samples/digits_cnn.onnx -o $TMP/fifo; echo "into a FIFO: $?"
wait
cat $TMP/count
stat -c '%F' $TMP/fifo
cp samples/digits_mlp.onnx $TMP/a.onnx
ln -s a.onnx $TMP/link.onnx
$HPCZ convert samples/digits_cnn.onnx -o $TMP/link.onnx; echo "through a link to a file: $?"
stat -c '%F' $TMP/link.onnx
cmp $TMP/a.onnx samples/digits_cnn.onnx && echo "the link's target was replaced"
mkdir $TMP/sub
ln -s sub/new.onnx $TMP/dangling.onnx
$HPCZ convert samples/digits_mlp.onnx -o $TMP/dangling.onnx; echo "through a dangling link: $?"
cmp $TMP/sub/new.onnx samples/digits_mlp.onnx && echo "its target was created"
ls -A $TMP $TMP/sub
