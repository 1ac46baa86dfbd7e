# the plan per tensor on stdout, nothing written
$HPCZ quantize samples/digits_cnn.onnx --dry-run -q
$HPCZ quantize samples/digits_cnn.onnx --dry-run -q --dtype int4 --exclude 'fc'
ls $TMP
