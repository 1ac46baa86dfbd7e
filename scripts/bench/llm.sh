#!/usr/bin/env bash
# Int4 perplexity of a small decoder LLM with a KV cache (the zoo's kjv_gpt,
# made by scripts/zoo/make_llm.py): hpcz int4 RTN, GPTQ and, when `hpcz
# quantize --help` lists --int4-format, the MatMulNBits output, against ONNX
# Runtime's MatMulNBitsQuantizer (its default RTN, HQQ, and the RTN and GPTQ
# configs, which run the neural-compressor code ORT ships), all at int4 block 32
# asymmetric. Perplexity per character on the held-out text, every file
# scored by ONNX Runtime the same way (and hpcz's files also by hpcz run),
# plus file size and tool time. Also checks hpcz run against ORT on the float
# model for a prompt (P = 0) and a decode step on its cache (P = 48).
# Markdown table on stdout, JSON in --json FILE (default build-rel/llm.json).
#
#   scripts/bench/llm.sh [--json FILE] [--threads N] [--block N]
#
# Needs .zoo/models/kjv_gpt.onnx and .zoo/data/kjv_gpt/ (scripts/zoo/fetch.sh,
# then /usr/bin/python3 scripts/zoo/make_llm.py), build-rel/ (built here) and
# a Python with onnx, onnxruntime and numpy: LLM_PYTHON, default
# .venv-anchors/bin/python. ORT's HQQ and GPTQ configs also import torch,
# which that venv lacks; what cannot run is listed as not run. For all of
# them, a venv on Debian's python3-torch 1.13 (built against numpy 1.x):
#   python3 -m venv --system-site-packages DIR
#   DIR/bin/pip install onnxruntime==1.23.2 onnx==1.23.2 numpy==1.26.4 ml_dtypes==0.5.1
#   LLM_PYTHON=DIR/bin/python scripts/bench/llm.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
json=build-rel/llm.json
threads=2
block=32
while [ $# -gt 0 ]; do
  case "$1" in
    --json) json=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --block) block=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "llm.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
py=${LLM_PYTHON:-.venv-anchors/bin/python}
zoo=${ZOO_DIR:-.zoo}
if [ ! -f "$zoo/models/kjv_gpt.onnx" ] || [ ! -d "$zoo/data/kjv_gpt/eval" ]; then
  echo "llm.sh: $zoo/models/kjv_gpt.onnx or $zoo/data/kjv_gpt/ missing (scripts/zoo/fetch.sh, then /usr/bin/python3 scripts/zoo/make_llm.py)" >&2
  exit 1
fi
[ -f build-rel/build.ninja ] || meson setup build-rel --buildtype=release >/dev/null
ninja -C build-rel >/dev/null
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hpcz-bench-llm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$py" scripts/bench/llm.py --hpcz "$PWD/build-rel/hpcz" --zoo "$zoo" --work "$tmp" \
  --json "$json" --threads "$threads" --block "$block"
