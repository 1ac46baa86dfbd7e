#!/usr/bin/env python3
"""Benchmark (not a test): hpcz run against ONNX Runtime on the zoo's sentence
encoders, alternated in one run, so that a loaded machine slows both alike.

    .venv-test/bin/python scripts/bench/transformer.py [--hpcz build-rel/hpcz]
        [--before OTHER_HPCZ] [--sentences 32] [--tokens 48] [--threads 1,2]
        [--rounds 5] [--runs 5] [--encoders minilm_l3,minilm_l6_int8w]
        [--model NAME=PATH ...]

Inputs: the first SENTENCES eval sentences of .zoo/data/NAME/eval, cut to
TOKENS tokens (token_type_ids zeros). Each round runs `hpcz run --bench RUNS
--profile --json` then RUNS timed ORT runs (ORT_ENABLE_ALL, same thread
count), the order swapping every round. Prints per model and thread count the
median of both over the rounds, the median per-round ratio hpcz/ORT and the
GFLOP/s of hpcz's MatMul. --before adds another hpcz binary (e.g. main's)
to each round, for a before/after on the same load. --model adds a model
file run on NAME's inputs (e.g. an fp16 copy:
minilm_l3_fp16=out/minilm_l3.fp16.onnx).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO = os.environ.get("ZOO_DIR", os.path.join(ROOT, ".zoo"))


def inputs(name, sentences, tokens, folder):
    sess = ort.InferenceSession(os.path.join(ZOO, "models", name + ".onnx"),
                                providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        f = os.path.join(ZOO, "data", name, "eval", i.name + ".npy")
        if os.path.exists(f):
            a = np.ascontiguousarray(np.load(f)[:sentences, :tokens])
        else:
            a = np.zeros((sentences, tokens), np.int64)
        np.save(os.path.join(folder, i.name + ".npy"), a)
        feeds[i.name] = a
    return feeds


def ort_ms(path, feeds, threads, runs):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    s.run(None, feeds)
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(None, feeds)
        t.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(t))


def hpcz_ms(hpcz, path, folder, threads, runs):
    r = subprocess.run([hpcz, "run", path, "--inputs", folder, "--bench", str(runs), "--profile",
                        "--json", "--threads", str(threads)], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"hpcz run {path}: {r.stderr.strip()}")
    d = json.loads(r.stdout)
    bench = d["bench"]
    gf = {p["op_type"]: p.get("gflops") for p in d.get("profile", [])}
    return bench["median_ms"], gf.get("MatMul")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hpcz", default=os.path.join(ROOT, "build-rel", "hpcz"))
    ap.add_argument("--before")
    ap.add_argument("--sentences", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--encoders", default="minilm_l3,minilm_l6_int8w")
    ap.add_argument("--model", action="append", default=[])
    a = ap.parse_args()
    names = ("minilm_l3", "minilm_l6_int8w")
    models = [(n, os.path.join(ZOO, "models", n + ".onnx"), n) for n in a.encoders.split(",") if n]
    for kv in a.model:
        label, path = kv.split("=", 1)
        base = next(n for n in names if label.startswith(n))
        models.append((label, path, base))
    print(f"{a.sentences} sentences x {a.tokens} tokens, {a.rounds} rounds of {a.runs} runs, "
          f"onnxruntime {ort.__version__}, load {os.getloadavg()[0]:.1f}")
    print(f"{'model':<24}{'thr':>4}{'hpcz ms':>10}{'ORT ms':>10}{'hpcz/ORT':>10}{'MatMul GF/s':>13}"
          + (f"{'before ms':>11}{'before/ORT':>12}" if a.before else ""))
    with tempfile.TemporaryDirectory() as tmp:
        for label, path, base in models:
            folder = os.path.join(tmp, base)
            if not os.path.isdir(folder):
                os.makedirs(folder)
                feeds = inputs(base, a.sentences, a.tokens, folder)
            feeds = {f[:-4]: np.load(os.path.join(folder, f)) for f in os.listdir(folder)}
            for th in [int(x) for x in a.threads.split(",")]:
                hs, os_, rs, gfs, bs, brs = [], [], [], [], [], []
                for r in range(a.rounds):
                    jobs = ["hpcz", "ort"] + (["before"] if a.before else [])
                    shift = r % len(jobs)  # rotate which engine runs first
                    got = {}
                    for job in jobs[shift:] + jobs[:shift]:
                        if job == "ort":
                            got[job] = ort_ms(path, feeds, th, a.runs)
                        else:
                            got[job] = hpcz_ms(a.hpcz if job == "hpcz" else a.before, path, folder,
                                               th, a.runs)
                    h, g = got["hpcz"]
                    o = got["ort"]
                    hs.append(h), os_.append(o), rs.append(h / o), gfs.append(g or 0)
                    if a.before:
                        bs.append(got["before"][0]), brs.append(got["before"][0] / o)
                line = (f"{label:<24}{th:>4}{np.median(hs):>10.1f}{np.median(os_):>10.1f}"
                        f"{np.median(rs):>10.2f}{np.median(gfs):>13.1f}")
                if a.before:
                    line += f"{np.median(bs):>11.1f}{np.median(brs):>12.2f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
