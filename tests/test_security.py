"""Safe on a hospital intranet: one test per finding of the security review, against the real app.

Each server here is `python app.py` in a subprocess on a loopback port, configured as a
deployment would be (assistant/security.py, assistant/auth.py, assistant/sessions.py). The
browser checks (localStorage, run history, a cross-origin sendBeacon) are in test_browser.py.
"""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
import stat
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import pytest

from app_server import AppServer, app_env, request
from assistant.auth import token_hash
from assistant.feedback import FeedbackStore

pytestmark = pytest.mark.slow

QUESTION = "What is the HCPCS code for Abecma?"
PATIENT = "Pt John Smith DOB 03/04/1961 MRN 00123456, 82 kg: carvykti dose?"


def raw_request(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 60) -> tuple[int, dict, bytes]:
    """http.client, so that Host, Content-Type and chunked bodies are exactly what the test says."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        hdrs = {"Host": f"127.0.0.1:{server.port}", **(headers or {})}
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body is not None and "Transfer-Encoding" not in hdrs:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body is not None:
            if hdrs.get("Transfer-Encoding") == "chunked":
                for i in range(0, len(body), 16384):
                    part = body[i:i + 16384]
                    conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                conn.send(b"0\r\n\r\n")
            else:
                conn.send(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def ask(server, question: str, conv: str | None = None, headers: dict | None = None) -> tuple[int, dict, dict]:
    body = {"question": question, **({"conversation_id": conv} if conv else {})}
    status, hdrs, raw = request("POST", server.url + "/api/ask", body, headers=headers)
    return status, hdrs, json.loads(raw)


def feedback_rows(server) -> list[dict]:
    return FeedbackStore(server.data_dir / "feedback.sqlite3").all()


# --- a single-user server (CART_AUTH=none), as shipped -----------------------------------------

@pytest.fixture(scope="module")
def plain(index_env, tmp_path_factory):
    data = tmp_path_factory.mktemp("sec-plain")
    log = data / "requests.log"
    srv = AppServer(app_env(index_env, data, CART_RATE_ASKS="1000", CART_CONVERSATION_TTL="3",
                            CART_LOG_FILE=str(log)))
    srv.data_dir, srv.log = data, log
    srv.start()
    yield srv
    srv.close()


def test_start_up_line_says_there_is_no_sign_in(plain):
    assert "no sign-in (CART_AUTH=none)" in plain.output()


def test_security_headers_on_the_page_and_the_api(plain):
    status, headers, page = raw_request(plain, "GET", "/")
    assert status == 200 and b"<gradio-app" in page or b"gradio_config" in page
    policy = headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert "'self'" in directives["script-src"] and "unsafe-inline" not in directives["script-src"]
    assert "unsafe-eval" not in policy
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"
    status, headers, _ = ask(plain, PATIENT)
    assert status == 200 and headers["cache-control"] == "no-store" and headers["x-content-type-options"] == "nosniff"
    assert "server" not in headers  # no version banner


def test_every_inline_script_of_the_page_is_allowed_by_hash_only(plain):
    import base64
    import hashlib
    import re

    _, headers, page = raw_request(plain, "GET", "/")
    scripts = re.findall(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", page, re.S)
    assert scripts
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        assert f"'sha256-{digest}'" in headers["content-security-policy"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example"])
def test_unknown_host_headers_are_refused_not_reflected(plain, host):
    status, _, body = raw_request(plain, "GET", "/", headers={"Host": host})
    assert status == 400 and b"evil" not in body
    status, _, body = raw_request(plain, "GET", "/config", headers={"X-Forwarded-Host": host})
    assert status == 400 and b"evil" not in body


@pytest.mark.parametrize("path", [
    "/gradio_api/upload", "/gradio_api/upload_progress", "/gradio_api/runs", "/gradio_api/run-history/buckets",
    "/monitoring", "/monitoring/summary", "/openapi.json", "/docs", "/gradio_api/openapi.json", "/api/docs",
    "/api/openapi.json", "/gradio_api/deep_link?session_hash=x", "/gradio_api/file=/etc/passwd",
    "/gradio_api/run/ask", "/gradio_api/call/ask", "/gradio_api/call/v2/ask"])
def test_surfaces_the_page_does_not_use_are_closed(plain, path):
    for method in ("GET", "POST"):
        body = b"{}" if method == "POST" else None
        status, _, _ = raw_request(plain, method, path, body, {"Content-Type": "application/json"} if body else {})
        assert status in (404, 405), (method, path, status)


@pytest.mark.parametrize("header", ["X-Gradio-Server", "X-Forwarded-Host"])
def test_forwarded_hosts_are_not_written_into_the_page(index_env, tmp_path, header):
    """From an address that is not a trusted proxy, the headers Gradio builds the API base from are
    dropped (from a trusted one, X-Forwarded-Host must still be a trusted host: see above)."""
    srv = AppServer(app_env(index_env, tmp_path / "data", CART_TRUSTED_PROXIES="10.9.9.9"))
    try:
        srv.start()
        for path in ("/config", "/"):
            status, _, body = raw_request(srv, "GET", path, headers={header: "http://evil.example"})
            assert status == 200 and b"evil.example" not in body, path
    finally:
        srv.close()


def test_upload_is_closed_even_as_multipart(plain):
    body = b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\nJohn Smith\r\n--x--\r\n'
    status, _, _ = raw_request(plain, "POST", "/gradio_api/upload", body,
                               {"Content-Type": "multipart/form-data; boundary=x"})
    assert status in (404, 415)


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("path", ["/api/ask", "/api/feedback", "/gradio_api/queue/join"])
def test_bodies_must_be_json(plain, path, ctype):
    body = json.dumps({"question": QUESTION}).encode()
    status, _, _ = raw_request(plain, "POST", path, body, {"Content-Type": ctype} if ctype else {})
    assert status == 415


def test_a_page_on_another_origin_cannot_post(plain):
    before = len(feedback_rows(plain))
    _, _, data = ask(plain, QUESTION)
    body = json.dumps({"answer_id": data["answer_id"], "rating": -1, "comment": "from evil"}).encode()
    for origin in ("http://evil.example", "null"):
        status, _, _ = raw_request(plain, "POST", "/api/feedback", body,
                                   {"Content-Type": "application/json", "Origin": origin})
        assert status == 403
    assert len(feedback_rows(plain)) == before
    # the same post from the app's own origin is taken
    status, _, _ = raw_request(plain, "POST", "/api/feedback", body,
                               {"Content-Type": "application/json", "Origin": plain.url})
    assert status == 200 and len(feedback_rows(plain)) == before + 1


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("path", ["/gradio_api/queue/join", "/gradio_api/component_server", "/api/ask"])
def test_oversized_bodies_are_refused_on_every_route(plain, path, chunked):
    body = json.dumps({"data": ["x" * (2 * 1024 * 1024)], "question": "x"}).encode()
    headers = {"Content-Type": "application/json", **({"Transfer-Encoding": "chunked"} if chunked else {})}
    status, _, raw = raw_request(plain, "POST", path, body, headers)
    assert status == 413, raw[:200]


@pytest.mark.parametrize("body", [{"fn_index": 999, "session_hash": "x", "data": []},
                                  {"fn_index": -1, "session_hash": "x", "data": [], "trigger_id": 10**6}])
def test_a_malformed_queue_call_is_a_400_without_internals(plain, body):
    status, _, raw = request("POST", plain.url + "/gradio_api/queue/join", body)
    assert status == 400 and b"Internal Server Error" not in raw and b"Traceback" not in raw


def test_feedback_names_an_answer_the_server_gave(plain):
    before = len(feedback_rows(plain))
    forged = {"answer_id": "made-up", "rating": 1, "answer": {"text": "Q9999 is the code", "citations": []},
              "question": "forged"}
    status, _, raw = request("POST", plain.url + "/api/feedback", forged)
    assert status == 404 and len(feedback_rows(plain)) == before
    _, _, data = ask(plain, QUESTION)
    forged["answer_id"] = data["answer_id"]
    status, _, raw = request("POST", plain.url + "/api/feedback", forged)
    assert status == 200
    row = feedback_rows(plain)[-1]
    assert "Q2055" in row["answer"] and "Q9999" not in row["answer"] and row["question"] == QUESTION


def test_an_idle_conversation_is_reopened_and_a_deleted_one_is_said(plain):
    _, _, first = ask(plain, "What is the Q2055 payment limit?")
    time.sleep(4)  # CART_CONVERSATION_TTL=3: out of memory, still in the conversation store
    _, _, later = ask(plain, "and carvykti?", first["conversation_id"])
    assert later["expired"] is False and later["conversation_id"] == first["conversation_id"]
    assert "Q2056" in later["answer"]["text"]  # the follow-up kept its context
    status, _, _ = request("DELETE", plain.url + f"/api/conversations/{first['conversation_id']}")
    assert status == 200
    _, _, gone = ask(plain, "and tecartus?", first["conversation_id"])
    assert gone["expired"] is True and gone["conversation_id"] != first["conversation_id"]
    assert any("conversation expired" in n for n in gone["answer"]["notes"])
    _, _, again = ask(plain, "and tecartus?", gone["conversation_id"])
    assert again["expired"] is False


def test_files_with_patient_data_are_owner_only(plain):
    ask(plain, PATIENT)
    for path in (plain.data_dir / "feedback.sqlite3", plain.log):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


# --- behind an SSO proxy (CART_AUTH=proxy) -----------------------------------------------------

def as_user(name: str, groups: str = "") -> dict:
    return {"X-Forwarded-User": name, **({"X-Forwarded-Groups": groups} if groups else {})}


@pytest.fixture(scope="module")
def proxied(index_env, tmp_path_factory):
    data = tmp_path_factory.mktemp("sec-proxy")
    srv = AppServer(app_env(index_env, data, CART_AUTH="proxy", CART_RATE_ASKS="6",
                            CART_MAX_CONVERSATIONS_PER_USER="2", CART_ADMIN_GROUPS="billing-admins"))
    srv.data_dir = data
    srv.start()
    yield srv
    srv.close()


def test_without_the_proxy_header_every_route_is_refused(proxied):
    for method, path in (("GET", "/"), ("GET", "/config"), ("POST", "/api/ask"), ("POST", "/api/feedback"),
                         ("POST", "/gradio_api/queue/join"), ("GET", "/gradio_api/queue/data?session_hash=x")):
        body = b"{}" if method == "POST" else None
        status, _, _ = raw_request(proxied, method, path, body, {"Content-Type": "application/json"} if body else {})
        assert status == 401, (method, path, status)
    status, _, _ = raw_request(proxied, "GET", "/api/health")
    assert status == 200  # for the load balancer: no patient data in it
    assert "users from the X-Forwarded-User header" in proxied.output()


def test_with_the_header_the_user_is_recorded(proxied):
    status, _, data = ask(proxied, QUESTION, headers=as_user("alice"))
    assert status == 200 and "Q2055" in data["answer"]["text"]
    status, _, raw = request("POST", proxied.url + "/api/feedback",
                             {"answer_id": data["answer_id"], "rating": 1}, headers=as_user("alice"))
    assert status == 200
    assert feedback_rows(proxied)[-1]["user"] == "alice"
    # bob cannot rate alice's answer
    status, _, _ = request("POST", proxied.url + "/api/feedback",
                           {"answer_id": data["answer_id"], "rating": -1}, headers=as_user("bob"))
    assert status == 404


def test_a_page_session_hash_is_bound_to_its_user(proxied):
    join = {"fn_index": 999, "session_hash": "sess-of-alice", "data": []}
    request("POST", proxied.url + "/gradio_api/queue/join", join, headers=as_user("alice"))
    for path in ("/gradio_api/queue/data?session_hash=sess-of-alice", "/gradio_api/heartbeat/sess-of-alice"):
        status, _, _ = raw_request(proxied, "GET", path, headers=as_user("bob"), timeout=10)
        assert status == 403, path
    status, _, _ = request("POST", proxied.url + "/gradio_api/queue/join", join, headers=as_user("bob"))
    assert status == 403


def test_a_conversation_is_bound_to_its_owner(proxied):
    _, _, mine = ask(proxied, "What is the Q2055 payment limit?", headers=as_user("carol"))
    _, _, theirs = ask(proxied, "and carvykti?", mine["conversation_id"], headers=as_user("mallory"))
    assert theirs["conversation_id"] != mine["conversation_id"]
    assert "Q2055" not in theirs["answer"]["text"] and "payment limit" not in theirs["answer"]["text"].lower()
    _, _, again = ask(proxied, "and carvykti?", mine["conversation_id"], headers=as_user("carol"))
    assert again["conversation_id"] == mine["conversation_id"] and not again["expired"]


def test_one_users_new_conversations_evict_only_their_own(proxied):
    _, _, kept = ask(proxied, "What is the Q2055 payment limit?", headers=as_user("dave"))
    for _ in range(5):
        ask(proxied, "", headers=as_user("erin"))  # empty questions, each a new conversation
    _, _, follow = ask(proxied, "and carvykti?", kept["conversation_id"], headers=as_user("dave"))
    assert follow["expired"] is False and follow["conversation_id"] == kept["conversation_id"]


def test_rate_limit_per_user_with_retry_after(proxied):
    statuses = [ask(proxied, "", headers=as_user("frank"))[0] for _ in range(8)]
    assert statuses[:6] == [200] * 6 and statuses[6:] == [429, 429]
    status, headers, data = ask(proxied, "", headers=as_user("frank"))
    assert status == 429 and int(headers["retry-after"]) >= 1 and "wait" in data["error"]
    assert ask(proxied, "", headers=as_user("grace"))[0] == 200  # another user is not affected


def test_feedback_posts_are_rate_limited_too(proxied):
    _, _, data = ask(proxied, QUESTION, headers=as_user("judy"))
    big = {"answer_id": data["answer_id"], "rating": 1, "comment": "x" * 60_000}
    statuses = [request("POST", proxied.url + "/api/feedback", big, headers=as_user("judy"))[0] for _ in range(12)]
    assert statuses == [200] * 10 + [429, 429]
    rows = [r for r in feedback_rows(proxied) if r["user"] == "judy"]
    assert len(rows) == 10 and all(len(r["comment"]) == 2000 for r in rows)  # comments are capped


def test_only_an_admin_deletes_feedback(proxied):
    _, _, data = ask(proxied, QUESTION, headers=as_user("heidi"))
    _, _, raw = request("POST", proxied.url + "/api/feedback", {"answer_id": data["answer_id"], "rating": -1},
                        headers=as_user("heidi"))
    fid = json.loads(raw)["id"]
    status, _, _ = request("DELETE", proxied.url + f"/api/feedback/{fid}", headers=as_user("heidi"))
    assert status == 403 and any(r["id"] == fid for r in feedback_rows(proxied))
    status, _, raw = request("DELETE", proxied.url + f"/api/feedback/{fid}", headers=as_user("ivan", "billing-admins"))
    assert status == 200 and json.loads(raw)["deleted"] == 1
    assert all(r["id"] != fid for r in feedback_rows(proxied))
    with closing(sqlite3.connect(proxied.data_dir / "feedback.sqlite3")) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw_file = b"".join(p.read_bytes() for p in proxied.data_dir.glob("feedback.sqlite3*"))
    assert data["answer_id"].encode() not in raw_file  # deleted for real, not just hidden


def test_a_flood_from_one_user_does_not_stall_another(proxied):
    body = json.dumps({"question": "What is the Q2055 payment limit?"}).encode()
    hdrs = {"Content-Type": "application/json", **as_user("flooder")}

    def flood(_):
        return raw_request(proxied, "POST", "/api/ask", body, hdrs, timeout=120)[0]

    latencies = []
    with ThreadPoolExecutor(max_workers=64) as pool:
        flooding = [pool.submit(flood, i) for i in range(200)]
        for i in range(12):
            started = time.perf_counter()
            status, _, _ = ask(proxied, f"Q205{3 + i % 3} payment limit", headers=as_user(f"patient-user-{i % 2}"))
            latencies.append(time.perf_counter() - started)
            assert status == 200
        codes = [f.result() for f in flooding]
    p95 = statistics.quantiles(latencies, n=20)[-1]
    assert codes.count(429) >= 190 and set(codes) <= {200, 429}, codes
    assert p95 < 2.0, latencies


# --- the JSON API with bearer tokens (CART_AUTH=token), and a small engine queue -------------

@pytest.fixture(scope="module")
def tokened(index_env, tmp_path_factory):
    data = tmp_path_factory.mktemp("sec-token")
    tokens = data / "api_tokens.json"
    tokens.write_text(json.dumps({"tokens": {"widget": {"sha256": token_hash("s3cret-widget-token"), "admin": False}}}))
    srv = AppServer(app_env(index_env, data, CART_AUTH="token", CART_TOKENS_FILE=str(tokens),
                            CART_ENGINE_THREADS="1", CART_MAX_PENDING="2", CART_RATE_ASKS="1000"))
    srv.data_dir, srv.tokens = data, tokens
    srv.start()
    yield srv
    srv.close()


def test_token_mode_needs_a_valid_bearer_token(tokened):
    assert ask(tokened, QUESTION)[0] == 401
    assert ask(tokened, QUESTION, headers={"Authorization": "Bearer wrong"})[0] == 401
    status, _, data = ask(tokened, QUESTION, headers={"Authorization": "Bearer s3cret-widget-token"})
    assert status == 200 and "Q2055" in data["answer"]["text"]
    status, _, _ = raw_request(tokened, "GET", "/")
    assert status == 403  # the page needs a signed-in user: not in this mode
    assert b"s3cret" not in tokened.tokens.read_bytes()


def test_a_full_engine_queue_sheds_load_with_a_message(tokened):
    body = json.dumps({"question": "carvykti dose for a 120 kg patient"}).encode()
    hdrs = {"Content-Type": "application/json", "Authorization": "Bearer s3cret-widget-token"}
    with ThreadPoolExecutor(max_workers=24) as pool:
        replies = list(pool.map(lambda _: raw_request(tokened, "POST", "/api/ask", body, hdrs), range(24)))
    statuses = [r[0] for r in replies]
    assert set(statuses) <= {200, 503} and statuses.count(503) >= 1 and statuses.count(200) >= 2, statuses
    busy = next(r for r in replies if r[0] == 503)
    assert int(busy[1]["retry-after"]) >= 1 and "busy" in json.loads(busy[2])["error"]


# --- forwarded headers from an address that is not the proxy; retention on start --------------

@pytest.fixture(scope="module")
def untrusted(index_env, tmp_path_factory):
    data = tmp_path_factory.mktemp("sec-untrusted")
    store = FeedbackStore(data / "feedback.sqlite3")
    old = store.add(rating=1, question="Pt Jane Roe DOB 1/2/1950 old question", answer={"text": "old"})
    new = store.add(rating=1, question="recent question", answer={"text": "new"})
    with closing(sqlite3.connect(store.path)) as db, db:
        db.execute("UPDATE feedback SET created = '2020-01-01T00:00:00+00:00' WHERE id = ?", (old,))
    os.chmod(store.path, 0o644)  # as an older version left it
    srv = AppServer(app_env(index_env, data, CART_AUTH="proxy", CART_TRUSTED_PROXIES="10.9.9.9",
                            CART_RETENTION_DAYS="30"))
    srv.data_dir, srv.old, srv.new = data, old, new
    srv.start()
    yield srv
    srv.close()


def test_identity_headers_from_an_untrusted_address_are_ignored(untrusted):
    status, _, _ = ask(untrusted, QUESTION, headers=as_user("alice", "cart-admin"))
    assert status == 401


def test_retention_purges_old_feedback_on_start(untrusted):
    ids = [r["id"] for r in feedback_rows(untrusted)]
    assert untrusted.old not in ids and untrusted.new in ids
    assert stat.S_IMODE(os.stat(untrusted.data_dir / "feedback.sqlite3").st_mode) == 0o600
