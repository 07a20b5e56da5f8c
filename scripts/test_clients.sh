#!/usr/bin/env bash
# The agent's tests (tests/agent) against the oldest official clients it supports (supabase and
# realtime 2.34.0) and the newest that resolve (<3), each in a throwaway venv layered on .venv:
# only the clients and what they pin are installed there (from the pip cache), everything else,
# torch included, is .venv's. A newest that .venv already holds is skipped: the main run tested
# it. Run by .ci/run after scripts/test.sh; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
say() { printf '\033[1m[clients]\033[0m %s\n' "$*"; }
versions() { "$1" -c 'from importlib.metadata import version as v; print(v("supabase"), v("realtime"))'; }

base_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
scratch=$(mktemp -d) n=0
trap 'rm -rf "$scratch"' EXIT
for requirement in "==2.34.0" ">=2.34,<3"; do
  venv="$scratch/venv$((++n))"
  .venv/bin/python -m venv --without-pip "$venv"
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  # .venv's packages, after this venv's own: what is installed here shadows them.
  echo "import site; site.addsitedir('$base_site')" >"$site/liveparams-base.pth"
  # pip leaves .venv's copies alone ("outside environment") and installs the clients here.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -U \
    "supabase$requirement" "realtime$requirement" 2> >(grep -v -e 'is ignored: it is neither' -e 'outside environment' >&2)
  if [ "$requirement" != "==2.34.0" ] && [ "$(versions "$venv/bin/python")" = "$(versions .venv/bin/python)" ]; then
    say "newest supabase/realtime $(versions .venv/bin/python) are .venv's: tested by the main run"
    continue
  fi
  say "tests/agent on supabase/realtime $(versions "$venv/bin/python")"
  "$venv/bin/python" -m pytest tests/agent "$@"
done
