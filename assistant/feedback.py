"""Feedback on answers (thumbs up/down + optional comment), stored durably in SQLite.

Each row keeps the question, the answer text and its citations as they were shown, so a
reviewer sees exactly what the user judged. WAL journal with synchronous=FULL: a committed
row survives a crash or kill of the app.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
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
    kind TEXT NOT NULL DEFAULT ''
)
"""
MAX_COMMENT = 2000


class FeedbackStore:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA synchronous=FULL")
        return db

    def add(self, *, rating: int, question: str, answer: dict, comment: str = "",
            conversation_id: str | None = None) -> int:
        """Store one judgement; returns its id. `answer` is Answer.to_dict()."""
        if rating not in (-1, 1):
            raise ValueError("rating must be +1 (helpful) or -1 (not helpful)")
        row = (dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), conversation_id, rating,
               (comment or "")[:MAX_COMMENT], question[:4000], str(answer.get("text", ""))[:20000],
               json.dumps(answer.get("citations", []), ensure_ascii=False, default=str)[:200000],
               str(answer.get("kind", ""))[:40])
        with self._lock, closing(self._connect()) as db, db:
            cur = db.execute("INSERT INTO feedback (created, conversation_id, rating, comment, question, "
                             "answer, citations, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            return int(cur.lastrowid)

    def all(self) -> list[dict]:
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM feedback ORDER BY id")]
