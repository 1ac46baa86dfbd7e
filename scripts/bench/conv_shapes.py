#!/usr/bin/env python3
"""Benchmark (not a test): single fp32 Conv nodes in hpcz's CPU runtime
against ONNX Runtime, in GFLOP/s, shape by shape.

    .venv-test/bin/python scripts/bench/conv_shapes.py [--hpcz build-rel/hpcz]
        [--before OTHER_HPCZ] [--threads 1] [--rounds 5] [--runs 20]
        [--act relu] [SHAPE ...]

SHAPE is CIN,COUT,HW,K,STRIDE[,GROUP] (square maps and kernels, pads
K // 2, bias); by default ddddocr_det's slowest 3x3 convs. Each shape is
one Conv (+ the activation, which both engines fuse) in a model file of
its own, fed a random input; every round runs hpcz (`run --bench RUNS`,
planning excluded), ONNX Runtime (ORT_ENABLE_ALL, the same intra-op
threads) and --before's binary, in rotating order. Prints the GFLOP/s of
each engine's best run over the rounds (on a loaded machine the best is
the run that waited least for a core) and hpcz/ORT of the best times.
"""
import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from runtime_zoo import hpcz_run, ort_session, ort_times_ms  # noqa: E402

# ddddocr_det (416x416): its 3x3 convs with the most time in hpcz, then the
# other 3x3 shapes it repeats
DEFAULT = ["96,96,52,3,1", "24,48,208,3,2", "12,24,208,3,1", "48,96,104,3,2",
           "96,192,52,3,2", "192,384,26,3,2", "192,192,26,3,2",
           "96,96,26,3,1", "48,48,52,3,1", "192,192,13,3,1", "24,24,104,3,1", "96,96,52,3,2"]


def conv_model(path, cin, cout, hw, k, stride, group, act):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    w = rng.standard_normal((cout, cin // group, k, k), dtype=np.float32) * 0.1
    b = rng.standard_normal(cout, dtype=np.float32) * 0.1
    p = k // 2
    oh = (hw + 2 * p - k) // stride + 1
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c" if act else "y"], kernel_shape=[k, k],
                              strides=[stride, stride], pads=[p] * 4, group=group)]
    if act:
        nodes.append(helper.make_node(act, ["c"], ["y"]))
    g = helper.make_graph(nodes, "conv",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, oh, oh])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return 2.0 * cout * (cin // group) * k * k * oh * oh


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("shapes", nargs="*", default=DEFAULT)
    ap.add_argument("--hpcz", default=os.path.join("build-rel", "hpcz"))
    ap.add_argument("--before")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--act", default="Relu", help="an op after the conv ('' for none)")
    a = ap.parse_args()
    engines = ["hpcz", "ort"] + (["before"] if a.before else [])
    print(f"{'shape':18s} {'thr':>3s} {'MFLOP':>7s} {'hpcz':>7s} {'ort':>7s}"
          + (f" {'before':>7s}" if a.before else "") + f" {'h/ort':>6s}" + (f" {'b/ort':>6s}" if a.before else ""))
    with tempfile.TemporaryDirectory() as tmp:
        for th in [int(t) for t in a.threads.split(",")]:
            for s in a.shapes:
                v = [int(t) for t in s.split(",")]
                cin, cout, hw, k, stride = v[:5]
                group = v[5] if len(v) > 5 else 1
                model = os.path.join(tmp, "conv.onnx")
                flop = conv_model(model, cin, cout, hw, k, stride, group, a.act)
                x = np.random.default_rng(1).standard_normal((1, cin, hw, hw), dtype=np.float32)
                xf = os.path.join(tmp, "x.npy")
                np.save(xf, x)
                sess = ort_session(model, th)
                sess.run(None, {"x": x})
                best = {e: float("inf") for e in engines}
                for r in range(a.rounds):
                    for e in engines[r % len(engines):] + engines[:r % len(engines)]:
                        if e == "ort":
                            t = ort_times_ms(sess, {"x": x}, a.runs)[1]
                        else:
                            binary = a.hpcz if e == "hpcz" else a.before
                            t = hpcz_run(binary, model, {"x": xf}, a.runs, th)["bench"]["min_ms"]
                        best[e] = min(best[e], t)
                gf = {e: flop / best[e] / 1e6 for e in engines}
                line = f"{s:18s} {th:3d} {flop / 1e6:7.1f} {gf['hpcz']:7.1f} {gf['ort']:7.1f}"
                if a.before:
                    line += f" {gf['before']:7.1f}"
                line += f" {best['hpcz'] / best['ort']:6.2f}"
                if a.before:
                    line += f" {best['before'] / best['ort']:6.2f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
