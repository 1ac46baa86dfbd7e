"""Shared helpers of the same-work anchors (scripts/anchors/): data, evaluation, results.

Every model, whoever made it (hpcz, ONNX Runtime's quantizer, onnxconverter-common),
is evaluated the same way: ONNX Runtime, CPU execution provider, default graph
optimizations, one intra-op and one inter-op thread (deterministic), the whole
450-image digits test split in one batch. Metrics:

* top-1 accuracy (%) on the test labels, and its drop in points against the
  float32 model evaluated the same way;
* logit SQNR (dB) = 10 log10(sum(ref^2) / sum((ref - got)^2)) over all logits,
  ref being the float32 model's logits from the same runtime (inf when equal).

The PyTorch anchor (torch_ptq.py) evaluates in PyTorch against the float torch
model, with the same accuracy/SQNR functions. numpy is the only import needed at
module level, so torch_ptq.py can also use this under Debian's /usr/bin/python3.

Results are appended as JSON rows to build/anchors/results/<script>.json so
hpcz_side_by_side.py can print them next to hpcz's in one table.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLES = ROOT / "samples"
DIGITS = SAMPLES / "digits"
MODELS = {"digits_cnn": SAMPLES / "digits_cnn.onnx", "digits_mlp": SAMPLES / "digits_mlp.onnx"}
WORK = ROOT / "build" / "anchors"
RESULTS = WORK / "results"
INPUT_NAME = "input"


def calib_input() -> np.ndarray:
    """The 512 calibration images, float32 [512, 1, 8, 8] (train split, disjoint from test)."""
    return np.load(DIGITS / "calib" / "input.npy")


def test_data() -> tuple[np.ndarray, np.ndarray]:
    """The 450-image test split and its int64 labels."""
    return np.load(DIGITS / "test_input.npy"), np.load(DIGITS / "test_labels.npy")


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * float((np.asarray(logits).argmax(axis=1) == labels).mean())


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of got against ref, in dB (inf when equal, nan when got is not finite)."""
    ref = np.asarray(ref, np.float64)
    got = np.asarray(got, np.float64)
    if not np.all(np.isfinite(got)):
        return float("nan")
    noise = float(np.sum((ref - got) ** 2))
    if noise == 0.0:
        return float("inf")
    return 10.0 * math.log10(float(np.sum(ref**2)) / noise)


def ort_session(path, threads: int = 1):
    """ONNX Runtime session as every anchor uses it: CPU EP, default optimizations, 1 thread."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_run(path, feeds: dict) -> list:
    return ort_session(path).run(None, feeds)


def ort_logits(path, x: np.ndarray) -> np.ndarray:
    """First output of the model at path on input x, as float32."""
    return np.asarray(ort_run(path, {INPUT_NAME: x})[0], np.float32)


_REF: dict = {}


def float_reference(model: str) -> np.ndarray:
    """The float32 model's test-split logits under ONNX Runtime (cached)."""
    if model not in _REF:
        _REF[model] = ort_logits(MODELS[model], test_data()[0])
    return _REF[model]


def evaluate(model: str, path) -> dict:
    """Accuracy, drop, SQNR and size of the ONNX file at path, a variant of MODELS[model]."""
    x, labels = test_data()
    ref = float_reference(model)
    got = ort_logits(path, x)
    base = top1(ref, labels)
    acc = top1(got, labels)
    return {"top1": acc, "drop": base - acc, "sqnr_db": sqnr_db(ref, got), "size": file_size(path)}


def file_size(path) -> int:
    """Bytes of an ONNX file plus any external data files beside it that it names (*.data)."""
    path = Path(path)
    total = path.stat().st_size
    for extra in path.parent.glob(path.name + ".data"):
        total += extra.stat().st_size
    return total


def op_histogram(path) -> str:
    """'Op count, ...' of an ONNX file's top-level graph (what a quantizer really did)."""
    import onnx

    counts: dict = {}
    for n in onnx.load(str(path), load_external_data=False).graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return " ".join("%s:%d" % kv for kv in sorted(counts.items()))


# Timings: the best of REPEAT complete runs. The machines this runs on are small
# (2 cores) and shared, so the minimum is the estimate least disturbed by other load.
REPEAT = 5


def timed(fn, repeat: int = REPEAT) -> float:
    """Best (minimum) wall-clock seconds of repeat calls of fn(), each one a complete run."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(min(times))


class Timer:
    """with Timer() as t: ...; t.s is the wall-clock seconds."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0
        return False


def row(tool: str, method: str, model: str, metrics: dict, seconds, note: str = "") -> dict:
    r = {"tool": tool, "method": method, "model": model, "time_s": seconds, "note": note}
    r.update(metrics)
    return r


def save_rows(name: str, rows: list) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (name + ".json")
    path.write_text(json.dumps(rows, indent=1, default=_json_default) + "\n")
    return path


def load_rows(name: str) -> list:
    path = RESULTS / (name + ".json")
    return json.loads(path.read_text()) if path.exists() else []


def _json_default(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    raise TypeError(type(v))


def _fmt(v, spec: str) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return format(v, spec)


def markdown_table(rows: list, notes: bool = True) -> str:
    """One markdown table: tool, method, model, top-1 %, drop, SQNR, size, wall time (and notes)."""
    head = ["tool", "method", "model", "top-1 %", "drop (pts)", "logit SQNR dB", "size bytes", "wall s"]
    if notes:
        head.append("notes")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * 5 + (["---"] if notes else [])) + "|"]
    for r in rows:
        cells = [
            r["tool"],
            r["method"],
            r["model"],
            _fmt(r.get("top1"), ".2f"),
            _fmt(r.get("drop"), "+.2f"),
            _fmt(r.get("sqnr_db"), ".1f"),
            _fmt(r.get("size"), ",d"),
            _fmt(r.get("time_s"), ".3f"),
        ]
        if notes:
            cells.append(r.get("note", "") or "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fresh_dir(*parts) -> Path:
    d = WORK.joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    for f in d.iterdir():
        if f.is_file():
            os.unlink(f)
    return d


# --------------------------------------------------------------------------
# The "ranges" model: constants float16 cannot hold (as in tests/py/test_quantize.py)
# --------------------------------------------------------------------------

RANGES_CHANNELS = 4


RANGES_MODELS = {"ranges": True, "ranges_nomul": False}


def make_ranges_model(path, with_mul: bool = True) -> None:
    """Conv -> BatchNormalization(var=1e8) -> Mul(2^20) -> Abs -> Clip(min=1e-10) -> Log -> Relu.

    float16's largest finite value is 65504 and its smallest subnormal ~6e-8: var=1e8
    and 2^20 overflow, the Clip minimum underflows to 0 (and Log(0) = -inf).
    with_mul=False ("ranges_nomul") leaves out the Mul and the Relu (output: the
    Log), so that an error in the BatchNorm variance is neither offset by an error
    in the multiplier nor hidden by the Relu.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c = RANGES_CHANNELS
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "cw"], ["c1"], name="conv"),
        helper.make_node("BatchNormalization", ["c1", "g", "b", "mean", "var"], ["bn"], name="bn_big_var"),
    ]
    if with_mul:
        nodes.append(helper.make_node("Mul", ["bn", "big"], ["scaled"], name="mul_2p20"))
    nodes += [
        helper.make_node("Abs", ["scaled" if with_mul else "bn"], ["ab"], name="abs"),
        helper.make_node("Clip", ["ab", "tiny", "hi"], ["cl"], name="clip_1e-10"),
        helper.make_node("Log", ["cl"], ["lg" if with_mul else "y"], name="log"),
    ]
    if with_mul:
        nodes.append(helper.make_node("Relu", ["lg"], ["y"], name="relu"))
    inits = [
        numpy_helper.from_array(rng.normal(size=(c, 1, 3, 3)).astype(np.float32), "cw"),
        numpy_helper.from_array(np.ones(c, np.float32), "g"),
        numpy_helper.from_array(np.zeros(c, np.float32), "b"),
        numpy_helper.from_array(np.zeros(c, np.float32), "mean"),
        numpy_helper.from_array(np.full(c, 1e8, np.float32), "var"),
        numpy_helper.from_array(np.array(1e-10, np.float32), "tiny"),
        numpy_helper.from_array(np.array(1e30, np.float32), "hi"),
    ]
    if with_mul:
        inits.append(numpy_helper.from_array(np.array(2.0**20, np.float32), "big"))
    g = helper.make_graph(nodes, "ranges", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 6, 6])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def ranges_input() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(1, 1, 8, 8)).astype(np.float32)


def evaluate_ranges(ref_path, path) -> dict:
    """SQNR of path's output against ref_path's, plus a note: finite?, max |diff|, exact zeros."""
    x = ranges_input()
    ref = np.asarray(ort_run(ref_path, {"x": x})[0], np.float32)
    got = np.asarray(ort_run(path, {"x": x})[0], np.float32)
    finite = bool(np.all(np.isfinite(got)))
    note = "finite" if finite else "NON-FINITE (%d nan, %d inf)" % (np.isnan(got).sum(), np.isinf(got).sum())
    if finite:
        note += ", max |diff| %.3g" % float(np.max(np.abs(ref - got)))
    note += ", zeros %d/%d (float32: %d)" % (int((got == 0).sum()), got.size, int((ref == 0).sum()))
    return {"sqnr_db": sqnr_db(ref, got), "size": file_size(path), "note": note}


def changed_constants(src, dst, rtol: float = 0.01) -> str:
    """Initializers of src whose value in dst (by name, any float dtype) differs by more than rtol."""
    import onnx
    from onnx import numpy_helper

    def inits(path):
        return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}

    a, b = inits(src), inits(dst)
    out = []
    for name, v in a.items():
        if name not in b or v.dtype.kind != "f":
            continue
        w = b[name].astype(np.float64)
        v = v.astype(np.float64)
        if w.shape == v.shape and not np.allclose(v, w, rtol=rtol, atol=0):
            i = int(np.argmax(np.abs(v - w)))
            out.append("%s %.3g->%.3g" % (name, v.flat[i], w.flat[i]))
    return ", ".join(out)
