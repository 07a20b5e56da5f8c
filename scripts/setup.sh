#!/usr/bin/env bash
# Installs what liveparams needs for its demo and tests on a Debian machine:
# PostgreSQL 15 with wal2json/pgTAP/plpgsql_check (apt), the Supabase CLI and
# supabase-js (npm, pinned by package-lock.json), the web panel's build (esbuild), Debian's chromium
# (the panel's browser test) and a virtualenv in .venv with
# the CPU build of torch and the project (pip). Idempotent: a second run only
# checks. Set LIVEPARAMS_PYTHON to choose the interpreter for the virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=(postgresql-15 postgresql-15-wal2json postgresql-15-pgtap postgresql-15-plpgsql-check
              libtap-parser-sourcehandler-pgtap-perl chromium)
command -v node >/dev/null || apt_packages+=(nodejs)
command -v npm >/dev/null || apt_packages+=(npm)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x node_modules/.bin/supabase ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm: installing the Supabase CLI and supabase-js"
  # `npm ci`: exactly the lock, which it never rewrites. The lock lists the CLI's binaries for
  # every platform (npm installs only this one's); a lock without them makes ci refuse and
  # install add them, leaving the tree dirty.
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -f liveparams/panel-dist/panel.js ] || [ -n "$(find panel package-lock.json -newer liveparams/panel-dist/panel.js -print -quit)" ]; then
  say "npm: building the web panel into liveparams/panel-dist"
  node panel/build.mjs
fi

python=${LIVEPARAMS_PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "python: creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.liveparams-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ stack/pyproject.toml -nt "$stamp" ]; then
  # torch first, pinned: a bare requirement would pull a multi-GB CUDA build.
  say "pip: installing torch (CPU), liveparams[dev] and the local stack (./stack)"
  # (This machine's pip config names local mirrors that may be absent; pip
  # warns once per package about that, which is noise, so it is filtered.)
  pipq() { .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v 'is ignored: it is neither' >&2); }
  # pip >= 25: older resolvers cannot see that ./stack's `liveparams` is the `-e .` beside it.
  pipq -U 'pip>=25'
  pipq torch==2.13.0
  # One command, so that liveparams[dev]'s `liveparams-stack` resolves to ./stack (it is not on PyPI).
  # setuptools' "Editable installation" note (a same-named folder in the working directory could
  # shadow the package) is information only, which tests/test_packaging.py checks: not shown.
  PYTHONWARNINGS='ignore:Editable installation' pipq -e ./stack -e '.[dev]'
  touch "$stamp"
fi
say "ready"
