"""float16 models in `hpcz run`: the fused float16 Conv epilogues (a scalar
Mul and Add after the Conv, HardSwish written out as x * Clip(x + 3, 0, 6) / 6,
the HardSwish op, Relu, Clip, LeakyRelu and a Max by a constant after it, the
Mul and Add after the activation; SiLU against the unfused ops' bytes) and the
float16 fast paths (Pow by 2 and 0.5, ReduceMean, IsNaN, Where) give exactly the bits of an
honest float16 evaluation: NumPy's float16 arithmetic, which rounds each
operation's float32 result to float16. The Conv's inputs and weights are
small multiples of powers of two, so its sums are exact in float32 whatever
their order and the reference is exact too. Every model also runs at 1 and 2
threads (same bytes) and against ONNX Runtime on the same file (within a
few float16 roundings: ORT keeps float32 between the ops it runs on Casts).
float16 values held as float32 between ops (the default) give every output
byte of the op-by-op float16 evaluation (HPCZ_F16_NO_WIDE=1) on a model of
about 40 ops and on the samples turned float16.

Usage: python test_fp16_runtime.py HPCZ SOURCE_ROOT
"""
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper as nh

from harness import ROOT, check, hpcz, session, tally

TMP = tempfile.mkdtemp(prefix="hpcz-fp16rt-")
rng = np.random.default_rng(16)
H = np.float16


def const(name, v):
    return oh.make_node("Constant", [], [name], value=nh.from_array(np.asarray(v, H), name))


def save(label, nodes, inputs, outputs, inits=()):
    g = oh.make_graph(nodes, label, inputs, outputs, list(inits))
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m)
    path = os.path.join(TMP, label + ".onnx")
    onnx.save(m, path)
    return path


def run(path, feeds, threads):
    out = os.path.join(TMP, "out%d" % threads)
    shutil.rmtree(out, ignore_errors=True)  # no outputs of an earlier model
    args = ["run", path, "-o", out, "-q", "--threads", str(threads)]
    for k, v in feeds.items():
        f = os.path.join(TMP, k + ".npy")
        np.save(f, v)
        args += ["--input", "%s=%s" % (k, f)]
    r = hpcz(*args)
    if r.returncode:
        return None
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out)}


def conv_ref(x, w, b, pad, group=1):
    """Exact float64 convolution (NCHW, stride 1) rounded to float16."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, hh, ww = x.shape
    m, cg, kh, kw = w.shape
    oh_, ow = hh - kh + 1, ww - kw + 1
    y = np.zeros((n, m, oh_, ow))
    mg = m // group
    for o in range(m):
        g = o // mg
        for ci in range(cg):
            for i in range(kh):
                for j in range(kw):
                    y[:, o] += w[o, ci, i, j] * x[:, g * cg + ci, i:i + oh_, j:j + ow]
        y[:, o] += b[o]
    return y.astype(H)


def hswish(y):
    t = np.clip(y + H(3), H(0), H(6))
    return (y * t) / H(6)


def compare(label, path, feeds, ref):
    got1, got2 = run(path, feeds, 1), run(path, feeds, 2)
    if not check(got1 is not None and got2 is not None, "%s: hpcz runs it" % label):
        return
    for name, want in ref.items():
        a = got1.get(name)
        check(a is not None and a.dtype == want.dtype and a.shape == want.shape and
              a.tobytes() == want.tobytes(),
              "%s: %s is the float16 evaluation bit for bit%s" % (
                  label, name, "" if a is None or a.shape != want.shape else
                  " (%d of %d differ)" % (int(np.sum(a.view(np.uint16) != want.view(np.uint16))), a.size)))
        check(a is not None and a.tobytes() == got2[name].tobytes(),
              "%s: %s the same bytes at 1 and 2 threads" % (label, name))
    o = session(path).run(None, feeds)
    names = [v.name for v in onnx.load(path).graph.output]
    for name, v in zip(names, o):
        a = got1[name].astype(np.float64)
        v = np.asarray(v).astype(np.float64)
        scale = max(np.max(np.abs(v)), 1e-3) if v.dtype != bool else 1
        err = np.max(np.abs(a - v)) / scale if a.size else 0
        # ORT keeps float32 between the ops it runs on Casts: a few roundings
        check(err <= 1e-2, "%s: %s within a few float16 roundings of ONNX Runtime (%.1e)" % (label, name, err))


def grid(shape, step, lim):
    """Random multiples of step in [-lim, lim] (exact in float16)."""
    return (rng.integers(-int(lim / step), int(lim / step) + 1, size=shape) * step).astype(H)


def conv_chains():
    """Conv -> Mul -> Add -> HardSwish (written out) -> Mul -> Add; a
    depthwise Conv -> Mul -> Add -> Conv (no activation); Conv -> Clip(0, 6)."""
    x = grid((1, 8, 11, 13), 1 / 16, 2)
    w1, b1 = grid((16, 8, 3, 3), 1 / 8, 1), grid((16,), 1 / 8, 1)
    w2, b2 = grid((16, 1, 3, 3), 1 / 8, 1), grid((16,), 1 / 8, 1)
    w3, b3 = grid((8, 16, 1, 1), 1 / 8, 1), grid((8,), 1 / 8, 1)
    inits = [nh.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"),
                                              (w3, "w3"), (b3, "b3"))]
    nodes = [
        const("m1", [0.3]), const("a1", [-0.7]), const("three", 3), const("zero", 0), const("six", 6),
        const("m2", [1.7]), const("a2", [0.05]), const("m3", [0.9]), const("a3", [-0.3]),
        oh.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        oh.make_node("Mul", ["m1", "c1"], ["p1"]),
        oh.make_node("Add", ["p1", "a1"], ["q1"]),
        oh.make_node("Add", ["q1", "three"], ["h1"]),
        oh.make_node("Clip", ["h1", "zero", "six"], ["h2"]),
        oh.make_node("Mul", ["q1", "h2"], ["h3"]),
        oh.make_node("Div", ["h3", "six"], ["h4"]),
        oh.make_node("Mul", ["h4", "m2"], ["h5"]),
        oh.make_node("Add", ["a2", "h5"], ["y1"]),
        oh.make_node("Conv", ["y1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=16),
        oh.make_node("Mul", ["c2", "m3"], ["p2"]),
        oh.make_node("Add", ["p2", "a3"], ["y2"]),
        oh.make_node("Conv", ["y2", "w3", "b3"], ["c3"]),
        oh.make_node("Clip", ["c3", "zero", "six"], ["y3"]),
    ]
    path = save("conv_chains", nodes, [oh.make_tensor_value_info("x", TP.FLOAT16, list(x.shape))],
                [oh.make_tensor_value_info("y3", TP.FLOAT16, [1, 8, 11, 13])], inits)
    y1 = hswish(conv_ref(x, w1, b1, 1) * H(0.3) + H(-0.7)) * H(1.7) + H(0.05)
    y2 = conv_ref(y1, w2, b2, 1, group=16) * H(0.9) + H(-0.3)
    # y2 feeds a Conv whose sums are no longer exact: the reference of y3 is
    # that of a float32 Conv of the float16 y2, rounded once
    c3 = np.einsum("oc,nchw->nohw", w3[:, :, 0, 0].astype(np.float32), y2.astype(np.float32)) + \
        b3.astype(np.float32)[None, :, None, None]
    return path, {"x": x}, y1, y2, c3


def test_conv_chains():
    path, feeds, y1, y2, c3 = conv_chains()
    # each chain's last output as the graph output (a fused chain may write
    # one), so each epilogue is checked exactly
    m = onnx.load(path)
    m.graph.output.extend([oh.make_tensor_value_info("y1", TP.FLOAT16, [1, 16, 11, 13])])
    p1 = os.path.join(TMP, "conv_chains_y1.onnx")
    onnx.save(m, p1)
    compare("conv + affine + HardSwish + affine", p1, feeds, {"y1": y1})
    m = onnx.load(path)
    del m.graph.output[:]
    m.graph.output.extend([oh.make_tensor_value_info("y2", TP.FLOAT16, [1, 16, 11, 13])])
    p2 = os.path.join(TMP, "conv_chains_y2.onnx")
    onnx.save(m, p2)
    compare("depthwise conv + affine", p2, feeds, {"y2": y2})
    got = run(path, feeds, 1)
    if check(got is not None, "conv chain: hpcz runs it"):
        want = np.clip(c3, 0, 6).astype(H)
        a = got["y3"]
        # the 1x1 Conv's float32 sums may differ from NumPy's in the last bit
        # before the float16 rounding: at most one float16 step apart
        d = np.abs(a.view(np.uint16).astype(np.int32) - want.view(np.uint16).astype(np.int32))
        check(a.shape == want.shape and int(d.max()) <= 1,
              "conv + clip after the chain: within one float16 step of float32 sums rounded once")


def test_conv_hardswish_op():
    """Conv -> HardSwish (the op, PP-LCNet's): its float32 formula on the
    Conv's sums rounded to float16, rounded once."""
    x = grid((1, 4, 9, 10), 1 / 16, 4)
    w, b = grid((8, 4, 3, 3), 1 / 8, 1), grid((8,), 1 / 8, 1)
    path = save("conv_hardswish", [oh.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                                   oh.make_node("HardSwish", ["c"], ["y"])],
                [oh.make_tensor_value_info("x", TP.FLOAT16, list(x.shape))],
                [oh.make_tensor_value_info("y", TP.FLOAT16, [1, 8, 9, 10])],
                [nh.from_array(w, "w"), nh.from_array(b, "b")])
    c = conv_ref(x, w, b, 1).astype(np.float32)
    h = np.clip(c * np.float32(1 / 6) + np.float32(0.5), np.float32(0), np.float32(1))
    compare("conv + HardSwish", path, {"x": x}, {"y": (c * h).astype(H)})


def test_conv_no_bias_affine():
    """A Conv without a bias on two images (the im2col + GEMM path, whose
    epilogue once ran only for a bias or an activation) -> Mul -> Add: the
    float16 affine epilogue still applies."""
    x = grid((2, 4, 9, 9), 1 / 16, 1)
    w = grid((8, 4, 3, 3), 1 / 16, 1)
    path = save("conv_nobias", [const("m", [0.3]), const("a", [-0.7]),
                                oh.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                                oh.make_node("Mul", ["c", "m"], ["p"]),
                                oh.make_node("Add", ["p", "a"], ["y"])],
                [oh.make_tensor_value_info("x", TP.FLOAT16, list(x.shape))],
                [oh.make_tensor_value_info("y", TP.FLOAT16, [2, 8, 9, 9])], [nh.from_array(w, "w")])
    want = conv_ref(x, w, np.zeros(8), 1) * H(0.3) + H(-0.7)
    compare("conv without bias + affine", path, {"x": x}, {"y": want})


def test_conv_leaky_max():
    """Conv -> LeakyRelu -> Max by a constant, twice (oww_embedding's block):
    both taken into the float16 Conv's epilogue (neither runs in the
    profile), the bits of the ops one by one: LeakyRelu's float32 product by
    alpha rounded to float16, Max of two float16 values."""
    x = grid((1, 4, 9, 10), 1 / 16, 4)
    w1, b1 = grid((8, 4, 3, 3), 1 / 8, 1), grid((8,), 1 / 8, 1)
    w2, b2 = grid((8, 8, 1, 1), 1 / 8, 1), grid((8,), 1 / 8, 1)
    nodes = [const("lo", -0.4),
             oh.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             oh.make_node("LeakyRelu", ["c1"], ["l1"], alpha=0.2),
             oh.make_node("Max", ["l1", "lo"], ["y1"]),
             oh.make_node("Conv", ["y1", "w2", "b2"], ["c2"]),
             oh.make_node("LeakyRelu", ["c2"], ["l2"], alpha=0.2),
             oh.make_node("Max", ["lo", "l2"], ["y"])]
    path = save("conv_leaky_max", nodes, [oh.make_tensor_value_info("x", TP.FLOAT16, list(x.shape))],
                [oh.make_tensor_value_info("y", TP.FLOAT16, [1, 8, 9, 10])],
                [nh.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))])

    def leaky_max(c):
        l = np.where(c >= 0, c, (c.astype(np.float32) * np.float32(0.2)).astype(H))
        return np.maximum(l, H(-0.4))

    y1 = leaky_max(conv_ref(x, w1, b1, 1))
    # the 1x1 Conv's sums of float16 products: exact in float64, rounded once
    c2 = (np.einsum("oc,nchw->nohw", w2[:, :, 0, 0].astype(np.float64), y1.astype(np.float64)) +
          b2.astype(np.float64)[None, :, None, None]).astype(H)
    compare("conv + LeakyRelu + Max", path, {"x": x}, {"y": leaky_max(c2)})
    f = os.path.join(TMP, "x.npy")
    np.save(f, x)
    r = hpcz("run", path, "--input", "x=" + f, "--bench", "1", "--profile", "--json")
    ran = {p["op_type"]: p["ms_per_run"] for p in json.loads(r.stdout)["profile"]} if not r.returncode else {}
    check(ran.get("Conv", 0) > 0 and ran.get("LeakyRelu", 1) == 0 and ran.get("Max", 1) == 0,
          "conv + LeakyRelu + Max: both in the float16 Conv's epilogue (profile %s)" % ran)


def test_conv_silu():
    """Conv -> Sigmoid -> Mul (YOLO's SiLU, ddddocr_det's): taken into the
    float16 Conv's epilogue (Sigmoid and Mul do not run), the bytes of the
    same ops run one by one (the Conv's output also a graph output, which
    keeps them apart), either operand order of the Mul."""
    x = grid((1, 4, 9, 10), 1 / 16, 8)
    w, b = grid((8, 4, 3, 3), 1 / 8, 1), grid((8,), 1 / 8, 1)
    for order in (["c", "s"], ["s", "c"]):
        nodes = [oh.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                 oh.make_node("Sigmoid", ["c"], ["s"]),
                 oh.make_node("Mul", order, ["y"])]
        inits = [nh.from_array(w, "w"), nh.from_array(b, "b")]
        xin = [oh.make_tensor_value_info("x", TP.FLOAT16, list(x.shape))]
        yout = oh.make_tensor_value_info("y", TP.FLOAT16, [1, 8, 9, 10])
        fused = save("conv_silu", nodes, xin, [yout], inits)
        apart = save("conv_silu_apart", nodes, xin,
                     [yout, oh.make_tensor_value_info("c", TP.FLOAT16, [1, 8, 9, 10])], inits)
        got, ref = run(fused, {"x": x}, 1), run(apart, {"x": x}, 1)
        got2 = run(fused, {"x": x}, 2)
        if not check(got is not None and ref is not None and got2 is not None,
                     "conv + SiLU (Mul %s): hpcz runs it" % order):
            continue
        check(got["y"].tobytes() == ref["y"].tobytes() and got2["y"].tobytes() == ref["y"].tobytes(),
              "conv + SiLU (Mul %s): the bytes of the unfused ops at 1 and 2 threads" % order)
        want = conv_ref(x, w, b, 1).astype(np.float32)
        want = want / (1 + np.exp(-want))
        err = np.max(np.abs(got["y"].astype(np.float32) - want)) / np.max(np.abs(want))
        check(err < 2e-3, "conv + SiLU (Mul %s): within float16 roundings of x * sigmoid(x) (%.1e)"
              % (order, err))
        f = os.path.join(TMP, "x.npy")
        np.save(f, x)
        r = hpcz("run", fused, "--input", "x=" + f, "--bench", "1", "--profile", "--json")
        ran = {p["op_type"]: p["ms_per_run"] for p in json.loads(r.stdout)["profile"]} if not r.returncode else {}
        check(ran.get("Conv", 0) > 0 and ran.get("Sigmoid", 1) == 0 and ran.get("Mul", 1) == 0,
              "conv + SiLU (Mul %s): in the float16 Conv's epilogue (profile %s)" % (order, ran))


def test_elementwise():
    x = (rng.standard_normal((3, 40, 33)) * 4).astype(H)
    x[0, 0, :3] = [np.nan, np.inf, -np.inf]
    pos = np.abs(x) + H(0.01)
    pos[0, 0, :3] = [np.nan, np.inf, 0]
    nodes = [const("two", 2), const("half", 0.5), const("zero", 0),
             oh.make_node("Pow", ["x", "two"], ["sq"]),
             oh.make_node("Pow", ["p", "half"], ["rt"]),
             oh.make_node("ReduceMean", ["x"], ["mean"], axes=[2], keepdims=1),
             oh.make_node("ReduceMean", ["x"], ["mean1"], axes=[1], keepdims=0),
             oh.make_node("IsNaN", ["x"], ["nan"]),
             oh.make_node("Where", ["nan", "zero", "x"], ["clean"])]
    path = save("fp16_elementwise", nodes,
                [oh.make_tensor_value_info("x", TP.FLOAT16, list(x.shape)),
                 oh.make_tensor_value_info("p", TP.FLOAT16, list(x.shape))],
                [oh.make_tensor_value_info(n, TP.FLOAT16, list(x.shape)) for n in ("sq", "rt", "clean")] +
                [oh.make_tensor_value_info("mean", TP.FLOAT16, [3, 40, 1]),
                 oh.make_tensor_value_info("mean1", TP.FLOAT16, [3, 33]),
                 oh.make_tensor_value_info("nan", TP.BOOL, list(x.shape))])
    with np.errstate(all="ignore"):
        ref = {"sq": x * x, "rt": np.sqrt(pos),
               "mean": np.mean(x.astype(np.float64), axis=2, keepdims=True).astype(np.float32).astype(H),
               "mean1": np.mean(x.astype(np.float64), axis=1).astype(np.float32).astype(H),
               "nan": np.isnan(x), "clean": np.where(np.isnan(x), H(0), x)}
    got1, got2 = run(path, {"x": x, "p": pos}, 1), run(path, {"x": x, "p": pos}, 2)
    if not check(got1 is not None and got2 is not None, "float16 Pow/ReduceMean/IsNaN/Where: hpcz runs them"):
        return
    for name, want in ref.items():
        a = got1[name]
        check(a.dtype == want.dtype and a.tobytes() == want.tobytes() and a.tobytes() == got2[name].tobytes(),
              "float16 %s: the float16 evaluation bit for bit, same at 2 threads" % name)


def run_held(path, feeds, threads, held):
    """run() with float16 values held as float32 between the ops (the
    default) or converted at every op (HPCZ_F16_NO_WIDE=1), and the peak
    activation memory (held values take 4 bytes each)."""
    os.environ["HPCZ_F16_NO_WIDE"] = "0" if held else "1"
    try:
        got = run(path, feeds, threads)
        r = hpcz("run", path, "--json", "-q", "--threads", str(threads),
                 *sum((["--input", "%s=%s" % (k, os.path.join(TMP, k + ".npy"))] for k in feeds), []))
    finally:
        del os.environ["HPCZ_F16_NO_WIDE"]
    peak = json.loads(r.stdout)["memory"]["peak_activation_bytes"] if r.returncode == 0 else None
    return got, peak


def same_bytes_held(label, path, feeds, expect_held=True):
    """Every output byte the same with float16 values held as float32 and
    converted at every op, at 1 and 2 threads."""
    want, peak0 = run_held(path, feeds, 1, False)
    if not check(want is not None, "%s: hpcz runs it" % label):
        return
    for threads in (1, 2):
        got, peak = run_held(path, feeds, threads, True)
        bad = [n for n, v in want.items() if got is None or n not in got or
               got[n].dtype != v.dtype or got[n].tobytes() != v.tobytes()]
        check(got is not None and not bad,
              "%s: every output byte as with float16 converted at each op, %d thread%s%s" % (
                  label, threads, "s" if threads > 1 else "", " (differ: %s)" % ", ".join(bad) if bad else ""))
    if expect_held:
        # the values held as float32 take twice the bytes: the path was taken
        check(peak is not None and peak0 is not None and peak > peak0,
              "%s: float16 activations held as float32 (peak %s -> %s bytes)" % (label, peak0, peak))


def many_ops_model():
    """A float32-in, float32-out float16 model (as `quantize --dtype fp16
    --keep-io-types` writes) with most op kinds of the zoo's float16 files
    and some that need float16 bytes between them (Pow by 3, linear
    Resize, Where, IsNaN) and a float16 output in the middle."""
    F = np.float32
    w1, b1 = grid((16, 3, 3, 3), 1 / 64, 0.5), grid((16,), 1 / 16, 0.5)
    w2, b2 = grid((16, 1, 3, 3), 1 / 64, 0.5), grid((16,), 1 / 16, 0.5)
    w3 = grid((24, 16, 1, 1), 1 / 64, 0.5)
    wt = grid((24, 8, 2, 2), 1 / 64, 0.5)
    mm = grid((24, 10), 1 / 64, 0.5)
    gw, gb = grid((10, 24), 1 / 64, 0.5), grid((10,), 1 / 16, 0.5)
    sc, bi = grid((24,), 1 / 16, 1) + H(1.5), grid((24,), 1 / 16, 1)
    mean, var = grid((24,), 1 / 16, 0.5), np.abs(grid((24,), 1 / 16, 1)) + H(0.5)
    inits = [nh.from_array(a, n) for a, n in (
        (w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"), (w3, "w3"), (wt, "wt"), (mm, "mm"),
        (gw, "gw"), (gb, "gb"), (sc, "sc"), (bi, "bi"), (mean, "mean"), (var, "var"),
        (np.array([1, 24, -1], np.int64), "shp"),
        (np.array([1, 1, 2, 2], F), "scales"), (np.array([0], np.int64), "st0"),
        (np.array([5], np.int64), "st1"), (np.array([1], np.int64), "ax1"))]
    nodes = [
        const("k3", 3), const("k0", 0), const("k6", 6), const("k2", 2), const("kh", 0.5),
        const("kc", [[[[0.25]]]]), const("km", -1.5),
        oh.make_node("Cast", ["x"], ["xh"], to=TP.FLOAT16),
        oh.make_node("Conv", ["xh", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        oh.make_node("Add", ["c1", "k3"], ["h1"]),
        oh.make_node("Clip", ["h1", "k0", "k6"], ["h2"]),
        oh.make_node("Mul", ["c1", "h2"], ["h3"]),
        oh.make_node("Div", ["h3", "k6"], ["a1"]),
        oh.make_node("Conv", ["a1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=16),
        oh.make_node("Relu", ["c2"], ["a2"]),
        oh.make_node("MaxPool", ["a2"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        oh.make_node("Conv", ["p1", "w3"], ["c3"]),
        oh.make_node("BatchNormalization", ["c3", "sc", "bi", "mean", "var"], ["bn"]),
        oh.make_node("HardSwish", ["bn"], ["a3"]),
        oh.make_node("GlobalAveragePool", ["a3"], ["g1"]),
        oh.make_node("HardSigmoid", ["g1"], ["g2"], alpha=0.2, beta=0.5),
        oh.make_node("Mul", ["a3", "g2"], ["se"]),
        oh.make_node("Sigmoid", ["se"], ["sg"]),
        oh.make_node("Sub", ["se", "sg"], ["d1"]),
        oh.make_node("Pow", ["d1", "k2"], ["sq"]),
        oh.make_node("Sqrt", ["sq"], ["rt"]),
        oh.make_node("Pow", ["d1", "k3"], ["cube"]),
        oh.make_node("Tanh", ["cube"], ["th"]),
        oh.make_node("LeakyRelu", ["th"], ["lr"], alpha=0.1),
        oh.make_node("Add", ["rt", "lr"], ["s1"]),
        oh.make_node("AveragePool", ["s1"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        oh.make_node("Resize", ["ap", "", "scales"], ["up"], mode="nearest"),
        oh.make_node("Resize", ["ap", "", "scales"], ["upl"], mode="linear"),
        oh.make_node("Concat", ["up", "upl"], ["cat"], axis=1),
        oh.make_node("Slice", ["cat", "st0", "st1", "ax1"], ["sl"]),
        oh.make_node("ConvTranspose", ["s1", "wt"], ["ct"], strides=[2, 2]),
        oh.make_node("IsNaN", ["ct"], ["isn"]),
        oh.make_node("Where", ["isn", "k0", "ct"], ["ctw"]),
        oh.make_node("Mul", ["ctw", "kc"], ["ctm"]),
        oh.make_node("Reshape", ["s1", "shp"], ["r1"]),
        oh.make_node("Transpose", ["r1"], ["t1"], perm=[0, 2, 1]),
        oh.make_node("MatMul", ["t1", "mm"], ["m1"]),
        oh.make_node("ReduceMean", ["m1"], ["rm"], axes=[2], keepdims=1),
        oh.make_node("Sub", ["m1", "rm"], ["m2"]),
        oh.make_node("Softmax", ["m2"], ["sm"], axis=-1),
        oh.make_node("Flatten", ["g1"], ["f1"]),
        oh.make_node("Gemm", ["f1", "gw", "gb"], ["gm"], transB=1),
        oh.make_node("Exp", ["km"], ["e0"]),
        oh.make_node("Mul", ["gm", "e0"], ["gm2"]),
        oh.make_node("Cast", ["sm"], ["y_sm"], to=TP.FLOAT),
        oh.make_node("Cast", ["ctm"], ["y_ct"], to=TP.FLOAT),
        oh.make_node("Cast", ["sl"], ["y_sl"], to=TP.FLOAT),
    ]
    outs = [oh.make_tensor_value_info(n, TP.FLOAT, s) for n, s in (
        ("y_sm", [1, 130, 10]), ("y_ct", [1, 8, 20, 26]), ("y_sl", [1, 5, 20, 26]))] + \
        [oh.make_tensor_value_info(n, TP.FLOAT16, s) for n, s in (("gm2", [1, 10]), ("a3", [1, 24, 10, 13]))]
    path = save("fp16_many_ops", nodes, [oh.make_tensor_value_info("x", TP.FLOAT, [1, 3, 20, 26])],
                outs, inits)
    return path, {"x": (rng.standard_normal((1, 3, 20, 26)) * 3).astype(F)}


def test_held_as_float32():
    """float16 values held as float32 between ops give the bytes of the
    float16 evaluation (every op's output rounded to float16 in its own
    pass) on a purpose-built model and on the samples turned float16."""
    path, feeds = many_ops_model()
    same_bytes_held("float16 ops held as float32", path, feeds)
    samples = [("digits_cnn", os.path.join(ROOT, "samples", "digits_cnn.onnx"),
                {"input": np.load(os.path.join(ROOT, "samples", "digits", "test_input.npy"))})]
    pat = os.path.join(ROOT, "samples", "patterns")
    for name in ("nhwc_transpose", "sigmoid_gate", "const_weights", "logmel_int16", "if_subgraph"):
        ins = {f[len(name) + 7:-4]: np.load(os.path.join(pat, f)) for f in sorted(os.listdir(pat))
               if f.startswith(name + ".input_") and not f.endswith("_false.npy")}
        if name == "if_subgraph":
            ins = {"cond": np.load(os.path.join(pat, name + ".input_cond_true.npy")),
                   "x": np.load(os.path.join(pat, name + ".input_x.npy"))}
        samples.append((name, os.path.join(pat, name + ".onnx"), ins))
    for name, src, ins in samples:
        dst = os.path.join(TMP, name + "_fp16.onnx")
        r = hpcz("quantize", src, "-o", dst, "--dtype", "fp16", "--keep-io-types", "-q")
        if check(r.returncode == 0, "%s: quantize --dtype fp16" % name):
            same_bytes_held("%s float16" % name, dst, ins, expect_held=name in ("digits_cnn", "sigmoid_gate"))


def main():
    test_conv_chains()
    test_conv_hardswish_op()
    test_conv_no_bias_affine()
    test_conv_leaky_max()
    test_conv_silu()
    test_elementwise()
    test_held_as_float32()
    return tally()


if __name__ == "__main__":
    sys.exit(main())
