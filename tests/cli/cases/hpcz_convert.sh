# ONNX -> .hpcz -> ONNX gives the original model back (byte for byte for this one)
$HPCZ convert samples/digits_cnn.onnx -o $TMP/cnn.hpcz
$HPCZ convert $TMP/cnn.hpcz -o $TMP/back.onnx
cmp samples/digits_cnn.onnx $TMP/back.onnx && echo "onnx -> hpcz -> onnx: identical"
wc -c < samples/digits_cnn.onnx
wc -c < $TMP/cnn.hpcz
# the same input gives the same bytes; .hpcz -> .hpcz too
$HPCZ convert samples/digits_cnn.onnx -o $TMP/again.hpcz
cmp $TMP/cnn.hpcz $TMP/again.hpcz && echo "deterministic"
$HPCZ convert $TMP/cnn.hpcz -o $TMP/copy.hpcz
cmp $TMP/cnn.hpcz $TMP/copy.hpcz && echo "hpcz -> hpcz: identical"
# inspect says what is stored how
$HPCZ inspect --top 4 $TMP/cnn.hpcz
$HPCZ inspect --json $TMP/cnn.hpcz | grep -E '"(format|hpcz_version|table_tensors|encoding)"' | sort | uniq -c
# what it says about the weights is what it says about the ONNX file
$HPCZ inspect --json samples/digits_cnn.onnx | grep -E '"(name|count|zeros|sparsity)"' > $TMP/a.json
$HPCZ inspect --json $TMP/cnn.hpcz | grep -E '"(name|count|zeros|sparsity)"' > $TMP/b.json
cmp $TMP/a.json $TMP/b.json && echo "same weights, counts and zeros"
# pipes: the input format is told by its first bytes; -o - needs --format hpcz
$HPCZ convert - -o - --format hpcz < samples/digits_cnn.onnx > $TMP/pipe.hpcz
cmp $TMP/pipe.hpcz $TMP/cnn.hpcz && echo "stdout .hpcz is the same file"
$HPCZ convert - -o - < $TMP/cnn.hpcz | cmp - samples/digits_cnn.onnx && echo "stdin .hpcz -> stdout onnx: identical"
$HPCZ inspect - < $TMP/cnn.hpcz | head -3
# --format overrides the extension; no zstd at all
$HPCZ convert samples/digits_mlp.onnx -o $TMP/mlp.bin --format hpcz --zstd-level 0
head -c 4 $TMP/mlp.bin; echo
$HPCZ inspect $TMP/mlp.bin | grep container
$HPCZ convert samples/digits_mlp.onnx -o $TMP/mlp19.hpcz --zstd-level 19
$HPCZ inspect $TMP/mlp19.hpcz | grep container
# other samples: subgraphs and Constant-node weights survive
for m in samples/patterns/*.onnx; do
  $HPCZ convert $m -o $TMP/p.hpcz && $HPCZ convert $TMP/p.hpcz -o $TMP/p.onnx && cmp $m $TMP/p.onnx && echo "$m: identical"
done
