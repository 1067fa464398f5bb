"""Feedback on answers (thumbs up/down + optional comment), stored durably in SQLite.

Each row keeps the question, the answer text and its citations as the server gave them (looked
up by the answer id the server issued, never taken from the client), the user who rated it, and
when. WAL journal with synchronous=FULL: a committed row survives a crash or kill of the app.

Patient data: questions carry names and figures, so the file is created 0600 (SQLite gives its
-wal and -shm files the same mode), rows older than CART_RETENTION_DAYS are deleted on start and
daily (`start_retention`), and a row can be deleted by id; deletion is real (`secure_delete`
overwrites the freed pages, and the WAL is checkpointed and truncated).

    .venv/bin/python -m assistant.feedback purge          # apply the retention now
    .venv/bin/python -m assistant.feedback delete ID ...  # delete rows by id
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    conversation_id TEXT,
    rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL DEFAULT '[]',
    kind TEXT NOT NULL DEFAULT '',
    user TEXT NOT NULL DEFAULT '',
    answer_id TEXT NOT NULL DEFAULT ''
)
"""
ADDED_COLUMNS = {"user": "TEXT NOT NULL DEFAULT ''", "answer_id": "TEXT NOT NULL DEFAULT ''"}
MAX_COMMENT = 2000
DAY_S = 24 * 3600


class FeedbackStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # created owner-only before SQLite opens it; an older, wider file is narrowed
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(self.path, 0o600)
        self._lock = threading.Lock()
        self._timer: threading.Thread | None = None
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
            have = {r[1] for r in db.execute("PRAGMA table_info(feedback)")}
            for name, decl in ADDED_COLUMNS.items():  # a database from before these columns
                if name not in have:
                    db.execute(f"ALTER TABLE feedback ADD COLUMN {name} {decl}")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA secure_delete=ON")
        return db

    def add(self, *, rating: int, question: str, answer: dict, comment: str = "",
            conversation_id: str | None = None, user: str = "", answer_id: str = "") -> int:
        """Store one judgement; returns its id. `answer` is Answer.to_dict()."""
        if rating not in (-1, 1):
            raise ValueError("rating must be +1 (helpful) or -1 (not helpful)")
        row = (dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), conversation_id, rating,
               (comment or "")[:MAX_COMMENT], question[:4000], str(answer.get("text", ""))[:20000],
               json.dumps(answer.get("citations", []), ensure_ascii=False, default=str)[:200000],
               str(answer.get("kind", ""))[:40], (user or "")[:200], (answer_id or "")[:64])
        with self._lock, closing(self._connect()) as db, db:
            cur = db.execute("INSERT INTO feedback (created, conversation_id, rating, comment, question, "
                             "answer, citations, kind, user, answer_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            return int(cur.lastrowid)

    def all(self) -> list[dict]:
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM feedback ORDER BY id")]

    def delete(self, ids: list[int], user: str | None = None) -> int:
        """Delete rows by id (only `user`'s own when given); returns how many went."""
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        where, args = f"id IN ({marks})", list(ids)
        if user is not None:
            where, args = where + " AND user = ?", [*args, user]
        return self._delete(where, args)

    def purge(self, days: int, now: dt.datetime | None = None) -> int:
        """Delete rows created more than `days` days ago; returns how many went."""
        now = now or dt.datetime.now(dt.UTC)
        cutoff = (now - dt.timedelta(days=days)).isoformat(timespec="seconds")
        return self._delete("created < ?", [cutoff])

    def _delete(self, where: str, args: list) -> int:
        with self._lock, closing(self._connect()) as db:
            with db:
                count = db.execute(f"DELETE FROM feedback WHERE {where}", args).rowcount
            if count:  # the deleted text must not linger in the write-ahead log either
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return count

    def start_retention(self, days: int) -> int:
        """Purge now, then daily on a daemon thread; returns the rows purged now."""
        purged = self.purge(days)
        if self._timer is None:
            def loop() -> None:
                while True:
                    time.sleep(DAY_S)
                    try:
                        self.purge(days)
                    except sqlite3.Error:  # a locked or vanished file: try again tomorrow
                        pass
            self._timer = threading.Thread(target=loop, name="cart-retention", daemon=True)
            self._timer.start()
        return purged


def main(argv: list[str] | None = None) -> int:
    from assistant import config

    parser = argparse.ArgumentParser(prog="python -m assistant.feedback", description="Feedback retention and deletion.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("purge", help="delete rows older than CART_RETENTION_DAYS")
    delete = sub.add_parser("delete", help="delete rows by id")
    delete.add_argument("ids", nargs="+", type=int)
    args = parser.parse_args(argv)
    cfg = config.load()
    try:
        store = FeedbackStore(cfg.feedback_db)
        if args.command == "purge":
            print(f"Deleted {store.purge(cfg.retention_days)} rows older than {cfg.retention_days} days.")
        else:
            print(f"Deleted {store.delete(args.ids)} of {len(args.ids)} rows.")
    except (OSError, sqlite3.Error) as exc:
        print(f"Cannot open the feedback database {cfg.feedback_db}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
