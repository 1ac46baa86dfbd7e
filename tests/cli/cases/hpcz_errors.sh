# damaged .hpcz files: one line on stderr naming the file, status 1, nothing on stdout
$HPCZ convert samples/digits_mlp.onnx -o $TMP/ok.hpcz
size=$(wc -c < $TMP/ok.hpcz)
head -c $((size - 100)) $TMP/ok.hpcz > $TMP/truncated.hpcz
head -c 40 $TMP/ok.hpcz > $TMP/header-only.hpcz
cp $TMP/ok.hpcz $TMP/flipped.hpcz
printf '\xff' | dd of=$TMP/flipped.hpcz bs=1 seek=$((size - 1000)) conv=notrunc status=none
cp $TMP/ok.hpcz $TMP/v2.hpcz
printf '\x02' | dd of=$TMP/v2.hpcz bs=1 seek=4 conv=notrunc status=none
cp $TMP/ok.hpcz $TMP/table.hpcz
printf '\x01' | dd of=$TMP/table.hpcz bs=1 seek=200 conv=notrunc status=none
printf 'HPCZ' > $TMP/magic-only.hpcz
for f in truncated header-only flipped v2 table magic-only; do
  $HPCZ inspect $TMP/$f.hpcz; echo "$f: $?"
done
$HPCZ convert $TMP/flipped.hpcz -o $TMP/out.onnx; echo "convert flipped: $?"
ls $TMP | grep -c out.onnx
$HPCZ inspect - < $TMP/v2.hpcz; echo "stdin v2: $?"
# an ONNX file named .hpcz is still read as ONNX (by its bytes, not its name)
cp samples/digits_mlp.onnx $TMP/named.hpcz
$HPCZ inspect $TMP/named.hpcz | head -2
# usage errors
$HPCZ convert samples/digits_mlp.onnx -o $TMP/x.hpcz --external-data; echo "external: $?"
$HPCZ convert samples/digits_mlp.onnx -o $TMP/x.hpcz --format xml; echo "format: $?"
$HPCZ convert samples/digits_mlp.onnx -o $TMP/x.hpcz --zstd-level 20; echo "level: $?"
