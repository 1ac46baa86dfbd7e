# a model is not written to a terminal unless -f/--force (script gives the
# command a pseudo-terminal)
m=samples/digits_mlp.onnx
tty() { script -qec "$1" /dev/null | tr -d '\r'; }
tty "$HPCZ convert $m -o -"; echo "convert to a terminal: $?"
tty "$HPCZ quantize $m -o -"; echo "quantize to a terminal: $?"
tty "$HPCZ prune $m -o - -q"; echo "prune to a terminal: $?"
tty "$HPCZ convert $m -o - --format hpcz"; echo "convert .hpcz to a terminal: $?"
tty "$HPCZ convert $m -o - -f" > /dev/null; echo "convert -f to a terminal: $?"
tty "$HPCZ quantize $m -o - --force -q" > /dev/null; echo "quantize --force to a terminal: $?"
# text is fine on a terminal
tty "$HPCZ quantize $m -o $TMP/q.onnx -q --json" | grep -c '"schema"'
tty "$HPCZ quantize $m -o - --dry-run -q" | tail -1
# a pipe or a file is not a terminal
$HPCZ convert $m -o - | cmp - $m && echo "pipe: same bytes"
$HPCZ prune $m -o - -q > $TMP/p.onnx; echo "prune to a file: $?"
