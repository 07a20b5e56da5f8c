#!/usr/bin/env bash
# The test command: installs what is missing, then lint, types and the whole
# test suite (unit, database, integration against the local stack, end-to-end
# training), then the trainer hooks' tests again at the declared floors of transformers, trl and
# accelerate (scripts/test_floors.sh; LIVEPARAMS_SKIP_FLOORS=1 skips it). Extra arguments go to
# pytest, in both jobs, e.g. `bash scripts/test.sh -k agent`; both run in LIVEPARAMS_TEST_WORKERS
# workers (2 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
tree() { git status --porcelain; git diff; }
before=$(tree)
bash scripts/setup.sh
if [ "$(tree)" != "$before" ]; then
  echo "scripts/setup.sh changed the working tree (git status/diff); it must leave it as it was" >&2
  git status --short >&2
  exit 1
fi
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
ruff check .
ruff format --check .
mypy
mypy benchmarks  # scripts, not a package: checked on their own
# Two workers (pytest-xdist), each taking whole test files and starting its own stack: most tests
# wait on a stack, a timer or a subprocess, so two of them share 2 cores well. LIVEPARAMS_TEST_WORKERS=0
# runs everything in this one process (as `pytest -s` or `--pdb` need).
workers=(-n "${LIVEPARAMS_TEST_WORKERS:-2}" --dist loadfile)
python -m pytest "${workers[@]}" "$@"
bash scripts/test_floors.sh "${workers[@]}" "$@"
