"""A throwaway PostgreSQL cluster for the tests: Debian's `postgresql` package (15 on Debian 12),
never a server that happens to run on the machine.

`PgCluster.start()` runs initdb in a fresh temporary directory and starts the server on a free
loopback port (listen_addresses=127.0.0.1, its unix socket inside that directory, so it meets no
other cluster), with password sign-in, so that the URLs the tests hand the app look like a real
`CART_DATABASE_URL`. `stop()` stops it and removes the directory. fsync is off: these clusters
are thrown away, and crash durability is PostgreSQL's own, not something these tests measure.

PostgreSQL refuses to run as root. As root (CI), initdb and pg_ctl run as the `postgres` system
user the Debian package creates, in a directory it owns; the temporary directory is made directly
under the system's temp dir because pytest's own base temp directory (owner-only, 0700) is closed to it.
`scripts/install_postgres.sh` (run by test.sh) installs the package.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.app_server import free_port


def _pg_bin() -> Path:
    """Debian's binaries of the newest PostgreSQL installed (/usr/lib/postgresql/15/bin on Debian 12)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
SYSTEM_USER = "postgres"  # created by Debian's package; the server runs as it when we are root
DB_USER = "cart"


class PgCluster:
    """One initdb'd cluster on 127.0.0.1:<free port>; `url(db)` is a CART_DATABASE_URL for it."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"{PG_BIN}/initdb is missing: the PostgreSQL tests need Debian's postgresql "
                               "package (test.sh installs it with scripts/install_postgres.sh)")
        self.root = Path(tempfile.mkdtemp(prefix="cart-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.password = secrets.token_hex(12)
        self.running = False
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        """A PostgreSQL binary, as the postgres user when we are root; its output in the error."""
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", SYSTEM_USER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace") if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"{args[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{log}")

    def start(self) -> PgCluster:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            shutil.chown(self.root, SYSTEM_USER, SYSTEM_USER)
            shutil.chown(pwfile, SYSTEM_USER, SYSTEM_USER)
        self._run("initdb", "-D", str(self.data), "-U", DB_USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        pwfile.unlink()
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start")
        self.running = True
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{DB_USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL (one per test keeps the tests apart)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def query(self, database: str, sql: str, *args: object) -> list[tuple]:
        """Rows of one statement, straight from the server (what the app really wrote)."""
        import psycopg

        with psycopg.connect(self.url(database)) as conn:
            return conn.execute(sql, args or None).fetchall()

    def stop(self) -> None:
        try:
            if self.running:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
                self.running = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
