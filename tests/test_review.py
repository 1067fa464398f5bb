"""The Review page (CART_ADMIN_PAGES=on): the feedback queue with its filters, the reason given
with "Not helpful", a golden-set case drafted from an item that evals/check_golden.py accepts, and
the CSV export. Store, derivation and validation are unit tests; the routes, the admin gate and
the page run against the real app subprocess (real answers from /api/ask) and real Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import sqlite3
import subprocess
import sys
import urllib.parse
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from app_server import AppServer, app_env, request
from assistant.api import BadRequest, _feedback_fields
from assistant.feedback import REASONS, FeedbackStore
from assistant.review import FILL_IN, csv_text, fit_quote, golden_case, safe_cell
from conftest import PROJECT
from evals import check_golden

DOCS = {p.stem: check_golden.body(p.read_text(encoding="utf-8")) for p in check_golden.DOCS.glob("*.md")}
QUOTE = "Abecma is billed under HCPCS Q2055 as a single therapeutic dose."
ANSWER = {"text": f'**Q2055** is the HCPCS code for Abecma. "{QUOTE}" [1]\n\n- More detail [2].', "kind": "answer",
          "citations": [{"marker": 1, "doc_id": "abecma-billing-guide", "title": "Abecma billing guide", "section": "About",
                         "quote": QUOTE, "span": [0, 64]}],
          "tool_calls": [], "notes": ["As of today."]}
PAYMENT = {"text": "**Q2055 payment limit (2026Q2): $559,781.081 per unit.** × 1: allowed $559,781.08; coinsurance 20%\n\n*How:* ...",
           "kind": "tool", "citations": [], "notes": [],
           "tool_calls": [{"name": "payment", "arguments": {"code": "Q2055"}, "error": None,
                           "result": {"summary": "**Q2055 payment limit: $559,781.081 per unit.**", "formula": "559,781.081 × 1"}}]}
REFUSAL = {"text": "Sorry, that is outside what I do.", "kind": "refusal", "citations": [], "tool_calls": [], "notes": []}
COMMENT = "=cmd|' /C calc'!A0"


def _item(answer: dict, fid: int = 7, rating: int = -1, reason: str = "", question: str = "whats the hcpcs for abecma") -> dict:
    return {"id": fid, "created": "2026-12-01T09:00:00+00:00", "rating": rating, "reason": reason, "comment": "cites 2024",
            "question": question, "kind": answer["kind"], "answer": answer, "user": "lead1"}


def _check_golden(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROJECT / "evals" / "check_golden.py"), *map(str, files)], cwd=PROJECT,
                          capture_output=True, text=True, timeout=60)


# --- the store: reasons, the whole answer, the queue's filters ------------------------------

def test_a_reason_is_one_of_five_and_only_with_not_helpful(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    for reason in REASONS:
        store.add(rating=-1, question="q", answer=ANSWER, reason=reason)
    store.add(rating=1, question="q", answer=ANSWER)
    for bad in ({"rating": -1, "reason": "bad-vibes"}, {"rating": 1, "reason": "other"}):
        with pytest.raises(ValueError, match="reason"):
            store.add(question="q", answer=ANSWER, **bad)
    assert [r["reason"] for r in store.all()] == [*REASONS, ""]
    # the API says so with a 422 (and takes a missing or null reason as none)
    assert _feedback_fields({"rating": -1, "answer_id": "a", "reason": "outdated-source"})[3] == "outdated-source"
    assert _feedback_fields({"rating": 1, "answer_id": "a", "reason": None})[3] == ""
    for body in ({"rating": -1, "answer_id": "a", "reason": "nope"}, {"rating": 1, "answer_id": "a", "reason": "other"},
                 {"rating": -1, "answer_id": "a", "reason": ["other"]}):
        with pytest.raises(BadRequest) as refused:
            _feedback_fields(body)
        assert refused.value.status == 422 and "reason" in refused.value.message


def test_items_are_newest_first_with_the_whole_answer_and_filter_by_rating_kind_and_day(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    a = store.add(rating=-1, question="code?", answer=ANSWER, reason="outdated-source", comment="old")
    b = store.add(rating=1, question="pay?", answer=PAYMENT)
    c = store.add(rating=-1, question="weather?", answer=REFUSAL, reason="other")
    with closing(sqlite3.connect(store.path)) as db, db:  # three days, in the order they were given
        for fid, created in ((a, "2026-11-28T23:59:59+00:00"), (b, "2026-11-29T00:00:00+00:00"), (c, "2026-11-30T12:00:00+00:00")):
            db.execute("UPDATE feedback SET created = ? WHERE id = ?", (created, fid))
    ids = lambda **f: [i["id"] for i in store.items(**f)]  # noqa: E731
    assert ids() == [c, b, a]
    first = store.item(a)
    assert first["reason"] == "outdated-source" and first["reason_label"] == "Outdated source"
    assert first["answer"]["citations"][0]["quote"] == QUOTE and first["answer"]["notes"] == ["As of today."]
    assert store.item(b)["answer"]["tool_calls"][0]["result"]["formula"] == "559,781.081 × 1"
    assert ids(rating=-1) == [c, a] and ids(rating=1) == [b]
    assert ids(kind="tool") == [b] and ids(kind="refusal", rating=-1) == [c] and ids(kind="error") == []
    assert ids(since="2026-11-29") == [c, b] and ids(until="2026-11-29") == [b, a]  # whole days, both ends included
    assert ids(since=dt.date(2026, 11, 29), until="2026-11-29") == [b] and ids(since="2026-12-01") == []
    assert ids(limit=1) == [c] and store.item(999) is None
    for bad in ({"rating": 0}, {"kind": "answers"}, {"since": "29/11/2026"}):
        with pytest.raises(ValueError):
            store.items(**bad)


def test_a_row_from_before_the_review_columns_is_migrated_and_shown_from_its_own_columns(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    with closing(sqlite3.connect(path)) as db, db:  # the schema with users and answer ids, before reasons
        db.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL, conversation_id TEXT, "
                   "rating INTEGER NOT NULL CHECK (rating IN (-1, 1)), comment TEXT NOT NULL DEFAULT '', question TEXT NOT NULL, "
                   "answer TEXT NOT NULL, citations TEXT NOT NULL DEFAULT '[]', kind TEXT NOT NULL DEFAULT '', "
                   "user TEXT NOT NULL DEFAULT '', answer_id TEXT NOT NULL DEFAULT '')")
        db.execute("INSERT INTO feedback (created, rating, question, answer, citations, kind) VALUES "
                   "('2026-11-30T00:00:00+00:00', -1, 'q', 'Q2055 [1]', ?, 'answer')", (json.dumps(ANSWER["citations"]),))
    store = FeedbackStore(path)
    (old,) = store.items()
    assert old["reason"] == "" and old["answer"]["text"] == "Q2055 [1]" and old["answer"]["citations"][0]["quote"] == QUOTE
    assert old["answer"]["tool_calls"] == []
    assert store.add(rating=-1, question="q2", answer=ANSWER, reason="wrong-document") == 2


# --- the golden case draft and check_golden on files ----------------------------------------

def test_a_code_answer_becomes_a_case_check_golden_accepts(tmp_path):
    case = golden_case(_item(ANSWER, reason="outdated-source"), DOCS)
    assert case["id"] == "code-review-7-whats-the-hcpcs-for-abecma" and case["kind"] == "code" and case["split"] == "dev"
    assert (case["question"], case["expect"], case["must"], case["lead"]) == ("whats the hcpcs for abecma", "answer", [r"\bQ2055\b"],
                                                                              [r"\bQ2055\b"])
    assert case["docs"] == ["abecma-billing-guide"] and case["evidence"] == [{"doc": "abecma-billing-guide", "quote": QUOTE}]
    assert "Outdated source" in case["note"] and "cites 2024" in case["note"] and "patient details" in case["note"]
    assert list(case) == ["id", "kind", "split", "turns", "question", "expect", "must", "must_not", "docs", "tool", "evidence",
                          "note", "lead"]
    assert check_golden.row_problems(0, case, DOCS, set()) == []


def test_a_wrong_number_a_calculation_a_refusal_and_a_long_quote(tmp_path):
    wrong = golden_case(_item(ANSWER, reason="wrong-code-or-number"), DOCS)
    assert wrong["must"] == [FILL_IN] and wrong["lead"] == [] and "Fill in: must" in wrong["note"] and r"\bQ2055\b" in wrong["note"]
    paid = golden_case(_item(PAYMENT, rating=1, question="Q2055 payment limit"), DOCS)
    assert (paid["kind"], paid["expect"], paid["tool"]) == ("payment", "answer", "payment")
    assert paid["must"] == [r"\bQ2055\b", r"559,?781\.081", r"559,?781\.08", r"20\s*%"] and paid["lead"] == paid["must"][:2]
    refused = golden_case(_item(REFUSAL, question="what is the weather"), DOCS)
    assert (refused["kind"], refused["expect"], refused["must"], refused["docs"]) == ("off_topic", "refusal", [], [])
    field = golden_case(_item(PAYMENT | {"date_of_service": {"source": "field", "date": "2026-02-10"}}, question="Q2055 allowed"), DOCS)
    assert field["kind"] == "dos" and field["question"] == "Q2055 allowed DOS 2026-02-10"
    body = DOCS["centene-abecma-policy"]
    long = body[body.index("Q2055"):][:900]
    fitted = fit_quote(long, body)
    assert fitted in body and 10 <= len(fitted) <= 300 and fit_quote("not in the document at all", body) is None
    drafts = [wrong, paid, refused, field]
    for i, case in enumerate(drafts):
        (tmp_path / f"d{i}.yaml").write_text(yaml.safe_dump([case], sort_keys=False, allow_unicode=True), encoding="utf-8")
    run = _check_golden(*sorted(tmp_path.glob("d*.yaml")))
    assert run.returncode == 0 and "OK: 4 cases" in run.stdout, run.stdout
    # ids unique within the files given, quotes exact: both are checked
    (tmp_path / "again.yaml").write_text(yaml.safe_dump([wrong | {"evidence": [{"doc": "abecma-billing-guide", "quote": QUOTE + "!"}]}]))
    run = _check_golden(tmp_path / "d0.yaml", tmp_path / "again.yaml")
    assert run.returncode == 1 and "duplicate id" in run.stdout and "evidence quote not in abecma-billing-guide" in run.stdout
    run = _check_golden()  # no file: the golden set, as before
    assert run.returncode == 0 and run.stdout.startswith("OK: ") and "golden.yaml" in run.stdout


def test_csv_cells_that_look_like_formulas_are_neutralised():
    assert [safe_cell(v) for v in ("=1+1", "+A1", "-2", "@SUM(A1)", "\t=x", "Q2055", None)] == [
        "'=1+1", "'+A1", "'-2", "'@SUM(A1)", "'\t=x", "Q2055", ""]
    rows = list(csv.reader(io.StringIO(csv_text([_item(ANSWER, reason="other") | {"comment": COMMENT}]).lstrip("\ufeff"))))
    assert rows[0][0] == "id" and rows[1][3:6] == ["not helpful", "Other", "answer"] and rows[1][-1] == "'" + COMMENT
    assert rows[1][7].startswith("Q2055 is the HCPCS code") and rows[1][8] == "abecma-billing-guide"


# --- the real app ---------------------------------------------------------------------------

QUESTIONS = [  # (question, feedback): the order they are given in; the queue shows them newest first
    ("whats the hcpcs for abecma", {"rating": -1, "reason": "outdated-source", "comment": COMMENT}),
    ("Q2055 payment limit", {"rating": 1, "comment": "matches the guide"}),
    ("what is the weather in hartford", {"rating": -1, "reason": "other"}),
    ("<img src=x onerror=\"document.title='xss'\"> carvykti hcpcs", {"rating": 1}),
]


@pytest.fixture(scope="module")
def site(index_env, tmp_path_factory):
    """The app with the admin pages on (the local user is an admin), and feedback on four real answers."""
    srv = AppServer(app_env(index_env, tmp_path_factory.mktemp("review"), CART_ADMIN_PAGES="on")).start()
    srv.given = []
    try:
        for question, feedback in QUESTIONS:
            status, _h, raw = request("POST", srv.url + "/api/ask", {"question": question})
            assert status == 200, raw
            asked = json.loads(raw)
            status, _h, raw = request("POST", srv.url + "/api/feedback", {"answer_id": asked["answer_id"], **feedback})
            assert status == 200, raw
            srv.given.append({"id": json.loads(raw)["id"], "answer": asked["answer"], "answer_id": asked["answer_id"], **feedback})
        yield srv
    finally:
        srv.close()


def _items(site, query: str = "") -> list[dict]:
    status, _h, raw = request("GET", site.url + "/api/admin/review/items" + query)
    assert status == 200, raw
    return json.loads(raw)["items"]


@pytest.mark.slow
def test_the_queue_shows_answers_as_given_newest_first_and_filters(site):
    code, paid, weather, html = site.given
    items = _items(site)
    assert [i["id"] for i in items] == [html["id"], weather["id"], paid["id"], code["id"]]
    shown = {i["id"]: i for i in items}
    first = shown[code["id"]]
    assert (first["question"], first["rating"], first["reason"], first["reason_label"], first["comment"]) == (
        QUESTIONS[0][0], -1, "outdated-source", "Outdated source", COMMENT)
    assert first["answer"]["text"] == code["answer"]["text"]
    assert [(c["doc_id"], c["quote"]) for c in first["answer"]["citations"]] == [
        (c["doc_id"], c["quote"]) for c in code["answer"]["citations"]] and first["answer"]["citations"]
    calc = shown[paid["id"]]["answer"]["tool_calls"]
    assert calc and [(t["name"], t["summary"], t["formula"]) for t in calc] == [
        (t["name"], t["result"]["summary"], t["result"]["formula"]) for t in paid["answer"]["tool_calls"]]
    assert shown[paid["id"]]["kind"] == "tool" and shown[weather["id"]]["kind"] == "refusal"
    assert [i["id"] for i in _items(site, "?rating=-1")] == [weather["id"], code["id"]]
    assert [i["id"] for i in _items(site, "?rating=1&kind=tool")] == [paid["id"]]
    assert [i["id"] for i in _items(site, "?kind=refusal")] == [weather["id"]]
    assert [i["id"] for i in _items(site, "?limit=1")] == [html["id"]]
    day = dt.date.fromisoformat(first["created"][:10])
    assert len(_items(site, f"?from={day}&to={day}")) == 4
    assert _items(site, f"?from={day + dt.timedelta(days=1)}") == [] and _items(site, f"?to={day - dt.timedelta(days=1)}") == []
    for bad in ("?rating=2", "?kind=answers", "?from=2026-13-01", "?limit=many"):
        status, _h, raw = request("GET", site.url + "/api/admin/review/items" + bad)
        assert status == 422 and json.loads(raw)["error"], bad
    # a reason the list does not have, or one with "Helpful", is refused by the feedback API
    for body in ({"rating": -1, "reason": "bad-vibes"}, {"rating": 1, "reason": "other"}):
        assert request("POST", site.url + "/api/feedback", {"answer_id": code["answer_id"], **body})[0] == 422
    assert len(_items(site)) == 4


@pytest.mark.slow
def test_golden_case_drafts_pass_check_golden_with_exact_quotes(site, tmp_path):
    files = []
    for given in site.given:
        status, headers, raw = request("GET", site.url + f"/api/admin/review/items/{given['id']}/golden")
        assert status == 200, raw
        assert headers["content-type"].startswith("text/yaml")
        assert headers["content-disposition"] == f'attachment; filename="review-{given["id"]}.yaml"'
        assert headers["cache-control"] == "no-store"
        path = tmp_path / f"review-{given['id']}.yaml"
        path.write_bytes(raw)
        files.append(path)
        assert "# check_golden:" not in raw.decode()  # nothing left that check_golden refuses
    run = _check_golden(*files)
    assert run.returncode == 0 and "OK: 4 cases" in run.stdout, run.stdout
    code, paid, weather, _html = (yaml.safe_load(p.read_text(encoding="utf-8"))[0] for p in files)
    assert code["id"].startswith(f"code-review-{site.given[0]['id']}-") and (code["kind"], code["expect"]) == ("code", "answer")
    assert r"\bQ2055\b" in code["must"] and code["evidence"] and "Outdated source" in code["note"] and COMMENT in code["note"]
    for ev in code["evidence"]:  # verbatim in the document check_golden reads, and from the answer's citations
        assert ev["quote"] in DOCS[ev["doc"]] and ev["doc"] in code["docs"]
        assert any(ev["quote"] in c["quote"] for c in site.given[0]["answer"]["citations"] if c["doc_id"] == ev["doc"])
    assert (paid["kind"], paid["tool"], paid["expect"]) == ("payment", "payment", "answer") and paid["must"]
    assert (weather["kind"], weather["expect"]) == ("off_topic", "refusal")
    assert request("GET", site.url + "/api/admin/review/items/9999/golden")[0] == 404


@pytest.mark.slow
def test_the_csv_export_has_the_rows_and_neutralises_formulas(site):
    status, headers, raw = request("GET", site.url + "/api/admin/review/export.csv")
    assert status == 200 and headers["content-type"].startswith("text/csv") and "attachment" in headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == [g["id"] for g in reversed(site.given)]
    code = rows[-1]
    assert (code["rating"], code["reason"], code["kind"], code["question"]) == ("not helpful", "Outdated source", "answer", QUESTIONS[0][0])
    assert code["comment"] == "'" + COMMENT and "abecma-billing-guide" in code["cited docs"] and "Q2055" in code["answer first line"]
    status, _h, raw = request("GET", site.url + "/api/admin/review/export.csv?rating=1&kind=tool")
    assert [r["id"] for r in csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))] == [str(site.given[1]["id"])]


ROUTES = ["/admin/review", "/admin/review.js", "/admin/review.css", "/api/admin/review/items",
          "/api/admin/review/items/1/golden", "/api/admin/review/export.csv"]


@pytest.mark.slow
def test_only_admins_get_the_page_and_its_routes(index_env, tmp_path):
    srv = AppServer(app_env(index_env, tmp_path, CART_ADMIN_PAGES="on", CART_AUTH="proxy", CART_TRUSTED_PROXIES="127.0.0.1",
                            CART_ADMIN_GROUPS="billing-admins")).start()
    try:
        coder = {"X-Forwarded-User": "coder1", "X-Forwarded-Groups": "billing"}
        admin = {"X-Forwarded-User": "lead1", "X-Forwarded-Groups": "billing,billing-admins"}
        for path in ROUTES:
            assert request("GET", srv.url + path, headers=coder)[0] == 403, path
        for path in ROUTES[:4] + ROUTES[5:]:
            assert request("GET", srv.url + path, headers=admin)[0] == 200, path
        assert request("GET", srv.url + ROUTES[4], headers=admin)[0] == 404  # no such row yet
    finally:
        srv.close()


@pytest.mark.slow
def test_the_page_and_its_routes_are_off_by_default(index_env, tmp_path):
    srv = AppServer(app_env(index_env, tmp_path)).start()
    try:
        for path in ROUTES:
            assert request("GET", srv.url + path)[0] == 404, path
    finally:
        srv.close()


@pytest.mark.slow
def test_the_page_in_a_browser_filters_and_downloads_a_golden_draft(site, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from test_browser import CHROMIUM, CHROMIUM_ARGS, shot

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing (test.sh installs it with scripts/install_chromium.sh)")
    code = site.given[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True).new_page()
        page.set_default_timeout(30_000)
        seen, errors = [], []
        page.on("request", lambda r: seen.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(site.url + "/admin/review")
        items = page.locator("#items > li.item")
        expect(items).to_have_count(4)
        item = page.locator(f'#items > li.item[data-id="{code["id"]}"]')
        expect(item.locator(".reason")).to_have_text("Outdated source")
        expect(page.locator("#items")).to_contain_text(QUESTIONS[3][0])  # stored text is shown as text
        assert page.locator("#items img").count() == 0 and page.title().startswith("Review")
        page.select_option("#rating", "-1")
        expect(items).to_have_count(2)
        expect(item.locator(".citation").first).to_contain_text(code["answer"]["citations"][0]["quote"][:40])
        item.locator("details.full > summary").click()
        expect(item.locator("pre.answer-text")).to_contain_text("Q2055")
        shot(page, "review-page")
        with page.expect_download() as info:
            item.locator(".golden-btn").click()
        download = info.value
        assert download.suggested_filename == f"review-{code['id']}.yaml"
        draft = tmp_path / download.suggested_filename
        download.save_as(draft)
        expect(page.locator("#status")).to_contain_text("Downloaded")
        storage = page.evaluate("() => [localStorage.length, sessionStorage.length]")
        browser.close()
    assert errors == [] and storage == [0, 0]
    web = [u for u in seen if urllib.parse.urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert web and all(u.startswith(site.url + "/") for u in web), web  # nothing left 127.0.0.1
    run = _check_golden(draft)
    assert run.returncode == 0 and "OK: 1 cases" in run.stdout, run.stdout
    assert yaml.safe_load(draft.read_text(encoding="utf-8"))[0]["id"].startswith(f"code-review-{code['id']}-")
