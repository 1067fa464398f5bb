"""Several app processes behind one address (CART_DATABASE_URL): the conversation history and the
feedback store keep one contract on both backends (SQLite files, a real PostgreSQL), a
conversation moves between processes with its context, and feedback posted on each process lands
exactly once.

The PostgreSQL is a throwaway cluster of Debian's package (`tests/pg.py`), on a free loopback port.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid

import psycopg
import pytest

from app_server import AppServer, app_env, request
from assistant.core.private_db import INTEGRITY_ERRORS
from assistant.engine import Conversation
from assistant.feedback import FeedbackStore
from assistant.history import History
from assistant.sessions import Conversations
from tests.pg import PgCluster

PATIENT = "Zebulon Quarrington"
ANSWER = {"text": "**Q2055** is the HCPCS code for Abecma [1].", "kind": "answer",
          "citations": [{"marker": 1, "doc_id": "abecma-billing-guide", "quote": "Q2055 Idecabtagene vicleucel",
                         "span": [10, 38], "title": "Abecma billing guide", "section": "Coding"}]}


@pytest.fixture(scope="module")
def pg():
    cluster = PgCluster().start()
    yield cluster
    cluster.stop()


class Backend:
    """One test's database on one backend; every store made from it shares that database, as two
    app processes (or a restarted one) would."""

    def __init__(self, name: str, tmp_path, pg: PgCluster | None):
        self.name, self.pg = name, pg
        self.dbname = f"t_{uuid.uuid4().hex[:12]}"
        self.url = pg.create_database(self.dbname) if pg is not None else None
        self.dir = tmp_path

    def history(self, retention_days: int = 30) -> History:
        return History(self.dir / "conversations.sqlite3", retention_days, url=self.url)

    def feedback(self) -> FeedbackStore:
        return FeedbackStore(self.dir / "feedback.sqlite3", url=self.url)

    def contains(self, table: str, text: str) -> bool:
        """Whether any row of `table` holds `text`, read by a connection of its own (not the store's)."""
        if self.pg is None:
            import sqlite3
            from contextlib import closing

            path = self.dir / ("feedback.sqlite3" if table == "feedback" else "conversations.sqlite3")
            with closing(sqlite3.connect(path)) as db:
                rows = db.execute(f"SELECT * FROM {table}").fetchall()
        else:
            rows = self.pg.query(self.dbname, f"SELECT * FROM {table}")
        return any(text in str(value) for row in rows for value in row)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path) -> Backend:
    pg = request.getfixturevalue("pg") if request.param == "postgresql" else None
    return Backend(request.param, tmp_path, pg)


# --- the History contract, on both backends ---------------------------------------------------------

def test_history_round_trip_seen_by_another_store(backend):
    history = backend.history()
    history.save_turn("c1", "alice", "What is the HCPCS code for Abecma?", ANSWER, None, "a1")
    history.save_turn("c1", "alice", "and for carvykti?", ANSWER | {"text": "Q2056"}, "03/02/2026", "a2")
    history.save_turn("c2", "alice", "Q2055 payment limit", ANSWER, None, "a3")
    other = backend.history()  # another process, or the app restarted
    assert other.shared is (backend.name == "postgresql")
    turns = other.turns("c1", "alice")
    assert [(t["question"], t["dos"], t["answer_id"], t["answer"]["text"]) for t in turns] == [
        ("What is the HCPCS code for Abecma?", None, "a1", ANSWER["text"]), ("and for carvykti?", "03/02/2026", "a2", "Q2056")]
    assert turns[0]["answer"] == ANSWER and turns[0]["created"] < turns[1]["created"]
    assert [t["answer_id"] for t in other.turns("c1", "alice", after=1)] == ["a2"] and other.turns("c1", "alice", after=2) == []
    listed = other.list("alice")
    assert [(c["id"], c["title"], c["turns"]) for c in listed] == [("c2", "Q2055 payment limit", 1),
                                                                    ("c1", "What is the HCPCS code for Abecma?", 2)]
    assert listed[1]["created"] == turns[0]["created"] and listed[1]["updated"] == turns[1]["created"]
    assert [c["id"] for c in other.list("alice", limit=1)] == ["c2"]
    assert other.answer("a2", "alice") == ("c1", {"question": "and for carvykti?", "answer": turns[1]["answer"]})


def test_history_is_owner_bound(backend):
    history = backend.history()
    history.save_turn("c1", "alice", f"Pt {PATIENT} carvykti?", ANSWER, None, "a1")
    assert history.turns("c1", "mallory") is None and history.turns("nope", "alice") is None
    assert history.list("mallory") == [] and history.answer("a1", "mallory") is None
    assert history.delete("c1", "mallory") is False
    with pytest.raises(PermissionError):
        backend.history().save_turn("c1", "mallory", "q", ANSWER, None, "a2")
    assert len(history.turns("c1", "alice")) == 1


def test_history_deletion_is_committed_for_every_reader(backend):
    history = backend.history()
    history.save_turn("c1", "alice", f"Pt {PATIENT} DOB 1/2/1950 carvykti?", ANSWER, None, "a1")
    history.save_turn("c2", "alice", "Q2055 payment limit", ANSWER, None, "a2")
    assert backend.contains("turns", PATIENT)
    assert backend.history().delete("c1", "alice") is True and history.delete("c1", "alice") is False
    assert history.turns("c1", "alice") is None and history.answer("a1", "alice") is None
    assert [c["id"] for c in history.list("alice")] == ["c2"]
    assert not backend.contains("turns", PATIENT) and not backend.contains("conversations", PATIENT)


def test_history_retention(backend):
    history = backend.history(retention_days=30)
    history.save_turn("c1", "alice", f"Pt {PATIENT}", ANSWER, None, "a1")
    history.save_turn("c2", "bob", "recent", ANSWER, None, "a2")
    now = dt.datetime.now(dt.UTC)
    assert history.purge(now=now + dt.timedelta(days=29)) == 0
    assert history.start_retention() == 0 and history._timer.daemon
    assert backend.history(retention_days=7).purge(now=now + dt.timedelta(days=8)) == 2
    assert history.list("alice") == [] and history.list("bob") == [] and history.answer("a1", "alice") is None
    assert not backend.contains("turns", PATIENT)


def test_two_stores_append_to_one_conversation_without_loss(backend):
    """Two processes' stores (separate locks, separate connections) numbering turns of one new
    conversation at once: on PostgreSQL the row lock and the retry on the primary key keep them apart."""
    stores = [backend.history(), backend.history()]
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for j in range(8):
                stores[i % 2].save_turn("c1", "alice", f"q{i}-{j}", ANSWER, None, f"a{i}-{j}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    turns = stores[0].turns("c1", "alice")
    assert len(turns) == 48 and len({t["answer_id"] for t in turns}) == 48
    assert [c["turns"] for c in stores[1].list("alice")] == [48]


# --- the FeedbackStore contract, on both backends ---------------------------------------------------

def test_feedback_round_trip_and_filters(backend):
    store = backend.feedback()
    first = store.add(rating=1, question="What is the HCPCS code for Abecma?", answer=ANSWER, comment="exactly",
                      conversation_id="c1", user="alice", answer_id="a1")
    second = store.add(rating=-1, question="Q2055 payment limit?", answer={"text": "…", "kind": "not_covered"},
                       user="bob", answer_id="a2", reason="outdated-source")
    assert second > first
    rows = backend.feedback().all()  # another process sees the same rows
    assert [r["id"] for r in rows] == [first, second]
    r = rows[0]
    assert (r["rating"], r["question"], r["comment"], r["conversation_id"], r["kind"], r["user"], r["answer_id"]) == (
        1, "What is the HCPCS code for Abecma?", "exactly", "c1", "answer", "alice", "a1")
    assert json.loads(r["citations"]) == ANSWER["citations"] and r["created"].endswith("+00:00")
    assert [i["id"] for i in store.items()] == [second, first]
    assert [i["id"] for i in store.items(rating=-1)] == [second] and [i["id"] for i in store.items(kind="answer")] == [first]
    today = dt.datetime.now(dt.UTC).date()
    assert len(store.items(since=today, until=today)) == 2 and store.items(since=today + dt.timedelta(days=1)) == []
    assert store.item(second)["reason_label"] == "Outdated source" and store.item(first)["answer"]["citations"] == ANSWER["citations"]
    assert store.item(second + 100) is None


def test_feedback_delete_purge_and_constraints(backend):
    store = backend.feedback()
    kept = store.add(rating=1, question="q1", answer=ANSWER, user="alice")
    gone = store.add(rating=-1, question=f"Pt {PATIENT} q2", answer=ANSWER, user="bob")
    assert store.delete([gone], user="alice") == 0  # only bob's own when a user is given
    assert backend.contains("feedback", PATIENT)
    assert backend.feedback().delete([gone, 12345]) == 1 and store.item(gone) is None
    assert not backend.contains("feedback", PATIENT)
    assert store.purge(30) == 0 and store.purge(30, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=31)) == 1
    assert store.item(kept) is None and store.all() == []
    assert store.start_retention(30) == 0 and store._timer.daemon
    with pytest.raises(INTEGRITY_ERRORS), store.db.begin() as conn:  # the database itself refuses a bad rating
        conn.exec_driver_sql("INSERT INTO feedback (created, rating, question, answer) VALUES ('x', 3, 'q', 'a')")
    with pytest.raises(ValueError, match="rating"):
        store.add(rating=2, question="q", answer=ANSWER)


def test_feedback_from_two_stores_lands_once_each(backend):
    """Two processes posting at once: one row per post, none lost, none doubled; the same answer
    rated twice is two judgements, as it always was."""
    stores = [backend.feedback(), backend.feedback()]
    ids: list[int] = []

    def post(i: int) -> None:
        for j in range(10):
            ids.append(stores[i % 2].add(rating=1, question=f"q{i}-{j}", answer=ANSWER, answer_id=f"a{i}-{j}"))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stores[0].add(rating=-1, question="q0-0", answer=ANSWER, answer_id="a0-0")
    rows = stores[1].all()
    assert len(rows) == 41 and len(set(ids)) == 40 and set(ids) < {r["id"] for r in rows}
    assert sorted(r["answer_id"] for r in rows) == sorted([f"a{i}-{j}" for i in range(4) for j in range(10)] + ["a0-0"])


def test_postgres_errors_are_the_drivers_and_keep_the_password_out(pg):
    url = pg.url().replace(f":{pg.port}/", f":{pg.port + 1 if pg.port < 65535 else pg.port - 1}/")  # nothing listens there
    with pytest.raises(psycopg.OperationalError) as caught:
        History(None, url=url)
    assert pg.password not in str(caught.value)
    with pytest.raises(psycopg.OperationalError):
        FeedbackStore(None, url=url)


# --- a conversation moving between processes, in the sessions layer --------------------------------

def test_a_conversation_continues_on_another_process_and_back(pg, engine):
    """Two processes' conversation stores on one PostgreSQL history: process 2 rebuilds the
    conversation from its stored turns; process 1, which still holds it in memory, catches up on
    process 2's turn before answering the next follow-up; a deletion on one reaches the other."""
    url = pg.create_database(f"t_{uuid.uuid4().hex[:12]}")

    def process() -> Conversations:
        return Conversations(limit=100, ttl=600, per_owner=10, history=History(None, url=url),
                             replay=lambda q, conv, dos: engine.ask(q, conv, dos=dos))

    one, two = process(), process()
    conv, _ = one.open(None, "alice")
    first = one.remember(conv, "Q2055 payment limit Q1 2026", engine.ask("Q2055 payment limit Q1 2026", conv).to_dict())

    there, expired = two.open(conv.id, "alice")
    assert there.id == conv.id and there is not conv and not expired
    follow = engine.ask("and for carvykti?", there)
    assert follow.text.startswith("**Q2056 payment limit (2026Q1)") and follow.context["products"] == ["carvykti"]
    second = two.remember(there, "and for carvykti?", follow.to_dict())
    assert two.answer(first, "alice")[0] == conv.id  # an answer process 1 gave, rated on process 2

    back, expired = one.open(conv.id, "alice")
    assert back is conv and not expired
    later = engine.ask("and in Q2 2026?", back)  # carvykti comes from process 2's turn
    assert later.text.startswith("**Q2056 payment limit (2026Q2") and later.context["products"] == ["carvykti"]
    third = one.remember(back, "and in Q2 2026?", later.to_dict())
    assert one.answer(second, "alice")[0] == conv.id
    assert [t["answer_id"] for t in two.transcript(conv.id, "alice")] == [first, second, third]
    assert one.open(conv.id, "alice") == (conv, False)  # nothing new: no replay, same conversation

    assert two.delete(conv.id, "alice") is True
    fresh, expired = one.open(conv.id, "alice")  # deleted on process 2: gone from process 1 too
    assert fresh.id != conv.id and expired and one.answer(first, "alice") is None
    # without the catch-up process 1 would have answered for Abecma
    alone = Conversation()
    engine.ask("Q2055 payment limit Q1 2026", alone)
    assert engine.ask("and in Q2 2026?", alone).text.startswith("**Q2055 payment limit (2026Q2")


# --- two real app processes ---------------------------------------------------------------------------

def _ask(server: AppServer, question: str, conversation_id: str | None = None) -> dict:
    body = {"question": question} | ({"conversation_id": conversation_id} if conversation_id else {})
    status, _, raw = request("POST", server.url + "/api/ask", body, timeout=120)
    assert status == 200, raw
    return json.loads(raw)


def _rate(server: AppServer, answer_id: str, rating: int, comment: str) -> int:
    status, _, raw = request("POST", server.url + "/api/feedback", {"answer_id": answer_id, "rating": rating, "comment": comment})
    assert status == 200, raw
    return json.loads(raw)["id"]


@pytest.fixture(scope="module")
def two_apps(index_env, tmp_path_factory, pg):
    """app.py twice, on two ports, one index, one PostgreSQL (and SQLite paths nobody may use)."""
    dbname = f"apps_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(dbname)
    servers = []
    for n in (1, 2):
        data = tmp_path_factory.mktemp(f"process-{n}")
        servers.append(AppServer(app_env(index_env, data, CART_DATABASE_URL=url)))
        servers[-1].data_dir = data
    try:
        for server in servers:
            server.start()
        yield servers, dbname
    finally:
        for server in servers:
            server.close()


@pytest.mark.slow
def test_two_app_processes_share_conversations_and_feedback(two_apps, pg):
    (one, two), dbname = two_apps
    first = _ask(one, "Q2055 payment limit Q1 2026")
    conv_id = first["conversation_id"]
    assert first["answer"]["text"].startswith("**Q2055 payment limit (2026Q1)")
    follow = _ask(two, "and for carvykti?", conv_id)  # process 2 never saw this conversation
    assert follow["conversation_id"] == conv_id and not follow["expired"]
    assert follow["answer"]["text"].startswith("**Q2056 payment limit (2026Q1)"), follow["answer"]["text"]
    later = _ask(one, "and in Q2 2026?", conv_id)  # back on process 1: it catches up on process 2's turn
    assert later["conversation_id"] == conv_id and later["answer"]["text"].startswith("**Q2056 payment limit (2026Q2")

    status, _, raw = request("GET", two.url + f"/api/conversations/{conv_id}/export.md")
    assert status == 200
    text = raw.decode()
    assert [text.index(q) for q in ("Q2055 payment limit Q1 2026", "and for carvykti?", "and in Q2 2026?")] == sorted(
        text.index(q) for q in ("Q2055 payment limit Q1 2026", "and for carvykti?", "and in Q2 2026?"))
    [listed] = History(None, url=pg.url(dbname)).list("local")  # what "Earlier conversations" lists, on either process
    assert (listed["id"], listed["turns"], listed["title"]) == (conv_id, 3, "Q2055 payment limit Q1 2026")

    posted = {_rate(one, first["answer_id"], 1, "from process 1"): first["answer_id"],
              _rate(two, follow["answer_id"], -1, "from process 2"): follow["answer_id"],
              _rate(two, later["answer_id"], 1, "process 1's answer, rated on process 2"): later["answer_id"]}
    rows = pg.query(dbname, 'SELECT id, answer_id, conversation_id, "user", comment, question FROM feedback ORDER BY id')
    assert {r[0]: r[1] for r in rows} == posted and len(rows) == 3  # each post once, none lost, none doubled
    assert {r[2] for r in rows} == {conv_id} and {r[3] for r in rows} == {"local"}
    assert [r[5] for r in rows] == ["Q2055 payment limit Q1 2026", "and for carvykti?", "and in Q2 2026?"]
    assert not any(p.exists() for s in (one, two) for p in (s.data_dir / "feedback.sqlite3", s.data_dir / "conversations.sqlite3"))

    status, _, raw = request("DELETE", two.url + f"/api/conversations/{conv_id}")
    assert status == 200 and json.loads(raw) == {"deleted": 1}
    gone = _ask(one, "and for breyanzi?", conv_id)  # deleted on process 2: process 1 does not carry it on
    assert gone["conversation_id"] != conv_id and gone["expired"]
    assert pg.query(dbname, "SELECT count(*) FROM turns WHERE conversation_id = %s", conv_id) == [(0,)]


def test_the_feedback_cli_works_on_postgres(pg, monkeypatch, capsys):
    from assistant.feedback import main

    dbname = f"t_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(dbname)
    store = FeedbackStore(None, url=url)
    old = store.add(rating=1, question="q", answer=ANSWER)
    keep = store.add(rating=-1, question="q", answer=ANSWER)
    pg.query(dbname, "UPDATE feedback SET created = '2000-01-01T00:00:00+00:00' WHERE id = %s RETURNING id", old)
    monkeypatch.setenv("CART_DATABASE_URL", url)
    monkeypatch.setenv("CART_FEEDBACK_DB", str(pg.root / "unused.sqlite3"))
    assert main(["purge"]) == 0 and "Deleted 1 rows" in capsys.readouterr().out
    assert main(["delete", str(keep), "999"]) == 0 and "Deleted 1 of 2 rows" in capsys.readouterr().out
    assert pg.query(dbname, "SELECT count(*) FROM feedback") == [(0,)]
    monkeypatch.setenv("CART_DATABASE_URL", url.replace(f"/{dbname}", "/no_such_db"))
    assert main(["purge"]) == 2
    err = capsys.readouterr().err
    assert "Cannot open the feedback database postgresql+psycopg://cart:***@127.0.0.1" in err and pg.password not in err


def test_an_unreachable_database_stops_the_app_with_one_line_and_no_password(index_env):
    import socket
    import subprocess
    import sys

    from conftest import PROJECT, subprocess_env

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = subprocess_env(CART_DATA_DIR=index_env["CART_DATA_DIR"],
                         CART_DATABASE_URL=f"postgresql://cart:hunter2@127.0.0.1:{port}/cart")
    out = subprocess.run([sys.executable, "app.py"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "cannot be opened" in out.stderr and "CART_DATABASE_URL" in out.stderr and f":{port}/cart" in out.stderr
    assert "hunter2" not in out.stderr + out.stdout and "Serving on" not in out.stdout
