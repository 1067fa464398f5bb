#!/usr/bin/env bash
# One command on a fresh machine: set up (with test extras), lint, and run the whole test suite.
# Extra arguments go to pytest; ./test.sh -m "not slow" is the fast loop.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh test
scripts/install_chromium.sh   # the browser tests drive Debian's chromium
scripts/install_postgres.sh   # the CART_DATABASE_URL tests start a throwaway cluster of Debian's PostgreSQL
.venv/bin/ruff check .        # lint first: with set -e a lint error fails the test command
exec .venv/bin/python -m pytest "$@"
