"""Structured channel pruning checked exactly: a model whose removable channels
are all-zero filters (so removing them changes nothing) must give the same
outputs after pruning, with every dependent tensor sliced: residual Add
coupling, depthwise conv, Concat offsets, a per-channel Mul constant, pooling,
Flatten into Gemm. With calibration data: the consumers' least-squares
reconstruction against a numpy reference and against plain removal on
held-out data, an SE/Hardswish/depthwise/residual net traced whole, and
per-layer channel counts that follow the measured importance. Also: the digits CNN shrinks by what the report says and
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

from harness import HPCZ, ROOT, check, tally

TMP = tempfile.mkdtemp(prefix="hpcz-chan-")
rng = np.random.default_rng(0)


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


def se_model(seed=1):
    """A MobileNetV3-like block net: conv+BN+Hardswish, 1x1 expand+BN+ReLU,
    depthwise+BN+ReLU, an SE gate (pool, reduce conv, ReLU, expand conv with a
    bias from a Reshape of constants, HardSigmoid, Mul), 1x1 project+BN, a
    residual Add, a last 1x1 conv, pooling and a Gemm."""
    r = np.random.default_rng(seed)

    def bn(name, c):
        return [T(name + "_s", r.uniform(0.5, 1.5, c)), T(name + "_b", r.normal(0, 0.1, c)),
                T(name + "_m", r.normal(0, 0.1, c)), T(name + "_v", r.uniform(0.5, 1.5, c))]

    def bnn(name, x, y):
        return helper.make_node("BatchNormalization", [x, name + "_s", name + "_b", name + "_m", name + "_v"], [y],
                                name=name)
    inits = [T("w0", r.normal(0, 0.3, (16, 3, 3, 3))), *bn("bn0", 16),
             T("w1", r.normal(0, 0.25, (32, 16, 1, 1))), *bn("bn1", 32),
             T("wdw", r.normal(0, 0.3, (32, 1, 3, 3))), *bn("bn2", 32),
             T("wr", r.normal(0, 0.2, (8, 32, 1, 1))), T("br", r.normal(0, 0.1, 8)),
             T("we", r.normal(0, 0.3, (32, 8, 1, 1))), T("be_flat", r.normal(0, 0.1, 32)),
             numpy_helper.from_array(np.array([1, 32, 1, 1], np.int64), "be_shape"),
             T("wp", r.normal(0, 0.2, (16, 32, 1, 1))), *bn("bn3", 16),
             T("wl", r.normal(0, 0.25, (24, 16, 1, 1))), T("bl", r.normal(0, 0.1, 24)),
             T("wf", r.normal(0, 0.3, (5, 24))), T("bf", r.normal(0, 0.1, 5))]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        bnn("bn0", "c0", "n0"),
        helper.make_node("HardSwish", ["n0"], ["h0"], name="hswish0"),
        helper.make_node("Conv", ["h0", "w1"], ["c1"], name="expand"),
        bnn("bn1", "c1", "n1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "wdw"], ["c2"], name="dw", group=32, pads=[1, 1, 1, 1]),
        bnn("bn2", "c2", "n2"),
        helper.make_node("Relu", ["n2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gp"], name="se_pool"),
        helper.make_node("Conv", ["gp", "wr", "br"], ["sr"], name="se_reduce"),
        helper.make_node("Relu", ["sr"], ["srr"], name="se_relu"),
        helper.make_node("Conv", ["srr", "we"], ["se0"], name="se_expand"),
        helper.make_node("Reshape", ["be_flat", "be_shape"], ["be"], name="se_bias_reshape"),
        helper.make_node("Add", ["se0", "be"], ["se1"], name="se_bias"),
        helper.make_node("HardSigmoid", ["se1"], ["gate"], name="se_gate"),
        helper.make_node("Mul", ["r2", "gate"], ["sed"], name="se_mul"),
        helper.make_node("Conv", ["sed", "wp"], ["c3"], name="project"),
        bnn("bn3", "c3", "n3"),
        helper.make_node("Add", ["h0", "n3"], ["res"], name="residual"),
        helper.make_node("Conv", ["res", "wl", "bl"], ["c4"], name="last"),
        helper.make_node("HardSwish", ["c4"], ["h4"], name="hswish4"),
        helper.make_node("GlobalAveragePool", ["h4"], ["p4"], name="pool"),
        helper.make_node("Flatten", ["p4"], ["f4"], name="flatten"),
        helper.make_node("Gemm", ["f4", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    g = helper.make_graph(nodes, "se", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def smooth_images(r, n):
    """Inputs with correlated channels and pixels (what reconstruction exploits)."""
    base = r.normal(size=(n, 1, 8, 8))
    x = np.concatenate([base + 0.3 * r.normal(size=(n, 1, 8, 8)) for _ in range(3)], axis=1)
    x = (x + np.roll(x, 1, 2) + np.roll(x, 1, 3)) / 3
    return x.astype(np.float32)


def reconstruction_checks():
    src = os.path.join(TMP, "se.onnx")
    onnx.save(se_model(), src)
    r = np.random.default_rng(7)
    calib = os.path.join(TMP, "se_calib")
    os.makedirs(calib, exist_ok=True)
    xc, xe = smooth_images(r, 64), smooth_images(r, 64)
    np.save(os.path.join(calib, "x.npy"), xc)
    ref = run(src, {"x": xe})[0]

    def err(path):
        y = run(path, {"x": xe})[0]
        return float(np.sum((y - ref) ** 2) / np.sum((ref - ref.mean(0)) ** 2))

    # SE gate (bias through a Reshape of constants), Hardswish, depthwise and
    # the residual Add are all traced: every group is pruned
    plain = os.path.join(TMP, "se_plain.onnx")
    r1 = prune(src, plain, "--ratio", "0.5", "--calib", calib, "--no-reconstruct", "-v")
    check(r1.returncode == 0, "SE net: channel pruning with data runs: " + r1.stderr.strip()[-300:])
    alone = [l for l in r1.stderr.splitlines() if "left alone:" in l]
    check(len(alone) == 1 and "'fc'" in alone[0] and "graph output" in alone[0],
          "SE net: only the graph output is left alone (SE gate, Hardswish, depthwise, residual traced)")
    rec = os.path.join(TMP, "se_rec.onnx")
    r2 = prune(src, rec, "--ratio", "0.5", "--calib", calib, "-v")
    check(r2.returncode == 0 and "reconstructed" in r2.stderr, "SE net: --calib reconstructs by default")
    onnx.checker.check_model(rec, full_check=True)
    y = run(rec, {"x": xe})[0]
    check(y.shape == (64, 5), "SE net pruned: runs in ONNX Runtime with the right output shape")
    e_plain, e_rec = err(plain), err(rec)
    print("   SE net 50%% channels: relative output error %.4f plain removal, %.4f reconstructed" % (e_plain, e_rec))
    check(e_rec < 0.5 * e_plain, "reconstruction at least halves the output error on held-out data")
    mr = {t.name: numpy_helper.to_array(t).shape for t in onnx.load(rec).graph.initializer}
    m0 = onnx.load(rec)
    w_of = {n.name: mr[n.input[1]] for n in m0.graph.node if n.op_type in ("Conv", "Gemm")}
    check(w_of["dw"][0] == w_of["expand"][0] == w_of["se_expand"][0] == w_of["project"][1],
          "SE gate, depthwise and project agree on the kept channels (%s)" % (w_of,))
    check(w_of["conv0"][0] == w_of["project"][0] == w_of["last"][1],
          "the residual group is pruned as one (%s)" % (w_of,))

    # the least squares against a numpy reference: conv1 -> ReLU -> 1x1 conv2
    rr = np.random.default_rng(3)
    w1 = rr.normal(size=(12, 3, 3, 3)); b1 = rr.normal(0, 0.5, 12)
    w1[:, 1] = w1[:, 0] * 0.8 + 0.1 * w1[:, 1]  # correlated features
    w2 = rr.normal(size=(6, 12, 1, 1)); b2 = rr.normal(size=6)
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], name="c1", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["a"], ["ar"], name="relu"),
         helper.make_node("Conv", ["ar", "w2", "b2"], ["y"], name="c2")],
        "ls", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 8, 8])],
        initializer=[T("w1", w1), T("b1", b1), T("w2", w2), T("b2", b2)])
    src = os.path.join(TMP, "ls.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    dst = os.path.join(TMP, "ls_rec.onnx")
    r3 = prune(src, dst, "--calib", calib, "-q", "--passes",
               "prune-channel{ratio=0.25,criterion=energy,reconstruct=true,refine=false}")
    check(r3.returncode == 0, "least-squares model prunes: " + r3.stderr.strip()[-200:])
    m = {t.name: numpy_helper.to_array(t) for t in onnx.load(dst).graph.initializer}
    nodes = {n.name: n for n in onnx.load(dst).graph.node}
    w1p, w2p, b2p = m[nodes["c1"].input[1]], m[nodes["c2"].input[1]], m[nodes["c2"].input[2]]
    kept = [int(np.argmin(np.abs(w1 - f).sum(axis=(1, 2, 3)))) for f in w1p]
    check(len(kept) == 9 and len(set(kept)) == 9, "ratio 0.25: 12 -> 9 channels (%s)" % kept)
    # features of the consumer: ReLU(conv1(x)) on the calibration data, plus 1
    sess_feat = helper.make_graph(g.node[:2], "f", g.input, [helper.make_tensor_value_info("ar", TensorProto.FLOAT, None)],
                                  initializer=[T("w1", w1), T("b1", b1)])
    fp = os.path.join(TMP, "ls_feat.onnx")
    onnx.save(helper.make_model(sess_feat, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), fp)
    f = run(fp, {"x": xc})[0].astype(np.float64)
    X = np.concatenate([f.transpose(0, 2, 3, 1).reshape(-1, 12), np.ones((f.shape[0] * 64, 1))], axis=1)
    H = X.T @ X / len(X)
    S = kept + [12]
    Wa = np.concatenate([w2[:, :, 0, 0], b2[:, None]], axis=1)
    lam = (0.01 + 13 / len(X)) * np.mean(np.diag(H)[kept])  # damp, plus features per row
    Z = np.linalg.solve(H[np.ix_(S, S)] + lam * np.eye(len(S)), H[S] @ Wa.T + lam * Wa[:, S].T)
    got = np.concatenate([w2p[:, :, 0, 0], b2p[:, None]], axis=1)
    check(np.allclose(got, Z.T, rtol=1e-3, atol=1e-4),
          "consumer weights and bias equal the numpy least-squares solution (max diff %.2e)" % np.max(np.abs(got - Z.T)))
    yl, yr = run(src, {"x": xe})[0], run(dst, {"x": xe})[0]
    check(yr.shape == (64, 6, 8, 8), "the reconstructed model runs in ONNX Runtime with the right shape")
    Wplain = Wa.copy(); Wplain[:, [c for c in range(12) if c not in kept]] = 0
    fe = run(fp, {"x": xe})[0].astype(np.float64)
    Xe = np.concatenate([fe.transpose(0, 2, 3, 1).reshape(-1, 12), np.ones((fe.shape[0] * 64, 1))], axis=1)
    e_pl = np.mean((Xe @ (Wa - Wplain).T) ** 2)
    e_ls = np.mean((yl - yr) ** 2)
    print("   1x1 consumer, 12 -> 9 inputs: held-out MSE %.4f plain removal, %.4f least squares" % (e_pl, e_ls))
    check(e_ls < 0.5 * e_pl, "least squares beats plain removal on held-out data by 2x")

    # per-layer counts follow importance: group A has 4 channels its consumer
    # barely uses, group B none; 25% of 16 channels = 4, all from A (cap 50%)
    wa = rr.normal(size=(8, 3, 1, 1)); wb = rr.normal(size=(8, 3, 1, 1))
    wca = rr.normal(size=(4, 8, 1, 1)); wca[:, 4:] *= 0.01
    wcb = rr.normal(size=(4, 8, 1, 1))
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "wa"], ["a"], name="A"), helper.make_node("Relu", ["a"], ["ar"]),
         helper.make_node("Conv", ["x", "wb"], ["b"], name="B"), helper.make_node("Relu", ["b"], ["br"]),
         helper.make_node("Conv", ["ar", "wca"], ["ya"], name="CA"),
         helper.make_node("Conv", ["br", "wcb"], ["yb"], name="CB"),
         helper.make_node("Add", ["ya", "yb"], ["y"])],
        "imp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
        initializer=[T("wa", wa), T("wb", wb), T("wca", wca), T("wcb", wcb)])
    src = os.path.join(TMP, "imp.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    dst = os.path.join(TMP, "imp_rec.onnx")
    r4 = prune(src, dst, "--calib", calib, "-q", "--passes",
               "prune-channel{ratio=0.25,criterion=energy,reconstruct=true,max-ratio=0.5}")
    md = onnx.load(dst)
    ms = {t.name: numpy_helper.to_array(t) for t in md.graph.initializer}
    nd = {n.name: n for n in md.graph.node}
    ka, kb = ms[nd["A"].input[1]].shape[0], ms[nd["B"].input[1]].shape[0]
    check(r4.returncode == 0 and (ka, kb) == (4, 8), "global allocation by measured importance: A 8 -> %d, B 8 -> %d" % (ka, kb))
    kept_a = sorted(int(np.argmin(np.abs(wa - f).sum(axis=(1, 2, 3)))) for f in ms[nd["A"].input[1]])
    check(kept_a == [0, 1, 2, 3], "the channels A's consumer barely reads are the ones removed (%s)" % kept_a)
    # the default cap (R + 0.1 = 35%: 2 of 8) sends the other 2 to B
    dst = os.path.join(TMP, "imp_capped.onnx")
    r6 = prune(src, dst, "--ratio", "0.25", "--calib", calib, "-q")
    md = onnx.load(dst)
    ms = {t.name: numpy_helper.to_array(t) for t in md.graph.initializer}
    nd = {n.name: n for n in md.graph.node}
    check(r6.returncode == 0 and (ms[nd["A"].input[1]].shape[0], ms[nd["B"].input[1]].shape[0]) == (6, 6),
          "the per-group cap holds: A loses at most 35%% (%s)" % (r6.stderr.strip()[-200:],))
    dst = os.path.join(TMP, "imp_uniform.onnx")
    r5 = prune(src, dst, "--ratio", "0.25", "-q")
    md = onnx.load(dst)
    ms = {t.name: numpy_helper.to_array(t) for t in md.graph.initializer}
    nd = {n.name: n for n in md.graph.node}
    check(r5.returncode == 0 and (ms[nd["A"].input[1]].shape[0], ms[nd["B"].input[1]].shape[0]) == (6, 6),
          "without data: the same share from each group (8 -> 6, 8 -> 6)")

    # an MLP of MatMul + Add: the bias the least squares re-solves is the Add's
    w1 = rr.normal(size=(6, 16)); c1 = rr.normal(size=16)
    w2 = rr.normal(size=(16, 4)); c2 = rr.normal(size=4)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1"),
         helper.make_node("Add", ["h0", "c1"], ["h1"], name="fc1_bias"),
         helper.make_node("Relu", ["h1"], ["h"], name="act"),
         helper.make_node("MatMul", ["h", "w2"], ["y0"], name="fc2"),
         helper.make_node("Add", ["y0", "c2"], ["y"], name="fc2_bias")],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        initializer=[T("w1", w1), T("c1", c1), T("w2", w2), T("c2", c2)])
    src = os.path.join(TMP, "mlp.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    mcal = os.path.join(TMP, "mlp_calib")
    os.makedirs(mcal, exist_ok=True)
    base = rr.normal(size=(256, 2))
    xm = np.concatenate([base, base @ rr.normal(size=(2, 4)) + 0.1 * rr.normal(size=(256, 4))], 1).astype(np.float32)
    np.save(os.path.join(mcal, "x.npy"), xm[:128])
    outs = {}
    for name, extra in (("plain", ["--no-reconstruct"]), ("rec", [])):
        dst = os.path.join(TMP, "mlp_%s.onnx" % name)
        r7 = prune(src, dst, "--ratio", "0.5", "--calib", mcal, "-q", *extra)
        check(r7.returncode == 0, "MLP (MatMul + Add) %s pruning runs: %s" % (name, r7.stderr.strip()[-200:]))
        outs[name] = run(dst, {"x": xm[128:]})[0]
    md = onnx.load(os.path.join(TMP, "mlp_rec.onnx"))
    ms = {t.name: numpy_helper.to_array(t) for t in md.graph.initializer}
    nd = {n.name: n for n in md.graph.node}
    check(ms[nd["fc2"].input[1]].shape == (8, 4) and outs["rec"].shape == (128, 4),
          "MLP: fc2 reads 8 of 16 hidden units, output [128, 4] in ONNX Runtime")
    check(not np.allclose(ms[nd["fc2_bias"].input[1]], c2), "MLP: the Add after fc2 carries the re-solved bias")
    ref = run(src, {"x": xm[128:]})[0]
    ep, er = np.mean((outs["plain"] - ref) ** 2), np.mean((outs["rec"] - ref) ** 2)
    print("   MLP 16 -> 8 hidden: held-out MSE %.4f plain removal, %.4f reconstructed" % (ep, er))
    check(er < 0.5 * ep, "MLP: reconstruction at least halves the held-out error")


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

    reconstruction_checks()

    sys.exit(tally())


if __name__ == "__main__":
    main()
