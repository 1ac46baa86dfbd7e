# batch: a recipe's --external-name gives each model its own data file
# (severe 3), convert --format hpcz names .hpcz outputs, a rerun resumes only
# what the same recipe made from the same input and whose output is intact
mkdir $TMP/zoo
cp samples/digits_cnn.onnx samples/digits_mlp.onnx $TMP/zoo/
$HPCZ batch $TMP/zoo -o $TMP/out --recipe 'convert --external-data=1 --external-name w.bin' -q; echo "external data: $?"
ls $TMP/out
$HPCZ run $TMP/out/digits_cnn.onnx --inputs samples/digits/test_data_set_0 -o $TMP/run -q; echo "run: $?"
$HPCZ run samples/digits_cnn.onnx --inputs samples/digits/test_data_set_0 -o $TMP/ref -q
cmp $TMP/run/*.npy $TMP/ref/*.npy && echo "same outputs"
$HPCZ batch $TMP/zoo -o $TMP/out2 --recipe 'convert --external-data=1 --external-name={name}-weights' --dry-run | sed "s|^[^ ]*hpcz |hpcz |"
$HPCZ batch $TMP/zoo -o $TMP/h --recipe 'convert --format hpcz' -q; echo "hpcz: $?"
ls $TMP/h
$HPCZ batch $TMP/zoo -o $TMP/r --recipe 'quantize --mode weight-only -q' -q; echo "first: $?"
$HPCZ batch $TMP/zoo -o $TMP/r --recipe 'quantize --mode weight-only -q' -q; echo "same recipe: $?"
grep -c '"done before"' $TMP/r/batch-summary.json
$HPCZ batch $TMP/zoo -o $TMP/r --recipe 'quantize --mode dynamic -q' -q; echo "another recipe: $?"
grep -c '"done before"' $TMP/r/batch-summary.json
head -c 100 samples/digits_mlp.onnx > $TMP/r/digits_mlp.onnx
$HPCZ batch $TMP/zoo -o $TMP/r --recipe 'quantize --mode dynamic -q' -q; echo "truncated output: $?"
grep -o '"name": "[a-z_]*", "status": "[a-z ]*"' $TMP/r/batch-summary.json || grep -A2 '"name"' $TMP/r/batch-summary.json | grep -o '"\(name\|status\)": "[a-z_ ]*"'
touch $TMP/r/.digits_cnn.onnx.Ab12Cd
$HPCZ batch $TMP/zoo -o $TMP/r --recipe 'quantize --mode dynamic -q' -q --force; echo "stale temporary file: $?"
ls -A $TMP/r | grep -c '^\.digits'
$HPCZ batch $TMP/zoo -o $TMP/x --recipe convert --shard 1/99999999999999999999; echo "huge shard count: $?"
