# every bad input: one line on stderr naming the file, status 1, nothing on stdout
for f in tests/data/bad/*; do $HPCZ inspect "$f"; echo "$f: $?"; done
$HPCZ inspect tests/data/no-such-model.onnx; echo "missing: $?"
$HPCZ inspect tests/data; echo "directory: $?"
$HPCZ inspect - < tests/data/bad/truncated.onnx; echo "stdin truncated: $?"
