"""AdaRound (`quantize --algo adaround`, lib/recon/adaround.c) on a small
layer built here whose inputs are strongly correlated (a rank-6 signal
through 48 channels, plus a little noise): there, rounding each weight up or
down by the layer's output error does far better than rounding to nearest.

Checks:
* weight-only int8, AdaRound alone (quantize-adaround{gptq=false}): every
  code is the floor or the ceiling of W / s with numpy's min/max scale s; the
  layer's output error ||X (W~ - W)||^2 on fresh data (numpy) is at most 0.7
  of numpy's round-to-nearest error, and the log says AdaRound was kept on
  the held-out rows; --algo adaround (GPTQ a candidate too) as well;
* int4 (blocks of 16): output SQNR in ONNX Runtime at least 2 dB above
  round-to-nearest's;
* static int8 (--placement all): only the int8 codes change (scales as
  --algo rtn writes them, each code within one step of its round-to-nearest
  code), and the layer's output error on its quantized inputs (numpy, the
  model's activation scale) is at most 0.7 of round-to-nearest's;
* the same bytes twice and with --threads 1 / 2;
* --algo adaround without --calib, with --mode dynamic, or with
  --bias-correction: exit 2 and a one-line error (then the --help hint).

Usage: python test_adaround.py HPCZ SOURCE_ROOT
"""
import os
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from harness import HPCZ, check, session, tally, quantize_into

TMP = tempfile.mkdtemp(prefix="hpcz-adaround-")
K, N, T = 48, 24, 16


def make_model(path, calib):
    rng = np.random.default_rng(5)
    W = (rng.standard_normal((K, N)) / np.sqrt(K)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], "layer",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", T, K])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", T, N])],
                          [numpy_helper.from_array(W, "W")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    mix = rng.standard_normal((6, K))

    def data(n):
        z = rng.standard_normal((n, T, 6))
        return (z @ mix + 0.05 * rng.standard_normal((n, T, K)) + 0.5).astype(np.float32)

    os.makedirs(calib, exist_ok=True)
    np.save(os.path.join(calib, "x.npy"), data(32))
    return W, data(64)


def quantize(src, name, *args):
    return quantize_into(TMP, src, name, *args)


def dq_weight(path):
    """The int8 codes [K, N] and per-column scales of the MatMul's weight."""
    m = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    dq = next(n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits and
              inits[n.input[0]].ndim == 2)
    return inits[dq.input[0]].astype(np.int64), inits[dq.input[1]].astype(np.float64)


def sqnr(path, ref, x):
    y = session(path).run(None, {"x": x})[0]
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - y) ** 2))


def main():
    src, calib = os.path.join(TMP, "layer.onnx"), os.path.join(TMP, "calib")
    W, X = make_model(src, calib)
    W64 = W.astype(np.float64)
    X2 = X.reshape(-1, K).astype(np.float64)
    ref = session(src).run(None, {"x": X})[0]

    def out_err(Wq):
        return float(np.sum((X2 @ (Wq - W64)) ** 2))

    # weight-only int8 against numpy's round-to-nearest on the same grid:
    # AdaRound alone (the pass without GPTQ as a candidate), then the default
    s = np.abs(W64).max(axis=0) / 127
    e_rtn = out_err(np.clip(np.rint(W64 / s), -127, 127) * s)
    out, log = quantize(src, "ada8_only.onnx", "--calib", calib, "-v", "--passes",
                        "quantize-adaround{dtype=int8,gptq=false},dce")
    if check(out is not None, "quantize-adaround{gptq=false} runs"):
        q, sc = dq_weight(out)
        check(np.allclose(sc, s, rtol=1e-6), "scales are the min/max ones (per output channel)")
        u = W64 / s
        check(bool(np.all((q == np.floor(u)) | (q == np.ceil(u)))), "every code is the floor or ceiling of W / s")
        moved = int(np.sum(q != np.rint(u)))
        e_ada = out_err(q * sc)
        print("   int8: output error AdaRound %.4g, round-to-nearest %.4g (%.3f), %d of %d codes moved"
              % (e_ada, e_rtn, e_ada / e_rtn, moved, q.size))
        check(e_ada <= 0.7 * e_rtn, "AdaRound's output error %.3f of round-to-nearest's <= 0.7" % (e_ada / e_rtn))
        check("AdaRound kept" in log, "the log says AdaRound was kept on the held-out rows")
    out, log = quantize(src, "ada8.onnx", "--calib", calib, "--algo", "adaround", "-v")
    if check(out is not None, "weight-only int8 --algo adaround runs"):
        q, sc = dq_weight(out)
        e_def = out_err(q * sc)
        check(e_def <= 0.7 * e_rtn and " kept: output error on " in log,
              "with GPTQ as a candidate: %.3f of round-to-nearest's, the log names the one kept" % (e_def / e_rtn))
        again, _ = quantize(src, "ada8b.onnx", "--calib", calib, "--algo", "adaround", "--threads", "1")
        two, _ = quantize(src, "ada8c.onnx", "--calib", calib, "--algo", "adaround", "--threads", "2")
        same = again and two and open(out, "rb").read() == open(again, "rb").read() == open(two, "rb").read()
        check(bool(same), "the same bytes on a second run, with --threads 1 and 2")

    # int4 blocks: through ONNX Runtime
    r4, _ = quantize(src, "rtn4.onnx", "--dtype", "int4", "--block-size", "16", "--calib", calib, "--algo", "rtn")
    a4, _ = quantize(src, "ada4.onnx", "--dtype", "int4", "--block-size", "16", "--calib", calib, "--algo", "adaround")
    if check(r4 is not None and a4 is not None, "int4 --algo rtn and adaround run"):
        s_r, s_a = sqnr(r4, ref, X), sqnr(a4, ref, X)
        print("   int4: output SQNR round-to-nearest %.2f dB, AdaRound %.2f dB" % (s_r, s_a))
        check(s_a >= s_r + 2, "int4 AdaRound %.2f dB >= round-to-nearest %.2f + 2" % (s_a, s_r))

    # static: the codes only
    base = ["--mode", "static", "--placement", "all", "--calib", calib, "--calib-method", "minmax"]
    rs, _ = quantize(src, "rtn_s.onnx", *base, "--algo", "rtn", "--no-bias-correction")
    as_, slog = quantize(src, "ada_s.onnx", *base, "--algo", "adaround", "-v")
    if check(rs is not None and as_ is not None, "static --algo rtn and adaround run"):
        (qr, sr), (qa, sa) = dq_weight(rs), dq_weight(as_)
        check(np.array_equal(sr, sa), "static: the same weight scales")
        d = np.abs(qa - qr)
        check(int(d.max()) <= 1 and int(d.sum()) > 0, "static: %d codes moved, by one step at most" % int(d.sum()))
        # the layer's error on its quantized input, the objective AdaRound minimised
        inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(as_).graph.initializer}
        xs, xz = float(inits["x_scale"]), float(inits["x_zero_point"])
        Xq = (np.clip(np.rint(X2 / xs) + xz, 0, 255) - xz) * xs

        def q_err(q, sc):
            return float(np.sum((Xq @ (q * sc - W64)) ** 2))

        e_r, e_a = q_err(qr, sr), q_err(qa, sa)
        print("   static: output error on the quantized inputs AdaRound %.4g, round-to-nearest %.4g (%.3f)"
              % (e_a, e_r, e_a / e_r))
        check(e_a <= 0.7 * e_r, "static: AdaRound's output error %.3f of round-to-nearest's <= 0.7" % (e_a / e_r))
        check("codes" in slog and "moved" in slog, "static: the log counts the codes moved")

    # bad usage
    for args, what in ((["--algo", "adaround"], "needs calibration data"),
                       (["--algo", "adaround", "--mode", "dynamic", "--calib", calib], "weight-only int8/int4 and"),
                       (["--algo", "adaround", "--mode", "static", "--calib", calib, "--bias-correction"],
                        "--bias-correction and --algo adaround")):
        bad = os.path.join(TMP, "bad.onnx")
        r = subprocess.run([HPCZ, "quantize", src, "-o", bad, *args], capture_output=True, text=True)
        first = (r.stderr.strip().splitlines() or [""])[0]
        check(r.returncode == 2 and what in first and not os.path.exists(bad),
              "%s: exit 2, '%s'" % (" ".join(a for a in args if a != calib), first))
    return tally()


if __name__ == "__main__":
    import shutil
    try:
        raise SystemExit(main())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
