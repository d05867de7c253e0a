#!/usr/bin/env bash
# Set up everything Hikitsugi needs in .venv at the repository root. Idempotent: a second
# run only checks that nothing changed (a stamp of pyproject.toml) and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.hikitsugi-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing dependencies (torch CPU build first, so nothing pulls CUDA)" >&2
  .venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
  .venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
  echo "$want" > "$stamp"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "[setup] default embedding model: $(.venv/bin/hikitsugi model build)" >&2
