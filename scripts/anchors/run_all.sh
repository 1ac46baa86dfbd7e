#!/usr/bin/env bash
# Runs every same-work anchor and hpcz next to them, then prints one table.
#
#   scripts/anchors/run_all.sh [--no-torch]
#
# 1. scripts/anchors/setup.sh: .venv-anchors/ with pinned onnx, onnxruntime,
#    numpy, onnxconverter-common and torch (skipped with --no-torch)
# 2. ort_quantize.py, fp16_anchor.py: ONNX Runtime's quantizers, onnxconverter-common
# 3. torch_ptq.py: with the venv's torch, or Debian's /usr/bin/python3 (python3-torch)
#    when the venv has none
# 4. hpcz_side_by_side.py: hpcz's commands (build-rel/, built if needed) and the table
# Outputs go to build/anchors/ (ignored). Everything runs on the CPU, one
# evaluation thread; the whole run takes about a minute once the venv exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/anchors/setup.sh "$@" >&2
py=.venv-anchors/bin/python
"$py" scripts/anchors/ort_quantize.py >/dev/null
"$py" scripts/anchors/fp16_anchor.py >/dev/null
if "$py" -c 'import torch' 2>/dev/null; then
  "$py" scripts/anchors/torch_ptq.py >/dev/null
else
  echo "run_all.sh: no torch in .venv-anchors: torch_ptq.py on /usr/bin/python3 (Debian python3-torch)" >&2
  /usr/bin/python3 scripts/anchors/torch_ptq.py >/dev/null
fi
"$py" scripts/anchors/hpcz_side_by_side.py
