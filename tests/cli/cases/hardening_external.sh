# External data: outputs may not replace the input's data file (severe 6), a
# link out of the model's folder is refused (severe 4), a FIFO does not hang
# (medium 11)
mkdir $TMP/m
$HPCZ convert samples/digits_cnn.onnx -o $TMP/m/s.onnx --external-data --external-name w.bin; echo "with external data: $?"
$HPCZ convert $TMP/m/s.onnx -o $TMP/m/w.bin; echo "model over its data: $?"
$HPCZ convert $TMP/m/s.onnx -o $TMP/m/o.onnx --external-data --external-name w.bin; echo "data over its data: $?"
$HPCZ quantize $TMP/m/s.onnx -o $TMP/m/w.bin -q; echo "quantize over its data: $?"
$HPCZ convert $TMP/m/s.onnx -o $TMP/m/s.hpcz; echo "a normal output: $?"
ls -A $TMP/m
mv $TMP/m/w.bin $TMP/outside.bin
ln -s ../outside.bin $TMP/m/w.bin
$HPCZ inspect $TMP/m/s.onnx; echo "data through a link out of the folder: $?"
rm $TMP/m/w.bin
mkfifo $TMP/m/w.bin
timeout 20 $HPCZ inspect $TMP/m/s.onnx; echo "data that is a FIFO: $?"
