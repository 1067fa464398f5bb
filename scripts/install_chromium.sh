#!/usr/bin/env bash
# Debian's chromium for the browser tests (Playwright cannot download browsers here), and the
# DejaVu font the ingest tests draw real PDFs with (the corpus has characters beyond Latin-1).
# No-op when both are installed; needs root (CI runs as root) or passwordless sudo.
set -euo pipefail
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
command -v chromium >/dev/null 2>&1 && [ -f "$FONT" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null || true
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
[ -f "$FONT" ]
