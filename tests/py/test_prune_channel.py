"""Structured channel pruning checked exactly: a model whose removable channels
are all-zero filters (so removing them changes nothing) must give the same
outputs after pruning, with every dependent tensor sliced: residual Add
coupling, depthwise conv, Concat offsets, a per-channel Mul constant, pooling,
Flatten into Gemm. Also: the digits CNN shrinks by what the report says and
runs in ONNX Runtime; what cannot be traced is left alone and reported.

Usage: python test_prune_channel.py HPCZ SOURCE_ROOT
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HPCZ, ROOT = sys.argv[1:3]
TMP = tempfile.mkdtemp(prefix="hpcz-chan-")
rng = np.random.default_rng(0)
passed, failed = 0, 0


def check(cond, what):
    global passed, failed
    passed, failed = (passed + 1, failed) if cond else (passed, failed + 1)
    print("PASS" if cond else "FAIL", what, flush=True)


def run(path, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, feeds)


def prune(src, dst, *args):
    return subprocess.run([HPCZ, "prune", src, "-o", dst, "--method", "channel", *args],
                          capture_output=True, text=True)


def n_params(path):
    return sum(int(np.prod(t.dims)) for t in onnx.load(path).graph.initializer)


def T(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def exact_model():
    wa = rng.normal(size=(8, 3, 3, 3)); ba = rng.normal(size=8)
    wc = rng.normal(size=(8, 8, 3, 3)); bc = rng.normal(size=8)
    for ch in (0, 5):  # removable: zero filters and biases in both coupled producers
        wa[ch] = 0; ba[ch] = 0; wc[ch] = 0; bc[ch] = 0
    wdw = rng.normal(size=(8, 1, 3, 3)); bdw = rng.normal(size=8); bdw[[0, 5]] = 0
    wd = rng.normal(size=(6, 8, 1, 1)); bd = rng.normal(size=6)
    wd[[2, 4]] = 0; bd[[2, 4]] = 0
    scale = rng.uniform(0.5, 2, size=(1, 14, 1, 1))
    wg = rng.normal(size=(5, 14 * 4 * 4)); bg = rng.normal(size=5)
    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["a0"], name="convA", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a0"], ["a"], name="reluA"),
        helper.make_node("Conv", ["a", "wdw", "bdw"], ["b0"], name="dw", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["b0"], ["b"], name="reluB"),
        helper.make_node("Conv", ["b", "wc", "bc"], ["c"], name="convC", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["a", "c"], ["d"], name="residual"),
        helper.make_node("Conv", ["d", "wd", "bd"], ["e"], name="convD"),
        helper.make_node("Concat", ["d", "e"], ["f"], name="concat", axis=1),
        helper.make_node("Mul", ["f", "scale"], ["g"], name="scale_mul"),
        helper.make_node("MaxPool", ["g"], ["h"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["h"], ["i"], name="flatten"),
        helper.make_node("Gemm", ["i", "wg", "bg"], ["y"], name="fc", transB=1),
    ]
    inits = [T("wa", wa), T("ba", ba), T("wdw", wdw), T("bdw", bdw), T("wc", wc), T("bc", bc),
             T("wd", wd), T("bd", bd), T("scale", scale), T("wg", wg), T("bg", bg)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def main():
    src = os.path.join(TMP, "exact.onnx")
    onnx.save(exact_model(), src)
    dst = os.path.join(TMP, "exact_pruned.onnx")
    r = prune(src, dst, "--ratio", "0.25")
    check(r.returncode == 0, "channel pruning of the exact model runs: " + r.stderr.strip()[-200:])
    onnx.checker.check_model(dst, full_check=True)
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    a, b = run(src, {"x": x})[0], run(dst, {"x": x})[0]
    check(np.allclose(a, b, rtol=1e-5, atol=1e-5),
          "removing all-zero channels leaves the outputs unchanged (max diff %.2e)" % np.max(np.abs(a - b)))
    m = {t.name: numpy_helper.to_array(t) for t in onnx.load(dst).graph.initializer}
    shapes = sorted(v.shape for v in m.values())
    check(any(s == (6, 3, 3, 3) for s in shapes), "convA lost its 2 zero filters (8 -> 6)")
    check(any(s == (6, 1, 3, 3) for s in shapes), "the depthwise conv follows (8 -> 6 groups)")
    check(any(s == (6, 6, 3, 3) for s in shapes), "convC (coupled through the residual Add) loses the same 2")
    check(any(s == (5, 6, 1, 1) for s in shapes), "convD: 6 -> 5 filters, 8 -> 6 input channels")
    check(any(s == (1, 11, 1, 1) for s in shapes), "the per-channel Mul constant follows the Concat (14 -> 11)")
    check(any(s == (5, 11 * 16) for s in shapes), "the Gemm after Flatten drops 16 columns per channel")
    pr = onnx.load(dst)
    check([a.i for n in pr.graph.node if n.name == "dw" for a in n.attribute if a.name == "group"] == [6],
          "depthwise group attribute updated to 6")
    before, after = n_params(src), n_params(dst)
    m_after = re.search(r"parameters\s+([\d,]+) -> ([\d,]+)", r.stderr)
    check(m_after and int(m_after.group(1).replace(",", "")) == before and
          int(m_after.group(2).replace(",", "")) == after,
          "the report's parameter counts are the model's (%d -> %d)" % (before, after))

    # digits CNN: 25% of channels, runs in ONNX Runtime, smaller
    cnn = os.path.join(ROOT, "samples", "digits_cnn.onnx")
    dst = os.path.join(TMP, "cnn_c25.onnx")
    r = prune(cnn, dst, "--ratio", "0.25", "-q")
    check(r.returncode == 0, "digits_cnn channel pruning runs")
    onnx.checker.check_model(dst, full_check=True)
    X = np.load(os.path.join(ROOT, "samples", "digits", "test_input.npy"))
    Y = np.load(os.path.join(ROOT, "samples", "digits", "test_labels.npy"))
    out = run(dst, {"input": X})[0]
    check(out.shape == (len(X), 10), "pruned digits_cnn keeps its interface")
    check(n_params(dst) < 0.75 * n_params(cnn), "digits_cnn parameters drop by more than 25%% (%d -> %d)"
          % (n_params(cnn), n_params(dst)))
    print("   digits_cnn 25%% channels: top-1 %.2f%%" % (100 * np.mean(out.argmax(1) == Y)))

    def macs(path):
        m = onnx.shape_inference.infer_shapes(onnx.load(path))
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
        m = onnx.shape_inference.infer_shapes(m)
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                  for v in list(m.graph.value_info) + list(m.graph.output)}
        inits = {t.name: list(t.dims) for t in m.graph.initializer}
        total = 0
        for n in m.graph.node:
            if n.op_type in ("Conv", "Gemm"):
                w = inits[n.input[1]]
                k = int(np.prod(w[1:])) if n.op_type == "Conv" else w[1]
                total += int(np.prod(shapes[n.output[0]])) * k
        return total

    r = prune(cnn, os.path.join(TMP, "cnn_macs.onnx"), "--ratio", "0.25")
    mm = re.search(r"MACs\s+([\d,]+) -> ([\d,]+)", r.stderr)
    got = (int(mm.group(1).replace(",", "")), int(mm.group(2).replace(",", ""))) if mm else None
    want = (macs(cnn), macs(os.path.join(TMP, "cnn_macs.onnx")))
    check(got == want, "MACs per sample reported %s equal the shapes' count %s" % (got, want))

    # weights held by Constant nodes (issue 11, defect 6): the sliced copies
    # replace them, the model shrinks and computes what the kept channels do
    cw = os.path.join(ROOT, "samples", "patterns", "const_weights.onnx")
    dst = os.path.join(TMP, "const_weights_c50.onnx")
    r = prune(cw, dst, "--ratio", "0.5")
    check(r.returncode == 0, "channel pruning of Constant-node weights runs: " + r.stderr.strip()[-200:])

    def all_params(path):
        m = onnx.load(path)
        n = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
        for node in m.graph.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value":
                        n += int(np.prod(a.t.dims))
        return n
    pb, pa = all_params(cw), all_params(dst)
    check(pa < 0.6 * pb, "Constant-node weights: parameters shrink (%d -> %d)" % (pb, pa))
    check(os.path.getsize(dst) < os.path.getsize(cw),
          "Constant-node weights: the file shrinks (%d -> %d bytes)" % (os.path.getsize(cw), os.path.getsize(dst)))
    mm = re.search(r"parameters\s+([\d,]+) -> ([\d,]+)", r.stderr)
    check(mm and int(mm.group(2).replace(",", "")) == pa,
          "the report's parameter count is the file's (%s vs %d)" % (mm.group(2) if mm else None, pa))
    onnx.checker.check_model(dst, full_check=True)
    xin = np.load(os.path.join(ROOT, "samples", "patterns", "const_weights.input_input.npy"))
    check(run(dst, {"input": xin})[0].shape == (1, 10), "the pruned model runs in ONNX Runtime")

    # BatchNorm re-estimation on calibration data recovers accuracy
    calib = os.path.join(ROOT, "samples", "digits", "calib")
    accs = {}
    for crit in ("l1", "bn-gamma"):
        for recal in (False, True):
            dst = os.path.join(TMP, "cnn_%s_%d.onnx" % (crit, recal))
            args = ["--ratio", "0.25", "--criterion", crit, "-q"] + (["--recalibrate-bn", "--calib", calib] if recal else [])
            r = prune(cnn, dst, *args)
            check(r.returncode == 0, "channel %s%s runs" % (crit, " + recalibrate-bn" if recal else ""))
            accs[(crit, recal)] = 100 * np.mean(run(dst, {"input": X})[0].argmax(1) == Y)
        print("   digits_cnn 25%% channels, %s: %.2f%% -> %.2f%% with --recalibrate-bn"
              % (crit, accs[(crit, False)], accs[(crit, True)]))
        check(accs[(crit, True)] > accs[(crit, False)], "--recalibrate-bn improves %s pruning" % crit)

    # untraceable: a Reshape with a size written into the model, and a conv output as graph output
    w1 = T("w1", rng.normal(size=(4, 3, 1, 1)))
    w2 = T("w2", rng.normal(size=(4, 4, 1, 1)))
    shape = numpy_helper.from_array(np.array([1, 64], np.int64), "shape")
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="c1"),
             helper.make_node("Reshape", ["a", "shape"], ["r"], name="hard_reshape"),
             helper.make_node("Conv", ["x", "w2"], ["z"], name="c2_out")]
    nodes[2].input[1] = "w1"
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 64]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 4, 4])],
                          initializer=[w1, shape])
    src = os.path.join(TMP, "untraceable.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    r = prune(src, os.path.join(TMP, "never.onnx"), "-v")
    check(r.returncode == 1 and not os.path.exists(os.path.join(TMP, "never.onnx")),
          "nothing prunable: status 1, nothing written")
    check("Reshape to a size written into the model" in r.stderr and "graph output" in r.stderr,
          "the reasons are reported")

    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
