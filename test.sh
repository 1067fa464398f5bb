#!/usr/bin/env bash
# One command on a fresh machine: set up (with test extras) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh test
scripts/install_chromium.sh   # the browser tests drive Debian's chromium
exec .venv/bin/python -m pytest "$@"
