"""index.readers on real files made from the real corpus: the Centene policy as a multi-page PDF
with ruled tables, the Abecma guide as a saved web page with navigation around it, a Word
document, the corpus Markdown itself; and every refusal a billing office can run into.

Every extracted text is also checked against the conventions the chunker relies on and chunked.
"""

from __future__ import annotations

import html
import io
import os
import re
import unicodedata
import zipfile
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw

from assistant import config
from index.chunking import blocks_of, chunk_document, is_heading
from index.codes import codes_in
from index.corpus import SourceDocument, split_front_matter
from index.readers import MAX_BYTES_DEFAULT, SUFFIXES, Extracted, ReadError, read_file

DOCUMENTS = config.PROJECT_ROOT / "sources" / "documents"
POLICY_TITLE = "Clinical Policy: Idecabtagene Vicleucel (Abecma), CP.PHAR.481"
RUNNING_HEADER = "CLINICAL POLICY - IDECABTAGENE VICLEUCEL"
PCS_TABLE = [
    ["ICD-10-PCS code and description", "Setting"],
    ["XW033C3Introduction of engineered autologous chimeric antigen receptor T-cell immunotherapy into peripheral vein, "
     "percutaneous approach, new technology group 3", "Inpatient"],
    ["XW043C3Introduction of engineered autologous chimeric antigen receptor T-cell immunotherapy into central vein, "
     "percutaneous approach, new technology group 3", "Inpatient"],
]


def _body(name: str) -> str:
    path = DOCUMENTS / name
    return split_front_matter(path.read_text(encoding="utf-8"), path)[1]


def _norm(text: str) -> str:
    return " ".join(text.split())


def _latin1(text: str) -> str:
    """What fpdf2's core fonts can draw: anything outside latin-1 becomes '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def _lines_of(text: str, block) -> list[str]:
    return [text[a:b] for a, b in block.lines]


def assert_conventions(extracted: Extracted, rectangular_tables: bool = True) -> None:
    """The text shape index/chunking.py reads, and chunking it gives spans of the text."""
    text = extracted.text
    assert text and text.endswith("\n") and not text.endswith("\n\n") and not text.startswith("\n")
    assert "\n\n\n" not in text and "\r" not in text and "\f" not in text
    bad = {ch for ch in text if ch not in "\n\t\u200c\u200d" and unicodedata.category(ch) in ("Cc", "Cf")}  # joiners: emoji
    assert not bad, bad
    for line in text.split("\n"):
        assert not line.endswith(" "), repr(line)
    for block in blocks_of(text):  # a tab only in a table block: its header line has one
        lines = _lines_of(text, block)
        assert not any("\t" in line for line in lines) or "\t" in lines[0].strip(), lines
    assert extracted.pages[0] == 0 and list(extracted.pages) == sorted(extracted.pages)
    if rectangular_tables:
        for block in blocks_of(text):
            lines = _lines_of(text, block)
            if any("\t" in line for line in lines):  # a tab only ever in a table block, every row the header's width
                assert len({line.count("\t") for line in lines}) == 1, lines
    doc = SourceDocument(id="x", title="x", publisher="x", kind="payer-policy", products=("abecma",), payer="centene",
                         line_of_business=(), effective=None, reviewed=None, price_quarter=None,
                         path=Path("x.md"), text=text)
    chunks = chunk_document(doc)
    assert chunks
    for chunk in chunks:
        assert chunk.text == text[chunk.start:chunk.end]


# --- the Centene policy as a PDF -------------------------------------------------------------------

class _PolicyPDF(FPDF):
    """A payer-policy look: a running header and a "Page n of m" footer on every page."""

    def header(self) -> None:
        self.set_font("Helvetica", size=8)
        self.cell(0, 6, RUNNING_HEADER, new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", size=8)
        self.cell(0, 6, f"Page {self.page_no()} of {{nb}}", align="C")


def _policy_blocks(body: str) -> list[str]:
    """The policy's blocks, with a glued ICD-10-PCS table added after its HCPCS table."""
    blocks = [b.strip("\n") for b in re.split(r"\n[ \t]*\n", body) if b.strip()]
    at = next(i for i, b in enumerate(blocks) if b.startswith("HCPCS Codes\t"))
    return blocks[: at + 1] + ["\n".join("\t".join(r) for r in PCS_TABLE)] + blocks[at + 1:]


def _is_table(block: str) -> bool:
    lines = block.split("\n")
    return len(lines) >= 2 and all("\t" in line for line in lines)


def _draw_table(pdf: FPDF, block: str) -> None:
    rows = [[_latin1(c) for c in line.split("\t")] for line in block.split("\n")]
    width = len(rows[0])
    pdf.set_font("Helvetica", size=9)
    with pdf.table(text_align="LEFT", line_height=4.5) as table:
        for cells in rows:
            row = table.row()
            for cell in (cells + [""] * width)[:width]:
                row.cell(cell)
    pdf.ln(3)


def _render_policy(path: Path) -> tuple[int, list[tuple[str, int, int]]]:
    """Write the policy as a PDF; returns the page count and (paragraph, first page, last page) for the prose."""
    pdf = _PolicyPDF(format="A4")
    pdf.set_title(POLICY_TITLE)
    pdf.set_author("Centene Corporation")
    pdf.set_subject("Abecma clinical policy")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    placed = []
    for block in _policy_blocks(_body("centene-abecma-policy.md")):
        if _is_table(block):
            _draw_table(pdf, block)
            continue
        first = pdf.page_no()
        lines = block.split("\n")
        heading = len(lines) == 1 and is_heading(lines[0]) and len(lines[0]) < 80
        pdf.set_font("Helvetica", style="B" if heading else "", size=12 if heading else 10)
        for line in lines:
            pdf.multi_cell(0, 5, _latin1(line.strip()), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        placed.append((block, first, pdf.page_no()))
    pdf.output(str(path))
    return pdf.page_no(), placed


@pytest.fixture(scope="module")
def policy_pdf(tmp_path_factory) -> tuple[Extracted, int, list[tuple[str, int, int]]]:
    path = tmp_path_factory.mktemp("pdf") / "centene-abecma-policy.pdf"
    page_count, placed = _render_policy(path)
    return read_file(path), page_count, placed


def test_pdf_policy_text_pages_and_metadata(policy_pdf):
    extracted, page_count, placed = policy_pdf
    text = extracted.text
    assert extracted.file_type == "pdf"
    assert page_count >= 5 and len(extracted.pages) == page_count
    assert extracted.title_hint == POLICY_TITLE
    assert extracted.hints["author"] == "Centene Corporation" and extracted.hints["subject"] == "Abecma clinical policy"
    assert re.match(r"^\d{4}-\d{2}-\d{2}T", extracted.hints["created"])
    flat = _norm(text)
    # every paragraph of the policy comes through, whitespace aside
    missing = [block for block, _, _ in placed if _norm(_latin1(block)) not in flat]
    assert not missing, missing[:3]
    assert "continued therapy will not be authorized as abecma is indicated to be dosed one time only" in flat.lower()
    # the running header and the page footer are page furniture, not text
    assert RUNNING_HEADER not in text and "Page 1 of" not in text and "Page 2 of" not in text


def test_pdf_paragraphs_are_found_on_their_page(policy_pdf):
    extracted, page_count, placed = policy_pdf
    text = extracted.text
    checked = {}
    for block, first, last in placed:
        probe = _norm(_latin1(block.split("\n")[0]))[:50]
        if first != last or len(probe) < 30 or text.count(probe) != 1:
            continue  # spans a page break, or too short / repeated to locate
        checked[first] = checked.get(first, 0) + 1
        assert extracted.page_of(text.index(probe)) == first, (probe, first)
    assert checked.get(2, 0) >= 1 and len(checked) >= page_count - 1
    on_page_two = next(b for b, first, last in placed if first == last == 2 and len(b) > 60)
    assert extracted.page_of(text.index(_norm(_latin1(on_page_two))[:40])) == 2
    assert extracted.page_of(0) == 1 and extracted.page_of(len(text)) == page_count
    with pytest.raises(ValueError):
        extracted.page_of(len(text) + 1)


def test_pdf_tables_are_tab_separated_blocks_in_place(policy_pdf):
    extracted, _, _ = policy_pdf
    text = extracted.text
    blocks = [_lines_of(text, b) for b in blocks_of(text)]
    tables = [lines for lines in blocks if "\t" in lines[0]]
    assert extracted.tables == len(tables) >= 5
    hcpcs = next(lines for lines in tables if lines[0] == "HCPCS Codes\tDescription")
    assert len(hcpcs) == 2
    code, description = hcpcs[1].split("\t")
    assert code == "Q2055" and codes_in(hcpcs[1])[0] == "Q2055"
    assert description.startswith("Idecabtagene vicleucel, up to 510 million autologous B-cell maturation antigen (BCMA)")
    assert description.endswith("including leukapheresis and dose preparation procedures, per therapeutic dose")
    assert text.count("Idecabtagene vicleucel, up to 510 million") == 1  # the table region is not also read as text
    pcs = next(lines for lines in tables if lines[0] == "\t".join(PCS_TABLE[0]))
    assert [line.split("\t") for line in pcs] == PCS_TABLE  # glued code cells intact
    assert "XW033C3" in codes_in(pcs[1]) and "XW043C3" in codes_in(pcs[2])
    drugs = [lines for lines in tables if lines[0].startswith("Drug Name\tDosing Regimen")]
    assert drugs and all(len(line.split("\t")) == 3 for lines in drugs for line in lines)
    # every row of the policy's own tables, word cuts in the narrow drug column glued back
    rows = [line for block in _policy_blocks(_body("centene-abecma-policy.md")) if _is_table(block) for line in block.split("\n")]
    assert len(rows) > 50
    assert [row for row in rows if _latin1(row).rstrip("\t") not in text.replace("\t\n", "\n")] == []
    # the table sits where it was drawn: after the coding paragraph, before the revision log
    assert text.index("Providers should reference the most up-to-date") < text.index("HCPCS Codes\tDescription")
    assert text.index("HCPCS Codes\tDescription") < text.index(PCS_TABLE[0][0]) < text.index("Reviews, Revisions, and Approvals")


def test_pdf_policy_conventions_and_chunks(policy_pdf):
    extracted, _, _ = policy_pdf
    assert_conventions(extracted)
    headings = [extracted.text[b.start:b.end] for b in blocks_of(extracted.text) if len(b.lines) == 1]
    assert "Coding Implications" in headings and "Appendix B: Therapeutic Alternatives" in headings


def test_pdf_line_joining_and_hyphenation(tmp_path):
    lines = [
        "Lymphodepleting chemotherapy is given before the infu-",
        "sion of the cells; the patient then returns for a follow-",
        "up visit on day 28 after the anti-BCMA product and the",
        "team books the follow-up visit before discharge, so the",
        "claim lists every administration code for the CAR-",
        "T infusion.",
    ]
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=13)
    pdf.cell(0, 7, "Administration", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    for line in lines:
        pdf.cell(0, 5.5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for item in ("1. Apheresis at a FACT-accredited center", "2. Infusion of the cells"):
        pdf.cell(0, 5.5, item, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.cell(0, 5.5, "Give cyclophosphamide and dexamethasone as ordered.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=10)
    with pdf.table(col_widths=(20, 60), width=80, text_align="LEFT") as table:  # a narrow column: words cut
        for cells in (["Dose Limit/ Maximum Dose", "Code"], ["cyclophosphamide/dexamethasone", "J9070 per dose"]):
            row = table.row()
            for cell in cells:
                row.cell(cell)
    path = tmp_path / "hyphens.pdf"
    pdf.output(str(path))
    extracted = read_file(path)
    assert extracted.text == (
        "Administration\n\n"
        "Lymphodepleting chemotherapy is given before the infusion of the cells; the patient then returns for a "
        "follow-up visit on day 28 after the anti-BCMA product and the team books the follow-up visit before "
        "discharge, so the claim lists every administration code for the CAR-T infusion.\n\n"
        "1. Apheresis at a FACT-accredited center\n2. Infusion of the cells\n\n"
        "Give cyclophosphamide and dexamethasone as ordered.\n\n"
        # the header's words each got a line and stay words; the drug names cut mid-word are whole again
        "Dose Limit/ Maximum Dose\tCode\ncyclophosphamide/dexamethasone\tJ9070 per dose\n"
    )
    assert extracted.title_hint is None and extracted.tables == 1 and extracted.pages == (0,)
    assert_conventions(extracted)


# --- the Abecma guide as a saved web page ----------------------------------------------------------

GUIDE_TITLE = "Abecma (idecabtagene vicleucel) billing guide | CareCost Estimate"
CODES_TABLE = [
    ["Product", "HCPCS", "Admin CPT", "Setting"],
    ["Abecma", "Q2055", "0537T-0541T", "MS-DRG 018"],
    ["Carvykti", "Q2056", "0537T-0541T", "MS-DRG 018"],
]
_LIST_ITEM = re.compile(r"^\s*(?:(\d+)\.|•)\s+")


def _guide_block_html(block: str) -> tuple[str, list[str]]:
    """One corpus block as HTML: a heading line as <h2>, list lines as <ul>/<ol>, other lines as <p>."""
    lines = [line for line in block.split("\n") if line.strip()]
    if len(lines) == 1 and is_heading(lines[0]):
        return f"<h2>{html.escape(lines[0].strip())}</h2>", [lines[0].strip()]
    out, open_list = [], ""
    for line in lines:
        m = _LIST_ITEM.match(line)
        kind = ("ol" if m.group(1) else "ul") if m else ""
        if open_list and kind != open_list:
            out.append(f"</{open_list}>")
            open_list = ""
        if kind and not open_list:
            out.append(f"<{kind}>")
            open_list = kind
        body = html.escape(line[m.end():] if m else line.strip())
        out.append(f"<li>{body}</li>" if kind else f"<p>{body}</p>")
    if open_list:
        out.append(f"</{open_list}>")
    return "\n".join(out), []


def _guide_html() -> tuple[str, str, list[str]]:
    """The guide as a page a browser saves: site chrome around a <main>; returns (html, h1, h2 texts)."""
    blocks = [b for b in re.split(r"\n[ \t]*\n", _body("abecma-billing-guide.md")) if b.strip()]
    h1 = blocks[0].strip()
    parts, h2s = [f"<h1>{html.escape(h1)}</h1>"], []
    for n, block in enumerate(blocks[1:]):
        piece, heads = _guide_block_html(block)
        parts.append(piece)
        h2s += heads
        if n == 3:
            rows = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{c}</{'th' if i == 0 else 'td'}>" for c in r) + "</tr>"
                           for i, r in enumerate(CODES_TABLE))
            parts.append(f"<table><caption>Table 1: CAR-T codes</caption>{rows}</table>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(GUIDE_TITLE)}</title>
<meta name="description" content="How to bill Abecma (Q2055)."><meta name="author" content="CareCost Estimate">
<meta property="article:modified_time" content="2026-05-04T10:00:00Z">
<link rel="canonical" href="https://example.org/abecma"><style>.NAVSTYLE {{ color: red }}</style>
<script>var SCRIPTTEXT = "do not index";</script></head>
<body><header><div class="logo">HEADERTEXT CareCost</div><nav><a href="/">NAVTEXT Home</a><a href="/q">Quarters</a></nav></header>
<div role="navigation">ROLENAV breadcrumbs</div><div hidden>HIDDENTEXT</div>
<main>
{chr(10).join(parts)}
</main>
<aside>ASIDETEXT related guides</aside>
<footer>FOOTERTEXT (c) 2026 CareCost Estimate</footer><script>track("SCRIPTTWO")</script>
</body></html>"""
    return page, h1, h2s


def test_html_guide_main_content_headings_table(tmp_path):
    page, h1, h2s = _guide_html()
    path = tmp_path / "abecma-guide.html"
    path.write_text(page, encoding="utf-8")
    extracted = read_file(path)
    text = extracted.text
    assert extracted.file_type == "html" and extracted.pages == (0,)
    assert extracted.title_hint == GUIDE_TITLE
    assert extracted.hints == {"author": "CareCost Estimate", "description": "How to bill Abecma (Q2055).",
                               "modified": "2026-05-04T10:00:00+00:00", "url": "https://example.org/abecma"}
    for junk in ("NAVTEXT", "HEADERTEXT", "FOOTERTEXT", "SCRIPTTEXT", "SCRIPTTWO", "NAVSTYLE", "ROLENAV", "HIDDENTEXT", "ASIDETEXT"):
        assert junk not in text
    assert text.startswith(h1 + "\n\n")
    assert len(h2s) > 10
    for heading in h2s:  # each heading is its own block
        assert f"\n\n{heading}\n\n" in text + "\n", heading
    table = "\n".join("\t".join(r) for r in CODES_TABLE)
    assert f"\n\nTable 1: CAR-T codes\n\n{table}\n\n" in text and extracted.tables == 1
    assert "\n1. Apheresis — 38206 / 0540T at FACT center\n2. Manufacture" in text
    assert "\n- Adult relapsed/refractory multiple myeloma (4L+)" in text
    flat = _norm(text)
    body_lines = [_norm(_LIST_ITEM.sub("", line)) for line in _body("abecma-billing-guide.md").split("\n") if line.strip()]
    assert not [line for line in body_lines if line not in flat][:3]
    assert_conventions(extracted)


def test_html_table_spans_layout_tables_and_article(tmp_path):
    filler = "<p>" + "Prior authorization is required before apheresis for every commercial plan. " * 4 + "</p>"
    page = f"""<html><head><title> </title></head><body><nav>Menu</nav>
<table><tr><td><article><header><h1>Payer grid</h1></header>{filler}
<table><tr><th>Payer</th><th>Code</th><th>Note</th></tr>
<tr><td rowspan="2">Medicare</td><td>Q2055</td><td>per dose</td></tr>
<tr><td>Q2056</td><td>per dose</td></tr>
<tr><td colspan="2">Medicaid (all codes)</td><td>state rules</td></tr></table>
<ol start="3"><li>Third step<ul><li>nested detail</li></ul></li><li><p>Fourth step</p></li></ol>
<p>Line one<br>line two</p></article></td></tr></table></body></html>"""
    path = tmp_path / "grid.htm"
    path.write_text(page, encoding="utf-8")
    extracted = read_file(path)
    assert extracted.title_hint == "Payer grid"  # a blank <title> falls back to the first <h1>
    assert extracted.text.startswith("Payer grid\n\nPrior authorization is required")  # the article's own header stays
    assert ("\n\nPayer\tCode\tNote\nMedicare\tQ2055\tper dose\n\tQ2056\tper dose\nMedicaid (all codes)\t\tstate rules\n\n"
            in extracted.text)
    assert "\n\n3. Third step\n  - nested detail\n4. Fourth step\n\nLine one\nline two\n" in extracted.text
    assert "Menu" not in extracted.text and extracted.tables == 1
    assert_conventions(extracted)


# --- a Word document -------------------------------------------------------------------------------

def test_docx_order_headings_lists_tables(tmp_path):
    document = docx.Document()
    document.core_properties.title = "Abecma quick reference"
    document.core_properties.author = "Revenue Cycle"
    document.core_properties.keywords = "CAR-T; Q2055"
    document.add_heading("Abecma billing quick reference", level=1)
    document.add_paragraph("Abecma is billed under HCPCS Q2055 as a single therapeutic dose.")
    document.add_paragraph("Verify FACT accreditation", style="List Bullet")
    document.add_paragraph("Verify ABECMA REMS certification", style="List Bullet")
    document.add_paragraph("Before the table: the codes on the claim.")
    table = document.add_table(rows=4, cols=3)
    for r, cells in enumerate([["Code", "Description", "Units"],
                               ["Q2055", "Idecabtagene vicleucel, up to 510 million\nCAR-positive T cells", "1"],
                               ["0537T", "CAR-T cell harvesting", ""],
                               ["0540T", "", ""]]):
        for c, value in enumerate(cells):
            table.cell(r, c).text = value
    merged = table.cell(3, 1).merge(table.cell(3, 2))
    merged.text = "CAR-T cell administration"
    document.add_heading("Notes", level=2)
    document.add_paragraph("After the table: one unit per dose.\u00ad")
    path = tmp_path / "quick-reference.docx"
    document.save(str(path))
    extracted = read_file(path)
    assert extracted.text == (
        "Abecma billing quick reference\n\n"
        "Abecma is billed under HCPCS Q2055 as a single therapeutic dose.\n\n"
        "- Verify FACT accreditation\n- Verify ABECMA REMS certification\n\n"
        "Before the table: the codes on the claim.\n\n"
        "Code\tDescription\tUnits\n"
        "Q2055\tIdecabtagene vicleucel, up to 510 million CAR-positive T cells\t1\n"
        "0537T\tCAR-T cell harvesting\t\n"
        "0540T\tCAR-T cell administration\t\n\n"
        "Notes\n\n"
        "After the table: one unit per dose.\n"
    )
    assert extracted.file_type == "docx" and extracted.tables == 1 and extracted.pages == (0,)
    assert extracted.title_hint == "Abecma quick reference"
    assert extracted.hints["author"] == "Revenue Cycle" and extracted.hints["keywords"] == "CAR-T; Q2055"
    assert "created" in extracted.hints
    assert_conventions(extracted)


# --- text and Markdown: the real corpus -------------------------------------------------------------

def test_corpus_markdown_reads_without_front_matter():
    for path in sorted(DOCUMENTS.glob("*.md")):
        extracted = read_file(path)
        body = _body(path.name)
        assert extracted.file_type == "markdown" and extracted.pages == (0,)
        assert extracted.title_hint is None and extracted.hints == {}
        assert not extracted.text.startswith("---") and "\nproducts: [" not in extracted.text
        assert extracted.text.startswith(body.strip("\n").split("\n")[0].strip())
        assert _norm(extracted.text) == _norm(body)  # only whitespace changed
        assert_conventions(extracted, rectangular_tables=False)


def test_text_cleanup(tmp_path):
    raw = ("\ufeffPrior authorization  \r\n\r\n\r\n\r\nThe \ufb01rst infu\u00adsion  is   billed\u00a0once.   \r\n"
           "\x0cNext page\x07 text\r\n\tcode\tunits\t\r\n")
    path = tmp_path / "notes.txt"
    path.write_bytes(raw.encode("utf-8"))
    extracted = read_file(path)
    assert extracted.text == "Prior authorization\n\nThe first infusion is billed once.\n\nNext page text\n\tcode\tunits\t\n"
    assert extracted.file_type == "text"
    md = tmp_path / "note.md"
    md.write_text("---\ntitle: secret\nid: x\n---\n## Billing\n\nOne unit of Q2055.\n", encoding="utf-8")
    assert read_file(md).text == "## Billing\n\nOne unit of Q2055.\n" and read_file(md).hints == {}
    rule = tmp_path / "rule.md"
    rule.write_text("Intro\n\n---\n\nAfter the rule\n", encoding="utf-8")
    assert read_file(rule).text == "Intro\n\n---\n\nAfter the rule\n"  # a rule that is not front matter stays


# --- refusals --------------------------------------------------------------------------------------

def _refused(path: Path, reason: str, max_bytes: int = MAX_BYTES_DEFAULT) -> ReadError:
    with pytest.raises(ReadError) as info:
        read_file(path, max_bytes=max_bytes)
    exc = info.value
    assert exc.reason == reason, str(exc)
    assert str(exc) == f"{path.name}: {exc.message}" and "\n" not in str(exc) and exc.path == path
    return exc


def _image_pdf(path: Path) -> None:
    image = Image.new("RGB", (600, 300), "white")
    ImageDraw.Draw(image).text((20, 20), "Scanned prior authorization form", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.image(io.BytesIO(buffer.getvalue()), x=10, y=10, w=180)
    pdf.output(str(path))


def _text_pdf(path: Path, text: str, **encryption: str) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 5, text)
    if encryption:
        pdf.set_encryption(**encryption)
    pdf.output(str(path))


def test_refuses_image_only_and_encrypted_pdfs(tmp_path):
    scan = tmp_path / "scan.pdf"
    _image_pdf(scan)
    assert "OCR" in _refused(scan, "image-only").message
    locked = tmp_path / "policy.pdf"
    _text_pdf(locked, "Prior authorization criteria for Abecma.", owner_password="owner", user_password="secret")
    assert "encrypted" in _refused(locked, "encrypted").message
    # a scanned page inside a text PDF: the text is read, the page that needs OCR is named
    mixed = tmp_path / "mixed.pdf"
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 5, "Prior authorization criteria for Abecma; the signed form is scanned on the next page.")
    pdf.add_page()
    pdf.image(Image.new("RGB", (200, 100), "gray"), x=10, y=10, w=100)
    pdf.output(str(mixed))
    extracted = read_file(mixed)
    assert extracted.hints["image_only_pages"] == "2" and extracted.pages == (0, len(extracted.text))
    word_docx = tmp_path / "locked.docx"
    word_docx.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500) + "EncryptedPackage".encode("utf-16-le") + bytes(500))
    assert "password" in _refused(word_docx, "encrypted").message
    # encrypted with an owner password only: it opens without one, so it is read
    opened = tmp_path / "owner-only.pdf"
    _text_pdf(opened, "Prior authorization criteria for Abecma apply to every line of business.", owner_password="owner")
    assert read_file(opened).text == "Prior authorization criteria for Abecma apply to every line of business.\n"


def test_refuses_empty_unknown_and_too_large(tmp_path):
    for name in ("empty.pdf", "empty.txt", "empty.docx"):
        (tmp_path / name).write_bytes(b"")
        assert "0 bytes" in _refused(tmp_path / name, "empty").message
    blank = tmp_path / "blank.md"
    blank.write_text("---\nid: x\n---\n \n\t\n", encoding="utf-8")
    _refused(blank, "empty")
    sheet = tmp_path / "rates.xlsx"
    sheet.write_bytes(b"PK\x03\x04 not really")
    message = _refused(sheet, "unknown-type").message
    assert ".xlsx" in message and all(suffix in message for suffix in SUFFIXES)
    big = tmp_path / "big.txt"
    big.write_text("Q2055 one unit per dose.\n" * 100, encoding="utf-8")
    assert "MB" in _refused(big, "too-large", max_bytes=100).message
    assert "over the 20 MB limit" in ReadError(big, "too-large", "over the 20 MB limit").message


def test_refuses_navigation_only_page(tmp_path):
    page = tmp_path / "portal.html"
    page.write_text("<html><head><title>Provider portal</title></head><body><header>Acme Health</header>"
                    "<nav><ul>" + "".join(f"<li><a href='/{n}'>Menu item {n}</a></li>" for n in range(40)) + "</ul></nav>"
                    "<main><p>Loading...</p></main><footer>" + "Copyright notice and privacy terms. " * 10 + "</footer>"
                    "</body></html>", encoding="utf-8")
    assert "main content" in _refused(page, "no-main-content").message


def test_refuses_corrupt_files(tmp_path):
    rng = os.urandom
    cases = {
        "policy.pdf": rng(4000),
        "header-only.pdf": b"%PDF-1.7\n" + rng(4000),
        "guide.docx": rng(4000),
        "renamed.docx": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + rng(4000),
        "page.html": b"\x89PNG\r\n\x1a\n" + rng(4000).replace(b"<", b"_"),
        "latin1.txt": "Caf\xe9 r\xe9sum\xe9".encode("latin-1"),
        "binary.md": b"abc\x00\x00\x01def",
    }
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("readme.txt", "not a Word document")
    cases["zip.docx"] = zipped.getvalue()
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        _refused(tmp_path / name, "unreadable")
    assert "not UTF-8" in _refused(tmp_path / "latin1.txt", "unreadable").message
    assert ".doc" in _refused(tmp_path / "renamed.docx", "unreadable").message
    _refused(tmp_path / "missing.pdf", "unreadable")
