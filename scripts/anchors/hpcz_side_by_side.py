"""hpcz next to its same-work anchors: one table.

    scripts/anchors/run_all.sh                                   # setup + every anchor + this
    .venv-anchors/bin/python scripts/anchors/hpcz_side_by_side.py [--hpcz PATH] [--no-table]

Runs the hpcz commands that do the same work as the anchors on
samples/digits_cnn.onnx and samples/digits_mlp.onnx (calibration data:
samples/digits/calib/, the 512 images the anchors use):

  quantize --mode static --calib D                 (minmax; hpcz's static default is --reduce-range)
  quantize --mode static --calib D --no-reduce-range
  quantize --mode static --calib D --calib-method entropy | percentile:99.99
  quantize --mode weight-only [--block-size 64]    (int8 per-channel or in blocks, activations float)
  quantize --mode dynamic                          (MatMul/Gemm, uint8 weights, activations quantized at run time)
  quantize --dtype int4  |  --dtype int4 --algo gptq --calib D
  quantize --dtype fp16 --keep-io-types            (also on the "ranges" models, with and without --no-fold)
  prune --sparsity 0.5|0.8                         (per layer, hpcz's default)
  prune --sparsity 0.5|0.8 --scope global          (one threshold, as torch's global_unstructured)
  prune --sparsity 0.5|0.8 --fold-bn --reconstruct --calib D
  prune --method nm --pattern 2:4  |  ... --fold-bn --reconstruct --calib D

Each run is timed as a process (wall clock, best of 5; the release build
build-rel/hpcz, built if missing) and its output evaluated by common.evaluate
exactly like the anchors' (ONNX Runtime CPU, one thread, 450 test images). Then
it prints ONE markdown table of every row: hpcz's and those the anchor scripts
left in build/anchors/results/ (ort_quantize.py, fp16_anchor.py, torch_ptq.py:
run them first, or use run_all.sh), grouped by task, and the end-to-end speed
ratio hpcz / ORT quantize_static for static int8 (ORT both as the in-process
call and as a fresh `python` process that imports onnxruntime, like hpcz's
process start).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

CALIB = common.DIGITS / "calib"

# (task, method label, argv after "hpcz"); {src} {dst} {calib} are filled in
QUANTIZE = [
    ("static int8", "static minmax (reduce-range, default)", ["quantize", "--mode", "static", "--calib", "{calib}"]),
    ("static int8", "static minmax --no-reduce-range", ["quantize", "--mode", "static", "--calib", "{calib}", "--no-reduce-range"]),
    ("static int8", "static entropy", ["quantize", "--mode", "static", "--calib", "{calib}", "--calib-method", "entropy"]),
    ("static int8", "static percentile:99.99", ["quantize", "--mode", "static", "--calib", "{calib}", "--calib-method", "percentile:99.99"]),
    ("weight-only/dynamic int8", "weight-only int8 per-channel", ["quantize", "--mode", "weight-only"]),
    ("weight-only/dynamic int8", "weight-only int8 blocks of 64", ["quantize", "--mode", "weight-only",
                                                                   "--block-size", "64"]),
    ("weight-only/dynamic int8", "dynamic int8 (uint8 weights)", ["quantize", "--mode", "dynamic"]),
    ("int4", "int4 rtn b32", ["quantize", "--dtype", "int4"]),
    ("int4", "int4 gptq b32", ["quantize", "--dtype", "int4", "--algo", "gptq", "--calib", "{calib}"]),
    ("fp16", "fp16 --keep-io-types", ["quantize", "--dtype", "fp16", "--keep-io-types"]),
]
PRUNE = []
for s in ("0.5", "0.8"):
    pct = "%d%%" % round(float(s) * 100)
    PRUNE += [
        ("prune " + pct, f"prune {pct} per layer", ["prune", "--sparsity", s]),
        ("prune " + pct, f"prune {pct} --scope global", ["prune", "--sparsity", s, "--scope", "global"]),
        ("prune " + pct, f"prune {pct} --fold-bn --reconstruct",
         ["prune", "--sparsity", s, "--fold-bn", "--reconstruct", "--calib", "{calib}"]),
    ]
PRUNE += [
    ("prune 2:4", "prune nm 2:4", ["prune", "--method", "nm", "--pattern", "2:4"]),
    ("prune 2:4", "prune nm 2:4 --fold-bn --reconstruct",
     ["prune", "--method", "nm", "--pattern", "2:4", "--fold-bn", "--reconstruct", "--calib", "{calib}"]),
]
RANGES = [
    ("fp16", "fp16 --keep-io-types", ["quantize", "--dtype", "fp16", "--keep-io-types"]),
    ("fp16", "fp16 --keep-io-types --no-fold", ["quantize", "--dtype", "fp16", "--keep-io-types", "--no-fold"]),
]

# which anchor rows go with which task (method prefix -> task)
ANCHOR_TASKS = [
    ("quantize_static", "static int8"),
    ("PTQ FX", "static int8"),
    ("quantize_dynamic", "weight-only/dynamic int8"),
    ("MatMulNBits int8", "weight-only/dynamic int8"),
    ("MatMulNBits int4", "int4"),
    ("convert_float_to_float16", "fp16"),
    ("prune global L1 50%", "prune 50%"),
    ("prune global L1 80%", "prune 80%"),
    ("float32", "float32"),
]
TASK_ORDER = ["float32", "static int8", "weight-only/dynamic int8", "int4", "fp16", "prune 50%", "prune 80%", "prune 2:4"]
MODEL_ORDER = ["digits_cnn", "digits_mlp", "ranges", "ranges_nomul"]


def ort_version() -> str:
    import onnxruntime
    return onnxruntime.__version__


def hpcz_binary(arg) -> Path:
    if arg:
        return Path(arg).resolve()
    build = common.ROOT / "build-rel"
    if not (build / "build.ninja").exists():
        subprocess.run(["meson", "setup", str(build), "-Dbuildtype=release"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", str(build)], check=True, stdout=subprocess.DEVNULL)
    return build / "hpcz"


def run_hpcz(hpcz: Path, argv: list, src: Path, dst: Path):
    """Best wall seconds of common.REPEAT runs of `hpcz ARGV SRC -o DST`, or (None, error line)."""
    cmd = [str(hpcz), argv[0], str(src), "-o", str(dst)] + [a.format(calib=CALIB) for a in argv[1:]]
    times = []
    for _ in range(common.REPEAT):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            return None, "exit %d: %s" % (r.returncode, (r.stderr.strip().splitlines() or [""])[-1])
    return float(min(times)), " ".join(cmd[1:]).replace(str(common.ROOT) + "/", "")


def task_of(row: dict) -> str:
    if "task" in row:
        return row["task"]
    for prefix, task in ANCHOR_TASKS:
        if row["method"].startswith(prefix):
            return task
    return "other"


def ort_static_fresh_process(model: str) -> float:
    """Best wall seconds of a fresh python that imports onnxruntime and runs pre-process +
    quantize_static (minmax, reduce_range, per-channel QDQ) exactly as ort_quantize.py does."""
    out = common.fresh_dir("ort_process")
    code = f"""
import sys, numpy as np
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from ort_quantize import Reader, quiet
with quiet():
    quant_pre_process({str(common.MODELS[model])!r}, {str(out / 'pre.onnx')!r})
    quantize_static({str(out / 'pre.onnx')!r}, {str(out / 'q.onnx')!r}, Reader(np.load({str(CALIB / 'input.npy')!r})),
                    quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
"""
    def once():
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return common.timed(once)


def main() -> int:
    ap = argparse.ArgumentParser(description="hpcz next to its anchors: one table")
    ap.add_argument("--hpcz", help="hpcz binary (default: build-rel/hpcz, built if needed)")
    ap.add_argument("--no-table", action="store_true", help="only run hpcz and save its rows")
    args = ap.parse_args()
    hpcz = hpcz_binary(args.hpcz)
    out = common.fresh_dir("hpcz")
    rows = []
    for model, src in common.MODELS.items():
        base = common.evaluate(model, src)
        rows.append(dict(common.row("ORT " + ort_version(), "float32 (reference)", model, base, None), task="float32"))
        for k, (task, label, argv) in enumerate(QUANTIZE + PRUNE):
            dst = out / f"{model}.{k}.onnx"
            seconds, info = run_hpcz(hpcz, argv, src, dst)
            if seconds is None:
                rows.append(dict(common.row("hpcz", label, model, {}, None, "FAILED " + info), task=task))
                print(f"{model} {label}: FAILED {info}", file=sys.stderr)
                continue
            rows.append(dict(common.row("hpcz", label, model, common.evaluate(model, dst), seconds), task=task))
    for name, with_mul in common.RANGES_MODELS.items():
        src = out / f"{name}.onnx"
        common.make_ranges_model(src, with_mul)
        for k, (task, label, argv) in enumerate(RANGES):
            dst = out / f"{name}.{k}.onnx"
            seconds, info = run_hpcz(hpcz, argv, src, dst)
            if seconds is None:
                rows.append(dict(common.row("hpcz", label, name, {}, None, "FAILED " + info), task=task))
                continue
            m = common.evaluate_ranges(src, dst)
            changed = common.changed_constants(src, dst)
            note = m.pop("note") + ("; constants changed: " + changed if changed else "")
            rows.append(dict(common.row("hpcz", label, name, m, seconds, note), task=task))
    common.save_rows("hpcz", rows)
    if args.no_table:
        return 0

    every = [dict(r) for r in rows]  # copies: the method labels get the task prefix below
    missing = []
    for name in ("ort_quantize", "fp16_anchor", "torch_ptq"):
        got = common.load_rows(name)
        if not got:
            missing.append(name)
        every += got

    def key(r):
        t = task_of(r)
        return (TASK_ORDER.index(t) if t in TASK_ORDER else 99,
                MODEL_ORDER.index(r["model"]) if r["model"] in MODEL_ORDER else 99,
                0 if r["tool"] == "hpcz" else 1)

    every.sort(key=key)  # stable: within a group, the order each script wrote
    for r in every:
        r["method"] = "%s: %s" % (task_of(r), r["method"])
        r["note"] = r.get("note", "") or ""
    print(common.markdown_table(every))
    if missing:
        print("\n(no rows from %s: run it first, or scripts/anchors/run_all.sh)" % ", ".join(missing))

    # speed: static int8, minmax, per-channel, reduce-range on both sides
    ort_rows = {r["model"]: r for r in common.load_rows("ort_quantize")
                if r["method"] == "quantize_static QDQ minmax reduce_range"}
    print("\nstatic int8 end to end (minmax, per-channel, reduce-range; 512 calibration images; best of %d):"
          % common.REPEAT)
    print("| model | hpcz s (process) | ORT s (in-process call) | ORT s (fresh python process) | hpcz/ORT call | hpcz/ORT process |")
    print("|---|---:|---:|---:|---:|---:|")
    for model in common.MODELS:
        h = next(r for r in rows if r["model"] == model and r["method"].startswith("static minmax (reduce"))
        o = ort_rows.get(model)
        if h["time_s"] is None or o is None:
            print(f"| {model} | - | - | - | - | - |")
            continue
        proc = ort_static_fresh_process(model)
        print("| %s | %.3f | %.3f | %.3f | %.3f | %.3f |" % (
            model, h["time_s"], o["time_s"], proc, h["time_s"] / o["time_s"], h["time_s"] / proc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
