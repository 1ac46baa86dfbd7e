#!/usr/bin/env python3
"""Benchmark (not a test): hpcz's CPU runtime against ONNX Runtime on the zoo
models with their eval inputs (called by scripts/bench/runtime.sh --zoo).

    .venv-test/bin/python scripts/bench/runtime_zoo.py [NAME ...]
        [--hpcz build-rel/hpcz] [--threads 1,2] [--rounds 5] [--runs 10]
        [--nodes 10000] [--json FILE] [--before OTHER_HPCZ]

For each thread count and model (default: every .zoo/models/*.onnx), eval
sample 0 is fed to both engines, round after round: `hpcz run --bench RUNS`
(median in-process latency, planning excluded) and an ONNX Runtime session
(ORT_ENABLE_ALL, the same intra-op threads, RUNS runs, median), the engine
that goes first alternating each round. Per model it prints both medians
over the rounds and the median of the per-round ratios hpcz/ORT, then the
best (min) single-run latency of both and their ratio (on a loaded machine
the min is the one that waited least for a core) and, at 1 thread, the CPU
time per run of both (hpcz: `--bench N` minus `--bench 1`, so planning
is left out; N >= RUNS, enough for ~300 ms) and its ratio, the measure a loaded machine disturbs least;
then the geometric means. --before OTHER_HPCZ runs a second hpcz binary
(e.g. main's) in every round too, in the alternation, and adds its best-run
and CPU-time ratios to ORT (b_min, b_cpu), so before and after come from the
same run. Then one
`hpcz run --profile` per model gives GFLOP/s per op type (summed over the
models) against the OpenBLAS sgemm ceiling measured in the same run.

--nodes N also writes a model of N cheap nodes (a chain of Relu/Neg on a
[1, 4] tensor) and prints the per-node overhead of both engines
(best latency / N, in microseconds).
"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts", "zoo"))
import metrics  # noqa: E402

ZOO = os.environ.get("ZOO_DIR", os.path.join(ROOT, ".zoo"))


def ort_session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_times_ms(sess, feed, runs):
    """-> (median, min) of runs."""
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        t.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(t)), float(np.min(t))


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def hpcz_cpu_ms(hpcz, model, inputs, runs):
    """CPU ms per run at 1 thread, planning and loading excluded: the CPU
    time of `--bench runs` minus that of `--bench 1`, over runs - 1."""
    t = []
    for n in (1, runs):
        c0 = children_cpu()
        hpcz_run(hpcz, model, inputs, n, 1)
        t.append(children_cpu() - c0)
    return max(t[1] - t[0], 0.0) * 1e3 / (runs - 1)


def ort_cpu_ms(sess, feed, runs):
    c0 = time.process_time()
    for _ in range(runs):
        sess.run(None, feed)
    return (time.process_time() - c0) * 1e3 / runs


def hpcz_run(hpcz, model, inputs, runs, threads, profile=False):
    cmd = [hpcz, "run", model, "--bench", str(runs), "--threads", str(threads), "--json"]
    for k, v in inputs.items():
        cmd += ["--input", f"{k}={v}"]
    if profile:
        cmd.append("--profile")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{os.path.basename(model)}: hpcz exit {r.returncode}: {r.stderr.strip()[-300:]}")
    return json.loads(r.stdout)


def save_feed(feed, tmp, name):
    files = {}
    for k, v in feed.items():
        f = os.path.join(tmp, f"{name}.{k.replace('/', '_')}.npy")
        np.save(f, v)
        files[k] = f
    return files


def chain_model(path, n):
    """n cheap unary nodes (Relu, Neg alternating) on a [1, 4] float tensor."""
    import onnx
    from onnx import TensorProto, helper
    nodes = []
    prev = "x"
    for i in range(n):
        out = "y" if i == n - 1 else f"t{i}"
        nodes.append(helper.make_node("Relu" if i % 2 == 0 else "Neg", [prev], [out], name=f"n{i}"))
        prev = out
    g = helper.make_graph(nodes, "chain",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def sgemm_ceiling():
    """GFLOP/s of numpy's sgemm (its OpenBLAS, its own threads: all cores) at
    1024^3, best of 5 wall-clock runs."""
    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        a @ a
        best = max(best, 2 * 1024 ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--hpcz", default=os.path.join(ROOT, "build-rel", "hpcz"))
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=10, help="runs per engine per round")
    ap.add_argument("--nodes", type=int, default=0, help="also measure per-node overhead on N nodes")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--before", help="another hpcz binary, timed in the same rounds (ratios b_min, b_cpu)")
    a = ap.parse_args()
    import onnxruntime as ort
    names = a.names or sorted(f[:-5] for f in os.listdir(os.path.join(ZOO, "models")) if f.endswith(".onnx"))
    thread_counts = [int(t) for t in a.threads.split(",")]
    results = {"ort_version": ort.__version__, "models": [], "geomean": {}, "profile": {}, "nodes": {}}
    tmp = tempfile.mkdtemp(prefix="hpcz-rtzoo-")
    try:
        feeds = {}
        for name in names:
            model = os.path.join(ZOO, "models", name + ".onnx")
            arrays, _ = metrics.load_set(os.path.join(ZOO, "data", name, "eval"))
            inputs = ort_session(model, 1).get_inputs()
            feed = metrics.feeds(inputs, arrays, 0)
            feeds[name] = (model, feed, save_feed(feed, tmp, name))
        print(f"ONNX Runtime {ort.__version__}; {a.rounds} rounds x {a.runs} runs per engine, alternating; "
              f"ratio = median of per-round hpcz/ORT (goal <= 1.0)")
        for th in thread_counts:
            print(f"\n{th} thread(s)")
            print(f"{'model':20s} {'hpcz_ms':>9s} {'ort_ms':>9s} {'ratio':>6s} "
                  f"{'hpcz_min':>9s} {'ort_min':>9s} {'r_min':>6s}" +
                  (f" {'hpcz_cpu':>9s} {'ort_cpu':>9s} {'r_cpu':>6s}" if th == 1 else "") +
                  (f" {'b_min':>6s}" + (f" {'b_cpu':>6s}" if th == 1 else "") if a.before else ""))
            ratios, ratios_min, ratios_cpu, before_min, before_cpu = [], [], [], [], []
            for name in names:
                model, feed, files = feeds[name]
                sess = ort_session(model, th)
                sess.run(None, feed)
                hs, os_, rs, hmin, omin, bmin = [], [], [], [], [], []
                engines = (0, 1, 2) if a.before else (0, 1)
                for r in range(a.rounds):
                    order = engines if r % 2 == 0 else engines[::-1]
                    t = {}
                    for e in order:
                        if e == 0:
                            b = hpcz_run(a.hpcz, model, files, a.runs, th)["bench"]
                            t[0] = b["median_ms"]
                            hmin.append(b["min_ms"])
                        elif e == 2:
                            bmin.append(hpcz_run(a.before, model, files, a.runs, th)["bench"]["min_ms"])
                        else:
                            t[1], m = ort_times_ms(sess, feed, a.runs)
                            omin.append(m)
                    hs.append(t[0])
                    os_.append(t[1])
                    rs.append(t[0] / t[1])
                if th == 1:
                    # enough runs for ~300 ms of CPU (the kernel counts it in ticks)
                    n = int(min(max(a.runs, 300 / max(min(hmin + omin), 1e-3)), 20000))
                    hc, oc, bc = [], [], []
                    for r in range(a.rounds):
                        hc.append(hpcz_cpu_ms(a.hpcz, model, files, n))
                        oc.append(ort_cpu_ms(sess, feed, n))
                        if a.before:
                            bc.append(hpcz_cpu_ms(a.before, model, files, n))
                    cpu = (float(np.median(hc)), float(np.median(oc)))
                row = {"model": name, "threads": th, "hpcz_ms": float(np.median(hs)),
                       "ort_ms": float(np.median(os_)), "ratio": float(np.median(rs)),
                       "hpcz_min_ms": float(min(hmin)), "ort_min_ms": float(min(omin))}
                row["ratio_min"] = row["hpcz_min_ms"] / row["ort_min_ms"]
                if th == 1:
                    row["hpcz_cpu_ms"], row["ort_cpu_ms"] = cpu
                    row["ratio_cpu"] = cpu[0] / cpu[1] if cpu[0] > 0 and cpu[1] > 0 else float("nan")
                    if row["ratio_cpu"] == row["ratio_cpu"]:
                        ratios_cpu.append(row["ratio_cpu"])
                extra = ""
                if a.before:
                    row["before_min_ms"] = float(min(bmin))
                    row["before_ratio_min"] = row["before_min_ms"] / row["ort_min_ms"]
                    before_min.append(row["before_ratio_min"])
                    extra = f" {row['before_ratio_min']:6.2f}"
                    if th == 1:
                        row["before_cpu_ms"] = float(np.median(bc))
                        row["before_ratio_cpu"] = row["before_cpu_ms"] / cpu[1] if cpu[1] > 0 else float("nan")
                        before_cpu.append(row["before_ratio_cpu"])
                        extra += f" {row['before_ratio_cpu']:6.2f}"
                results["models"].append(row)
                ratios.append(row["ratio"])
                ratios_min.append(row["ratio_min"])
                print(f"{name:20s} {row['hpcz_ms']:9.3f} {row['ort_ms']:9.3f} {row['ratio']:6.2f} "
                      f"{row['hpcz_min_ms']:9.3f} {row['ort_min_ms']:9.3f} {row['ratio_min']:6.2f}" +
                      (f" {row['hpcz_cpu_ms']:9.3f} {row['ort_cpu_ms']:9.3f} {row['ratio_cpu']:6.2f}"
                       if th == 1 else "") + extra, flush=True)
            gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
            gmin = math.exp(sum(math.log(x) for x in ratios_min) / len(ratios_min))
            results["geomean"][th] = {"median": gm, "min": gmin}
            line = f"{'geomean':20s} {'':9s} {'':9s} {gm:6.2f} {'':9s} {'':9s} {gmin:6.2f}"
            worst = f"(worst {max(ratios):.2f} / {max(ratios_min):.2f}"
            if ratios_cpu:
                gc = math.exp(sum(math.log(x) for x in ratios_cpu) / len(ratios_cpu))
                results["geomean"][th]["cpu"] = gc
                line += f" {'':9s} {'':9s} {gc:6.2f}"
                worst += f" / {max(ratios_cpu):.2f}"
            if before_min:
                gb = math.exp(sum(math.log(x) for x in before_min) / len(before_min))
                results["geomean"][th]["before_min"] = gb
                line += f" {gb:6.2f}"
                if before_cpu:
                    gbc = math.exp(sum(math.log(x) for x in before_cpu if x == x) / len(before_cpu))
                    results["geomean"][th]["before_cpu"] = gbc
                    line += f" {gbc:6.2f}"
            print(line + "   " + worst + ")")
        if not a.no_profile:
            th = thread_counts[-1]
            ceil = sgemm_ceiling()
            ops = {}
            for name in names:
                model, _, files = feeds[name]
                d = hpcz_run(a.hpcz, model, files, a.runs, th, profile=True)
                for p in d.get("profile", []):
                    o = ops.setdefault(p["op_type"], {"ms": 0.0, "gflop": 0.0, "nodes": 0})
                    o["ms"] += p["ms_per_run"]
                    o["nodes"] += p["nodes"]
                    if p.get("gflops"):
                        o["gflop"] += p["gflops"] * p["ms_per_run"] * 1e-3
            print(f"\nhpcz --profile over these models, {th} thread(s); OpenBLAS sgemm 1024^3 "
                  f"(numpy, same run): {ceil:.0f} GFLOP/s")
            print(f"{'op_type':22s} {'nodes':>6s} {'ms/run':>9s} {'GFLOP/s':>8s} {'% of sgemm':>10s}")
            for op, o in sorted(ops.items(), key=lambda kv: -kv[1]["ms"])[:16]:
                gf = o["gflop"] / (o["ms"] * 1e-3) if o["gflop"] and o["ms"] else None
                results["profile"][op] = dict(o, gflops=gf)
                print(f"{op:22s} {o['nodes']:6d} {o['ms']:9.3f} " +
                      (f"{gf:8.1f} {100 * gf / ceil:9.0f}%" if gf else f"{'-':>8s} {'-':>10s}"))
            results["sgemm_gflops"] = ceil
        if a.nodes:
            path = os.path.join(tmp, "chain.onnx")
            chain_model(path, a.nodes)
            x = np.ones((1, 4), np.float32)
            xf = save_feed({"x": x}, tmp, "chain")
            print(f"\nper-node overhead, chain of {a.nodes} Relu/Neg on [1,4], 1 thread, microseconds per node")
            sess = ort_session(path, 1)
            sess.run(None, {"x": x})
            hs, os_ = [], []
            for r in range(a.rounds):
                hs.append(hpcz_run(a.hpcz, path, xf, a.runs, 1)["bench"]["min_ms"])
                os_.append(ort_times_ms(sess, {"x": x}, a.runs)[1])
            h_us, o_us = 1e3 * np.median(hs) / a.nodes, 1e3 * np.median(os_) / a.nodes
            results["nodes"] = {"n": a.nodes, "hpcz_us": float(h_us), "ort_us": float(o_us)}
            print(f"hpcz {h_us:.3f} us/node   ORT {o_us:.3f} us/node   (goal: hpcz < 1)")
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
