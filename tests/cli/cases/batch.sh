# a folder of models, two jobs, a summary; a rerun resumes; shards split the list
mkdir $TMP/zoo
cp samples/digits_cnn.onnx samples/digits_mlp.onnx samples/patterns/const_weights.onnx $TMP/zoo/
$HPCZ batch $TMP/zoo -o $TMP/out --recipe 'quantize --mode weight-only -q' -j 2 -q; echo "batch: $?"
ls $TMP/out
grep -c '"status": "ok"' $TMP/out/batch-summary.json
$HPCZ batch $TMP/zoo -o $TMP/out --recipe 'quantize --mode weight-only -q' -q; echo "rerun: $?"
grep -c '"status": "done before"' $TMP/out/batch-summary.json
for k in 1 2 3; do $HPCZ batch $TMP/zoo -o $TMP/sh --recipe 'convert' --shard $k/3 -q; done
ls $TMP/sh | grep -c 'onnx$'
# a manifest, and errors
printf 'digits_cnn.onnx\n# a comment\nmissing.onnx\n' > $TMP/zoo/list.txt
$HPCZ batch $TMP/zoo/list.txt -o $TMP/m --recipe 'convert'; echo "missing model: $?"
$HPCZ batch $TMP/zoo -o $TMP/x --recipe 'inspect'; echo "bad recipe: $?"
$HPCZ batch $TMP/zoo -o $TMP/x --recipe 'convert -o y.onnx'; echo "recipe with -o: $?"
$HPCZ batch $TMP/zoo -o $TMP/x --recipe 'convert' --shard 4/3; echo "bad shard: $?"
