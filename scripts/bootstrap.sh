#!/usr/bin/env bash
# Installs what Inkwell needs to build and run, idempotently; fast when everything is present.
#   scripts/bootstrap.sh          system libraries, .venv with torch, the .libtorch link
#   scripts/bootstrap.sh --test   also the pinned reference libraries the parity tests run
set -euo pipefail
cd "$(dirname "$0")/.."

# libtorch 2.11.0: the version on the GPU machines Inkwell is measured on, so a binary built here
# runs there against their libtorch (the C++ ABI and operator schemas change between releases).
TORCH_VERSION=2.11.0
# CUDA's crt and CCCL headers, which ProcessGroupNCCL's header needs beside the runtime and NCCL headers torch
# pulls in (build-time only: multi-GPU training; the versions of the wheel's CUDA 13.0).
CUDA_HEADERS=("nvidia-cuda-crt==13.0.88" "nvidia-cuda-cccl==13.0.85")
OPEN_CLIP_VERSION=3.3.0   # ships the real 49,408-token CLIP vocabulary used by the tokenizer tests

say() { printf '[bootstrap] %s\n' "$*"; }

# 1. System libraries for image decoding (headers + pkg-config files).
missing=()
for pkg in pkg-config libpng-dev libjpeg62-turbo-dev libwebp-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. A virtual environment with torch (its libtorch is what Inkwell links against).
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || { say "creating .venv"; "$python" -m venv .venv; }
if [ ! -f ".venv/.torch-$TORCH_VERSION" ]; then
  if [ -z "${LIBTORCH:-}" ] || [ "${1:-}" = "--test" ]; then
    say "installing torch==$TORCH_VERSION into .venv"
    .venv/bin/pip install -q --disable-pip-version-check "torch==$TORCH_VERSION"
    touch ".venv/.torch-$TORCH_VERSION"
  fi
fi

# 2b. The headers NCCL's process group needs, when the venv's torch is a CUDA build (PyPI's Linux wheel is).
if [ -z "${LIBTORCH:-}" ] && ls .venv/lib/python3*/site-packages/torch/lib/libtorch_cuda.so >/dev/null 2>&1; then
  stamp=".venv/.cuda-headers-$(echo "${CUDA_HEADERS[*]}" | sha1sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    say "installing ${CUDA_HEADERS[*]} (headers for multi-GPU training)"
    if .venv/bin/pip install -q --disable-pip-version-check --no-deps "${CUDA_HEADERS[@]}"; then
      touch "$stamp"
    else
      say "could not install them: Inkwell will build without NCCL (multi-GPU training then uses gloo)"
    fi
  fi
fi

# 3. .libtorch points at the libtorch to build against: $LIBTORCH, else the venv's torch.
if [ -n "${LIBTORCH:-}" ]; then
  [ -f "$LIBTORCH/include/ATen/ATen.h" ] && [ -d "$LIBTORCH/lib" ] || {
    echo "LIBTORCH=$LIBTORCH is not a libtorch folder (needs include/ATen/ATen.h and lib/)" >&2; exit 1; }
  target=$LIBTORCH
else
  target=$(cd .venv/lib/python3*/site-packages/torch && pwd)
fi
[ "$(readlink .libtorch 2>/dev/null)" = "$target" ] || { ln -sfn "$target" .libtorch; say ".libtorch -> $target"; }

# 4. Reference libraries for the parity tests (never used at run time).
if [ "${1:-}" = "--test" ]; then
  stamp=".venv/.reference-$(cat reference/requirements.txt | sha1sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    say "installing reference libraries (reference/requirements.txt)"
    .venv/bin/pip install -q --disable-pip-version-check "torch==$TORCH_VERSION" -r reference/requirements.txt
    .venv/bin/pip install -q --disable-pip-version-check --no-deps "open-clip-torch==$OPEN_CLIP_VERSION"
    touch "$stamp"
  fi
fi

# 5. A headless browser for the dashboard's browser test.
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  say "installing chromium (dashboard browser test)"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

# 6. librsvg's rsvg-convert, the real SVG renderer the stencil tests rasterise the traced SVGs with.
if [ "${1:-}" = "--test" ] && ! command -v rsvg-convert >/dev/null 2>&1; then
  say "installing librsvg2-bin (stencil SVG tests)"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq librsvg2-bin >/dev/null
fi
