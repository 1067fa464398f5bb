#!/usr/bin/env bash
# One command on a fresh machine: set up, build the index if needed, start the assistant.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
.venv/bin/python -m index build --quiet
exec .venv/bin/python app.py "$@"
