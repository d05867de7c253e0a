#!/usr/bin/env bash
# Set up, build the model, ingest the bundled sample data and serve the API + search page.
set -euo pipefail
cd "$(dirname "$0")/.."
export HIKITSUGI_HOME=${HIKITSUGI_HOME:-$PWD/.hikitsugi}  # before setup: the model is built into this home
scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Exit code 1 only means some sample file was skipped; the rest is indexed.
.venv/bin/hikitsugi ingest data/samples || echo "[run-sample] some files were skipped (see warnings above)" >&2
# Every API call needs a key. For trying the samples, make one demo key (role lead, so the
# lead reports open too) once, and keep it in the home (mode 600) so a second run can show
# it again. Real deployments create keys per person with `hikitsugi keys create`.
demo_key_file="$HIKITSUGI_HOME/demo-api-key"
if [ ! -s "$demo_key_file" ]; then
  umask 077
  .venv/bin/hikitsugi keys create --user demo --role lead --label "run-sample demo" > "$demo_key_file.tmp"
  mv "$demo_key_file.tmp" "$demo_key_file"
  # The demo user handles the first three sample customers fully (the others show only their basic part).
  for c in C001 C002 C003; do .venv/bin/hikitsugi staff assign --user demo --customer "$c" >/dev/null; done
fi
port=${HIKITSUGI_PORT:-8000}
echo "[run-sample] open http://127.0.0.1:${port}/ and paste this API key into 「APIキー」: $(cat "$demo_key_file")" >&2
echo "[run-sample] lead reports: http://127.0.0.1:${port}/leads   API docs: http://127.0.0.1:${port}/docs" >&2
exec .venv/bin/hikitsugi serve --port "$port"
