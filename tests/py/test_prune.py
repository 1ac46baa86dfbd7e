"""hpcz prune checked with numpy and ONNX Runtime: exact sparsity per layer,
one global threshold, the N:M pattern along the reduction axis, weights in
Constant nodes, pipes (prune | quantize), and the pruned models run.

Usage: python test_prune.py HPCZ SOURCE_ROOT
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from harness import HPCZ, ROOT, check, tally

TMP = tempfile.mkdtemp(prefix="hpcz-prune-")
S = os.path.join(ROOT, "samples")
X = np.load(os.path.join(S, "digits", "test_input.npy"))
Y = np.load(os.path.join(S, "digits", "test_labels.npy"))


def prune(src, name, *args):
    dst = os.path.join(TMP, name)
    r = subprocess.run([HPCZ, "prune", src, "-o", dst, "-q", *args], capture_output=True, text=True)
    if r.returncode:
        print(r.stderr)
    return dst


def weights(path):
    m = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            inits[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    out = {}
    for n in m.graph.node:
        if n.op_type in ("Conv", "Gemm", "MatMul") and n.input[1] in inits:
            out[n.name] = (n, inits[n.input[1]])
    return out


def accuracy(path):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    o = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, {"input": X})[0]
    return 100 * np.mean(o.argmax(1) == Y)


def main():
    cnn = os.path.join(S, "digits_cnn.onnx")
    orig = weights(cnn)
    out = prune(cnn, "l50.onnx", "--sparsity", "0.5")
    w = weights(out)
    for name, (n, arr) in w.items():
        k = int(np.floor(0.5 * arr.size))
        zeros = int(np.sum(arr == 0))
        check(zeros == k, "per layer: %s has exactly %d zeros (got %d)" % (name, k, zeros))
        # the zeros are the smallest magnitudes of the original
        o = orig[name][1].ravel()
        kept = np.abs(o[arr.ravel() != 0])
        dropped = np.abs(o[arr.ravel() == 0])
        check(kept.min() >= dropped.max(), "per layer: %s zeroed its smallest weights" % name)
        check(np.array_equal(arr.ravel()[arr.ravel() != 0], o[arr.ravel() != 0]), "%s: kept weights unchanged" % name)
    acc = accuracy(out)
    print("   digits_cnn 50%% per layer: top-1 %.2f%%" % acc)

    out = prune(cnn, "g70.onnx", "--sparsity", "0.7", "--scope", "global")
    w = weights(out)
    allw = np.concatenate([orig[k][1].ravel() for k in w])
    pruned = np.concatenate([w[k][1].ravel() for k in w])
    check(np.sum(pruned == 0) == int(np.floor(0.7 * allw.size)), "global: exactly 70% of all weights are zero")
    thr = np.abs(allw[pruned == 0]).max()
    check(np.abs(allw[pruned != 0]).min() >= thr, "global: one threshold across every layer")
    print("   digits_cnn 70%% global: top-1 %.2f%%" % accuracy(out))

    mlp = os.path.join(S, "digits_mlp.onnx")
    out = prune(mlp, "nm.onnx", "--method", "nm", "--pattern", "2:4")
    for name, (n, arr) in weights(out).items():
        trans_b = any(a.name == "transB" and a.i == 1 for a in n.attribute)
        k_major = arr if trans_b else arr.T  # rows = outputs, columns = reduction axis
        groups = k_major.reshape(k_major.shape[0], -1, 4)
        check(np.all(np.sum(groups != 0, axis=2) <= 2), "2:4: %s keeps at most 2 of every 4 along K" % name)
        check(np.sum(arr == 0) == arr.size // 2, "2:4: %s is exactly 50%% sparse" % name)
    print("   digits_mlp 2:4: top-1 %.2f%%" % accuracy(out))

    cw = os.path.join(S, "patterns", "const_weights.onnx")
    out = prune(cw, "cw.onnx", "--sparsity", "0.5")
    w = weights(out)
    check(len(w) == 3 and all(np.sum(a == 0) == a.size // 2 for _, a in w.values()),
          "weights in Constant nodes are pruned")

    # pipes: prune | quantize, nothing but the model on stdout
    p1 = subprocess.Popen([HPCZ, "prune", "-", "-o", "-", "-q", "--sparsity", "0.5"], stdin=open(mlp, "rb"),
                          stdout=subprocess.PIPE)
    r = subprocess.run([HPCZ, "quantize", "-", "-o", os.path.join(TMP, "pq.onnx"), "-q"], stdin=p1.stdout,
                       capture_output=True)
    p1.wait()
    check(p1.returncode == 0 and r.returncode == 0, "hpcz prune - -o - | hpcz quantize - -o x.onnx")
    onnx.checker.check_model(os.path.join(TMP, "pq.onnx"), full_check=True)
    print("   digits_mlp 50%% + int8: top-1 %.2f%%" % accuracy(os.path.join(TMP, "pq.onnx")))

    # --reconstruct: the targets against plain magnitude at the same sparsity
    calib = os.path.join(S, "digits", "calib")
    so = ort.SessionOptions()
    so.log_severity_level = 3
    ref = ort.InferenceSession(cnn, so, providers=["CPUExecutionProvider"]).run(None, {"input": X})[0]

    def sq(path):
        o = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, {"input": X})[0]
        return 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - o).astype(np.float64) ** 2))

    base = accuracy(cnn)
    for label, args in (("50% unstructured", ["--sparsity", "0.5"]), ("2:4", ["--method", "nm", "--pattern", "2:4"])):
        plain = prune(cnn, "plain.onnx", "--fold-bn", *args)
        rec = prune(cnn, "rec.onnx", "--fold-bn", "--reconstruct", "--calib", calib, *args)
        a_plain, a_rec, s_plain, s_rec = accuracy(plain), accuracy(rec), sq(plain), sq(rec)
        print("   %s: magnitude %.2f%% / %.1f dB, reconstructed %.2f%% / %.1f dB (float %.2f%%)"
              % (label, a_plain, s_plain, a_rec, s_rec, base))
        check(base - a_rec <= 1.0, "--reconstruct %s: top-1 drop %.2f <= 1 point" % (label, base - a_rec))
        check(s_rec >= s_plain + 10, "--reconstruct %s: SQNR %.1f dB >= magnitude's %.1f + 10" % (label, s_rec, s_plain))
        w = weights(rec)
        if label == "2:4":
            check(all(np.sum(a == 0) >= a.size // 2 for n, a in w.values() if n.op_type == "Gemm"),
                  "reconstructed 2:4 keeps the pattern's sparsity")
    rec80 = prune(cnn, "rec80.onnx", "--fold-bn", "--reconstruct", "--calib", calib, "--sparsity", "0.8")
    print("   80%% unstructured reconstructed: %.2f%% / %.1f dB" % (accuracy(rec80), sq(rec80)))
    # sensitivity table (JSON) and a parameter budget chosen from it
    sj = os.path.join(TMP, "sens.json")
    r = subprocess.run([HPCZ, "prune", cnn, "--sensitivity", "--calib", calib, "--json-file", sj], capture_output=True, text=True)
    check(r.returncode == 0, "--sensitivity runs")
    import json as _json
    doc = _json.load(open(sj))
    check(doc["schema"] == "hpcz.sensitivity" and len(doc["layers"]) == 5 and
          all(l["sqnr_db"][0] > l["sqnr_db"][-1] for l in doc["layers"]),
          "sensitivity: every layer loses more SQNR at 90% than at 25%")
    tp = os.path.join(TMP, "target.onnx")
    r = subprocess.run([HPCZ, "prune", cnn, "-o", tp, "--target-params", "4000", "--calib", calib, "-q"],
                       capture_output=True, text=True)
    nz = sum(int(np.count_nonzero(numpy_helper.to_array(t))) for t in onnx.load(tp).graph.initializer)
    check(r.returncode == 0 and nz <= 4000, "--target-params 4000 leaves %d non-zeros" % nz)
    print("   --target-params 4000: top-1 %.2f%%" % accuracy(tp))
    r = subprocess.run([HPCZ, "prune", cnn, "-o", os.path.join(TMP, "x.onnx"), "--reconstruct"], capture_output=True, text=True)
    check(r.returncode == 2 and "calibration data" in r.stderr, "--reconstruct without data: usage error")

    chain_checks()

    # --reconstruct on a model whose only layer sits in an If branch (silero-vad's form): nothing
    # can be measured there, so it prunes by magnitude and says so (it failed: "no layer could
    # be reconstructed")
    ifm = os.path.join(S, "patterns", "if_subgraph.onnx")
    out = os.path.join(TMP, "if_rec.onnx")
    r = subprocess.run([HPCZ, "prune", ifm, "-o", out, "--sparsity", "0.5", "--reconstruct", "--calib", "random:8"],
                       capture_output=True, text=True)
    m = onnx.load(out) if r.returncode == 0 else None
    w = [numpy_helper.to_array(t) for t in m.graph.initializer if t.name.startswith("W")] if m else []
    check(r.returncode == 0 and "pruned by magnitude instead" in r.stderr and w and np.mean(w[0] == 0) == 0.5,
          "--reconstruct with every layer in an If branch: magnitude pruning, said on stderr (%s)"
          % r.stderr.strip().splitlines()[:1])

    if_body_checks()
    loop_body_check()

    sys.exit(tally())


def if_model(path, rng):
    """x [N, 4, 32] and a scalar sr (silero-vad's form): If(sr == 16000) picks
    one of two branches, each Mul -> Conv -> Relu -> MatMul -> Relu ->
    Flatten -> Gemm with weights of its own (the else branch's Conv has
    stride 2)."""
    from onnx import TensorProto, helper

    def branch(p, stride):
        def w(*shape):
            a = rng.normal(size=shape) / np.sqrt(np.prod(shape[1:]))
            return numpy_helper.from_array(a.astype(np.float32), "%s_w%d" % (p, len(shape)))
        wc, wm, wg = w(8, 4, 3), w((32 - 1) // stride + 1, 16), w(10, 8 * 16)
        wm.name, wg.name = p + "_wm", p + "_wg"
        bc = numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), p + "_bc")
        bg = numpy_helper.from_array(rng.normal(0, 0.1, 10).astype(np.float32), p + "_bg")
        nodes = [
            helper.make_node("Constant", [], [p + "_k"], value=numpy_helper.from_array(np.array(0.5, np.float32)),
                             name=p + "_k"),
            helper.make_node("Mul", ["x", p + "_k"], [p + "_xs"], name=p + "_scale"),
            helper.make_node("Conv", [p + "_xs", wc.name, bc.name], [p + "_c"], pads=[1, 1], strides=[stride],
                             name=p + "_conv"),
            helper.make_node("Relu", [p + "_c"], [p + "_cr"], name=p + "_relu1"),
            helper.make_node("MatMul", [p + "_cr", wm.name], [p + "_m"], name=p + "_matmul"),
            helper.make_node("Relu", [p + "_m"], [p + "_mr"], name=p + "_relu2"),
            helper.make_node("Flatten", [p + "_mr"], [p + "_f"], name=p + "_flatten"),
            helper.make_node("Gemm", [p + "_f", wg.name, bg.name], [p + "_y"], transB=1, name=p + "_gemm"),
        ]
        return helper.make_graph(nodes, p, [], [helper.make_tensor_value_info(p + "_y", TensorProto.FLOAT, None)],
                                 [wc, bc, wm, wg, bg])
    g = helper.make_graph(
        [helper.make_node("Constant", [], ["sr16k"], value=numpy_helper.from_array(np.array(16000, np.int64)),
                          name="sr16k"),
         helper.make_node("Equal", ["sr", "sr16k"], ["is16k"], name="is16k"),
         helper.make_node("If", ["is16k"], ["y"], name="pick", then_branch=branch("then", 1),
                          else_branch=branch("else", 2))],
        "if_layers", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 32]),
                      helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)


def branch_weights(path):
    """{initializer name: array} of both If branches"""
    m = onnx.load(path)
    out = {}
    for a in [n for n in m.graph.node if n.op_type == "If"][0].attribute:
        out.update({t.name: numpy_helper.to_array(t) for t in a.g.initializer})
    return out


def if_body_checks():
    """--reconstruct and GPTQ measure the layers of the If branch the
    calibration data takes (every calibration sample has sr = 16000): on
    held-out data the reconstructed then-branch is far closer to the unpruned
    model than magnitude pruning (ONNX Runtime runs all three), the else
    branch no sample runs is pruned by magnitude (the same weights, the same
    outputs at sr = 8000) and the log says so per layer; the bytes are the
    same twice."""
    rng = np.random.default_rng(3)
    src = os.path.join(TMP, "if_layers.onnx")
    if_model(src, rng)

    def signals(n):  # 4 channels mixed from 2 smooth sources: a Gram matrix far from diagonal
        t = np.cumsum(rng.normal(size=(n, 2, 32)), axis=2) / 4
        mix = np.array([[1, 0.2], [0.8, 0.5], [0.1, 1], [0.6, -0.7]], np.float32)
        return (np.einsum("cs,nsl->ncl", mix, t) + 0.05 * rng.normal(size=(n, 4, 32))).astype(np.float32)
    calib = os.path.join(TMP, "if_calib")
    os.makedirs(calib, exist_ok=True)
    np.save(os.path.join(calib, "x.npy"), signals(64))
    np.save(os.path.join(calib, "sr.npy"), np.full(64, 16000, np.int64))
    held = signals(64)

    def outputs(path, sr):
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return np.concatenate([s.run(None, {"x": held[i:i + 1], "sr": np.array(sr, np.int64)})[0]
                               for i in range(len(held))])

    def sqnr(a, b):
        return 10 * np.log10(np.sum(a.astype(np.float64) ** 2) / np.sum((a - b) ** 2))

    rec, mag = os.path.join(TMP, "if_rec.onnx"), prune(src, "if_mag.onnx", "--sparsity", "0.5")
    r = subprocess.run([HPCZ, "prune", src, "-o", rec, "--sparsity", "0.5", "--reconstruct", "--calib", calib, "-v"],
                       capture_output=True, text=True)
    if not check(r.returncode == 0, "--reconstruct on layers inside If branches%s"
                 % ("" if r.returncode == 0 else ": " + r.stderr.strip()[-300:])):
        return
    log = r.stderr
    check(all("'%s_%s'" % (b, op) in log and ("reconstructed from" if b == "then" else "no calibration sample runs "
                                                "it: pruned by magnitude") in
              [ln for ln in log.splitlines() if "'%s_%s'" % (b, op) in ln][0]
              for b in ("then", "else") for op in ("conv", "matmul", "gemm")),
          "the then-branch Conv, MatMul and Gemm are reconstructed, the else branch's pruned by magnitude, "
          "each said in the log")
    wr, wm = branch_weights(rec), branch_weights(mag)
    check(all(abs(np.mean(wr[k] == 0) - 0.5) < 0.01 for k in wr if k.endswith(("_w3", "_wm", "_wg"))) and
          len([k for k in wr if k.endswith(("_w3", "_wm", "_wg"))]) == 6,
          "every branch layer is 50%% sparse (%s)" % {k: round(float(np.mean(v == 0)), 3) for k, v in wr.items()})
    check(all(np.array_equal(wr[k], wm[k]) for k in wr if k.startswith("else_")),
          "the else branch holds magnitude pruning's weights exactly")
    ref16, ref8 = outputs(src, 16000), outputs(src, 8000)
    s_rec, s_mag = sqnr(ref16, outputs(rec, 16000)), sqnr(ref16, outputs(mag, 16000))
    check(s_rec >= s_mag + 6, "held-out data, the branch taken: reconstructed %.1f dB >= magnitude's %.1f + 6 "
          "(ONNX Runtime)" % (s_rec, s_mag))
    check(np.array_equal(outputs(rec, 8000), outputs(mag, 8000)),
          "the branch never taken: the same outputs as magnitude pruning (%.1f dB)" % sqnr(ref8, outputs(mag, 8000)))
    again = prune(src, "if_rec_again.onnx", "--sparsity", "0.5", "--reconstruct", "--calib", calib)
    check(open(rec, "rb").read() == open(again, "rb").read(), "--reconstruct in If branches: the same bytes twice")

    # GPTQ on the same data: the taken branch with error compensation, the
    # other by round-to-nearest (said), closer than round-to-nearest alone
    def quantize(name, *args):
        dst = os.path.join(TMP, name)
        q = subprocess.run([HPCZ, "quantize", src, "-o", dst, "--dtype", "int4", "-v", *args],
                           capture_output=True, text=True)
        return (dst if q.returncode == 0 else None), q.stderr
    gq, glog = quantize("if_gptq.onnx", "--algo", "gptq", "--calib", calib)
    rq, _ = quantize("if_rtn.onnx", "--algo", "rtn")
    if not check(gq and rq, "int4 GPTQ and round-to-nearest of the If model"):
        return
    # fitted on the first three quarters of the samples (384 rows), checked on the rest
    check(all(("from 384 input rows" if b == "then" else "no calibration sample runs it: round-to-nearest") in
              [ln for ln in glog.splitlines() if "'%s_matmul'" % b in ln][-1] for b in ("then", "else")),
          "GPTQ: the then-branch MatMul from its inputs' Gram matrix, the else branch's by round-to-nearest, "
          "said in the log")
    s_g, s_r = sqnr(ref16, outputs(gq, 16000)), sqnr(ref16, outputs(rq, 16000))
    check(s_g >= s_r + 5, "GPTQ in the branch taken: %.1f dB >= round-to-nearest's %.1f + 5" % (s_g, s_r))
    check(np.array_equal(outputs(gq, 8000), outputs(rq, 8000)),
          "GPTQ, the branch never taken: round-to-nearest's outputs")
    g2, _ = quantize("if_gptq_again.onnx", "--algo", "gptq", "--calib", calib)
    check(g2 and open(gq, "rb").read() == open(g2, "rb").read(), "GPTQ in If branches: the same bytes twice")


def loop_body_check():
    """A MatMul inside a Loop body (3 iterations, reading the carried state
    through a Mul of its body): measured over every iteration (3 input rows
    per sample) and reconstructed, closer to the unpruned model than
    magnitude pruning in ONNX Runtime."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array((rng.normal(size=(16, 16)) / 4).astype(np.float32), "W")
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="cond"),
         helper.make_node("Mul", ["s", "k"], ["r"], name="scale"),
         helper.make_node("MatMul", ["r", "W"], ["y"], name="body_matmul"),
         helper.make_node("Tanh", ["y"], ["s_out"], name="tanh")], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_out", TensorProto.FLOAT, None)],
        [w, numpy_helper.from_array(np.array(0.9, np.float32), "k")])
    g = helper.make_graph(
        [helper.make_node("Constant", [], ["M"], value=numpy_helper.from_array(np.array(3, np.int64)), name="M"),
         helper.make_node("Constant", [], ["c0"], value=numpy_helper.from_array(np.array(True)), name="c0"),
         helper.make_node("Loop", ["M", "c0", "x"], ["z"], body=body, name="loop")], "loop",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    src = os.path.join(TMP, "loop_layer.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), src)
    calib = os.path.join(TMP, "loop_calib")
    os.makedirs(calib, exist_ok=True)
    mix = rng.normal(size=(2, 16))
    x = (rng.normal(size=(64, 2)) @ mix + 0.05 * rng.normal(size=(64, 16))).astype(np.float32)
    held = (rng.normal(size=(64, 2)) @ mix + 0.05 * rng.normal(size=(64, 16))).astype(np.float32)
    np.save(os.path.join(calib, "x.npy"), x)
    rec = os.path.join(TMP, "loop_rec.onnx")
    r = subprocess.run([HPCZ, "prune", src, "-o", rec, "--sparsity", "0.5", "--reconstruct", "--calib", calib, "-v"],
                       capture_output=True, text=True)
    # 48 of the 64 samples fitted on, the last quarter held out for the check
    if not check(r.returncode == 0 and "reconstructed from 144 input rows" in r.stderr,
                 "--reconstruct measures a Loop body's MatMul over its 3 iterations (%s)"
                 % [ln for ln in r.stderr.splitlines() if "input rows" in ln][:1]):
        return
    mag = prune(src, "loop_mag.onnx", "--sparsity", "0.5")

    def out(path):
        return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": held})[0]
    ref = out(src)
    s_rec, s_mag = (10 * np.log10(np.sum(ref ** 2) / np.sum((ref - out(p)) ** 2)) for p in (rec, mag))
    check(s_rec >= s_mag + 1.5, "Loop body, held-out data: reconstructed %.1f dB >= magnitude's %.1f + 1.5"
          % (s_rec, s_mag))


def chain(n, bn):
    """n MatMul (or Conv + BatchNormalization) layers in a row."""
    from onnx import TensorProto, helper
    nodes, inits, prev = [], [], "x"
    for i in range(n):
        if bn:
            inits.append(numpy_helper.from_array(np.full((2, 2, 1, 1), 0.5, np.float32), "w%d" % i))
            inits += [numpy_helper.from_array(np.full(2, v, np.float32), "%s%d" % (p, i))
                      for p, v in (("s", 1.0), ("b", 0.0), ("m", 0.0), ("v", 1.0))]
            nodes.append(helper.make_node("Conv", [prev, "w%d" % i], ["c%d" % i], name="conv%d" % i))
            nodes.append(helper.make_node("BatchNormalization", ["c%d" % i] + ["%s%d" % (p, i) for p in "sbmv"],
                                          ["y%d" % i], name="bn%d" % i))
        else:
            inits.append(numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(4, 4) / 16, "w%d" % i))
            nodes.append(helper.make_node("MatMul", [prev, "w%d" % i], ["y%d" % i], name="mm%d" % i))
        prev = "y%d" % i
    shape = [1, 2, 2, 2] if bn else [1, 4]
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, shape)], inits)
    path = os.path.join(TMP, "chain%d%s.onnx" % (n, "bn" if bn else ""))
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def chain_checks():
    """Issue 12: pruning and quantization were quadratic in the layer count
    (every weight asked the whole model whether it was shared, every added
    node compared its name with every node; in a release build 20k layers
    took 8 s to prune and 51 s to quantize, 10k Conv+BN 3 s). Time grows about
    linearly now: 4x the layers must take well under 16x the time (the
    quadratic code took 25-30x)."""
    import time
    for cmd, bn, extra in (("prune", False, ["--sparsity", "0.5"]), ("prune", True, ["--sparsity", "0.5"]),
                           ("quantize", False, []), ("quantize", True, [])):
        t = []
        what = "%s of a chain%s" % (cmd, " of Conv+BN" if bn else "")
        for n in (2000, 8000):
            src = chain(n, bn)
            t0 = time.perf_counter()
            r = subprocess.run([HPCZ, cmd, src, "-o", os.path.join(TMP, "chain_out.onnx"), "-q", *extra],
                               capture_output=True, text=True)
            t.append(time.perf_counter() - t0)
            check(r.returncode == 0, "%s: %d layers" % (what, n))
        check(t[1] < 8 * t[0] + 0.5, "%s: 4x the layers in %.2f s vs %.2f s (under 8x)" % (what, t[1], t[0]))


if __name__ == "__main__":
    main()
