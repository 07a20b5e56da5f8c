#!/usr/bin/env bash
# CI's second job: the trainer hooks' tests (tests/trainer_hooks, tests/distributed) at the
# declared floors of transformers, trl and accelerate (pyproject.toml's `train` extra, read by
# scripts/floors.py), so that the floors are tested, not just declared. Runs in .venv-floors, a
# venv layered on .venv: only the floored libraries (and whatever they pin) are installed there,
# from the pip cache; torch 2.13.0, the project and the test tools are .venv's. A second run
# only checks. scripts/test.sh runs it after the main job, with the same pytest arguments;
# LIVEPARAMS_SKIP_FLOORS=1 skips it (a developer's quick runs).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
say() { printf '\033[1m[floors]\033[0m %s\n' "$*"; }
if [ -n "${LIVEPARAMS_SKIP_FLOORS:-}" ]; then
  say "skipped (LIVEPARAMS_SKIP_FLOORS is set)"
  exit 0
fi

read -r -a floors <<<"$(.venv/bin/python scripts/floors.py)"
printf '\n\033[1m==== the floors job: tests/trainer_hooks and tests/distributed at %s ====\033[0m\n' "${floors[*]}"
venv=.venv-floors stamp=.venv-floors/.liveparams-floors
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${floors[*]}" ] || [ .venv/.liveparams-installed -nt "$stamp" ]; then
  say "creating $venv: ${floors[*]} over .venv"
  rm -rf "$venv"
  .venv/bin/python -m venv --without-pip "$venv"
  base_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  # .venv's packages (and its editable install of the project), after this venv's own.
  echo "import site; site.addsitedir('$base_site')" >"$site/liveparams-base.pth"
  # pip leaves .venv's newer copies alone ("outside environment") and installs the floors here.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${floors[@]}" \
    2> >(grep -v -e 'is ignored: it is neither' -e 'outside environment' >&2)
  echo "${floors[*]}" >"$stamp"
fi
# What the tests will import, checked rather than assumed: each library at exactly its floor.
"$venv/bin/python" - "${floors[@]}" <<'PY'
import sys
from importlib.metadata import version

from packaging.requirements import Requirement

wrong = [f"{pin} (found {version(Requirement(pin).name)})" for pin in sys.argv[1:]
         if not Requirement(pin).specifier.contains(version(Requirement(pin).name))]
sys.exit(f".venv-floors does not hold the floors: {', '.join(wrong)}" if wrong else 0)
PY
status=0
"$venv/bin/python" -m pytest tests/trainer_hooks tests/distributed "$@" || status=$?
if [ "$status" -eq 5 ]; then  # the arguments selected none of these tests (e.g. `-k packaging`)
  say "no trainer-hooks test selected by the arguments: nothing to run at the floors"
  status=0
fi
exit "$status"
