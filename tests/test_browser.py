"""The web page in a real browser (Debian's chromium via Playwright) against the real app subprocess.

Chat with citations, the calculators' forms and their error messages, feedback that survives a
restart, the embeddable web component on another origin, and an XSS probe. Every page's requests
are recorded: nothing may leave the machine (no CDN, no web fonts, no telemetry).
Screenshots go to tests/output/ (git-ignored); look at them after a UI change.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.parse
from contextlib import closing
from pathlib import Path

import pytest

from app_server import AppServer, StaticServer, app_env, request
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, PROJECT, _is_loopback  # noqa: F401 (re-exported to the other browser tests)

pytestmark = pytest.mark.slow

OUTPUT = PROJECT / "tests" / "output"
ANSWER_TIMEOUT_MS = 60_000
BOT = "#cart-chat [data-testid='bot']"
USER = "#cart-chat [data-testid='user']"


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("static")


@pytest.fixture(scope="module")
def static_server(static_dir):
    srv = StaticServer(static_dir)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def server(index_env, tmp_path_factory, static_server):
    data = tmp_path_factory.mktemp("browser-data")
    srv = AppServer(app_env(index_env, data, CART_ALLOWED_ORIGINS=static_server.url))
    srv.data_dir = data
    srv.start()
    yield srv
    srv.close()


@pytest.fixture()
def page(browser):
    """A fresh page; at the end, no request may have gone to a non-loopback host."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.requests = []
    pg.on("request", lambda r: pg.requests.append(r.url))
    yield pg
    context.close()
    outside = [u for u in pg.requests
               if urllib.parse.urlsplit(u).scheme in ("http", "https", "ws", "wss")
               and not _is_loopback(urllib.parse.urlsplit(u).hostname)]
    assert not outside, f"the page made requests off the machine: {outside}"


def shot(pg, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def open_app(pg, url: str, fresh: bool = True) -> None:
    """Open the page and let its load event show the user's latest conversation (kept on the
    server); `fresh` then starts a new one, as a test that counts answers expects."""
    pg.goto(url + "/")
    pg.wait_for_selector("#cart-question textarea")
    page_loaded(pg, fresh=fresh)


def page_loaded(pg, root: str = "", fresh: bool = True) -> None:
    """Wait for the page's load event (it shows the user's latest conversation, kept on the
    server); `fresh` then starts a new conversation."""
    where = f"{root} #cart-loaded".strip()
    pg.wait_for_function(f"() => (document.querySelector({where!r}) || {{}}).textContent?.includes('loaded')")
    if fresh and pg.locator(f"{root} {BOT}".strip()).count():
        pg.locator(f"{root} #cart-new".strip()).click()
        pg.locator(f"{root} {BOT}".strip()).first.wait_for(state="detached")


def ask(pg, question: str, root: str = "") -> str:
    """Type a question, click Ask, wait for the new answer bubble; returns its text."""
    from playwright.sync_api import expect

    bots = pg.locator(f"{root} {BOT}".strip())
    before = bots.count()
    pg.locator(f"{root} #cart-question textarea".strip()).fill(question)
    pg.locator(f"{root} #cart-ask".strip()).click()
    expect(bots).to_have_count(before + 1, timeout=ANSWER_TIMEOUT_MS)
    # the evidence panel is updated by the same event
    expect(pg.locator(f"{root} #cart-question textarea".strip())).to_have_value("")
    return bots.nth(before).inner_text()


def assert_clean_text(text: str) -> None:
    """No escaping artefacts where plain text should be: entities or markdown backslashes."""
    for artefact in ("&lt;", "&gt;", "&amp;", "&#x27;", "&quot;", "&#", "\\*", "\\[", "\\_", "**"):
        assert artefact not in text, f"{artefact!r} shown in {text!r}"


def test_the_date_of_service_box_prices_by_its_quarter(page, server):
    from playwright.sync_api import expect

    open_app(page, server.url)
    page.locator("#cart-dos input, #cart-dos textarea").first.fill("2/10/2026")
    answer = ask(page, "Q2053 medicare allowed amount")
    assert "Q2053 payment limit (2026Q1)" in answer and "489,450.202" in answer
    assert "As of 2026-02-10 (from the date field) · payment quarter 2026Q1" in answer
    # a date typed in the question wins over the box
    answer = ask(page, "Q2053 medicare allowed amount DOS 8/14/25")
    assert "(2025Q3)" in answer and "from the question" in answer
    expect(page.locator("#cart-evidence")).to_contain_text("2025Q3")


def test_chat_answers_with_a_citation_that_opens_to_its_quote(page, server):
    from playwright.sync_api import expect

    open_app(page, server.url)
    answer = ask(page, "What is the HCPCS code for Carvykti?")
    assert "Q2056" in answer and "[1]" in answer
    assert_clean_text(answer)
    first = page.locator("#cart-evidence details.cart-cite").first
    expect(first).to_be_visible()
    quote = first.locator("blockquote.cart-quote")
    expect(quote).to_be_hidden()  # closed until opened
    assert "carvykti" in first.locator("summary").inner_text().lower()
    first.locator("summary").click()
    expect(quote).to_be_visible()
    assert "Q2056" in quote.inner_text()
    assert "carvykti-billing-guide" in first.inner_text()
    # the follow-up inherits the product; the calculation shows its formula in the bubble, no markdown
    answer = ask(page, "cilta-cel dose for a 120 kg patient")
    assert "100 × 10^6" in answer and "How:" in answer
    assert_clean_text(answer)
    shot(page, "chat")


def test_calculators_show_results_and_readable_field_errors(page, server):
    from playwright.sync_api import expect

    open_app(page, server.url)
    page.get_by_role("tab", name="Calculators").click()
    page.locator("#calc-cell_dose").get_by_text("CAR-T cell dose", exact=True).click()
    weight = page.locator("#calc-cell_dose-weight input")
    expect(weight).to_be_visible()
    # product defaults to Carvykti; set it explicitly through the dropdown anyway
    page.locator("#calc-cell_dose-product input").click()
    page.get_by_role("option", name="Carvykti").click()
    weight.fill("120")
    result, error = page.locator("#calc-cell_dose-result"), page.locator("#calc-cell_dose-weight-error")
    page.locator("#calc-cell_dose-go").click()
    expect(result).to_contain_text("capped at 100 × 10^6", timeout=ANSWER_TIMEOUT_MS)
    text = result.inner_text()
    assert "Carvykti (MM)" in text and "Q2056" in text and "cap 100 × 10^6" in text
    assert_clean_text(text)
    assert error.inner_text().strip() == ""

    for bad, message in (("700", "outside the plausible range"), ("0", "greater than zero")):
        weight.fill(bad)
        page.locator("#calc-cell_dose-go").click()
        expect(error).to_contain_text(message, timeout=ANSWER_TIMEOUT_MS)
        expect(result).to_have_text("")
        body = page.locator("body").inner_text()
        assert "Traceback" not in body and "Error:" not in body
    weight.fill("700")
    page.locator("#calc-cell_dose-go").click()
    expect(error).to_contain_text("A weight of 700 kg", timeout=ANSWER_TIMEOUT_MS)
    shot(page, "calculators")

    # an optional number left empty is not a zero: with no patient figures the lymphodepletion
    # plan is the label's regimen; with a height alone it asks for a BSA or height and weight
    # instead of complaining that a weight the user never typed is 0
    page.locator("#calc-lymphodepletion_plan-bsa_m2 input").fill("")
    page.locator("#calc-lymphodepletion_plan-go").click()
    expect(page.locator("#calc-lymphodepletion_plan-result")).to_contain_text("FDA label", timeout=ANSWER_TIMEOUT_MS)
    page.locator("#calc-lymphodepletion_plan-height input").fill("170")
    page.locator("#calc-lymphodepletion_plan-go").click()
    expect(page.locator("#calc-lymphodepletion_plan-bsa_m2-error")).to_contain_text(
        "Give the BSA", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#calc-lymphodepletion_plan-weight-error")).to_have_text("")
    page.locator("#calc-lymphodepletion_plan-weight input").fill("70")
    page.locator("#calc-lymphodepletion_plan-go").click()
    expect(page.locator("#calc-lymphodepletion_plan-result")).to_contain_text("fludarabine", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#calc-lymphodepletion_plan-bsa_m2-error")).to_have_text("")


def test_xss_probe_is_shown_as_text(page, server):
    from playwright.sync_api import expect

    open_app(page, server.url)
    probe = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    answer = ask(page, probe + " What is the HCPCS code for Abecma?")
    # an answer bubble arrives (whether markup around a question should still get the Q2055 answer
    # is the engine's business: see tests/test_engine.py)
    assert answer.strip() and "Abecma" in answer
    page.wait_for_timeout(500)  # give an injected handler every chance to run
    assert page.evaluate("typeof window.__xss") == "undefined"
    user = page.locator(USER).last
    expect(user).to_contain_text("<script>window.__xss=2</script>")
    assert probe in user.inner_text()
    assert page.locator("#cart-chat img[src='x'], #cart-chat script").count() == 0
    assert_clean_text(page.locator("#cart-chat").inner_text())
    page.locator("#cart-chat [role='log']").evaluate("e => { e.scrollTop = 0; }")  # show the probe
    shot(page, "xss")


def test_feedback_is_saved_and_survives_a_restart(page, server, browser):
    from playwright.sync_api import expect

    open_app(page, server.url)
    question = "What's the HCPCS code for Abecma?"
    answer = ask(page, question)
    assert "Q2055" in answer
    expect(page.locator(USER).last).to_have_text(question)  # an apostrophe stays an apostrophe
    page.locator("#cart-comment textarea").fill("Should mention the JW modifier")
    page.locator("#cart-down").click()
    status = page.locator("#cart-feedback-status")
    expect(status).to_contain_text("saved", timeout=ANSWER_TIMEOUT_MS)
    fid = int(re.search(r"feedback #(\d+) saved", status.inner_text()).group(1))
    shot(page, "feedback")

    server.restart()  # a new process on the same data directory
    with closing(sqlite3.connect(server.data_dir / "feedback.sqlite3")) as db:
        row = db.execute("SELECT question, rating, comment, citations, answer FROM feedback WHERE id = ?",
                         (fid,)).fetchone()
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert row is not None, f"feedback #{fid} not in the database after a restart"
    q, rating, comment, citations, text = row
    assert (q, rating, comment) == (question, -1, "Should mention the JW modifier")
    cites = json.loads(citations)
    assert cites and cites[0]["doc_id"].startswith("abecma") and "Q2055" in text

    status_code, _, raw = request("GET", server.url + "/api/health")
    assert status_code == 200 and json.loads(raw)["status"] == "ok"
    page.reload()
    page.wait_for_selector("#cart-question textarea")
    # the load event shows the latest conversation again: wait for it, or its bubble is counted as the answer
    page_loaded(page, fresh=False)
    assert "Q2055" in ask(page, "What is the HCPCS code for Abecma?")


def test_embedded_web_component_on_another_origin(page, server, static_server, static_dir):
    from playwright.sync_api import expect

    html = (PROJECT / "embed" / "help.html").read_text(encoding="utf-8")
    assert '<script src="help.js"' in html and "127.0.0.1" not in html  # no address hard-wired
    # the one line a copy on another web server changes, as the page's comment says
    copy = html.replace('src="help.js"', f'src="{server.url}/embed/help.js"')
    (static_dir / "help.html").write_text(copy, encoding="utf-8")
    assert static_server.port != server.port
    page.goto(static_server.url + "/help.html")
    root = "gradio-app"
    expect(page.locator(f"{root} #cart-question textarea")).to_be_visible(timeout=60_000)
    page_loaded(page, root)
    answer = ask(page, "What is the HCPCS code for Tecartus?", root=root)
    assert "Q2053" in answer
    first = page.locator(f"{root} #cart-evidence details.cart-cite").first
    first.locator("summary").click()
    expect(first.locator("blockquote.cart-quote")).to_be_visible()
    hosts = {urllib.parse.urlsplit(u).netloc for u in page.requests}
    assert f"127.0.0.1:{server.port}" in hosts and f"127.0.0.1:{static_server.port}" in hosts
    shot(page, "embed")


# --- an intranet's shared workstation (the security review's browser findings) ---------------

PATIENT_Q = "Pt Johnathan Smithers DOB 03/04/1961 MRN 00123456, 82 kg: carvykti dose?"


def _browser_storage(pg) -> str:
    """Everything the page keeps in the browser: localStorage, sessionStorage, IndexedDB, Cache API."""
    return pg.evaluate("""async () => JSON.stringify({
        local: Object.entries(localStorage), session: Object.entries(sessionStorage),
        idb: (await indexedDB.databases()).map(d => d.name),
        caches: await caches.keys()})""")


def test_no_question_or_answer_is_left_in_the_browser(page, server):
    open_app(page, server.url)
    # runs an earlier version saved (under another process's app id) are removed on load
    page.evaluate("localStorage.setItem('gradio:run-history:v2:123', '[{\"inputs\": [\"Smithers\"]}]')")
    open_app(page, server.url)
    answer = ask(page, PATIENT_Q)
    assert "Q2056" in answer
    for where in ("after the answer", "after a reload"):
        stored = _browser_storage(page)
        assert "Smithers" not in stored and "00123456" not in stored and "Q2056" not in stored, (where, stored)
        runs = page.evaluate("async (u) => { const r = await fetch(u); return [r.status, await r.text()]; }",
                             server.url + "/gradio_api/runs")
        assert runs[0] == 404 and "Smithers" not in runs[1], (where, runs)
        page.reload()
        page.wait_for_selector("#cart-question textarea")
        page_loaded(page, fresh=False)
    # a reload shows the conversation again, from the server (the browser's storage holds none of it)
    assert "Smithers" in page.locator("#cart-chat").inner_text()
    assert page.locator("footer a[href*='runs'], a[href*='/gradio_api/runs']").count() == 0


def test_user_text_is_not_rendered_as_latex_or_markdown(page, server):
    from playwright.sync_api import expect

    open_app(page, server.url)
    probe = "$x^2$ and **bold** \u202eevil\u202c costs $430k to $500k: q2055 payment limit?"
    ask(page, probe)
    user = page.locator(USER).last
    expect(user).to_contain_text("$x^2$ and **bold**")
    assert "\u202e" not in user.inner_text()  # bidi controls removed
    assert page.locator("#cart-chat .katex, #cart-chat strong:text('bold')").count() == 0


def test_a_cross_origin_beacon_or_form_stores_nothing(page, server, static_server, static_dir):
    """A page on another origin (localhost is not the allowed 127.0.0.1 origin) tries every post a
    browser sends without a CORS preflight: sendBeacon with a Blob and with text, no-cors fetch, a form."""
    before = len(_feedback_rows(server))
    body = json.dumps({"rating": 1, "answer_id": "x", "answer": {"text": "planted"}, "question": "planted"})
    (static_dir / "evil.html").write_text(f"""<!doctype html><html><body>
<form id="f" method="post" enctype="text/plain" action="{server.url}/api/feedback">
<input name='{{"rating":1,"answer":{{"text":"planted"}},"x":"' value='"}}'></form>
<script>
const url = "{server.url}/api/feedback", body = {json.dumps(body)};
window.results = [navigator.sendBeacon(url, new Blob([body])),
                  navigator.sendBeacon(url, body),
                  navigator.sendBeacon("{server.url}/api/ask", new Blob([JSON.stringify({{question: "planted"}})]))];
fetch(url, {{method: "POST", mode: "no-cors", body}}).catch(() => 0);
fetch(url, {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}}, body}}).catch(() => 0);
setTimeout(() => document.getElementById("f").submit(), 300);
</script></body></html>""", encoding="utf-8")
    evil = f"http://localhost:{static_server.port}/evil.html"
    page.goto(evil)
    assert page.evaluate("window.results").count(True) >= 1  # the browser did send the beacons
    page.wait_for_timeout(2000)
    assert len(_feedback_rows(server)) == before
    log = server.output()
    assert "planted" not in log


def _feedback_rows(server) -> list:
    path = server.data_dir / "feedback.sqlite3"
    if not path.exists():
        return []
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT id, question, answer FROM feedback").fetchall()


@pytest.fixture(scope="module")
def proxy_server(index_env, tmp_path_factory):
    data = tmp_path_factory.mktemp("browser-proxy")
    srv = AppServer(app_env(index_env, data, CART_AUTH="proxy", CART_RATE_ASKS="3"))
    srv.data_dir = data
    srv.start()
    yield srv
    srv.close()


def test_the_apps_own_help_page_embeds_from_the_origin_that_served_it(page, server):
    page.goto(server.url + "/embed/help.html")
    root = "gradio-app"
    page.wait_for_selector(f"{root} #cart-question textarea", timeout=60_000)
    assert page.locator(root).get_attribute("src") == server.url + "/"
    page_loaded(page, root)
    assert "Q2053" in ask(page, "What is the HCPCS code for Tecartus?", root=root)
    assert page.locator("[data-cart-address]").inner_text() == server.url + "/"


def test_behind_the_sso_proxy_the_page_works_and_feedback_names_the_user(browser, proxy_server):
    from playwright.sync_api import expect

    anonymous = browser.new_context()
    try:
        status = anonymous.new_page().goto(proxy_server.url + "/").status
        assert status == 401  # no proxy header: refused
    finally:
        anonymous.close()
    context = browser.new_context(extra_http_headers={"X-Forwarded-User": "coder.alice"})
    try:
        pg = context.new_page()
        open_app(pg, proxy_server.url)
        assert "Q2055" in ask(pg, "What is the HCPCS code for Abecma?")
        pg.locator("#cart-down").click()
        expect(pg.locator("#cart-feedback-status")).to_contain_text("saved", timeout=ANSWER_TIMEOUT_MS)
    finally:
        context.close()
    with closing(sqlite3.connect(proxy_server.data_dir / "feedback.sqlite3")) as db:
        assert db.execute("SELECT user, rating FROM feedback").fetchall() == [("coder.alice", -1)]


def test_over_the_rate_the_chat_says_so_and_keeps_the_question(browser, proxy_server):
    from playwright.sync_api import expect

    context = browser.new_context(extra_http_headers={"X-Forwarded-User": "fast.typist"})
    try:
        pg = context.new_page()
        open_app(pg, proxy_server.url)
        for _ in range(3):  # CART_RATE_ASKS=3 for this server
            assert "Q2055" in ask(pg, "What is the HCPCS code for Abecma?")
        pg.locator("#cart-question textarea").fill("What is the HCPCS code for Carvykti?")
        pg.locator("#cart-ask").click()
        expect(pg.locator("#cart-feedback-status")).to_contain_text("Too many questions", timeout=ANSWER_TIMEOUT_MS)
        expect(pg.locator("#cart-question textarea")).to_have_value("What is the HCPCS code for Carvykti?")
        assert pg.locator(BOT).count() == 3
    finally:
        context.close()
