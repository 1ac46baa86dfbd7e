# batch over a model zoo tree: subfolders are walked and mirrored in OUTDIR,
# same-named models in two families stay apart, links to folders are not
# followed; 0-based --shard-index/--shard-count covers the list like --shard
mkdir -p $TMP/zoo/cnn/small $TMP/zoo/mlp $TMP/zoo/.hidden
cp samples/digits_cnn.onnx $TMP/zoo/cnn/model.onnx
cp samples/digits_cnn.onnx $TMP/zoo/cnn/small/model.onnx
cp samples/digits_mlp.onnx $TMP/zoo/mlp/model.onnx
cp samples/digits_mlp.onnx $TMP/zoo/top.onnx
cp samples/digits_mlp.onnx $TMP/zoo/.hidden/skipped.onnx
ln -s .. $TMP/zoo/mlp/loop
$HPCZ batch $TMP/zoo -o $TMP/out --recipe 'convert --external-data=1 --external-name w.bin' -q; echo "tree: $?"
(cd $TMP/out && find . -type f ! -name '*.log' | sort)
grep -o '"name": "[a-z/]*"' $TMP/out/batch-summary.json
$HPCZ run $TMP/out/cnn/small/model.onnx --inputs samples/digits/test_data_set_0 -o $TMP/run -q; echo "run: $?"
$HPCZ batch $TMP/zoo -o $TMP/out --recipe 'convert --external-data=1 --external-name w.bin' -q; echo "rerun: $?"
grep -c '"done before"' $TMP/out/batch-summary.json
touch $TMP/out/cnn/.model.onnx.Ab12Cd
$HPCZ batch $TMP/zoo -o $TMP/out --recipe 'convert --external-data=1 --external-name w.bin' -q --force; echo "stale temporary file: $?"
ls -A $TMP/out/cnn | grep -c '^\.model'
# the table names each model by its path
$HPCZ batch $TMP/zoo -o $TMP/out --recipe 'convert --external-data=1 --external-name w.bin' | cut -c1-45
# shards from 0, as a Slurm array --array=0-2 numbers them
for i in 0 1 2; do $HPCZ batch $TMP/zoo -o $TMP/sh --recipe convert --shard-index $i --shard-count 3 --json | grep -o '"name": "[a-z/]*"'; done
$HPCZ batch $TMP/zoo -o $TMP/x --recipe convert --shard 0/4; echo "shard from 0: $?"
$HPCZ batch $TMP/zoo -o $TMP/x --recipe convert --shard-index 4 --shard-count 4; echo "index too big: $?"
$HPCZ batch $TMP/zoo -o $TMP/x --recipe convert --shard-index 1; echo "index alone: $?"
$HPCZ batch $TMP/zoo -o $TMP/x --recipe convert --shard 1/2 --shard-index 0 --shard-count 2; echo "both forms: $?"
# a manifest keeps the subfolders of the paths it lists
printf 'cnn/model.onnx\n./mlp/model.onnx\n' > $TMP/zoo/list.txt
$HPCZ batch $TMP/zoo/list.txt -o $TMP/m --recipe convert -q; echo "manifest: $?"
(cd $TMP/m && find . -name '*.onnx' | sort)
