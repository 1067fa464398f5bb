"""The chat page as a coder and a reviewer use it, in real Chromium against the real app: a
citation opens the document at its passage, the answer is copied with its citations, the
conversation survives a reload and a restart and is deleted for real, "Not helpful: outdated
source" reaches the Review page and becomes a golden-case draft, the export downloads a PDF, and
the layout holds on a laptop and a phone (screenshots in tests/output/)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing

import pdfplumber
import pytest

from app_server import AppServer, app_env
from conftest import PROJECT
from test_browser import ANSWER_TIMEOUT_MS, BOT, ask, open_app, shot

pytestmark = pytest.mark.slow

QUESTION = "centene abecma prior anti-BCMA therapy ok? pt Zebulon Quarrington"


@pytest.fixture(scope="module")
def site(index_env, tmp_path_factory):
    state = tmp_path_factory.mktemp("workflows")
    srv = AppServer(app_env(index_env, state, CART_ADMIN_PAGES="on"))
    srv.state = state
    srv.start()
    yield srv
    srv.close()


def _context(browser, site, width=1366, height=768):
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.outside = []
    page.on("request", lambda r: page.outside.append(r.url) if not r.url.startswith((site.url, "data:", "blob:")) else None)
    return context, page


def _stored(site) -> list[tuple]:
    with closing(sqlite3.connect(site.state / "conversations.sqlite3")) as db:
        return db.execute("SELECT question FROM turns").fetchall()


def test_cite_copy_reload_restart_export_and_delete(browser, site, tmp_path):
    from playwright.sync_api import expect

    context, page = _context(browser, site)
    open_app(page, site.url)
    answer = ask(page, QUESTION)
    assert "anti-BCMA" in answer
    # the citation opens the document at the quoted passage, byte for byte
    link = page.locator("#cart-evidence a.cart-open").first
    href, quote = link.get_attribute("href"), page.locator("#cart-evidence .cart-quote").first.text_content()
    viewer = context.new_page()
    viewer.goto(site.url + "/" + href)
    assert viewer.locator("#cart-passage").text_content() == quote
    expect(viewer.locator("#cart-passage")).to_be_in_viewport()
    viewer.close()
    # one click copies the answer as plain text with numbered citations and the as-of line
    page.click("#cart-copy")
    expect(page.locator("#cart-copy-status")).to_contain_text("Copied")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert "Sources:" in copied and "[1] " in copied and quote.split("\n")[0][:60] in copied
    assert "payment quarter" in copied and "**" not in copied
    # a reload shows the conversation again (from the server: nothing is kept in the browser)
    page.reload()
    expect(page.locator(BOT)).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
    assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0
    # the export downloads a PDF with the answer and its citations
    with page.expect_download() as info:
        page.locator("#cart-export a", has_text="PDF").click()
    pdf_path = tmp_path / "export.pdf"
    info.value.save_as(pdf_path)
    with pdfplumber.open(pdf_path) as pdf:
        text = " ".join(" ".join((p.extract_text() or "") for p in pdf.pages).split())
    assert QUESTION in text and "Sources:" in text and " ".join(quote.split())[:50] in text
    shot(page, "chat-1366x768")
    # an app restart: the conversation is still there, and a follow-up keeps its context
    site.restart()
    page.reload()
    expect(page.locator(BOT)).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
    follow = ask(page, "what about if she never had bcma drugs, 4 prior lines?")
    assert "Centene" in follow or "centene" in follow.lower()
    assert len(_stored(site)) == 2
    # delete: gone from the page, from the list and from the database file itself
    page.click("#cart-delete")
    expect(page.locator(BOT)).to_have_count(0)
    assert _stored(site) == []
    raw = b"".join(p.read_bytes() for p in site.state.glob("conversations.sqlite3*"))
    assert b"Zebulon" not in raw
    page.reload()
    expect(page.locator("#cart-question textarea")).to_be_visible()
    assert page.locator(BOT).count() == 0
    assert page.outside == []
    context.close()


def test_not_helpful_outdated_source_reaches_review_and_becomes_a_golden_draft(browser, site, tmp_path):
    from playwright.sync_api import expect

    context, page = _context(browser, site)
    open_app(page, site.url)
    ask(page, "abecma admin cpt code 2026")
    page.locator("#cart-reason input").click()
    page.get_by_role("option", name="Outdated source").click()
    page.fill("#cart-comment textarea", "0537T was deleted in 2026")
    page.click("#cart-down")
    expect(page.locator("#cart-feedback-status")).to_contain_text("not helpful")
    review = context.new_page()
    review.goto(site.url + "/admin/review")
    item = review.locator("text=abecma admin cpt code 2026").first
    expect(item).to_be_visible()
    expect(review.locator("body")).to_contain_text("Outdated source")
    with review.expect_download() as info:
        review.get_by_role("button", name="Golden case draft").first.click()
    draft = tmp_path / "draft.yaml"
    info.value.save_as(draft)
    checked = subprocess.run([sys.executable, "evals/check_golden.py", str(draft)], cwd=PROJECT, capture_output=True,
                             text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "abecma admin cpt code 2026" in draft.read_text(encoding="utf-8")
    assert page.outside == []
    context.close()


def test_keyboard_layout_and_contrast_on_a_laptop_and_a_phone(browser, site):
    from playwright.sync_api import expect

    for width, height in ((1366, 768), (390, 844)):
        context, page = _context(browser, site, width, height)
        open_app(page, site.url)
        # Enter asks (no mouse); the question box keeps the focus order question -> date -> Ask
        page.locator("#cart-question textarea").fill("whats the hcpcs for abecma")
        page.locator("#cart-question textarea").press("Enter")
        expect(page.locator(BOT).last).to_contain_text("Q2055", timeout=ANSWER_TIMEOUT_MS)
        page.locator("#cart-question textarea").focus()
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.closest('#cart-dos') !== null")
        chat, evidence = page.locator("#cart-chat").bounding_box(), page.locator("#cart-evidence").bounding_box()
        if width >= 1000:  # side by side on a laptop
            assert evidence["x"] > chat["x"] + chat["width"] - 5 and abs(evidence["y"] - chat["y"]) < 120
        else:  # stacked on a phone, nothing wider than the screen
            assert evidence["y"] >= chat["y"] + chat["height"] - 5
            assert page.evaluate("() => document.documentElement.scrollWidth") <= width + 1
        low = page.evaluate(CONTRAST_JS)
        assert low == [], low
        shot(page, f"chat-{width}x{height}")
        context.close()


# WCAG contrast of the text the page shows (answer, evidence, labels, buttons): at least 4.5:1
CONTRAST_JS = """() => {
  const lum = (c) => { const v = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(x => x / 255)
      .map(x => x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4));
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const bg = (el) => { for (let e = el; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor;
      if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
  const out = [];
  for (const el of document.querySelectorAll('#cart-chat [data-testid=bot], #cart-evidence *, label, button, .cart-meta')) {
    if (!el.childNodes.length || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const s = getComputedStyle(el); if (s.visibility === 'hidden' || s.display === 'none' || el.closest('.cart-offscreen')) continue;
    const a = lum(s.color), b = lum(bg(el)); const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) out.push([el.tagName, el.textContent.trim().slice(0, 40), s.color, bg(el), ratio.toFixed(2)]);
  }
  return out.slice(0, 10);
}"""


def test_earlier_conversations_are_listed_when_their_list_is_opened_and_reopen(browser, site):
    """The list is read when the accordion opens (not sent with every answer): both conversations
    of this user are in it, with their question counts, and picking one shows it again."""
    from playwright.sync_api import expect

    context, page = _context(browser, site)
    open_app(page, site.url)
    ask(page, "Q2055 payment limit q1 2026")
    ask(page, "and carvykti?")
    page.click("#cart-new")
    expect(page.locator(BOT)).to_have_count(0)
    ask(page, "tecartus hcpcs code")
    page.locator("#cart-history").get_by_text("Earlier conversations").click()
    page.locator("#cart-past input").click()
    first = page.get_by_role("option").filter(has_text="Q2055 payment limit q1 2026")
    expect(first).to_have_count(1)
    assert "2 questions" in first.inner_text()
    assert "1 question)" in page.get_by_role("option").filter(has_text="tecartus hcpcs code").inner_text()
    first.click()
    page.click("#cart-open")
    expect(page.locator(BOT)).to_have_count(2, timeout=ANSWER_TIMEOUT_MS)
    assert "Q2056" in page.locator(BOT).nth(1).inner_text()
    assert page.outside == []
    context.close()
