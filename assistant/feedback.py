"""Feedback on answers (thumbs up/down + optional comment), stored durably in a database.

Each row keeps the question, the answer text and its citations as the server gave them (looked
up by the answer id the server issued, never taken from the client), the whole answer as JSON (its
calculations and notes too, so the Review page shows it as it was shown), the user who rated it,
the reason picked with "Not helpful", and when. Every post is one row: rating the same answer
twice keeps both judgements (the Review queue shows each), and a post is one INSERT committed
once, so with several processes on one PostgreSQL each post lands exactly once.

Two backends behind this one class, with one table definition and one query of each kind
(SQLAlchemy Core, `assistant.core.private_db`): a SQLite file by default (`CART_FEEDBACK_DB`; WAL
journal with synchronous=FULL: a committed row survives a crash or kill of the app), and
PostgreSQL when `url` (`CART_DATABASE_URL`) is given, shared by several app processes.

Patient data: questions carry names and figures. Rows older than CART_RETENTION_DAYS are
deleted on start and daily (`start_retention`), and a row can be deleted by id. SQLite: the file
is created 0600 (SQLite gives its -wal and -shm files the same mode), and deletion is real
(`secure_delete` overwrites the freed pages, and the WAL is checkpointed and truncated).
PostgreSQL: deletion is a committed DELETE; VACUUM reclaims the space (there is no
`secure_delete`: protect the server's disk, WAL archive and backups).

    .venv/bin/python -m assistant.feedback purge          # apply the retention now
    .venv/bin/python -m assistant.feedback delete ID ...  # delete rows by id
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from assistant.core.private_db import DB_ERRORS, STAMP, PrivateDB, run_daily

METADATA = sa.MetaData()
FEEDBACK = sa.Table(
    "feedback", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),  # AUTOINCREMENT on SQLite: an id is never reused
    sa.Column("created", STAMP, nullable=False),
    sa.Column("conversation_id", sa.Text),
    sa.Column("rating", sa.Integer, sa.CheckConstraint("rating IN (-1, 1)"), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("citations", sa.Text, nullable=False, server_default="[]"),
    sa.Column("kind", sa.Text, nullable=False, server_default=""),
    sa.Column("user", sa.Text, nullable=False, server_default=""),
    sa.Column("answer_id", sa.Text, nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("answer_json", sa.Text, nullable=False, server_default="{}"),
    sqlite_autoincrement=True,
)
F = FEEDBACK.c
ADDED_COLUMNS = {"user": "TEXT NOT NULL DEFAULT ''", "answer_id": "TEXT NOT NULL DEFAULT ''",
                 "reason": "TEXT NOT NULL DEFAULT ''", "answer_json": "TEXT NOT NULL DEFAULT '{}'"}
# Why an answer was not helpful: a fixed list, so the Review queue can be sorted and counted by it.
REASONS = {"wrong-code-or-number": "Wrong code or number", "outdated-source": "Outdated source",
           "wrong-document": "Wrong document", "missing-information": "Missing information", "other": "Other"}
ANSWER_KINDS = ("answer", "tool", "clarify", "not_covered", "refusal", "error")  # assistant.answer.AnswerKind
MAX_COMMENT = 2000
MAX_ANSWER_JSON = 400_000


class FeedbackStore:
    """The feedback rows: the SQLite file `path`, or PostgreSQL when `url` is given (then `path`
    is not used)."""

    def __init__(self, path: Path | None, url: str | None = None):
        self.db = PrivateDB(path, url)  # SQLite: owner-only before SQLite opens it; a wider file is narrowed
        self.path = self.db.path
        self._lock = threading.Lock()
        self._timer: threading.Thread | None = None
        self.db.create(METADATA)
        with self.db.begin() as conn:
            have = {c["name"] for c in sa.inspect(conn).get_columns("feedback")}
            for name, decl in ADDED_COLUMNS.items():  # a database from before these columns
                if name not in have:
                    conn.exec_driver_sql(f"ALTER TABLE feedback ADD COLUMN {conn.dialect.identifier_preparer.quote(name)} {decl}")

    def add(self, *, rating: int, question: str, answer: dict, comment: str = "",
            conversation_id: str | None = None, user: str = "", answer_id: str = "", reason: str = "") -> int:
        """Store one judgement; returns its id. `answer` is Answer.to_dict(); `reason` one of REASONS
        (or ''), and only with rating -1: a helpful answer has nothing to put right."""
        if rating not in (-1, 1):
            raise ValueError("rating must be +1 (helpful) or -1 (not helpful)")
        check_reason(reason, rating)
        row = {"created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "conversation_id": conversation_id,
               "rating": rating, "comment": (comment or "")[:MAX_COMMENT], "question": question[:4000],
               "answer": str(answer.get("text", ""))[:20000],
               "citations": json.dumps(answer.get("citations", []), ensure_ascii=False, default=str)[:200000],
               "kind": str(answer.get("kind", ""))[:40], "user": (user or "")[:200], "answer_id": (answer_id or "")[:64],
               "reason": reason or "", "answer_json": _answer_json(answer)}
        with self._lock, self.db.begin() as conn:
            return int(conn.execute(FEEDBACK.insert().values(**row)).inserted_primary_key[0])

    def items(self, rating: int | None = None, kind: str | None = None, since: dt.date | str | None = None,
              until: dt.date | str | None = None, limit: int = 500) -> list[dict]:
        """The Review queue, newest first: rows with rating, answer kind and `created` day (UTC,
        both ends included) as given, each with its whole answer (see `item`)."""
        query = (sa.select(FEEDBACK).where(*_filters(rating, kind, since, until))
                 .order_by(F.created.desc(), F.id.desc()).limit(max(1, min(int(limit), 5000))))
        with self.db.connect() as conn:
            return [_item(dict(r._mapping)) for r in conn.execute(query)]

    def item(self, fid: int) -> dict | None:
        """One row as the Review page shows it, or None when there is no such row (deleted, purged)."""
        with self.db.connect() as conn:
            row = conn.execute(sa.select(FEEDBACK).where(F.id == int(fid))).first()
        return _item(dict(row._mapping)) if row is not None else None

    def all(self) -> list[dict]:
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(FEEDBACK).order_by(F.id))]

    def delete(self, ids: list[int], user: str | None = None) -> int:
        """Delete rows by id (only `user`'s own when given); returns how many went."""
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        where = F.id.in_(ids)
        if user is not None:
            where = sa.and_(where, F.user == user)
        return self._delete(where)

    def purge(self, days: int, now: dt.datetime | None = None) -> int:
        """Delete rows created more than `days` days ago; returns how many went."""
        now = now or dt.datetime.now(dt.UTC)
        cutoff = (now - dt.timedelta(days=days)).isoformat(timespec="seconds")
        return self._delete(F.created < cutoff)

    def _delete(self, where: sa.ColumnElement[bool]) -> int:
        with self._lock:
            with self.db.begin() as conn:
                count = conn.execute(FEEDBACK.delete().where(where)).rowcount
            if count:  # SQLite: the deleted text must not linger in the write-ahead log either
                self.db.deleted()
            return count

    def start_retention(self, days: int) -> int:
        """Purge now, then daily on a daemon thread; returns the rows purged now."""
        purged = self.purge(days)
        if self._timer is None:  # a locked or vanished file, a server that is down: tried again the next day
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


def _filters(rating, kind, since, until) -> list[sa.ColumnElement[bool]]:
    """Conditions for `items`; ValueError names a bad filter. `created` is an ISO timestamp in
    UTC, so whole days compare as text: on or after `since`, before the day after `until`."""
    where: list[sa.ColumnElement[bool]] = []
    if rating is not None:
        if rating not in (-1, 1):
            raise ValueError("rating must be 1 (helpful) or -1 (not helpful)")
        where.append(F.rating == rating)
    if kind:
        if kind not in ANSWER_KINDS:
            raise ValueError(f"kind must be one of {', '.join(ANSWER_KINDS)}, not {str(kind)[:40]!r}")
        where.append(F.kind == kind)
    if since:
        where.append(F.created >= _day(since, "since").isoformat())
    if until:
        where.append(F.created < (_day(until, "until") + dt.timedelta(days=1)).isoformat())
    return where


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
        store = FeedbackStore(cfg.feedback_db, url=cfg.database_url)
        if args.command == "purge":
            print(f"Deleted {store.purge(cfg.retention_days)} rows older than {cfg.retention_days} days.")
        else:
            print(f"Deleted {store.delete(args.ids)} of {len(args.ids)} rows.")
    except DB_ERRORS as exc:
        where = PrivateDB.describe(cfg.feedback_db, cfg.database_url)
        print(f"Cannot open the feedback database {where}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
