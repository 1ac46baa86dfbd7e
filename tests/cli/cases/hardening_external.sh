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
# in place with external data: the model's rename switches model and data
# together (the new data has a name of its own), and no data file is left over
mkdir $TMP/ip
$HPCZ convert samples/digits_cnn.onnx -o $TMP/ip/m.onnx --external-data
for round in 1 2 3; do
  $HPCZ convert $TMP/ip/m.onnx --in-place --external-data; echo "in place $round: $?"
  ls $TMP/ip | sed 's/\.[0-9a-f]\{6\}$/.XXXXXX/'
done
$HPCZ run $TMP/ip/m.onnx --inputs samples/digits/test_data_set_0 -o $TMP/ip_out -q
$HPCZ run samples/digits_cnn.onnx --inputs samples/digits/test_data_set_0 -o $TMP/ref_out -q
cmp $TMP/ip_out/logits.npy $TMP/ref_out/logits.npy && echo "same outputs as the original"
