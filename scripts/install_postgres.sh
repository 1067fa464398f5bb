#!/usr/bin/env bash
# Debian's PostgreSQL (the `postgresql` package: version 15 on Debian 12) for the tests of
# CART_DATABASE_URL: tests/pg.py starts a throwaway cluster of it on a free loopback port (the
# package's own cluster is not used). The package also creates the `postgres` system user the
# tests run the server as when they run as root (PostgreSQL refuses to run as root).
# No-op when installed; needs root (CI runs as root) or passwordless sudo.
set -euo pipefail
installed() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && id -u postgres >/dev/null 2>&1; }
installed && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null || true
$SUDO apt-get install -y -q --no-install-recommends postgresql >/dev/null
installed
