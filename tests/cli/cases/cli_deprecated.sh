# old spellings keep working, with one note each on stderr (README "CLI conventions")
m=samples/digits_mlp.onnx
$HPCZ inspect -j $m | head -2; echo "inspect -j: $?"
$HPCZ run $m --input input=samples/digits/test_input.npy -j | grep -c '"schema": "hpcz.run"'
$HPCZ quantize $m -o $TMP/q.onnx -q --json $TMP/q.json; echo "quantize --json FILE: $?"
grep -c '"schema": "hpcz.quantize"' $TMP/q.json
$HPCZ quantize $m -o $TMP/q.onnx -q --json=$TMP/q2.json; echo "quantize --json=FILE: $?"
grep -c '"schema": "hpcz.quantize"' $TMP/q2.json
$HPCZ quantize --json - $m -o $TMP/q.onnx -q | grep -c '"schema": "hpcz.quantize"'
$HPCZ prune $m -o $TMP/p.onnx -q --json $TMP/p.json; echo "prune --json FILE: $?"
grep -c '"schema": "hpcz.prune"' $TMP/p.json
$HPCZ report $m $TMP/q.onnx --data samples/digits/test_input.npy -q --json $TMP/r.json; echo "report --json FILE: $?"
grep -c '"schema": "hpcz.report"' $TMP/r.json
mkdir $TMP/zoo && cp $m $TMP/zoo/
$HPCZ batch $TMP/zoo -o $TMP/out --recipe 'convert' -q --json $TMP/b.json; echo "batch --json FILE: $?"
grep -c '"schema": "hpcz.batch"' $TMP/b.json
# today's spellings: no note
$HPCZ quantize $m -o $TMP/q.onnx -q --json-file $TMP/q3.json; echo "quantize --json-file: $?"
$HPCZ quantize - -o $TMP/q.onnx -q --json < $m | grep -c '"schema": "hpcz.quantize"'
$HPCZ quantize $m -o $TMP/q.onnx -q --json-file - | grep -c '"schema": "hpcz.quantize"'
$HPCZ report $m $TMP/q.onnx --data samples/digits/test_input.npy --json-file $TMP/r2.json | head -1
$HPCZ quantize $m -o $TMP/q.onnx --json --json-file $TMP/x.json; echo "--json and --json-file: $?"
