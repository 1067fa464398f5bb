"""The JSON API, /gradio.js and feedback against the real app running as a subprocess."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from urllib.parse import urljoin

import pytest

from app_server import AppServer, app_env, free_port, request

ALLOWED_ORIGIN_PORT = free_port()  # an origin the module's server trusts (nothing needs to listen there)
ALLOWED_ORIGIN = f"http://127.0.0.1:{ALLOWED_ORIGIN_PORT}"


@pytest.fixture(scope="module")
def server(index_env, tmp_path_factory):
    data = tmp_path_factory.mktemp("api-feedback")
    srv = AppServer(app_env(index_env, data, CART_ALLOWED_ORIGINS=ALLOWED_ORIGIN))
    srv.data_dir = data
    srv.start()
    yield srv
    srv.close()


def ask(server, question, conversation_id=None):
    body = {"question": question}
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    status, _, raw = request("POST", server.url + "/api/ask", body)
    assert status == 200, raw
    return json.loads(raw)


def test_health(server):
    status, _, raw = request("GET", server.url + "/api/health")
    data = json.loads(raw)
    assert status == 200 and data["status"] == "ok" and data["documents"] == 5 and data["index"]


def test_ask_returns_a_cited_answer(server):
    data = ask(server, "What is the HCPCS code for Abecma?")
    assert data["conversation_id"]
    a = data["answer"]
    assert "Q2055" in a["text"]
    assert a["citations"], a
    first = a["citations"][0]
    assert first["doc_id"].startswith("abecma") and "Q2055" in first["quote"]
    for c in a["citations"]:
        assert c["doc_id"] and c["quote"] and len(c["span"]) == 2


def test_conversation_continuity(server):
    first = ask(server, "What is the HCPCS code for Abecma?")
    follow = ask(server, "And its payment limit?", first["conversation_id"])
    assert follow["conversation_id"] == first["conversation_id"]
    a = follow["answer"]
    assert a["citations"] and all("abecma" in c["doc_id"] or "Q2055" in c["quote"] for c in a["citations"][:1])
    assert any("abecma" in c["doc_id"] for c in a["citations"]), a["citations"]
    assert "Q2055" in a["text"] and "$" in a["text"]
    # without the conversation the same follow-up has nothing to inherit
    alone = ask(server, "And its payment limit?")
    assert alone["conversation_id"] != first["conversation_id"]
    # no Abecma payment computed: the sources' per-code sentences may still be quoted
    assert not alone["answer"]["tool_calls"] and "$" not in alone["answer"]["text"].split("\n")[0]


def _error(status_expected, status, raw):
    assert status == status_expected, raw
    data = json.loads(raw)
    assert set(data) == {"error"} and isinstance(data["error"], str) and data["error"]
    return data["error"]


def test_malformed_json_is_400(server):
    status, _, raw = request("POST", server.url + "/api/ask", b'{"question": "Q2055', )
    assert "JSON" in _error(400, status, raw)


def test_wrong_types_are_422(server):
    for body in ({"question": 42}, {"question": "Q2055", "conversation_id": 7}, {"question": None}):
        status, _, raw = request("POST", server.url + "/api/ask", body)
        _error(422, status, raw)
    status, _, raw = request("POST", server.url + "/api/ask", b'["What is Q2055?"]')
    assert "object" in _error(422, status, raw)


def test_oversized_question_is_413_naming_the_limit(server):
    status, _, raw = request("POST", server.url + "/api/ask", {"question": "x" * 20_000})
    message = _error(413, status, raw)
    assert "20,000" in message and "4,000" in message


def test_oversized_body_is_413(server):
    body = json.dumps({"question": "Q2055", "padding": "y" * 70_000}).encode()
    status, _, raw = request("POST", server.url + "/api/ask", body)
    message = _error(413, status, raw)
    assert "65,536" in message


def test_feedback_bad_rating_is_422(server):
    status, _, raw = request("POST", server.url + "/api/feedback", {"rating": 5, "answer_id": "x"})
    assert "rating" in _error(422, status, raw)


def _preflight(server, origin):
    return request("OPTIONS", server.url + "/api/ask", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})


def test_cors_closed_to_unlisted_origins(server):
    status, headers, _ = _preflight(server, "http://intranet.example")
    assert "access-control-allow-origin" not in headers
    status, headers, raw = request("POST", server.url + "/api/ask", {"question": "Q2055"},
                                   headers={"Origin": "http://intranet.example"})
    assert "access-control-allow-origin" not in headers


def test_cors_open_to_the_configured_origin(server):
    status, headers, _ = _preflight(server, ALLOWED_ORIGIN)
    assert status == 200 and headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    # the web component's requests to Gradio's routes are allowed for it as well
    status, headers, _ = request("GET", server.url + "/config", headers={"Origin": ALLOWED_ORIGIN})
    assert status == 200 and headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    status, headers, raw = request("POST", server.url + "/api/ask", {"question": "What is the HCPCS code for Abecma?"},
                                   headers={"Origin": ALLOWED_ORIGIN})
    assert status == 200 and headers.get("access-control-allow-origin") == ALLOWED_ORIGIN


@pytest.mark.slow
def test_cors_closed_without_configuration(index_env, tmp_path):
    srv = AppServer(app_env(index_env, tmp_path / "data", CART_TRUSTED_HOSTS="127.0.0.1,assistant.intranet"))
    try:
        srv.start()
        status, headers, _ = _preflight(srv, ALLOWED_ORIGIN)
        assert "access-control-allow-origin" not in headers
        status, _, raw = request("POST", srv.url + "/api/ask", {"question": "What is the HCPCS code for Abecma?"})
        assert status == 200 and "Q2055" in json.loads(raw)["answer"]["text"]  # same-origin still works
        # Gradio's own routes too, also when the server is reached under an intranet host name
        # (Gradio's CORS middleware alone would reflect any origin then)
        for host in (f"127.0.0.1:{srv.port}", f"assistant.intranet:{srv.port}"):
            status, headers, _ = request("GET", srv.url + "/config",
                                         headers={"Host": host, "Origin": "http://evil.example"})
            assert status == 200 and "access-control-allow-origin" not in headers, (host, headers)
            status, headers, _ = request("OPTIONS", srv.url + "/gradio_api/queue/join", headers={
                "Host": host, "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
            assert "access-control-allow-origin" not in headers, (host, headers)
    finally:
        srv.close()


def test_gradio_js_is_served_locally_with_its_imports(server):
    status, headers, raw = request("GET", server.url + "/gradio.js")
    assert status == 200
    assert "javascript" in headers["content-type"]
    js = raw.decode("utf-8")
    imports = re.findall(r"""(?:import\s*(?:[\w{}\s,*]+from\s*)?|import\()\s*["']([^"']+\.js)["']""", js)
    assert imports, js[:500]
    for path in imports:
        assert not path.startswith(("http:", "https:", "//")), f"gradio.js imports {path} from another host"
        url = urljoin(server.url + "/gradio.js", path)
        status, headers, body = request("GET", url)
        assert status == 200, f"{url} -> {status}"
        assert "javascript" in headers["content-type"] and body


def test_feedback_is_stored(server):
    data = ask(server, "What is the HCPCS code for Abecma?")
    status, _, raw = request("POST", server.url + "/api/feedback", {
        "answer_id": data["answer_id"], "rating": -1, "comment": "needs the JW modifier"})
    assert status == 200, raw
    fid = json.loads(raw)["id"]
    with closing(sqlite3.connect(server.data_dir / "feedback.sqlite3")) as db:
        row = db.execute("SELECT rating, comment, question, answer, citations, conversation_id, kind "
                         "FROM feedback WHERE id = ?", (fid,)).fetchone()
    assert row is not None
    rating, comment, question, answer, citations, conv_id, kind = row
    assert (rating, comment, question, conv_id) == (-1, "needs the JW modifier",
                                                     "What is the HCPCS code for Abecma?", data["conversation_id"])
    assert "Q2055" in answer and kind == data["answer"]["kind"]
    assert json.loads(citations)[0]["doc_id"] == data["answer"]["citations"][0]["doc_id"]
