# MACs are counted from shapes, never by running the model: prune once hung on
# a Loop of 2^62 iterations and grew to gigabytes on a Loop with scan outputs.
# Each must finish at once in little memory (peak RSS checked where
# /usr/bin/time exists); the body's MatMul counts once (an estimate).
for f in loop_2e62 loop_scan; do
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f %M -o $TMP/rss timeout 60 $HPCZ prune tests/data/hostile/$f.onnx -o $TMP/p.onnx --sparsity 0.5 2> $TMP/err
  else
    echo 0 > $TMP/rss; timeout 60 $HPCZ prune tests/data/hostile/$f.onnx -o $TMP/p.onnx --sparsity 0.5 2> $TMP/err
  fi
  echo "$f: exit $?"
  rss=$(tail -n 1 $TMP/rss)
  if [ "$rss" -lt 300000 ]; then echo "$f: peak RSS under 300 MB"; else echo "$f: peak RSS $rss KB"; fi
  grep 'MACs' $TMP/err
  timeout 60 $HPCZ inspect $TMP/p.onnx | grep '^nodes'
done
