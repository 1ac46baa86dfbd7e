"""Static int8's latency placement on a MobileNetV3 / PP-LCNet block (issue 11
defect 7): a Conv with BatchNormalization exported as Mul + Add of
per-channel constants, HardSwish written out as x * Clip(x + 3, 0, 6) / 6,
a squeeze-excite block (GlobalAveragePool -> Conv -> Relu -> Conv ->
HardSigmoid -> Mul) and a pointwise Conv. Checked on the written file: which
nodes run in int8 (read through DequantizeLinear), the float forms ONNX
Runtime runs fastest (the affine folded into the Conv, HardSwish as one op),
what ONNX Runtime fuses, accuracy against the float model in ONNX Runtime,
hpcz run against ONNX Runtime on the same file, and deterministic bytes. Then
the same block narrower (24 channels on 64x64): its pointwise conv2, fed by
float ops (HardSwish, the squeeze-excite Mul) and read by a float HardSwish,
would be an int8 island doing 12 multiply-adds per value ONNX Runtime
converts around it (QuantizeLinear, NHWC transposes, DequantizeLinear): it
stays float (min-macs-per-value), conv1 stays int8. Then --placement hpcz
(for hpcz's own runtime) on the narrow block with a pooled second output:
the island and the squeeze-excite block in int8, the tail float, the file
run by ONNX Runtime and hpcz; a bad --placement is a usage error. No timings
(scripts/bench/ort_latency.py and runtime_zoo.py measure those).

Usage: python test_placement.py HPCZ SOURCE_ROOT
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from harness import (HPCZ, calib_folder, check, graph_maps, ort_optimized_ops, quantize_into, session, sqnr,
                     tally)

TMP = tempfile.mkdtemp(prefix="hpcz-placement-")


def const(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def hardswish(x, y, tag):
    """x * Clip(x + 3, 0, 6) / 6 as PaddleOCR exports it."""
    return [helper.make_node("Add", [x, "three"], [tag + "_p3"], name=tag + "_add"),
            helper.make_node("Clip", [tag + "_p3", "zero", "six"], [tag + "_r6"], name=tag + "_clip"),
            helper.make_node("Mul", [x, tag + "_r6"], [tag + "_m"], name=tag + "_mul"),
            helper.make_node("Div", [tag + "_m", "six"], [y], name=tag + "_div")]


def make_model(path, c=128, hw=32, tail=False):
    """The block with c channels after conv1 on hw x hw feature maps; tail: a
    second output z = Flatten(GlobalAveragePool(y))."""
    rng = np.random.default_rng(11)

    def w(*shape):
        fan_in = int(np.prod(shape[1:]))
        return rng.normal(size=shape).astype(np.float32) / np.sqrt(fan_in)

    r = c // 4
    inits = [const("W1", w(c, 16, 3, 3)), const("B1", rng.normal(size=c) * 0.1),
             const("bn_s", rng.uniform(0.5, 1.5, size=(c, 1, 1))), const("bn_b", rng.normal(size=(c, 1, 1)) * 0.5),
             const("Wr", w(r, c, 1, 1)), const("Br", rng.normal(size=r) * 0.1),
             const("We", w(c, r, 1, 1)), const("Be", rng.normal(size=c) * 0.1),
             const("W2", w(c, c, 1, 1)), const("B2", rng.normal(size=c) * 0.1),
             const("aff_a", 0.8), const("aff_b", 0.25), const("three", 3.0), const("zero", 0.0), const("six", 6.0)]
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c1", "bn_s"], ["bn_m"], name="bn_mul"),
             helper.make_node("Add", ["bn_m", "bn_b"], ["bn_y"], name="bn_add")]
    nodes += hardswish("bn_y", "h1", "hs1")
    nodes += [helper.make_node("GlobalAveragePool", ["h1"], ["se_g"], name="se_pool"),
              helper.make_node("Conv", ["se_g", "Wr", "Br"], ["se_r"], name="se_reduce"),
              helper.make_node("Relu", ["se_r"], ["se_rr"], name="se_relu"),
              helper.make_node("Conv", ["se_rr", "We", "Be"], ["se_e"], name="se_expand"),
              helper.make_node("HardSigmoid", ["se_e"], ["se_gate"], name="se_hsig", alpha=0.2, beta=0.5),
              helper.make_node("Mul", ["h1", "se_gate"], ["se_y"], name="se_mul"),
              helper.make_node("Mul", ["se_y", "aff_a"], ["aff_m"], name="aff_mul"),
              helper.make_node("Add", ["aff_m", "aff_b"], ["aff_y"], name="aff_add"),
              helper.make_node("Conv", ["aff_y", "W2", "B2"], ["c2"], name="conv2")]
    nodes += hardswish("c2", "y", "hs2")
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", c, hw, hw])]
    if tail:
        nodes += [helper.make_node("GlobalAveragePool", ["y"], ["pooled"], name="tail_pool"),
                  helper.make_node("Flatten", ["pooled"], ["z"], name="tail_flatten")]
        outs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", c]))
    g = helper.make_graph(nodes, "lcnet_block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16, hw, hw])],
                          outs, initializer=inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=7), path)


def quantize(src, name, *args):
    return quantize_into(TMP, src, name, *args)



def main():
    src = os.path.join(TMP, "lcnet_block.onnx")
    make_model(src)
    rng = np.random.default_rng(5)
    cal = calib_folder(TMP, x=rng.normal(size=(16, 16, 32, 32)).astype(np.float32))
    xs = rng.normal(size=(8, 16, 32, 32)).astype(np.float32)

    dst, log = quantize(src, "block_s8.onnx", "--mode", "static", "--calib", cal, "-v")
    check(dst is not None, "static int8 of the block (default latency placement)")
    if not dst:
        sys.exit(tally())
    onnx.checker.check_model(dst, full_check=True)
    m = onnx.load(dst)
    ops = [n.op_type for n in m.graph.node]
    by, prod, _ = graph_maps(m.graph)
    readers = {}
    for n in m.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n.op_type)

    def int8(name):  # reads its input 0 through DequantizeLinear
        p = prod.get(by[name].input[0]) if name in by else None
        return p is not None and p.op_type == "DequantizeLinear"

    # the float forms: Mul/Add of per-channel constants folded into conv1,
    # both written-out HardSwish made HardSwish ops (opset 13 -> 14)
    opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
    check(ops.count("HardSwish") == 2 and "Div" not in ops and "Clip" not in ops and opset >= 14,
          "both written-out HardSwish are HardSwish ops, opset %d" % opset)
    check("bn_mul" not in by and "bn_add" not in by and "aff_mul" not in by and "aff_add" not in by
          and ops.count("Mul") == 1 and ops.count("Add") == 0,
          "Mul + Add of per-channel constants folded into conv1, the scalar ones into the unpadded conv2 "
          "(only the SE Mul is left)")
    check("1 Mul/Add of per-channel constants folded" in log and "1 scalar Mul/Add folded" in log
          and "2 written-out HardSwish" in log, "-v says what was rewritten")
    # placement: the two heavy Convs in int8, their outputs read only by a QuantizeLinear;
    # the squeeze-excite block and HardSwish (no int8 kernel in ONNX Runtime) float
    check(int8("conv1") and int8("conv2"), "conv1 (144 products per output) and conv2 (128) in int8")
    check(readers.get(by["conv1"].output[0]) == ["QuantizeLinear"] and readers.get(by["conv2"].output[0]) == ["QuantizeLinear"],
          "an int8 Conv's output goes only to its QuantizeLinear")
    check(not any(int8(k) for k in ("se_pool", "se_reduce", "se_expand", "se_hsig", "se_mul")),
          "the squeeze-excite block stays float")
    dq1 = prod.get(by["hs1_div"].input[0])
    check(dq1 is not None and dq1.op_type == "DequantizeLinear" and prod[dq1.input[0]].input[0] == by["conv1"].output[0]
          and sorted(readers.get(by["hs1_div"].output[0], [])) == ["GlobalAveragePool", "Mul"],
          "HardSwish (no int8 kernel in ONNX Runtime) reads conv1's codes through one DequantizeLinear and stays float")
    # what ONNX Runtime runs: two QLinearConv, HardSwish as HardSigmoid * x, no Clip or Div
    fused = ort_optimized_ops(dst)
    check(fused.count("QLinearConv") == 2 and "Div" not in fused and "Clip" not in fused,
          "ONNX Runtime fuses both int8 Convs, no Clip or Div left (%s)" % ",".join(fused))
    # accuracy against the float model, both in ONNX Runtime
    ref = session(src).run(None, {"x": xs})[0]
    got = session(dst).run(None, {"x": xs})[0]
    s = sqnr(ref, got)
    check(s > 30, "static int8 vs float in ONNX Runtime: %.1f dB > 30" % s)
    # --placement all keeps the model's own forms (every selected op in int8)
    alld, _ = quantize(src, "block_all.onnx", "--mode", "static", "--calib", cal, "--placement", "all")
    aops = [n.op_type for n in onnx.load(alld).graph.node] if alld else []
    check(alld and "Div" in aops and "HardSwish" not in aops, "--placement all: HardSwish stays written out")
    if alld:
        sa = sqnr(ref, session(alld).run(None, {"x": xs})[0])
        check(s > sa, "latency placement closer to float than --placement all (%.1f > %.1f dB)" % (s, sa))
    # hpcz run on the same file gives ONNX Runtime's outputs
    np.save(os.path.join(TMP, "x.npy"), xs)
    out = os.path.join(TMP, "run")
    r = subprocess.run([HPCZ, "run", dst, "--input", "x=" + os.path.join(TMP, "x.npy"), "-o", out, "-q"],
                       capture_output=True, text=True)
    mine = np.load(os.path.join(out, "y.npy")) if r.returncode == 0 else None
    check(mine is not None and sqnr(got, mine) > 30,
          "hpcz run on the static file matches ONNX Runtime (%.1f dB)" % (sqnr(got, mine) if mine is not None else 0))
    # the same input and options give the same bytes
    again, _ = quantize(src, "block_s8_again.onnx", "--mode", "static", "--calib", cal)
    check(again and open(again, "rb").read() == open(dst, "rb").read(), "the same bytes twice")
    narrow_island()
    hpcz_placement()
    sys.exit(tally())


def narrow_island():
    """24 channels on 64x64: conv2 (24 -> 24, 2.4M multiply-adds) would be an
    int8 island converting 2 x 24 values per 24 x 24 products: float."""
    src = os.path.join(TMP, "narrow.onnx")
    make_model(src, c=24, hw=64)
    rng = np.random.default_rng(6)
    cal = calib_folder(TMP, "calib_narrow", x=rng.normal(size=(8, 16, 64, 64)).astype(np.float32))
    xs = rng.normal(size=(4, 16, 64, 64)).astype(np.float32)
    dst, log = quantize(src, "narrow_s8.onnx", "--mode", "static", "--calib", cal, "-v")
    check(dst is not None, "static int8 of the narrow block")
    if not dst:
        return
    by, prod, _ = graph_maps(onnx.load(dst).graph)

    def int8(name):
        p = prod.get(by[name].input[0]) if name in by else None
        return p is not None and p.op_type == "DequantizeLinear"

    check(int8("conv1") and not int8("conv2"), "conv1 (86 multiply-adds per value converted) int8, conv2 (12) float")
    check("'conv2' (Conv, 24 products per output) kept float: its input comes from a float op, and it does 12 "
          "multiply-adds per value converted to and from int8 (min-macs-per-value 48)" in log,
          "-v says why conv2 stays float")
    # what ONNX Runtime runs: one QLinearConv, where the island would add a
    # second one with a QuantizeLinear and a DequantizeLinear (and, at
    # ORT_ENABLE_ALL, a transpose to NHWC and back)
    fused = ort_optimized_ops(dst)
    island, _ = quantize(src, "narrow_island.onnx", "--mode", "static", "--calib", cal, "--passes",
                         "fold-bn,eliminate,quantize-static{min-macs-per-value=0},dce")
    fused_island = ort_optimized_ops(island) if island else []
    check(fused.count("QLinearConv") == 1 and fused_island.count("QLinearConv") == 2,
          "ONNX Runtime runs 1 QLinearConv (2 with min-macs-per-value=0)")
    for op in ("QuantizeLinear", "DequantizeLinear"):
        check(fused.count(op) == fused_island.count(op) - 1,
              "one island fewer: %d %s in ONNX Runtime's graph (%d with the island)"
              % (fused.count(op), op, fused_island.count(op)))
    ref = session(src).run(None, {"x": xs})[0]
    s = sqnr(ref, session(dst).run(None, {"x": xs})[0])
    check(s > 30, "narrow block static int8 vs float in ONNX Runtime: %.1f dB > 30" % s)
    # --auto-fallback searches for the smallest model at its gate: the island
    # rule (a latency trade) is off, so conv2 is int8 too
    fb, log = quantize(src, "narrow_fb.onnx", "--mode", "static", "--calib", cal, "--auto-fallback",
                       "--min-cosine", "0.9", "-v")
    if fb:
        m = onnx.load(fb)
        by = {n.name: n for n in m.graph.node}
        prod = {o: n for n in m.graph.node for o in n.output}
    check(fb is not None and int8("conv1") and int8("conv2") and "min-macs-per-value" not in log,
          "--auto-fallback keeps the island: conv1 and conv2 int8")


def hpcz_placement():
    """--placement hpcz on the narrow block (24 channels, 32x32) with a pooled second output:
    every selected op in int8 (hpcz's int8 kernels beat its float ones on
    islands, depthwise convs and the squeeze-excite ops), with latency's float
    rewrites, but the tail (GlobalAveragePool -> Flatten -> graph output, read
    by no int8 op) float. ONNX Runtime loads the file and agrees with the float
    model; hpcz run agrees with ONNX Runtime on it. A --placement that is not
    latency, all or hpcz is a usage error."""
    src = os.path.join(TMP, "narrow_tail.onnx")
    make_model(src, c=24, hw=32, tail=True)
    rng = np.random.default_rng(7)
    cal = os.path.join(TMP, "calib_tail")
    os.makedirs(cal)
    np.save(os.path.join(cal, "x.npy"), rng.normal(size=(4, 16, 32, 32)).astype(np.float32))
    xs = rng.normal(size=(2, 16, 32, 32)).astype(np.float32)
    placed = {}
    for how in ("latency", "hpcz"):
        dst, log = quantize(src, "tail_%s.onnx" % how, "--mode", "static", "--calib", cal, "--placement", how, "-v")
        check(dst is not None, "--placement %s of the narrow block with a tail" % how)
        if not dst:
            return
        m = onnx.load(dst)
        prod = {o: n for n in m.graph.node for o in n.output}
        # the nodes that read an activation through a DequantizeLinear (run on int8 codes)
        placed[how] = sorted(n.name for n in m.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
                             and any(i in prod and prod[i].op_type == "DequantizeLinear" and prod[i].input[0] in prod
                                     for i in n.input))
        if how == "hpcz":
            hdst, hlog, hm = dst, log, m
    check(placed["latency"] == ["conv1", "hs1_div"],
          "latency: only conv1 in int8 (and HardSwish reads its codes): %s" % placed["latency"])
    check(placed["hpcz"] == ["conv1", "conv2", "hs1_div", "hs2_div", "se_expand", "se_hsig", "se_mul", "se_pool",
                             "se_reduce"],
          "hpcz: the island conv2 and the squeeze-excite block in int8, the tail float: %s" % placed["hpcz"])
    ops = [n.op_type for n in hm.graph.node]
    check(ops.count("HardSwish") == 2 and "Div" not in ops and "Clip" not in ops and ops.count("Add") == 0,
          "hpcz: latency's float rewrites (HardSwish ops, the affines folded into the Convs)")
    zq = [n for n in hm.graph.node if "z" in n.output]
    check(len(zq) == 1 and zq[0].name == "tail_flatten", "hpcz: the output z comes from the float Flatten, not a DequantizeLinear")
    for name, op in (("tail_flatten", "Flatten"), ("tail_pool", "GlobalAveragePool")):
        check("'%s' (%s) kept float: no int8 op reads its output" % (name, op) in hlog, "-v says why %s stays float" % name)
    check("left float by the hpcz placement" in hlog, "the summary names the placement")
    # ONNX Runtime loads it and agrees with the float model; hpcz run agrees with ONNX Runtime
    onnx.checker.check_model(hdst, full_check=True)
    ref = session(src).run(None, {"x": xs})
    got = session(hdst).run(None, {"x": xs})
    for k, name in enumerate(("y", "z")):
        sk = sqnr(ref[k], got[k])
        check(sk > 30, "hpcz placement vs float in ONNX Runtime, %s: %.1f dB > 30" % (name, sk))
    np.save(os.path.join(TMP, "x_tail.npy"), xs)
    out = os.path.join(TMP, "run_tail")
    r = subprocess.run([HPCZ, "run", hdst, "--input", "x=" + os.path.join(TMP, "x_tail.npy"), "-o", out, "-q"],
                       capture_output=True, text=True)
    for k, name in enumerate(("y", "z")):
        mine = np.load(os.path.join(out, name + ".npy")) if r.returncode == 0 else None
        check(mine is not None and sqnr(got[k], mine) > 30, "hpcz run on the hpcz-placed file matches ONNX Runtime (%s)" % name)
    # a bad value: exit 2, one line naming the option and the choices
    r = subprocess.run([HPCZ, "quantize", src, "-o", os.path.join(TMP, "bad.onnx"), "--mode", "static", "--calib", cal,
                        "--placement", "fast"], capture_output=True, text=True)
    check(r.returncode == 2 and "--placement: 'fast' is not latency, all or hpcz" in r.stderr
          and not os.path.exists(os.path.join(TMP, "bad.onnx")),
          "--placement fast: exit 2 and a one-line error (%d: %s)" % (r.returncode, r.stderr.strip()[:120]))


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
