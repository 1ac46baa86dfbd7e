"""early-fp16 (quantize-int8{early-fp16=PCT}, `--early-fp16`, default 1.5 for
weight-only int8 per channel without GPTQ) on a small dense-prediction net
built here, the shape of ppocr_det's: a high-resolution stem (two 3x3 Convs,
792 weights) whose features skip straight to the head, a deep low-resolution
path (over 99% of the weights) upsampled and added to them, then a
ConvTranspose and a Sigmoid: a map of the input's size. The stem's rounding
noise reaches every output pixel unaveraged.

Checks (ONNX Runtime against the float model):
* default weight-only: the stem's two weights (and only they: 1% of the Conv
  weights) are float16 initializers read through Cast(to=float), -v names
  them; every other weight is int8 behind DequantizeLinear;
* the output's worst-sample cosine and SQNR against the float model are
  better than with --early-fp16 0 (every layer int8), and the file is larger
  by the stem's float16 bytes only;
* --early-fp16 0 gives the bytes of the pipeline without it; --early-fp16 5
  takes the next layer too; same bytes on a second run;
* a classifier (the same net ending in GlobalAveragePool -> Gemm) keeps every
  weight int8: the same bytes as --early-fp16 0; a U-Net head (Resize ->
  Conv -> Sigmoid) counts as dense, as the ConvTranspose one;
* --calib --algo rtn --bias-correction: the stem stays float16 and its bias
  is the float model's (the correction skips it); --calib (GPTQ): the
  early-fp16 pass makes the stem float16 before GPTQ, which leaves it alone;
* --early-fp16 -1 / x: exit 2, one line.

Usage: python test_early_fp16.py HPCZ SOURCE_ROOT
"""
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from harness import check, hpcz, tally

TMP = tempfile.mkdtemp(prefix="hpcz-early-fp16-")

# name, in, out, kernel, stride; the stem first, in graph order
STEM = [("stem1", 3, 8, 3, 1), ("stem2", 8, 8, 3, 1)]
DEEP = [("down", 8, 64, 3, 2), ("deep1", 64, 64, 3, 1), ("deep2", 64, 64, 3, 1), ("deep3", 64, 64, 3, 1),
        ("deep4", 64, 8, 1, 1)]


def conv(rng, inits, name, cin, cout, k, stride, x, relu=True):
    w = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
    if name.startswith("stem"):
        w[:, 0, 0, 0] = 12 * np.abs(w).max()  # one large tap per channel sets its range: coarse steps for the rest
    b = (0.1 * rng.standard_normal(cout)).astype(np.float32)
    inits += [numpy_helper.from_array(w, name + ".w"), numpy_helper.from_array(b, name + ".b")]
    nodes = [helper.make_node("Conv", [x, name + ".w", name + ".b"], [name], name=name, kernel_shape=[k, k],
                              pads=[k // 2] * 4, strides=[stride, stride])]
    if relu:
        nodes.append(helper.make_node("Relu", [name], [name + ".r"], name=name + ".relu"))
    return nodes, name + ".r" if relu else name


def make_model(path, dense=True):
    rng = np.random.default_rng(5)
    inits, nodes, x = [], [], "x"
    for spec in STEM:
        n, x = conv(rng, inits, *spec, x)
        nodes += n
    skip = x
    for spec in DEEP:
        n, x = conv(rng, inits, *spec, x)
        nodes += n
    inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
    nodes += [helper.make_node("Resize", [x, "", "scales"], ["up"], name="resize", mode="nearest"),
              helper.make_node("Add", [skip, "up"], ["fused"], name="fuse")]
    if dense == "unet":
        # Resize -> Conv 3x3 -> Sigmoid: the dense map comes out of a Conv
        wh = (rng.standard_normal((1, 8, 3, 3)) / np.sqrt(72)).astype(np.float32)
        inits += [numpy_helper.from_array(wh, "head.w"),
                  numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales2")]
        nodes += [helper.make_node("Resize", ["fused", "", "scales2"], ["big"], name="resize2", mode="nearest"),
                  helper.make_node("Conv", ["big", "head.w"], ["logits"], name="head", kernel_shape=[3, 3],
                                   pads=[1] * 4),
                  helper.make_node("Sigmoid", ["logits"], ["y"], name="prob")]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 32, 32])
    elif dense:
        wt = (rng.standard_normal((8, 1, 2, 2)) / np.sqrt(8)).astype(np.float32)
        inits.append(numpy_helper.from_array(wt, "head.w"))
        nodes += [helper.make_node("ConvTranspose", ["fused", "head.w"], ["logits"], name="head",
                                   kernel_shape=[2, 2], strides=[2, 2]),
                  helper.make_node("Sigmoid", ["logits"], ["y"], name="prob")]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 32, 32])
    else:
        wg = (rng.standard_normal((10, 8)) / np.sqrt(8)).astype(np.float32)
        inits += [numpy_helper.from_array(wg, "fc.w"), numpy_helper.from_array(np.zeros(10, np.float32), "fc.b")]
        nodes += [helper.make_node("GlobalAveragePool", ["fused"], ["gap"]),
                  helper.make_node("Flatten", ["gap"], ["flat"]),
                  helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["y"], name="fc", transB=1)]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])
    g = helper.make_graph(nodes, "early", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                          [out], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def run(path, x):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def fidelity(ref, out):
    """Worst per-sample cosine and SQNR (dB) of out against ref."""
    a, b = ref.reshape(len(ref), -1).astype(np.float64), out.reshape(len(out), -1).astype(np.float64)
    cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return float(cos.min()), float(10 * np.log10((a * a).sum() / ((a - b) ** 2).sum()))


def weight_forms(path):
    """Each Conv/ConvTranspose weight's form: 'fp16' (Cast of a float16
    initializer), 'int8' (DequantizeLinear of int8) or 'float'; and the
    initializers by name."""
    m = onnx.load(path)
    init = {i.name: i for i in m.graph.initializer}
    prod = {o: n for n in m.graph.node for o in n.output}
    forms = {}
    for n in m.graph.node:
        if n.op_type not in ("Conv", "ConvTranspose", "Gemm"):
            continue
        p = prod.get(n.input[1])
        src = init.get(p.input[0]) if p is not None else None
        if p is not None and p.op_type == "Cast" and src is not None and src.data_type == TensorProto.FLOAT16:
            forms[n.name] = "fp16"
        elif p is not None and p.op_type == "DequantizeLinear" and src is not None and src.data_type == TensorProto.INT8:
            forms[n.name] = "int8"
        else:
            forms[n.name] = "float"
    return forms, init, prod, m


def main():
    src = os.path.join(TMP, "dense.onnx")
    make_model(src)
    x = np.random.default_rng(1).uniform(-1, 1, (12, 3, 16, 16)).astype(np.float32)
    yf = run(src, x)

    out = {k: os.path.join(TMP, f"dense.{k}.onnx") for k in ("default", "off", "again", "pct3")}
    r = hpcz("quantize", src, "-o", out["default"], "-v")
    check(r.returncode == 0, "weight-only int8 of the dense net")
    forms, init, prod, _ = weight_forms(out["default"])
    want = {"stem1": "fp16", "stem2": "fp16", "down": "int8", "deep1": "int8", "deep2": "int8", "deep3": "int8",
            "deep4": "int8", "head": "int8"}
    check(forms == want, f"the stem's two Convs (1% of the Conv weights) are float16, the rest int8: {forms}")
    check("stem1.w: float16, 216 weights (early-fp16" in r.stderr and "stem2.w: float16, 576 weights" in r.stderr
          and "the weights of the first 2 convolutions kept float16" in r.stderr, "-v names the float16 layers")

    r = hpcz("quantize", src, "-o", out["off"], "--early-fp16", "0")
    check(r.returncode == 0, "--early-fp16 0")
    forms_off = weight_forms(out["off"])[0]
    check(all(v == "int8" for v in forms_off.values()), "--early-fp16 0: every weight int8")
    cos_on, sq_on = fidelity(yf, run(out["default"], x))
    cos_off, sq_off = fidelity(yf, run(out["off"], x))
    check(sq_on > sq_off + 3 and cos_on > cos_off and 1 - cos_on < 0.6 * (1 - cos_off),
          f"ONNX Runtime: the stem in float16 {sq_off:.1f} -> {sq_on:.1f} dB, worst cosine {cos_off:.6f} -> "
          f"{cos_on:.6f} (at least 3 dB, and 1 - cosine down by 40%)")
    grow = os.path.getsize(out["default"]) - os.path.getsize(out["off"])
    # 792 weights: 2 bytes instead of 1, less the int8 scales (4 B per channel, 16 channels)
    check(0 < grow <= 792 - 16 * 4 + 256, f"the file grows by the stem's float16 bytes only (+{grow} B)")

    r = hpcz("quantize", src, "-o", out["again"])
    with open(out["default"], "rb") as f1, open(out["again"], "rb") as f2:
        check(r.returncode == 0 and f1.read() == f2.read(), "same bytes on a second run")
    piped = os.path.join(TMP, "dense.passes.onnx")
    r = hpcz("quantize", src, "-o", piped, "--passes", "fold-bn,eliminate,quantize-int8{rounding=balanced},dce")
    with open(out["off"], "rb") as f1, open(piped, "rb") as f2:
        check(r.returncode == 0 and f1.read() == f2.read(),
              "--early-fp16 0 gives the bytes of quantize-int8 without early-fp16")
    r = hpcz("quantize", src, "-o", out["pct3"], "--early-fp16", "5")
    forms3 = weight_forms(out["pct3"])[0] if r.returncode == 0 else {}
    check(forms3.get("down") == "fp16" and forms3.get("deep1") == "int8",
          f"--early-fp16 5 takes the next layer too (down: 5400 of 116.5K weights so far): {forms3}")

    cls = os.path.join(TMP, "cls.onnx")
    make_model(cls, dense=False)
    cq, cq0 = os.path.join(TMP, "cls.q.onnx"), os.path.join(TMP, "cls.q0.onnx")
    r1, r0 = hpcz("quantize", cls, "-o", cq), hpcz("quantize", cls, "-o", cq0, "--early-fp16", "0")
    with open(cq, "rb") as f1, open(cq0, "rb") as f2:
        check(r1.returncode == 0 and r0.returncode == 0 and f1.read() == f2.read(),
              "a classifier (GlobalAveragePool -> Gemm output) keeps every weight int8: same bytes as --early-fp16 0")

    unet = os.path.join(TMP, "unet.onnx")
    make_model(unet, dense="unet")
    uq = os.path.join(TMP, "unet.q.onnx")
    r = hpcz("quantize", unet, "-o", uq)
    forms_u = weight_forms(uq)[0] if r.returncode == 0 else {}
    check(forms_u == want, f"a U-Net head (Resize -> Conv -> Sigmoid) is a dense map too: {forms_u}")

    calib = os.path.join(TMP, "calib")
    os.makedirs(calib)
    np.save(os.path.join(calib, "x.npy"), np.random.default_rng(2).uniform(-1, 1, (8, 3, 16, 16)).astype(np.float32))
    bc = os.path.join(TMP, "dense.bc.onnx")
    r = hpcz("quantize", src, "-o", bc, "--calib", calib, "--algo", "rtn", "--bias-correction", "--threads", "1")
    forms_bc, init_bc, prod_bc, mbc = weight_forms(bc) if r.returncode == 0 else ({}, {}, {}, None)
    check(forms_bc.get("stem1") == "fp16" and forms_bc.get("stem2") == "fp16" and forms_bc.get("down") == "int8",
          f"--calib --algo rtn --bias-correction: the stem stays float16: {forms_bc}")
    fm = onnx.load(src)
    fb = {i.name: numpy_helper.to_array(i) for i in fm.graph.initializer}
    ok = mbc is not None
    for n in (mbc.graph.node if mbc else []):
        if n.name in ("stem1", "stem2"):
            b = init_bc.get(n.input[2])
            ok = ok and b is not None and np.array_equal(numpy_helper.to_array(b), fb[n.name + ".b"])
    check(ok, "bias correction leaves the float16 layers' biases as they were")

    gq = os.path.join(TMP, "dense.gptq.onnx")
    r = hpcz("quantize", src, "-o", gq, "--calib", calib, "--threads", "1", "-v")
    forms_gq = weight_forms(gq)[0] if r.returncode == 0 else {}
    check(forms_gq == want and "early-fp16: stem1.w: float16" in r.stderr
          and "quantize-gptq: stem" not in r.stderr,
          f"--calib (GPTQ): the early-fp16 pass makes the stem float16 first and GPTQ leaves it alone: {forms_gq}")
    cos_gq, sq_gq = fidelity(yf, run(gq, x)) if r.returncode == 0 else (0, 0)
    check(cos_gq > cos_off and sq_gq > sq_off, f"GPTQ with the stem in float16: {sq_gq:.1f} dB, worst cosine "
          f"{cos_gq:.6f} (every layer int8 by balanced rounding: {sq_off:.1f} dB, {cos_off:.6f})")

    wrong_mode = "--early-fp16 is for weight-only int8 per channel (no --block-size)"
    for args, msg in ((["--early-fp16", "-1"], "--early-fp16: '-1' is not a percentage in [0, 100]"),
                      (["--early-fp16", "x"], "--early-fp16: 'x' is not a percentage in [0, 100]"),
                      (["--early-fp16", "2", "--dtype", "fp16"], wrong_mode),
                      (["--early-fp16", "2", "--per-tensor"], wrong_mode),
                      (["--early-fp16", "2", "--dtype", "int4"], wrong_mode),
                      (["--early-fp16", "2", "--mode", "static", "--calib", calib], wrong_mode)):
        arg = " ".join(args)
        bad = os.path.join(TMP, "bad.onnx")
        r = hpcz("quantize", src, "-o", bad, *args)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and lines and msg in lines[0] and not os.path.exists(bad),
              f"{arg}: exit 2, '{lines[0] if lines else ''}'")
    return tally()


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(rc)
