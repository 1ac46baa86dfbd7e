# the data layouts --data accepts, and a one-line error (status 1) naming the folder when none fits
m=samples/digits_cnn.onnx
$HPCZ quantize $m -o $TMP/q.onnx --mode static --calib samples/digits/calib -q
# a test_data_set folder itself (input_0.pb inside), and its parent
$HPCZ report $m $TMP/q.onnx --data samples/digits/test_data_set_0 --json | grep -o '"samples": [0-9]*'
$HPCZ report $m $TMP/q.onnx --data samples/digits --json | grep -o '"samples": [0-9]*'
# a .npy file with a batch axis
$HPCZ report $m $TMP/q.onnx --data samples/digits/test_input.npy --json | grep -o '"samples": [0-9]*'
mkdir $TMP/empty
$HPCZ report $m $TMP/q.onnx --data $TMP/empty; echo "empty: $?"
$HPCZ report $m $TMP/q.onnx --data $TMP/missing; echo "missing: $?"
