#!/usr/bin/env python3
"""Benchmark (not a test) for --calib-mask and --smooth-quant on the zoo's
sentence encoders: hpcz variants with and without the token mask and the
smoothing, next to ORT's and NNCF's quantizers (NNCF with and without
model_type=TRANSFORMER, which applies its SmoothQuant), evaluated as
scripts/bench/zoo.py does (per-sentence embedding cosine, SQNR of the
worst output) on the eval set.

    .venv-anchors/bin/python scripts/bench/calibmask_smooth.py [--models minilm_l3]
        [--variants REGEX] [--eval-samples N] [--hpcz build-rel/hpcz]

Models go to build/bench-calibmask/MODEL/; the table goes to stdout.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import zoo  # noqa: E402

OUT = os.path.join(zoo.ROOT, "build", "bench-calibmask")

Q = ["quantize", "--calib", "CALIB"]
VARIANTS = [
    ("hpcz_dyn", ["quantize", "--mode", "dynamic"]),
    ("hpcz_static", Q + ["--mode", "static", "--smooth-quant=0"]),
    ("hpcz_static_nomask", Q + ["--mode", "static", "--calib-mask", "none", "--smooth-quant=0"]),
    ("hpcz_static_sq", Q + ["--mode", "static"]),
    ("hpcz_static_sq_minmax", Q + ["--mode", "static", "--calib-method", "minmax"]),
    ("hpcz_static_sq_nomask", Q + ["--mode", "static", "--calib-mask", "none"]),
    ("hpcz_static_sq_all", Q + ["--mode", "static", "--placement", "all"]),
    ("hpcz_static_mse", Q + ["--mode", "static", "--calib-method", "mse", "--smooth-quant=0"]),
    ("hpcz_static_sq_mse", Q + ["--mode", "static", "--calib-method", "mse"]),
    ("hpcz_static_sq_pct", Q + ["--mode", "static", "--calib-method", "percentile"]),
    ("hpcz_static_entropy", Q + ["--mode", "static", "--calib-method", "entropy", "--smooth-quant=0"]),
    ("hpcz_static_sq_entropy", Q + ["--mode", "static", "--calib-method", "entropy"]),
    ("hpcz_static_sq_entropy_nomask", Q + ["--mode", "static", "--calib-method", "entropy", "--calib-mask", "none"]),
    ("hpcz_static_sq_pct_ffn2float", Q + ["--mode", "static", "--calib-method", "percentile",
                                          "--exclude", "output/dense"]),
    ("hpcz_int4_gptq", Q + ["--dtype", "int4"]),
    ("hpcz_int4_gptq_nomask", Q + ["--dtype", "int4", "--calib-mask", "none"]),
    ("hpcz_prune50_rec", ["prune", "--sparsity", "0.5", "--reconstruct", "--calib", "CALIB"]),
    ("hpcz_prune50_rec_nomask", ["prune", "--sparsity", "0.5", "--reconstruct", "--calib", "CALIB",
                                 "--calib-mask", "none"]),
    ("ort_dyn_pc", "peer"),
    ("ort_static_minmax", "peer"),
    ("nncf", "peer"),
    ("nncf_transformer", "peer"),
]


def peer(variant, name, src, dst):
    if variant != "nncf_transformer":
        zoo.worker_peer(variant, name, src, dst, dst + ".json")
        return json.load(open(dst + ".json"))
    import nncf
    import onnx
    items = zoo.calib_items(name, src)
    t0 = time.perf_counter()
    q = nncf.quantize(onnx.load(src), nncf.Dataset(items), subset_size=len(items),
                      model_type=nncf.ModelType.TRANSFORMER)
    onnx.save(q, dst)
    return {"seconds": time.perf_counter() - t0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="minilm_l3")
    ap.add_argument("--variants", default=".")
    ap.add_argument("--eval-samples", type=int, default=0)
    ap.add_argument("--hpcz", default=os.path.join(zoo.ROOT, "build-rel", "hpcz"))
    a = ap.parse_args()
    rows = []
    for name in a.models.split(","):
        src = os.path.join(zoo.ZOO, "models", name + ".onnx")
        calib = os.path.join(zoo.ZOO, "data", name, "calib")
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        for vid, spec in VARIANTS:
            if not re.search(a.variants, vid):
                continue
            dst = os.path.join(d, vid + ".onnx")
            t0 = time.perf_counter()
            if spec == "peer":
                try:
                    info = peer(vid, name, os.path.abspath(src), dst)
                except Exception as e:  # noqa: BLE001
                    info = {"error": f"{type(e).__name__}: {zoo.first_line(str(e))}"}
                if info.get("error"):
                    rows.append((name, vid, info["error"]))
                    continue
            else:
                argv = [a.hpcz, spec[0], src, "-o", dst] + [calib if x == "CALIB" else x for x in spec[1:]]
                p = subprocess.run(argv, capture_output=True, text=True)
                if p.returncode:
                    rows.append((name, vid, "hpcz failed: " + zoo.first_line(p.stderr)))
                    continue
            secs = time.perf_counter() - t0
            ev = zoo.evaluate_subset(name, dst, a.eval_samples)
            cm, cw, sq = zoo.summarize(ev)
            t = ev["task"]
            emb = [v["sqnr_db"] for k, v in ev["outputs"].items() if k in ("461", "sentence_embedding")]
            rows.append((name, vid, f"emb cos {t['emb_cos_mean']:.5f} worst {t['emb_cos_min']:.5f} | "
                         f"SQNR embedding {emb[0] if emb else float('nan'):.2f} dB, worst output {sq:.2f} dB | "
                         f"{secs:.1f} s"))
            print("\t".join(rows[-1]), flush=True)
    print()
    for r in rows:
        print("\t".join(r))


if __name__ == "__main__":
    main()
