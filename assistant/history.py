"""Conversations kept in a database, so that they survive a page reload and an app restart, and,
on PostgreSQL, move between app processes.

Each turn is stored with the whole answer the server gave (`Answer.to_dict()`: text, citations,
calculator results, notes), so that reopening a conversation shows what was said, with its sources,
rather than asking again; the date field's value is kept so that a restored conversation can be
replayed into the engine (`assistant.sessions`). The answer id is kept so that feedback on an
earlier answer still works after a restart, or on another process.

Two backends behind this one class, with one table definition and one query of each kind
(SQLAlchemy Core, `assistant.core.private_db`): a SQLite file by default (`CART_HISTORY_DB`), and
PostgreSQL when `url` (`CART_DATABASE_URL`) is given, which several app processes share.

Patient data: questions carry names and dates of birth, so the same rules as the feedback store
(`assistant.feedback`, `assistant.core.private_db`). SQLite: the file is created 0600 (SQLite
gives its -wal and -shm files the same mode), WAL with synchronous=FULL (a saved turn survives a
crash), and deletion is real (`secure_delete` overwrites the freed pages, the WAL is checkpointed
and truncated). PostgreSQL: deletion is a committed DELETE; VACUUM reclaims the space (there is no
`secure_delete`). Both: conversations idle for more than `retention_days` are deleted on start and
daily (`start_retention`). A conversation is found only by its id *and* its owner, never by the id
alone.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import sqlalchemy as sa

from assistant.core.private_db import INTEGRITY_ERRORS, STAMP, PrivateDB, run_daily

METADATA = sa.MetaData()
CONVERSATIONS = sa.Table(
    "conversations", METADATA,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("created", STAMP, nullable=False),
    sa.Column("updated", STAMP, nullable=False),
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Index("conversations_owner", "owner", "updated"),
    sa.Index("conversations_updated", "updated"),
)
TURNS = sa.Table(
    "turns", METADATA,
    sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversations.id"), primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("created", STAMP, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("dos", sa.Text),
    sa.Column("answer_json", sa.Text, nullable=False),
    sa.Column("answer_id", sa.Text, nullable=False),
    sa.Index("turns_answer_id", "answer_id"),
)
MAX_QUESTION = 4000  # as kept in memory for feedback (assistant.sessions)
TITLE_CHARS = 80
DELETE_CHUNK = 500  # ids per DELETE ... IN (...): under SQLite's limit on bound parameters
C, T = CONVERSATIONS.c, TURNS.c


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
    """Thread-safe store of conversations and their turns, by id and owner: the SQLite file `path`,
    or PostgreSQL when `url` is given (then `path` is not used).

    `owner` is the user name (`assistant.auth.User.name`). One lock serialises every use of the
    database within the process, so a deletion's WAL checkpoint never waits on our own readers;
    between processes (PostgreSQL) a turn locks its conversation's row (`SELECT ... FOR UPDATE`)."""

    def __init__(self, path: Path | None, retention_days: int = 30, url: str | None = None):
        self.db = PrivateDB(path, url)
        self.path = self.db.path
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self._timer: threading.Thread | None = None
        with self._lock:
            self.db.create(METADATA)

    @property
    def shared(self) -> bool:
        """True when other app processes write this history too (PostgreSQL): a conversation held
        in memory may have turns this process has not seen (`assistant.sessions` catches up)."""
        return self.db.shared

    def save_turn(self, conv_id: str, owner: str, question: str, answer: dict, dos: str | None, answer_id: str) -> None:
        """Append one turn; the first turn creates the conversation (titled by its question).
        A conversation id held by another owner is refused (ids are the server's random ones, so
        that is a bug, never something to paper over by writing into someone else's history).
        Two processes creating the same conversation at once: the second's INSERT fails on the
        primary key, and its second try finds the conversation and appends to it."""
        now = _stamp()
        question = question[:MAX_QUESTION]
        turn = {"conversation_id": conv_id, "created": now, "question": question, "dos": dos,
                "answer_json": json.dumps(answer, ensure_ascii=False, default=str), "answer_id": answer_id}
        for last_try in (False, True):
            try:
                with self._lock, self.db.begin() as conn:
                    self._append(conn, owner, now, turn)
                return
            except INTEGRITY_ERRORS:
                if last_try:
                    raise

    @staticmethod
    def _append(conn: sa.Connection, owner: str, now: str, turn: dict) -> None:
        conv_id = turn["conversation_id"]
        held = conn.execute(sa.select(C.owner).where(C.id == conv_id).with_for_update()).first()
        if held is None:
            conn.execute(CONVERSATIONS.insert().values(id=conv_id, owner=owner, created=now, updated=now,
                                                       title=title_of(turn["question"])))
        elif held[0] != owner:
            raise PermissionError("that conversation id belongs to another owner")
        else:
            conn.execute(CONVERSATIONS.update().where(C.id == conv_id).values(updated=now))
        n = conn.execute(sa.select(sa.func.coalesce(sa.func.max(T.n), 0) + 1).where(T.conversation_id == conv_id)).scalar_one()
        conn.execute(TURNS.insert().values(n=n, **turn))

    def list(self, owner: str, limit: int = 50) -> list[dict]:
        """The owner's conversations, most recently used first: {id, title, created, updated, turns}."""
        count = sa.select(sa.func.count()).select_from(TURNS).where(T.conversation_id == C.id).scalar_subquery()
        query = (sa.select(C.id, C.title, C.created, C.updated, count.label("turns")).where(C.owner == owner)
                 .order_by(C.updated.desc(), C.created.desc(), C.id.desc()).limit(max(0, int(limit))))
        with self._lock, self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def turns(self, conv_id: str, owner: str, after: int = 0) -> list[dict] | None:
        """The conversation's turns in order ({question, dos, answer, answer_id, created}), or None
        when this owner has no conversation by that id (someone else's is told apart from nothing).
        `after`: only the turns after the first `after` (a process catching up on another's turns)."""
        query = (sa.select(T.question, T.dos, T.answer_json, T.answer_id, T.created)
                 .where(T.conversation_id == conv_id, T.n > after).order_by(T.n))
        with self._lock, self.db.connect() as conn:
            if conn.execute(sa.select(1).where(C.id == conv_id, C.owner == owner)).first() is None:
                return None
            rows = conn.execute(query).all()
        return [{"question": q, "dos": dos, "answer": json.loads(body), "answer_id": aid, "created": created}
                for q, dos, body, aid, created in rows]

    def answer(self, answer_id: str, owner: str) -> tuple[str, dict] | None:
        """(conversation id, {"question", "answer"}) of an answer this owner was given, or None:
        feedback on an answer from before a restart, or given by another process."""
        query = (sa.select(T.conversation_id, T.question, T.answer_json).join(CONVERSATIONS, C.id == T.conversation_id)
                 .where(T.answer_id == answer_id, C.owner == owner))
        with self._lock, self.db.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return row[0], {"question": row[1], "answer": json.loads(row[2])}

    def delete(self, conv_id: str, owner: str) -> bool:
        """Delete the owner's conversation and its turns for good; False if they had none by that id."""
        return self._delete(sa.and_(C.id == conv_id, C.owner == owner)) > 0

    def purge(self, now: dt.datetime | None = None) -> int:
        """Delete conversations not used for more than `retention_days`; returns how many went."""
        cutoff = _stamp((now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=self.retention_days))
        return self._delete(C.updated < cutoff)

    def start_retention(self) -> int:
        """Purge now, then daily on a daemon thread; returns the conversations purged now."""
        purged = self.purge()
        if self._timer is None:
            self._timer = run_daily(self.purge, "cart-history-retention")
        return purged

    def _delete(self, where: sa.ColumnElement[bool]) -> int:
        """The conversations' rows locked first (FOR UPDATE on PostgreSQL), so that another process
        appending a turn meanwhile waits, and then starts the conversation afresh."""
        with self._lock:
            with self.db.begin() as conn:
                ids = list(conn.execute(sa.select(C.id).where(where).with_for_update()).scalars())
                for start in range(0, len(ids), DELETE_CHUNK):
                    chunk = ids[start:start + DELETE_CHUNK]
                    conn.execute(TURNS.delete().where(T.conversation_id.in_(chunk)))
                    conn.execute(CONVERSATIONS.delete().where(C.id.in_(chunk)))
            if ids:
                self.db.deleted()
            return len(ids)
