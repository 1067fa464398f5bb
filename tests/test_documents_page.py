"""The Documents page (CART_ADMIN_PAGES=on): off by default, admins only, and an upload that
goes through proposal, correction, addition and an atomic rebuild that the running app then
answers from. Against the real app subprocess, a real index copy, and real Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import socket
import time
from pathlib import Path

import pytest

from app_server import AppServer, app_env, request
from conftest import PROJECT
from index.corpus import parse_document, split_front_matter
from test_browser import CHROMIUM, CHROMIUM_ARGS, shot
from test_ingest import render_pdf

pytestmark = pytest.mark.slow

CENTENE = "centene-abecma-policy"
CAREPARTNERS = "carepartners-ct-abecma-policy"


def _body(doc_id: str) -> str:
    path = PROJECT / "sources" / "documents" / f"{doc_id}.md"
    return split_front_matter(path.read_text(encoding="utf-8"), path)[1]


@pytest.fixture(scope="module")
def site(index_env, tmp_path_factory):
    """An app with the page on, over a private copy of the index and of the sources (uploads rebuild them)."""
    root = tmp_path_factory.mktemp("documents-page")
    shutil.copytree(index_env["CART_DATA_DIR"], root / "data")
    shutil.copytree(PROJECT / "sources", root / "sources")
    env = app_env(index_env, root / "state", CART_DATA_DIR=str(root / "data"), CART_SOURCES_DIR=str(root / "sources"),
                  CART_ADMIN_PAGES="on", CART_MAX_UPLOAD_MB="2")
    srv = AppServer(env)
    srv.root = root
    srv.start()
    yield srv
    srv.close()


def _wait_for_build(url: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _h, body = request("GET", url + "/api/admin/build")
        state = json.loads(body)
        if status == 200 and state["state"] != "running":
            return state
        time.sleep(1)
    raise AssertionError("the rebuild did not finish")


def _declared_too_large(port: int) -> str:
    """The status line for an upload that declares 3 MB (its body is never sent: the server answers first)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /api/admin/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                     b"X-File-Name: big.pdf\r\nContent-Length: 3145728\r\n\r\n")
        return sock.recv(4096).decode("latin-1").split("\r\n")[0]


def test_the_page_and_its_routes_are_off_by_default(index_env, tmp_path):
    srv = AppServer(app_env(index_env, tmp_path)).start()
    try:
        for method, path in (("GET", "/admin/documents"), ("GET", "/api/admin/documents"), ("GET", "/api/admin/build")):
            assert request(method, srv.url + path)[0] == 404, path
        status, _h, _b = request("POST", srv.url + "/api/admin/uploads", b"%PDF-1.4",
                                 {"Content-Type": "application/octet-stream", "X-File-Name": "x.pdf"})
        assert status in (404, 415)
    finally:
        srv.close()


def test_only_admins_get_the_page_and_its_routes(index_env, tmp_path, site):
    srv = AppServer(app_env(index_env, tmp_path, CART_DATA_DIR=str(site.root / "data"),
                            CART_SOURCES_DIR=str(site.root / "sources"), CART_ADMIN_PAGES="on", CART_AUTH="proxy",
                            CART_TRUSTED_PROXIES="127.0.0.1", CART_ADMIN_GROUPS="billing-admins")).start()
    try:
        coder = {"X-Forwarded-User": "coder1", "X-Forwarded-Groups": "billing"}
        admin = {"X-Forwarded-User": "lead1", "X-Forwarded-Groups": "billing,billing-admins"}
        assert request("GET", srv.url + "/admin/documents", headers=coder)[0] == 403
        assert request("GET", srv.url + "/api/admin/documents", headers=coder)[0] == 403
        upload = {"Content-Type": "application/octet-stream", "X-File-Name": "x.pdf"}
        status, _h, body = request("POST", srv.url + "/api/admin/uploads", b"%PDF-1.4 x", coder | upload)
        assert status == 415, body  # not an admin: the JSON rules apply, so a file is refused before the route
        assert request("GET", srv.url + "/admin/documents", headers=admin)[0] == 200
        status, _h, body = request("GET", srv.url + "/api/admin/documents", headers=admin)
        assert status == 200 and len(json.loads(body)["documents"]) == 5
    finally:
        srv.close()


def test_an_uploaded_revision_is_proposed_corrected_added_and_answered_after_the_rebuild(site, tmp_path):
    url = site.url
    revised = _body(CENTENE).replace("Last Review Date: 05.26", "Last Review Date: 05.27").replace(
        "Approval duration: 3 months", "Approval duration: 6 months")
    pdf = tmp_path / "CP.PHAR.481 (2027).pdf"
    render_pdf(revised, pdf)
    upload = {"Content-Type": "application/octet-stream", "X-File-Name": "CP.PHAR.481%20(2027).pdf"}
    # bad files first: one line each, nothing kept
    status, _h, body = request("POST", url + "/api/admin/uploads", b"", upload | {"X-File-Name": "empty.pdf"})
    assert status == 422 and "empty.pdf" in json.loads(body)["error"]
    assert _declared_too_large(site.port).startswith("HTTP/1.1 413")  # over CART_MAX_UPLOAD_MB=2: refused before it is sent
    status, _h, body = request("POST", url + "/api/admin/uploads", pdf.read_bytes(), upload | {"Content-Type": "text/plain"})
    assert status == 415
    assert not list((site.root / "data" / "uploads").glob("*"))

    status, _h, body = request("POST", url + "/api/admin/uploads", pdf.read_bytes(), upload)
    assert status == 200, body
    proposal = json.loads(body)
    assert proposal["file"] == "CP.PHAR.481 (2027).pdf" and proposal["file_type"] == "pdf" and proposal["pages"] >= 3
    assert proposal["fields"]["reviewed"] == {"value": "2027-05", "evidence": "Last Review Date: 05.27", "source": "text"}
    assert proposal["fields"]["policy_number"]["value"] == "CP.PHAR.481"
    assert proposal["supersedes"] == CENTENE and proposal["problems"] == []
    assert proposal["fields"]["id"]["value"] == f"{CENTENE}-2027-05"
    upload_id = proposal["upload_id"]
    # a wrong correction is named, and nothing is written
    status, _h, body = request("POST", url + f"/api/admin/uploads/{upload_id}/add", {"fields": {"effective": "2027-02-30"}})
    assert status == 422 and "effective" in json.loads(body)["error"]
    status, _h, body = request("POST", url + f"/api/admin/uploads/{upload_id}", {"fields": {"line_of_business": "Medicaid"}})
    assert json.loads(body)["fields"]["line_of_business"] == {"value": ["Medicaid"], "evidence": "set by you", "source": "user"}
    before = request("POST", url + "/api/ask", {"question": "centene abecma approval duration", "dos": "2027-06-15"})
    assert before[0] == 200 and "3 months" in json.loads(before[2])["answer"]["text"]

    status, _h, body = request("POST", url + f"/api/admin/uploads/{upload_id}/add", {"fields": {"line_of_business": "Medicaid"}})
    assert status == 200, body
    added = json.loads(body)
    assert added["added"] == f"{CENTENE}-2027-05" and added["supersedes"] == CENTENE and added["build_started"]
    # while it rebuilds, the old index keeps answering
    assert request("POST", url + "/api/ask", {"question": "Q2055 payment limit"})[0] == 200
    state = _wait_for_build(url)
    assert state["state"] == "built", state
    assert any("Building index" in line for line in state["lines"])
    # the running app answers from the new build: the revision in force on the date of service
    after = json.loads(request("POST", url + "/api/ask", {"question": "centene abecma approval duration",
                                                         "dos": "2027-06-15"})[2])["answer"]
    assert f"{CENTENE}-2027-05" in {c["doc_id"] for c in after["citations"]} and "3 months" not in after["text"]
    earlier = json.loads(request("POST", url + "/api/ask", {"question": "centene abecma approval duration",
                                                           "dos": "2026-09-01"})[2])["answer"]
    assert "3 months" in earlier["text"] and {c["doc_id"] for c in earlier["citations"]} == {CENTENE}
    stored = site.root / "sources" / "documents" / f"{CENTENE}-2027-05.md"
    assert stored.exists() and (site.root / "sources" / "documents" / "originals" / f"{CENTENE}-2027-05.pdf").exists()
    assert not list((site.root / "data" / "uploads").glob("*"))  # the staged upload is gone
    listed = json.loads(request("GET", url + "/api/admin/documents")[2])["documents"]
    assert {d["id"]: d["version"] for d in listed}[CENTENE].startswith("version 1 of 2")


def _carepartners_html(path: Path) -> None:
    """The CarePartners guideline as a saved payer web page, revised (new effective date, a new log line)."""
    body = _body(CAREPARTNERS).replace("Effective: September 1, 2025", "Effective: March 1, 2027").replace(
        "- July 16, 2025: Reviewed by MPAC.",
        "- January 20, 2027: Reviewed by MPAC. Annual Review. Effective date March 1, 2027.\n- July 16, 2025: Reviewed by MPAC.")
    parts = []
    for block in (b.strip("\n") for b in re.split(r"\n[ \t]*\n", body) if b.strip()):
        lines = block.split("\n")
        if all("\t" in line for line in lines) and len(lines) > 1:
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line.split("\t")) + "</tr>" for line in lines)
            parts.append(f"<table>{rows}</table>")
        else:
            parts.append("".join(f"<p>{html.escape(line)}</p>" for line in lines))
    path.write_text("<!doctype html><html><head><title>Abecma MNG | CarePartners</title></head><body>"
                    "<nav><a href='/'>Home</a> <a href='/providers'>Providers</a></nav><main>" + "".join(parts)
                    + "</main><footer>Copyright CarePartners of Connecticut</footer></body></html>", encoding="utf-8")


def test_the_page_in_a_browser_adds_a_saved_web_page_after_the_title_is_fixed(site, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    page_file = tmp_path / "abecma-mng.html"
    _carepartners_html(page_file)
    title = "Medical Necessity Guidelines: Abecma (idecabtagene vicleucel) — CarePartners of Connecticut Medicare Advantage"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(site.url) else None)
        page.on("pageerror", lambda e: outside.append(f"script error: {e}"))
        page.goto(site.url + "/admin/documents")
        expect(page.locator("#corpus tbody tr")).to_have_count(6 if (site.root / "sources/documents" / f"{CENTENE}-2027-05.md").exists() else 5)
        page.set_input_files("#file", str(page_file))
        page.click("#upload-btn")
        expect(page.locator("#review")).to_be_visible()
        # the title came from the page's <title>: it does not match the guideline on hand yet
        expect(page.locator("#f-title")).to_have_value("Abecma MNG | CarePartners")
        expect(page.locator("#f-effective")).to_have_value("2027-03-01")
        expect(page.locator("#f-payer")).to_have_value("carepartners-ct")
        page.fill("#f-title", title)
        page.click("#recheck-btn")
        expect(page.locator("#notes")).to_contain_text(f"replaces '{CAREPARTNERS}' for dates of service from 2027-03-01")
        expect(page.locator("#f-id")).to_have_value(f"{CAREPARTNERS}-2027-03-01")
        expect(page.locator("#add-btn")).to_be_enabled()
        shot(page, "documents-review")
        page.click("#add-btn")
        expect(page.locator("#build-state")).to_contain_text("Rebuilt", timeout=240_000)
        expect(page.locator("#corpus")).to_contain_text(f"{CAREPARTNERS}-2027-03-01")
        expect(page.locator("#corpus")).to_contain_text("version 2 of 2")
        shot(page, "documents-added")
        storage = page.evaluate("() => [localStorage.length, sessionStorage.length]")
        browser.close()
    assert outside == [] and storage == [0, 0]
    doc = site.root / "sources" / "documents" / f"{CAREPARTNERS}-2027-03-01.md"
    added = parse_document(doc)
    assert added.title == title and added.effective == "2027-03-01" and added.payer == "carepartners-ct"
    assert (site.root / "sources" / "documents" / "originals" / f"{CAREPARTNERS}-2027-03-01.html").exists()
