"""A decoder-only transformer with a KV cache through `hpcz run` and `hpcz
quantize --dtype int4`, against ONNX Runtime. The model is the architecture of
the zoo's kjv_gpt (scripts/zoo/make_llm.py), randomly initialised, built here
with onnx.helper as torch.onnx.export writes it: positions from the past's
length (Shape, Gather, Range), Concat of an empty past [B,H,0,D] with the new
keys and values, a causal mask from the positions (Greater, Where), Softmax,
exact GELU through Erf, LayerNormalization, and every projection a MatMul with
a 2-D constant weight.

Checks: the full-sequence step (P = 0: zero-size past inputs) and a decode
step (P > 0) match ONNX Runtime, present.* included; int4 RTN and GPTQ
(calibration: token windows with empty pasts) stay close to the float logits
(hpcz run matching ONNX Runtime on the int4 files), and GPTQ is closer than
RTN.

With the zoo (.zoo/models/kjv_gpt.onnx, scripts/zoo/make_llm.py), the trained
model's prompt and decode steps are checked against ONNX Runtime too.

Usage: python test_llm_decoder.py HPCZ SOURCE_ROOT
"""
import os
import shutil
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

TMP = tempfile.mkdtemp(prefix="hpcz-llm-")
LAYERS, D, HEADS, FF, VOCAB, MAXPOS = 2, 64, 4, 256, 48, 64
HD = D // HEADS
rng = np.random.default_rng(9)
ort.set_default_logger_severity(3)


def past_names():
    return [f"past_key_values.{i}.{kv}" for i in range(LAYERS) for kv in ("key", "value")]


def build(path):
    nodes, inits = [], []

    def const(name, arr):
        inits.append(nh.from_array(np.asarray(arr), name))
        return name

    def node(op, ins, name, **attrs):
        nodes.append(oh.make_node(op, ins, [name], name=name + "_n", **attrs))
        return name

    def linear(x, name, k, n, bias=True):
        w = const(name + ".w", (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32))
        y = node("MatMul", [x, w], name + ".mm")
        if bias:
            y = node("Add", [y, const(name + ".b", (0.02 * rng.standard_normal(n)).astype(np.float32))], name)
        return y

    def layernorm(x, name):
        g = const(name + ".g", (1 + 0.1 * rng.standard_normal(D)).astype(np.float32))
        b = const(name + ".b", (0.1 * rng.standard_normal(D)).astype(np.float32))
        return node("LayerNormalization", [x, g, b], name, axis=-1, epsilon=1e-5)

    i64 = lambda *v: np.array(v, np.int64)
    # positions: P = past.shape[2], q_pos = P + arange(T), k_pos = arange(P + T)
    ids_shape = node("Shape", ["input_ids"], "ids_shape")
    t = node("Gather", [ids_shape, const("one", i64(1).reshape(()))], "T", axis=0)
    b = node("Gather", [ids_shape, const("zero", i64(0).reshape(()))], "B", axis=0)
    past_shape = node("Shape", [past_names()[0]], "past_shape")
    p = node("Gather", [past_shape, const("two", i64(2).reshape(()))], "P", axis=0)
    pt = node("Add", [p, t], "PT")
    q_pos = node("Range", [p, pt, const("step", i64(1).reshape(()))], "q_pos")
    k_pos = node("Range", ["zero", pt, "step"], "k_pos")
    mask = node("Greater", [node("Unsqueeze", [k_pos, const("ax0", i64(0))], "k_pos2"),
                            node("Unsqueeze", [q_pos, const("ax1", i64(1))], "q_pos2")], "mask")
    tok = const("tok", (0.5 * rng.standard_normal((VOCAB, D))).astype(np.float32))
    pos = const("pos", (0.1 * rng.standard_normal((MAXPOS, D))).astype(np.float32))
    x = node("Add", [node("Gather", [tok, "input_ids"], "tok_e"), node("Gather", [pos, q_pos], "pos_e")], "x0")
    unsq = lambda v, n: node("Unsqueeze", [v, "ax0"], n)
    bthd = node("Concat", [unsq(b, "B1"), unsq(t, "T1"), const("hd", i64(HEADS, HD))], "bthd", axis=0)
    btd = node("Concat", ["B1", "T1", const("d", i64(D))], "btd", axis=0)
    outputs = []
    for li in range(LAYERS):
        L = f"l{li}"
        h = layernorm(x, L + ".ln1")

        def heads(v, n):
            return node("Transpose", [node("Reshape", [v, bthd], n + ".r")], n, perm=[0, 2, 1, 3])

        q = heads(linear(h, L + ".q", D, D), L + ".qh")
        k = node("Concat", [f"past_key_values.{li}.key", heads(linear(h, L + ".k", D, D), L + ".kh")],
                 f"present.{li}.key", axis=2)
        v = node("Concat", [f"past_key_values.{li}.value", heads(linear(h, L + ".v", D, D), L + ".vh")],
                 f"present.{li}.value", axis=2)
        outputs += [k, v]
        s = node("Mul", [node("MatMul", [q, node("Transpose", [k], L + ".kt", perm=[0, 1, 3, 2])], L + ".qk"),
                         const(L + ".scale", np.array(1 / np.sqrt(HD), np.float32))], L + ".s")
        s = node("Where", [mask, const(L + ".neg", np.array(-1e9, np.float32)), s], L + ".sm")
        a = node("MatMul", [node("Softmax", [s], L + ".p", axis=-1), v], L + ".a")
        a = node("Reshape", [node("Transpose", [a], L + ".at", perm=[0, 2, 1, 3]), btd], L + ".ar")
        x = node("Add", [x, linear(a, L + ".o", D, D)], L + ".x1")
        f = linear(layernorm(x, L + ".ln2"), L + ".fc1", D, FF)
        gelu = node("Mul", [node("Mul", [f, node("Add", [node("Erf", [node("Div", [f, const(
            L + ".sqrt2", np.array(np.sqrt(2), np.float32))], L + ".g0")], L + ".g1"),
            const(L + ".onef", np.array(1, np.float32))], L + ".g2")], L + ".g3"),
            const(L + ".half", np.array(0.5, np.float32))], L + ".gelu")
        x = node("Add", [x, linear(gelu, L + ".fc2", FF, D)], L + ".x2")
    logits = node("MatMul", [layernorm(x, "ln_f"), const("head.w", (rng.standard_normal((D, VOCAB)) /
                                                                   np.sqrt(D)).astype(np.float32))], "logits")
    vi = oh.make_tensor_value_info
    ins = [vi("input_ids", TP.INT64, ["batch", "seq"])] + \
          [vi(n, TP.FLOAT, ["batch", HEADS, "past", HD]) for n in past_names()]
    outs = [vi(logits, TP.FLOAT, ["batch", "seq", VOCAB])] + \
           [vi(n, TP.FLOAT, ["batch", HEADS, "total", HD]) for n in outputs]
    g = oh.make_graph(nodes, "tiny_gpt", ins, outs, inits)
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)


def feeds(ids, past):
    f = {"input_ids": ids}
    f.update(zip(past_names(), past))
    return f


def ort_run(model, f):
    # no graph optimizations: ORT's default fuses DequantizeLinear(int4) + MatMul
    # into MatMulNBits computing with int8 activations, not what the graph says
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, f)))


def hpcz_run(model, f, label):
    args = [HPCZ, "run", model, "-o", os.path.join(TMP, label), "-q"]
    for name, arr in f.items():
        p = os.path.join(TMP, f"{label}-{name}.npy")
        np.save(p, arr)
        args += ["--input", f"{name}={p}"]
    r = subprocess.run(args, capture_output=True, text=True)
    check(r.returncode == 0, f"{label}: hpcz run exits 0" + (f" ({r.stderr.strip()})" if r.returncode else ""))
    if r.returncode:
        return None
    out = os.path.join(TMP, label)
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".npy")}


def cos(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def matches(label, model, f, atol):
    want, got = ort_run(model, f), hpcz_run(model, f, label)
    if got is None:
        return want, None
    for n, w in want.items():
        g = got[n]
        ok = g.shape == w.shape and g.dtype == w.dtype
        err = float(np.max(np.abs(g - w))) if ok and w.size else 0.0
        check(ok and err <= atol, f"{label}: {n} {tuple(w.shape)} matches onnxruntime (max abs err {err:.2e})")
    return want, got


def quantize(src, name, *args):
    dst = os.path.join(TMP, name)
    r = subprocess.run([HPCZ, "quantize", src, "-o", dst, "-q", *args], capture_output=True, text=True)
    check(r.returncode == 0, f"hpcz quantize {' '.join(args)} exits 0" + (f" ({r.stderr.strip()})"
                                                                          if r.returncode else ""))
    return dst if r.returncode == 0 else None


def zoo_checks():
    """The zoo's trained kjv_gpt: a 48-character prompt, then 16 characters
    on its cache, hpcz run vs ORT (logits cosine >= 0.9999 and 1e-3 abs)."""
    src = os.path.join(ROOT, ".zoo", "models", "kjv_gpt.onnx")
    ev = os.path.join(ROOT, ".zoo", "data", "kjv_gpt", "eval", "input_ids.npy")
    if not (os.path.exists(src) and os.path.exists(ev)):
        print("SKIP zoo kjv_gpt: no .zoo/models/kjv_gpt.onnx (scripts/zoo/make_llm.py)")
        return
    m = onnx.load(src)
    names = [i.name for i in m.graph.input if i.name.startswith("past_key_values.")]
    shape = [d.dim_value for d in m.graph.input[1].type.tensor_type.shape.dim]
    ids = np.load(ev)[:2]
    f = {"input_ids": ids[:, :48], **{n: np.zeros((2, shape[1], 0, shape[3]), np.float32) for n in names}}
    for label in ("kjv_gpt P=0 T=48", "kjv_gpt P=48 T=16"):
        want, got = matches(label, src, f, 1e-3)
        if got is None:
            return
        c = cos(want["logits"], got["logits"])
        check(c >= 0.9999, f"{label}: logits cosine {c:.6f} >= 0.9999")
        f = {"input_ids": ids[:, 48:], **{n: got[n.replace("past_key_values", "present")] for n in names}}


def main():
    model = os.path.join(TMP, "tiny_gpt.onnx")
    build(model)
    B, T, P = 2, 12, 12
    ids = rng.integers(0, VOCAB, (B, T + 3)).astype(np.int64)
    empty = [np.zeros((B, HEADS, 0, HD), np.float32) for _ in past_names()]

    # full sequence with an empty past, then 3 tokens decoded one step at a time
    full, _ = matches("P=0 T=12", model, feeds(ids[:, :T], empty), 1e-4)
    past = [full[n.replace("past_key_values", "present")] for n in past_names()]
    want, got = matches("P=12 T=3", model, feeds(ids[:, T:], past), 1e-4)
    whole = ort_run(model, feeds(ids, empty))["logits"]
    check(np.allclose(want["logits"], whole[:, T:], atol=1e-4),
          "the decode step's logits are those of the whole sequence (the cache is used)")
    step = [full[n.replace("past_key_values", "present")] for n in past_names()]
    for i in range(3):
        w, g = matches(f"P={P + i} T=1", model, feeds(ids[:, T + i:T + i + 1], step), 1e-4)
        if g is None:
            break
        step = [g[n.replace("past_key_values", "present")] for n in past_names()]

    # int4: calibration = token windows and empty pasts, as the zoo's kjv_gpt
    calib = os.path.join(TMP, "calib")
    os.makedirs(calib)
    np.save(os.path.join(calib, "input_ids.npy"), rng.integers(0, VOCAB, (16, T)).astype(np.int64))
    for n in past_names():
        np.save(os.path.join(calib, n + ".npy"), np.zeros((16, HEADS, 0, HD), np.float32))
    ev = rng.integers(0, VOCAB, (4, T)).astype(np.int64)
    f0 = feeds(ev, [np.zeros((4, HEADS, 0, HD), np.float32) for _ in past_names()])
    ref = ort_run(model, f0)["logits"]
    err = {}
    for algo, args in (("rtn", ["--algo", "rtn"]), ("gptq", ["--calib", calib])):
        q = quantize(model, f"tiny_gpt.int4.{algo}.onnx", "--dtype", "int4", *args)
        if not q:
            continue
        w, g = matches(f"int4 {algo} P=0", q, f0, 1e-4)
        c = cos(ref, w["logits"])
        err[algo] = float(np.mean((ref - w["logits"]) ** 2))
        check(c > 0.98, f"int4 {algo}: logits cosine to float {c:.5f} > 0.98")
    if len(err) == 2:
        check(err["gptq"] < err["rtn"], f"int4 GPTQ logits MSE {err['gptq']:.3e} < RTN {err['rtn']:.3e}")


if __name__ == "__main__":
    try:
        main()
        zoo_checks()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(tally())
