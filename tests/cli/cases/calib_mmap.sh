# A large .npy given to --calib is mapped, not read: memory follows
# --calib-samples, not the file size. big.npy (64 MiB) starts with the same 64
# samples as small.npy, then rows of 51015.3 that would show in every range if
# they were read; the tables must be equal and the peak RSS small (checked
# where /usr/bin/time exists).
npy_header() {
  local dict="{'descr': '<f4', 'fortran_order': False, 'shape': ($1), }"
  local total=$(( 10 + ${#dict} + 1 )); local pad=$(( (64 - total % 64) % 64 ))
  local hlen=$(( ${#dict} + pad + 1 ))
  printf '\x93NUMPY\x01\x00'
  printf "\\x$(printf %02x $((hlen & 255)))\\x$(printf %02x $((hlen >> 8)))"
  printf '%s%*s\n' "$dict" $pad ''
}
src=samples/digits/calib/input.npy # [512,1,8,8] float, 128-byte header
n=262144
{ npy_header "64, 1, 8, 8"; tail -c +129 $src | head -c $((64 * 256)); } > $TMP/small.npy
{ npy_header "$n, 1, 8, 8"; tail -c +129 $src | head -c $((64 * 256))
  head -c $(( (n - 64) * 256 )) /dev/zero | tr '\0' 'G'; } > $TMP/big.npy
$HPCZ calibrate samples/digits_cnn.onnx --calib $TMP/small.npy --calib-samples 64 -o $TMP/small.json -q
echo "small: $?"
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f %M -o $TMP/rss $HPCZ calibrate samples/digits_cnn.onnx --calib $TMP/big.npy --calib-samples 64 -o $TMP/big.json -q
else
  echo 0 > $TMP/rss; $HPCZ calibrate samples/digits_cnn.onnx --calib $TMP/big.npy --calib-samples 64 -o $TMP/big.json -q
fi
echo "big: $?"
cmp $TMP/small.json $TMP/big.json && echo "tables equal"
rss=$(tail -n 1 $TMP/rss)
if [ "$rss" -lt 100000 ]; then echo "peak RSS under 100 MB"; else echo "peak RSS $rss KB"; fi
# the same through a folder holding input.npy
mkdir $TMP/dir && mv $TMP/big.npy $TMP/dir/input.npy
$HPCZ calibrate samples/digits_cnn.onnx --calib $TMP/dir --calib-samples 64 -o $TMP/dir.json -q
cmp $TMP/small.json $TMP/dir.json && echo "folder: tables equal"
