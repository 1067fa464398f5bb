"""FeedbackStore: the SQLite store behind the thumbs and the API's /feedback, including crash safety."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import pytest

from assistant.feedback import MAX_COMMENT, FeedbackStore
from tests.conftest import PROJECT, subprocess_env

ANSWER = {"text": "**Q2055** is the HCPCS code for Abecma [1].", "kind": "answer",
          "citations": [{"marker": 1, "doc_id": "abecma-billing-guide", "quote": "Q2055 Idecabtagene vicleucel",
                         "span": [10, 38], "title": "Abecma billing guide", "section": "Coding"}]}


def test_add_and_all_round_trip(tmp_path):
    store = FeedbackStore(tmp_path / "fb" / "feedback.sqlite3")
    first = store.add(rating=1, question="What is the HCPCS code for Abecma?", answer=ANSWER,
                      comment="exactly what I needed", conversation_id="abc123")
    second = store.add(rating=-1, question="Q2055 payment limit?", answer={"text": "…", "kind": "not_covered"})
    assert second == first + 1
    rows = store.all()
    assert [r["id"] for r in rows] == [first, second]
    r = rows[0]
    assert (r["rating"], r["question"], r["comment"], r["conversation_id"], r["kind"]) == (
        1, "What is the HCPCS code for Abecma?", "exactly what I needed", "abc123", "answer")
    assert r["answer"] == ANSWER["text"]
    assert json.loads(r["citations"]) == ANSWER["citations"]
    assert r["created"].endswith("+00:00")
    assert rows[1]["comment"] == "" and rows[1]["conversation_id"] is None and json.loads(rows[1]["citations"]) == []
    # a second store on the same file (a restarted app) sees the same rows
    assert FeedbackStore(store.path).all() == rows


@pytest.mark.parametrize("rating", [0, 2, -2, 5])
def test_rating_must_be_plus_or_minus_one(tmp_path, rating):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    with pytest.raises(ValueError, match="rating"):
        store.add(rating=rating, question="q", answer=ANSWER)
    assert store.all() == []


def test_database_rejects_bad_ratings_too(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    with closing(sqlite3.connect(store.path)) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO feedback (created, rating, question, answer) VALUES ('x', 3, 'q', 'a')")


def test_long_comment_and_question_are_truncated(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    store.add(rating=-1, question="q" * 10_000, answer=ANSWER, comment="c" * 50_000)
    row = store.all()[0]
    assert row["comment"] == "c" * MAX_COMMENT
    assert row["question"] == "q" * 4000


def test_unicode_survives(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    store.add(rating=1, question="cilta-cel 0.5–1.0 × 10⁶ cells/kg?", answer=ANSWER, comment="👍 merci — ok")
    row = store.all()[0]
    assert row["question"] == "cilta-cel 0.5–1.0 × 10⁶ cells/kg?" and row["comment"] == "👍 merci — ok"


WRITER = r"""
import json, sys
from pathlib import Path
from assistant.feedback import FeedbackStore

store = FeedbackStore(Path(sys.argv[1]))
answer = json.loads(sys.argv[2])
i = 0
while True:
    i += 1
    fid = store.add(rating=1 if i % 2 else -1, question=f"question {i}", answer=answer, comment=f"row {i}")
    print(fid, flush=True)  # printed only after the row is committed
"""


def test_committed_rows_survive_sigkill_of_the_writer(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), json.dumps(ANSWER)], cwd=PROJECT,
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acknowledged: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged.append(int(line))
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-write, no chance to clean up
        proc.wait(timeout=30)
    assert len(acknowledged) >= 40, proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL

    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = FeedbackStore(path).all()  # reopening recovers the WAL
    ids = [r["id"] for r in rows]
    assert set(acknowledged) <= set(ids), "a committed row was lost"
    assert ids == list(range(1, len(ids) + 1))
    for r in rows:
        n = r["id"]
        assert r["question"] == f"question {n}" and r["comment"] == f"row {n}"
        assert r["rating"] == (1 if n % 2 else -1)
        assert json.loads(r["citations"]) == ANSWER["citations"]
    # and the store still takes writes afterwards
    assert FeedbackStore(path).add(rating=1, question="after", answer=ANSWER) == ids[-1] + 1
