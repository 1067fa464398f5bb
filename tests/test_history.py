"""History: conversations in SQLite (reload and restart), owner-bound, retention and real deletion;
Conversations rebuilding one after a restart, with its context and its answer ids."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import stat
import threading
from contextlib import closing

import pytest

from assistant.engine import Conversation
from assistant.history import TITLE_CHARS, History
from assistant.sessions import ANSWERS_KEPT, REPLAY_TURNS, Conversations

PATIENT = "Zebulon Quarrington"
ANSWER = {"text": "**Q2055** is the HCPCS code for Abecma [1].", "kind": "answer",
          "citations": [{"marker": 1, "doc_id": "abecma-billing-guide", "quote": "Q2055 Idecabtagene vicleucel",
                         "span": [10, 38], "title": "Abecma billing guide", "section": "Coding"}]}


def raw_bytes(path) -> bytes:
    """The database file and its -wal and -shm, as they are on disk."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def store(path, history: History, engine=None) -> Conversations:
    replay = (lambda q, conv, dos: engine.ask(q, conv, dos=dos)) if engine is not None else None
    return Conversations(limit=100, ttl=600, per_owner=10, history=history, replay=replay)


# --- History ---------------------------------------------------------------------------------------

def test_turns_keep_the_whole_answer_with_its_citations(tmp_path, engine):
    """The stored answer is the engine's real Answer.to_dict(), citations and all, across a new History."""
    code = engine.ask("What is the HCPCS code for Abecma?", Conversation())
    pay = engine.ask("Q2055 payment limit Q1 2026", Conversation())
    assert code.citations and pay.tool_calls
    history = History(tmp_path / "h" / "conversations.sqlite3")
    history.save_turn("c1", "alice", "What is the HCPCS code for Abecma?", code.to_dict(), None, "a1")
    history.save_turn("c1", "alice", "Q2055 payment limit Q1 2026", pay.to_dict(), "03/02/2026", "a2")
    reopened = History(history.path)  # a restarted app
    turns = reopened.turns("c1", "alice")
    assert [(t["question"], t["dos"], t["answer_id"]) for t in turns] == [
        ("What is the HCPCS code for Abecma?", None, "a1"), ("Q2055 payment limit Q1 2026", "03/02/2026", "a2")]
    assert turns[0]["answer"] == json.loads(json.dumps(code.to_dict(), default=str))  # JSON: tuples become lists
    assert turns[0]["answer"]["citations"][0]["quote"] == code.citations[0].quote
    assert turns[1]["answer"]["tool_calls"][0]["result"] == json.loads(json.dumps(pay.tool_calls[0].result.to_dict(), default=str))
    assert turns[0]["created"] <= turns[1]["created"] and turns[1]["created"].endswith("+00:00")
    [listed] = reopened.list("alice")
    assert (listed["id"], listed["title"], listed["turns"]) == ("c1", "What is the HCPCS code for Abecma?", 2)
    assert listed["created"] == turns[0]["created"] and listed["updated"] == turns[1]["created"]
    assert reopened.answer("a2", "alice") == ("c1", {"question": "Q2055 payment limit Q1 2026", "answer": turns[1]["answer"]})


def test_list_is_newest_used_first_titled_by_the_first_question(tmp_path):
    history = History(tmp_path / "conversations.sqlite3")
    long_question = "what is   the\npayment limit " + "for abecma " * 20
    history.save_turn("old", "alice", long_question, ANSWER, None, "a1")
    history.save_turn("new", "alice", "carvykti code?", ANSWER, None, "a2")
    history.save_turn("old", "alice", "and for carvykti?", ANSWER, None, "a3")  # used last: first in the list
    listed = history.list("alice")
    assert [c["id"] for c in listed] == ["old", "new"] and [c["turns"] for c in listed] == [2, 1]
    title = listed[0]["title"]
    assert title.startswith("what is the payment limit for abecma") and title.endswith("…") and len(title) <= TITLE_CHARS
    assert [c["id"] for c in history.list("alice", limit=1)] == ["old"]


def test_a_conversation_is_found_by_its_id_and_owner_only(tmp_path):
    history = History(tmp_path / "conversations.sqlite3")
    history.save_turn("c1", "alice", f"Pt {PATIENT} DOB 1/2/1950 carvykti?", ANSWER, None, "a1")
    assert history.turns("c1", "mallory") is None and history.turns("nope", "alice") is None
    assert history.list("mallory") == [] and history.answer("a1", "mallory") is None
    assert history.delete("c1", "mallory") is False and history.turns("c1", "alice") is not None
    with pytest.raises(PermissionError):  # nobody writes into someone else's conversation
        history.save_turn("c1", "mallory", "q", ANSWER, None, "a2")
    assert len(history.turns("c1", "alice")) == 1


def test_deletion_is_real(tmp_path):
    history = History(tmp_path / "conversations.sqlite3")
    # another connection stays open (another process, a reader): the WAL is not removed on close, so it
    # holds every page written, and only the checkpoint-and-truncate of the deletion empties it
    other = sqlite3.connect(history.path)
    other.execute("SELECT COUNT(*) FROM turns").fetchall()
    history.save_turn("c1", "alice", f"Pt {PATIENT} DOB 1/2/1950 carvykti?", ANSWER | {"text": f"For {PATIENT}: Q2056"}, None, "a1")
    history.save_turn("c2", "alice", "Q2055 payment limit", ANSWER, None, "a2")
    assert PATIENT.encode() in raw_bytes(history.path)  # there to begin with (in the WAL, at least)
    assert history.delete("c1", "alice") is True and history.delete("c1", "alice") is False
    assert history.turns("c1", "alice") is None and history.answer("a1", "alice") is None
    assert [c["id"] for c in history.list("alice")] == ["c2"]
    assert PATIENT.encode() not in raw_bytes(history.path)  # overwritten, not just unlinked; the WAL truncated
    assert (tmp_path / "conversations.sqlite3-wal").stat().st_size == 0
    other.close()


def test_retention_purges_conversations_idle_too_long(tmp_path):
    history = History(tmp_path / "conversations.sqlite3", retention_days=30)
    history.save_turn("c1", "alice", f"Pt {PATIENT}", ANSWER, None, "a1")
    history.save_turn("c2", "bob", "recent", ANSWER, None, "a2")
    now = dt.datetime.now(dt.UTC)
    assert history.purge(now=now + dt.timedelta(days=29)) == 0
    assert history.start_retention() == 0 and history._timer.daemon  # purges now, then daily
    assert History(history.path, retention_days=7).purge(now=now + dt.timedelta(days=8)) == 2
    assert history.list("alice") == [] and history.list("bob") == [] and history.answer("a1", "alice") is None
    assert PATIENT.encode() not in raw_bytes(history.path)


def test_the_files_are_owner_only(tmp_path):
    path = tmp_path / "conversations.sqlite3"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)  # an older, wider file is narrowed
    history = History(path)
    with closing(sqlite3.connect(path)) as reader:  # held open, so that the -wal and -shm files stay to be looked at
        reader.execute("SELECT COUNT(*) FROM turns").fetchall()
        history.save_turn("c1", "alice", "q", ANSWER, None, "a1")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("conversations.sqlite3*")}
    assert modes == {"conversations.sqlite3": 0o600, "conversations.sqlite3-wal": 0o600, "conversations.sqlite3-shm": 0o600}


def test_concurrent_turns_are_numbered_without_loss(tmp_path):
    history = History(tmp_path / "conversations.sqlite3")
    threads = [threading.Thread(target=lambda i=i: [history.save_turn("c1", "alice", f"q{i}-{j}", ANSWER, None, f"a{i}-{j}")
                                                     for j in range(10)]) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    turns = history.turns("c1", "alice")
    assert len(turns) == 60 and len({t["answer_id"] for t in turns}) == 60


# --- Conversations with a history -------------------------------------------------------------------

def test_a_conversation_survives_a_restart_with_its_context_and_answer_ids(tmp_path, engine):
    path = tmp_path / "conversations.sqlite3"
    before = store(path, History(path), engine)
    conv, expired = before.open(None, "alice")
    first = before.remember(conv, "Q2055 payment limit Q1 2026", engine.ask("Q2055 payment limit Q1 2026", conv).to_dict())
    assert not expired
    # the app restarts: new History, new Conversations, nothing in memory
    after = store(path, History(path), engine)
    assert after.answer(first, "alice")[0] == conv.id  # feedback before the conversation is reopened
    assert after.answer(first, "bob") is None
    other, expired = after.open(conv.id, "bob")
    assert other.id != conv.id and expired  # someone else's id: a fresh conversation, as before
    reopened, expired = after.open(conv.id, "alice")
    assert reopened.id == conv.id and not expired
    follow = engine.ask("and for carvykti?", reopened)  # knows the intent and the quarter from turn one
    assert follow.context["products"] == ["carvykti"] and "date of service" in follow.context["inherited"]
    assert follow.text.startswith("**Q2056 payment limit (2026Q1)")
    second = after.remember(reopened, "and for carvykti?", follow.to_dict())
    assert after.answer(first, "alice") == (conv.id, {"question": "Q2055 payment limit Q1 2026",
                                                       "answer": after.transcript(conv.id, "alice")[0]["answer"]})
    assert [t["answer_id"] for t in after.transcript(conv.id, "alice")] == [first, second]
    # without the replay the follow-up stands alone, and is not answered as one
    alone = engine.ask("and for carvykti?", Conversation())
    assert not alone.text.startswith("**Q2056 payment limit")


def test_replay_runs_the_stored_questions_in_order_with_their_dates(tmp_path):
    path = tmp_path / "conversations.sqlite3"
    history = History(path)
    for i in range(REPLAY_TURNS + 5):
        history.save_turn("c1", "alice", f"q{i}", ANSWER, f"3/{i % 28 + 1}/2026" if i % 2 else None, f"a{i}")
    replayed: list[tuple[str, str, str | None]] = []
    conversations = Conversations(limit=100, ttl=600, per_owner=10, history=history,
                                  replay=lambda q, conv, dos: replayed.append((q, conv.id, dos)))
    conv, expired = conversations.open("c1", "alice")
    assert conv.id == "c1" and not expired
    kept = range(5, REPLAY_TURNS + 5)  # the last REPLAY_TURNS only
    assert replayed == [(f"q{i}", "c1", f"3/{i % 28 + 1}/2026" if i % 2 else None) for i in kept]
    assert conversations.open("c1", "alice") == (conv, False) and len(replayed) == REPLAY_TURNS  # in memory now
    # answer ids: the last ANSWERS_KEPT from memory, older ones still from the history
    assert conversations.answer(f"a{REPLAY_TURNS + 4}", "alice")[0] == "c1"
    assert conversations.answer("a0", "alice")[0] == "c1" and conversations.answer("a0", "bob") is None
    assert ANSWERS_KEPT >= REPLAY_TURNS


def test_a_failing_replay_still_restores_and_without_replay_it_says_expired(tmp_path):
    path = tmp_path / "conversations.sqlite3"
    history = History(path)
    history.save_turn("c1", "alice", "q0", ANSWER, None, "a0")

    def broken(q, conv, dos):
        raise RuntimeError("engine down")

    conv, expired = Conversations(history=history, replay=broken).open("c1", "alice")
    assert conv.id == "c1" and not expired
    conv, expired = Conversations(history=history).open("c1", "alice")
    assert conv.id == "c1" and expired  # its answers are back, the engine's context is not


def test_delete_reaches_the_history_and_the_list(tmp_path):
    path = tmp_path / "conversations.sqlite3"
    conversations = store(path, History(path))
    conv, _ = conversations.open(None, "alice")
    answer_id = conversations.remember(conv, f"Pt {PATIENT} carvykti?", ANSWER, dos="3/2/2026")
    assert conversations.transcript(conv.id, "alice")[0]["dos"] == "3/2/2026"
    assert [c["id"] for c in conversations.list("alice")] == [conv.id] and conversations.list("bob") == []
    assert conversations.transcript(conv.id, "bob") is None
    assert conversations.delete(conv.id, "bob") is False
    restarted = store(path, History(path))  # not in this one's memory: deleted from the history alone
    assert restarted.delete(conv.id, "alice") is True and restarted.delete(conv.id, "alice") is False
    assert conversations.delete(conv.id, "alice") is True  # the old process still had it in memory
    assert restarted.list("alice") == [] and restarted.answer(answer_id, "alice") is None
    assert restarted.open(conv.id, "alice")[1] is True  # gone: a fresh conversation, told so
    assert PATIENT.encode() not in raw_bytes(path)


def test_without_a_history_nothing_is_stored():
    conversations = Conversations(limit=10, ttl=60, per_owner=10)
    conv, _ = conversations.open(None, "alice")
    answer_id = conversations.remember(conv, "q", ANSWER)
    assert conversations.list("alice") == [] and conversations.transcript(conv.id, "alice") is None
    assert conversations.answer(answer_id, "alice") is not None
    assert conversations.delete(conv.id, "alice") is True and conversations.open(conv.id, "alice")[1] is True


def test_a_history_that_cannot_be_read_or_written_does_not_stop_the_answer(tmp_path):
    path = tmp_path / "conversations.sqlite3"
    history = History(path)
    history.save_turn("c1", "alice", "q0", ANSWER, None, "a0")
    conversations = store(path, history)
    path.unlink()
    path.mkdir()  # the file is gone and nothing can be opened there: SQLite fails on every use
    conv, expired = conversations.open("c1", "alice")
    assert conv.id != "c1" and expired  # answered on its own, and told so
    answer_id = conversations.remember(conv, "q1", ANSWER)  # not kept on disk, but kept in memory for feedback
    assert conversations.answer(answer_id, "alice") == (conv.id, {"question": "q1", "answer": ANSWER})
    with pytest.raises(sqlite3.Error):  # feedback on an answer only on disk: an error, not "not yours"
        conversations.answer("a0", "alice")
