# tensors of 1 KiB and more go to an external data file next to the output
$HPCZ convert samples/digits_cnn.onnx -o $TMP/ext.onnx --external-data
ls $TMP
$HPCZ inspect --json $TMP/ext.onnx | grep -c '"external": true'
# read back through mmap and written inline again: same model as the original
$HPCZ convert $TMP/ext.onnx -o $TMP/inline.onnx
$HPCZ inspect --json samples/digits_cnn.onnx | grep -v '"path"' | grep -v '"bytes"' > $TMP/a.json
$HPCZ inspect --json $TMP/inline.onnx | grep -v '"path"' | grep -v '"bytes"' > $TMP/b.json
cmp $TMP/a.json $TMP/b.json && echo "external -> inline: same model"
# custom name and threshold
$HPCZ convert samples/digits_cnn.onnx -o $TMP/c.onnx --external-data=16K --external-name weights.bin
ls $TMP | grep -c weights.bin
$HPCZ inspect --json $TMP/c.onnx | grep -c '"external": true'
