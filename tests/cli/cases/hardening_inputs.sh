# Hostile inputs (issue 12, medium): endless streams, NaN/Inf, names that
# would rewrite a terminal or break JSON and Markdown, gates and --dim naming
# what the model lacks, calibration tables from another model
H=tests/data/hostile
$HPCZ inspect /dev/zero; echo "/dev/zero: $?"
printf '\000\000\000' | $HPCZ inspect -; echo "zeros on stdin: $?"
# NaN and Inf
$HPCZ quantize $H/nan_weight.onnx -o $TMP/q.onnx; echo "NaN weight: $?"
$HPCZ run $H/range_float.onnx; echo "float Range past 2^40: $?"
$HPCZ run $H/range_int64.onnx; echo "int64 Range over the whole int64 span: $?"
$HPCZ run $H/sqrt_log.onnx -i x=$H/sqrt_log_x.npy; echo "outputs with NaN and Inf: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q.onnx --mode static --calib random:4 -q; echo "random calibration: $?"
$HPCZ calibrate $H/names.onnx --calib $H/names_nan.npy -o $TMP/t.json; echo "NaN in calibration data: $?"
# names: JSON stays valid UTF-8, Markdown keeps one cell, stderr shows escapes
$HPCZ inspect $H/names.onnx --json | grep -a '"name": "y'
$HPCZ report $H/names.onnx $H/names.onnx --data $H/names_x.npy --md $TMP/r.md --min-sqnr nosuch=1; echo "a gate on a missing output: $?"
$HPCZ report $H/names.onnx $H/names.onnx --data $H/names_x.npy --md $TMP/r.md > /dev/null; echo "report: $?"
grep -a '^| ``' $TMP/r.md
$HPCZ report $H/names.onnx $H/names.onnx --data $H/names_x.npy --labels $H/labels_negative.npy; echo "label -1: $?"
$HPCZ report $H/names.onnx $H/names.onnx --data $H/names_x.npy --labels $H/labels_huge.npy; echo "label 2^62: $?"
script -qc "$HPCZ inspect $H/names.onnx" /dev/null | grep -a 'outputs' | tr -d '\r'
$HPCZ report samples/digits_cnn.onnx samples/digits_cnn.onnx --data samples/digits/test_input.npy --min-sqnr logit=100; echo "--min-sqnr logit=: $?"
$HPCZ run samples/patterns/symbolic_batch.onnx --dim nosuch=3 --inputs samples/patterns; echo "--dim nosuch: $?"
$HPCZ run samples/patterns/symbolic_batch.onnx --dim bach=3 --inputs samples/patterns; echo "--dim bach: $?"
$HPCZ run samples/digits_cnn.onnx -o - --inputs samples/digits/test_data_set_0; echo "run -o -: $?"
# calibration tables: empty, another model's, another weights'
$HPCZ calibrate samples/digits_mlp.onnx --calib samples/digits/calib -o $TMP/mlp.json -q
$HPCZ calibrate samples/digits_cnn.onnx --calib samples/digits/calib -o $TMP/cnn.json -q
echo '{"schema": "hpcz.calibration", "version": 1, "tensors": {}}' > $TMP/empty.json
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q.onnx --mode static --calib-table $TMP/empty.json; echo "empty table: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q.onnx --mode static --calib-table $TMP/mlp.json; echo "another model's table: $?"
$HPCZ prune samples/digits_cnn.onnx -o $TMP/p.onnx --sparsity 0.5 -q
$HPCZ quantize $TMP/p.onnx -o $TMP/q.onnx --mode static --calib-table $TMP/cnn.json 2>&1 | sed 's/fingerprint [0-9a-f]*, this model [0-9a-f]*/fingerprint F1, this model F2/'; echo "other weights: $?"
$HPCZ quantize samples/digits_cnn.onnx -o $TMP/q.onnx --mode static --calib-table $TMP/cnn.json -q; echo "its own table: $?"
# an unwritable --json writes no model either
$HPCZ quantize samples/digits_mlp.onnx -o $TMP/w.onnx --json-file $TMP/no/such/r.json; echo "unwritable --json-file: $?"
ls $TMP/w.onnx 2>&1 | sed "s|$TMP|\$TMP|"
