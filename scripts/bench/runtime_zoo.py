#!/usr/bin/env python3
"""Benchmark (not a test): hpcz's CPU runtime against ONNX Runtime on the zoo
models with their eval inputs (called by scripts/bench/runtime.sh --zoo).

    .venv-test/bin/python scripts/bench/runtime_zoo.py [NAME ...]
        [--hpcz build-rel/hpcz] [--threads 1,2] [--rounds 5] [--runs 10]
        [--variant fp32,static,static_hpcz,dynamic,fp16] [--from DIR] [--remake]
        [--before OTHER_HPCZ]
        [--nodes 10000] [--json FILE]

For each thread count and model (default: those of scripts/zoo/models.tsv), eval
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

--variant runs compressed copies of each model too (the same file in both
engines), all variants of a model in the same rounds, their order rotating:
  fp32        the zoo model itself
  static      hpcz quantize --mode static --calib CALIB (default placement)
  static_all  the same with --placement all (every quantizable op in int8)
  static_hpcz the same with --placement hpcz (int8 placed for hpcz's own
              runtime: what a user deploying on hpcz would run)
  dynamic     hpcz quantize --mode dynamic
  fp16        hpcz quantize --dtype fp16 --keep-io-types
CALIB is .zoo/data/NAME/calib, as scripts/bench/zoo.py uses it. The files are
made with --hpcz once and cached in build/runtime-zoo/NAME/VARIANT.onnx
(--remake makes them again); --from DIR takes DIR/NAME/VARIANT.onnx, or the
file scripts/bench/zoo.py wrote there (DIR = build/bench-zoo/runs:
hpcz_static_minmax.onnx, hpcz_dyn.onnx, hpcz_fp16.onnx), instead. Each
variant gets its own hpcz/ORT table and geomeans (goal <= 1.0), and every
variant but fp32 a table against hpcz's own fp32 in the same rounds: the
speed-up fp32/variant of the best runs and of the CPU time (goals: int8
>= 1.8 on the conv nets, i.e. the models whose MACs are mostly in Conv;
fp16 at most 1.3x fp32's time, i.e. a speed-up >= 0.77), and hpcz's own
time ratio variant/fp32 (h_VARIANT/fp32 of the best runs, cpu of the CPU
time at 1 thread: the fp16 goal reads <= 1.3 there).

--before OTHER_HPCZ adds a second hpcz binary (e.g. main's) to every round
(the three engines in rotating order, on the same files): each table then
also has its best-run ratio before/ORT (b_min), next to hpcz's r_min.

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


def ort_session(path, threads, level="all"):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                   "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}[level]
    so.log_severity_level = 4
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_session_any(path, threads):
    """-> (session, level): ORT_ENABLE_ALL, or ORT_ENABLE_BASIC when one of
    ORT's extended fusions fails on the file (ORT 1.23's
    SimplifiedLayerNormFusion on oww_hey_jarvis in float16)."""
    try:
        return ort_session(path, threads), "all"
    except Exception:  # onnxruntime's RuntimeException
        return ort_session(path, threads, "basic"), "basic"


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


VARIANTS = {
    "fp32": None,
    "static": ["--mode", "static", "--calib", "CALIB"],
    "static_all": ["--mode", "static", "--calib", "CALIB", "--placement", "all"],
    "static_hpcz": ["--mode", "static", "--calib", "CALIB", "--placement", "hpcz"],
    "dynamic": ["--mode", "dynamic"],
    "fp16": ["--dtype", "fp16", "--keep-io-types"],
}
# what scripts/bench/zoo.py calls these files in its run folders (--from)
ZOO_PY_NAMES = {"static": "hpcz_static_minmax", "dynamic": "hpcz_dyn", "fp16": "hpcz_fp16"}


def variant_file(a, name, variant):
    """-> the model file of NAME's VARIANT: the zoo model, DIR/NAME/..., or
    one made with `hpcz quantize` and cached under build/runtime-zoo/."""
    model = os.path.join(ZOO, "models", name + ".onnx")
    if variant == "fp32":
        return model
    if a.from_dir:
        for base in (variant, ZOO_PY_NAMES.get(variant)):
            f = base and os.path.join(a.from_dir, name, base + ".onnx")
            if f and os.path.exists(f):
                return f
        raise SystemExit(f"runtime_zoo.py: {a.from_dir}/{name}: no {variant}.onnx"
                         + (f" or {ZOO_PY_NAMES[variant]}.onnx" if variant in ZOO_PY_NAMES else ""))
    out = os.path.join(ROOT, "build", "runtime-zoo", name, variant + ".onnx")
    if a.remake or not os.path.exists(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        calib = os.path.join(ZOO, "data", name, "calib")
        argv = [a.hpcz, "quantize", model, "-o", out, "-q"] + [calib if x == "CALIB" else x for x in VARIANTS[variant]]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"runtime_zoo.py: {' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    return out


def conv_net(hpcz, model, files):
    """True when most of the model's floating-point work is in Conv (by the
    GFLOP of `hpcz run --profile` per op type)."""
    flop = {}
    for p in hpcz_run(hpcz, model, files, 1, 1, profile=True).get("profile", []):
        if p.get("gflops"):
            flop[p["op_type"]] = flop.get(p["op_type"], 0.0) + p["gflops"] * p["ms_per_run"]
    return flop.get("Conv", 0.0) > 0.5 * sum(flop.values())


def zoo_models():
    """The models of scripts/zoo/models.tsv that .zoo/models has."""
    with open(os.path.join(ROOT, "scripts", "zoo", "models.tsv")) as f:
        names = [line.split("\t")[0] for line in f if line.strip() and not line.startswith("#")]
    return [n for n in names if os.path.exists(os.path.join(ZOO, "models", n + ".onnx"))]


def geomean(xs):
    xs = [x for x in xs if x == x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def measure(a, name, th, feed, files, models):
    """One model at TH threads: every variant in both engines, rounds of
    alternated runs. -> {variant: row}."""
    sess, level = {}, {}
    for v, model in models.items():
        sess[v], level[v] = ort_session_any(model, th)
        sess[v].run(None, feed)
    vs = list(models)
    t = {v: {"h": [], "o": [], "r": [], "hmin": [], "omin": [], "bmin": [], "hc": [], "oc": [], "bc": []} for v in vs}
    engines = [0, 1, 2] if a.before else [0, 1]
    for r in range(a.rounds):
        for i in range(len(vs)):
            v = vs[(r + i) % len(vs)]
            # the engines in rotating order
            order = engines[(r + i) % len(engines):] + engines[:(r + i) % len(engines)]
            got = {}
            for e in order:
                if e == 0:
                    b = hpcz_run(a.hpcz, models[v], files, a.runs, th)["bench"]
                    got[0] = b["median_ms"]
                    t[v]["hmin"].append(b["min_ms"])
                elif e == 2:
                    t[v]["bmin"].append(hpcz_run(a.before, models[v], files, a.runs, th)["bench"]["min_ms"])
                else:
                    got[1], m = ort_times_ms(sess[v], feed, a.runs)
                    t[v]["omin"].append(m)
            t[v]["h"].append(got[0])
            t[v]["o"].append(got[1])
            t[v]["r"].append(got[0] / got[1])
    if th == 1:
        for r in range(a.rounds):
            for i in range(len(vs)):
                v = vs[(r + i) % len(vs)]
                # enough runs for ~300 ms of CPU (the kernel counts it in ticks)
                n = int(min(max(a.runs, 300 / max(min(t[v]["hmin"] + t[v]["omin"]), 1e-3)), 20000))
                t[v]["hc"].append(hpcz_cpu_ms(a.hpcz, models[v], files, n))
                t[v]["oc"].append(ort_cpu_ms(sess[v], feed, n))
                if a.before:
                    t[v]["bc"].append(hpcz_cpu_ms(a.before, models[v], files, n))
    rows = {}
    for v in vs:
        x = t[v]
        row = {"model": name, "variant": v, "threads": th, "hpcz_ms": float(np.median(x["h"])),
               "ort_ms": float(np.median(x["o"])), "ratio": float(np.median(x["r"])),
               "hpcz_min_ms": float(min(x["hmin"])), "ort_min_ms": float(min(x["omin"])),
               "ort_level": level[v]}
        row["ratio_min"] = row["hpcz_min_ms"] / row["ort_min_ms"]
        if x["bmin"]:
            row["before_min_ms"] = float(min(x["bmin"]))
            row["before_ratio_min"] = row["before_min_ms"] / row["ort_min_ms"]
        if th == 1:
            row["hpcz_cpu_ms"], row["ort_cpu_ms"] = float(np.median(x["hc"])), float(np.median(x["oc"]))
            row["ratio_cpu"] = (row["hpcz_cpu_ms"] / row["ort_cpu_ms"]
                                if row["hpcz_cpu_ms"] > 0 and row["ort_cpu_ms"] > 0 else float("nan"))
            if x["bc"]:
                row["before_cpu_ms"] = float(np.median(x["bc"]))
                row["before_ratio_cpu"] = (row["before_cpu_ms"] / row["ort_cpu_ms"]
                                           if row["ort_cpu_ms"] > 0 else float("nan"))
        rows[v] = row
    return rows


def print_tables(results, variants, th, names, conv):
    rows = {(r["model"], r["variant"]): r for r in results["models"] if r["threads"] == th}
    cpu = th == 1
    for v in variants:
        before = all("before_ratio_min" in rows[(n, v)] for n in names)
        print(f"\n{v}, {th} thread(s): hpcz/ORT on the same file")
        print(f"{'model':20s} {'hpcz_ms':>9s} {'ort_ms':>9s} {'ratio':>6s} "
              f"{'hpcz_min':>9s} {'ort_min':>9s} {'r_min':>6s}" + (f" {'b_min':>6s}" if before else "") +
              (f" {'hpcz_cpu':>9s} {'ort_cpu':>9s} {'r_cpu':>6s}" if cpu else "") +
              (f" {'b_cpu':>6s}" if cpu and before else ""))
        for name in names:
            row = rows[(name, v)]
            print(f"{name + ('*' if row['ort_level'] != 'all' else ''):20s} {row['hpcz_ms']:9.3f} {row['ort_ms']:9.3f} {row['ratio']:6.2f} "
                  f"{row['hpcz_min_ms']:9.3f} {row['ort_min_ms']:9.3f} {row['ratio_min']:6.2f}" +
                  (f" {row['before_ratio_min']:6.2f}" if before else "") +
                  (f" {row['hpcz_cpu_ms']:9.3f} {row['ort_cpu_ms']:9.3f} {row['ratio_cpu']:6.2f}"
                   if cpu else "") +
                  (f" {row['before_ratio_cpu']:6.2f}" if cpu and before else ""))
        g = {k: geomean([rows[(n, v)][k] for n in names]) for k in ("ratio", "ratio_min", "ratio_cpu") if cpu or k != "ratio_cpu"}
        w = {k: max(rows[(n, v)][k] for n in names) for k in g}
        results["geomean"].setdefault(v, {})[th] = {"median": g["ratio"], "min": g["ratio_min"]}
        line = f"{'geomean':20s} {'':9s} {'':9s} {g['ratio']:6.2f} {'':9s} {'':9s} {g['ratio_min']:6.2f}"
        if before:
            gb = geomean([rows[(n, v)]["before_ratio_min"] for n in names])
            results["geomean"][v][th]["before_min"] = gb
            line += f" {gb:6.2f}"
        worst = f"(worst {w['ratio']:.2f} / {w['ratio_min']:.2f}"
        if cpu:
            results["geomean"][v][th]["cpu"] = g["ratio_cpu"]
            line += f" {'':9s} {'':9s} {g['ratio_cpu']:6.2f}"
            worst += f" / {w['ratio_cpu']:.2f}"
            if before:
                gbc = geomean([rows[(n, v)]["before_ratio_cpu"] for n in names])
                results["geomean"][v][th]["before_cpu"] = gbc
                line += f" {gbc:6.2f}"
        print(line + "   " + worst + ")")
        if any(rows[(n, v)]["ort_level"] != "all" for n in names):
            print("* ORT at ORT_ENABLE_BASIC: ORT_ENABLE_ALL fails to load this file")
    if "fp32" not in variants:
        return
    for v in variants:
        if v == "fp32":
            continue
        goal = "goal >= 1.8 on conv nets" if v != "fp16" else "goal >= 0.77, i.e. at most 1.3x fp32's time"
        print(f"\n{v} against fp32, {th} thread(s): speed-up fp32/{v} of each engine ({goal})")
        before = all("before_min_ms" in rows[(n, x)] for n in names for x in ("fp32", v))
        # and hpcz's time of v over its fp32 time (the float16 goal: <= 1.3)
        print(f"{'model':20s} {'conv':>4s} {'hpcz_min':>9s} {'ort_min':>9s}" +
              (f" {'b_min':>9s}" if before else "") + (f" {'hpcz_cpu':>9s} {'ort_cpu':>9s}" if cpu else "") +
              f" {'h_' + v + '/fp32':>14s}" + (f" {'cpu':>6s}" if cpu else ""))
        sp = {"h": [], "o": [], "b": [], "hc": [], "oc": [], "conv": []}
        for name in names:
            f, q = rows[(name, "fp32")], rows[(name, v)]
            h, o = f["hpcz_min_ms"] / q["hpcz_min_ms"], f["ort_min_ms"] / q["ort_min_ms"]
            q["speedup_min"], q["ort_speedup_min"] = h, o
            sp["h"].append(h)
            sp["o"].append(o)
            if conv[name]:
                sp["conv"].append(h)
            line = f"{name:20s} {'yes' if conv[name] else '':>4s} {h:9.2f} {o:9.2f}"
            if before:
                q["before_speedup_min"] = f["before_min_ms"] / q["before_min_ms"]
                sp["b"].append(q["before_speedup_min"])
                line += f" {q['before_speedup_min']:9.2f}"
            if cpu:
                hc, oc = f["hpcz_cpu_ms"] / q["hpcz_cpu_ms"], f["ort_cpu_ms"] / q["ort_cpu_ms"]
                q["speedup_cpu"], q["ort_speedup_cpu"] = hc, oc
                sp["hc"].append(hc)
                sp["oc"].append(oc)
                line += f" {hc:9.2f} {oc:9.2f}"
            q["hpcz_over_fp32_min"] = 1 / h
            line += f" {1 / h:14.2f}"
            if cpu:
                q["hpcz_over_fp32_cpu"] = 1 / q["speedup_cpu"]
                line += f" {1 / q['speedup_cpu']:6.2f}"
            print(line)
        line = f"{'geomean':20s} {'':4s} {geomean(sp['h']):9.2f} {geomean(sp['o']):9.2f}"
        if before:
            line += f" {geomean(sp['b']):9.2f}"
        if cpu:
            line += f" {geomean(sp['hc']):9.2f} {geomean(sp['oc']):9.2f}"
        line += f" {1 / geomean(sp['h']):14.2f}" + (f" {1 / geomean(sp['hc']):6.2f}" if cpu else "")
        print(line + (f"   (conv nets: {geomean(sp['conv']):.2f}, lowest {min(sp['conv']):.2f})" if sp["conv"] else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--hpcz", default=os.path.join(ROOT, "build-rel", "hpcz"))
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=10, help="runs per engine per round")
    ap.add_argument("--variant", default="fp32", help="comma-separated: " + ",".join(VARIANTS))
    ap.add_argument("--from", dest="from_dir", help="take the compressed files from DIR/NAME/")
    ap.add_argument("--remake", action="store_true", help="make the cached compressed files again")
    ap.add_argument("--before", help="another hpcz binary timed in the same rounds (best runs)")
    ap.add_argument("--nodes", type=int, default=0, help="also measure per-node overhead on N nodes")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--json", help="write the results as JSON to this file")
    a = ap.parse_args()
    import onnxruntime as ort
    names = a.names or zoo_models()
    variants = a.variant.split(",")
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"--variant: unknown '{v}' (choose from {', '.join(VARIANTS)})")
    thread_counts = [int(t) for t in a.threads.split(",")]
    results = {"ort_version": ort.__version__, "variants": variants, "models": [], "geomean": {},
               "profile": {}, "nodes": {}, "conv_nets": []}
    tmp = tempfile.mkdtemp(prefix="hpcz-rtzoo-")
    try:
        feeds, conv = {}, {}
        for name in names:
            models = {v: variant_file(a, name, v) for v in variants}
            arrays, _ = metrics.load_set(os.path.join(ZOO, "data", name, "eval"))
            inputs = ort_session(os.path.join(ZOO, "models", name + ".onnx"), 1).get_inputs()
            feed = metrics.feeds(inputs, arrays, 0)
            feeds[name] = (models, feed, save_feed(feed, tmp, name))
            conv[name] = conv_net(a.hpcz, os.path.join(ZOO, "models", name + ".onnx"), feeds[name][2])
            if conv[name]:
                results["conv_nets"].append(name)
        print(f"ONNX Runtime {ort.__version__}; {a.rounds} rounds x {a.runs} runs per engine, alternating; "
              f"ratio = median of per-round hpcz/ORT (goal <= 1.0); variants {', '.join(variants)}")
        for th in thread_counts:
            for name in names:
                models, feed, files = feeds[name]
                rows = measure(a, name, th, feed, files, models)
                results["models"] += rows.values()
                print(f"{th} thread(s) {name}: " + ", ".join(
                    f"{v} {r['ratio_min']:.2f}" + (f" (before {r['before_ratio_min']:.2f})" if a.before else "")
                    for v, r in rows.items()), flush=True)
            print_tables(results, variants, th, names, conv)
        if not a.no_profile:
            th = thread_counts[-1]
            ceil = sgemm_ceiling()
            for v in variants:
                ops = {}
                for name in names:
                    models, _, files = feeds[name]
                    d = hpcz_run(a.hpcz, models[v], files, a.runs, th, profile=True)
                    for p in d.get("profile", []):
                        o = ops.setdefault(p["op_type"], {"ms": 0.0, "gflop": 0.0, "nodes": 0})
                        o["ms"] += p["ms_per_run"]
                        o["nodes"] += p["nodes"]
                        if p.get("gflops"):
                            o["gflop"] += p["gflops"] * p["ms_per_run"] * 1e-3
                print(f"\nhpcz --profile over the {v} models, {th} thread(s); OpenBLAS sgemm 1024^3 "
                      f"(numpy, same run): {ceil:.0f} GFLOP/s")
                print(f"{'op_type':22s} {'nodes':>6s} {'ms/run':>9s} {'GFLOP/s':>8s} {'% of sgemm':>10s}")
                prof = results["profile"].setdefault(v, {})
                for op, o in sorted(ops.items(), key=lambda kv: -kv[1]["ms"])[:16]:
                    gf = o["gflop"] / (o["ms"] * 1e-3) if o["gflop"] and o["ms"] else None
                    prof[op] = dict(o, gflops=gf)
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
