#!/usr/bin/env python3
"""Benchmark (not a test): hpcz's runtime (`hpcz run --bench`) against ONNX
Runtime on the same files, alternated, for int8 models next to their fp32
original.

    .venv-test/bin/python scripts/bench/hpcz_vs_ort.py INPUT_DIR MODEL... \
        [--hpcz build-rel/hpcz] [--before OTHER_HPCZ] [--threads 1] [--blocks 5] [--runs 8]

INPUT_DIR holds one .npy per graph input (one sample). In each of --blocks
blocks, every MODEL runs --runs times in hpcz (one `hpcz run --bench` call,
after its warm-up run) and then --runs times in ONNX Runtime (CPU provider,
ORT_ENABLE_ALL, after a warm-up run), so that load on a shared machine falls
on both engines alike. Prints per model the median and the minimum over all
runs for both engines, hpcz/ORT for the same file, and each engine's time
relative to the first MODEL (put the fp32 original first): below 1 is faster.
--before runs a second hpcz binary (e.g. the main branch's) in the same
blocks and adds its minimum and after/before. On a loaded machine the
minimum ratios are the steadier ones.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--hpcz", default=os.path.join(ROOT, "build-rel", "hpcz"))
    ap.add_argument("--before", help="another hpcz binary, timed in the same blocks")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--runs", type=int, default=8)
    a = ap.parse_args()
    feeds = {f[:-4]: np.load(os.path.join(a.inputs, f)) for f in os.listdir(a.inputs) if f.endswith(".npy")}
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = {m: ort.InferenceSession(m, so, providers=["CPUExecutionProvider"]) for m in a.models}
    hm = {m: [] for m in a.models}
    hmin = {m: [] for m in a.models}
    ot = {m: [] for m in a.models}
    bmin = {m: [] for m in a.models}

    def hpcz_bench(exe, m):
        r = subprocess.run([exe, "run", m, "--inputs", a.inputs, "-t", str(a.threads),
                            "--bench", str(a.runs), "--json", "-q"], capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"{exe} run {m}: {r.stderr.strip()}")
        return json.loads(r.stdout)["bench"]

    for _ in range(a.blocks):
        for m in a.models:
            b = hpcz_bench(a.hpcz, m)
            hm[m].append(b["median_ms"])
            hmin[m].append(b["min_ms"])
            if a.before:
                bmin[m].append(hpcz_bench(a.before, m)["min_ms"])
            s = sess[m]
            s.run(None, feeds)
            for _ in range(a.runs):
                t0 = time.perf_counter()
                s.run(None, feeds)
                ot[m].append(1e3 * (time.perf_counter() - t0))
    print(f"hpcz {a.hpcz}, ONNX Runtime {ort.__version__}, {a.threads} thread(s), {a.blocks} blocks x {a.runs} runs")
    print(f"{'model':34s} {'hpcz med':>9s} {'ORT med':>9s} {'hpcz min':>9s} {'ORT min':>9s} "
          f"{'h/ORT med':>9s} {'h/ORT min':>9s} {'h/h0 min':>8s} {'O/O0 min':>8s}"
          + (f" {'before min':>10s} {'b/ORT min':>9s} {'b/b0 min':>8s}" if a.before else ""))
    f0 = a.models[0]
    for m in a.models:
        h, o = float(np.median(hm[m])), float(np.median(ot[m]))
        hn, on = float(np.min(hmin[m])), float(np.min(ot[m]))
        print(f"{os.path.basename(m):34s} {h:9.3f} {o:9.3f} {hn:9.3f} {on:9.3f} {h / o:9.2f} {hn / on:9.2f} "
              f"{hn / np.min(hmin[f0]):8.2f} {on / np.min(ot[f0]):8.2f}"
              + (f" {np.min(bmin[m]):10.3f} {np.min(bmin[m]) / on:9.2f} {np.min(bmin[m]) / np.min(bmin[f0]):8.2f}"
                 if a.before else ""), flush=True)


if __name__ == "__main__":
    main()
