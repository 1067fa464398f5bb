"""The source viewer (assistant/source_view.py): a citation from the real app opens its document at
the quoted passage, byte for byte, in its section, with the document's metadata; a PDF added while
the app runs shows its page; ids, spans and originals that are not the corpus's are refused. Against
the real app subprocess over a copy of the sources, and real Chromium."""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from pathlib import Path

import pytest

from app_server import AppServer, app_env, request
from assistant.source_view import section_around, view_link
from conftest import PROJECT, _is_loopback
from index.chunking import blocks_of
from index.corpus import SourceDocument, cached_corpus, parse_document, split_front_matter
from test_browser import CHROMIUM, CHROMIUM_ARGS, shot
from test_ingest import render_pdf

slow = pytest.mark.slow  # the server and browser tests; the pure functions' tests stay in the quick run

CENTENE = "centene-abecma-policy"
REVISION = f"{CENTENE}-2027-05"
QUESTION = "whats the hcpcs for abecma"
ORIGINALS_DIR = "originals"
PROBE = """---
id: {id}
title: Probe with an original outside originals/
publisher: Test
kind: reference
products: [abecma]
original: {original}
---
Probe

A typed-in 😀 document (a character JavaScript counts as two) whose front matter names a file it must not be given.
"""


# --- the pure functions -------------------------------------------------------------------------

def test_view_link_is_relative_and_url_encoded():
    assert view_link("abecma-billing-guide", (10, 42)) == "sources/view?doc=abecma-billing-guide&start=10&end=42"
    assert view_link("a b&c=d", (0, 1)) == "sources/view?doc=a+b%26c%3Dd&start=0&end=1"


def test_the_section_runs_from_the_heading_before_the_passage_to_the_next_heading():
    text = "Title\n\nIntro line one.\n\nCodes\n\nQ2055 is the code.\nBill one unit.\n\nMore text here.\n\nModifiers\n\nJW applies."
    start = text.index("Bill one unit.")
    lo, hi = section_around(text, start, start + len("Bill one unit."))
    assert text[lo:hi] == "Codes\n\nQ2055 is the code.\nBill one unit.\n\nMore text here."
    # a passage over two sections shows both, whole
    a, b = text.index("More"), text.index("JW applies.") + 3
    assert text[slice(*section_around(text, a, b))] == text[text.index("Codes"):]
    # a passage on a blank line between blocks still gets a section that holds it
    gap = text.index("\n\nMore")
    lo, hi = section_around(text, gap, gap + 2)
    assert lo <= gap and hi >= gap + 2 and text[lo:hi].startswith("Codes")


def test_without_headings_close_by_the_section_is_two_blocks_either_side():
    paragraphs = [f"Paragraph {i} says something about billing, at some length: " + "words " * 400 + "end."
                  for i in range(12)]
    text = "\n\n".join(paragraphs)
    start = text.index("Paragraph 6")
    lo, hi = section_around(text, start, start + 20)
    assert text[lo:hi] == "\n\n".join(paragraphs[4:9])


# --- the real app -------------------------------------------------------------------------------

def _served(site, doc_id: str) -> SourceDocument:
    return parse_document(site.sources / "documents" / f"{doc_id}.md")


def _get(site, path: str) -> tuple[int, dict, bytes]:
    return request("GET", site.url + path)


@pytest.fixture(scope="module")
def site(index_env, tmp_path_factory):
    """The app over a private copy of the sources (the session index answers), plus two documents whose
    front matter names an original outside originals/: one by '..', one by a link out of the folder."""
    root = tmp_path_factory.mktemp("source-viewer")
    sources = root / "sources"
    shutil.copytree(PROJECT / "sources", sources)
    documents = sources / "documents"
    (documents / ORIGINALS_DIR).mkdir()
    (documents / ORIGINALS_DIR / "link.md").symlink_to(documents / "abecma-billing-guide.md")
    (documents / "probe-dotdot.md").write_text(PROBE.format(id="probe-dotdot", original="../../../app.py"), encoding="utf-8")
    (documents / "probe-link.md").write_text(PROBE.format(id="probe-link", original="originals/link.md"), encoding="utf-8")
    srv = AppServer(app_env(index_env, root / "state", CART_SOURCES_DIR=str(sources)))
    srv.sources = sources
    srv.start()
    yield srv
    srv.close()



@pytest.fixture(scope="module")
def citation(site) -> dict:
    """The first citation of a real answer from the running app."""
    status, _h, body = request("POST", site.url + "/api/ask", {"question": QUESTION})
    assert status == 200, body
    answer = json.loads(body)["answer"]
    assert answer["citations"], answer
    return answer["citations"][0]


@pytest.fixture(scope="module")
def pdf_document(site, tmp_path_factory) -> tuple[SourceDocument, Path]:
    """A revision of the Centene policy added from a PDF while the app runs (no restart, no rebuild):
    the viewer reads the corpus, so it serves the new document at once."""
    from index.ingest import commit, stage

    path = site.sources / "documents" / f"{CENTENE}.md"
    body = split_front_matter(path.read_text(encoding="utf-8"), path)[1]
    revised = body.replace("Last Review Date: 05.26", "Last Review Date: 05.27")
    pdf = tmp_path_factory.mktemp("pdf") / "CP.PHAR.481 (2027).pdf"
    render_pdf(revised, pdf)
    staged = stage(pdf, site.sources)
    assert staged.proposal.value("id") == REVISION and staged.problems() == []
    doc = parse_document(commit(staged, site.sources))
    assert len(doc.pages) >= 3 and doc.original == f"originals/{REVISION}.pdf"
    return doc, pdf


def _later_page_span(doc: SourceDocument) -> tuple[int, int]:
    """A paragraph that starts on the original's second page or later."""
    block = next(b for b in blocks_of(doc.text) if b.start >= doc.pages[1] and b.end - b.start > 40)
    return block.start, block.end


@slow
def test_the_api_gives_a_real_citation_its_quote_section_and_metadata(site, citation):
    doc_id, (start, end), quote = citation["doc_id"], citation["span"], citation["quote"]
    status, headers, body = _get(site, f"/api/documents/{doc_id}?start={start}&end={end}")
    assert status == 200 and headers["content-type"].startswith("application/json"), body
    data = json.loads(body)
    doc = _served(site, doc_id)
    assert data["passage"] == {"start": start, "end": end, "text": quote} and doc.text[start:end] == quote
    section = data["section"]
    assert section["start"] <= start < end <= section["end"] and quote in section["text"]
    assert section["text"] == doc.text[section["start"]:section["end"]] and len(section["text"]) < len(doc.text)
    path = site.sources / "documents" / f"{doc_id}.md"
    meta = split_front_matter(path.read_text(encoding="utf-8"), path)[0]
    for name in ("title", "kind", "publisher", "payer", "effective", "reviewed"):
        assert (data[name] or "") == str(meta.get(name) or "").strip(), name
    assert data["id"] == doc_id and data["title"] == citation["title"]
    corpus = cached_corpus(site.sources, site.sources / "reference")
    assert data["version"] == corpus.versions[doc_id].label()
    assert (data["pages"], data["page"], data["original"]) == (None, None, False)  # typed in
    # no span: the whole document
    whole = json.loads(_get(site, f"/api/documents/{doc_id}")[2])
    assert whole["section"] == {"start": 0, "end": len(doc.text), "text": doc.text} and whole["passage"] is None


@slow
def test_the_api_refuses_unknown_ids_bad_spans_and_paths(site):
    status, _h, body = _get(site, "/api/documents/no-such-document")
    assert status == 404 and "no-such-document" in json.loads(body)["error"]
    size = len(_served(site, "abecma-billing-guide").text)
    for query in ("start=abc&end=10", "start=-1&end=10", "start=1.5&end=10", "start=5&end=5", "start=10&end=5",
                  f"start=0&end={size + 1}", f"start={size}&end={size + 5}", "start=3", "end=9", "start=%201&end=9"):
        status, _h, body = _get(site, f"/api/documents/abecma-billing-guide?{query}")
        assert status == 422 and json.loads(body)["error"], query
    assert _get(site, f"/api/documents/abecma-billing-guide?start=0&end={size}")[0] == 200
    app_source = (PROJECT / "app.py").read_bytes()[:200]
    for doc_id in ("..", "%2E%2E", "..%2F..%2Fapp.py", "..%2Fdocuments%2Fabecma-billing-guide", "ABECMA-BILLING-GUIDE",
                   "abecma-billing-guide.md", "abecma-billing-guide%00", "abecma-billing-guide%0A", "%2Fetc%2Fpasswd", "a" * 200):
        for suffix in ("", "/text", "/original"):
            status, _h, body = _get(site, f"/api/documents/{doc_id}{suffix}")
            assert status == 404, (doc_id, suffix, status)
            assert app_source not in body and b"root:" not in body and b"Abecma" not in body, (doc_id, suffix)


@slow
def test_text_and_original_routes(site, pdf_document):
    doc = _served(site, "abecma-billing-guide")
    status, headers, body = _get(site, "/api/documents/abecma-billing-guide/text")
    assert status == 200 and headers["content-type"] == "text/plain; charset=utf-8" and body.decode("utf-8") == doc.text
    status, _h, body = _get(site, "/api/documents/abecma-billing-guide/original")
    assert status == 404 and "no original" in json.loads(body)["error"]
    # front matter naming a file outside originals/ (by '..' or by a link out of it) gets nothing
    for probe in ("probe-dotdot", "probe-link"):
        assert _get(site, f"/api/documents/{probe}/original")[0] == 404, probe
        assert json.loads(_get(site, f"/api/documents/{probe}")[2])["original"] is False
    added, pdf = pdf_document
    status, headers, body = _get(site, f"/api/documents/{REVISION}/original")
    assert status == 200 and body == pdf.read_bytes()
    assert headers["content-type"] == "application/pdf"
    assert headers["content-disposition"].startswith("attachment") and f"{REVISION}.pdf" in headers["content-disposition"]
    assert _get(site, f"/api/documents/{REVISION}/text")[2].decode("utf-8") == added.text


@slow
def test_a_pdf_added_while_the_app_runs_is_served_with_its_page(site, pdf_document):
    doc, _pdf = pdf_document
    start, end = _later_page_span(doc)
    status, _h, body = _get(site, f"/api/documents/{REVISION}?start={start}&end={end}")
    assert status == 200, body
    data = json.loads(body)
    assert data["page"] == doc.page_of(start) >= 2 and data["pages"] == len(doc.pages) and data["original"] is True
    assert data["passage"]["text"] == doc.text[start:end] and data["reviewed"] == "2027-05"
    assert data["version"].startswith("version 2 of 2") and "current" in data["version"]
    older = json.loads(_get(site, f"/api/documents/{CENTENE}")[2])
    assert older["version"].startswith("version 1 of 2") and REVISION in older["version"]


# --- in a browser ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: the browser tests drive Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser, site):
    """A fresh page that records its requests, console errors (a CSP refusal is one) and script errors;
    at the end nothing may have gone anywhere but the app, and nothing may have gone wrong."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.requests, pg.errors = [], []
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.on("console", lambda m: pg.errors.append(f"console: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(f"script error: {e}"))
    yield pg
    context.close()
    web = [urllib.parse.urlsplit(u) for u in pg.requests if urllib.parse.urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert all(_is_loopback(u.hostname) and u.port == site.port for u in web), pg.requests
    assert pg.errors == []


@slow
def test_the_viewer_opens_a_citation_at_its_quote(page, site, citation):
    from playwright.sync_api import expect

    doc = _served(site, citation["doc_id"])
    page.goto(site.url + "/" + view_link(citation["doc_id"], tuple(citation["span"])))
    mark = page.locator("#cart-passage")
    expect(mark).to_be_visible()
    assert mark.inner_text() == citation["quote"] and mark.evaluate("e => e.textContent") == citation["quote"]
    expect(mark).to_be_in_viewport()
    header = page.locator("#doc-header")
    expect(header).to_contain_text(doc.title)
    expect(header).to_contain_text(doc.reviewed)
    expect(header).to_contain_text(doc.kind)
    assert page.locator("#original-file").count() == 0  # typed in: no original to link
    section = page.locator("#cart-text").evaluate("e => e.textContent")
    assert citation["quote"] in section and section in doc.text
    shot(page, "source-viewer")
    page.locator("#whole-document").click()
    page.wait_for_url(f"**/sources/view?doc={doc.id}")
    expect(page.locator("#doc-title")).to_have_text(doc.title)
    expect(page.locator("#cart-text")).to_be_visible()
    assert page.locator("#cart-text").evaluate("e => e.textContent") == doc.text
    assert page.locator("#cart-passage").count() == 0


@slow
def test_the_viewer_shows_the_page_of_a_pdf_document(page, site, pdf_document):
    from playwright.sync_api import expect

    doc, _pdf = pdf_document
    start, end = _later_page_span(doc)
    page.goto(site.url + "/" + view_link(doc.id, (start, end)))
    mark = page.locator("#cart-passage")
    expect(mark).to_be_in_viewport()
    assert mark.evaluate("e => e.textContent") == doc.text[start:end]
    expect(page.locator("#doc-page")).to_contain_text(f"page {doc.page_of(start)} of {len(doc.pages)}")
    expect(page.locator("#doc-header")).to_contain_text("version 2 of 2")
    original = page.locator("#original-file")
    assert original.get_attribute("href") == f"../api/documents/{doc.id}/original"
    shot(page, "source-viewer-pdf")
    with page.expect_download() as download:
        original.click()
    assert download.value.suggested_filename == f"{doc.id}.pdf"


@slow
def test_the_viewer_counts_offsets_as_the_server_does_past_a_non_bmp_character(page, site):
    doc = _served(site, "probe-link")
    quote = "whose front matter names a file"
    start = doc.text.index(quote)
    assert doc.text.index("😀") < start
    page.goto(site.url + "/" + view_link(doc.id, (start, start + len(quote))))
    page.wait_for_selector("#cart-passage")
    assert page.locator("#cart-passage").evaluate("e => e.textContent") == quote
    assert page.locator("#original-file").count() == 0  # its original points out of originals/: not linked
