#!/usr/bin/env bash
# MatMulNBits against the float MatMul it replaces: one 384x1536 layer
# (x [1, M, 384] -> y [1, M, 1536]) as a float MatMul and as ONNX Runtime's
# MatMulNBits (its own MatMulNBitsQuantizer: 4 bits block 32 asymmetric, and
# 8 bits block 128), for M = 1 (decoding: a GEMV), 4 and 128 (a GEMM).
# One timing line per model: hpcz run --bench median, the ratio to the float
# MatMul of the same M (goal <= 1.0), and ONNX Runtime's median beside it.
#
#   scripts/bench/matmulnbits.sh [--runs N] [--threads N]
#
# Needs build-rel/ (built here) and a Python with onnx, onnxruntime and numpy
# (HPCZ_TEST_PYTHON, default .venv-test/bin/python: what scripts/test.sh makes).
# The float MatMul is OpenBLAS: on a CPU it does not recognise it runs its
# generic Prescott kernels (about 10x slower GEMMs); OPENBLAS_CORETYPE=SkylakeX
# (or Haswell) gives the fair baseline there (lib/runtime/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=200
threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "matmulnbits.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
py=${HPCZ_TEST_PYTHON:-.venv-test/bin/python}
[ -f build-rel/build.ninja ] || meson setup build-rel --buildtype=release >/dev/null
ninja -C build-rel >/dev/null
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hpcz-bench-nbits.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$py" - "$tmp" "$PWD/build-rel/hpcz" "$runs" "$threads" <<'EOF'
import json, logging, os, subprocess, sys, time
import numpy as np, onnx, onnxruntime as ort
from onnx import helper as oh, numpy_helper as nh, TensorProto as TP
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer, DefaultWeightOnlyQuantConfig
logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
tmp, hpcz, runs, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
K, N = 384, 1536
rng = np.random.default_rng(0)
w = (rng.standard_normal((K, N)) / np.sqrt(K)).astype(np.float32)
g = oh.make_graph([oh.make_node("MatMul", ["x", "w"], ["y"], name="fc")], "layer",
                  [oh.make_tensor_value_info("x", TP.FLOAT, [1, "m", K])],
                  [oh.make_tensor_value_info("y", TP.FLOAT, [1, "m", N])], [nh.from_array(w, "w")])
models = {"float MatMul": os.path.join(tmp, "f32.onnx")}
onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=8), models["float MatMul"])
for bits, bs in ((4, 32), (8, 128)):
    cfg = DefaultWeightOnlyQuantConfig(block_size=bs, is_symmetric=False, bits=bits)
    q = MatMulNBitsQuantizer(onnx.load(models["float MatMul"]), block_size=bs, is_symmetric=False, algo_config=cfg)
    q.process()
    p = os.path.join(tmp, f"q{bits}.onnx")
    q.model.save_model_to_file(p, False)
    models[f"MatMulNBits {bits}-bit b{bs}"] = p

def ort_ms(model, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    s.run(None, {"x": x})
    t = []
    for _ in range(runs):
        t0 = time.perf_counter(); s.run(None, {"x": x}); t.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(t))

print(f"layer {K}x{N}, {runs} runs, {threads} threads")
for m in (1, 4, 128):
    x = rng.standard_normal((1, m, K)).astype(np.float32)
    xp = os.path.join(tmp, f"x{m}.npy")
    np.save(xp, x)
    base = None
    for name, p in models.items():
        r = subprocess.run([hpcz, "run", p, "--input", f"x={xp}", "--bench", str(runs), "--threads",
                            str(threads), "--json"], capture_output=True, text=True, check=True)
        ms = json.loads(r.stdout)["bench"]["median_ms"]
        base = base or ms
        print(f"M={m:<4} {name:<22} hpcz {ms:8.3f} ms  x{ms / base:5.2f} of float   ORT {ort_ms(p, x):8.3f} ms")
EOF
