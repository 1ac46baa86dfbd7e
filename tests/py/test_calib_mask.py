"""Token masks in calibration (--calib-mask) and SmoothQuant (smooth-quant,
--smooth-quant), on a small transformer-like block built here: LayerNorm ->
MatMul -> Relu -> Mul 0.5 -> Reshape to [B*T, H] -> MatMul -> Reshape back
-> residual Add with the LayerNorm output, a padded batch with an
attention_mask, and outlier channels in the LayerNorm's scale.

Checks:
* the mask is found by name and padded tokens (given huge values) stay out
  of the calibration table: ranges equal numpy's over the real tokens, for
  the input and a MatMul output ([B, T, C]) and the flattened one ([B*T, C]);
  --calib-mask none counts them;
* smooth-quant keeps the float model's outputs (hpcz run and ONNX Runtime,
  within 1e-5 relative) and raises static int8 SQNR on the outlier model;
* GPTQ and --reconstruct run with the mask.

Usage: python test_calib_mask.py HPCZ SOURCE_ROOT
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

from harness import HPCZ, check, hpcz, session, tally, sqnr

TMP = tempfile.mkdtemp(prefix="hpcz-mask-")
B, T, C, H = 16, 12, 32, 64


def make_model(path, outliers):
    rng = np.random.default_rng(0)
    gamma = np.ones(C, np.float32) + 0.1 * rng.standard_normal(C).astype(np.float32)
    w2_gain = 1.0
    if outliers:
        gamma[[3, 17]] = [40.0, -30.0]
        w2_gain = 20.0  # the block's output, not its residual, carries the quantization error
    beta = 0.1 * rng.standard_normal(C).astype(np.float32)
    w1 = (rng.standard_normal((C, H)) / np.sqrt(C)).astype(np.float32)
    if outliers:
        w1[[3, 17], :] /= 40.0  # outlier channels that matter no more than the others
    w2 = (w2_gain * rng.standard_normal((H, C)) / np.sqrt(H)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in [
        (gamma, "gamma"), (beta, "beta"), (w1, "w1"), (w2, "w2"), (np.array([-1, H], np.int64), "flat"),
        (np.array(0.5, np.float32), "half")]]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["h"], axis=-1),
        helper.make_node("Shape", ["x"], ["xshape"]),
        helper.make_node("MatMul", ["h", "w1"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Mul", ["r", "half"], ["g"]),
        helper.make_node("Reshape", ["g", "flat"], ["gf"]),
        helper.make_node("MatMul", ["gf", "w2"], ["f"]),
        helper.make_node("Reshape", ["f", "xshape"], ["f3"]),
        helper.make_node("Add", ["h", "f3"], ["y"]),
        # mask-mean pooling
        helper.make_node("Cast", ["attention_mask"], ["mf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mf", "axes"], ["m3"]),
        helper.make_node("Mul", ["y", "m3"], ["ym"]),
        helper.make_node("ReduceSum", ["ym", "one"], ["s"], keepdims=0),
        helper.make_node("ReduceSum", ["m3", "one"], ["cnt"], keepdims=0),
        helper.make_node("Div", ["s", "cnt"], ["emb"]),
    ]
    inits += [numpy_helper.from_array(np.array([2], np.int64), "axes"),
              numpy_helper.from_array(np.array([1], np.int64), "one")]
    g = helper.make_graph(nodes, "block",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", T, C]),
                           helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", T])],
                          [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["batch", C])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return gamma, beta, w1, w2


def make_data(folder, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(folder)
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    lens = rng.integers(3, T + 1, B)
    lens[0] = 3
    mask = (np.arange(T)[None, :] < lens[:, None]).astype(np.int64)
    x[mask == 0] = 1000.0 * rng.standard_normal((int((mask == 0).sum()), C)).astype(np.float32)
    np.save(os.path.join(folder, "x.npy"), x)
    np.save(os.path.join(folder, "attention_mask.npy"), mask)
    return x, mask


def layernorm(x, gamma, beta):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * gamma + beta


def mask_checks():
    src = os.path.join(TMP, "block.onnx")
    gamma, beta, w1, w2 = make_model(src, outliers=False)
    calib = os.path.join(TMP, "calib")
    x, mask = make_data(calib, 1)
    r = hpcz("calibrate", src, "--calib", calib, "-o", os.path.join(TMP, "masked.json"))
    check(r.returncode == 0 and "by the mask in input 'attention_mask'" in r.stderr,
          "calibrate finds attention_mask and says so")
    r = hpcz("calibrate", src, "--calib", calib, "--calib-mask", "none", "-o", os.path.join(TMP, "all.json"))
    check(r.returncode == 0 and "attention_mask" not in r.stderr, "--calib-mask none: no mask, no note")
    tm = json.load(open(os.path.join(TMP, "masked.json")))["tensors"]
    ta = json.load(open(os.path.join(TMP, "all.json")))["tensors"]
    real = x[mask == 1]
    a = layernorm(x, gamma, beta) @ w1
    f = (0.5 * np.maximum(a, 0) @ w2).reshape(B * T, C)  # flattened [B*T, C]
    for name, want, every in [("x", real, x), ("a", a[mask == 1], a), ("f", f[mask.reshape(-1) == 1], f)]:
        lo, hi = float(want.min()), float(want.max())
        ok = np.isclose(tm[name]["min"], lo, rtol=1e-4, atol=1e-4) and np.isclose(tm[name]["max"], hi, rtol=1e-4, atol=1e-4)
        check(ok, "masked range of '%s' is the real tokens' [%.3f, %.3f] (got [%.3f, %.3f])"
              % (name, lo, hi, tm[name]["min"], tm[name]["max"]))
        ok = np.isclose(ta[name]["max"], float(every.max()), rtol=1e-4, atol=1e-4)
        check(ok, "unmasked range of '%s' counts the padding (max %.1f)" % (name, ta[name]["max"]))
    check(ta["x"]["max"] > 100 and tm["x"]["max"] < 10, "the padding's huge values stay out of the masked table")
    # GPTQ and --reconstruct with the mask: they run, and the result differs
    # from the unmasked one (other Hessians)
    outs = {}
    for tag, extra in [("m", []), ("n", ["--calib-mask", "none"])]:
        o = os.path.join(TMP, "gptq_%s.onnx" % tag)
        r = hpcz("quantize", src, "-o", o, "--dtype", "int4", "--block-size", "16", "--calib", calib, "-q", *extra)
        check(r.returncode == 0, "int4 GPTQ %s" % (extra or "with the mask"))
        outs[tag] = o
        o = os.path.join(TMP, "rec_%s.onnx" % tag)
        r = hpcz("prune", src, "-o", o, "--sparsity", "0.5", "--reconstruct", "--calib", calib, "-q", *extra)
        check(r.returncode == 0, "prune --reconstruct %s" % (extra or "with the mask"))
        outs["rec_" + tag] = o
    ev_x, ev_m = x[:4], mask[:4]
    ref = session(src).run(None, {"x": ev_x, "attention_mask": ev_m})[0]
    for tag in ["m", "n", "rec_m", "rec_n"]:
        got = session(outs[tag]).run(None, {"x": ev_x, "attention_mask": ev_m})[0]
        print("   %s: embedding SQNR %.1f dB" % (tag, sqnr(ref, got)))
    differ = any(a.raw_data != b.raw_data for a, b in zip(onnx.load(outs["rec_m"]).graph.initializer,
                                                           onnx.load(outs["rec_n"]).graph.initializer))
    check(differ, "--reconstruct's weights depend on the mask")


def smooth_checks():
    src = os.path.join(TMP, "outliers.onnx")
    make_model(src, outliers=True)
    calib = os.path.join(TMP, "calib_o")
    make_data(calib, 2)
    evald = os.path.join(TMP, "eval_o")
    x, mask = make_data(evald, 3)
    feeds = {"x": x, "attention_mask": mask}
    sm = os.path.join(TMP, "smoothed.onnx")
    r = hpcz("quantize", src, "-o", sm, "--passes", "smooth-quant{alpha=0.5}", "--calib", calib, "-v")
    check(r.returncode == 0, "smooth-quant as a pass")
    ops = [n.op_type for n in onnx.load(sm).graph.node]
    check(ops.count("Mul") == 3, "the LayerNorm and Mul outputs smoothed, one Mul added for the residual reader of the LayerNorm output (%d Mul)"
          % ops.count("Mul"))
    ref = session(src).run(None, feeds)[0]
    got = session(sm).run(None, feeds)[0]
    err = float(np.max(np.abs(ref - got)) / np.max(np.abs(ref)))
    check(err < 1e-5, "smoothed float model = original in ONNX Runtime (relative error %.2g)" % err)
    np.save(os.path.join(TMP, "x.npy"), x)
    np.save(os.path.join(TMP, "attention_mask.npy"), mask)
    outs = []
    for path in [src, sm]:
        o = os.path.join(TMP, os.path.basename(path) + ".out")
        os.makedirs(o, exist_ok=True)
        r = hpcz("run", path, "--input", "x=" + os.path.join(TMP, "x.npy"),
                 "--input", "attention_mask=" + os.path.join(TMP, "attention_mask.npy"), "-o", o, "-q")
        outs.append(np.load(os.path.join(o, "emb.npy")) if r.returncode == 0 else None)
    ok = outs[0] is not None and outs[1] is not None
    err = float(np.max(np.abs(outs[0] - outs[1])) / np.max(np.abs(outs[0]))) if ok else 1.0
    check(ok and err < 1e-5, "smoothed float model = original in hpcz run (relative error %.2g)" % err)
    # static int8: smoothing on (the default) against off
    res = {}
    for tag, extra in [("off", ["--smooth-quant=0"]), ("on", [])]:
        o = os.path.join(TMP, "static_%s.onnx" % tag)
        r = hpcz("quantize", src, "-o", o, "--mode", "static", "--placement", "all", "--calib-method", "minmax",
                 "--calib", calib, "-q", *extra)
        check(r.returncode == 0, "static int8, smoothing %s" % tag)
        res[tag] = sqnr(ref, session(o).run(None, feeds)[0]) if r.returncode == 0 else -99
    print("   static int8 embedding SQNR: %.1f dB without smoothing, %.1f dB with" % (res["off"], res["on"]))
    check(res["on"] > res["off"] + 3, "smoothing raises static int8 SQNR by more than 3 dB")


mask_checks()
smooth_checks()
sys.exit(tally())
