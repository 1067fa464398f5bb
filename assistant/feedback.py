"""Feedback on answers (thumbs up/down + optional comment), stored durably in SQLite.

Each row keeps the question, the answer text and its citations as the server gave them (looked
up by the answer id the server issued, never taken from the client), the whole answer as JSON (its
calculations and notes too, so the Review page shows it as it was shown), the user who rated it,
the reason picked with "Not helpful", and when. WAL journal with synchronous=FULL: a committed
row survives a crash or kill of the app.

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
import sqlite3
import sys
import threading
from contextlib import closing
from pathlib import Path

from assistant.core.private_db import connect, create_private, run_daily, truncate_wal

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
ADDED_COLUMNS = {"user": "TEXT NOT NULL DEFAULT ''", "answer_id": "TEXT NOT NULL DEFAULT ''",
                 "reason": "TEXT NOT NULL DEFAULT ''", "answer_json": "TEXT NOT NULL DEFAULT '{}'"}
# Why an answer was not helpful: a fixed list, so the Review queue can be sorted and counted by it.
REASONS = {"wrong-code-or-number": "Wrong code or number", "outdated-source": "Outdated source",
           "wrong-document": "Wrong document", "missing-information": "Missing information", "other": "Other"}
ANSWER_KINDS = ("answer", "tool", "clarify", "not_covered", "refusal", "error")  # assistant.answer.AnswerKind
MAX_COMMENT = 2000
MAX_ANSWER_JSON = 400_000


class FeedbackStore:
    def __init__(self, path: Path):
        self.path = create_private(path)  # owner-only before SQLite opens it; a wider file is narrowed
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
        return connect(self.path)

    def add(self, *, rating: int, question: str, answer: dict, comment: str = "",
            conversation_id: str | None = None, user: str = "", answer_id: str = "", reason: str = "") -> int:
        """Store one judgement; returns its id. `answer` is Answer.to_dict(); `reason` one of REASONS
        (or ''), and only with rating -1: a helpful answer has nothing to put right."""
        if rating not in (-1, 1):
            raise ValueError("rating must be +1 (helpful) or -1 (not helpful)")
        check_reason(reason, rating)
        row = (dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), conversation_id, rating,
               (comment or "")[:MAX_COMMENT], question[:4000], str(answer.get("text", ""))[:20000],
               json.dumps(answer.get("citations", []), ensure_ascii=False, default=str)[:200000],
               str(answer.get("kind", ""))[:40], (user or "")[:200], (answer_id or "")[:64], reason or "",
               _answer_json(answer))
        with self._lock, closing(self._connect()) as db, db:
            cur = db.execute("INSERT INTO feedback (created, conversation_id, rating, comment, question, answer, "
                             "citations, kind, user, answer_id, reason, answer_json) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            return int(cur.lastrowid)

    def items(self, rating: int | None = None, kind: str | None = None, since: dt.date | str | None = None,
              until: dt.date | str | None = None, limit: int = 500) -> list[dict]:
        """The Review queue, newest first: rows with rating, answer kind and `created` day (UTC,
        both ends included) as given, each with its whole answer (see `item`)."""
        where, args = _filters(rating, kind, since, until)
        sql = f"SELECT * FROM feedback{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY created DESC, id DESC LIMIT ?"
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            return [_item(dict(r)) for r in db.execute(sql, [*args, max(1, min(int(limit), 5000))])]

    def item(self, fid: int) -> dict | None:
        """One row as the Review page shows it, or None when there is no such row (deleted, purged)."""
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM feedback WHERE id = ?", (int(fid),)).fetchone()
        return _item(dict(row)) if row is not None else None

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
                truncate_wal(db)
            return count

    def start_retention(self, days: int) -> int:
        """Purge now, then daily on a daemon thread; returns the rows purged now."""
        purged = self.purge(days)
        if self._timer is None:  # a locked or vanished file: tried again the next day
            self._timer = run_daily(lambda: self.purge(days), "cart-retention")
        return purged


def check_reason(reason: str, rating: int) -> None:
    """ValueError for a reason not in REASONS, or any reason given with a helpful rating."""
    if reason and reason not in REASONS:
        raise ValueError(f"reason must be one of {', '.join(REASONS)} (or left out), not {str(reason)[:40]!r}")
    if reason and rating != -1:
        raise ValueError("a reason goes only with rating -1 (not helpful)")


def _answer_json(answer: dict) -> str:
    """The whole answer as JSON; when huge, without the turn's understood context, and at worst '{}'
    (the answer text and citations are in their own columns anyway): never cut into invalid JSON."""
    for data in (answer, {k: v for k, v in answer.items() if k != "context"}):
        text = json.dumps(data, ensure_ascii=False, default=str)
        if len(text) <= MAX_ANSWER_JSON:
            return text
    return "{}"


def _day(value: dt.date | str, name: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{name} must be a date like 2026-12-01, not {str(value)[:40]!r}") from None


def _filters(rating, kind, since, until) -> tuple[list[str], list]:
    """SQL conditions for `items`; ValueError names a bad filter. `created` is an ISO timestamp in
    UTC, so whole days compare as text: on or after `since`, before the day after `until`."""
    where, args = [], []
    if rating is not None:
        if rating not in (-1, 1):
            raise ValueError("rating must be 1 (helpful) or -1 (not helpful)")
        where, args = ["rating = ?"], [rating]
    if kind:
        if kind not in ANSWER_KINDS:
            raise ValueError(f"kind must be one of {', '.join(ANSWER_KINDS)}, not {str(kind)[:40]!r}")
        where, args = [*where, "kind = ?"], [*args, kind]
    if since:
        where, args = [*where, "created >= ?"], [*args, _day(since, "since").isoformat()]
    if until:
        where, args = [*where, "created < ?"], [*args, (_day(until, "until") + dt.timedelta(days=1)).isoformat()]
    return where, args


def _item(row: dict) -> dict:
    """A row with its answer as a dict; a row from before answer_json gets one from its own columns."""
    try:
        answer = json.loads(row.pop("answer_json", "") or "{}")
    except ValueError:
        answer = {}
    try:
        citations = json.loads(row.get("citations") or "[]")
    except ValueError:
        citations = []
    if not isinstance(answer, dict) or not answer:
        answer = {"text": row.get("answer", ""), "kind": row.get("kind", ""), "citations": citations}
    answer.setdefault("tool_calls", [])
    answer.setdefault("notes", [])
    row["citations"], row["answer"] = citations, answer
    row["reason_label"] = REASONS.get(row.get("reason", ""), "")
    return row


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
