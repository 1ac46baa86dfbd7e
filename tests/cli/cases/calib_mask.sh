# --calib-mask and --smooth-quant errors (issue 13 items 5 and 7): a mask
# input the model lacks, a mask that is not [batch, seq], smoothing outside
# static quantization with calibration data, an alpha out of range
P=samples/patterns
$HPCZ calibrate $P/symbolic_batch.onnx --calib random:2 --dim seq=6 -o $TMP/t.json --calib-mask attention_mask; echo "no such input: $?"
$HPCZ calibrate $P/symbolic_batch.onnx --calib random:2 --dim seq=6 -o $TMP/t.json --calib-mask input; echo "a 3-D mask: $?"
$HPCZ prune $P/symbolic_batch.onnx --sparsity 0.5 --reconstruct --calib random:2 --dim seq=6 -o $TMP/p.onnx --calib-mask input; echo "prune with a 3-D mask: $?"
$HPCZ calibrate $P/symbolic_batch.onnx --calib random:2 --dim seq=6 -o $TMP/t.json --calib-mask none -q; echo "none: $?"
$HPCZ quantize $P/symbolic_batch.onnx --mode dynamic --smooth-quant -o $TMP/q.onnx; echo "dynamic --smooth-quant: $?"
$HPCZ quantize $P/symbolic_batch.onnx --mode static --calib random:2 --dim seq=6 --smooth-quant=2 -o $TMP/q.onnx; echo "alpha 2: $?"
$HPCZ quantize $P/symbolic_batch.onnx --passes 'smooth-quant{alpha=0.5}' -o $TMP/q.onnx; echo "smooth-quant without data: $?"
$HPCZ quantize $P/symbolic_batch.onnx --mode dynamic --calib-mask input -o $TMP/q.onnx; echo "quantize --calib-mask without --calib: $?"
$HPCZ prune $P/symbolic_batch.onnx --sparsity 0.5 --calib-mask input -o $TMP/p.onnx; echo "prune --calib-mask without --calib: $?"
