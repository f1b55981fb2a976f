#!/usr/bin/env bash
# Create (or update) the virtual environment at .venv in the repo root from the one pinned
# requirements file, and install pgfa_ros editable. Idempotent: re-running after a change to
# requirements.txt installs only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.pgfa-requirements.sha256
want=$(sha256sum requirements.txt requirements-nodeps.txt setup.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing pinned requirements (first time: a few minutes, ~3 GB)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 \
    | grep -v -e "^WARNING: Location" -e "does not provide the extra" || true
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt 2>&1 \
    | grep -v -e "^WARNING: Location" || true
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 \
    | grep -v -e "^WARNING: Location" || true
  .venv/bin/python -c "import torch, rclpy, sentence_transformers, pgfa_models" \
    || { echo "[setup] environment check failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
echo "[setup] environment ready: .venv"
