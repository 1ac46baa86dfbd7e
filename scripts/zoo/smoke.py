#!/usr/bin/env python3
"""Smoke check of hpcz on the zoo: for every model, `hpcz inspect`, then
`hpcz run` on one eval sample, compared output by output with ONNX Runtime.

    .venv-test/bin/python scripts/zoo/smoke.py [--hpcz PATH] [--zoo DIR]
                                               [--sample I] [NAME...]

One line per model: inspect status, run status, and per output the cosine
(and max abs error) of hpcz's result against ORT's; a failure prints the
first lines hpcz wrote on stderr. Exit status 1 if any model failed or any
cosine is below --min-cos (default 0.999).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import metrics  # noqa: E402

REPO = metrics.REPO


def default_hpcz():
    for p in (os.environ.get("HPCZ"), os.path.join(REPO, "build", "hpcz"), os.path.join(REPO, "build-test", "hpcz")):
        if p and os.access(p, os.X_OK):
            return p
    return "hpcz"


def first_lines(text, n=3):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[:n])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--hpcz", default=default_hpcz())
    ap.add_argument("--zoo", default=metrics.DEFAULT_ZOO)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--min-cos", type=float, default=0.999)
    ap.add_argument("--timeout", type=int, default=600)
    a = ap.parse_args()
    names = a.names or [ln.split("\t")[0] for ln in open(os.path.join(HERE, "models.tsv"), encoding="utf-8")
                        if ln.strip() and not ln.startswith("#")]
    bad = 0
    for name in names:
        model = os.path.join(a.zoo, "models", name + ".onnx")
        p = subprocess.run([a.hpcz, "inspect", model], capture_output=True, text=True, timeout=a.timeout)
        insp = "ok" if p.returncode == 0 else f"FAIL rc={p.returncode}: {first_lines(p.stderr)}"
        arrays, _ = metrics.load_set(os.path.join(a.zoo, "data", name, "eval"))
        sess = metrics.session(model)
        feed = metrics.feeds(sess.get_inputs(), arrays, a.sample)
        ref = sess.run(None, feed)
        onames = [o.name for o in sess.get_outputs()]
        with tempfile.TemporaryDirectory() as td:
            ind, outd = os.path.join(td, "in"), os.path.join(td, "out")
            os.makedirs(ind)
            args = [a.hpcz, "run", model, "-o", outd, "-q"]
            for k, v in feed.items():
                f = os.path.join(ind, k.replace("/", "_") + ".npy")
                np.save(f, v)
                args += ["--input", f"{k}={f}"]
            p = subprocess.run(args, capture_output=True, text=True, timeout=a.timeout)
            if p.returncode != 0:
                print(f"{name:18s} inspect {insp}; run FAIL rc={p.returncode}: {first_lines(p.stderr)}", flush=True)
                bad += 1
                continue
            parts = []
            for on, r in zip(onames, ref):
                f = os.path.join(outd, on.replace("/", "_") + ".npy")
                if not os.path.exists(f):
                    parts.append(f"{on}: MISSING")
                    bad += 1
                    continue
                h = np.load(f)
                if h.shape != r.shape:
                    parts.append(f"{on}: shape {list(h.shape)} vs ORT {list(r.shape)}")
                    bad += 1
                    continue
                c = metrics.cosine(r, h)
                err = float(np.max(np.abs(r.astype(np.float64) - h.astype(np.float64)))) if r.size else 0.0
                if not c >= a.min_cos:
                    bad += 1
                parts.append(f"{on}: cos {c:.6f} maxabs {err:.3g}")
            print(f"{name:18s} inspect {insp}; run ok; " + "; ".join(parts), flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
