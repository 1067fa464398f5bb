"""Request log lines: their format, the question never verbatim unless asked for, one line per request."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant import requestlog
from assistant.answer import Answer, Citation, ToolCall
from assistant.tools.result import ToolResult

LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00) event=(?P<event>ask|feedback) "
    r"interface=(?P<interface>api|gradio)(?: status=(?P<status>\d{3}))? latency_ms=(?P<ms>\d+\.\d) "
    r"kind=(?P<kind>[\w.:+-]+)(?: rating=(?P<rating>[+-]1))? tools=(?P<tools>[\w.:+,-]+) "
    r"citations=(?P<citations>\d+) conv=(?P<conv>[\w-]{1,8}) user=(?P<user>h:[0-9a-f]{8}|-) (?P<q>q=.*) len=(?P<len>\d+)$")

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


# --- redact: personal details out, billing words and codes in --------------------------------

# (question, what must not be logged, what must still be there)
PATIENT_DETAILS = [
    ("Pt John Smith DOB 03/04/1961 MRN 00123456 carvykti dose 82 kg Q2055",
     ["John", "Smith", "1961", "03/04", "00123456", "82"], ["Pt", "carvykti", "Q2055", "kg", "DOB", "MRN", "dose"]),
    ("John Smith DOB 3/4/1961 MRN 00123456, 82 kg, carvykti dose",
     ["John", "Smith", "1961", "00123456", "82"], ["carvykti", "kg", "dose"]),
    ("pt john smith dob 3/4/61 needs cilta-cel", ["john", "smith", "3/4/61"], ["pt", "dob", "needs", "cilta-cel"]),
    ("SMITH, JOHN d.o.b. 4 Mar 1961 member id XJ123456789 Tecartus J9185",
     ["SMITH", "JOHN", "Mar", "1961", "XJ123456789"], ["member id", "Tecartus", "J9185", "d.o.b."]),
    ("Name: Smith, John A. MRN: A12345. Payer: Aetna, prior auth for Abecma?",
     ["Smith", "John", "A12345"], ["Name:", "MRN:", "Payer: Aetna", "prior auth", "Abecma"]),
    ("I have a patient, Robert McDonald, who needs Breyanzi. His wife Linda called from 555-123-4567",
     ["Robert", "McDonald", "Linda", "555", "4567"], ["patient", "Breyanzi", "wife", "called"]),
    ("Dr. J. Smith ordered Yescarta for Mrs. O'Brien, bill 0537T and XW033C3?",
     ["Smith", "O'Brien", "Brien", " J."], ["Dr.", "Mrs.", "Yescarta", "0537T", "XW033C3"]),
    ("patient mary ann jones weighs 70 kg, dx C90.00, mrn#12345", ["mary", "ann", "jones", "70", "12345"],
     ["patient", "weighs", "kg", "C90.00", "mrn#"]),
    ("The patient, José Núñez (SSN 123-45-6789), has DLBCL: Kymriah or Yescarta?",
     ["José", "Núñez", "123-45-6789", "6789"], ["The patient", "SSN", "DLBCL", "Kymriah", "Yescarta"]),
    ("PRIOR AUTH FOR JOHN SMITH, ABECMA, BORN 1961", ["JOHN", "SMITH", "1961"], ["PRIOR AUTH FOR", "ABECMA", "BORN"]),
    ("mail results to jane.doe@hospital.org or +1 (555) 123-4567 re Carvykti", ["jane", "hospital", "555", "4567"],
     ["mail results", "Carvykti"]),
]


@pytest.mark.parametrize("question,dropped,kept", PATIENT_DETAILS, ids=[q[:30] for q, _, _ in PATIENT_DETAILS])
def test_redact_removes_patient_details_and_keeps_the_billing_words(question, dropped, kept):
    out = requestlog.redact(question)
    for secret in dropped:
        assert secret not in out, (secret, out)
    for word in kept:
        assert word in out, (word, out)


def test_redact_names_the_kind_of_each_detail_removed():
    assert requestlog.redact("Pt John Smith DOB 03/04/1961 MRN 00123456, 82 kg, carvykti dose") == \
        "Pt <name> DOB <dob> MRN <id>, <n> kg, carvykti dose"
    assert requestlog.redact("e-mail jane.doe+pa@hospital.example.org today") == "e-mail <email> today"
    phones = ["555-123-4567", "(555) 123-4567", "+1 555 123 4567", "555.123.4567", "1-800-555-1234"]
    for phone in phones:
        assert requestlog.redact(f"call {phone} re Abecma") == "call <phone> re Abecma", phone
    assert requestlog.redact("SSN 123-45-6789, ssn: 123 45 6789, 987-65-4321") == "SSN <id>, ssn: <id>, <id>"
    assert requestlog.redact("MRN: A12345 mrn#12345 MR# 4455 acct 99-12 member id XJ123456789") == \
        "MRN: <id> mrn#<id> MR# <id> acct <id> member id <id>"
    assert requestlog.redact("DOB: 1961-03-04, born March 4, 1961, date of birth 4 Mar 61") == \
        "DOB: <dob>, born <dob>, date of birth <dob>"
    assert requestlog.redact("Smith, John and JONES, MARY A for Breyanzi") == "<name> and <name> for Breyanzi"


# questions without personal data, in the shorthand coders type: nothing in them is taken for a name
BILLING_QUESTIONS = [
    "Does CarePartners of Connecticut require prior auth for Abecma?",
    "How do I bill Kymriah for Blue Cross Blue Shield of Texas under Medicare Part B?",
    "Is tocilizumab (Actemra) separately billable with Breyanzi, or is it in the MS-DRG?",
    "Which CPT codes for leukapheresis (0537T, 0538T, 38225, 38228) under OPPS and ICD-10-PCS XW033C3?",
    "Can I bill the JW modifier for Abecma wastage? What about JZ on the Tecartus claim to Aetna?",
    "centene medicaid PA abecma, RRMM after VRd, KRd, Isa-Kd and Dara-Pd, BCMA-naive, no prior CAR-T, meets CP.PHAR.481?",
    "pt coins for Carvykti OP under UnitedHealthcare, and does Humana or Cigna cover Yescarta for DLBCL?",
    "fludarabine and cyclophosphamide NDCs and J9185 units for Tecartus in MCL, dx C83.10 or C90.00?",
    "What HCPCS, NDC and ASP apply on the DOS for Breyanzi in ALL or CLL, and is REMS needed by the MAC?",
]


def test_redact_keeps_billing_questions_without_personal_data_intact():
    assert [requestlog.redact(q) for q in BILLING_QUESTIONS] == BILLING_QUESTIONS


EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w-]+")
FRAGMENTS = ["John", "Smith", "SMITH,", "JOHN", "pt", "Pt", "patient", "Dr.", "mrs", "DOB", "d.o.b.", "born", "MRN",
             "MRN:", "mrn#", "member id", "SSN", "3/4/1961", "1961-03-04", "03041961", "555-123-4567", "(555)",
             "123-4567", "+1", "jane.doe@hospital.org", "a@b.co", "@", ".", ",", "-", "<", ">", "<n>", "\x00", "\n",
             "\u2028", "\u202e", "1234567", "12345678901", "Q2055", "0537T", "C90.00", "38228", "ICD-10", "82 kg",
             "120kg", "Abecma", "Carvykti", "CarePartners", "Connecticut", "O'Brien", "Garcia-Lopez", "Isa-Kd", "١٢٣٤٥٦٧"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=600),
                 st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=80)
                 .flatmap(lambda parts: st.sampled_from(["", " "]).map(lambda sep: sep.join(parts)))))
def test_redact_never_raises_and_never_logs_an_email_or_a_long_number(text):
    out = requestlog.redact(text)
    assert isinstance(out, str) and len(out) <= 201
    assert len(out.splitlines()) <= 1 and "\n" not in out and "\r" not in out
    assert not EMAIL.search(out), out
    assert not re.search(r"\d{7,}", out), out


# --- the log file: private, and reopened when logrotate moves it ------------------------------

@pytest.fixture()
def log_file(tmp_path, monkeypatch):
    """CART_LOG_FILE in a temporary directory and the logger as configure() finds it at start-up (no
    handler, not configured), under the usual umask 022; afterwards the handler configure() attached
    is closed and the logger is as before, so other tests keep their own handlers."""
    path = tmp_path / "requests.log"
    monkeypatch.setenv("CART_LOG_FILE", str(path))
    monkeypatch.delenv("CART_LOG_QUESTIONS", raising=False)
    log = requestlog.logger
    saved = (log.handlers[:], log.level, log.propagate)
    for handler in saved[0]:
        log.removeHandler(handler)
    monkeypatch.setattr(requestlog, "_configured", False)
    umask = os.umask(0o022)
    try:
        yield path
    finally:
        os.umask(umask)
        for handler in log.handlers[:]:
            log.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            log.addHandler(handler)
        log.setLevel(saved[1])
        log.propagate = saved[2]


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _ask(question: str) -> None:
    requestlog.log_ask("api", question, None, None, 1.0, status=422, kind="rejected")


def test_log_file_is_created_private(log_file):
    requestlog.configure()
    _ask("first")
    assert _mode(log_file) == 0o600
    lines = log_file.read_text().splitlines()
    assert len(lines) == 1 and LINE.match(lines[0]), lines


def test_an_existing_log_file_is_tightened_and_appended_to(log_file):
    log_file.write_text("an earlier line\n")
    os.chmod(log_file, 0o644)
    requestlog.configure()
    assert _mode(log_file) == 0o600
    _ask("second")
    lines = log_file.read_text().splitlines()
    assert lines[0] == "an earlier line" and len(lines) == 2 and LINE.match(lines[1])


def test_log_file_is_reopened_after_logrotate_moves_it(log_file):
    _ask("before rotation")  # configures on first use, as the app does at start-up
    rotated = log_file.with_name("requests.log.1")
    log_file.rename(rotated)  # what logrotate does (without copytruncate)
    _ask("after rotation")
    _ask("and again")
    assert len(rotated.read_text().splitlines()) == 1
    lines = log_file.read_text().splitlines()
    assert len(lines) == 2 and all(LINE.match(line) for line in lines), lines
    assert _mode(log_file) == 0o600  # the reopened file is private too, whatever the umask
    log_file.unlink()  # logrotate's "create" off, a cleanup script removed it: recreated as well
    _ask("after removal")
    assert len(log_file.read_text().splitlines()) == 1 and _mode(log_file) == 0o600


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


def test_a_signed_in_user_is_logged_as_a_hash_not_a_name(captured):
    requestlog.log_ask("api", "What is the HCPCS code for Abecma?", _answer(), "c" * 32, 2.0, status=200,
                       user="coder.alice@hospital.org")
    requestlog.log_ask("api", "What is the HCPCS code for Abecma?", _answer(), "c" * 32, 2.0, status=200,
                       user="coder.alice@hospital.org")
    requestlog.log_ask("gradio", "q", _answer(), "d" * 32, 2.0, user="local")
    first, second, local = (LINE.match(line) for line in captured)
    assert first and second and local
    assert first["user"] == second["user"] != "-" and local["user"] == "-"
    assert "alice" not in "".join(captured)
