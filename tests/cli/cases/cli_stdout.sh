# at most one output on standard output: two are a usage error naming both
m=samples/digits_mlp.onnx
d=samples/digits/test_input.npy
$HPCZ quantize $m -o - --report - --data $d > $TMP/out; echo "quantize -o - --report -: $? ($(wc -c < $TMP/out) bytes)"
$HPCZ quantize $m -o - --json > $TMP/out; echo "quantize -o - --json: $? ($(wc -c < $TMP/out) bytes)"
$HPCZ quantize $m -o - --json-file - > $TMP/out; echo "quantize -o - --json-file -: $?"
$HPCZ quantize $m -o $TMP/q.onnx --json --report - --data $d > $TMP/out; echo "quantize --json --report -: $?"
$HPCZ prune $m -o - --json > $TMP/out; echo "prune -o - --json: $?"
$HPCZ prune $m -o - --report - --data $d > $TMP/out; echo "prune -o - --report -: $?"
$HPCZ report $m $m --data $d --json --md - > $TMP/out; echo "report --json --md -: $?"
# one is fine; --dry-run writes no model, so its JSON may have stdout
$HPCZ quantize $m -o - --dry-run --json -q | grep -c '"dry_run": true'
$HPCZ quantize $m -o - -q --report $TMP/r.json --data $d | $HPCZ inspect - | grep -c "DequantizeLinear"
$HPCZ report $m $m --data $d --json | grep -c '"schema": "hpcz.report"'
# a Markdown report on stdout has no file to put its chart next to: no "-.svg"
r=$PWD; (mkdir $TMP/md && cd $TMP/md && $HPCZ report $r/$m $r/$m --data $r/$d --md - | grep -c "no chart"; ls)
$HPCZ report $m $m --data $d --md $TMP/r.md -q; ls $TMP | grep -c "^r\.\(md\|svg\)$"
