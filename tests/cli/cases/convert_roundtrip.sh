# a converted model describes itself exactly like the original
$HPCZ convert samples/digits_cnn.onnx -o $TMP/out.onnx
$HPCZ inspect --json samples/digits_cnn.onnx | grep -v '"path"' > $TMP/a.json
$HPCZ inspect --json $TMP/out.onnx | grep -v '"path"' > $TMP/b.json
cmp $TMP/a.json $TMP/b.json && echo "same inspect output"
# stdin to stdout, twice: the second pass is byte-identical to the first
$HPCZ convert - -o - < samples/digits_cnn.onnx > $TMP/p1.onnx
$HPCZ convert - -o - < $TMP/p1.onnx > $TMP/p2.onnx
cmp $TMP/p1.onnx $TMP/p2.onnx && echo "pipe output is stable"
cmp $TMP/p1.onnx $TMP/out.onnx && echo "pipe and file outputs agree"
ls $TMP
