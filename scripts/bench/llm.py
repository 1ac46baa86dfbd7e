"""Int4 perplexity of the zoo's decoder LLM (kjv_gpt): hpcz against ONNX
Runtime's MatMulNBitsQuantizer. Called by scripts/bench/llm.sh (see there).

Every file is scored the same way: ONNX Runtime (graph optimizations off, so
each file computes what its graph says: ORT's default fuses an int4
DequantizeLinear + MatMul into MatMulNBits with int8 activations) runs the
held-out windows (full-sequence step, empty past) and the perplexity is
exp(mean negative log-likelihood of each next character). hpcz's own files
and the float model are also scored with `hpcz run`. Tool time is the wall
time of `hpcz quantize` / of the ORT quantizer (process + save), on a loaded
machine: compare within one run only.

Usage: python llm.py --hpcz HPCZ --zoo ZOO --work DIR --json OUT [--threads N]
"""
import argparse
import json
import logging
import math
import os
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

NAME = "kjv_gpt"


def past_names(model):
    return [i.name for i in model.graph.input if i.name.startswith("past_key_values.")]


def load_split(zoo, split):
    d = os.path.join(zoo, "data", NAME, split)
    return {f[:-4]: np.load(os.path.join(d, f)) for f in sorted(os.listdir(d)) if f.endswith(".npy")}


def nll(logits, ids):
    """Summed negative log-likelihood of ids[:, 1:] under logits[:, :-1]."""
    lg = logits[:, :-1].astype(np.float64)
    lg = lg - lg.max(-1, keepdims=True)
    lse = np.log(np.exp(lg).sum(-1))
    tgt = np.take_along_axis(lg, ids[:, 1:, None], -1)[..., 0]
    return float((lse - tgt).sum())


def session(path, threads):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_ppl(path, ev, threads, batch=64):
    s = session(path, threads)
    ids, total = ev["input_ids"], 0.0
    for i in range(0, len(ids), batch):
        f = {k: v[i:i + batch] for k, v in ev.items()}
        total += nll(s.run(["logits"], f)[0], ids[i:i + batch])
    return math.exp(total / (ids.shape[0] * (ids.shape[1] - 1)))


def hpcz_run(hpcz, path, feeds_dir, names, out, threads):
    args = [hpcz, "run", path, "-o", out, "-q", "--threads", str(threads)]
    for n in names:
        args += ["--input", f"{n}={os.path.join(feeds_dir, n + '.npy')}"]
    subprocess.run(args, check=True, capture_output=True, text=True)
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".npy")}


def hpcz_ppl(hpcz, path, zoo, names, work, threads):
    ev_dir = os.path.join(zoo, "data", NAME, "eval")
    ids = np.load(os.path.join(ev_dir, "input_ids.npy"))
    out = hpcz_run(hpcz, path, ev_dir, ["input_ids"] + names, os.path.join(work, "run-" + os.path.basename(path)),
                   threads)
    return math.exp(nll(out["logits"], ids) / (ids.shape[0] * (ids.shape[1] - 1)))


def cosine(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def decode_check(hpcz, path, ev, names, work, threads):
    """hpcz run vs ORT on the float model: a 48-character prompt (P = 0), then
    16 more characters on its cache (P = 48). Cosine of the logits."""
    s = session(path, threads)
    ids = ev["input_ids"][:4]
    empty = {n: ev[n][:4] for n in names}
    res = {}
    for label, f in (("P=0", {"input_ids": ids[:, :48], **empty}), ("P=48", None)):
        if f is None:
            f = {"input_ids": ids[:, 48:], **{n: prev[n.replace("past_key_values", "present")] for n in names}}
        want = dict(zip([o.name for o in s.get_outputs()], s.run(None, f)))
        d = os.path.join(work, "decode-" + label)
        os.makedirs(d, exist_ok=True)
        for k, v in f.items():
            np.save(os.path.join(d, k + ".npy"), v)
        got = hpcz_run(hpcz, path, d, list(f), os.path.join(d, "out"), threads)
        res[label] = min(cosine(want[k], got[k]) for k in want)
        prev = want
    return res


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hpcz", required=True)
    ap.add_argument("--zoo", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--block", type=int, default=32)
    a = ap.parse_args()
    logging.disable(logging.INFO)
    src = os.path.join(a.zoo, "models", NAME + ".onnx")
    calib_dir = os.path.join(a.zoo, "data", NAME, "calib")
    names = past_names(onnx.load(src))
    ev = load_split(a.zoo, "eval")
    calib = load_split(a.zoo, "calib")
    helptext = subprocess.run([a.hpcz, "quantize", "--help"], capture_output=True, text=True).stdout
    rows = []

    def add(tool, method, path, seconds, hpcz_file):
        row = {"tool": tool, "method": method, "file": os.path.basename(path), "bytes": os.path.getsize(path),
               "seconds": None if seconds is None else round(seconds, 2),
               "ppl_ort": ort_ppl(path, ev, a.threads)}
        if hpcz_file:
            row["ppl_hpcz_run"] = hpcz_ppl(a.hpcz, path, a.zoo, names, a.work, a.threads)
        rows.append(row)
        print(f"  {tool:5} {method:34} ppl {row['ppl_ort']:.4f}", file=sys.stderr, flush=True)

    add("-", "fp32", src, None, True)

    def hpcz_q(out, *args):
        return timed(lambda: subprocess.run([a.hpcz, "quantize", src, "-o", out, "-q", *args], check=True))

    hp = {}
    for method, args in (("int4 RTN", ["--algo", "rtn"]), ("int4 GPTQ", ["--calib", calib_dir])):
        p = os.path.join(a.work, f"hpcz-{method.split()[1].lower()}.onnx")
        hp[method] = hpcz_q(p, "--dtype", "int4", "--block-size", str(a.block), *args)
        add("hpcz", method + f" (DQ, block {a.block})", p, hp[method], True)
    if "--int4-format" in helptext:
        for method, args in (("int4 RTN", ["--algo", "rtn"]), ("int4 GPTQ", ["--calib", calib_dir])):
            p = os.path.join(a.work, f"hpcz-{method.split()[1].lower()}-nbits.onnx")
            t = hpcz_q(p, "--dtype", "int4", "--block-size", str(a.block), "--int4-format", "matmulnbits", *args)
            add("hpcz", method + " (MatMulNBits)", p, t, True)

    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.matmul_nbits_quantizer import (DefaultWeightOnlyQuantConfig,
                                                                 GPTQWeightOnlyQuantConfig,
                                                                 HQQWeightOnlyQuantConfig,
                                                                 MatMulNBitsQuantizer,
                                                                 RTNWeightOnlyQuantConfig)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{k: v[i:i + 1] for k, v in calib.items()} for i in range(len(calib["input_ids"]))])

        def get_next(self):
            return next(self.it, None)

    # the default config is ORT's own round-to-nearest (C++); the RTN and GPTQ
    # configs run the copy of neural-compressor's code that ORT ships; HQQ and
    # GPTQ import torch
    ort_cfgs = [("default (RTN)", lambda: DefaultWeightOnlyQuantConfig(block_size=a.block, is_symmetric=False)),
                ("HQQ", lambda: HQQWeightOnlyQuantConfig(block_size=a.block)),
                ("RTN", lambda: RTNWeightOnlyQuantConfig()),
                ("GPTQ", lambda: GPTQWeightOnlyQuantConfig(calibration_data_reader=Reader()))]
    skipped = []
    for method, cfg in ort_cfgs:
        p = os.path.join(a.work, f"ort-{'-'.join(method.lower().replace('(', '').replace(')', '').split())}.onnx")

        def quantize():
            q = MatMulNBitsQuantizer(onnx.load(src), block_size=a.block, is_symmetric=False, algo_config=cfg())
            q.process()
            q.model.save_model_to_file(p, False)
        try:
            t = timed(quantize)
        except Exception as e:  # HQQ and GPTQ without torch; ORT's packing fails at some block sizes
            skipped.append(f"ORT {method}: {type(e).__name__}: {e}")
            print(f"  ORT   {method}: skipped ({e})", file=sys.stderr, flush=True)
            continue
        add("ORT", f"int4 {method} (MatMulNBits, block {a.block})", p, t, False)

    checks = decode_check(a.hpcz, src, ev, names, a.work, a.threads)
    train = os.path.join(a.zoo, "data", NAME, "train.json")
    result = {"model": NAME, "eval_windows": int(ev["input_ids"].shape[0]),
              "eval_chars": int(ev["input_ids"].shape[0] * (ev["input_ids"].shape[1] - 1)),
              "ort_version": ort.__version__, "block_size": a.block, "rows": rows, "skipped": skipped,
              "hpcz_run_vs_ort_cosine": checks,
              "gptq_over_rtn_time": hp["int4 GPTQ"] / hp["int4 RTN"],
              "train": json.load(open(train)) if os.path.exists(train) else None}
    with open(a.json, "w") as f:
        json.dump(result, f, indent=1)

    fp = rows[0]["ppl_ort"]
    print(f"kjv_gpt: {result['eval_chars']} held-out characters; perplexity per character in ONNX Runtime "
          f"{ort.__version__} (and in hpcz run for hpcz's files); int4 block {a.block}\n")
    print("| tool | method | perplexity | delta vs fp32 | hpcz run | size (KB) | time (s) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        hr = f"{r['ppl_hpcz_run']:.4f}" if "ppl_hpcz_run" in r else ""
        sec = "" if r["seconds"] is None else f"{r['seconds']:.2f}"
        print(f"| {r['tool']} | {r['method']} | {r['ppl_ort']:.4f} | {r['ppl_ort'] - fp:+.4f} | {hr} | "
              f"{r['bytes'] / 1024:.0f} | {sec} |")
    for s in skipped:
        print(f"\nnot run: {s}")
    print(f"\nhpcz GPTQ / RTN time: {result['gptq_over_rtn_time']:.1f}x; hpcz run vs ORT logits cosine (float): "
          + ", ".join(f"{k} {v:.6f}" for k, v in checks.items()))


if __name__ == "__main__":
    main()
