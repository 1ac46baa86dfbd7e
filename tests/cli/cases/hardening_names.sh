# A 600-character tensor name once hung quantize (severe 2)
timeout 60 $HPCZ quantize tests/data/hostile/long_name.onnx -o $TMP/q.onnx -q; echo "weight-only: $?"
timeout 60 $HPCZ quantize tests/data/hostile/long_name.onnx -o $TMP/d.onnx --mode dynamic -q; echo "dynamic: $?"
$HPCZ inspect $TMP/q.onnx --json | grep -c '"name": "layer_w*_quantized"'
