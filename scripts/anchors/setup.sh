#!/usr/bin/env bash
# Creates .venv-anchors/ (ignored by git) for the same-work anchors in
# scripts/anchors/: the tools hpcz measures itself against.
#
#   scripts/anchors/setup.sh            # everything, PyTorch included
#   scripts/anchors/setup.sh --no-torch # skip PyTorch (torch_ptq.py then runs
#                                       # on Debian's python3-torch 1.13)
#   scripts/anchors/setup.sh --no-torch --nncf  # also NNCF (scripts/bench/zoo.sh)
#
# Pinned PyPI versions (Python 3.11 from /usr/bin/python3):
#   onnx 1.23.2, onnxruntime 1.32.0, onnx-ir 1.1.0, numpy 2.3.5: the versions of
#     tests/requirements.txt (1.23.2 computed some u8s8 MatMuls wrongly on AMX)
#   onnxconverter-common 1.16.0: the float16 anchor (needs only onnx/protobuf>=3.20.2)
#   torch 2.9.1: the PyTorch PTQ and pruning anchor. PyPI has no CPU-only
#     Linux wheel: this is the CUDA 12.8 build, which pulls ~3 GB of nvidia-*
#     wheels (~7 GB installed) that the CPU anchor never uses. 2.9.1 is pinned
#     rather than the newest because torch.ao.quantization (FX graph mode PTQ)
#     is deprecated and slated for removal in the 2.10 line.
#   nncf 3.4.0 (--nncf only): Intel's post-training quantizer, run on the ONNX
#     model itself (its ONNX backend needs no torch and no OpenVINO); pulls
#     scipy, scikit-learn, networkx, rich and friends (~240 MB installed),
#     pinned below as resolved by pip.
# Re-running is cheap: packages already at their pins are left alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-anchors
with_torch=1
with_nncf=0
for arg in "$@"; do
  case "$arg" in
    --no-torch) with_torch=0 ;;
    --nncf) with_nncf=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

pins=(onnx==1.23.2 onnxruntime==1.32.0 onnx-ir==1.1.0 numpy==2.3.5 onnxconverter-common==1.16.0)
torch_pin=torch==2.9.1
nncf_pins=(nncf==3.4.0 networkx==3.6.1 ninja==1.13.2 openvino-telemetry==2025.2.0 psutil==7.2.2
           pydot==4.0.1 rich==15.0.0 safetensors==0.8.0 scikit-learn==1.9.1 scipy==1.17.1 tabulate==0.10.0)

if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q "${pins[@]}"
if [ "$with_nncf" = 1 ]; then
  "${pip[@]}" install -q "${pins[@]}" "${nncf_pins[@]}"
fi
if [ "$with_torch" = 1 ]; then
  if ! "$venv/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.9.1")' 2>/dev/null; then
    echo "setup.sh: installing $torch_pin from PyPI (CUDA build, ~3 GB download)" >&2
    if ! "${pip[@]}" install -q "$torch_pin"; then
      echo "setup.sh: $torch_pin failed to install; torch_ptq.py will use /usr/bin/python3 (Debian python3-torch)" >&2
    fi
  fi
fi
"$venv/bin/python" - <<'PY'
import importlib
for m in ("onnx", "onnxruntime", "numpy", "onnxconverter_common", "torch", "nncf"):
    try:
        print("%-22s %s" % (m, importlib.import_module(m).__version__))
    except Exception as e:  # torch and nncf are optional
        print("%-22s missing (%s)" % (m, type(e).__name__))
PY
