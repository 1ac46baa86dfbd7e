"""Balanced rounding (quantize-int8{rounding=balanced}, the default of
weight-only int8 without data) on a small conv net built here whose
round-to-nearest error has a mean that piles up: Conv -> BatchNormalization
(beta far from zero) -> Relu, three times, then GlobalAveragePool -> Flatten
-> Gemm. Every Relu output has channel means far from zero, so each layer's
rounding error sum dW E[x] is a shift of its whole output.

Checks (ONNX Runtime against the float model, inputs the estimator's
assumption does not know: mean 0.3, sd 0.8):
* the default pipeline names rounding=balanced; --rounding nearest gives
  numpy's round-to-nearest codes (clip minmax);
* balanced codes differ from those by at most one step, only towards the
  float value, and each output channel's shift sum_i e_i E[x_i] (E[x] measured
  here on the data) is a fraction of round-to-nearest's;
* the output SQNR rises by at least 6 dB and the mean output error falls;
* same bytes on a second run and with --threads 1;
* --rounding balanced with --dtype int4 or a bad value: exit 2, one line;
* embedding tables: a 2-row table (token types) stays float, a 64-row one
  is int8;
* a ConvTranspose head (Conv -> BatchNorm -> Relu -> ConvTranspose, input
  with 10x the variance the estimator assumes, as behind ppocr_det's FPN):
  its codes are balanced with equal means, so few move (the estimated means
  with their collapsed variances moved 26% of ppocr_det's) and its output
  SQNR stays within 1 dB of round-to-nearest's.

Usage: python test_balanced_rounding.py HPCZ SOURCE_ROOT
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from harness import HPCZ, check, hpcz, tally

TMP = tempfile.mkdtemp(prefix="hpcz-balanced-")


CONVS = [("conv1", 4, 16, 3), ("conv2", 16, 32, 1), ("conv3", 32, 32, 3)]


def make_model(path):
    rng = np.random.default_rng(11)
    inits, nodes, x = [], [], "x"
    for name, cin, cout, k in CONVS:
        w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        b = (0.1 * rng.standard_normal(cout)).astype(np.float32)
        inits += [numpy_helper.from_array(w, name + ".w"), numpy_helper.from_array(b, name + ".b")]
        # BatchNorm: unit scale after its statistics, beta 1.5..3.5: Relu outputs with large means
        bn = {"s": rng.uniform(0.4, 0.8, cout), "beta": rng.uniform(1.5, 3.5, cout),
              "mean": 0.1 * rng.standard_normal(cout), "var": rng.uniform(0.5, 2.0, cout)}
        inits += [numpy_helper.from_array(v.astype(np.float32), f"{name}.bn.{k2}") for k2, v in bn.items()]
        pad = [k // 2] * 4
        nodes += [
            helper.make_node("Conv", [x, name + ".w", name + ".b"], [name], name=name, kernel_shape=[k, k],
                             pads=pad),
            helper.make_node("BatchNormalization", [name] + [f"{name}.bn.{k2}" for k2 in bn],
                             [name + ".n"], name=name + ".bn"),
            helper.make_node("Relu", [name + ".n"], [name + ".r"], name=name + ".relu"),
        ]
        x = name + ".r"
    wg = (rng.standard_normal((10, 32)) / np.sqrt(32)).astype(np.float32)
    inits += [numpy_helper.from_array(wg, "gemm.w"), numpy_helper.from_array(np.zeros(10, np.float32), "gemm.b")]
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "gemm.w", "gemm.b"], ["y"], name="gemm", transB=1),
    ]
    g = helper.make_graph(nodes, "balanced", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def make_tables(path):
    rng = np.random.default_rng(3)
    words = (0.05 * rng.standard_normal((64, 16))).astype(np.float32)
    types = (0.03 * rng.standard_normal((2, 16))).astype(np.float32)
    types[:, 3] = 0.5  # one outlier dimension, as BERT's token types have
    nodes = [helper.make_node("Gather", ["words", "ids"], ["e"], name="word_embeddings"),
             helper.make_node("Gather", ["types", "tt"], ["t"], name="token_type_embeddings"),
             helper.make_node("Add", ["e", "t"], ["y"])]
    g = helper.make_graph(nodes, "tables",
                          [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", 8]),
                           helper.make_tensor_value_info("tt", TensorProto.INT64, ["b", 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 8, 16])],
                          [numpy_helper.from_array(words, "words"), numpy_helper.from_array(types, "types")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


def make_head(path):
    """Conv -> BatchNorm (beta -3..-2 or 1..2) -> Relu -> ConvTranspose 2x2
    stride 2: with the variance it assumes for the input, the estimator sees
    every other Relu channel nearly dead (mean and variance near 0: moving
    its codes looks free); the data (10x the standard deviation) keep them
    alive."""
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((24, 8, 3, 3)) / np.sqrt(72)).astype(np.float32)
    wt = (rng.standard_normal((24, 8, 2, 2)) / np.sqrt(24)).astype(np.float32)
    beta = np.where(np.arange(24) % 2, rng.uniform(1.0, 2.0, 24), rng.uniform(-3.0, -2.0, 24))
    bn = {"s": np.ones(24), "beta": beta, "mean": np.zeros(24), "var": np.ones(24)}
    inits = [numpy_helper.from_array(w, "c.w"), numpy_helper.from_array(wt, "t.w")]
    inits += [numpy_helper.from_array(v.astype(np.float32), "bn." + k) for k, v in bn.items()]
    nodes = [helper.make_node("Conv", ["x", "c.w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("BatchNormalization", ["c"] + ["bn." + k for k in bn], ["n"], name="bn"),
             helper.make_node("Relu", ["n"], ["r"], name="relu"),
             helper.make_node("ConvTranspose", ["r", "t.w"], ["y"], name="up", kernel_shape=[2, 2],
                              strides=[2, 2])]
    g = helper.make_graph(nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 24, 24])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def transpose_codes(path):
    m = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    dq = {n.output[0]: n for n in m.graph.node if n.op_type == "DequantizeLinear"}
    n = next(n for n in m.graph.node if n.op_type == "ConvTranspose")
    d = dq.get(n.input[1])
    return init[d.input[0]].astype(np.int64) if d else None


def check_head():
    src = os.path.join(TMP, "head.onnx")
    make_head(src)
    x = (6 * np.random.default_rng(9).standard_normal((16, 8, 12, 12))).astype(np.float32)
    out = {}
    for k in ("balanced", "nearest"):
        out[k] = os.path.join(TMP, f"head.{k}.onnx")
        r = hpcz("quantize", src, "-o", out[k], "--clip", "minmax", "--rounding", k,
                 "--include", "up")
        check(r.returncode == 0, f"ConvTranspose head, --rounding {k}")
    qb, qn = transpose_codes(out["balanced"]), transpose_codes(out["nearest"])
    check(qb is not None and qn is not None and qb.shape == (24, 8, 2, 2), "the ConvTranspose weight is int8")
    moved = (qb != qn).mean() if qb is not None and qn is not None else 1
    check(moved < 0.1, f"ConvTranspose: balanced moves {moved:.1%} of its codes (equal means; under 10%)")
    (yf,) = run(src, x)
    sq = {}
    for k, p in out.items():
        (y,) = run(p, x)
        e = (y - yf).astype(np.float64)
        sq[k] = 10 * np.log10((yf.astype(np.float64) ** 2).sum() / (e ** 2).sum())
    check(sq["balanced"] > sq["nearest"] - 1,
          "ConvTranspose head output SQNR: nearest %.1f dB, balanced %.1f dB (ORT against float)"
          % (sq["nearest"], sq["balanced"]))


def run(path, x, outs=None):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(outs, {"x": x})


def folded(src):
    """The float model as hpcz quantizes it: BatchNorm folded into each Conv."""
    out = os.path.join(TMP, "folded.onnx")
    r = hpcz("convert", src, "-o", out, "--passes", "fold-bn,eliminate,dce")
    return out if r.returncode == 0 else None


def codes(path):
    """conv name -> (int8 codes, scales) of its weight."""
    m = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    dq = {n.output[0]: n for n in m.graph.node if n.op_type == "DequantizeLinear"}
    out = {}
    for n in m.graph.node:
        if n.op_type == "Conv" and n.input[1] in dq:
            d = dq[n.input[1]]
            out[n.name] = (init[d.input[0]].astype(np.int64), init[d.input[1]].astype(np.float64))
    return out


def main():
    src = os.path.join(TMP, "net.onnx")
    make_model(src)
    rng = np.random.default_rng(5)
    x = (0.3 + 0.8 * rng.standard_normal((32, 4, 12, 12))).astype(np.float32)

    bal, near = os.path.join(TMP, "bal.onnx"), os.path.join(TMP, "near.onnx")
    r = hpcz("quantize", src, "-o", bal, "--clip", "minmax", "--json")
    check(r.returncode == 0 and "rounding=balanced" in r.stdout,
          "weight-only int8 without data: the pipeline rounds balanced by default")
    r2 = hpcz("quantize", src, "-o", near, "--clip", "minmax", "--rounding", "nearest")
    check(r2.returncode == 0, "--rounding nearest")

    # the float weights as quantized (BatchNorm folded) and the inputs' real means
    f = folded(src)
    check(f is not None, "fold-bn alone gives the float model hpcz quantizes")
    fm = onnx.load(f)
    wf = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in fm.graph.initializer}
    conv_in = {n.name: (n.input[0], wf[n.input[1]]) for n in fm.graph.node if n.op_type == "Conv"}
    probe = os.path.join(TMP, "probe.onnx")
    for n, (inp, _) in conv_in.items():
        if inp != "x":
            fm.graph.output.append(helper.make_tensor_value_info(inp, TensorProto.FLOAT, None))
    onnx.save(fm, probe)
    names = [o.name for o in fm.graph.output]
    acts = dict(zip(names, run(probe, x)))
    acts["x"] = x

    cb, cn = codes(bal), codes(near)
    check(sorted(cb) == sorted(cn) == sorted(conv_in), "every Conv weight is int8 in both")
    for name, (inp, w) in conv_in.items():
        qb, s = cb[name]
        qn, _ = cn[name]
        s = s.reshape(-1, 1, 1, 1)
        u = w / s
        rtn = np.clip(np.round(u), -127, 127)
        check(np.array_equal(qn, rtn), f"{name}: --rounding nearest = numpy's round to nearest")
        moved = qb != qn
        towards = np.all(np.abs(qb - u)[moved] < 1) and np.all(np.abs(qb - qn) <= 1)
        mu = acts[inp].astype(np.float64).mean(axis=(0, 2, 3)).reshape(1, -1, 1, 1)
        shift_b = np.abs(((qb - u) * mu).sum(axis=(1, 2, 3)))
        shift_n = np.abs(((qn - u) * mu).sum(axis=(1, 2, 3)))
        check(moved.any() and towards and moved.mean() < 0.1,
              f"{name}: balanced moves {moved.mean():.1%} of the codes, one step towards their float value")
        check(shift_b.mean() < 0.5 * shift_n.mean(),
              f"{name}: output shift sum e E[x] per channel (E[x] of the data) {shift_n.mean():.3f} -> "
              f"{shift_b.mean():.3f} steps")

    (yf,) = run(src, x)
    sq, mean_err = {}, {}
    for k, p in (("nearest", near), ("balanced", bal)):
        (y,) = run(p, x)
        e = (y - yf).astype(np.float64)
        sq[k] = 10 * np.log10((yf.astype(np.float64) ** 2).sum() / (e ** 2).sum())
        mean_err[k] = np.abs(e.mean(axis=0)).mean()
    check(sq["balanced"] > sq["nearest"] + 6 and mean_err["balanced"] < 0.5 * mean_err["nearest"],
          "output SQNR %.1f -> %.1f dB, mean output error %.3g -> %.3g (ORT against float)"
          % (sq["nearest"], sq["balanced"], mean_err["nearest"], mean_err["balanced"]))

    again = os.path.join(TMP, "again.onnx")
    r = hpcz("quantize", src, "-o", again, "--clip", "minmax", "--threads", "1")
    with open(bal, "rb") as a, open(again, "rb") as b:
        check(r.returncode == 0 and a.read() == b.read(), "same bytes on a second run with --threads 1")

    for args, msg in ((["--rounding", "balanced", "--dtype", "int4"], "--rounding balanced is for weight-only int8"),
                      (["--rounding", "even"], "--rounding: 'even' is not balanced or nearest")):
        r = hpcz("quantize", src, "-o", os.path.join(TMP, "bad.onnx"), *args)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and msg in lines[0] and not os.path.exists(os.path.join(TMP, "bad.onnx")),
              f"{' '.join(args)}: exit 2, '{lines[0] if lines else ''}'")

    tables = os.path.join(TMP, "tables.onnx")
    make_tables(tables)
    tq = os.path.join(TMP, "tables.q.onnx")
    r = hpcz("quantize", tables, "-o", tq, "-v")
    m = onnx.load(tq) if r.returncode == 0 else None
    init = {i.name: i for i in m.graph.initializer} if m else {}
    check(m is not None and init["types"].data_type == TensorProto.FLOAT and "types" in
          [n.input[0] for n in m.graph.node if n.op_type == "Gather"],
          "a 2-row embedding table stays float and is read as it was")
    check(m is not None and "words" not in init and any(i.data_type == TensorProto.INT8 and list(i.dims) == [64, 16]
                                                        for i in init.values()),
          "a 64-row table is int8")
    check("types: kept float (2 rows" in r.stderr, "-v says why the small table stays float")
    check_head()
    return tally()


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(rc)
