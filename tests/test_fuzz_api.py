"""Fuzz the JSON HTTP API (the real app as a subprocess): whatever arrives, a clear JSON reply.

Any request gets either an answer (200) or a JSON error a person can act on (400, 404, 405, 413,
415, 422): never a 500, never a traceback, always within a bounded time.
"""

from __future__ import annotations

import http.client
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app_server import AppServer, app_env
from assistant.engine import MAX_QUESTION_CHARS

pytestmark = pytest.mark.slow

MAX_BODY = 64 * 1024
PER_REQUEST_S = 10.0
OK_STATUSES = {200, 400, 404, 405, 413, 415, 422}
SPECIALS = ["\x00", "\x07", "\x1b[2J", "\r\n", "\u200b", "\u200f", "\u202e", "\u2066", "\ufeff", "🧬", "👩‍⚕️",
            "ﷺ", "ｑ２０５５", "١٢٠ kg", "<img src=x onerror=alert(1)>", "</script>", "Q2055", "Carvykti",
            "And its payment limit?", "dose for 120 kg", "\\u0000", '"', "{}", "[]"]
texts = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(SPECIALS)), max_size=8).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)

FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def server(index_env, tmp_path_factory):
    # rates out of the way: these tests are about what a body can hold, not how many arrive
    srv = AppServer(app_env(index_env, tmp_path_factory.mktemp("fuzz-api"), CART_LOG_FILE="/dev/null",
                            CART_RATE_ASKS="100000", CART_RATE_FEEDBACK="100000"))
    srv.start()
    yield srv
    srv.close()


def send(server, method: str, path: str, body: bytes | None = None, content_type: str | None = "application/json",
         headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=PER_REQUEST_S + 20)
    hdrs = dict(headers or {})
    if content_type is not None:
        hdrs["Content-Type"] = content_type
    started = time.perf_counter()
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        status, rh = resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    assert elapsed < PER_REQUEST_S, f"{method} {path} took {elapsed:.1f} s"
    return status, rh, data


def check(status: int, headers: dict, raw: bytes) -> dict:
    """A reply any client can handle: a known status, a JSON body, no traceback."""
    assert status in OK_STATUSES, (status, raw[:500])
    assert b"Traceback" not in raw and b'File "' not in raw, raw[:500]
    assert headers.get("content-type", "").startswith("application/json"), (headers, raw[:200])
    data = json.loads(raw)
    assert isinstance(data, dict)
    if status == 200:
        return data
    message = data.get("error", data.get("detail"))
    assert isinstance(message, str) and message.strip(), data
    return data


def ask(server, body: bytes, content_type: str | None = "application/json"):
    status, headers, raw = send(server, "POST", "/api/ask", body, content_type)
    return status, check(status, headers, raw)


@settings(max_examples=40, **FUZZ)
@given(question=texts, with_id=st.booleans())
def test_any_question_text(server, question, with_id):
    body = {"question": question}
    if with_id:
        body["conversation_id"] = question[:40]
    status, data = ask(server, json.dumps(body).encode())
    assert status == 200, data
    assert data["answer"]["kind"] in {"answer", "tool", "clarify", "not_covered", "refusal", "error"}
    assert data["conversation_id"]


@settings(max_examples=12, **FUZZ)
@given(n=st.integers(min_value=MAX_QUESTION_CHARS - 3, max_value=MAX_QUESTION_CHARS + 3) |
       st.integers(min_value=MAX_QUESTION_CHARS, max_value=16_000),
       char=st.sampled_from(["x", "é", "🧬", "1 ", "\u202e"]))
def test_long_questions_at_and_over_the_limit(server, n, char):
    question = (char * n)[:n]
    raw = json.dumps({"question": question}).encode()
    status, data = ask(server, raw)
    if len(raw) > MAX_BODY:
        assert status == 413 and f"{MAX_BODY:,}" in data["error"], data
    elif n > MAX_QUESTION_CHARS:
        assert status == 413 and f"{MAX_QUESTION_CHARS:,}" in data["error"] and f"{n:,}" in data["error"], data
    else:
        assert status == 200, data


@settings(max_examples=60, **FUZZ)
@given(raw=st.binary(max_size=600))
def test_random_bytes(server, raw):
    status, data = ask(server, raw)
    assert status in (400, 422), data


@settings(max_examples=40, **FUZZ)
@given(question=texts, cut=st.floats(min_value=0, max_value=0.999))
def test_truncated_json(server, question, cut):
    raw = json.dumps({"question": question, "conversation_id": "abc"}).encode()
    part = raw[:int(len(raw) * cut)]
    status, data = ask(server, part)
    assert status in (400, 422), data  # empty body: "must be a JSON object" (422)


@settings(max_examples=60, **FUZZ)
@given(body=json_values)
def test_any_json_value(server, body):
    status, data = ask(server, json.dumps(body).encode())
    if not isinstance(body, dict):
        assert status == 422 and "object" in data["error"], data
    elif not isinstance(body.get("question"), str):
        assert status == 422 and "question" in data["error"], data


@settings(max_examples=40, **FUZZ)
@given(question=json_values, conv=json_values, extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3))
def test_wrong_types_for_the_fields(server, question, conv, extra):
    body = {**extra, "question": question, "conversation_id": conv}
    status, data = ask(server, json.dumps(body).encode())
    if not isinstance(question, str):
        assert status == 422 and '"question"' in data["error"], data
    elif conv is not None and not isinstance(conv, str):
        assert status == 422 and '"conversation_id"' in data["error"], data


EDGE_BODIES = [
    b'{"question": 1e999}', b'{"question": -1e999}', b'{"question": NaN}', b'{"question": Infinity}',
    b'{"question": ' + b"9" * 5000 + b"}", b'{"question": "a", "conversation_id": ' + b"1" * 5000 + b"}",
    b"[" * 20_000 + b"]" * 20_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000, b"[" * 60_000,
    b'{"question": "\\ud800"}', b'{"question": "abc\\udfff def"}', b'{"question": "Q2055", "conversation_id": "\\ud83d"}',
    b'\xef\xbb\xbf{"question": "Q2055"}', b'{"question": "Q2055"', b'{"question": "Q2055",}', b"{'question': 'x'}",
    b'{"question": "\xff\xfe"}', b"\x00" * 100, b"null", b"true", b"0", b'""', b"[]", b"{}", b"",
    b'{"question": "Q2055", "question": 7}', b'{"question": ["Q2055"]}', b'{"question": {"text": "Q2055"}}',
    '{"question": "What is Q2055?"}'.encode("utf-16"),
]


@pytest.mark.parametrize("raw", EDGE_BODIES, ids=range(len(EDGE_BODIES)))
def test_edge_bodies(server, raw):
    for path in ("/api/ask", "/api/feedback"):
        status, headers, body = send(server, "POST", path, raw)
        check(status, headers, body)
        if path == "/api/feedback" or b"\\ud8" in raw or b"\\udf" in raw:
            assert status != 200, body  # no feedback in these; lone surrogates refused (400)


@settings(max_examples=60, **FUZZ)
@given(body=st.dictionaries(st.sampled_from(["rating", "answer", "question", "comment", "conversation_id", "x"]),
                            json_values, max_size=6)
       | st.fixed_dictionaries({"rating": st.sampled_from([1, -1]),
                                "answer": st.fixed_dictionaries({"text": texts}, optional={
                                    "citations": json_values, "tool_calls": json_values, "kind": json_values,
                                    "question": json_values}),
                                "question": texts, "comment": texts}))
def test_feedback_bodies(server, body):
    status, headers, raw = send(server, "POST", "/api/feedback", json.dumps(body).encode())
    data = check(status, headers, raw)
    if status == 200:
        assert isinstance(data["id"], int)


CONTENT_TYPES = [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz",
                 "application/xml", "text/html; charset=utf-8", "application/octet-stream", "json",
                 "application/jsonp", "image/png"]


@pytest.mark.parametrize("ctype", CONTENT_TYPES)
def test_wrong_content_types_are_415(server, ctype):
    for path in ("/api/ask", "/api/feedback"):
        status, headers, raw = send(server, "POST", path, b'{"question": "What is Q2055?"}', ctype)
        data = check(status, headers, raw)
        assert status == 415 and "application/json" in data["error"], (ctype, data)


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8",
                                   "Application/JSON", "application/vnd.api+json"])
def test_json_content_types_are_accepted(server, ctype):
    status, data = ask(server, b'{"question": "What is the HCPCS code for Abecma?"}', ctype)
    assert status == 200 and "Q2055" in data["answer"]["text"], data


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/api/ask", "/api/feedback"])
def test_wrong_methods_are_405(server, method, path):
    status, headers, raw = send(server, method, path, b'{"question": "Q2055"}' if method != "GET" else None)
    check(status, headers, raw)
    assert status == 405


def test_post_to_health_is_405_and_unknown_paths_404(server):
    status, headers, raw = send(server, "POST", "/api/health", b"{}")
    check(status, headers, raw)
    assert status == 405
    status, headers, raw = send(server, "POST", "/api/nope", b"{}")
    check(status, headers, raw)
    assert status == 404


def test_declared_oversized_body_is_refused_before_it_is_read(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("POST", "/api/ask")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(50 * 1024 * 1024))
        conn.endheaders()
        conn.send(b'{"question": "')  # and nothing more: the server must not wait for 50 MB
        resp = conn.getresponse()
        status, raw = resp.status, resp.read()
    finally:
        conn.close()
    assert status == 413 and f"{MAX_BODY:,}" in json.loads(raw)["error"]


def test_chunked_oversized_body_is_413(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        chunks = (b"x" * 16384 for _ in range(10))  # 160 KiB without a Content-Length
        conn.request("POST", "/api/ask", body=chunks, headers={"Content-Type": "application/json"},
                     encode_chunked=True)
        resp = conn.getresponse()
        status, raw = resp.status, resp.read()
    finally:
        conn.close()
    assert status == 413 and f"{MAX_BODY:,}" in json.loads(raw)["error"]


def test_the_server_still_answers_after_the_fuzzing(server):
    status, data = ask(server, b'{"question": "What is the HCPCS code for Tecartus?"}')
    assert status == 200 and "Q2053" in data["answer"]["text"]
