"""`python -m index add`: a real PDF of a corpus policy comes in with its metadata proposed from
its text, its pages, a second revision supersedes it by date, bad files change nothing, and the
golden set's answers about that policy are the same from the PDF as from the Markdown original."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fpdf import FPDF

from assistant import config
from conftest import PROJECT, subprocess_env
from index.corpus import load_corpus, parse_document, split_front_matter
from index.ingest import IngestError, commit, stage
from test_readers import _is_table

CENTENE = "centene-abecma-policy"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # scripts/install_chromium.sh installs it
KNOWN = {"title": "Clinical Policy: Idecabtagene Vicleucel (Abecma), CP.PHAR.481", "publisher": "Centene Corporation",
         "kind": "payer-policy", "payer": "centene", "products": ("abecma",), "effective": "2021-03-26",
         "reviewed": "2026-05", "policy_number": "CP.PHAR.481", "line_of_business": ("Commercial", "HIM/ICHRA", "Medicaid")}


def _body(sources: Path) -> str:
    path = sources / "documents" / f"{CENTENE}.md"
    return split_front_matter(path.read_text(encoding="utf-8"), path)[1]


def render_pdf(body: str, path: Path) -> dict[str, int]:
    """The policy as a real multi-page PDF in a Unicode font (the corpus's ≥, ⁶ and ™ survive);
    returns the page each paragraph starts on."""
    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", fname=str(FONT))
    pdf.add_font("DejaVu", style="B", fname=str(FONT.with_name("DejaVuSans-Bold.ttf")))
    pdf.set_title(KNOWN["title"])
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    placed: dict[str, int] = {}
    for block in (b.strip("\n") for b in re.split(r"\n[ \t]*\n", body) if b.strip()):
        pdf.set_font("DejaVu", size=9 if _is_table(block) else 10)
        if _is_table(block):
            width = block.split("\n")[0].count("\t") + 1
            with pdf.table(text_align="LEFT", line_height=4.5) as table:
                for line in block.split("\n"):
                    row = table.row()
                    for cell in (line.split("\t") + [""] * width)[:width]:
                        row.cell(cell)
        else:
            placed.setdefault(block.split("\n")[0].strip(), pdf.page_no())
            for line in block.split("\n"):
                pdf.multi_cell(0, 5, line.strip(), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    pdf.output(str(path))
    return placed


@pytest.fixture()
def policy_as_pdf(sources_copy, tmp_path) -> tuple[Path, Path, dict[str, int]]:
    """A corpus without the Centene Markdown file, and that policy as a PDF to add."""
    body = _body(sources_copy)
    (sources_copy / "documents" / f"{CENTENE}.md").unlink()
    pdf = tmp_path / "CP.PHAR.481 Abecma.pdf"
    return sources_copy, pdf, render_pdf(body, pdf)


def test_a_pdf_policy_is_proposed_from_its_text_and_added_with_its_pages(policy_as_pdf):
    sources, pdf, placed = policy_as_pdf
    staged = stage(pdf, sources)
    assert staged.extracted.file_type == "pdf" and len(staged.extracted.pages) >= 3
    for name, value in KNOWN.items():
        assert staged.proposal.value(name) == value, name
        assert staged.proposal.fields[name].evidence, name  # each value names the line it came from
    assert staged.proposal.value("id") == CENTENE and staged.problems() == [] and staged.supersedes is None
    target = commit(staged, sources)
    doc = parse_document(target)
    assert doc.original == f"originals/{CENTENE}.pdf" and (sources / "documents" / doc.original).read_bytes() == pdf.read_bytes()
    assert len(doc.pages) == len(staged.extracted.pages) and doc.extra["original_sha256"] == staged.sha256
    # a citation's page is the page of the original the quoted paragraph is on
    for first_line, page in placed.items():
        if len(first_line) > 60 and (at := doc.text.find(first_line[:60])) >= 0:
            assert doc.page_of(at) == page, first_line
    on_later_pages = [p for line, p in placed.items() if len(line) > 60 and doc.text.find(line[:60]) >= 0 and p > 1]
    assert len(set(on_later_pages)) >= 2
    # the table's code cells come through as a table the index reads as rows
    assert re.search(r"^HCPCS Codes\t", doc.text, re.M) and "Q2055" in doc.text
    # the same file again is a duplicate and changes nothing
    with pytest.raises(IngestError, match="already holds this document") as dup:
        stage(pdf, sources)
    assert dup.value.reason == "duplicate"


def test_a_later_revision_of_the_pdf_supersedes_the_first_by_date(policy_as_pdf, tmp_path):
    sources, pdf, _placed = policy_as_pdf
    commit(stage(pdf, sources), sources)
    revised = _body(PROJECT / "sources").replace("Last Review Date: 05.26", "Last Review Date: 05.27").replace(
        "Approval duration: 3 months", "Approval duration: 6 months")
    second = tmp_path / "CP.PHAR.481 Abecma 2027.pdf"
    render_pdf(revised, second)
    staged = stage(second, sources)
    assert staged.proposal.value("reviewed") == "2027-05"
    assert staged.supersedes == CENTENE and staged.proposal.value("id") == f"{CENTENE}-2027-05"
    assert any("replaces 'centene-abecma-policy' for dates of service from 2027-05" in n for n in staged.notes)
    commit(staged, sources)
    from index.corpus import versions
    order = versions(load_corpus(sources).documents)
    assert order[CENTENE].superseded_by == f"{CENTENE}-2027-05" and order[f"{CENTENE}-2027-05"].current


def test_the_same_revision_as_a_document_on_hand_is_refused(sources_copy, tmp_path):
    pdf = tmp_path / "policy.pdf"
    render_pdf(_body(sources_copy), pdf)  # the Markdown original is still in the corpus
    staged = stage(pdf, sources_copy)
    assert staged.same_revision and "already holds this revision (dated 2026-05) as 'centene-abecma-policy'" in staged.same_revision
    with pytest.raises(IngestError, match="already holds this revision"):
        commit(staged, sources_copy)
    assert not (sources_copy / "documents" / "originals").exists()


def _guide_docx(body: str, path: Path) -> None:
    """The Abecma guide as a Word file: headings, paragraphs and its tables as real Word tables."""
    import docx

    from index.chunking import is_heading
    from test_readers import CODES_TABLE

    document = docx.Document()
    for n, block in enumerate(b.strip("\n") for b in re.split(r"\n[ \t]*\n", body) if b.strip()):
        if n == 4:  # the same codes table the saved web page holds, as a real Word table
            block = "\n".join("\t".join(row) for row in CODES_TABLE)
        lines = block.split("\n")
        if _is_table(block):
            width = lines[0].count("\t") + 1
            table = document.add_table(rows=0, cols=width)
            for line in lines:
                for cell, value in zip(table.add_row().cells, (line.split("\t") + [""] * width)[:width], strict=True):
                    cell.text = value
        elif len(lines) == 1 and is_heading(lines[0]):
            document.add_heading(lines[0].strip(), level=2)
        else:
            for line in lines:
                document.add_paragraph(line.strip())
    document.save(str(path))


GUIDE = "abecma-billing-guide"


@pytest.mark.parametrize("kind", ["html", "docx"])
def test_a_guide_saved_as_a_web_page_or_word_file_is_proposed_with_its_known_metadata(sources_copy, tmp_path, kind):
    from test_readers import _guide_html

    path = sources_copy / "documents" / f"{GUIDE}.md"
    known = parse_document(path)
    body = split_front_matter(path.read_text(encoding="utf-8"), path)[1]
    path.unlink()  # the corpus without it: what a new office adds
    upload = tmp_path / f"abecma guide.{kind}"
    if kind == "html":
        upload.write_text(_guide_html()[0], encoding="utf-8")
    else:
        _guide_docx(body, upload)
    staged = stage(upload, sources_copy)
    fields = staged.proposal
    assert (fields.value("kind"), fields.value("products"), fields.value("payer")) == ("billing-guide", ("abecma",), None)
    assert fields.value("reviewed") == known.reviewed and fields.value("publisher") == known.publisher
    assert fields.value("id") == GUIDE and staged.problems() == []
    assert "Q2055" in fields.value("codes")
    target = commit(staged, sources_copy)
    doc = parse_document(target)
    assert doc.original == f"originals/{GUIDE}.{kind}" and doc.pages == ()
    # the codes table comes through as rows the index reads, a code in its own cell
    from index.tables import table_rows
    rows = [row for row in table_rows(doc) if row.columns[:2] == ("Product", "HCPCS")]
    assert [row.cells[:3] for row in rows] == [("Abecma", "Q2055", "0537T-0541T"), ("Carvykti", "Q2056", "0537T-0541T")]


def _image_only_pdf(path: Path) -> None:
    from PIL import Image

    image = path.with_suffix(".png")
    Image.new("RGB", (200, 100), "white").save(image)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(image), x=10, y=10, w=100)
    pdf.output(str(path))


def _encrypted_pdf(path: Path) -> None:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 5, "Clinical Policy: Abecma. " * 40)
    pdf.output(str(path))


def _cli(*args: str, cwd: Path, sources: Path, data: Path) -> subprocess.CompletedProcess:
    env = subprocess_env(CART_SOURCES_DIR=str(sources), CART_DATA_DIR=str(data))
    return subprocess.run([sys.executable, "-m", "index", "add", *args], cwd=PROJECT, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_command_line_shows_the_proposal_and_writes_only_when_confirmed(policy_as_pdf, tmp_path):
    sources, pdf, _placed = policy_as_pdf
    before = sorted(p.name for p in (sources / "documents").rglob("*"))
    shown = _cli(str(pdf), cwd=tmp_path, sources=sources, data=tmp_path / "data")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^policy_number: +CP\.PHAR\.481 .*Reference Number: CP\.PHAR\.481", shown.stdout, re.M), shown.stdout
    assert "proposal only; run again with --yes" in shown.stdout
    assert sorted(p.name for p in (sources / "documents").rglob("*")) == before  # nothing written
    # a field the person corrects is taken as typed; an invalid one stops the write with one line
    bad = _cli(str(pdf), "--set", "effective=2021-13-45", "--yes", "--no-build", cwd=tmp_path, sources=sources,
               data=tmp_path / "data")
    assert bad.returncode == 1 and "effective" in bad.stderr and "Traceback" not in bad.stderr
    assert sorted(p.name for p in (sources / "documents").rglob("*")) == before
    added = _cli(str(pdf), "--set", "line_of_business=Medicaid", "--yes", "--no-build", cwd=tmp_path, sources=sources,
                 data=tmp_path / "data")
    assert added.returncode == 0, added.stderr
    doc = parse_document(sources / "documents" / f"{CENTENE}.md")
    assert doc.line_of_business == ("Medicaid",) and doc.payer == "centene"


def test_bad_files_are_refused_with_one_line_each_and_change_nothing(sources_copy, tmp_path):
    files = {"scan.pdf": _image_only_pdf, "locked.pdf": _encrypted_pdf}
    for name, make in files.items():
        make(tmp_path / name)
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04 not really")
    before = sorted(p.name for p in (sources_copy / "documents").rglob("*"))
    result = _cli(*(str(tmp_path / n) for n in ("scan.pdf", "locked.pdf", "empty.pdf", "sheet.xlsx")),
                  "--yes", cwd=tmp_path, sources=sources_copy, data=tmp_path / "data")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Not added:")]
    assert len(lines) == 4, result.stderr
    assert "scan.pdf" in lines[0] and "OCR" in lines[0]
    assert "locked.pdf" in lines[1] and "encrypted" in lines[1]
    assert "empty.pdf" in lines[2] and "empty" in lines[2]
    assert "sheet.xlsx" in lines[3] and ".pdf" in lines[3]  # names the types it accepts
    assert sorted(p.name for p in (sources_copy / "documents").rglob("*")) == before


@pytest.mark.slow
def test_golden_answers_about_the_policy_are_the_same_from_the_ingested_pdf(policy_as_pdf, index_env, engine,
                                                                            tmp_path, monkeypatch):
    """The Markdown original replaced by the PDF of it, added with `index add`: every golden case
    about that policy gets the same verdict and cites the same documents."""
    from assistant.engine import Engine
    from evals.run import load_cases, score_case

    sources, pdf, _placed = policy_as_pdf
    commit(stage(pdf, sources), sources)
    data = tmp_path / "data"
    shutil.copytree(index_env["CART_DATA_DIR"], data)
    monkeypatch.setenv("CART_DATA_DIR", str(data))
    monkeypatch.setenv("CART_SOURCES_DIR", str(sources))
    from index.build import build

    report = build(config.load(), quiet=True)
    assert report.status == "built" and report.documents == 5
    from_pdf = Engine(cfg=config.load(), llm=None)
    texts = {d.id: d.text for d in load_corpus(sources).documents}
    added = parse_document(sources / "documents" / f"{CENTENE}.md")
    hits = [p for p in from_pdf.retriever.search("centene abecma CNS involvement criteria") if p.doc_id == CENTENE]
    assert hits and all(p.page == added.page_of(p.span[0]) >= 1 for p in hits)  # chunks carry their page
    answer = from_pdf.ask("centene abecma CNS involvement")
    assert answer.citations and all(c.page == added.page_of(c.span[0]) for c in answer.citations if c.doc_id == CENTENE)
    cases = [c for c in load_cases() if c.docs and set(c.docs) == {CENTENE}]
    assert len(cases) >= 40
    changed = []
    for case in cases:
        ingested = score_case(case, from_pdf, texts)
        monkeypatch.setenv("CART_SOURCES_DIR", str(PROJECT / "sources"))
        original = score_case(case, engine, texts)
        monkeypatch.setenv("CART_SOURCES_DIR", str(sources))
        same = (ingested["facts_ok"], ingested.get("lead_ok"), sorted(set(ingested["cited_docs"]))) == (
            original["facts_ok"], original.get("lead_ok"), sorted(set(original["cited_docs"])))
        if not same:
            changed.append((case.id, original["answer"][:160], ingested["answer"][:160]))
    assert not changed, changed
