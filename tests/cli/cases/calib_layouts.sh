# Calibration data for scalar and batch-less inputs, --dim for random data
# (issue 11 defect 3), GPTQ around an If (defect 4)
P=samples/patterns
mkdir $TMP/side $TMP/ifc
cp $P/int64_side_input.input_audio.npy $TMP/side/audio.npy
cp $P/int64_side_input.input_sample_rate.npy $TMP/side/sample_rate.npy
$HPCZ calibrate $P/int64_side_input.onnx --calib $TMP/side -o $TMP/t.json; echo "a scalar given once: $?"
grep -c '"min"' $TMP/t.json
cp $P/if_subgraph.input_x.npy $TMP/ifc/x.npy
cp $P/if_subgraph.input_cond_true.npy $TMP/ifc/cond.npy
$HPCZ quantize $P/if_subgraph.onnx -o $TMP/g.onnx --algo gptq --calib $TMP/ifc -v 2>&1 | grep -E 'gptq|quantize: [0-9]|error'; echo "GPTQ around an If: $?"
$HPCZ calibrate $P/symbolic_batch.onnx --calib random:4 -o $TMP/r.json; echo "random without --dim: $?"
$HPCZ calibrate $P/symbolic_batch.onnx --calib random:4 -o $TMP/r.json --dim seq=6 -q; echo "random with --dim seq=6: $?"
$HPCZ quantize $P/symbolic_batch.onnx -o $TMP/q.onnx --mode static --calib random:4 --dim sequence=6; echo "--dim sequence: $?"
$HPCZ prune $P/symbolic_batch.onnx -o $TMP/p.onnx --sparsity 0.5 --reconstruct --calib random:8 --dim seq=6 -q; echo "prune --reconstruct on random data with --dim: $?"
