"""Request log lines: their format, the question never verbatim unless asked for, one line per request."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest

from assistant import requestlog
from assistant.answer import Answer, Citation, ToolCall
from assistant.tools.result import ToolResult

LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00) event=(?P<event>ask|feedback) "
    r"interface=(?P<interface>api|gradio)(?: status=(?P<status>\d{3}))? latency_ms=(?P<ms>\d+\.\d) "
    r"kind=(?P<kind>[\w.:+-]+)(?: rating=(?P<rating>[+-]1))? tools=(?P<tools>[\w.:+,-]+) "
    r"citations=(?P<citations>\d+) conv=(?P<conv>[\w-]{1,8}) (?P<q>q=.*) len=(?P<len>\d+)$")

PATIENT_QUESTION = "carvykti dose for a 120 kg patient, infused 2024-03-05 (DOB 03/04/1961), BSA 1.85"
SECRETS = ["120", "2024-03-05", "03/04/1961", "1961", "1.85"]


def _answer() -> Answer:
    return Answer(question=PATIENT_QUESTION, text="Dose ... [1]", kind="tool",
                  citations=[Citation(1, "carvykti-billing-guide", "t", "s", "q", (0, 1)),
                             Citation(2, "carvykti-billing-guide", "t", "s", "q", (1, 2))],
                  tool_calls=[ToolCall("weight_based_dose", {"weight": 120}, _result("weight_based_dose", {"dose": 1})),
                              ToolCall("bsa", {"height": 170}, _result("bsa", {"bsa": 1.85}))])


def _result(name: str, values: dict) -> ToolResult:
    return ToolResult(name=name, inputs={}, values=values, summary="", formula="")


@pytest.fixture()
def captured(monkeypatch):
    """The log lines emitted through the 'cart.requests' logger."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect()
    monkeypatch.setattr(requestlog, "_configured", True)
    requestlog.logger.addHandler(handler)
    old_level = requestlog.logger.level
    requestlog.logger.setLevel(logging.INFO)
    yield lines
    requestlog.logger.removeHandler(handler)
    requestlog.logger.setLevel(old_level)


def test_ask_line_format(captured, monkeypatch):
    monkeypatch.delenv("CART_LOG_QUESTIONS", raising=False)
    requestlog.log_ask("api", PATIENT_QUESTION, _answer(), "0123456789abcdef0123", 61.234, status=200)
    assert len(captured) == 1
    m = LINE.match(captured[0])
    assert m, captured[0]
    assert m["event"] == "ask" and m["interface"] == "api" and m["status"] == "200"
    assert m["ms"] == "61.2" and m["kind"] == "tool" and m["citations"] == "2"
    assert m["tools"] == "weight_based_dose,bsa"
    assert m["conv"] == "01234567"  # shortened: the full id would let a log reader join the conversation
    assert re.fullmatch(r"q=h:[0-9a-f]{12}", m["q"]) and m["len"] == str(len(PATIENT_QUESTION))
    assert "\n" not in captured[0]


def test_feedback_line_format(captured):
    requestlog.log_feedback("gradio", -1, PATIENT_QUESTION, _answer().to_dict(), "abcdef9876543210", 3.0)
    m = LINE.match(captured[0])
    assert m, captured[0]
    assert (m["event"], m["interface"], m["rating"], m["kind"], m["citations"]) == ("feedback", "gradio", "-1",
                                                                                    "tool", "2")
    assert m["status"] is None


@pytest.mark.parametrize("how", ["hash", "redact"])
def test_patient_figures_never_logged(captured, monkeypatch, how):
    monkeypatch.setenv("CART_LOG_QUESTIONS", how)
    requestlog.log_ask("gradio", PATIENT_QUESTION, _answer(), "c" * 32, 10.0)
    requestlog.log_feedback("api", 1, PATIENT_QUESTION, _answer().to_dict(), "c" * 32, 1.0, status=200)
    assert len(captured) == 2
    for text in captured:
        q = LINE.match(text)["q"]
        for secret in SECRETS:
            assert secret not in q, (secret, text)
        assert "120 kg" not in text and "2024" not in text


def test_redaction_keeps_the_shape_of_the_question():
    assert requestlog.redact("carvykti dose 120 kg") == "carvykti dose <n> kg"
    assert requestlog.redact("dose for 120kg, 1.85 m2") == "dose for <n>kg, <n> m2"
    assert requestlog.redact("infused on 2024-03-05 and 3/4/24") == "infused on <date> and <date>"
    assert requestlog.redact("seen March 5, 2024; due 5 Apr 2024") == "seen <date>; due <date>"
    assert requestlog.redact("MRN 00123456 Q2055 payment limit") == "MRN <id> Q2055 payment limit"
    # one line, no control or bidi characters, bounded
    assert requestlog.redact("a\nb\r\x1b[31m\u202ec") == "a b [<n>m c"
    assert len(requestlog.redact("x " * 5000)) <= 201


def test_full_mode_logs_the_question_quoted_on_one_line(captured, monkeypatch):
    monkeypatch.setenv("CART_LOG_QUESTIONS", "full")
    requestlog.log_ask("api", 'dose 120 kg\nq="x" len=1', None, None, 1.0, status=422, kind="rejected")
    m = LINE.match(captured[0])
    assert m and m["kind"] == "rejected" and m["conv"] == "-"
    assert json.loads(m["q"][2:]) == 'dose 120 kg q="x" len=1'


def test_hash_is_stable_within_a_run_and_salted():
    h = requestlog.question_hash("What is Q2055?")
    assert h == requestlog.question_hash("What is Q2055?") != requestlog.question_hash("What is Q2056?")
    import hashlib

    assert h != hashlib.sha256(b"What is Q2055?").hexdigest()[:12]  # unsalted would be a dictionary lookup


def test_bad_mode_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("CART_LOG_QUESTIONS", "verbatim")
    with pytest.raises(SystemExit, match="CART_LOG_QUESTIONS"):
        requestlog.mode()


@pytest.mark.slow
def test_a_real_api_request_logs_exactly_one_line(index_env, tmp_path):
    from app_server import AppServer, app_env, request

    log_file = tmp_path / "requests.log"
    srv = AppServer(app_env(index_env, tmp_path / "data", CART_LOG_FILE=str(log_file)))
    try:
        srv.start()
        assert not log_file.exists() or log_file.read_text() == ""  # health checks are not logged
        question = "cilta-cel dose for a 120 kg patient"
        status, _, raw = request("POST", srv.url + "/api/ask", {"question": question})
        assert status == 200, raw
        conv_id = json.loads(raw)["conversation_id"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not log_file.read_text().strip():
            time.sleep(0.1)
        lines = log_file.read_text().splitlines()
        assert len(lines) == 1, lines
        m = LINE.match(lines[0])
        assert m, lines[0]
        assert (m["event"], m["interface"], m["status"], m["conv"]) == ("ask", "api", "200", conv_id[:8])
        # the question is logged as a salted hash only (a hash may contain "120" by chance)
        q_field = lines[0].split(" q=")[1].split()[0]
        assert m["len"] == str(len(question)) and re.fullmatch(r"h:[0-9a-f]{12}", q_field), lines[0]
        assert "120 kg" not in lines[0] and "cilta" not in lines[0]
        assert conv_id not in lines[0]
        # a rejected request is one line too, and nothing of it reaches the app's stderr
        status, _, _ = request("POST", srv.url + "/api/ask", {"question": 42})
        assert status == 422
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(log_file.read_text().splitlines()) < 2:
            time.sleep(0.1)
        lines = log_file.read_text().splitlines()
        assert len(lines) == 2 and " status=422 " in lines[1] and " kind=rejected " in lines[1]
        assert "event=" not in srv.output()
    finally:
        srv.close()
