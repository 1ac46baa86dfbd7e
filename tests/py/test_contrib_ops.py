"""ONNX Runtime's contrib ops (com.microsoft, and SimplifiedLayerNormalization
in ai.onnx) through `hpcz run`, against ONNX Runtime on small models built
with onnx.helper: MatMulNBits (4 and 8 bits, block sizes 16/32/128, packed,
float or absent zero points, K not a multiple of the block, 2-D/3-D A, bias,
g_idx; weights packed by hand and by ORT's MatMulNBitsQuantizer),
DynamicQuantizeMatMul, MatMulIntegerToFloat, FusedMatMul, QuickGelu,
FastGelu, Gelu, BiasGelu, SkipLayerNormalization,
SkipSimplifiedLayerNormalization, EmbedLayerNormalization, Attention,
SimplifiedLayerNormalization and LayerNormalization before opset 17. Every model also runs with --threads 1
and 2 (same bytes). `hpcz report ORIGINAL ORT_INT4` works on the quantized
model. With the zoo (.zoo/), ORT's transformer optimizer on MiniLM and its
int4 version run against ORT too.

Usage: python test_contrib_ops.py HPCZ SOURCE_ROOT
"""
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper as nh

from harness import HPCZ, ROOT, check, tally

TMP = tempfile.mkdtemp(prefix="hpcz-contrib-")
rng = np.random.default_rng(13)
ort.set_default_logger_severity(3)
logging.disable(logging.INFO)  # ORT's quantizer and transformer optimizer narrate every step


def vi(name, dt=TP.FLOAT, shape=None):
    return oh.make_tensor_value_info(name, dt, shape)


def save_model(label, nodes, inputs, outputs, inits=(), opset=17):
    g = oh.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset), oh.make_opsetid("com.microsoft", 1)],
                      ir_version=8)
    path = os.path.join(TMP, label.replace("/", "_").replace(" ", "_") + ".onnx")
    onnx.save(m, path)
    return path


def hpcz_run(model, feeds, out, *extra):
    args = [HPCZ, "run", model, "-o", out, "-q", *extra]
    for name, path in feeds.items():
        args += ["--input", f"{name}={path}"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        print(r.stderr.strip())
    return r.returncode


def compare(label, model, arrays, atol, rtol=0.0, outputs=None):
    """hpcz run vs ONNX Runtime: |hpcz - ort| <= atol + rtol * |ort| per element,
    for the named outputs (default all); --threads 1 and 2 give the same bytes."""
    feeds = {}
    for k, v in arrays.items():
        p = os.path.join(TMP, f"{label.replace('/', '_').replace(' ', '_')}-{k}.npy")
        np.save(p, v)
        feeds[k] = p
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    want = dict(zip(names, sess.run(None, arrays)))
    got = {}
    for threads in ("1", "2"):
        d = os.path.join(TMP, f"{label.replace('/', '_').replace(' ', '_')}-out{threads}")
        rc = hpcz_run(model, feeds, d, "--threads", threads)
        if rc:
            check(False, f"{label}: hpcz run --threads {threads} exits 0")
            return
        got[threads] = {n: np.load(os.path.join(d, n + ".npy")) for n in names}
    for n in outputs or names:
        w, g = want[n], got["1"][n]
        if w is None:
            continue
        ok = g.shape == w.shape and g.dtype == w.dtype
        err = float(np.max(np.abs(g.astype(np.float64) - w))) if ok and w.size else 0.0
        ok = ok and bool(np.all(np.abs(g.astype(np.float64) - w) <= atol + rtol * np.abs(w.astype(np.float64))))
        check(ok, f"{label}: {n} {tuple(w.shape)} matches onnxruntime (max abs err {err:.2e}, bound {atol:g}"
              + (f" + {rtol:g}|y|)" if rtol else ")"))
    same = all(got["1"][n].tobytes() == got["2"][n].tobytes() for n in names)
    check(same, f"{label}: identical bytes with 1 and 2 threads")


# ------------------------------------------------------------ MatMulNBits

def pack_codes(q, bits):
    """[rows, n*per] codes -> bytes, low bits first."""
    per = 8 // bits
    out = np.zeros((q.shape[0], q.shape[1] // per), np.uint8)
    for i in range(per):
        out |= (q[:, i::per].astype(np.uint8) << (i * bits)).astype(np.uint8)
    return out


def nbits_model(label, bits, bs, K, N, a_shape, zp="packed", bias=False, gidx=False, acc=None):
    nb = (K + bs - 1) // bs
    q = rng.integers(0, 2 ** bits, size=(N, nb * bs)).astype(np.uint8)
    B = pack_codes(q, bits).reshape(N, nb, bs * bits // 8)
    scales = (rng.random((N, nb)) * 0.05 + 0.005).astype(np.float32)
    names, inits = ["A", "B", "scales"], [nh.from_array(B, "B"), nh.from_array(scales.ravel(), "scales")]
    if zp == "packed":
        zq = rng.integers(0, 2 ** bits, size=(N, nb)).astype(np.uint8)
        per = 8 // bits
        zpad = np.zeros((N, -(-nb // per) * per), np.uint8)
        zpad[:, :nb] = zq
        names.append("zp")
        inits.append(nh.from_array(pack_codes(zpad, bits).ravel(), "zp"))
    elif zp == "float":
        names.append("zp")
        inits.append(nh.from_array((rng.random((N, nb)) * 2 ** bits).astype(np.float32), "zp"))
    if gidx:
        names += [""] * (4 - len(names)) + ["g_idx"]
        inits.append(nh.from_array(rng.integers(0, nb, size=K).astype(np.int32), "g_idx"))
    if bias:
        names += [""] * (5 - len(names)) + ["bias"]
        inits.append(nh.from_array(rng.standard_normal(N).astype(np.float32), "bias"))
    attrs = dict(K=K, N=N, bits=bits, block_size=bs)
    if acc is not None:
        attrs["accuracy_level"] = acc
    node = oh.make_node("MatMulNBits", names, ["Y"], domain="com.microsoft", **attrs)
    model = save_model(label, [node], [vi("A", shape=list(a_shape))], [vi("Y")], inits)
    return model, {"A": rng.standard_normal(a_shape).astype(np.float32)}


def test_matmulnbits():
    cases = []
    for bits, bs, zp in itertools.product((4, 8), (16, 32, 128), ("packed", "none")):
        cases.append((bits, bs, 256, 48, (5, 256), zp, False, False))
    cases += [
        (4, 32, 200, 33, (2, 3, 200), "packed", False, False),   # K % block != 0, 3-D A
        (4, 16, 72, 20, (1, 72), "none", True, False),           # GEMV row, bias
        (8, 128, 300, 17, (2, 4, 300), "packed", True, False),   # 8 bits, K % 128 != 0
        (8, 16, 40, 9, (40,), "none", False, False),             # 1-D A
        (4, 32, 96, 40, (3, 96), "float", False, False),         # float zero points
        (4, 16, 80, 24, (4, 80), "none", False, True),           # g_idx
        (4, 16, 80, 24, (4, 80), "float", True, True),           # g_idx, float zp, bias
        (4, 64, 384, 300, (300, 384), "packed", True, False),    # several row and column blocks
    ]
    for bits, bs, K, N, a_shape, zp, bias, gidx in cases:
        label = f"MatMulNBits bits={bits} block={bs} K={K} N={N} A={a_shape} zp={zp}" + \
            (" bias" if bias else "") + (" g_idx" if gidx else "")
        model, arrays = nbits_model(label, bits, bs, K, N, a_shape, zp, bias, gidx)
        compare(label, model, arrays, atol=2e-4, rtol=1e-4)
    # float16 A and scales (run widened to float32, rounded once)
    K, N, bs = 64, 16, 32
    q = rng.integers(0, 16, size=(N, K)).astype(np.uint8)
    inits = [nh.from_array(pack_codes(q, 4).reshape(N, 2, 16), "B"),
             nh.from_array((rng.random(N * 2) * 0.1).astype(np.float16), "scales")]
    node = oh.make_node("MatMulNBits", ["A", "B", "scales"], ["Y"], domain="com.microsoft", K=K, N=N, bits=4,
                        block_size=bs)
    m = save_model("MatMulNBits float16", [node], [vi("A", TP.FLOAT16, [3, K])], [vi("Y", TP.FLOAT16)], inits)
    compare("MatMulNBits float16", m, {"A": rng.standard_normal((3, K)).astype(np.float16)}, atol=2e-3, rtol=2e-3)
    # accuracy_level 4: ORT quantizes A to int8 per block; hpcz computes in float
    model, arrays = nbits_model("MatMulNBits accuracy_level=4", 4, 32, 128, 16, (3, 128), acc=4)
    compare("MatMulNBits accuracy_level=4 (ORT: int8 A)", model, arrays, atol=0.05, rtol=0.02)
    # ORT ignores packed zero points next to g_idx: hpcz declines the node
    model, arrays = nbits_model("MatMulNBits g_idx packed zp", 4, 16, 32, 8, (2, 32), "packed", False, True)
    np.save(os.path.join(TMP, "gz.npy"), arrays["A"])
    r = subprocess.run([HPCZ, "run", model, "--input", "A=" + os.path.join(TMP, "gz.npy")],
                       capture_output=True, text=True)
    check(r.returncode == 1 and "not supported" in r.stderr,
          "MatMulNBits g_idx with packed zero points: not supported, one line, exit 1")
    # a bad attribute is refused at load
    bad = oh.make_node("MatMulNBits", ["A", "B", "scales"], ["Y"], domain="com.microsoft", K=32, N=4, bits=4,
                       block_size=24)
    m = save_model("MatMulNBits block 24", [bad], [vi("A", shape=[1, 32])], [vi("Y")],
                   [nh.from_array(np.zeros((4, 2, 12), np.uint8), "B"),
                    nh.from_array(np.ones(8, np.float32), "scales")])
    r = subprocess.run([HPCZ, "run", m, "--input", "A=" + os.path.join(TMP, "gz.npy")], capture_output=True,
                       text=True)
    check(r.returncode != 0 and "MatMulNBits" in r.stderr, "MatMulNBits block_size 24 refused")


def float_mlp(path, K, H, N, seq):
    """x [1, seq, K] -> MatMul W1 -> Relu -> MatMul W2 -> y [1, seq, N]."""
    w1 = (rng.standard_normal((K, H)) / np.sqrt(K)).astype(np.float32)
    w2 = (rng.standard_normal((H, N)) / np.sqrt(H)).astype(np.float32)
    nodes = [oh.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"), oh.make_node("Relu", ["h"], ["r"]),
             oh.make_node("MatMul", ["r", "w2"], ["y"], name="fc2")]
    g = oh.make_graph(nodes, "mlp", [vi("x", shape=[1, seq, K])], [vi("y", shape=[1, seq, N])],
                      [nh.from_array(w1, "w1"), nh.from_array(w2, "w2")])
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=8), path)


def test_ort_quantizer():
    from onnxruntime.quantization.matmul_nbits_quantizer import (DefaultWeightOnlyQuantConfig,
                                                                 MatMulNBitsQuantizer)
    orig = os.path.join(TMP, "mlp.onnx")
    float_mlp(orig, 96, 200, 40, 7)
    q4 = None
    for bits, bs, sym in ((4, 32, False), (4, 128, True), (8, 32, False), (4, 16, False)):
        label = f"ORT quantizer bits={bits} block={bs} {'sym' if sym else 'asym'}"
        cfg = DefaultWeightOnlyQuantConfig(block_size=bs, is_symmetric=sym, bits=bits)
        quant = MatMulNBitsQuantizer(onnx.load(orig), block_size=bs, is_symmetric=sym, algo_config=cfg)
        quant.process()
        path = os.path.join(TMP, f"mlp_q{bits}_{bs}_{int(sym)}.onnx")
        quant.model.save_model_to_file(path, False)
        ops = [n.op_type for n in onnx.load(path).graph.node]
        check(ops.count("MatMulNBits") == 2, f"{label}: both MatMuls became MatMulNBits")
        x = rng.standard_normal((1, 7, 96)).astype(np.float32)
        compare(label, path, {"x": x}, atol=2e-4, rtol=1e-4)
        if (bits, bs, sym) == (4, 32, False):
            q4 = path
    # hpcz report ORIGINAL ORT_INT4 --data
    data = os.path.join(TMP, "mlp_data")
    os.makedirs(data, exist_ok=True)
    np.save(os.path.join(data, "x.npy"), rng.standard_normal((4, 1, 7, 96)).astype(np.float32))
    r = subprocess.run([HPCZ, "report", orig, q4, "--data", data, "--json"], capture_output=True, text=True)
    ok = r.returncode == 0
    try:
        doc = json.loads(r.stdout)
        out = doc["outputs"][0]
        ok = ok and doc["samples"] == 4 and out["name"] == "y" and 0 < out["max_abs"] < 1.0 and \
            out["cosine"] > 0.99
    except Exception as e:  # noqa: BLE001
        print(e, r.stdout[:400], r.stderr[:400])
        ok = False
    check(ok, "hpcz report ORIGINAL ORT_INT4 --data: runs, outputs close (cosine > 0.99)")


# ------------------------------------------------------------ integer MatMuls

def mitof(adt, bdt, B, bs, zp, percol, with_zp, bias):
    K, N = B.shape
    alo, ahi = (0, 256) if adt == np.uint8 else (-128, 128)
    names = ["A", "B", "as", "bs", "azp", "bzp" if with_zp else ""]
    inits = [nh.from_array(B, "B"), nh.from_array(np.array(0.02, np.float32), "as"),
             nh.from_array(bs if percol else bs.reshape(()), "bs"),
             nh.from_array(np.array(3 if adt == np.uint8 else -2, adt), "azp")]
    if with_zp:
        inits.append(nh.from_array(zp if percol else zp.reshape(()), "bzp"))
    if bias:
        names.append("bias")
        inits.append(nh.from_array(rng.standard_normal(N).astype(np.float32), "bias"))
    label = f"MatMulIntegerToFloat A={adt.__name__} B={bdt.__name__} {'per-column' if percol else 'per-tensor'}" + \
        (" zp" if with_zp else "") + (" bias" if bias else "")
    node = oh.make_node("MatMulIntegerToFloat", names, ["Y"], domain="com.microsoft")
    m = save_model(label, [node], [vi("A", TP.UINT8 if adt == np.uint8 else TP.INT8, [3, K])], [vi("Y")], inits)
    compare(label, m, {"A": rng.integers(alo, ahi, size=(3, K)).astype(adt)}, atol=1e-5, rtol=1e-5)


def test_int_matmuls():
    for bdt, percol, with_zp, bias in itertools.product((np.int8, np.uint8), (False, True), (False, True),
                                                       (False, True)):
        K, N = 70, 24
        lo, hi = (-128, 128) if bdt == np.int8 else (0, 256)
        B = rng.integers(lo, hi, size=(K, N)).astype(bdt)
        n = N if percol else 1
        bs = (rng.random(n) * 0.01 + 0.001).astype(np.float32)
        zp = rng.integers(-4, 4, size=n).astype(bdt) if bdt == np.int8 else rng.integers(120, 136, size=n).astype(bdt)
        names = ["A", "B", "bs"]
        inits = [nh.from_array(B, "B"), nh.from_array(bs if percol else bs.reshape(()), "bs")]
        if with_zp:
            names.append("bzp")
            inits.append(nh.from_array(zp if percol else zp.reshape(()), "bzp"))
        if bias:
            names += [""] * (4 - len(names)) + ["bias"]
            inits.append(nh.from_array(rng.standard_normal(N).astype(np.float32), "bias"))
        label = f"DynamicQuantizeMatMul B={bdt.__name__} {'per-column' if percol else 'per-tensor'}" + \
            (" zp" if with_zp else "") + (" bias" if bias else "")
        node = oh.make_node("DynamicQuantizeMatMul", names, ["Y"], domain="com.microsoft")
        m = save_model(label, [node], [vi("A", shape=[2, 5, K])], [vi("Y")], inits)
        compare(label, m, {"A": rng.standard_normal((2, 5, K)).astype(np.float32)}, atol=1e-5, rtol=1e-5)

        for adt in ((np.uint8, np.int8) if bdt == np.int8 else (np.uint8,)):  # what ORT implements
            mitof(adt, bdt, B, bs, zp, percol, with_zp, bias)
    # all-zero A: DynamicQuantizeMatMul's scale is 1
    node = oh.make_node("DynamicQuantizeMatMul", ["A", "B", "bs"], ["Y"], domain="com.microsoft")
    m = save_model("DynamicQuantizeMatMul zero A", [node], [vi("A", shape=[2, 8])], [vi("Y")],
                   [nh.from_array(rng.integers(-5, 5, size=(8, 3)).astype(np.int8), "B"),
                    nh.from_array(np.array(0.5, np.float32), "bs")])
    compare("DynamicQuantizeMatMul zero A", m, {"A": np.zeros((2, 8), np.float32)}, atol=0)


# ------------------------------------------------------------ FusedMatMul

def test_fusedmatmul():
    for ta, tb, tba, tbb in itertools.product((0, 1), repeat=4):
        A = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
        r = 4

        def perm(t, tbatch):
            p = list(range(r))
            if tbatch:
                p = list(range(1, r - 1)) + [0, r - 1]
            if t:
                p[-1], p[-2] = p[-2], p[-1]
            return p
        Ap = A.transpose(perm(ta, tba))
        Bl = rng.standard_normal(Ap.shape[:-2] + (Ap.shape[-1], 6)).astype(np.float32)
        B = np.ascontiguousarray(Bl.transpose(np.argsort(perm(tb, tbb))))
        label = f"FusedMatMul transA={ta} transB={tb} transBatchA={tba} transBatchB={tbb}"
        node = oh.make_node("FusedMatMul", ["A", "B"], ["Y"], domain="com.microsoft", alpha=0.75, transA=ta,
                            transB=tb, transBatchA=tba, transBatchB=tbb)
        m = save_model(label, [node], [vi("A", shape=list(A.shape)), vi("B", shape=list(B.shape))], [vi("Y")])
        compare(label, m, {"A": A, "B": B}, atol=1e-5, rtol=1e-5)
    # broadcast batch, 2-D B constant, transB
    node = oh.make_node("FusedMatMul", ["A", "W"], ["Y"], domain="com.microsoft", alpha=2.0, transB=1)
    m = save_model("FusedMatMul broadcast transB", [node], [vi("A", shape=[3, 7, 16])], [vi("Y")],
                   [nh.from_array(rng.standard_normal((9, 16)).astype(np.float32), "W")])
    compare("FusedMatMul broadcast transB", m, {"A": rng.standard_normal((3, 7, 16)).astype(np.float32)},
            atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------ Gelu family

def test_gelus():
    x = (rng.standard_normal((2, 3, 40)) * 3).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32)
    cases = [
        ("QuickGelu default alpha", oh.make_node("QuickGelu", ["x"], ["y"], domain="com.microsoft"), False),
        ("QuickGelu alpha=1.5", oh.make_node("QuickGelu", ["x"], ["y"], domain="com.microsoft", alpha=1.5), False),
        ("FastGelu", oh.make_node("FastGelu", ["x"], ["y"], domain="com.microsoft"), False),
        ("FastGelu bias", oh.make_node("FastGelu", ["x", "b"], ["y"], domain="com.microsoft"), True),
        ("Gelu com.microsoft", oh.make_node("Gelu", ["x"], ["y"], domain="com.microsoft"), False),
        ("BiasGelu", oh.make_node("BiasGelu", ["x", "b"], ["y"], domain="com.microsoft"), True),
    ]
    for label, node, with_b in cases:
        m = save_model(label, [node], [vi("x", shape=list(x.shape))], [vi("y")],
                       [nh.from_array(b, "b")] if with_b else [])
        compare(label, m, {"x": x}, atol=1e-5, rtol=1e-5)
    # a big one: the parallel path
    xl = rng.standard_normal((4, 64, 384)).astype(np.float32)
    m = save_model("FastGelu large", [oh.make_node("FastGelu", ["x", "b"], ["y"], domain="com.microsoft")],
                   [vi("x", shape=list(xl.shape))], [vi("y")],
                   [nh.from_array(rng.standard_normal(384).astype(np.float32), "b")])
    compare("FastGelu large", m, {"x": xl}, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------ normalisations

def test_norms():
    H = 48
    x = rng.standard_normal((2, 5, H)).astype(np.float32) * 2 + 0.5
    feeds = {"x": x, "skip": rng.standard_normal((2, 5, H)).astype(np.float32)}
    g = nh.from_array(rng.standard_normal(H).astype(np.float32), "gamma")
    be = nh.from_array(rng.standard_normal(H).astype(np.float32), "beta")
    bi = nh.from_array(rng.standard_normal(H).astype(np.float32), "bias")
    outs4 = ["out", "mean", "inv_std_var", "sum"]
    for op, extra in (("SkipLayerNormalization", [["beta"], ["beta", "bias"], ["", "bias"], []]),
                      ("SkipSimplifiedLayerNormalization", [["bias"], []])):
        for ex in extra:
            inits = [g] + [t for t in (be, bi) if t.name in ex]
            for skip_shape in ((2, 5, H), (1, 5, H), (5, H)):
                sk = rng.standard_normal(skip_shape).astype(np.float32)
                label = f"{op} {'+'.join(e for e in ex if e) or 'plain'} skip={skip_shape}"
                node = oh.make_node(op, ["x", "skip", "gamma"] + ex, ["out", "", "", "sum"], domain="com.microsoft",
                                    epsilon=1e-5)
                m = save_model(label, [node], [vi("x", shape=[2, 5, H]), vi("skip", shape=list(skip_shape))],
                               [vi("out"), vi("sum")], inits)
                compare(label, m, {"x": x, "skip": sk}, atol=2e-5, rtol=2e-5)
    # 2-D input; mean and inv_std_var requested (ORT's CPU kernel leaves them empty: hpcz writes them)
    node = oh.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta"], outs4, domain="com.microsoft")
    m = save_model("SkipLayerNormalization 2-D 4 outputs", [node], [vi("x", shape=[10, H]), vi("skip", shape=[10, H])],
                   [vi(o) for o in outs4], [g, be])
    x2, s2 = x.reshape(10, H), feeds["skip"].reshape(10, H)
    compare("SkipLayerNormalization 2-D 4 outputs", m, {"x": x2, "skip": s2}, atol=2e-5, rtol=2e-5,
            outputs=["out", "sum"])
    d = os.path.join(TMP, "sln4")
    np.save(os.path.join(TMP, "sln_x.npy"), x2)
    np.save(os.path.join(TMP, "sln_s.npy"), s2)
    rc = hpcz_run(m, {"x": os.path.join(TMP, "sln_x.npy"), "skip": os.path.join(TMP, "sln_s.npy")}, d)
    if rc == 0:
        s = (x2 + s2).astype(np.float64)
        mu, var = s.mean(-1, keepdims=True), s.var(-1, keepdims=True)
        gm, gi = np.load(os.path.join(d, "mean.npy")), np.load(os.path.join(d, "inv_std_var.npy"))
        ok = gm.shape == (10, 1) and np.allclose(gm, mu, atol=1e-5) and \
            np.allclose(gi, 1 / np.sqrt(var + 1e-12), rtol=1e-4)
    else:
        ok = False
    check(ok, "SkipLayerNormalization: mean and inv_std_var outputs [rows, 1]")

    # SimplifiedLayerNormalization (ai.onnx domain, ORT's RMSNorm), axis -1 and 1
    for axis, sshape in ((-1, [H]), (1, [5, H])):
        sc = nh.from_array(rng.standard_normal(sshape).astype(np.float32), "scale")
        label = f"SimplifiedLayerNormalization axis={axis}"
        node = oh.make_node("SimplifiedLayerNormalization", ["x", "scale"], ["y", "inv_std_var"], axis=axis,
                            epsilon=1e-6)
        m = save_model(label, [node], [vi("x", shape=[2, 5, H])], [vi("y"), vi("inv_std_var")], [sc])
        compare(label, m, {"x": x}, atol=2e-5, rtol=2e-5)
    # LayerNormalization at opset 14 (ORT's ai.onnx LayerNormalization before opset 17)
    node = oh.make_node("LayerNormalization", ["x", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-5)
    m = save_model("LayerNormalization opset 14", [node], [vi("x", shape=[2, 5, H])], [vi("y")], [g, be], opset=14)
    compare("LayerNormalization opset 14", m, {"x": x}, atol=2e-5, rtol=2e-5)


def test_embedln():
    B, S, H, V = 3, 6, 32, 50
    ids = rng.integers(0, V, size=(B, S)).astype(np.int32)
    seg = rng.integers(0, 2, size=(B, S)).astype(np.int32)
    mask = (rng.random((B, S)) > 0.3).astype(np.int32)
    pos = rng.permutation(S).reshape(1, S).astype(np.int32)
    inits = [nh.from_array(rng.standard_normal((V, H)).astype(np.float32), "word"),
             nh.from_array(rng.standard_normal((16, H)).astype(np.float32), "position"),
             nh.from_array(rng.standard_normal((2, H)).astype(np.float32), "segment"),
             nh.from_array(rng.standard_normal(H).astype(np.float32), "gamma"),
             nh.from_array(rng.standard_normal(H).astype(np.float32), "beta")]
    i32 = TP.INT32
    for label, names, feeds in (
            ("EmbedLayerNormalization segment mask", ["ids", "seg", "word", "position", "segment", "gamma", "beta", "mask"],
             {"ids": ids, "seg": seg, "mask": mask}),
            ("EmbedLayerNormalization no segment", ["ids", "", "word", "position", "", "gamma", "beta", "mask"],
             {"ids": ids, "mask": mask}),
            ("EmbedLayerNormalization position_ids", ["ids", "seg", "word", "position", "segment", "gamma", "beta", "",
                                                      "pos"], {"ids": ids, "seg": seg, "pos": pos})):
        node = oh.make_node("EmbedLayerNormalization", names, ["y", "mask_index", "embedding_sum"],
                            domain="com.microsoft", epsilon=1e-5)
        m = save_model(label, [node], [vi(k, i32, list(v.shape)) for k, v in feeds.items()],
                       [vi("y"), vi("mask_index", i32), vi("embedding_sum")], inits)
        compare(label, m, feeds, atol=2e-5, rtol=2e-5)


def test_attention():
    B, S, H, NH = 2, 7, 16, 4
    x = rng.standard_normal((B, S, H)).astype(np.float32)
    w = (rng.standard_normal((H, 3 * H)) * 0.3).astype(np.float32)
    b = rng.standard_normal(3 * H).astype(np.float32)
    raw = (rng.random((B, S)) > 0.3).astype(np.int32)
    raw[0, :2] = 0  # a query whose earlier keys are all masked (unidirectional)
    cases = [("no mask", None, {}), ("lengths", np.array([5, 0], np.int32), {}),
             ("end and start", np.array([5, 7, 1, 0], np.int32), {}), ("raw [B, T]", raw, {}),
             ("raw [B, S, T]", (rng.random((B, S, S)) > 0.3).astype(np.int32), {}),
             ("unidirectional", None, {"unidirectional": 1}),
             ("unidirectional raw", raw, {"unidirectional": 1}),
             ("scale, mask_filter_value", raw, {"scale": 0.3, "mask_filter_value": -50.0}),
             ("qkv_hidden_sizes", None, {"qkv_hidden_sizes": [16, 16, 8]}),
             ("attention_bias", None, {})]
    for label, mask, attrs in cases:
        wv, bv = (w[:, :40], b[:40]) if "qkv_hidden_sizes" in attrs else (w, b)
        names = ["x", "w", "b"] + (["mask"] if mask is not None else [])
        inputs = [vi("x", shape=[B, S, H])] + ([vi("mask", TP.INT32, list(mask.shape))] if mask is not None else [])
        inits = [nh.from_array(wv, "w"), nh.from_array(bv, "b")]
        feeds = {"x": x, **({"mask": mask} if mask is not None else {})}
        if label == "attention_bias":
            names += ["", "", "ab"]
            inits.append(nh.from_array(rng.standard_normal((1, NH, S, S)).astype(np.float32), "ab"))
        node = oh.make_node("Attention", names, ["y"], domain="com.microsoft", num_heads=NH, **attrs)
        m = save_model(f"Attention {label}", [node], inputs, [vi("y")], inits)
        compare(f"Attention {label}", m, feeds, atol=2e-5, rtol=2e-5)


def test_zoo_minilm():
    """ORT's transformer optimizer on the zoo's MiniLM (SkipLayerNormalization, BiasGelu,
    EmbedLayerNormalization; attention fusion off), then its int4 MatMulNBits, and with
    attention fusion (Attention): all against ORT.
    Skipped without the zoo (.zoo/, scripts/bench/zoo.sh)."""
    src = os.path.join(ROOT, ".zoo", "models", "minilm_l3.onnx")
    data = os.path.join(ROOT, ".zoo", "data", "minilm_l3", "eval")
    if not os.path.exists(src) or not os.path.isdir(data):
        print("SKIP zoo MiniLM: no .zoo/models/minilm_l3.onnx")
        return
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model
    fo = FusionOptions("bert")
    fo.enable_attention = False
    opt = os.path.join(TMP, "minilm_opt.onnx")
    optimize_model(src, model_type="bert", num_heads=0, hidden_size=0, optimization_options=fo,
                   opt_level=0).save_model_to_file(opt)
    ops = {n.op_type for n in onnx.load(opt).graph.node}
    check({"SkipLayerNormalization", "BiasGelu", "EmbedLayerNormalization"} <= ops,
          "zoo MiniLM: the optimizer wrote SkipLayerNormalization, BiasGelu, EmbedLayerNormalization")
    q = MatMulNBitsQuantizer(onnx.load(opt), block_size=32, is_symmetric=False)
    q.process()
    q4 = os.path.join(TMP, "minilm_opt_q4.onnx")
    q.model.save_model_to_file(q4, False)
    feeds = {k[:-4]: np.load(os.path.join(data, k))[:4, :32] for k in os.listdir(data) if k.endswith(".npy")}
    feeds["attention_mask"][1, 20:] = 0
    compare("zoo MiniLM optimized", opt, feeds, atol=1e-4, rtol=1e-4)
    compare("zoo MiniLM optimized int4", q4, feeds, atol=1e-4, rtol=1e-4)
    att = os.path.join(TMP, "minilm_att.onnx")
    optimize_model(src, model_type="bert", num_heads=0, hidden_size=0, opt_level=0).save_model_to_file(att)
    check("Attention" in {n.op_type for n in onnx.load(att).graph.node},
          "zoo MiniLM: the optimizer with attention fusion wrote Attention")
    compare("zoo MiniLM optimized with Attention", att, feeds, atol=1e-4, rtol=1e-4)


def main():
    test_matmulnbits()
    test_ort_quantizer()
    test_int_matmuls()
    test_fusedmatmul()
    test_gelus()
    test_norms()
    test_embedln()
    test_attention()
    test_zoo_minilm()
    return tally()


if __name__ == "__main__":
    sys.exit(main())
