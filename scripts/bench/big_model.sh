#!/usr/bin/env bash
# Benchmark (not a test): a model over protobuf's 2 GB limit, stored with
# external data, read and rewritten by hpcz. Reports wall time and peak
# resident memory of each step next to `cp` of the same bytes.
#   scripts/bench/big_model.sh [GB]     (default 2.5; needs ~3x that on disk)
set -euo pipefail
cd "$(dirname "$0")/../.."
gb=${1:-2.5}
work=build/bench-big
hpcz=build/hpcz
[ -x "$hpcz" ] || { meson setup build --buildtype=release >/dev/null; ninja -C build >/dev/null; }
rm -rf "$work"; mkdir -p "$work/out"

# Five float initializers of gb/5 each, in one external data file, generated
# with numpy chunk by chunk (the model itself is a chain of Adds).
/usr/bin/python3 - "$work" "$gb" <<'PY'
import os, sys
import numpy as np
import onnx
from onnx import TensorProto, helper
work, gb = sys.argv[1], float(sys.argv[2])
n_t = 5
numel = int(gb * 1e9 / 4 / n_t)
inits, off = [], 0
with open(os.path.join(work, "big.onnx.data"), "wb") as f:
    rng = np.random.default_rng(0)
    chunk = rng.standard_normal(1 << 22, dtype=np.float32)
    for k in range(n_t):
        left = numel
        while left:
            c = min(left, chunk.size)
            f.write(chunk[:c].tobytes())
            left -= c
        t = TensorProto(name="w%d" % k, data_type=TensorProto.FLOAT, dims=[numel],
                        data_location=TensorProto.EXTERNAL)
        for key, val in (("location", "big.onnx.data"), ("offset", str(off)), ("length", str(numel * 4))):
            e = t.external_data.add(); e.key, e.value = key, val
        off += numel * 4
        inits.append(t)
nodes, prev = [], "x"
for k in range(n_t):
    nodes.append(helper.make_node("Add", [prev, "w%d" % k], ["y%d" % k], name="add%d" % k))
    prev = "y%d" % k
g = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [numel])],
                      [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [numel])], initializer=inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
with open(os.path.join(work, "big.onnx"), "wb") as f:
    f.write(m.SerializeToString())
print("made %s: %d tensors of %d floats, %.2f GB of external data" % (work + "/big.onnx", n_t, numel, off / 1e9))
PY

sync
measure() { # label, command...
  local label=$1; shift
  local t0 t1 rss
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$@" >/dev/null 2>"$work/err" || { echo "$label: failed: $(cat "$work/err")"; return 0; }
  t1=$(date +%s.%N)
  rss=$(tail -1 "$work/rss")
  printf "%-40s %8.2f s   peak RSS %8.1f MiB\n" "$label" "$(echo "$t1 - $t0" | bc)" "$(echo "$rss / 1024" | bc -l)"
}
measure "cp (model + data)" cp "$work/big.onnx" "$work/big.onnx.data" "$work/out/"
rm -f "$work/out/"*
measure "hpcz inspect (counts zeros: reads all)" "$hpcz" inspect "$work/big.onnx"
measure "hpcz convert --external-data" "$hpcz" convert "$work/big.onnx" -o "$work/out/big.onnx" --external-data
ls -l "$work/out"
echo "inline (must refuse, the model is over 2 GB):"
"$hpcz" convert "$work/big.onnx" -o "$work/out/inline.onnx" || true
ls "$work/out"
cmp "$work/big.onnx.data" "$work/out/big.onnx.data" >/dev/null 2>&1 && echo "data file identical" \
  || echo "data file differs in layout (64-byte alignment): compare tensors with hpcz inspect"
rm -rf "$work"
