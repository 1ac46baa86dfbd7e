#!/usr/bin/env bash
# Installs what hpcz needs from Debian 12 packages, skipping what is there.
#   scripts/install-deps.sh          build dependencies
#   scripts/install-deps.sh --test   + what the tests need (python3-venv for the
#                                      test virtual environment)
#   scripts/install-deps.sh --samples + what scripts/make_samples.py needs
#   scripts/install-deps.sh --zoo    + what scripts/zoo/make_data.py needs (speech,
#                                      fonts, PIL, licence texts as words)
set -euo pipefail

pkgs=(meson ninja-build pkg-config gcc libc6-dev libprotobuf-c-dev protobuf-c-compiler
      libonnx-dev libopenblas-dev libzstd-dev)
for arg in "$@"; do
  case "$arg" in
    --test) pkgs+=(python3 python3-venv python3-pip) ;;
    --samples) pkgs+=(python3 python3-torch python3-sklearn python3-onnx python3-torchvision) ;;
    --fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
    --zoo) pkgs+=(python3 python3-venv espeak-ng python3-pil fonts-dejavu-core fonts-dejavu-extra base-files) ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
