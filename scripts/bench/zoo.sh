#!/usr/bin/env bash
# Benchmark (not a test): every hpcz compression mode next to ONNX Runtime's
# quantizers, onnxconverter-common and NNCF on the 13 real models of
# scripts/zoo, same data, same run, one table (build/bench-zoo/zoo.md, .json).
#
#   scripts/bench/zoo.sh [--models a,b] [--variants REGEX] [--quick]
#                        [--eval-samples N] [--quick-models a,b] [--force]
#                        [--timeout S] [--list] [--report-only] [--readme]
#
# --quick evaluates on the first 16 eval samples (a fast check); runs are
# cached per (model, variant) under build/bench-zoo/runs/ (hpcz variants are
# redone when build-rel/hpcz changed; --force redoes all). The full run on all
# 13 models takes about 1.5 hours on a 2-core machine (int4 GPTQ and prune
# --reconstruct take up to 10 minutes each on the detectors; --timeout 600
# cuts them). --readme rewrites the table in README.md. See zoo.py.
# Needs .zoo/ (scripts/zoo/fetch.sh, make_data.py); builds build-rel/ and
# makes .venv-anchors/ with NNCF (scripts/anchors/setup.sh --no-torch --nncf).
set -euo pipefail
cd "$(dirname "$0")/../.."
case "${1:-}" in -h|--help) sed -n '2,17p' "$0"; exit 0 ;; esac
build=build-rel
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" >/dev/null
py=.venv-anchors/bin/python
"$py" -c 'import onnxruntime, onnx, numpy, onnxconverter_common, nncf' 2>/dev/null ||
  scripts/anchors/setup.sh --no-torch --nncf >&2
exec "$py" scripts/bench/zoo.py --hpcz "$build/hpcz" "$@"
