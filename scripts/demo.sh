#!/usr/bin/env bash
# The demo: installs what is missing, starts a local Supabase stack, trains a
# tiny model on CPU while a scripted user changes its hyperparameters live,
# writes demo-output/liveparams-demo.png and stops the stack.
# Extra arguments go to the demo, e.g. `bash scripts/demo.sh --steps 500`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"
exec python -m liveparams.demo "$@"
