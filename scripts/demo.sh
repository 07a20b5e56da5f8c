#!/usr/bin/env bash
# The demo: installs what is missing, starts a local Supabase stack, trains a
# tiny model on CPU while a scripted user changes its hyperparameters live,
# writes demo-output/liveparams-demo.png (its checkpoints in a new demo-output/run-N) and stops the
# stack. While it trains it prints the web panel's address and the demo user's sign-in; --keep-up leaves
# the stack and the panel up afterwards. --output DIR writes there instead and deletes nothing in it.
# Extra arguments go to the demo, e.g. `bash scripts/demo.sh --steps 500`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"
exec python -m liveparams.demo "$@"
