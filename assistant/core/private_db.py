"""SQLite files that hold patient data (the feedback store, the conversation history): created
owner-only, committed durably, deleted for real, and purged on a daily timer. One definition of
those rules for both stores.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

DAY_S = 24 * 3600


def create_private(path: Path) -> Path:
    """Create the database file owner-only before SQLite opens it (SQLite copies its mode to the
    -wal and -shm files); an older, wider file is narrowed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    return path


def connect(path: Path) -> sqlite3.Connection:
    """A connection that commits durably and overwrites what it deletes."""
    db = sqlite3.connect(path, timeout=10)
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA secure_delete=ON")
    return db


def truncate_wal(db: sqlite3.Connection) -> None:
    """Copy the WAL into the database and empty it: deleted text must not linger in old frames."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def run_daily(job: Callable[[], object], name: str) -> threading.Thread:
    """Run `job` every day on a daemon thread (it does not keep the app alive); a failed run (a
    locked or vanished file) is tried again the next day."""
    def loop() -> None:
        while True:
            time.sleep(DAY_S)
            try:
                job()
            except sqlite3.Error:
                pass
    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread
