"""Static int8's exact rewrites for ONNX Runtime's kernels (ort_forms.c and
the Max fold of quantize_weights.c) on an oww_embedding-like block: Conv ->
LeakyRelu -> Max(-0.4) -> MaxPool -> Conv -> LeakyRelu -> Max(-0.4) -> Conv
-> LeakyRelu -> Max(-0.4) -> MaxPool.

* MaxPool first: the float stem's MaxPool is moved before its LeakyRelu and
  Max (max commutes with non-decreasing functions), so ONNX Runtime pools the
  Conv's float output instead of moving the QuantizeLinear in front of the
  MaxPool and pooling uint8 codes in NCHW. The file with the MaxPool put back
  gives ONNX Runtime's outputs bit for bit. The tail's MaxPool (a graph
  output, its chain from a DequantizeLinear) stays after its Max, and a float
  model (no int8 op, no QuantizeLinear after a MaxPool) keeps its MaxPools.
* Max(x, c) after an int8 LeakyRelu, c at the floor of its range, folds into
  the LeakyRelu's QuantizeLinear (Q(max(x, c)) = max(Q(x), Q(c)) and Q(c) is
  the lowest code): no DequantizeLinear -> Max -> QuantizeLinear between the
  two int8 Convs.

Checked on the written file: op order, ranges, what ONNX Runtime runs,
accuracy against the float model in ONNX Runtime, hpcz run against ONNX
Runtime, and the same bytes twice. No timings (scripts/bench/ort_latency.py).

Usage: python test_ort_forms.py HPCZ SOURCE_ROOT
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from harness import (HPCZ, calib_folder, check, graph_maps, ort_optimized_graph, quantize_into, session, sqnr,
                     tally)

TMP = tempfile.mkdtemp(prefix="hpcz-ort-forms-")


def const(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def make_model(path, cin=2, c=64, hw=32):
    rng = np.random.default_rng(3)

    def w(*shape):
        return (rng.normal(size=shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    inits = [const("W0", w(c, cin, 3, 3)), const("B0", rng.normal(size=c) * 0.2),
             const("W1", w(c, c, 3, 3)), const("B1", rng.normal(size=c) * 0.2),
             const("W2", w(c, c, 3, 3)), const("B2", rng.normal(size=c) * 0.2),
             const("floor", [[[[-0.4]]]])]
    nodes = [helper.make_node("Conv", ["x", "W0", "B0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["c0"], ["l0"], name="leaky0", alpha=0.2),
             helper.make_node("Max", ["l0", "floor"], ["m0"], name="max0"),
             helper.make_node("MaxPool", ["m0"], ["p0"], name="pool0", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p0", "W1", "B1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["c1"], ["l1"], name="leaky1", alpha=0.2),
             helper.make_node("Max", ["l1", "floor"], ["m1"], name="max1"),
             helper.make_node("Conv", ["m1", "W2", "B2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["c2"], ["l2"], name="leaky2", alpha=0.2),
             helper.make_node("Max", ["l2", "floor"], ["m2"], name="max2"),
             helper.make_node("MaxPool", ["m2"], ["y"], name="pool2", kernel_shape=[2, 2], strides=[2, 2])]
    g = helper.make_graph(nodes, "oww_block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", cin, hw, hw])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", c, hw // 4, hw // 4])],
                          initializer=inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=7), path)


def quantize(src, name, *args):
    return quantize_into(TMP, src, name, *args)


def main():
    src = os.path.join(TMP, "oww_block.onnx")
    make_model(src)
    rng = np.random.default_rng(4)
    cal = calib_folder(TMP, x=rng.normal(size=(16, 2, 32, 32)).astype(np.float32))
    xs = rng.normal(size=(6, 2, 32, 32)).astype(np.float32)

    dst, log = quantize(src, "block_s8.onnx", "--mode", "static", "--calib", cal, "-v")
    check(dst is not None, "static int8 of the block (default latency placement)")
    if not dst:
        sys.exit(tally())
    onnx.checker.check_model(dst, full_check=True)
    m = onnx.load(dst)
    by, prod, inits = graph_maps(m.graph)

    def reads_dq(name):
        p = prod.get(by[name].input[0]) if name in by else None
        return p is not None and p.op_type == "DequantizeLinear"

    check(not reads_dq("conv0") and reads_dq("conv1") and reads_dq("conv2"),
          "conv0 (2 input channels, 17 multiply-adds per value converted) float, conv1 and conv2 int8")
    # MaxPool first: conv0 -> pool0 -> leaky0 -> max0 -> QuantizeLinear
    pool = by.get("pool0")
    check(pool is not None and prod.get(pool.input[0]) is not None and prod[pool.input[0]].name == "conv0"
          and prod.get(by["leaky0"].input[0]) is pool and prod.get(by["max0"].input[0]) is by["leaky0"],
          "the stem's MaxPool reads conv0 and LeakyRelu -> Max run on the pooled values")
    q = [n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == by["max0"].output[0]]
    check(len(q) == 1, "the stem's Max output is what conv1's QuantizeLinear reads")
    check("'pool0' (MaxPool) moved before 'leaky0' (LeakyRelu)" in log, "-v says the MaxPool moved")
    check(prod.get(by["pool2"].input[0]) is by["max2"] and "'pool2' (MaxPool) moved" not in log,
          "the tail's MaxPool (read by no QuantizeLinear, its chain from a DequantizeLinear) stays after max2")
    # Max fold: leaky1's QuantizeLinear has max1's range, max1 is gone
    check("max1" not in by and "'max1' (Max) folded into the quantized output of 'leaky1'" in log,
          "max1 folded into leaky1's quantized output (-v says so)")
    lq = [n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == by["leaky1"].output[0]]
    if lq:
        s, z = float(inits[lq[0].input[1]]), int(inits[lq[0].input[2]])
        code = np.clip(np.round(-0.4 / s) + z, 0, 255)
        check(code == 0 and abs(-z * s + 0.4) <= s / 2,
              "leaky1's QuantizeLinear saturates at -0.4: Q(-0.4) = %d, lowest code = %.4f" % (code, -z * s))
    else:
        check(False, "leaky1's output has a QuantizeLinear")
    # what ONNX Runtime runs: no MaxPool on uint8 codes (a QuantizeLinear
    # moved in front of it), no Max between the int8 Convs
    og = ort_optimized_graph(dst)
    oprod = {o: n for n in og.node for o in n.output}
    pools = [n for n in og.node if n.op_type == "MaxPool"]
    reads = [oprod[p.input[0]].op_type if p.input[0] in oprod else "?" for p in pools]
    check(len(pools) == 2 and not set(reads) & {"?", "QuantizeLinear", "DequantizeLinear"},
          "ONNX Runtime pools float values (its MaxPools read %s)" % ",".join(reads))
    oops = [n.op_type for n in og.node]
    check(oops.count("Max") == 2 and oops.count("QLinearConv") == 2 and "QLinearLeakyRelu" in oops,
          "ONNX Runtime: 2 QLinearConv, QLinearLeakyRelu, no Max between them (%s)" % ",".join(oops))
    # accuracy against the float model, both in ONNX Runtime
    ref = session(src).run(None, {"x": xs})[0]
    got = session(dst).run(None, {"x": xs})[0]
    s = sqnr(ref, got)
    check(s > 30, "static int8 vs float in ONNX Runtime: %.1f dB > 30" % s)
    # hpcz run on the same file gives ONNX Runtime's outputs
    np.save(os.path.join(TMP, "x.npy"), xs)
    out = os.path.join(TMP, "run")
    r = subprocess.run([HPCZ, "run", dst, "--input", "x=" + os.path.join(TMP, "x.npy"), "-o", out, "-q"],
                       capture_output=True, text=True)
    mine = np.load(os.path.join(out, "y.npy")) if r.returncode == 0 else None
    check(mine is not None and sqnr(got, mine) > 40,
          "hpcz run on the static file matches ONNX Runtime (%.1f dB)" % (sqnr(got, mine) if mine is not None else 0))
    again, _ = quantize(src, "block_s8_again.onnx", "--mode", "static", "--calib", cal)
    check(again and open(again, "rb").read() == open(dst, "rb").read(), "the same bytes twice")
    # --placement all keeps the model's own forms: no MaxPool moved
    alld, log = quantize(src, "block_all.onnx", "--mode", "static", "--calib", cal, "--placement", "all", "-v")
    check(alld is not None and "moved before" not in log, "--placement all moves no MaxPool")
    undo_exact(src, dst)
    sys.exit(tally())


def undo_exact(src, dst):
    """The written file with the stem's MaxPool put back after max0 gives
    ONNX Runtime's outputs bit for bit (the same codes reach conv1). A float
    model (the small block: no int8 op) keeps its MaxPool where it was."""
    m = onnx.load(dst)
    by = {n.name: n for n in m.graph.node}
    pool, leaky, mx = by["pool0"], by["leaky0"], by["max0"]
    q = [n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == mx.output[0]][0]
    leaky.input[0] = pool.input[0]
    pool.input[0] = mx.output[0]
    q.input[0] = pool.output[0]
    order = [n for n in m.graph.node if n is not pool]
    order.insert(order.index(q), pool)
    nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in order]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    undone = os.path.join(TMP, "block_undone.onnx")
    onnx.save(m, undone)
    xs = np.random.default_rng(7).normal(size=(4, 2, 32, 32)).astype(np.float32) * 3
    a = session(dst).run(None, {"x": xs})[0]
    b = session(undone).run(None, {"x": xs})[0]
    check(np.array_equal(a, b), "the moved MaxPool gives the outputs of the MaxPool after max0 bit for bit "
          "(max |diff| %g)" % float(np.max(np.abs(a - b))))
    small = os.path.join(TMP, "small.onnx")
    make_model(small, cin=2, c=8, hw=16)
    cal = calib_folder(TMP, "calib_small", x=np.random.default_rng(8).normal(size=(8, 2, 16, 16)).astype(np.float32))
    out, log = quantize(small, "small_s8.onnx", "--mode", "static", "--calib", cal, "-v")
    ops = [n.op_type for n in onnx.load(out).graph.node] if out else []
    check(out is not None and "QuantizeLinear" not in ops and ops.index("LeakyRelu") < ops.index("MaxPool")
          and "moved before" not in log, "a float model keeps its MaxPools after the activations (%s)" % ",".join(ops))


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
