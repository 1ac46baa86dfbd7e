# --int4-format matmulnbits (issue 13 item 4): MatMul nodes with int4 weights
# become com.microsoft::MatMulNBits; Gemm keeps its DequantizeLinear; usage errors
m=samples/digits_mlp.onnx
$HPCZ quantize $m -o $TMP/a.onnx --dtype int4 --int4-format matmulnbits -v 2>&1 | grep -E "MatMulNBits|Gemm +[0-9]"
$HPCZ quantize $m -o $TMP/b.onnx --dtype int4 --int4-format qdq -q
$HPCZ quantize $m -o $TMP/c.onnx --dtype int4 -q
cmp $TMP/b.onnx $TMP/c.onnx && echo "qdq is the default"
$HPCZ quantize $m -o $TMP/d.onnx --dtype int4 --int4-format nbits; echo "exit $?"
$HPCZ quantize $m -o $TMP/d.onnx --int4-format matmulnbits; echo "exit $?"
$HPCZ quantize $m -o $TMP/d.onnx --mode dynamic --int4-format qdq; echo "exit $?"
$HPCZ quantize $m -o $TMP/d.onnx --dtype int4 --int4-format matmulnbits --passes 'quantize-int4,dce'; echo "exit $?"
# the pass on its own, in a pipeline
$HPCZ quantize $m -o $TMP/e.onnx --passes 'quantize-int4,int4-matmulnbits,dce' -v 2>&1 | grep -c MatMulNBits
ls $TMP
