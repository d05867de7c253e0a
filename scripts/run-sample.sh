#!/usr/bin/env bash
# Set up, build the model, ingest the bundled sample data and serve the API + search page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export HIKITSUGI_HOME=${HIKITSUGI_HOME:-$PWD/.hikitsugi}
# Exit code 1 only means some sample file was skipped; the rest is indexed.
.venv/bin/hikitsugi ingest data/samples || echo "[run-sample] some files were skipped (see warnings above)" >&2
port=${HIKITSUGI_PORT:-8000}
echo "[run-sample] open http://127.0.0.1:${port}/  (API docs: http://127.0.0.1:${port}/docs)" >&2
exec .venv/bin/hikitsugi serve --port "$port"
