"""hpcz quantize checked through an independent runtime (ONNX Runtime) and
checker (onnx.checker with full shape inference): accuracy and logit SQNR on
the digits test split, determinism, weights in Constant nodes and subgraphs,
opset upgrades, and float16 conversion that survives values outside float16's
range where a naive cast breaks the model.

Usage: python test_quantize.py HPCZ SOURCE_ROOT
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from harness import HPCZ, ROOT, check, hpcz, session, tally, ort_optimized_ops, sqnr

TMP = tempfile.mkdtemp(prefix="hpcz-quant-")
SAMPLES = os.path.join(ROOT, "samples")
X = np.load(os.path.join(SAMPLES, "digits", "test_input.npy"))
Y = np.load(os.path.join(SAMPLES, "digits", "test_labels.npy"))


def quantize(src, name, *args):
    dst = os.path.join(TMP, name)
    r = subprocess.run([HPCZ, "quantize", src, "-o", dst, "-q", *args], capture_output=True, text=True)
    if r.returncode:
        print(r.stderr)
    return dst if r.returncode == 0 else None


def run(path, feeds):
    return session(path).run(None, feeds)


def digits(model, name, args, max_drop, min_sqnr, fp16_io=False):
    src = os.path.join(SAMPLES, model)
    out = quantize(src, name, *args)
    check(out is not None, "%s %s: hpcz quantize succeeds" % (model, " ".join(args)))
    if not out:
        return
    onnx.checker.check_model(out, full_check=True)
    ref = run(src, {"input": X})[0]
    got = run(out, {"input": X.astype(np.float16) if fp16_io else X})[0].astype(np.float32)
    acc_ref = 100 * np.mean(ref.argmax(1) == Y)
    acc = 100 * np.mean(got.argmax(1) == Y)
    s = sqnr(ref, got)
    print("   %s %s: top-1 %.2f%% (float %.2f%%), logit SQNR %.1f dB, %d bytes"
          % (model, " ".join(args), acc, acc_ref, s, os.path.getsize(out)))
    check(acc_ref - acc <= max_drop, "%s %s: top-1 drop %.2f <= %.2f points" % (model, " ".join(args), acc_ref - acc, max_drop))
    check(s >= min_sqnr, "%s %s: logit SQNR %.1f >= %.1f dB" % (model, " ".join(args), s, min_sqnr))
    return out


def dynamic_checks():
    # default: uint8 weights with a zero point per column (ORT's u8*u8 kernels
    # do not saturate): ORT's best quantize_dynamic anchor reaches 48.2 dB here
    digits("digits_mlp.onnx", "mlp_dynamic.onnx", ["--mode", "dynamic"], 0.0, 47)
    m = onnx.load(os.path.join(TMP, "mlp_dynamic.onnx"))
    ops = {n.op_type for n in m.graph.node}
    check({"DynamicQuantizeLinear", "MatMulInteger"} <= ops and "Gemm" not in ops,
          "dynamic: every Gemm became DynamicQuantizeLinear + MatMulInteger")
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    mmi = [n for n in m.graph.node if n.op_type == "MatMulInteger"]
    w, z = inits[mmi[0].input[1]], inits[mmi[0].input[3]]
    check(w.dtype == np.uint8 and z.dtype == np.uint8 and z.shape == (w.shape[1],) and len(set(z.tolist())) > 1,
          "dynamic: uint8 weights, one zero point per column")
    # int8 weights stay available, reduced to [-64, 64] by default
    digits("digits_mlp.onnx", "mlp_dynamic_s8.onnx", ["--mode", "dynamic", "--weight-dtype", "int8"], 0.5, 40)
    m = onnx.load(os.path.join(TMP, "mlp_dynamic_s8.onnx"))
    ws = [numpy_helper.to_array(i) for i in m.graph.initializer if i.name.endswith("weight_quantized")]
    check(ws and all(w.dtype == np.int8 and w.min() >= -64 and w.max() <= 64 for w in ws),
          "dynamic --weight-dtype int8: int8 weights within [-64, 64]")
    # hpcz's runtime runs both forms with its integer kernel (MatMulInteger
    # with B packed at plan time: u8s8 for the 7-bit weights, int16 pairs for
    # uint8): the integer sums are exact, so it matches ORT up to float
    # rounding in the scale multiplies
    for name in ("mlp_dynamic.onnx", "mlp_dynamic_s8.onnx"):
        path, out = os.path.join(TMP, name), os.path.join(TMP, name + ".run")
        r = subprocess.run([HPCZ, "run", path, "--input", "input=" + os.path.join(SAMPLES, "digits", "test_input.npy"),
                            "-o", out, "-q"], capture_output=True, text=True)
        check(r.returncode == 0, "hpcz run %s: %s" % (name, r.stderr.strip()))
        if r.returncode == 0:
            got, ref = np.load(os.path.join(out, "logits.npy")), run(path, {"input": X})[0]
            err = float(np.abs(got - ref).max() / np.abs(ref).max())
            check(err < 1e-5, "hpcz run vs ORT on %s: max |diff| / max |ref| %.2g < 1e-5" % (name, err))


def shared_bias_check():
    # exporters share one bias between convolutions (torch's resnet18 does):
    # each gets its own int32 bias, and every node name stays unique
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=(4, 4, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "shared_bias")]
    nodes = [helper.make_node("Conv", ["x", "w1", "shared_bias"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["b"], name="relu"),
             helper.make_node("Conv", ["b", "w2", "shared_bias"], ["y"], name="conv2", pads=[1, 1, 1, 1])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], initializer=inits)
    src = os.path.join(TMP, "shared_bias.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    out = quantize(src, "shared_bias_s8.onnx", "--mode", "static", "--calib", "random:8", "--placement", "all")
    names = [n.name for n in onnx.load(out).graph.node]
    check(len(names) == len(set(names)), "static int8 with a shared bias: node names unique")
    x = rng.normal(size=(1, 3, 8, 8)).astype(np.float32)
    check(sqnr(run(src, {"x": x})[0], run(out, {"x": x})[0]) > 25, "ONNX Runtime loads and runs it")


def output_also_read_check():
    # a graph output that int8 ops also read (a decoder's present.N.key, read
    # by its Transpose): the readers keep a producer after the output's name
    # moves to the DequantizeLinear (they read a dangling value before)
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=(4, 4, 3, 3)).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["present"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["present"], ["t"], name="transpose", perm=[0, 1, 3, 2]),
             helper.make_node("Conv", ["t", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("present", TensorProto.FLOAT, [1, 4, 8, 8]),
                           helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], initializer=inits)
    src = os.path.join(TMP, "output_read.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    out = quantize(src, "output_read_s8.onnx", "--mode", "static", "--calib", "random:8", "--placement", "all")
    check(out is not None, "static int8 of a graph output read by int8 ops succeeds")
    if not out:
        return
    m = onnx.load(out)
    made = {o for n in m.graph.node for o in n.output} | {i.name for i in m.graph.initializer} | {"x"}
    check(all(i in made for n in m.graph.node for i in n.input if i), "every input of every node has a producer")
    onnx.checker.check_model(m, full_check=True)
    x = rng.normal(size=(1, 3, 8, 8)).astype(np.float32)
    ref, got = run(src, {"x": x}), run(out, {"x": x})
    check(min(sqnr(r, o) for r, o in zip(ref, got)) > 25, "ONNX Runtime runs it: both outputs above 25 dB")


def outlier_check():
    # an activation whose calibrated range is set by rare outliers stays float,
    # and the model is better for it than with the outliers' range
    rng = np.random.default_rng(4)
    w = numpy_helper.from_array(rng.normal(size=(64, 16)).astype(np.float32), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])], initializer=[w])
    src = os.path.join(TMP, "outliers.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    cal = os.path.join(TMP, "outlier_calib")
    os.makedirs(cal, exist_ok=True)
    x = rng.normal(size=(256, 64)).astype(np.float32)
    x[7, 3] = 5000.0  # one value in 16384
    np.save(os.path.join(cal, "x.npy"), x)
    r = subprocess.run([HPCZ, "quantize", src, "-o", os.path.join(TMP, "o1.onnx"), "--mode", "static", "--calib", cal, "-v",
                        "--placement", "all"],
                       capture_output=True, text=True)
    check(r.returncode == 0 and "outliers dominate" in r.stderr, "an outlier-dominated activation is reported and kept float")
    r = subprocess.run([HPCZ, "quantize", src, "-o", os.path.join(TMP, "o2.onnx"), "--mode", "static", "--calib", cal,
                        "--passes", "quantize-static{outlier-ratio=0,placement=all},dce"], capture_output=True, text=True)
    xt = rng.normal(size=(64, 64)).astype(np.float32)
    ref = run(src, {"x": xt})[0]
    s1, s2 = sqnr(ref, run(os.path.join(TMP, "o1.onnx"), {"x": xt})[0]), sqnr(ref, run(os.path.join(TMP, "o2.onnx"), {"x": xt})[0])
    print("   outlier activation kept float: %.1f dB; quantized to the outliers' range: %.1f dB" % (s1, s2))
    check(s1 > s2 + 10, "keeping it float is better by more than 10 dB")



def placed_weights_checks(cnn, calib, fp16, xs):
    """The layers the latency placement leaves float store float16 weights
    read through a Cast (placed-weights=fp16, the default): ONNX Runtime folds
    the Cast at load (no Cast left, so float kernels on float weights), the
    outputs stay those of float32 weights, the file shrinks, hpcz run gives
    ONNX Runtime's outputs, and the bytes are deterministic."""
    def placed(name, how):
        dst = os.path.join(TMP, name)
        r = subprocess.run([HPCZ, "quantize", cnn, "-o", dst, "--mode", "static", "--calib", calib, "-q",
                            "--passes", "fold-bn,eliminate,quantize-static{min-macs=0,min-macs-per-value=0,placed-weights=%s},dce" % how],
                           capture_output=True, text=True)
        return dst if r.returncode == 0 else print(r.stderr)

    f32, again = placed("placed_f32.onnx", "float"), placed("placed_fp16_again.onnx", "fp16")
    check(f32 and again and open(again, "rb").read() == open(fp16, "rb").read(),
          "placed-weights=fp16 is the default, and the same bytes twice")
    if not f32:
        return
    s16, s32 = os.path.getsize(fp16), os.path.getsize(f32)
    check(s16 < s32, "float16 placed weights: a smaller file (%d < %d bytes)" % (s16, s32))
    onnx.checker.check_model(fp16, full_check=True)
    check("Cast" not in ort_optimized_ops(fp16), "ONNX Runtime folds the Casts of float16 weights at load")
    ref = run(cnn, xs)[0]
    a, b = run(fp16, xs)[0], run(f32, xs)[0]
    check(sqnr(ref, a) > sqnr(ref, b) - 1, "float16 placed weights: %.1f dB from float in ORT (float32 placed "
          "weights %.1f dB; %.1f dB between them)" % (sqnr(ref, a), sqnr(ref, b), sqnr(b, a)))
    np.save(os.path.join(TMP, "placed_x.npy"), xs["input"])
    out = os.path.join(TMP, "placed_run")
    r = subprocess.run([HPCZ, "run", fp16, "--input", "input=" + os.path.join(TMP, "placed_x.npy"), "-o", out, "-q"],
                       capture_output=True, text=True)
    got = np.load(os.path.join(out, os.listdir(out)[0])) if r.returncode == 0 else None
    check(got is not None and sqnr(a, got) > 40,
          "hpcz run on float16 placed weights matches ONNX Runtime (%.1f dB)" % (sqnr(a, got) if got is not None else 0))
    # the placement leaves every op float: the model stays as it was (no float16 weights)
    dst = os.path.join(TMP, "placed_none.onnx")
    subprocess.run([HPCZ, "quantize", cnn, "-o", dst, "--mode", "static", "--calib", calib, "-q"], check=True)
    check(not any(i.data_type == TensorProto.FLOAT16 for i in onnx.load(dst).graph.initializer),
          "no op in int8: the placed layers keep their float32 weights")


def placement_checks():
    # static int8 puts ops in int8 only where ONNX Runtime runs them faster
    # (issue 11 defect 7): checked on the decisions in the written model, not
    # on timings (scripts/bench/ort_latency.py measures those)
    calib = os.path.join(SAMPLES, "digits", "calib")
    cnn = os.path.join(SAMPLES, "digits_cnn.onnx")
    xs = {"input": X[:64]}
    ref = run(cnn, xs)[0]
    # default: digits_cnn is too small (every Conv under 1e6 multiply-adds per sample): stays float, and says so
    dst = os.path.join(TMP, "place_default.onnx")
    r = subprocess.run([HPCZ, "quantize", cnn, "-o", dst, "--mode", "static", "--calib", calib],
                       capture_output=True, text=True)
    m = onnx.load(dst)
    check(r.returncode == 0 and not any(n.op_type == "QuantizeLinear" for n in m.graph.node)
          and "stays float" in r.stderr, "latency placement: a tiny model stays float and the summary says why")
    # without the work floor: the decisions per op
    dst = os.path.join(TMP, "place.onnx")
    r = subprocess.run([HPCZ, "quantize", cnn, "-o", dst, "--mode", "static", "--calib", calib, "-v",
                        "--passes", "fold-bn,eliminate,quantize-static{min-macs=0,min-macs-per-value=0},dce"], capture_output=True, text=True)
    check(r.returncode == 0, "quantize-static{min-macs=0,min-macs-per-value=0} runs")
    m = onnx.load(dst)
    prod = {o: n for n in m.graph.node for o in n.output}
    cons = {}
    for n in m.graph.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    by = {n.name: n for n in m.graph.node}

    def int8(name):  # reads its input 0 through DequantizeLinear
        p = prod.get(by[name].input[0])
        return p is not None and p.op_type == "DequantizeLinear"

    inits = {i.name: i for i in m.graph.initializer}

    def fp16_weight(name):  # placed-weights=fp16 (default): Cast(float16 initializer, to=float)
        p = prod.get(by[name].input[1])
        return (p is not None and p.op_type == "Cast" and p.attribute[0].i == TensorProto.FLOAT
                and p.input[0] in inits and inits[p.input[0]].data_type == TensorProto.FLOAT16)

    check(not int8("/stem/stem.0/Conv") and fp16_weight("/stem/stem.0/Conv"),
          "stem Conv (9 products per output, fed by the float input) stays float with float16 weights")
    check(int8("/res/res.0/Conv"), "3x3 Conv with 144 products per output in int8")
    check(not int8("/Add"), "residual Add with one float input stays float")
    check(not int8("/depthwise/depthwise.0/Conv") and fp16_weight("/depthwise/depthwise.0/Conv"),
          "depthwise Conv fed by a float op stays float with float16 weights")
    check(int8("/pointwise/pointwise.0/Conv") and int8("/pool/MaxPool") and int8("/fc/Gemm"),
          "pointwise Conv, the MaxPool after it and the Gemm in int8")
    outs = [by[k].output[0] for k in ("/res/res.0/Conv", "/pointwise/pointwise.0/Conv")]
    check(all([c.op_type for c in cons.get(o, [])] == ["QuantizeLinear"] for o in outs),
          "an int8 Conv's output goes only to its QuantizeLinear (float readers use the DequantizeLinear)")
    check("depthwise, and its input comes from a float op" in r.stderr, "-v says why an op stays float")
    fused = ort_optimized_ops(dst)
    check(fused.count("QLinearConv") == 2 and "Conv" in fused,
          "ONNX Runtime fuses both int8 Convs into QLinearConv and runs the float ones as Conv")
    check(sqnr(ref, run(dst, xs)[0]) > 30, "placed model close to float (%.1f dB)" % sqnr(ref, run(dst, xs)[0]))
    placed_weights_checks(cnn, calib, dst, xs)
    # --placement all: every Conv in int8, each fused by ORT
    dst = quantize(cnn, "place_all.onnx", "--mode", "static", "--calib", calib, "--placement", "all")
    fused = ort_optimized_ops(dst)
    check(fused.count("QLinearConv") == 4 and "Conv" not in fused, "--placement all: every Conv a QLinearConv")
    # a Conv whose only reader is a float op (no QDQ support) still gets its
    # output quantized, or ORT would run it in float with weights dequantized every run
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.normal(size=(32, 16, 3, 3)).astype(np.float32) * 0.1, "W")
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("HardSwish", ["c"], ["y"], name="hs")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16, 32, 32])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32, 32, 32])], initializer=[w])
    src = os.path.join(TMP, "conv_hswish.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    cal = os.path.join(TMP, "hs_calib")
    os.makedirs(cal, exist_ok=True)
    np.save(os.path.join(cal, "x.npy"), rng.normal(size=(8, 16, 32, 32)).astype(np.float32))
    dst = quantize(src, "conv_hswish_s8.onnx", "--mode", "static", "--calib", cal)
    fused = ort_optimized_ops(dst)
    check("QLinearConv" in fused and "Conv" not in fused,
          "Conv read only by HardSwish: output quantized, ORT runs QLinearConv (%s)" % ",".join(fused))


def gptq_checks():
    calib = os.path.join(SAMPLES, "digits", "calib")
    src = os.path.join(SAMPLES, "digits_mlp.onnx")
    ref = run(src, {"input": X})[0]
    for dtype, extra in (("int4", ["--block-size", "32"]), ("int8", [])):
        rtn = quantize(src, "mlp_rtn_%s.onnx" % dtype, "--dtype", dtype, *extra)
        gq = quantize(src, "mlp_gptq_%s.onnx" % dtype, "--dtype", dtype, "--algo", "gptq", "--calib", calib, *extra)
        onnx.checker.check_model(gq, full_check=True)
        s_rtn, s_gq = sqnr(ref, run(rtn, {"input": X})[0]), sqnr(ref, run(gq, {"input": X})[0])
        print("   digits_mlp %s: round-to-nearest %.1f dB, GPTQ %.1f dB" % (dtype, s_rtn, s_gq))
        check(s_gq >= s_rtn + 3, "GPTQ %s: logit SQNR %.1f >= RTN %.1f + 3 dB" % (dtype, s_gq, s_rtn))
    cnn = os.path.join(SAMPLES, "digits_cnn.onnx")
    gq = quantize(cnn, "cnn_gptq_int4.onnx", "--dtype", "int4", "--algo", "gptq", "--calib", calib)
    rtn = quantize(cnn, "cnn_rtn_int4.onnx", "--dtype", "int4")
    ref = run(cnn, {"input": X})[0]
    s_rtn, s_gq = sqnr(ref, run(rtn, {"input": X})[0]), sqnr(ref, run(gq, {"input": X})[0])
    print("   digits_cnn int4: round-to-nearest %.1f dB, GPTQ %.1f dB" % (s_rtn, s_gq))
    check(s_gq >= s_rtn + 3, "GPTQ int4 on the CNN: %.1f >= %.1f + 3 dB" % (s_gq, s_rtn))


def oas_shrinkage(H, n):
    """Oracle-approximating shrinkage of the Gram matrix H of n rows (as
    scikit-learn's OAS computes it): the share of H replaced by its mean
    diagonal."""
    tr, tr2, p = np.trace(H), np.sum(H * H), len(H)
    den = (n + 1) * (tr2 - tr * tr / p)
    return 1.0 if den <= 0 else min(1.0, (tr2 + tr * tr) / den)


def gptq_ref(W, X, Xv, qspec, damp=0.01):
    """Textbook GPTQ (one column at a time, explicit inverse, no lazy
    batches) in float64: W is rows x K in visiting order, X the rows it is
    fitted on (samples x K), Xv the held-out rows. qspec: ("int8",) per row,
    symmetric; or ("uint4", block) asymmetric. As hpcz: H shrunk (OAS, as a
    ridge), the layer's zeros kept, the weights of inputs zero on every row
    dropped when there are at least as many rows as inputs (else such an
    input counts as one of average energy), and round-to-nearest kept
    instead when its output error on Xv is smaller."""
    W = W.astype(np.float64).copy()
    W0, zero = W.copy(), W == 0
    H = X.astype(np.float64).T @ X.astype(np.float64)
    H0 = Xv.astype(np.float64).T @ Xv.astype(np.float64)
    rho = min(oas_shrinkage(H, len(X)), 0.999)
    dead = np.diag(H) == 0
    if len(X) >= len(H):
        H[dead, dead] = 1
        W[:, dead] = 0
    else:
        H[dead, dead] = np.mean(np.diag(H)[~dead]) if np.any(~dead) else 1
    H += (damp + rho / (1 - rho)) * np.mean(np.diag(H)) * np.eye(len(H))
    U = np.linalg.cholesky(np.linalg.inv(H)).T  # H^-1 = U^T U, U upper
    rows, K = W.shape

    def params(w):
        lo, hi = min(0.0, w.min()), max(0.0, w.max())
        if qspec[0] == "int8":
            s = max(-lo, hi) / 127
            return (s if s > 0 else 1.0), 0, -127, 127
        s = (hi - lo) / 15
        z = int(np.clip(np.rint(0 - lo / s), 0, 15)) if s > 0 else 0
        return (s if s > 0 else 1.0), z, 0, 15

    def rnd(w, s, z, lo, hi):
        return s * (np.clip(np.rint(w / s) + z, lo, hi) - z)

    blk = K if qspec[0] == "int8" else qspec[1]
    sc = None
    for i in range(K):
        if i % blk == 0:
            sc = [params(W[r, i:i + blk]) for r in range(rows)]
        q = np.array([0.0 if zero[r, i] else rnd(W[r, i], *sc[r]) for r in range(rows)])
        e = (W[:, i] - q) / U[i, i]
        W[:, i] = q
        W[:, i + 1:] -= np.outer(e, U[i, i + 1:])
    R = np.empty_like(W0)
    for r in range(rows):
        for i in range(0, K, blk):
            p = params(W0[r, i:i + blk])
            R[r, i:i + blk] = np.where(zero[r, i:i + blk], 0.0, rnd(W0[r, i:i + blk], *p))

    def err(A):
        D = A - W0
        return np.sum((D @ H0) * D)
    return R if err(R) <= err(W) else W


def dequantized(model, weight_user):
    """The float weight a node reads through its DequantizeLinear."""
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    node = next(n for n in g.node if n.name == weight_user)
    dq = next(n for n in g.node if n.op_type == "DequantizeLinear" and n.output[0] == node.input[1])
    q, s, z = (inits[x].astype(np.float64) for x in dq.input[:3])
    attrs = {a.name: a.i for a in dq.attribute}
    axis, bs = attrs.get("axis", 1), attrs.get("block_size", 0)
    if bs:
        s, z = np.repeat(s, bs, axis=axis), np.repeat(z, bs, axis=axis)
    else:
        shape = [1] * q.ndim
        shape[axis] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    return (q - z) * s


def im2col(x, kh, kw, pad):
    """(n, oy, ox) x (c, ky, kx) patches of a stride-1 convolution."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
    cols = np.empty((n, oh, ow, c, kh, kw), np.float64)
    for ky in range(kh):
        for kx in range(kw):
            cols[:, :, :, :, ky, kx] = xp[:, :, ky:ky + oh, kx:kx + ow].transpose(0, 2, 3, 1)
    return cols.reshape(n * oh * ow, c * kh * kw)


FIT = 15  # of the 20 calibration samples below: the last quarter is held out


def gptq_reference_checks():
    """hpcz's GPTQ (one calibration run, lazy batches, shared Gram matrices)
    against gptq_ref on small layers, the second measured on the first's
    quantized output as GPTQ does; 20 samples: the first 15 fitted on (2
    batches), the last 5 held out for the comparison with round-to-nearest."""
    rng = np.random.default_rng(7)
    # MLP: x [N, 12, 64] -> MatMul 64x64 -> Relu -> MatMul 64x32 (and a second MatMul on x: one shared Gram matrix)
    W1 = rng.standard_normal((64, 64)).astype(np.float32) * 0.2
    W2 = rng.standard_normal((64, 32)).astype(np.float32) * 0.2
    W3 = rng.standard_normal((64, 32)).astype(np.float32) * 0.2
    # W1 held by a Constant node (paddle2onnx's form): plans fold those into copies of their own
    nodes = [helper.make_node("Constant", [], ["W1"], name="w1", value=numpy_helper.from_array(W1, "W1v")),
             helper.make_node("MatMul", ["x", "W1"], ["h"], name="mm1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "W2"], ["y"], name="mm2"),
             helper.make_node("MatMul", ["x", "W3"], ["z"], name="mm3")]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 12, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 12, 32]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 12, 32])],
                          [numpy_helper.from_array(W2, "W2"), numpy_helper.from_array(W3, "W3")])
    src = os.path.join(TMP, "gptq_mlp.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), src)
    calib = os.path.join(TMP, "gptq_mlp_calib")
    os.makedirs(calib, exist_ok=True)
    x = rng.standard_normal((20, 12, 64)).astype(np.float32)
    x[:, :, 5] = 0  # an input that is always zero: its weights go to 0
    np.save(os.path.join(calib, "x.npy"), x)
    for dtype, spec in (("int4", ("uint4", 32)), ("int8", ("int8",))):
        out = quantize(src, "gptq_mlp_%s.onnx" % dtype, "--dtype", dtype, "--algo", "gptq", "--calib", calib)
        check(out is not None, "GPTQ %s on the reference MLP" % dtype)
        if not out:
            continue
        m = onnx.load(out)
        X1 = x.reshape(-1, 64).astype(np.float64)
        f = FIT * 12  # rows of the samples fitted on
        R1 = gptq_ref(W1.T, X1[:f], X1[f:], spec).T
        X2 = np.maximum(X1 @ R1, 0).astype(np.float32)  # the quantized first layer's output, as the model runs it
        R2 = gptq_ref(W2.T, X2[:f], X2[f:], spec).T
        R3 = gptq_ref(W3.T, X1[:f], X1[f:], spec).T
        for name, ref in (("mm1", R1), ("mm2", R2), ("mm3", R3)):
            got = dequantized(m, name)
            rel = np.linalg.norm(got - ref) / np.linalg.norm(ref)
            print("   %s %s: max |hpcz - reference| %.2e, relative %.2e" % (dtype, name, np.abs(got - ref).max(), rel))
            check(rel < 1e-4, "GPTQ %s %s matches the reference implementation (relative %.1e < 1e-4)" % (dtype, name, rel))
    # Conv 3x3 pad 1 (columns visited as (ky, kx, ic)) -> Relu -> Conv 1x1
    C1 = rng.standard_normal((12, 8, 3, 3)).astype(np.float32) * 0.2
    C2 = rng.standard_normal((6, 12, 1, 1)).astype(np.float32) * 0.2
    D = rng.standard_normal((8, 1, 3, 3)).astype(np.float32) * 0.2  # depthwise: a Gram matrix per channel
    nodes = [helper.make_node("Conv", ["x", "C1"], ["h"], name="c1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "C2"], ["y"], name="c2"),
             helper.make_node("Conv", ["x", "D"], ["d"], name="dw", pads=[1, 1, 1, 1], group=8)]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 7, 7])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 7, 7]),
                           helper.make_tensor_value_info("d", TensorProto.FLOAT, ["N", 8, 7, 7])],
                          [numpy_helper.from_array(C1, "C1"), numpy_helper.from_array(C2, "C2"),
                           numpy_helper.from_array(D, "D")])
    src = os.path.join(TMP, "gptq_cnn.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), src)
    calib = os.path.join(TMP, "gptq_cnn_calib")
    os.makedirs(calib, exist_ok=True)
    x = rng.standard_normal((20, 8, 7, 7)).astype(np.float32)
    np.save(os.path.join(calib, "x.npy"), x)
    out = quantize(src, "gptq_cnn_int8.onnx", "--dtype", "int8", "--algo", "gptq", "--calib", calib, "--no-fold")
    check(out is not None, "GPTQ int8 on the reference CNN")
    if out:
        m = onnx.load(out)
        perm = [ic * 9 + sp for sp in range(9) for ic in range(8)]  # visiting order -> weight column
        X1 = im2col(x.astype(np.float64), 3, 3, 1)
        f = FIT * 49
        R = np.empty((12, 72))
        R[:, perm] = gptq_ref(C1.reshape(12, 72)[:, perm], X1[:f, perm], X1[f:, perm], ("int8",))
        h = np.maximum(X1 @ R.T, 0).reshape(20, 7, 7, 12).transpose(0, 3, 1, 2).astype(np.float32)
        H2 = im2col(h.astype(np.float64), 1, 1, 0)
        R2 = gptq_ref(C2.reshape(6, 12), H2[:f], H2[f:], ("int8",))
        RD = np.stack([gptq_ref(D[c].reshape(1, 9), im2col(x[:, c:c + 1].astype(np.float64), 3, 3, 1)[:f],
                                im2col(x[:, c:c + 1].astype(np.float64), 3, 3, 1)[f:], ("int8",))[0]
                       for c in range(8)])
        for name, ref in (("c1", R.reshape(C1.shape)), ("c2", R2.reshape(C2.shape)), ("dw", RD.reshape(D.shape))):
            got = dequantized(m, name)
            rel = np.linalg.norm(got - ref) / np.linalg.norm(ref)
            print("   int8 %s: max |hpcz - reference| %.2e, relative %.2e" % (name, np.abs(got - ref).max(), rel))
            check(rel < 1e-4, "GPTQ int8 %s matches the reference implementation (relative %.1e < 1e-4)" % (name, rel))


def default_algo_checks():
    """Weight-only with --calib: GPTQ unless --algo rtn; without data: RTN."""
    calib = os.path.join(SAMPLES, "digits", "calib")
    src = os.path.join(SAMPLES, "digits_cnn.onnx")
    for args, want in (([], "rtn"), (["--calib", calib], "gptq"), (["--calib", calib, "--algo", "rtn"], "rtn"),
                       (["--dtype", "int4", "--calib", calib], "gptq"), (["--dtype", "int4"], "rtn")):
        r = subprocess.run([HPCZ, "quantize", src, "-o", os.path.join(TMP, "algo.onnx"), "--json", *args],
                           capture_output=True, text=True)
        j = json.loads(r.stdout) if r.returncode == 0 else {}
        said = "GPTQ: the default with --calib" in r.stderr
        check(j.get("algo") == want and ("quantize-gptq" in j.get("pipeline", "")) == (want == "gptq")
              and said == (want == "gptq" and "--algo" not in args),
              "quantize %s: algo %s (%s)" % (" ".join(a if a != calib else "DATA" for a in args), want,
                                            r.stderr.splitlines()[0] if r.stderr else ""))
    r = subprocess.run([HPCZ, "quantize", src, "-o", os.path.join(TMP, "algo.onnx"), "--mode", "static", "--calib",
                        calib, "--json", "-q"], capture_output=True, text=True)
    check(r.returncode == 0 and json.loads(r.stdout).get("algo") is None, "static mode: no algo in the JSON")


def subgraph_constant_checks():
    """Weights held by Constant nodes inside an If branch (silero-vad's form):
    the DequantizeLinear nodes go into the branch, sorted, so ONNX Runtime
    loads the model (it refused an unsorted branch)."""
    rng = np.random.default_rng(5)
    w = rng.normal(size=(16, 16)).astype(np.float32)
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w, "w")),
         helper.make_node("MatMul", ["x", "w"], ["t"], name="then_mm")],
        "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 16])])
    else_g = helper.make_graph(
        [helper.make_node("Constant", [], ["w2"], value=numpy_helper.from_array(-w, "w2")),
         helper.make_node("MatMul", ["x", "w2"], ["e"], name="else_mm")],
        "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 16])])
    g = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then_g, else_branch=else_g)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16]),
              helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 16])])
    src = os.path.join(TMP, "if_const.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    x = rng.normal(size=(2, 16)).astype(np.float32)
    for mode in (["--mode", "weight-only"], ["--dtype", "int4"]):
        out = quantize(src, "if_const_q%s.onnx" % mode[-1], *mode)
        check(out is not None, "Constant weights in If branches quantize (%s)" % mode[-1])
        if out:
            for c in (True, False):
                ref = run(src, {"x": x, "cond": np.array(c)})[0]
                got = run(out, {"x": x, "cond": np.array(c)})[0]
                check(sqnr(ref, got) > 20, "%s, branch %s: ONNX Runtime loads and runs it (SQNR %.1f dB)"
                      % (mode[-1], c, sqnr(ref, got)))


def fp16_subgraph_checks():
    """float16 reaches into If branches (silero-vad keeps its whole network
    there; the If itself stays float32): the branch MatMul runs in float16,
    the weight is stored once as float16 though both branches read it, and
    branch outputs are cast back to float32 (the If keeps its types)."""
    rng = np.random.default_rng(11)
    w = rng.normal(size=(16, 16)).astype(np.float32) / 4
    then_g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["t0"], name="then_mm"),
         helper.make_node("Relu", ["t0"], ["t"], name="then_relu")],
        "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 16])])
    else_g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["e0"], name="else_mm"),
         helper.make_node("Neg", ["e0"], ["e"], name="else_neg")],
        "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 16])])
    pass_g = helper.make_graph([helper.make_node("Identity", ["h"], ["hi"], name="pass_h")], "pass", [],
                               [helper.make_tensor_value_info("hi", TensorProto.FLOAT, [2, 16])])
    g = helper.make_graph(
        [helper.make_node("Tanh", ["x"], ["h"], name="tanh"),
         helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then_g, else_branch=else_g),
         helper.make_node("If", ["cond"], ["z"], name="if_pass", then_branch=pass_g,
                          else_branch=helper.make_graph(
                              [helper.make_node("Neg", ["h"], ["hn"], name="neg_h")], "neg", [],
                              [helper.make_tensor_value_info("hn", TensorProto.FLOAT, [2, 16])]))],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16]),
              helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 16]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 16])],
        initializer=[numpy_helper.from_array(w, "W")])
    src = os.path.join(TMP, "if_fp16.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    x = rng.normal(size=(2, 16)).astype(np.float32)
    for io in (["--keep-io-types"], []):
        out = quantize(src, "if_fp16_out%d.onnx" % len(io), "--dtype", "fp16", *io)
        check(out is not None, "fp16 %s of a model with If branches" % (io or "without --keep-io-types"))
        if not out:
            continue
        onnx.checker.check_model(out, full_check=True)
        m = onnx.load(out)
        inits = {t.name: t for t in m.graph.initializer}
        check(len(inits) == 1 and list(inits.values())[0].data_type == TensorProto.FLOAT16,
              "fp16 %s: the weight both branches read is one float16 initializer (%s)"
              % (io, [(t.name, t.data_type) for t in inits.values()]))
        ifs = [n for n in m.graph.node if n.op_type == "If" and n.name == "if"][0]
        then_b = [a.g for a in ifs.attribute if a.name == "then_branch"][0]
        check(any(n.op_type == "MatMul" for n in then_b.node) and
              any(n.op_type == "Cast" and n.attribute[0].i == TensorProto.FLOAT for n in then_b.node),
              "fp16 %s: the branch MatMul is float16 with a Cast back to float32 at the branch output" % io)
        xin = x if io else x.astype(np.float16)
        for c in (True, False):
            ref = run(src, {"x": x, "cond": np.array(c)})
            got = run(out, {"x": xin, "cond": np.array(c)})
            check(all(gg.dtype == np.float32 for gg in got), "fp16 %s: If outputs stay float32" % io)
            s = min(sqnr(r, gg.astype(np.float32)) for r, gg in zip(ref, got))
            check(s > 40, "fp16 %s, branch %s: ONNX Runtime runs it, SQNR %.1f dB > 40" % (io, c, s))


def fp16_fold_checks():
    """--dtype fp16 folds first, in float32: a Conv's per-channel Mul and Add
    (BatchNormalization as PaddleOCR exports it) into the Conv, HardSwish
    written out (x * Clip(x + 3, 0, 6) / 6) into the HardSwish op, and a
    scalar Mul and Add read by an unpadded Conv into that Conv: every float16
    op rounds, so these were roundings and passes the float32 model does
    not have (PP-OCRv4's recognizer: eight roundings per value after each
    Conv). The float16 file is then closer to the float32 model than the
    unfolded one (to-fp16{fold=false}), which keeps every op."""
    rng = np.random.default_rng(11)
    C = 8
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (C, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, C).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.uniform(0.5, 2, (1, C, 1, 1)).astype(np.float32), "s"),
             numpy_helper.from_array(rng.normal(0, 0.5, (1, C, 1, 1)).astype(np.float32), "t"),
             numpy_helper.from_array(np.array(3, np.float32), "three"),
             numpy_helper.from_array(np.array(0, np.float32), "zero"),
             numpy_helper.from_array(np.array(6, np.float32), "six"),
             numpy_helper.from_array(np.array(1.7, np.float32), "a"),
             numpy_helper.from_array(np.array(-0.3, np.float32), "b"),
             numpy_helper.from_array(rng.normal(0, 0.3, (4, C, 1, 1)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "b2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Mul", ["c1", "s"], ["m1"], name="bn_mul"),
             helper.make_node("Add", ["m1", "t"], ["a1"], name="bn_add"),
             helper.make_node("Add", ["a1", "three"], ["h0"], name="hs_add"),
             helper.make_node("Clip", ["h0", "zero", "six"], ["h1"], name="hs_clip"),
             helper.make_node("Mul", ["a1", "h1"], ["h2"], name="hs_mul"),
             helper.make_node("Div", ["h2", "six"], ["h3"], name="hs_div"),
             helper.make_node("Mul", ["h3", "a"], ["p1"], name="post_mul"),
             helper.make_node("Add", ["p1", "b"], ["p2"], name="post_add"),
             helper.make_node("Conv", ["p2", "w2", "b2"], ["y"], name="conv2")]
    g = helper.make_graph(nodes, "fold16", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 14])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 12, 14])], inits)
    src = os.path.join(TMP, "fold16.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), src)
    r = subprocess.run([HPCZ, "quantize", src, "-o", os.path.join(TMP, "fold16_fp16.onnx"), "--dtype", "fp16",
                        "--keep-io-types", "-v"], capture_output=True, text=True)
    folded = os.path.join(TMP, "fold16_fp16.onnx") if r.returncode == 0 else None
    kept = quantize(src, "fold16_kept.onnx", "--passes", "to-fp16{keep-io-types=true,fold=false}")
    if not check(folded and kept, "fp16 with and without fold%s" % ("" if folded else ": " + r.stderr.strip()[-200:])):
        return
    ops = [n.op_type for n in onnx.load(folded).graph.node if n.op_type != "Cast"]
    check(ops == ["Conv", "HardSwish", "Conv"], "folded: Conv, HardSwish, Conv (%s)" % ops)
    check(max(o.version for o in onnx.load(folded).opset_import if o.domain in ("", "ai.onnx")) >= 14,
          "folded: opset raised to 14 for HardSwish")
    for what in ("1 Mul/Add of per-channel constants folded", "1 written-out HardSwish",
                 "1 scalar Mul/Add folded into the unpadded Conv"):
        check(what in r.stderr, "folded: -v says '%s'" % what)
    kops = [n.op_type for n in onnx.load(kept).graph.node if n.op_type != "Cast"]
    check(kops.count("Mul") == 3 and kops.count("Add") == 3 and "Div" in kops, "fold=false keeps the ops (%s)" % kops)
    x = rng.normal(0, 1, (1, 3, 12, 14)).astype(np.float32)
    ref = run(src, {"x": x})[0]
    a, b = run(folded, {"x": x})[0], run(kept, {"x": x})[0]
    check(sqnr(ref, a) > 55 and sqnr(ref, a) > sqnr(ref, b) - 1,
          "folded float16 vs float32 %.1f dB (> 55, unfolded %.1f)" % (sqnr(ref, a), sqnr(ref, b)))
    np.save(os.path.join(TMP, "fold16_x.npy"), x)
    r = subprocess.run([HPCZ, "run", folded, "--input", "x=" + os.path.join(TMP, "fold16_x.npy"), "-o",
                        os.path.join(TMP, "fold16_out"), "-q"], capture_output=True, text=True)
    got = np.load(os.path.join(TMP, "fold16_out", "y.npy")) if r.returncode == 0 else None
    check(got is not None and sqnr(a, got) > 55, "hpcz run on the folded file: %.1f dB against ORT"
          % (sqnr(a, got) if got is not None else -1))


def fp16_layernorm_checks():
    """Two LayerNorms written out (Sub, Pow 2, ReduceMean, Add, Sqrt, Div, Mul,
    Add; the exponent a Constant in one, an initializer in the other, as
    exporters write them): ONNX Runtime 1.23 at its default level
    (ORT_ENABLE_ALL) refused the float16 file of every converter, its
    SimplifiedLayerNormFusion losing the Cast it had put on a float16 Pow
    exponent. hpcz keeps a constant exponent float32: the file loads at every
    level, and runs as close to the float32 model as ORT_ENABLE_EXTENDED
    did."""
    rng = np.random.default_rng(5)
    D = 16
    nodes, inits = [], []

    def layernorm(x, p, const_exp):
        nodes.append(helper.make_node("ReduceMean", [x], [p + "mean"], axes=[-1], name=p + "mean"))
        nodes.append(helper.make_node("Sub", [x, p + "mean"], [p + "d"], name=p + "sub"))
        two = np.array(2.0, np.float32)
        if const_exp:
            nodes.append(helper.make_node("Constant", [], [p + "two"], value=numpy_helper.from_array(two),
                                          name=p + "two"))
        else:
            inits.append(numpy_helper.from_array(two, p + "two"))
        nodes.append(helper.make_node("Pow", [p + "d", p + "two"], [p + "sq"], name=p + "pow"))
        nodes.append(helper.make_node("ReduceMean", [p + "sq"], [p + "var"], axes=[-1], name=p + "var"))
        inits.append(numpy_helper.from_array(np.array(1e-5, np.float32), p + "eps"))
        nodes.append(helper.make_node("Add", [p + "var", p + "eps"], [p + "ve"], name=p + "add_eps"))
        nodes.append(helper.make_node("Sqrt", [p + "ve"], [p + "sd"], name=p + "sqrt"))
        nodes.append(helper.make_node("Div", [p + "d", p + "sd"], [p + "n"], name=p + "div"))
        inits.append(numpy_helper.from_array(rng.uniform(0.5, 1.5, D).astype(np.float32), p + "w"))
        inits.append(numpy_helper.from_array(rng.normal(0, 0.1, D).astype(np.float32), p + "b"))
        nodes.append(helper.make_node("Mul", [p + "n", p + "w"], [p + "nw"], name=p + "mul"))
        nodes.append(helper.make_node("Add", [p + "nw", p + "b"], [p + "y"], name=p + "add"))
        return p + "y"

    for k, const_exp in enumerate((True, False)):
        inits.append(numpy_helper.from_array(rng.normal(0, 0.3, (D, D)).astype(np.float32), "W%d" % k))
        nodes.append(helper.make_node("MatMul", ["x" if k == 0 else "r0", "W%d" % k], ["h%d" % k], name="mm%d" % k))
        y = layernorm("h%d" % k, "ln%d_" % k, const_exp)
        nodes.append(helper.make_node("Relu", [y], ["r%d" % k], name="relu%d" % k))
    g = helper.make_graph(nodes, "ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, D])],
                          [helper.make_tensor_value_info("r1", TensorProto.FLOAT, [4, D])], inits)
    src = os.path.join(TMP, "layernorm2.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), src)
    out = quantize(src, "layernorm2_fp16.onnx", "--dtype", "fp16", "--keep-io-types")
    if not check(out is not None, "fp16 of two written-out LayerNorms"):
        return
    m = onnx.load(out)
    exps = {}
    consts = {n.output[0]: n for n in m.graph.node if n.op_type == "Constant"}
    inits16 = {t.name: t for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Pow":
            e = n.input[1]
            exps[n.name] = (consts[e].attribute[0].t.data_type if e in consts
                            else inits16[e].data_type if e in inits16 else None)
    check(exps == {"ln0_pow": TensorProto.FLOAT, "ln1_pow": TensorProto.FLOAT},
          "the Pow exponents stay float32 constants, no Cast (%s)" % exps)
    check(any(n.op_type == "Sqrt" for n in m.graph.node) and
          all(t.data_type == TensorProto.FLOAT16 for t in m.graph.initializer if t.name.startswith("W")),
          "the rest is float16")
    x = rng.normal(size=(4, D)).astype(np.float32)
    ref = run(src, {"x": x})[0]
    for level in (ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED):
        try:
            got = session(out, level).run(None, {"x": x})[0]
        except Exception as e:  # noqa: BLE001 - the failure is the finding
            check(False, "ONNX Runtime at %s loads the float16 LayerNorms: %s" % (level, str(e)[:200]))
            continue
        s = sqnr(ref, got.astype(np.float32))
        check(s > 40, "ONNX Runtime at %s loads and runs the float16 LayerNorms: SQNR %.1f dB > 40" % (level, s))


def fallback_checks():
    """--auto-fallback returns the most sensitive layers to float until the
    gate holds (checked again here in ONNX Runtime); their weights stay int8
    (weight-only) so the model stays small, unless even every layer so kept
    breaks the gate: then their weights become float16 (then float), and it
    says so."""
    calib = os.path.join(SAMPLES, "digits", "calib")
    cnn = os.path.join(SAMPLES, "digits_cnn.onnx")
    xs = np.concatenate([np.load(os.path.join(calib, f)) for f in sorted(os.listdir(calib)) if f.endswith(".npy")])
    ref = run(cnn, {"input": xs})[0]

    def cos(path):
        got = run(path, {"input": xs})[0]
        return float(np.sum(ref * got) / np.sqrt(np.sum(ref * ref) * np.sum(got * got)))

    def fallback(name, gate, *extra):
        out = os.path.join(TMP, name)
        r = subprocess.run([HPCZ, "quantize", cnn, "-o", out, "--mode", "static", "--calib", calib, "--placement",
                            "all", "--auto-fallback", "--min-cosine", str(gate), *extra],
                           capture_output=True, text=True)
        line = [l for l in r.stderr.splitlines() if "auto-fallback:" in l]
        return r.returncode, out, line[0].strip() if line else r.stderr.strip()[-200:]

    def float_convs(path):
        m = onnx.load(path)
        dq = {n.output[0] for n in m.graph.node if n.op_type == "DequantizeLinear"}
        qin = {n.output[0] for n in m.graph.node if n.op_type == "DequantizeLinear"
               and any(p.op_type == "QuantizeLinear" and p.output[0] == n.input[0] for p in m.graph.node)}
        convs = [n for n in m.graph.node if n.op_type in ("Conv", "Gemm")]
        # a float layer: its input is not a quantized activation; its weight int8 or float
        flt = [n for n in convs if n.input[0] not in qin]
        return [n.input[1] in dq for n in flt], len(convs)

    rc, out, line = fallback("fb_w8.onnx", 0.99996)
    c = cos(out)
    w8, total = float_convs(out)
    check(rc == 0 and "kept float (int8 weights)" in line and c >= 0.99995,
          "auto-fallback, gate 0.99996: holds in ORT (cosine %.6f), %s" % (c, line))
    check(w8 and all(w8), "layers returned to float keep int8 weights (%d of %d layers float)" % (len(w8), total))
    rc, out2, line = fallback("fb_f32.onnx", 0.99996, "--fallback-weights", "float")
    w, _ = float_convs(out2)
    check(rc == 0 and w and not any(w) and os.path.getsize(out2) > os.path.getsize(out),
          "--fallback-weights float: float weights, a larger file (%d > %d bytes)"
          % (os.path.getsize(out2), os.path.getsize(out)))
    rc, out4, line = fallback("fb_fp16.onnx", 0.99996, "--fallback-weights", "fp16")
    m4 = onnx.load(out4)
    casts = [n for n in m4.graph.node if n.op_type == "Cast"]
    c = cos(out4)
    check(rc == 0 and "kept float (fp16 weights)" in line and casts and c >= 0.99995
          and os.path.getsize(out) < os.path.getsize(out4) < os.path.getsize(out2),
          "--fallback-weights fp16: float16 weights through %d Casts, between int8 and float in size "
          "(%d < %d < %d bytes), holds in ORT (cosine %.6f)"
          % (len(casts), os.path.getsize(out), os.path.getsize(out4), os.path.getsize(out2), c))
    rc, out3, line = fallback("fb_strict.onnx", 0.999995)
    c = cos(out3)
    check(rc == 0 and "fp16 weights: with int8 weights even every layer broke the gates" in line and c >= 0.99999
          and os.path.getsize(out3) < os.path.getsize(out2),
          "a gate int8 weights cannot meet: float16 weights, holds in ORT (cosine %.7f, %d bytes): %s"
          % (c, os.path.getsize(out3), line))


def logmel_checks():
    """Issue 11 defect 5: a log-mel front end on int16-range audio overflows
    float16 in its STFT Convs although every constant fits. With data (--calib
    or --data) hpcz keeps what overflows in float32; without, what computes a
    Log's input stays float32 (the outputs were all NaN: oww_melspec), and it
    says that activations went unchecked."""
    src = os.path.join(SAMPLES, "patterns", "logmel_int16.onnx")
    audio = os.path.join(SAMPLES, "patterns", "logmel_int16.input_audio.npy")
    feeds = {"audio": np.load(audio)}
    ref = run(src, feeds)[0]
    for how in (["--calib", audio], ["--data", audio]):
        out = quantize(src, "logmel16%s.onnx" % how[0].strip("-"), "--dtype", "fp16", "--keep-io-types", *how)
        check(out is not None, "logmel fp16 %s runs" % how[0])
        if out:
            got = run(out, feeds)[0]
            cos = float(np.sum(ref * got) / np.sqrt(np.sum(ref * ref) * np.sum(got * got)))
            check(np.all(np.isfinite(got)) and cos >= 0.9999,
                  "logmel fp16 %s: finite outputs in ORT, cosine %.6f >= 0.9999" % (how[0], cos))
    blind = os.path.join(TMP, "logmel16_blind.onnx")
    r = subprocess.run([HPCZ, "quantize", src, "-o", blind, "--dtype", "fp16", "--keep-io-types", "-v"],
                       capture_output=True, text=True)
    check(r.returncode == 0 and "activation ranges" in r.stderr,
          "logmel fp16 without data says activations were not checked: " + r.stderr.strip()[-160:])
    check("computes what a Log reads" in r.stderr, "logmel fp16 without data: the Log's input chain kept float32")
    # the overflow itself, without data: frames of int16-range audio, squared,
    # through mel filters into a Log (every constant fits float16; the powers,
    # about 1e10, do not: the outputs were all Inf/NaN)
    rng = np.random.default_rng(7)
    frames = numpy_helper.from_array((rng.standard_normal((64, 1, 1, 64)) * 0.1).astype(np.float32), "frames")
    mel = numpy_helper.from_array(np.abs(rng.standard_normal((64, 16))).astype(np.float32) * 0.1, "mel")
    eps = numpy_helper.from_array(np.array(1e-3, np.float32), "eps")
    nodes = [helper.make_node("Conv", ["audio", "frames"], ["spec"], strides=[1, 32], name="stft"),
             helper.make_node("Mul", ["spec", "spec"], ["power"], name="square"),
             helper.make_node("Transpose", ["power"], ["pt"], perm=[0, 2, 3, 1], name="tm"),
             helper.make_node("MatMul", ["pt", "mel"], ["melp"], name="melmm"),
             helper.make_node("Add", ["melp", "eps"], ["mele"], name="floor"),
             helper.make_node("Log", ["mele"], ["logmel"], name="log")]
    g = helper.make_graph(nodes, "logmel_blind", [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, 1, 1, 1056])],
                          [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, None)], [frames, mel, eps])
    lm = os.path.join(TMP, "logmel_blind_src.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), lm)
    x = {"audio": (rng.standard_normal((1, 1, 1, 1056)) * 20000).astype(np.float32)}
    ref2 = run(lm, x)[0]
    out2 = quantize(lm, "logmel_blind16.onnx", "--dtype", "fp16", "--keep-io-types")
    if out2:
        # ORT's CPU provider runs most float16 ops in float32 behind Casts and
        # hides the overflow; hpcz run computes in float16 as written
        np.save(os.path.join(TMP, "lb_audio.npy"), x["audio"])
        rdir = os.path.join(TMP, "lb_run")
        r = subprocess.run([HPCZ, "run", out2, "--input", "audio=" + os.path.join(TMP, "lb_audio.npy"), "-o", rdir,
                            "-q"], capture_output=True, text=True)
        got = np.load(os.path.join(rdir, "logmel.npy")) if r.returncode == 0 else np.full(1, np.nan)
        cos = float(np.sum(ref2 * got) / np.sqrt(np.sum(ref2 * ref2) * np.sum(got * got)))
        check(np.all(np.isfinite(ref2)) and np.all(np.isfinite(got)) and cos >= 0.9999,
              "int16-range frames squared into a Log, fp16 without data: finite in hpcz run, cosine %.6f" % cos)
    else:
        check(False, "int16-range frames squared into a Log, fp16 without data: quantize runs")
    if r.returncode == 0:
        got = run(blind, feeds)[0]
        cos = float(np.sum(ref * got) / np.sqrt(np.sum(ref * ref) * np.sum(got * got)))
        check(np.all(np.isfinite(got)) and cos >= 0.9999,
              "logmel fp16 without data: finite outputs in ORT, cosine %.6f >= 0.9999" % cos)


def entropy_checks():
    """Issue 11 defect 1: entropy calibration clamped a sigmoid gate whose
    values sit away from zero to its smallest value (KL 0 between two equal
    spikes), and clipped graph outputs; the model lost all accuracy."""
    pat = os.path.join(SAMPLES, "patterns")
    src = os.path.join(pat, "sigmoid_gate.onnx")
    cal = os.path.join(TMP, "gate_calib")
    os.makedirs(cal, exist_ok=True)
    x = np.load(os.path.join(pat, "sigmoid_gate.input_input.npy"))
    np.save(os.path.join(cal, "input.npy"), x)
    ref = run(src, {"input": x})[0]
    got = {}
    for meth in ("minmax", "entropy", "percentile", "mse"):
        out = quantize(src, "gate_%s.onnx" % meth, "--mode", "static", "--placement", "all", "--calib", cal, "--calib-method", meth)
        got[meth] = sqnr(ref, run(out, {"input": x})[0]) if out else -99
    # before the fix: entropy 1.2 dB, minmax 34.4
    check(got["entropy"] > 25 and got["entropy"] > got["minmax"] - 9,
          "sigmoid gate, entropy: SQNR %.1f dB (minmax %.1f, percentile %.1f, mse %.1f)"
          % (got["entropy"], got["minmax"], got["percentile"], got["mse"]))
    table = os.path.join(TMP, "gate_entropy.json")
    r = subprocess.run([HPCZ, "calibrate", src, "-q", "--calib", cal, "--calib-method", "entropy", "-o", table],
                       capture_output=True, text=True)
    t = __import__("json").load(open(table))["tensors"] if r.returncode == 0 else {}
    gate, outp = t.get("gate", {}), t.get("output", {})
    check(gate.get("max", 0) >= gate.get("abs_p99", 1),
          "entropy keeps the gate's range above its 99th percentile (%s)" % gate)
    check(outp and outp["min"] == min(0, outp["seen_min"]) and outp["max"] == max(0, outp["seen_max"]),
          "entropy leaves the graph output's range unclipped (%s)" % outp)


def stem_conv_checks():
    """A 1-channel image stem with 24 filters: ONNX Runtime 1.23's QLinearConv
    miscomputes convs from < 4 to 17-31 channels (every 32nd output column of
    channels 16+), so hpcz keeps them float (ddddocr_ocr: 4 -> 23 dB)."""
    rng = np.random.default_rng(11)
    w1 = numpy_helper.from_array((rng.standard_normal((24, 1, 3, 3)) * 0.5).astype(np.float32), "w1")
    b1 = numpy_helper.from_array((rng.standard_normal(24) * 0.1).astype(np.float32), "b1")
    w2 = numpy_helper.from_array((rng.standard_normal((8, 24, 1, 1)) * 0.3).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="stem", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              strides=[2, 2]),
             helper.make_node("Sigmoid", ["c1"], ["s1"], name="sig"),
             helper.make_node("Mul", ["c1", "s1"], ["a1"], name="swish"),
             helper.make_node("Conv", ["a1", "w2"], ["y"], name="proj")]
    g = helper.make_graph(nodes, "stem", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 64, 192])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 32, 96])], [w1, b1, w2])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    src = os.path.join(TMP, "stem.onnx")
    onnx.save(m, src)
    cal = os.path.join(TMP, "stem_calib")
    os.makedirs(cal, exist_ok=True)
    x = rng.random((8, 1, 64, 192)).astype(np.float32)
    np.save(os.path.join(cal, "x.npy"), x)
    ref = run(src, {"x": x})[0]
    out = quantize(src, "stem_s8.onnx", "--mode", "static", "--placement", "all", "--calib", cal)
    got = run(out, {"x": x})[0] if out else ref * 0
    check(sqnr(ref, got) > 25, "1-channel stem with 24 filters: ORT output SQNR %.1f dB" % sqnr(ref, got))
    q = onnx.load(out) if out else None
    stem = [n for n in q.graph.node if n.name == "stem"] if q else []
    check(stem and not any("DequantizeLinear" in (i or "") for i in stem[0].input[1:2]) and
          any(n.name == "proj" and n.input[1].endswith("dequantized") for n in q.graph.node),
          "the stem conv stays float, the next conv is int8")
    # the same stem behind an NHWC -> NCHW Transpose (a TensorFlow export): a
    # quantized Transpose would hand ORT a DequantizeLinear in front of the float
    # stem, and ORT quantizes the stem's weights itself into the broken kernel
    nodes_t = [helper.make_node("Transpose", ["x_nhwc"], ["x"], name="to_nchw", perm=[0, 3, 1, 2])] + nodes
    gt = helper.make_graph(nodes_t, "stem_nhwc",
                           [helper.make_tensor_value_info("x_nhwc", TensorProto.FLOAT, ["N", 64, 192, 1])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 32, 96])], [w1, b1, w2])
    mt = helper.make_model(gt, opset_imports=[helper.make_opsetid("", 13)])
    mt.ir_version = 8
    src_t = os.path.join(TMP, "stem_nhwc.onnx")
    onnx.save(mt, src_t)
    cal_t = os.path.join(TMP, "stem_nhwc_calib")
    os.makedirs(cal_t, exist_ok=True)
    xt = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    np.save(os.path.join(cal_t, "x_nhwc.npy"), xt)
    out_t = quantize(src_t, "stem_nhwc_s8.onnx", "--mode", "static", "--placement", "all", "--calib", cal_t)
    got_t = run(out_t, {"x_nhwc": xt})[0] if out_t else ref * 0
    check(sqnr(ref, got_t) > 25, "the stem behind an NHWC Transpose: ORT output SQNR %.1f dB" % sqnr(ref, got_t))
    out = os.path.join(TMP, "stem_forced.onnx")
    r = subprocess.run([HPCZ, "quantize", src, "-o", out, "-q", "--mode", "static", "--placement", "all", "--calib", cal,
                        "--passes", "quantize-static{float-stem=false},dce"], capture_output=True, text=True)
    if r.returncode == 0:
        bad = sqnr(ref, run(out, {"x": x})[0])
        so = ort.SessionOptions()
        so.log_severity_level = 3
        unfused = ort.InferenceSession(out, so, providers=["CPUExecutionProvider"],
                                       disabled_optimizers=["QDQSelectorActionTransformer"]).run(None, {"x": x})[0]
        # the control (a note, not a check: an ONNX Runtime that fixes its kernel
        # should not fail this suite; equal numbers say the workaround can go)
        print("NOTE control, the stem in int8: ORT fused %.1f dB, unfused %.1f dB (ORT 1.23.2: 7.3 and 35.6)"
              % (bad, sqnr(ref, unfused)))


def reduce_range_checks():
    """Issue 11 defect 8: static mode reduces the weight range per layer, where
    the calibrated activation codes times the largest pair of neighbouring
    weight codes could pass int16 (vpmaddubsw on x86 without VNNI)."""
    rng = np.random.default_rng(8)
    w1 = (rng.standard_normal((64, 16)) * 0.2).astype(np.float32)
    w2 = (rng.standard_normal((64, 16)) * 0.2).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["a", "w1"], ["y1"], name="dense_inputs"),
             helper.make_node("MatMul", ["b", "w2"], ["y2"], name="tailed_inputs")]
    g = helper.make_graph(nodes, "rr", [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 64]),
                                        helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 64])],
                          [helper.make_tensor_value_info("y1", TensorProto.FLOAT, ["N", 16]),
                           helper.make_tensor_value_info("y2", TensorProto.FLOAT, ["N", 16])],
                          [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    src = os.path.join(TMP, "rr.onnx")
    onnx.save(m, src)
    cal = os.path.join(TMP, "rr_calib")
    os.makedirs(cal, exist_ok=True)
    # a: uniform in [0, 1], its codes reach 255 everywhere (every pair can saturate);
    # b: one-sided (after a Relu, say), 99% below a quarter of its range (codes
    # below 66), a few values up to 1
    a = rng.random((64, 64)).astype(np.float32)
    b = np.abs(rng.standard_normal((64, 64)) * 0.1).astype(np.float32)
    b[0, :4] = [1.0, 0.9, 0.8, 0.7]
    np.save(os.path.join(cal, "a.npy"), a)
    np.save(os.path.join(cal, "b.npy"), b)

    def codes(path):
        q = onnx.load(path)
        init = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
        out = {}
        for n in q.graph.node:
            if n.op_type == "MatMul":
                dq = next(x for x in q.graph.node if x.output[0] == n.input[1])
                out[n.name] = int(np.abs(init[dq.input[0]].astype(np.int32)).max())
        return out

    def emulate_saturation(x, path, name):
        """vpmaddubsw: u8 codes times s8 weight codes, neighbouring pairs summed in int16"""
        q = onnx.load(path)
        init = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
        n = next(x for x in q.graph.node if x.name == name)
        dq = next(x for x in q.graph.node if x.output[0] == n.input[1])
        xdq = next(x for x in q.graph.node if x.output[0] == n.input[0])
        sx, zx = init[xdq.input[1]], init[xdq.input[2]]
        xq = np.clip(np.round(x / sx) + zx, 0, 255).astype(np.int64)
        wq = init[dq.input[0]].astype(np.int64)
        pairs = xq[:, 0::2, None] * wq[None, 0::2, :] + xq[:, 1::2, None] * wq[None, 1::2, :]
        return int((np.abs(pairs) > 32767).sum())

    # mean-minmax: the mean over samples of each sample's min and max (NNCF's estimator)
    table = os.path.join(TMP, "rr_mean.json")
    r = subprocess.run([HPCZ, "calibrate", src, "-q", "--calib", cal, "--calib-method", "mean-minmax", "-o", table],
                       capture_output=True, text=True)
    t = __import__("json").load(open(table))["tensors"] if r.returncode == 0 else {}
    want = (float(np.minimum(b.min(axis=1), 0).mean()), float(b.max(axis=1).mean()))
    got = (t.get("b", {}).get("min"), t.get("b", {}).get("max"))
    check(got[1] is not None and abs(got[1] - want[1]) < 1e-5 and got[0] == 0,
          "mean-minmax: input b's range is the mean of the per-sample maxima %s (want %s)" % (got, want))
    y2 = run(src, {"a": a, "b": b})[1]
    check(abs(t.get("y2", {}).get("max", 0) - y2.max()) < 1e-5,
          "mean-minmax: a graph output keeps its seen range (%s)" % t.get("y2"))
    auto = quantize(src, "rr_auto.onnx", "--mode", "static", "--placement", "all", "--calib", cal)
    full = quantize(src, "rr_full.onnx", "--mode", "static", "--placement", "all", "--calib", cal, "--no-reduce-range")
    red = quantize(src, "rr_red.onnx", "--mode", "static", "--placement", "all", "--calib", cal, "--reduce-range")
    ca, cf, cr = codes(auto), codes(full), codes(red)
    check(ca == {"dense_inputs": 64, "tailed_inputs": 127},
          "reduce-range per layer: dense [0, 1] inputs get [-64, 64], tailed inputs full range (%s)" % ca)
    check(cf == {"dense_inputs": 127, "tailed_inputs": 127} and cr == {"dense_inputs": 64, "tailed_inputs": 64},
          "--no-reduce-range / --reduce-range apply to every layer (%s, %s)" % (cf, cr))
    sat_full = emulate_saturation(a, full, "dense_inputs")
    sat_auto = (emulate_saturation(a, auto, "dense_inputs"), emulate_saturation(b, auto, "tailed_inputs"))
    # the risk is measured on the 99th percentile: the tailed layer's rare large values may still
    # saturate a pair now and then (1 of its 32768 pair sums here)
    check(sat_full > 100 and sat_auto[0] == 0 and sat_auto[1] < 33,
          "emulated int16 pair sums: full range saturates %d of 32768 on the dense layer, per layer %s"
          % (sat_full, sat_auto))
    feeds = {"a": a, "b": b}
    ref = run(src, feeds)
    ya, yr = run(auto, feeds), run(red, feeds)
    check(sqnr(ref[1], ya[1]) > sqnr(ref[1], yr[1]) + 0.5,
          "the full-range layer is more accurate: %.1f dB vs %.1f reduced" % (sqnr(ref[1], ya[1]), sqnr(ref[1], yr[1])))


def log_input_checks():
    """Before a Log, int8's absolute error turns relative: a MatMul whose
    outputs span decades (mel bands of a power spectrum) must stay float when
    only a Log reads it (oww_melspec: 3.7 -> 11.7 dB output SQNR)."""
    rng = np.random.default_rng(5)
    w = np.abs(rng.standard_normal((64, 16))).astype(np.float32) * (10.0 ** np.linspace(-4, 1, 16)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["spec", "mel"], ["mel_power"], name="mel_matmul"),
             helper.make_node("Add", ["mel_power", "eps"], ["mel_eps"], name="add_eps"),
             helper.make_node("Log", ["mel_eps"], ["logmel"], name="log"),
             helper.make_node("Mul", ["logmel", "ten"], ["out"], name="scale")]
    g = helper.make_graph(nodes, "logmel", [helper.make_tensor_value_info("spec", TensorProto.FLOAT, ["N", 64])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 16])],
                          [numpy_helper.from_array(w, "mel"), numpy_helper.from_array(np.array(1e-6, np.float32), "eps"),
                           numpy_helper.from_array(np.array(10, np.float32), "ten")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    src = os.path.join(TMP, "logmel.onnx")
    onnx.save(m, src)
    cal = os.path.join(TMP, "logmel_calib")
    os.makedirs(cal, exist_ok=True)
    x = rng.random((32, 64)).astype(np.float32)
    np.save(os.path.join(cal, "spec.npy"), x)
    ref = run(src, {"spec": x})[0]
    out = quantize(src, "logmel_s8.onnx", "--mode", "static", "--placement", "all", "--calib", cal)
    got = run(out, {"spec": x})[0] if out else ref * 0
    q = onnx.load(out) if out else None
    add = [n for n in q.graph.node if n.name == "add_eps"] if q else []
    check(sqnr(ref, got) > 30 and add and not any(i.endswith("dequantized") for i in add[0].input),
          "the Add read only by a Log stays float, the MatMul's output with it: log-mel SQNR %.1f dB" % sqnr(ref, got))


def static_checks():
    calib = os.path.join(SAMPLES, "digits", "calib")
    cnn = os.path.join(SAMPLES, "digits_cnn.onnx")
    # static int8 per-channel: the target (drop <= 0.5 points), SQNR through ORT's int8 kernels
    # (--placement all: every op in int8; the latency placement leaves a model this small float)
    a = digits("digits_cnn.onnx", "cnn_static.onnx", ["--mode", "static", "--calib", calib, "--placement", "all"], 0.5, 33)
    digits("digits_mlp.onnx", "mlp_static.onnx", ["--mode", "static", "--calib", calib, "--placement", "all"], 0.5, 33)
    digits("digits_cnn.onnx", "cnn_static_pct.onnx",
           ["--mode", "static", "--calib", calib, "--placement", "all", "--calib-method", "percentile:99.99"], 0.5, 30)
    digits("digits_cnn.onnx", "cnn_static_mse.onnx",
           ["--mode", "static", "--calib", calib, "--placement", "all", "--calib-method", "mse"], 0.5, 30)
    digits("digits_cnn.onnx", "cnn_static_entropy.onnx",
           ["--mode", "static", "--calib", calib, "--placement", "all", "--calib-method", "entropy"], 0.5, 25)
    digits("digits_cnn.onnx", "cnn_static_s8.onnx",
           ["--mode", "static", "--calib", calib, "--placement", "all", "--act-dtype", "int8"], 0.5, 30)
    m = onnx.load(a)
    check(sum(n.op_type == "QuantizeLinear" for n in m.graph.node) >= 5, "static: activations get QuantizeLinear")
    check(not any(n.op_type == "Relu" for n in m.graph.node), "static: Relu folded into the quantized outputs")
    # same bytes whatever the thread count; a cached table gives the same bytes as calibrating
    t1 = quantize(cnn, "st_t1.onnx", "--mode", "static", "--calib", calib, "--placement", "all", "--threads", "1")
    t2 = quantize(cnn, "st_t2.onnx", "--mode", "static", "--calib", calib, "--placement", "all", "--threads", "2")
    check(open(t1, "rb").read() == open(t2, "rb").read(), "static: same bytes with 1 and 2 threads")
    table = os.path.join(TMP, "table.json")
    r = subprocess.run([HPCZ, "calibrate", cnn, "--calib", calib, "-o", table, "-q"], capture_output=True, text=True)
    check(r.returncode == 0, "hpcz calibrate writes a table")
    t3 = quantize(cnn, "st_table.onnx", "--mode", "static", "--calib-table", table, "--placement", "all")
    # the table holds the ranges of the model before cross-layer equalization
    t0 = quantize(cnn, "st_noeq.onnx", "--mode", "static", "--calib", calib, "--placement", "all", "--no-equalize")
    check(open(t0, "rb").read() == open(t3, "rb").read(),
          "static with --calib-table equals calibrating in the run (--no-equalize)")
    # calibration data that does not fit the model: one line naming the file and the expected shape
    bad = os.path.join(TMP, "badcalib")
    os.makedirs(bad, exist_ok=True)
    np.save(os.path.join(bad, "input.npy"), np.zeros((4, 64), np.float32))
    r = subprocess.run([HPCZ, "quantize", cnn, "-o", os.path.join(TMP, "never.onnx"), "--mode", "static",
                        "--calib", bad], capture_output=True, text=True)
    check(r.returncode == 1 and "input.npy" in r.stderr and "[batch,1,8,8]" in r.stderr
          and len(r.stderr.strip().splitlines()) == 1 and not os.path.exists(os.path.join(TMP, "never.onnx")),
          "mismatched calibration data: one line naming file and expected shape (%s)" % r.stderr.strip())
    r = subprocess.run([HPCZ, "quantize", cnn, "-o", os.path.join(TMP, "never.onnx"), "--mode", "static"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "calibration data" in r.stderr, "static without data: usage error that says so")
    r = subprocess.run([HPCZ, "quantize", cnn, "-o", os.path.join(TMP, "rnd.onnx"), "--mode", "static",
                        "--calib", "random:16"], capture_output=True, text=True)
    check(r.returncode == 0 and "proxy" in r.stderr, "random calibration works and says it is a proxy")


def main():
    # accuracy targets of the issue, with SQNR floors measured once and kept with margin
    q8 = digits("digits_cnn.onnx", "cnn_int8.onnx", [], 0.5, 38)
    digits("digits_cnn.onnx", "cnn_int8_pt.onnx", ["--per-tensor"], 0.5, 35)
    digits("digits_cnn.onnx", "cnn_int4.onnx", ["--dtype", "int4"], 2.0, 24)
    h16 = digits("digits_cnn.onnx", "cnn_fp16.onnx", ["--dtype", "fp16", "--keep-io-types"], 0.0, 55)
    if h16:
        # hpcz's own runtime runs the float16 model too (float32 kernels on
        # widened inputs, outputs rounded to float16), close to ORT's run
        out = os.path.join(TMP, "fp16_run")
        r = subprocess.run([HPCZ, "run", h16, "--input", "input=" + os.path.join(SAMPLES, "digits", "test_input.npy"),
                            "-o", out, "-q"], capture_output=True, text=True)
        check(r.returncode == 0, "hpcz run on the float16 model: %s" % r.stderr.strip())
        if r.returncode == 0:
            got = np.load(os.path.join(out, "logits.npy"))
            ref = run(h16, {"input": X})[0]
            check(sqnr(ref, got) > 50, "hpcz vs ORT on the float16 model: %.1f dB > 50" % sqnr(ref, got))
    digits("digits_cnn.onnx", "cnn_fp16_io.onnx", ["--dtype", "fp16"], 0.0, 45, fp16_io=True)
    digits("digits_mlp.onnx", "mlp_int8.onnx", [], 0.5, 40)
    # int8 in blocks (opset 21 blocked DequantizeLinear), like ORT's MatMulNBits int8 anchor
    b64 = digits("digits_mlp.onnx", "mlp_int8_b64.onnx", ["--block-size", "64"], 0.5, 48)
    if b64:
        dqs = [n for n in onnx.load(b64).graph.node if n.op_type == "DequantizeLinear"]
        bs = [a.i for n in dqs for a in n.attribute if a.name == "block_size"]
        check(len(dqs) == 3 and bs == [64, 64, 64], "int8 --block-size 64: 3 blocked DequantizeLinear")
    digits("digits_mlp.onnx", "mlp_int4.onnx", ["--dtype", "int4", "--block-size", "32"], 2.0, 24)
    digits("digits_mlp.onnx", "mlp_fp16.onnx", ["--dtype", "fp16", "--keep-io-types"], 0.0, 55)
    fp16_fold_checks()

    # deterministic: same bytes twice
    again = quantize(os.path.join(SAMPLES, "digits_cnn.onnx"), "cnn_int8_again.onnx")
    check(open(q8, "rb").read() == open(again, "rb").read(), "int8 output is byte-identical across runs")

    # the int8 model stores int8 weights: fewer bytes than a quarter + scales
    m = onnx.load(q8)
    kinds = {t.data_type for t in m.graph.initializer}
    check(TensorProto.INT8 in kinds, "int8 initializers present")
    check(os.path.getsize(q8) < 0.4 * os.path.getsize(os.path.join(SAMPLES, "digits_cnn.onnx")),
          "int8 model is under 40% of the float file")

    # weights held in Constant nodes are weights
    pat = os.path.join(SAMPLES, "patterns")
    cw = os.path.join(pat, "const_weights.onnx")
    out = quantize(cw, "const_int8.onnx")
    onnx.checker.check_model(out, full_check=True)
    feeds = {"input": np.load(os.path.join(pat, "const_weights.input_input.npy"))}
    ref, got = run(cw, feeds)[0], run(out, feeds)[0]
    check(sqnr(ref, got) > 30, "Constant-node weights quantized, SQNR %.1f dB" % sqnr(ref, got))
    check(sum(n.op_type == "DequantizeLinear" for n in onnx.load(out).graph.node) == 3,
          "the 3 Constant-node weights (2 Conv, 1 Gemm) go through DequantizeLinear")

    # weights used inside If branches
    ifm = os.path.join(pat, "if_subgraph.onnx")
    out = quantize(ifm, "if_int8.onnx", "--block-size", "16")
    onnx.checker.check_model(out, full_check=True)
    x = np.load(os.path.join(pat, "if_subgraph.input_x.npy"))
    for c in ("true", "false"):
        cond = np.load(os.path.join(pat, "if_subgraph.input_cond_%s.npy" % c))
        ref, got = run(ifm, {"x": x, "cond": cond})[0], run(out, {"x": x, "cond": cond})[0]
        check(sqnr(ref, got) > 30, "If model with cond=%s: SQNR %.1f dB" % (c, sqnr(ref, got)))
    check(any(n.op_type == "DequantizeLinear" for n in onnx.load(out).graph.node),
          "the weight read inside the If branch is quantized")

    # opset upgrade: an opset-10 model with ops whose schema changed, to 21 for int4
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.normal(size=(16, 8)).astype(np.float32), "W")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["a"], name="mm"),
        helper.make_node("Unsqueeze", ["a"], ["b"], name="unsq", axes=[0]),
        helper.make_node("ReduceMean", ["b"], ["c"], name="rmean", axes=[0], keepdims=0),
        helper.make_node("Softmax", ["c"], ["d"], name="sm", axis=1),
        helper.make_node("Clip", ["d"], ["e"], name="clip", min=0.01, max=0.9),
        helper.make_node("Split", ["e"], ["s1", "s2"], name="split", axis=1, split=[3, 5]),
        helper.make_node("Squeeze", ["s1"], ["y"], name="sq", axes=[0]),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3]),
                           helper.make_tensor_value_info("s2", TensorProto.FLOAT, [1, 5])], initializer=[w])
    old = os.path.join(TMP, "opset10.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 10)], ir_version=5), old)
    up = os.path.join(TMP, "opset21.onnx")
    r = subprocess.run([HPCZ, "convert", old, "-o", up, "--passes", "upgrade-opset{to=21}"], capture_output=True, text=True)
    check(r.returncode == 0, "upgrade-opset 10 -> 21 runs: %s" % r.stderr.strip())
    onnx.checker.check_model(up, full_check=True)
    feeds = {"x": rng.normal(size=(1, 16)).astype(np.float32)}
    a, b = run(old, feeds), run(up, feeds)
    check(all(np.allclose(p, q, rtol=1e-6, atol=1e-7) for p, q in zip(a, b)),
          "opset 10 -> 21 (Unsqueeze, ReduceMean, Softmax, Clip, Split, Squeeze) gives the same outputs")
    out = quantize(old, "opset10_int4.onnx", "--dtype", "int4", "--block-size", "16")
    check(out is not None and onnx.load(out).opset_import[0].version == 21, "int4 upgrades the opset to 21")

    # float16 with values float16 cannot hold
    c = 4
    nodes = [
        helper.make_node("Conv", ["x", "cw"], ["c1"], name="conv"),
        helper.make_node("BatchNormalization", ["c1", "g", "b", "mean", "var"], ["bn"], name="bn_big_var"),
        helper.make_node("Mul", ["bn", "big"], ["scaled"], name="mul_2p20"),
        helper.make_node("Abs", ["scaled"], ["ab"], name="abs"),
        helper.make_node("Clip", ["ab", "tiny", "hi"], ["cl"], name="clip_1e-10"),
        helper.make_node("Log", ["cl"], ["lg"], name="log"),
        helper.make_node("Relu", ["lg"], ["y"], name="relu"),
    ]
    inits = [
        numpy_helper.from_array(rng.normal(size=(c, 1, 3, 3)).astype(np.float32), "cw"),
        numpy_helper.from_array(np.ones(c, np.float32), "g"),
        numpy_helper.from_array(np.zeros(c, np.float32), "b"),
        numpy_helper.from_array(np.zeros(c, np.float32), "mean"),
        numpy_helper.from_array(np.full(c, 1e8, np.float32), "var"),
        numpy_helper.from_array(np.array(2.0 ** 20, np.float32), "big"),
        numpy_helper.from_array(np.array(1e-10, np.float32), "tiny"),
        numpy_helper.from_array(np.array(1e30, np.float32), "hi"),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 6, 6])], initializer=inits)
    src = os.path.join(TMP, "ranges.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
    feeds = {"x": rng.normal(size=(1, 1, 8, 8)).astype(np.float32)}
    ref = run(src, feeds)[0]
    r = subprocess.run([HPCZ, "quantize", src, "-o", os.path.join(TMP, "ranges16.onnx"), "--dtype", "fp16",
                        "--keep-io-types", "--no-fold"], capture_output=True, text=True)
    check(r.returncode == 0, "fp16 on out-of-range constants runs")
    got = run(os.path.join(TMP, "ranges16.onnx"), feeds)[0]
    check(np.all(np.isfinite(got)) and np.allclose(ref, got, rtol=2e-2, atol=2e-2),
          "fp16 model with var=1e8, 2^20 and a 1e-10 Clip stays close to float32 (max diff %.3g)" % np.max(np.abs(ref - got)))
    for node in ("bn_big_var", "mul_2p20", "clip_1e-10"):
        check(node in r.stderr, "the summary says why '%s' stayed float32" % node)
    # the naive cast that hpcz avoids really breaks this model
    naive = onnx.load(src)
    for t in naive.graph.initializer:
        arr = numpy_helper.to_array(t)
        if arr.dtype == np.float32:
            t.CopyFrom(numpy_helper.from_array(arr.astype(np.float16), t.name))
    naive.graph.input[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    naive.graph.output[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.save(naive, os.path.join(TMP, "naive16.onnx"))
    bad = run(os.path.join(TMP, "naive16.onnx"), {"x": feeds["x"].astype(np.float16)})[0].astype(np.float32)
    check(not np.allclose(ref, bad, rtol=2e-2, atol=2e-2), "a naive float16 cast of the same model is wrong (control)")

    logmel_checks()
    fp16_subgraph_checks()
    fp16_layernorm_checks()
    fallback_checks()
    subgraph_constant_checks()
    static_checks()
    placement_checks()
    entropy_checks()
    stem_conv_checks()
    reduce_range_checks()
    log_input_checks()
    gptq_checks()
    gptq_reference_checks()
    default_algo_checks()
    dynamic_checks()
    shared_bias_check()
    output_also_read_check()
    outlier_check()
    sys.exit(tally())


if __name__ == "__main__":
    main()
