#!/usr/bin/env bash
# Debian's chromium for the browser tests (Playwright cannot download browsers here).
# No-op when it is already installed; needs root (CI runs as root) or passwordless sudo.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null || true
$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
