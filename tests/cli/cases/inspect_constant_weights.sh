# weights held in Constant nodes count as weights
$HPCZ inspect --all samples/patterns/const_weights.onnx
