# a pruned model (80% of its weights zeroed) is much smaller as .hpcz: zero
# runs become a bitmask plus the nonzero values
$HPCZ convert samples/digits_mlp.onnx -o $TMP/pruned.onnx -q --passes 'prune-magnitude{sparsity=0.8,scope=global}'
$HPCZ convert $TMP/pruned.onnx -o $TMP/pruned.hpcz
$HPCZ convert samples/digits_mlp.onnx -o $TMP/dense.hpcz
onnx=$(wc -c < $TMP/pruned.onnx); hz=$(wc -c < $TMP/pruned.hpcz); dense=$(wc -c < $TMP/dense.hpcz)
echo "pruned onnx $onnx bytes, pruned hpcz $hz bytes ($((100 * hz / onnx))%), dense hpcz $dense bytes"
[ $((hz * 2)) -lt $onnx ] && echo "less than half the ONNX size"
$HPCZ inspect --all $TMP/pruned.hpcz
# and it is still the same model
$HPCZ convert $TMP/pruned.hpcz -o $TMP/back.onnx
cmp $TMP/pruned.onnx $TMP/back.onnx && echo "pruned: onnx -> hpcz -> onnx identical"
