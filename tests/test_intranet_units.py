"""The intranet-safety pieces on their own: rate limits, the engine queue bound, conversations
bound to owners, identity, tokens, feedback retention and deletion, host and CSP helpers.
(The same behaviour through the running app is in test_security.py.)"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import stat
from contextlib import closing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant import auth, config
from assistant.feedback import FeedbackStore
from assistant.feedback import main as feedback_main
from assistant.guards import clean_text
from assistant.limits import Admission, Busy, FairPool, RateLimiter
from assistant.render import md_text
from assistant.security import _host_allowed, csp, inline_script_hashes
from assistant.sessions import ANSWERS_KEPT, Conversations

ANSWER = {"text": "**Q2055** is the HCPCS code for Abecma [1].", "kind": "answer", "citations": []}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- rate limits and the engine queue ----------------------------------------------------------

def test_rate_limiter_allows_a_burst_then_says_how_long_to_wait():
    clock = Clock()
    limiter = RateLimiter(6, clock=clock)  # 6 per minute: one every 10 s
    assert [limiter.check("a") for _ in range(6)] == [0] * 6
    assert limiter.check("a") == 10
    assert limiter.check("b") == 0  # another client has its own bucket
    clock.now += 10
    assert limiter.check("a") == 0 and limiter.check("a") == 10
    clock.now += 600
    assert [limiter.check("a") for _ in range(7)].count(0) == 6  # refilled to the burst, not beyond


@given(st.lists(st.floats(min_value=0, max_value=30), max_size=60))
def test_rate_limiter_never_lets_more_through_than_its_rate(gaps):
    clock = Clock()
    limiter = RateLimiter(30, clock=clock)
    allowed = 0
    for gap in gaps:
        clock.now += gap
        allowed += limiter.check("k") == 0
    elapsed = sum(gaps)
    assert allowed <= 30 + elapsed * 30 / 60 + 1e-9


def test_admission_refuses_beyond_its_bound_and_frees_on_error():
    gate = Admission(2)
    with gate.slot(), gate.slot():
        with pytest.raises(Busy), gate.slot():
            pass
    assert gate.pending == 0
    with pytest.raises(ValueError), gate.slot():
        raise ValueError("engine failure")
    assert gate.pending == 0


def test_the_engine_pool_takes_clients_in_turn():
    import threading

    pool = FairPool(1, name="test-fair")
    gate, started, order = threading.Event(), threading.Event(), []
    blocker = pool.submit("flooder", lambda: started.set() or gate.wait(10))
    assert started.wait(10)  # the one worker is busy: everything below waits in the queue
    flood = [pool.submit("flooder", order.append, f"f{i}") for i in range(20)]
    other = pool.submit("other", order.append, "o0")
    assert pool.waiting() == 21
    gate.set()
    other.result(timeout=10)
    for f in flood:
        f.result(timeout=10)
    assert blocker.result() is True
    assert order.index("o0") <= 1  # not behind the twenty
    failing = pool.submit("x", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=10)


# --- conversations ---------------------------------------------------------------------------

def test_a_conversation_is_found_by_its_id_and_owner_only():
    store = Conversations(limit=100, ttl=60, per_owner=10)
    conv, expired = store.open(None, "alice")
    assert not expired
    assert store.open(conv.id, "alice") == (conv, False)
    other, expired = store.open(conv.id, "mallory")
    assert other is not conv and expired  # told apart from an unknown id: not at all
    assert store.open("no-such-id", "alice")[1] is True


def test_conversations_expire_and_say_so():
    clock = Clock()
    store = Conversations(limit=100, ttl=60, per_owner=10, clock=clock)
    conv, _ = store.open(None, "alice")
    clock.now += 59
    assert store.open(conv.id, "alice") == (conv, False)  # use renews it
    clock.now += 61
    fresh, expired = store.open(conv.id, "alice")
    assert expired and fresh.id != conv.id


def test_one_owner_evicts_only_their_own_conversations():
    store = Conversations(limit=100, ttl=60, per_owner=3)
    alice, _ = store.open(None, "alice")
    flood = [store.open(None, "erin")[0] for _ in range(50)]
    assert store.open(alice.id, "alice") == (alice, False)
    assert store.open(flood[-1].id, "erin")[1] is False and store.open(flood[0].id, "erin")[1] is True
    assert len(store) <= 1 + 3 + 1


def test_the_store_is_bounded_as_a_whole():
    store = Conversations(limit=5, ttl=60, per_owner=5)
    ids = [store.open(None, f"user{i}")[0].id for i in range(8)]
    assert len(store) == 5
    assert store.open(ids[0], "user0")[1] is True and store.open(ids[-1], "user7")[1] is False


def test_answers_are_kept_for_feedback_by_their_owner_only():
    store = Conversations(limit=10, ttl=60, per_owner=10)
    conv, _ = store.open(None, "alice")
    first = store.remember(conv, "What is the HCPCS code for Abecma?", ANSWER)
    assert store.answer(first, "alice") == (conv.id, {"question": "What is the HCPCS code for Abecma?", "answer": ANSWER})
    assert store.answer(first, "bob") is None and store.answer("forged", "alice") is None
    later = [store.remember(conv, f"q{i}", ANSWER) for i in range(ANSWERS_KEPT)]
    assert store.answer(first, "alice") is None and store.answer(later[-1], "alice") is not None
    assert store.delete(conv.id, "bob") is False and store.delete(conv.id, "alice") is True
    assert store.answer(later[-1], "alice") is None


# --- identity ----------------------------------------------------------------------------------

def cfg_with(monkeypatch, **env) -> config.Config:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return config.load()


def test_none_mode_is_the_local_admin(monkeypatch):
    cfg = cfg_with(monkeypatch, CART_AUTH="none")
    user = auth.identify({"x-forwarded-user": "mallory"}, "10.0.0.9", "/api/ask", cfg)
    assert user == auth.User(auth.LOCAL, admin=True)


def test_proxy_mode_believes_the_header_only_from_a_trusted_proxy(monkeypatch):
    cfg = cfg_with(monkeypatch, CART_AUTH="proxy", CART_TRUSTED_PROXIES="10.0.0.0/24, 127.0.0.1",
                   CART_ADMIN_GROUPS="billing-admins")
    headers = {"x-forwarded-user": "alice", "x-forwarded-groups": "staff, billing-admins"}
    assert auth.identify(headers, "10.0.0.7", "/", cfg) == auth.User("alice", admin=True, via="proxy")
    assert auth.identify(headers, "::ffff:127.0.0.1", "/", cfg).name == "alice"  # IPv4-mapped
    assert auth.identify({"x-forwarded-user": "bob"}, "10.0.0.7", "/", cfg).admin is False
    for peer in ("10.0.1.7", "192.168.0.2", "", None, "not-an-ip"):
        with pytest.raises(auth.Refused) as refused:
            auth.identify(headers, peer, "/", cfg)
        assert refused.value.status == 401
    with pytest.raises(auth.Refused):
        auth.identify({}, "10.0.0.7", "/", cfg)


def test_tokens_are_stored_hashed_and_checked(monkeypatch, tmp_path, capsys):
    path = tmp_path / "tokens.json"
    cfg = cfg_with(monkeypatch, CART_AUTH="token", CART_TOKENS_FILE=str(path))
    assert auth.main(["add", "widget"]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) >= 40 and token not in path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert auth.identify({"authorization": f"Bearer {token}"}, None, "/api/ask", cfg).name == "token:widget"
    for headers, status in (({}, 401), ({"authorization": "Bearer nope"}, 401), ({"authorization": token}, 401)):
        with pytest.raises(auth.Refused) as refused:
            auth.identify(headers, None, "/api/ask", cfg)
        assert refused.value.status == status
    with pytest.raises(auth.Refused) as refused:
        auth.identify({"authorization": f"Bearer {token}"}, None, "/", cfg)  # the page: not in token mode
    assert refused.value.status == 403
    assert auth.main(["list"]) == 0 and capsys.readouterr().out.strip() == "widget"
    assert auth.main(["revoke", "widget"]) == 0
    with pytest.raises(auth.Refused):
        auth.identify({"authorization": f"Bearer {token}"}, None, "/api/ask", cfg)
    assert auth.main(["revoke", "widget"]) == 2


# --- feedback at rest --------------------------------------------------------------------------

def test_feedback_file_is_private_and_an_old_database_is_migrated(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    with closing(sqlite3.connect(path)) as db, db:  # the schema before users and answer ids
        db.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL, "
                   "conversation_id TEXT, rating INTEGER NOT NULL CHECK (rating IN (-1, 1)), comment TEXT NOT NULL "
                   "DEFAULT '', question TEXT NOT NULL, answer TEXT NOT NULL, citations TEXT NOT NULL DEFAULT '[]', "
                   "kind TEXT NOT NULL DEFAULT '')")
        db.execute("INSERT INTO feedback (created, rating, question, answer) VALUES ('2026-11-30T00:00:00+00:00', 1, 'q', 'a')")
    os.chmod(path, 0o644)
    store = FeedbackStore(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    fid = store.add(rating=-1, question="q2", answer=ANSWER, user="alice", answer_id="abc")
    rows = store.all()
    assert rows[0]["user"] == "" and (rows[1]["id"], rows[1]["user"], rows[1]["answer_id"]) == (fid, "alice", "abc")


def test_retention_and_deletion_are_real(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    old = store.add(rating=1, question="Pt Jane Roe DOB 1/2/1950 carvykti?", answer=ANSWER, user="alice")
    keep = store.add(rating=1, question="recent", answer=ANSWER, user="bob")
    now = dt.datetime.now(dt.UTC)
    assert store.purge(30, now=now) == 0
    assert store.purge(30, now=now + dt.timedelta(days=31)) == 2  # both are old by then
    old = store.add(rating=1, question="Pt Jane Roe DOB 1/2/1950 carvykti?", answer=ANSWER, user="alice")
    keep = store.add(rating=1, question="recent", answer=ANSWER, user="bob")
    assert store.delete([old], user="bob") == 0 and store.delete([old], user="alice") == 1
    assert [r["id"] for r in store.all()] == [keep]
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("feedback.sqlite3*"))
    assert b"Jane Roe" not in raw  # overwritten, not just unlinked from the table


def test_feedback_command_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "feedback.sqlite3"
    monkeypatch.setenv("CART_FEEDBACK_DB", str(path))
    store = FeedbackStore(path)
    a = store.add(rating=1, question="a", answer=ANSWER)
    store.add(rating=1, question="b", answer=ANSWER)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE feedback SET created = '2020-01-01T00:00:00+00:00' WHERE id = ?", (a,))
    assert feedback_main(["purge"]) == 0 and "Deleted 1 rows older than 30 days" in capsys.readouterr().out
    assert feedback_main(["delete", "2", "99"]) == 0 and "Deleted 1 of 2 rows" in capsys.readouterr().out
    assert store.all() == []


# --- the front door's helpers ----------------------------------------------------------------------

@pytest.mark.parametrize(("host", "ok"), [
    ("cart.hospital.org", True), ("CART.hospital.org:443", True), ("127.0.0.1:7860", True), ("[::1]:7860", True),
    ("a.wards.hospital.org", True), ("evil.example", False), ("cart.hospital.org.evil.example", False),
    ("hospital.org", False), ("", False)])
def test_trusted_hosts(host, ok):
    trusted = ("cart.hospital.org", "127.0.0.1", "::1", "*.wards.hospital.org")
    assert _host_allowed(host, trusted) is ok


def test_csp_allows_exactly_the_inline_scripts_of_the_page(monkeypatch):
    page = b"<script>window.a = 1;</script><script src='x.js'></script><script type='module'>b()</script>"
    hashes = inline_script_hashes(page)
    assert len(hashes) == 2
    cfg = cfg_with(monkeypatch, CART_ALLOWED_ORIGINS="https://intranet.hospital.org")
    policy = csp(hashes, cfg)
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert all(f"'sha256-{h}'" in policy for h in hashes)
    assert policy.endswith("frame-ancestors https://intranet.hospital.org")


def test_bidi_controls_are_removed_from_questions_and_shown_text():
    trojan = "Q2055 \u202epayment\u202c limit \u2066x\u2069"
    assert not any(c in clean_text(trojan) for c in "\u202e\u202c\u2066\u2069")
    assert not any(c in md_text(trojan) for c in "\u202e\u202c\u2066\u2069")


def test_log_file_mode_is_not_forced_on_a_device(monkeypatch):
    """CART_LOG_FILE=/dev/null (benchmarks, tests) must never have its mode changed."""
    from assistant.requestlog import _private_opener

    before = stat.S_IMODE(os.stat(os.devnull).st_mode)
    fd = _private_opener(os.devnull, os.O_WRONLY | os.O_APPEND)
    os.close(fd)
    after = stat.S_IMODE(os.stat(os.devnull).st_mode)
    if after != before:  # put it back before failing: other processes need it
        os.chmod(os.devnull, before)
    assert after == before


def test_api_tokens_file_is_json_with_hashes_only(monkeypatch, tmp_path):
    path = tmp_path / "t.json"
    auth.save_tokens(path, {"w": {"sha256": auth.token_hash("secret"), "admin": True}})
    data = json.loads(path.read_text())
    assert data == {"tokens": {"w": {"sha256": auth.token_hash("secret"), "admin": True}}}
