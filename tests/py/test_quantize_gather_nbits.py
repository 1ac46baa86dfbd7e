"""Embedding tables and MatMulNBits, checked against ONNX Runtime and numpy.

A small encoder built here (word and position embedding Gathers, two MatMuls
with K = 64 and K = 96, the second not a multiple of the 64-block) is
quantized by hpcz:
  * every weight-quantizing mode (weight-only int8 and int4, dynamic, static)
    turns the word table into int8 with a scale per row read by
    Gather -> Cast -> Mul: ORT's output equals numpy's lookup of the
    dequantized rows, no DequantizeLinear reads a table, and --op-types /
    --exclude keep it float; a table a MatMul reads too stays float;
  * --dtype int4 --int4-format matmulnbits (RTN and GPTQ) writes
    com.microsoft::MatMulNBits whose weights are exactly the QDQ form's
    (ORT's output against numpy with the QDQ file's dequantized weights),
    that ORT and `hpcz run` agree on, also through a .hpcz container;
  * quantize-int4{gather-int4=true} puts 2-D tables of whole blocks in int4, read by
    com.microsoft::GatherBlockQuantized, which hpcz runs bit for bit as ORT;
  * both forms give the same bytes twice, and `hpcz inspect`/`hpcz report`
    read them.

Usage: python test_quantize_gather_nbits.py HPCZ SOURCE_ROOT
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from harness import HPCZ, check, hpcz, session, tally, sqnr

TMP = tempfile.mkdtemp(prefix="hpcz-gather-")
V, D, H, O, S = 300, 64, 96, 48, 12


def quantize(name, *args, src=None):
    dst = os.path.join(TMP, name)
    r = hpcz("quantize", src or SRC, "-o", dst, *args)
    if r.returncode:
        print(r.stderr)
    return (dst if r.returncode == 0 else None), r.stderr


def make_model(tied=False):
    rng = np.random.default_rng(7)
    T = (rng.standard_normal((V, D)) * rng.uniform(0.02, 2.0, (V, 1))).astype(np.float32)
    P = (0.1 * rng.standard_normal((S, D))).astype(np.float32)
    W1 = (rng.standard_normal((D, H)) / 8).astype(np.float32)
    W2 = (rng.standard_normal((H, O)) / 10).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["T", "ids"], ["e"], name="word"),
        helper.make_node("Gather", ["P", "pos"], ["p"], name="position"),
        helper.make_node("Add", ["e", "p"], ["x"]),
        helper.make_node("MatMul", ["x", "W1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "W2"], ["y"], name="fc2"),
    ]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", S, O])]
    if tied:  # the table is also the output projection
        nodes += [helper.make_node("Transpose", ["T"], ["Tt"]), helper.make_node("MatMul", ["x", "Tt"], ["logits"])]
        outs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", S, V]))
    g = helper.make_graph(nodes, "enc", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", S])], outs,
                          [numpy_helper.from_array(T, "T"), numpy_helper.from_array(P, "P"),
                           numpy_helper.from_array(np.arange(S, dtype=np.int64), "pos"),
                           numpy_helper.from_array(W1, "W1"), numpy_helper.from_array(W2, "W2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m, T


MODEL, TABLE = make_model()
SRC = os.path.join(TMP, "enc.onnx")
onnx.save(MODEL, SRC)
IDS = np.random.default_rng(1).integers(0, V, size=(4, S), dtype=np.int64)
IDS[0, :3] = [0, V - 1, 5]
CALIB = os.path.join(TMP, "calib")
os.makedirs(CALIB)
np.save(os.path.join(CALIB, "ids.npy"), np.random.default_rng(2).integers(0, V, size=(16, S), dtype=np.int64))
REF = session(SRC).run(None, {"ids": IDS})[0]
np.save(os.path.join(TMP, "ids.npy"), IDS)


def inits(m):
    return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}


def gather_checks(label, path, min_sqnr=30):
    m = onnx.load(path)
    w = inits(m)
    word = [n for n in m.graph.node if n.op_type == "Gather" and n.input[1] == "ids"]
    tables = [w.get(n.input[0]) for n in word]
    q = [t for t in tables if t is not None and t.dtype == np.int8]
    s = [t for t in tables if t is not None and t.dtype == np.float32]
    check(len(q) == 1 and q[0].shape == (V, D) and len(s) == 1 and s[0].shape == (V, 1),
          f"{label}: the word table is int8 [V, D] with row scales [V, 1], both read by Gather")
    check("T" not in w and not any(n.op_type == "DequantizeLinear" and n.input[0].startswith("T")
                                   for n in m.graph.node),
          f"{label}: no float table and no DequantizeLinear of the table")
    if len(q) != 1 or len(s) != 1:
        return
    # ORT's lookup equals numpy's: the int8 row times its scale
    sess = session(path)
    emb_name = word[0].output[0]
    consumer = next(n for n in m.graph.node if n.op_type == "Cast" and n.input[0] == emb_name)
    mul = next(n for n in m.graph.node if n.op_type == "Mul" and consumer.output[0] in n.input)
    lookup = q[0].astype(np.float32)[IDS] * s[0][IDS]
    m2 = onnx.load(path)
    m2.graph.output.append(helper.make_tensor_value_info(mul.output[0], TensorProto.FLOAT, None))
    p2 = path + ".probe.onnx"
    onnx.save(m2, p2)
    got = session(p2).run([mul.output[0]], {"ids": IDS})[0]
    check(np.array_equal(got, lookup), f"{label}: ORT's embedding rows equal numpy's int8 row x scale")
    err = np.abs(lookup - TABLE[IDS]).max(axis=-1) / np.abs(TABLE[IDS]).max(axis=-1)
    check(err.max() <= 0.5 / 127 + 1e-6, f"{label}: each row within half a step of its range ({err.max():.4f})")
    y = sess.run(None, {"ids": IDS})[0]
    s_db = sqnr(REF, y)
    check(s_db > min_sqnr, f"{label}: output SQNR {s_db:.1f} dB > {min_sqnr} against float")


def gather4_checks(label, path, block=32):
    """int4: the tables behind com.microsoft::GatherBlockQuantized."""
    m = onnx.load(path)
    w = inits(m)
    g = [n for n in m.graph.node if n.op_type == "GatherBlockQuantized" and n.input[1] == "ids"]
    check(len(g) == 1 and g[0].domain == "com.microsoft" and "T" not in w and
          any(o.domain == "com.microsoft" for o in m.opset_import),
          f"{label}: the word table is read by com.microsoft::GatherBlockQuantized")
    if len(g) != 1:
        return
    a = {x.name: x.i for x in g[0].attribute}
    data, sc = w[g[0].input[0]], w[g[0].input[2]]
    check(a == {"bits": 4, "block_size": block, "gather_axis": 0, "quantize_axis": 1} and
          data.dtype == np.uint8 and data.shape == (V, D // 2) and sc.shape == (V, D // block) and len(g[0].input) == 3,
          f"{label}: bits 4, blocks of {block}, packed uint8 [V, D/2], scales [V, D/{block}], zero point 8")
    codes = np.stack([data & 15, data >> 4], axis=-1).reshape(V, D).astype(np.float32) - 8
    table = codes * np.repeat(sc, block, axis=1)
    m2 = onnx.load(path)
    m2.graph.output.append(helper.make_tensor_value_info(g[0].output[0], TensorProto.FLOAT, None))
    p2 = path + ".probe.onnx"
    onnx.save(m2, p2)
    got = session(p2).run([g[0].output[0]], {"ids": IDS})[0]
    check(np.array_equal(got, table[IDS]), f"{label}: ORT's rows equal numpy's unpacked codes x scale")
    s_db = sqnr(TABLE, table)
    check(s_db > 18, f"{label}: table SQNR {s_db:.1f} dB > 18 (int4, clipped blocks)")
    # hpcz's GatherBlockQuantized, bit for bit (ORT runs the int4 QDQ MatMuls
    # with int8 activations, so the whole output is compared in nbits_checks)
    d = os.path.join(TMP, "w4_run")
    r = hpcz("run", p2, "-i", "ids=" + os.path.join(TMP, "ids.npy"), "-o", d, "-q")
    check(r.returncode == 0 and np.array_equal(np.load(os.path.join(d, g[0].output[0] + ".npy")), got),
          f"{label}: hpcz run gives ORT's rows")


def int8_checks():
    out, err = quantize("w8.onnx")
    check(out and "Gather           2 quantized, 0 kept float" in err,
          "weight-only: summary counts the word and position tables")
    gather_checks("weight-only int8", out)
    out, _ = quantize("dyn.onnx", "--mode", "dynamic")
    gather_checks("dynamic", out)
    out, _ = quantize("static.onnx", "--mode", "static", "--calib", CALIB, "--placement", "all")
    gather_checks("static", out)
    out, _ = quantize("w4.onnx", "--dtype", "int4", "--algo", "rtn")
    gather_checks("int4 weight-only (int8 tables)", out, 15)
    out, _ = quantize("w4g.onnx", "--passes", "quantize-int4{gather-int4=true},dce")
    gather4_checks("quantize-int4{gather-int4=true}", out)
    nb, _ = quantize("w4nb.onnx", "--passes", "quantize-int4{gather-int4=true},int4-matmulnbits,dce")
    y = session(nb).run(None, {"ids": IDS})[0]
    d = os.path.join(TMP, "w4nb_run")
    r = hpcz("run", nb, "-i", "ids=" + os.path.join(TMP, "ids.npy"), "-o", d, "-q")
    check(r.returncode == 0 and np.abs(np.load(os.path.join(d, "y.npy")) - y).max() < 1e-5 * np.abs(y).max(),
          "int4 tables and MatMulNBits: hpcz run matches ORT")
    # run by hpcz: the same numbers as ORT
    d = os.path.join(TMP, "w8_run")
    r = hpcz("run", os.path.join(TMP, "w8.onnx"), "-i", "ids=" + os.path.join(TMP, "ids.npy"), "-o", d, "-q")
    # ORT's basic level: at its default level ORT 1.32 rewrites the weight's
    # DequantizeLinear -> MatMul into an 8-bit MatMulNBits that quantizes the
    # activations too, which is not the file's arithmetic
    y = session(os.path.join(TMP, "w8.onnx"), ort.GraphOptimizationLevel.ORT_ENABLE_BASIC).run(None, {"ids": IDS})[0]
    check(r.returncode == 0 and np.abs(np.load(os.path.join(d, "y.npy")) - y).max() < 1e-5,
          "hpcz run matches ORT on the int8 Gather form")
    # left float when asked
    for label, args in [("--op-types MatMul", ["--op-types", "MatMul"]), ("--exclude Gather", ["--exclude", "Gather"]),
                        ("dynamic --exclude word", ["--mode", "dynamic", "--exclude", "word"])]:
        out, _ = quantize("kept.onnx", *args)
        w = inits(onnx.load(out))
        check("T" in w and w["T"].dtype == np.float32, f"{label}: the table stays float")
    # a table a MatMul reads too (tied embeddings) stays float
    tied, _ = make_model(tied=True)
    tsrc = os.path.join(TMP, "tied.onnx")
    onnx.save(tied, tsrc)
    out, err = quantize("tied_q.onnx", "-v", src=tsrc)
    w = inits(onnx.load(out))
    check("T" in w and "kept float (read by other nodes than Gather)" in err, "tied table: kept float, said so")


def dequantize(m, out_name):
    """The float weight behind the DequantizeLinear writing out_name."""
    w = inits(m)
    dq = next(n for n in m.graph.node if n.output[0] == out_name)
    q = w[dq.input[0]].astype(np.float32)
    sc = w[dq.input[1]]
    zp = w[dq.input[2]].astype(np.float32) if len(dq.input) > 2 and dq.input[2] else np.zeros_like(sc)
    b = next(a.i for a in dq.attribute if a.name == "block_size")
    return (q - np.repeat(zp, b, axis=0)[: q.shape[0]]) * np.repeat(sc, b, axis=0)[: q.shape[0]]


def nbits_checks(label, qdq, nb):
    mq, mn = onnx.load(qdq), onnx.load(nb)
    nodes = [n for n in mn.graph.node if n.op_type == "MatMulNBits"]
    check(len(nodes) == 2 and all(n.domain == "com.microsoft" for n in nodes) and
          any(o.domain == "com.microsoft" for o in mn.opset_import) and
          not any(n.op_type == "MatMul" for n in mn.graph.node),
          f"{label}: both MatMuls are com.microsoft::MatMulNBits, the domain imported")
    attrs = {n.name.split("_MatMulNBits")[0]: {a.name: a.i for a in n.attribute} for n in nodes}
    check(attrs.get("fc2", {}).get("K") == H and attrs["fc2"].get("N") == O and attrs["fc2"].get("bits") == 4,
          f"{label}: K, N and bits attributes")
    # the weights are the QDQ form's: ORT's output against numpy's
    W1 = dequantize(mq, next(n.input[1] for n in mq.graph.node if n.name == "fc1"))
    W2 = dequantize(mq, next(n.input[1] for n in mq.graph.node if n.name == "fc2"))
    x = session(qdq)
    mm = onnx.load(qdq)
    xname = next(n.input[0] for n in mm.graph.node if n.name == "fc1")
    mm.graph.output.append(helper.make_tensor_value_info(xname, TensorProto.FLOAT, None))
    p = os.path.join(TMP, "probe.onnx")
    onnx.save(mm, p)
    xin = session(p).run([xname], {"ids": IDS})[0].astype(np.float64)
    want = np.maximum(xin @ W1, 0) @ W2
    got = session(nb).run(None, {"ids": IDS})[0]
    rel = np.abs(got - want).max() / np.abs(want).max()
    check(rel < 1e-5, f"{label}: ORT's MatMulNBits output equals numpy with the QDQ weights (rel {rel:.1e})")
    d = os.path.join(TMP, "nb_run")
    shutil.rmtree(d, ignore_errors=True)
    r = hpcz("run", nb, "-i", "ids=" + os.path.join(TMP, "ids.npy"), "-o", d, "-q")
    check(r.returncode == 0 and np.abs(np.load(os.path.join(d, "y.npy")) - got).max() < 1e-5 * np.abs(got).max(),
          f"{label}: hpcz run matches ORT")
    return got


def int4_checks():
    qdq, _ = quantize("i4_qdq.onnx", "--dtype", "int4", "--block-size", "64")
    nb, err = quantize("i4_nb.onnx", "--dtype", "int4", "--block-size", "64", "--int4-format", "matmulnbits")
    check(nb and "MatMul           2 quantized, 0 kept float" in err, "matmulnbits: summary counts MatMulNBits as quantized MatMul")
    got = nbits_checks("uint4 RTN, K = 96 with a 64-block", qdq, nb)
    check(sqnr(REF, got) > 15, f"uint4 RTN: output SQNR {sqnr(REF, got):.1f} dB > 15")
    qdq, _ = quantize("i4s_qdq.onnx", "--dtype", "int4", "--symmetric")
    nb, _ = quantize("i4s_nb.onnx", "--dtype", "int4", "--symmetric", "--int4-format", "matmulnbits")
    nbits_checks("int4 symmetric (no zero points)", qdq, nb)
    check(len(inits(onnx.load(nb))) and not any(len(n.input) > 3 for n in onnx.load(nb).graph.node
                                                  if n.op_type == "MatMulNBits"),
          "int4 symmetric: MatMulNBits without zero points (default 8)")
    qdq, _ = quantize("g_qdq.onnx", "--dtype", "int4", "--calib", CALIB)
    nb, _ = quantize("g_nb.onnx", "--dtype", "int4", "--calib", CALIB, "--int4-format", "matmulnbits")
    nbits_checks("GPTQ", qdq, nb)
    # deterministic
    for args in (["--dtype", "int4", "--int4-format", "matmulnbits"], []):
        a, _ = quantize("d1.onnx", *args)
        b, _ = quantize("d2.onnx", *args)
        check(open(a, "rb").read() == open(b, "rb").read(), f"same bytes twice: {' '.join(args) or 'int8'}")
    # .hpcz keeps MatMulNBits and the int8 table
    hz, _ = quantize("i4_nb.hpcz", "--dtype", "int4", "--int4-format", "matmulnbits")
    d = os.path.join(TMP, "hz_run")
    r = hpcz("run", hz, "-i", "ids=" + os.path.join(TMP, "ids.npy"), "-o", d, "-q")
    nb, _ = quantize("i4_nb32.onnx", "--dtype", "int4", "--int4-format", "matmulnbits")
    want = session(nb).run(None, {"ids": IDS})[0]
    check(r.returncode == 0 and np.abs(np.load(os.path.join(d, "y.npy")) - want).max() < 1e-5 * np.abs(want).max(),
          ".hpcz container round trip runs MatMulNBits as ORT does")
    back = os.path.join(TMP, "back.onnx")
    r = hpcz("convert", hz, "-o", back)
    check(r.returncode == 0 and open(back, "rb").read() == open(nb, "rb").read(),
          ".hpcz converted back to ONNX: the same bytes as the ONNX output")
    # inspect counts 4-bit weights; report compares
    r = hpcz("inspect", nb, "--json")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    print("   inspect:", {k: v for k, v in j.items() if "param" in k})
    check("uint4" in hpcz("inspect", nb).stdout, "inspect lists MatMulNBits weights as uint4")
    r = hpcz("report", SRC, nb, "--data", CALIB, "-q")
    check(r.returncode == 0, "hpcz report compares the MatMulNBits model" + (": " + r.stderr if r.returncode else ""))


def gbq_runtime_checks():
    """hpcz's GatherBlockQuantized against ORT: 4 and 8 bits, blocks 16..64,
    zero points absent or packed row by row (an odd count per row pads the
    row's last byte, as ORT 1.32 reads them), negative indices; and the
    flattened zero points ORT 1.23 read, against numpy."""
    rng = np.random.default_rng(3)
    for bits in (4, 8):
        for bs, width in ((16, 64), (32, 96), (64, 64)):
            for zp in (False, True):
                per, rows = 8 // bits, 40
                nblk = (width + bs - 1) // bs
                ins = [numpy_helper.from_array(rng.integers(0, 256, (rows, width // per), dtype=np.uint8), "Q"),
                       numpy_helper.from_array(rng.uniform(0.01, 1, (rows, nblk)).astype(np.float32), "S")]
                if zp:
                    ins.append(numpy_helper.from_array(
                        rng.integers(0, 256, (rows, (nblk + per - 1) // per), dtype=np.uint8), "Z"))
                n = helper.make_node("GatherBlockQuantized", ["Q", "ids", "S"] + (["Z"] if zp else []), ["y"],
                                     domain="com.microsoft", bits=bits, block_size=bs, gather_axis=0, quantize_axis=1)
                g = helper.make_graph([n], "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "s"])],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", width])], ins)
                m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
                m.ir_version = 10
                path = os.path.join(TMP, "gbq.onnx")
                onnx.save(m, path)
                ids = rng.integers(-rows, rows, (3, 5)).astype(np.int64)
                np.save(os.path.join(TMP, "gbq_ids.npy"), ids)
                want = session(path).run(None, {"ids": ids})[0]
                d = os.path.join(TMP, "gbq_run")
                shutil.rmtree(d, ignore_errors=True)
                r = hpcz("run", path, "-i", "ids=" + os.path.join(TMP, "gbq_ids.npy"), "-o", d, "-q")
                check(r.returncode == 0 and np.array_equal(np.load(os.path.join(d, "y.npy")), want),
                      f"GatherBlockQuantized bits {bits}, block {bs}, width {width}, zero points {zp}: "
                      "hpcz equals ORT")
    # 4 bits, three blocks a row: zero points packed over the flattened
    # [rows, 3] (60 bytes, where the row form has 80) are read that way
    rows, bs, width = 40, 32, 96
    Q = rng.integers(0, 256, (rows, width // 2), dtype=np.uint8)
    S = rng.uniform(0.01, 1, (rows, 3)).astype(np.float32)
    Z = rng.integers(0, 256, (rows * 3 // 2,), dtype=np.uint8)
    n = helper.make_node("GatherBlockQuantized", ["Q", "ids", "S", "Z"], ["y"], domain="com.microsoft", bits=4,
                         block_size=bs, gather_axis=0, quantize_axis=1)
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", width])],
                          [numpy_helper.from_array(Q, "Q"), numpy_helper.from_array(S, "S"),
                           numpy_helper.from_array(Z, "Z")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 10
    path = os.path.join(TMP, "gbq_flat.onnx")
    onnx.save(m, path)
    ids = np.array([0, 1, 7, rows - 1, -1], dtype=np.int64)
    np.save(os.path.join(TMP, "gbq_ids.npy"), ids)
    codes = np.stack([Q & 15, Q >> 4], -1).reshape(rows, width).astype(np.float32)
    zf = np.stack([Z & 15, Z >> 4], -1).reshape(rows, 3).astype(np.float32)
    want = ((codes - np.repeat(zf, bs, 1)) * np.repeat(S, bs, 1))[ids]
    d = os.path.join(TMP, "gbq_run")
    shutil.rmtree(d, ignore_errors=True)
    r = hpcz("run", path, "-i", "ids=" + os.path.join(TMP, "gbq_ids.npy"), "-o", d, "-q")
    check(r.returncode == 0 and np.array_equal(np.load(os.path.join(d, "y.npy")), want),
          "GatherBlockQuantized, zero points over the flattened table (ORT 1.23's reading): hpcz equals numpy")


def usage_checks():
    for args, msg in [(["--int4-format", "nbits", "--dtype", "int4"], "is not qdq or matmulnbits"),
                      (["--int4-format", "matmulnbits"], "is for --dtype int4")]:
        r = hpcz("quantize", SRC, "-o", os.path.join(TMP, "u.onnx"), *args)
        check(r.returncode == 2 and msg in r.stderr, f"{' '.join(args)}: exit 2, '{msg}'")


def main():
    try:
        int8_checks()
        int4_checks()
        gbq_runtime_checks()
        usage_checks()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(tally())


if __name__ == "__main__":
    main()
