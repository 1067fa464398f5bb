#!/usr/bin/env bash
# Create .venv and install the locked dependency set (idempotent: a no-op when up to date).
# Installs torch first, then the project's dependencies, both with -c constraints.txt (the lock
# file; refresh it with scripts/lock.sh). Reinstalls when pyproject.toml or constraints.txt is
# newer than the stamp.
# Usage: scripts/setup.sh [test]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extra=""
[ "${1:-}" = "test" ] && extra="[test]"
stamp=".venv/.installed${extra}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  pip=(.venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt)
  # torch first and pinned: resolving it through another package would pull a CUDA build
  "${pip[@]}" "torch==2.13.0"
  "${pip[@]}" -e ".${extra}"
  touch "$stamp"
fi
