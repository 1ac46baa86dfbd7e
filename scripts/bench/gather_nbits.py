#!/usr/bin/env python3
"""Embedding-table quantization and MatMulNBits output on the zoo's MiniLM.

    .venv-anchors/bin/python scripts/bench/gather_nbits.py [--hpcz build-rel/hpcz]
        [--zoo .zoo] [--out DIR] [--skip-quality] [--skip-gather-latency]

1. File size (relative to fp32) and worst/mean sentence cosine (scripts/zoo/
   metrics.py, eval split, ONNX Runtime) of minilm_l3 quantized by hpcz
   (weight-only int8, dynamic, static, int4 qdq and matmulnbits, RTN and GPTQ)
   and by ONNX Runtime's quantize_dynamic and MatMulNBitsQuantizer (block 32,
   asymmetric, as hpcz's int4 default).
2. Latency in ONNX Runtime of ways to write an int8 embedding lookup on the
   minilm table (30522 x 384), alternating the forms each round (ratios to the
   float Gather; the machine may be shared):
     float      Gather(float table)
     rows       Gather(int8 table) -> Cast -> Mul(Gather(row scales))  [hpcz]
     tensor-dq  Gather(uint8 table) -> DequantizeLinear (per tensor)   [ORT quantize_dynamic]
     table-dq   DequantizeLinear(int8 table, row scales) -> Gather     [the whole table per run]
     gbq8       com.microsoft::GatherBlockQuantized, uint8, bits 8, block 128
     gbq4       com.microsoft::GatherBlockQuantized, packed uint8, bits 4, block 32
   (the errors of the 4-bit form are 4-bit errors: not comparable)
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts", "zoo"))
import metrics  # noqa: E402


def hpcz_variants(hpcz, src, calib, out):
    v = {
        "hpcz int8 weight-only": [],
        "hpcz int8 dynamic": ["--mode", "dynamic"],
        "hpcz int8 static": ["--mode", "static", "--calib", calib],
        "hpcz int4 qdq (rtn)": ["--dtype", "int4"],
        "hpcz int4 matmulnbits (rtn)": ["--dtype", "int4", "--int4-format", "matmulnbits"],
        "hpcz int4 matmulnbits (gptq)": ["--dtype", "int4", "--int4-format", "matmulnbits", "--calib", calib],
    }
    paths = {}
    for i, (name, args) in enumerate(v.items()):
        p = os.path.join(out, f"hpcz_{i}.onnx")
        subprocess.run([hpcz, "quantize", src, "-o", p, "-q", *args], check=True)
        paths[name] = p
    return paths


def ort_variants(src, out):
    import logging
    logging.disable(logging.INFO)  # the quantizers log every node
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    paths = {}
    p = os.path.join(out, "ort_dynamic.onnx")
    quantize_dynamic(src, p, weight_type=QuantType.QInt8)
    paths["ORT quantize_dynamic (QInt8)"] = p
    q = MatMulNBitsQuantizer(onnx.load(src), block_size=32, is_symmetric=False)
    q.process()
    p = os.path.join(out, "ort_nbits.onnx")
    onnx.save(q.model.model, p)
    paths["ORT MatMulNBitsQuantizer (block 32)"] = p
    return paths


def quality(zoo, variants):
    src = os.path.join(zoo, "models", "minilm_l3.onnx")
    base = os.path.getsize(src)
    print(f"{'variant':40s} {'size':>7s} {'cos worst':>10s} {'cos mean':>9s}")
    for name, p in variants.items():
        r = metrics.evaluate("minilm_l3", p, zoo=zoo)
        t = r["task"]
        print(f"{name:40s} {os.path.getsize(p) / base:7.3f} {t['emb_cos_min']:10.5f} {t['emb_cos_mean']:9.5f}",
              flush=True)


def gather_models(table):
    V, D = table.shape
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "s"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", D])
    amax = np.abs(table).max(axis=1, keepdims=True)
    rs = np.where(amax > 0, amax / 127, 1).astype(np.float32)
    q8 = np.clip(np.rint(table / rs), -127, 127).astype(np.int8)
    ts = np.float32(np.abs(table).max() / 127.5)
    qu8 = np.clip(np.rint(table / ts) + 128, 0, 255).astype(np.uint8)
    blk = 128
    bs = (np.abs(table.reshape(V, D // blk, blk)).max(axis=2) / 127).astype(np.float32)
    bs[bs == 0] = 1
    gq = (np.clip(np.rint(table.reshape(V, D // blk, blk) / bs[:, :, None]), -127, 127) + 128).astype(np.uint8)
    b4 = 32  # 4-bit, block 32, asymmetric-free (zero point 8)
    s4 = (np.abs(table.reshape(V, D // b4, b4)).max(axis=2) / 7).astype(np.float32)
    s4[s4 == 0] = 1
    c4 = (np.clip(np.rint(table.reshape(V, D // b4, b4) / s4[:, :, None]), -7, 7) + 8).astype(np.uint8).reshape(V, D)
    p4 = (c4[:, 0::2] | (c4[:, 1::2] << 4)).astype(np.uint8)
    init = numpy_helper.from_array
    forms = {
        "float": ([helper.make_node("Gather", ["T", "ids"], ["y"])], [init(table, "T")]),
        "rows": ([helper.make_node("Gather", ["Q", "ids"], ["g"]),
                  helper.make_node("Gather", ["S", "ids"], ["s"]),
                  helper.make_node("Cast", ["g"], ["f"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", ["f", "s"], ["y"])],
                 [init(q8, "Q"), init(rs, "S")]),
        "tensor-dq": ([helper.make_node("Gather", ["Q", "ids"], ["g"]),
                       helper.make_node("DequantizeLinear", ["g", "S", "Z"], ["y"])],
                      [init(qu8, "Q"), init(np.array(ts, np.float32), "S"), init(np.array(128, np.uint8), "Z")]),
        "table-dq": ([helper.make_node("DequantizeLinear", ["Q", "S"], ["T"], axis=0),
                      helper.make_node("Gather", ["T", "ids"], ["y"])],
                     [init(q8, "Q"), init(rs.reshape(V), "S")]),
        "gbq8": ([helper.make_node("GatherBlockQuantized", ["Q", "ids", "S"], ["y"], domain="com.microsoft",
                                   bits=8, block_size=blk, gather_axis=0, quantize_axis=1)],
                 [init(gq.reshape(V, D), "Q"), init(bs, "S")]),
        "gbq4": ([helper.make_node("GatherBlockQuantized", ["Q", "ids", "S"], ["y"], domain="com.microsoft",
                                   bits=4, block_size=b4, gather_axis=0, quantize_axis=1)],
                 [init(p4, "Q"), init(s4, "S")]),
    }
    models = {}
    for name, (nodes, inits) in forms.items():
        g = helper.make_graph(nodes, name, [ids], [y], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
        m.ir_version = 10
        models[name] = m.SerializeToString()
    return models


def gather_latency(zoo, rounds=30):
    src = onnx.load(os.path.join(zoo, "models", "minilm_l3.onnx"))
    table = next(numpy_helper.to_array(t) for t in src.graph.initializer
                 if t.name.endswith("word_embeddings.weight"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sessions = {}
    for name, b in gather_models(table).items():
        try:
            sessions[name] = ort.InferenceSession(b, so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            print(f"  {name}: ONNX Runtime refuses it ({str(e).splitlines()[0][:100]})")
    rng = np.random.default_rng(0)
    for shape in [(1, 64), (32, 128)]:
        ids = rng.integers(0, table.shape[0], size=shape, dtype=np.int64)
        ref = sessions["float"].run(None, {"ids": ids})[0]
        times = {k: [] for k in sessions}
        for r in range(rounds):
            order = list(sessions) if r % 2 == 0 else list(reversed(sessions))
            for k in order:
                t0 = time.perf_counter()
                y = sessions[k].run(None, {"ids": ids})[0]
                times[k].append(time.perf_counter() - t0)
                if r == 0:
                    err = float(np.abs(y - ref).max())
                    times[k + ":err"] = err
        base = np.median(times["float"])
        print(f"ids {shape}: median ms (ratio to float Gather), max |error|")
        for k in sessions:
            m = np.median(times[k])
            print(f"  {k:10s} {1e3 * m:8.3f} ms  x{m / base:6.2f}  err {times[k + ':err']:.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hpcz", default=os.path.join(REPO, "build-rel", "hpcz"))
    ap.add_argument("--zoo", default=metrics.DEFAULT_ZOO)
    ap.add_argument("--out")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-gather-latency", action="store_true")
    a = ap.parse_args()
    if not a.skip_gather_latency:
        gather_latency(a.zoo)
    if not a.skip_quality:
        with tempfile.TemporaryDirectory() as tmp:
            out = a.out or tmp
            src = os.path.join(a.zoo, "models", "minilm_l3.onnx")
            v = hpcz_variants(a.hpcz, src, os.path.join(a.zoo, "data", "minilm_l3", "calib"), out)
            v.update(ort_variants(src, out))
            quality(a.zoo, v)


if __name__ == "__main__":
    main()
