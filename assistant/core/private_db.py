"""Databases that hold patient data (the feedback store, the conversation history): one definition
of their rules for both stores and both backends.

- SQLite (the default; one file per store, one app process): the file is created owner-only
  before SQLite opens it (SQLite gives its -wal and -shm files the same mode), WAL with
  synchronous=FULL (a committed row survives a crash), `secure_delete` (freed pages are
  overwritten) and, after a deletion, the WAL checkpointed and truncated (`PrivateDB.deleted`), so that
  deleted text lingers neither in the file nor in old WAL frames.
- PostgreSQL (`CART_DATABASE_URL`; shared by several app processes): durability is the server's
  (a COMMIT returns once its WAL is flushed, with PostgreSQL's default `synchronous_commit=on`),
  and real deletion is a committed DELETE: the rows are gone for every reader at once. Their dead
  tuples stay in the table's pages until VACUUM (autovacuum) reclaims the space, and in the
  server's WAL and backups until those are recycled: PostgreSQL has nothing like `secure_delete`,
  so the server's disk, WAL archive and backups need the same protection as the data itself.

Both backends go through SQLAlchemy Core with one table definition and one query of each kind
(`PrivateDB`); errors reach the callers as the driver's own (`sqlite3.Error`, `psycopg.Error`,
both in `DB_ERRORS`), never with the statement's parameters (patient data) in the message.
Retention runs on a daily timer (`run_daily`) in each process; with several processes on one
PostgreSQL each purges, which is harmless (a purge is an idempotent DELETE).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

DAY_S = 24 * 3600
DB_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, psycopg.Error, SQLAlchemyError, OSError)
INTEGRITY_ERRORS: tuple[type[BaseException], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)
SCHEMA_LOCK = 0x43415254  # "CART": PostgreSQL advisory lock held while a process creates the tables
# UTC ISO timestamps are stored as text and compared as text: bytewise on PostgreSQL too, whatever
# the database's collation (SQLite's default already is)
STAMP = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def create_private(path: Path) -> Path:
    """Create the database file owner-only before SQLite opens it (SQLite copies its mode to the
    -wal and -shm files); an older, wider file is narrowed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    return path


def _sqlite_pragmas(db: sqlite3.Connection, _record: object = None) -> None:
    """Every SQLite connection commits durably and overwrites what it deletes."""
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA secure_delete=ON")


def postgres_url(url: str) -> URL:
    """CART_DATABASE_URL (postgres:// or postgresql://, any driver named) for psycopg 3, the driver installed."""
    return make_url(url).set(drivername="postgresql+psycopg")


@functools.cache
def _postgres_engine(url: str) -> Engine:
    """One connection pool per URL and process, shared by the history and the feedback store.
    pre_ping: a connection the server dropped (restart, failover) is replaced, not handed out."""
    return sa.create_engine(postgres_url(url), pool_size=4, max_overflow=8, pool_pre_ping=True, hide_parameters=True,
                            connect_args={"connect_timeout": 10, "application_name": "cart-billing-assistant"})


@contextmanager
def _driver_errors() -> Iterator[None]:
    """SQLAlchemy's wrapper off: callers see the driver's error, as with sqlite3 alone."""
    try:
        yield
    except DBAPIError as exc:
        if isinstance(exc.orig, sqlite3.Error | psycopg.Error):
            raise exc.orig from None
        raise


class PrivateDB:
    """One store's database: the SQLite file `path`, or PostgreSQL when `url` is given.

    `create(metadata)` makes the tables (idempotent; on PostgreSQL under an advisory lock, so two
    processes starting at once do not both create them). `begin()` is a transaction, `connect()`
    a connection for reads; `deleted()` is called after a committed deletion."""

    def __init__(self, path: Path | None = None, url: str | None = None):
        if url:
            self.path: Path | None = None
            self.engine = _postgres_engine(url)
        else:
            if path is None:
                raise ValueError("a SQLite store needs a path")
            self.path = create_private(path)  # owner-only before SQLite opens it; a wider file is narrowed
            # connections kept open and reused: opening one (and its pragmas) per use cost two thirds
            # of a saved turn (2.9 ms against 1.0 ms a turn, `benchmarks/bench_history.py`); the stores'
            # lock serialises use within the process, so one connection is the steady state
            self.engine = sa.create_engine(URL.create("sqlite", database=str(self.path)), poolclass=QueuePool,
                                           pool_size=1, max_overflow=4, connect_args={"timeout": 10},
                                           hide_parameters=True)
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine, "connect", self._remember_file)
            sa.event.listen(self.engine, "checkout", self._same_file)
        self.where = self.describe(path, url)
        self.sqlite = self.engine.dialect.name == "sqlite"

    def _file_id(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None

    def _remember_file(self, _db: sqlite3.Connection, record: object) -> None:
        record.info["file"] = self._file_id()  # type: ignore[attr-defined]

    def _same_file(self, _db: sqlite3.Connection, record: object, _proxy: object) -> None:
        """A kept connection to a file that was since deleted or replaced would read and write the
        old file unseen (turns saved to it are lost): it is dropped, and a new one opens the path."""
        if record.info.get("file") != self._file_id():  # type: ignore[attr-defined]
            raise DisconnectionError()

    @staticmethod
    def describe(path: Path | None, url: str | None) -> str:
        """Where a store lives, for a message: the file, or the URL without its password."""
        return postgres_url(url).render_as_string(hide_password=True) if url else str(path)

    @property
    def shared(self) -> bool:
        """True when other processes may write the same rows (PostgreSQL)."""
        return not self.sqlite

    def create(self, metadata: sa.MetaData) -> None:
        with self.begin() as conn:
            if self.sqlite:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            else:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            metadata.create_all(conn)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with _driver_errors(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _driver_errors(), self.engine.connect() as conn:
            yield conn

    def deleted(self) -> None:
        """After a committed deletion: SQLite's WAL truncated (secure_delete already overwrote the
        pages). PostgreSQL: nothing to do here; the committed DELETE is the deletion, and VACUUM
        reclaims the space."""
        if self.sqlite:
            with self.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def run_daily(job: Callable[[], object], name: str) -> threading.Thread:
    """Run `job` every day on a daemon thread (it does not keep the app alive); a failed run (a
    locked or vanished file, a database server that is down) is tried again the next day."""
    def loop() -> None:
        while True:
            time.sleep(DAY_S)
            try:
                job()
            except DB_ERRORS:
                pass
    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread
