"""Conversations kept in SQLite, so that they survive a page reload and an app restart.

Each turn is stored with the whole answer the server gave (`Answer.to_dict()`: text, citations,
calculator results, notes), so that reopening a conversation shows what was said, with its sources,
rather than asking again; the date field's value is kept so that a restored conversation can be
replayed into the engine (`assistant.sessions`). The answer id is kept so that feedback on an
earlier answer still works after a restart.

Patient data: questions carry names and dates of birth, so the same rules as the feedback store
(`assistant.feedback`): the file is created 0600 (SQLite gives its -wal and -shm files the same
mode), WAL with synchronous=FULL (a saved turn survives a crash), conversations idle for more than
`retention_days` are deleted on start and daily (`start_retention`), and deletion is real
(`secure_delete` overwrites the freed pages, the WAL is checkpointed and truncated). A conversation
is found only by its id *and* its owner, never by the id alone.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

from assistant.core.private_db import connect, create_private, run_daily, truncate_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS conversations_owner ON conversations (owner, updated);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    n INTEGER NOT NULL,
    created TEXT NOT NULL,
    question TEXT NOT NULL,
    dos TEXT,
    answer_json TEXT NOT NULL,
    answer_id TEXT NOT NULL,
    PRIMARY KEY (conversation_id, n)
);
CREATE INDEX IF NOT EXISTS turns_answer_id ON turns (answer_id);
"""
MAX_QUESTION = 4000  # as kept in memory for feedback (assistant.sessions)
TITLE_CHARS = 80


def _stamp(when: dt.datetime | None = None) -> str:
    """UTC, ISO, microseconds: sorts as text, and two turns in one second keep their order."""
    when = when or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def title_of(question: str) -> str:
    """The list shows the first question, on one line, cut at about TITLE_CHARS characters."""
    text = " ".join(question.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


class History:
    """Thread-safe SQLite store of conversations and their turns, by id and owner.

    `owner` is the user name (`assistant.auth.User.name`). One lock serialises every use of the
    file within the process, so a deletion's WAL checkpoint never waits on our own readers."""

    def __init__(self, path: Path, retention_days: int = 30):
        self.path = create_private(path)
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self._timer: threading.Thread | None = None
        with self._lock, closing(connect(self.path)) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    def save_turn(self, conv_id: str, owner: str, question: str, answer: dict, dos: str | None, answer_id: str) -> None:
        """Append one turn; the first turn creates the conversation (titled by its question).
        A conversation id held by another owner is refused (ids are the server's random ones, so
        that is a bug, never something to paper over by writing into someone else's history)."""
        now = _stamp()
        question = question[:MAX_QUESTION]
        body = json.dumps(answer, ensure_ascii=False, default=str)
        with self._lock, closing(connect(self.path)) as db, db:
            row = db.execute("SELECT owner FROM conversations WHERE id = ?", (conv_id,)).fetchone()
            if row is None:
                db.execute("INSERT INTO conversations (id, owner, created, updated, title) VALUES (?, ?, ?, ?, ?)",
                           (conv_id, owner, now, now, title_of(question)))
            elif row[0] != owner:
                raise PermissionError("that conversation id belongs to another owner")
            else:
                db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conv_id))
            n = db.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE conversation_id = ?", (conv_id,)).fetchone()[0]
            db.execute("INSERT INTO turns (conversation_id, n, created, question, dos, answer_json, answer_id) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (conv_id, n, now, question, dos, body, answer_id))

    def list(self, owner: str, limit: int = 50) -> list[dict]:
        """The owner's conversations, most recently used first: {id, title, created, updated, turns}."""
        with self._lock, closing(connect(self.path)) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT c.id, c.title, c.created, c.updated, "
                "(SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS turns "
                "FROM conversations c WHERE c.owner = ? ORDER BY c.updated DESC, c.rowid DESC LIMIT ?",
                (owner, max(0, int(limit))))
            return [dict(r) for r in rows]

    def turns(self, conv_id: str, owner: str) -> list[dict] | None:
        """The conversation's turns in order ({question, dos, answer, answer_id, created}), or None
        when this owner has no conversation by that id (someone else's is told apart from nothing)."""
        with self._lock, closing(connect(self.path)) as db:
            if db.execute("SELECT 1 FROM conversations WHERE id = ? AND owner = ?", (conv_id, owner)).fetchone() is None:
                return None
            rows = db.execute("SELECT question, dos, answer_json, answer_id, created FROM turns "
                              "WHERE conversation_id = ? ORDER BY n", (conv_id,)).fetchall()
        return [{"question": q, "dos": dos, "answer": json.loads(body), "answer_id": aid, "created": created}
                for q, dos, body, aid, created in rows]

    def answer(self, answer_id: str, owner: str) -> tuple[str, dict] | None:
        """(conversation id, {"question", "answer"}) of an answer this owner was given, or None:
        feedback on an answer from before a restart, whose conversation is not in memory."""
        with self._lock, closing(connect(self.path)) as db:
            row = db.execute("SELECT t.conversation_id, t.question, t.answer_json FROM turns t "
                             "JOIN conversations c ON c.id = t.conversation_id "
                             "WHERE t.answer_id = ? AND c.owner = ?", (answer_id, owner)).fetchone()
        if row is None:
            return None
        return row[0], {"question": row[1], "answer": json.loads(row[2])}

    def delete(self, conv_id: str, owner: str) -> bool:
        """Delete the owner's conversation and its turns for good; False if they had none by that id."""
        return self._delete("id = ? AND owner = ?", [conv_id, owner]) > 0

    def purge(self, now: dt.datetime | None = None) -> int:
        """Delete conversations not used for more than `retention_days`; returns how many went."""
        cutoff = _stamp((now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=self.retention_days))
        return self._delete("updated < ?", [cutoff])

    def start_retention(self) -> int:
        """Purge now, then daily on a daemon thread; returns the conversations purged now."""
        purged = self.purge()
        if self._timer is None:
            self._timer = run_daily(self.purge, "cart-history-retention")
        return purged

    def _delete(self, where: str, args: list) -> int:
        with self._lock, closing(connect(self.path)) as db:
            with db:
                ids = [r[0] for r in db.execute(f"SELECT id FROM conversations WHERE {where}", args)]
                for start in range(0, len(ids), 500):  # under SQLite's limit on bound parameters
                    chunk = ids[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    db.execute(f"DELETE FROM turns WHERE conversation_id IN ({marks})", chunk)
                    db.execute(f"DELETE FROM conversations WHERE id IN ({marks})", chunk)
            if ids:
                truncate_wal(db)
            return len(ids)
