# option values that are lists keep their commas (issue 13: --op-types
# MatMul,Gemm failed with "pass 'quantize-int8' has no option 'Gemm'")
m=samples/digits_mlp.onnx
$HPCZ quantize $m -o $TMP/a.onnx --op-types MatMul,Gemm 2>&1 | grep -E "Gemm +[0-9]"
$HPCZ quantize $m -o $TMP/b.onnx --passes 'quantize-int8{op-types=MatMul, Gemm,per-channel=false}' -v 2>&1 | grep -E "Gemm +[0-9]"
cmp $TMP/a.onnx $TMP/b.onnx >/dev/null; echo "per-channel=false after the list is read as an option: $?"
$HPCZ prune $m -o $TMP/c.onnx --op-types 'Gemm,MatMul' --sparsity 0.5 2>&1 | grep -c "/Gemm"
# a misspelt option swallowed into the list is a usage error, not ignored
$HPCZ quantize $m -o $TMP/d.onnx --passes 'quantize-int8{op-types=MatMul,Gemm,per-chanel}'; echo "exit $?"
$HPCZ quantize $m -o $TMP/d.onnx --op-types ','; echo "exit $?"
ls $TMP
# static mode takes the same list (every Gemm int8 with --placement all)
$HPCZ quantize $m -o $TMP/e.onnx --mode static --calib random:8 --placement all --op-types 'Gemm, Relu' 2>&1 | grep -o "[0-9]* nodes in int8"
